//! `teleport-jira-bench`: runs the release `teleport-jira` binary as a child process against a
//! FakeTeleport and a FakeJira in this process, and reports burst, decision and start-up
//! catch-up throughput and latency, the plugin's CPU and memory, and its start-up time, as a
//! table and one JSON line (the last line of stdout). Progress goes to stderr.
//!
//! ```sh
//! cargo build --release -p teleport-jira -p bench
//! target/release/teleport-jira-bench                    # full: N = 1,000 and 10,000; 0 and 100 ms
//! target/release/teleport-jira-bench --short            # CI: N = 50; 0 and 20 ms
//! target/release/teleport-jira-bench --n 1000 --latency-ms 100 --scenarios burst
//! # Jira Cloud pushing back: 50 calls/s (a bucket of one second's worth), 429 with Retry-After
//! target/release/teleport-jira-bench --n 1000 --latency-ms 20 --scenarios burst --jira-rate-limit 50
//! # ... refused without Retry-After; then with a second plugin process on the same fakes
//! target/release/teleport-jira-bench --n 1000 --latency-ms 20 --scenarios burst --jira-rate-limit 50 --no-retry-after
//! target/release/teleport-jira-bench --n 1000 --latency-ms 20 --scenarios burst --jira-rate-limit 50 --replicas 2
//! ```
//!
//! `--jira-rate-limit R` limits FakeJira to R calls per second (a token bucket holding R, rounded)
//! during the burst and decisions, from the moment the plugin is idle after start-up (start-up is
//! not counted); refused calls are answered 429 with `Retry-After` (none with `--no-retry-after`)
//! and counted per phase. `--replicas K` runs K plugin processes in the burst and decisions run,
//! each with its own webhook port (Jira's webhook reaches the first; CPU and memory are the
//! first's). After a burst FakeJira must hold one issue per request, after the decisions each
//! request must be resolved once: a duplicate is a run failure. Under a limit, the targets judge
//! the burst's time (at most 1.15 x N / R), its Jira calls per request (at most 1.1) and its
//! share of 429 answers (under 5%).
//!
//! Modules: [`sandbox`] (fakes, files, the child process), [`fleet`] (the plugin and its
//! replicas), [`jira_limit`] (Jira's rate limit), [`scenario`] (the runs), [`probe`] (polling the
//! fakes), [`calls`] (Jira and Teleport call tallies), [`exactly_once`] (no duplicate issue or
//! resolution), [`measure`] (`/proc`, percentiles), [`report`] (what was measured), [`figures`]
//! (units and derived figures), [`table`] (for people), [`json_line`] (for machines),
//! [`targets`] (PASS/MISS), [`webhooks`] (Jira's deliveries).

mod calls;
mod exactly_once;
mod figures;
mod fleet;
mod jira_limit;
mod json_line;
mod measure;
mod probe;
mod report;
mod sandbox;
mod scenario;
mod table;
mod targets;
mod webhooks;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use jira_limit::JiraLimit;
use report::Report;
use sandbox::Tuning;
use scenario::{Params, Phase};

/// Dedicated plugin starts per invocation (each burst run adds one more).
const STARTS: usize = 3;

#[derive(Debug, Parser)]
#[command(
    name = "teleport-jira-bench",
    about = "Benchmarks the teleport-jira binary against FakeTeleport and FakeJira"
)]
struct Cli {
    /// The teleport-jira binary to run (build it with --release).
    #[arg(default_value = "target/release/teleport-jira")]
    binary: PathBuf,

    /// CI mode: N = 50, Jira latency 0 and 20 ms (well under two minutes).
    #[arg(long)]
    short: bool,

    /// Request counts, comma-separated [default: 1000,10000; 50 with --short].
    #[arg(long, value_delimiter = ',')]
    n: Vec<usize>,

    /// FakeJira latency per API call in ms, comma-separated [default: 0,100; 0,20 with --short].
    #[arg(long = "latency-ms", value_delimiter = ',')]
    latency_ms: Vec<u64>,

    /// Scenarios to run, comma-separated [default: all]. Decisions act on the burst's issues, so
    /// they run after a burst in the same process.
    #[arg(long, value_delimiter = ',', value_enum)]
    scenarios: Vec<ScenarioArg>,

    /// Written as `[jira] max_concurrent_calls` (the plugin's default, 16, otherwise).
    #[arg(long)]
    jira_concurrency: Option<usize>,

    /// Written as `[reconcile] workers` (the plugin's default, 64, otherwise).
    #[arg(long)]
    workers: Option<usize>,

    /// Written as `[reconcile] scan_interval`, e.g. "30s" (the plugin's default otherwise).
    #[arg(long)]
    scan_interval: Option<String>,

    /// Jira's rate limit in calls per second during the burst and decisions (a bucket holding
    /// one second's worth); refusals are 429 with `Retry-After` [default: no limit].
    #[arg(long, value_name = "R")]
    jira_rate_limit: Option<f64>,

    /// With --jira-rate-limit: refusals carry no `Retry-After`.
    #[arg(long, requires = "jira_rate_limit")]
    no_retry_after: bool,

    /// Plugin processes in the burst and decisions run, on the same fakes, each with its own
    /// webhook port (Jira's webhook reaches the first).
    #[arg(long, value_name = "K", default_value_t = 1)]
    replicas: usize,

    /// Also write the JSON line to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScenarioArg {
    Burst,
    Decisions,
    CatchUp,
}

/// What to run, with the defaults of the mode filled in.
struct Plan {
    ns: Vec<usize>,
    latencies_ms: Vec<u64>,
    burst: bool,
    decisions: bool,
    catch_up: bool,
    tuning: Tuning,
    ticks_per_second: f64,
    jira_limit: Option<JiraLimit>,
    replicas: usize,
}

impl Plan {
    fn from_cli(cli: &Cli) -> Result<Self> {
        let (default_n, default_latency): (&[usize], &[u64]) = if cli.short {
            (&[50], &[0, 20])
        } else {
            (&[1000, 10_000], &[0, 100])
        };
        let ns = given_or(&cli.n, default_n);
        if ns.contains(&0) {
            bail!("--n must be at least 1");
        }
        if cli.replicas == 0 {
            bail!("--replicas must be at least 1");
        }
        let wants = |s: ScenarioArg| cli.scenarios.is_empty() || cli.scenarios.contains(&s);
        let decisions = wants(ScenarioArg::Decisions);
        Ok(Self {
            ns,
            latencies_ms: given_or(&cli.latency_ms, default_latency),
            // Decisions act on the burst's issues.
            burst: wants(ScenarioArg::Burst) || decisions,
            decisions,
            catch_up: wants(ScenarioArg::CatchUp),
            tuning: Tuning {
                jira_concurrency: cli.jira_concurrency,
                workers: cli.workers,
                scan_interval: cli.scan_interval.clone(),
            },
            ticks_per_second: measure::clock_ticks_per_second(),
            jira_limit: jira_limit(cli)?,
            replicas: cli.replicas,
        })
    }

    fn params(&self, binary: &Path, n: usize, latency: Duration) -> Params {
        Params {
            binary: binary.to_path_buf(),
            n,
            latency,
            tuning: self.tuning.clone(),
            ticks_per_second: self.ticks_per_second,
            jira_limit: self.jira_limit,
            replicas: self.replicas,
        }
    }

    /// `, Jira 50/s, 2 replicas`: the run's conditions beyond N and latency.
    fn conditions(&self) -> String {
        let mut out = String::new();
        if let Some(limit) = &self.jira_limit {
            out.push_str(&format!(", Jira {}", limit.describe()));
        }
        if self.replicas > 1 {
            out.push_str(&format!(", {} replicas", self.replicas));
        }
        out
    }
}

/// `--jira-rate-limit` and `--no-retry-after`.
fn jira_limit(cli: &Cli) -> Result<Option<JiraLimit>> {
    match cli.jira_rate_limit {
        Some(r) if !(r.is_finite() && r > 0.0) => {
            bail!("--jira-rate-limit must be a positive number of calls per second")
        }
        Some(per_second) => Ok(Some(JiraLimit {
            per_second,
            retry_after: !cli.no_retry_after,
        })),
        None => Ok(None),
    }
}

/// The values given on the command line, or the mode's defaults when none were.
fn given_or<T: Clone>(given: &[T], default: &[T]) -> Vec<T> {
    if given.is_empty() { default } else { given }.to_vec()
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let started = Instant::now();
    let binary_bytes = std::fs::metadata(&cli.binary)
        .with_context(|| {
            format!(
                "cannot read {} (build it with `cargo build --release -p teleport-jira`)",
                cli.binary.display()
            )
        })?
        .len();
    let plan = Plan::from_cli(&cli)?;
    let mut report = Report {
        mode: if cli.short { "short" } else { "full" },
        binary: cli.binary.clone(),
        binary_bytes,
        tuning: plan.tuning.clone(),
        ticks_per_second: plan.ticks_per_second,
        startups: Vec::new(),
        phases: Vec::new(),
        failures: Vec::new(),
        wall: Duration::ZERO,
    };
    eprintln!("running {STARTS} plugin starts on an empty cluster ...");
    let base = plan.params(&cli.binary, 0, Duration::ZERO);
    match scenario::startups(&base, STARTS).await {
        Ok(startups) => report.startups.extend(startups),
        Err(err) => report.failures.push(format!("start-up: {err:#}")),
    }
    for &n in &plan.ns {
        for &latency_ms in &plan.latencies_ms {
            let params = plan.params(&cli.binary, n, Duration::from_millis(latency_ms));
            let what = format!("N={n}, Jira latency {latency_ms} ms");
            run_point(&plan, &params, &what, &mut report).await;
        }
    }
    report.wall = started.elapsed();
    publish(&report, cli.json_out.as_deref())
}

/// The burst (with decisions; under the rate limit and with the replicas asked for) and the
/// catch-up at one N and latency, into `report`.
async fn run_point(plan: &Plan, params: &Params, what: &str, report: &mut Report) {
    if plan.burst {
        let what = format!("{what}{}", plan.conditions());
        let name = if plan.decisions {
            "burst + decisions"
        } else {
            "burst"
        };
        eprintln!("running {name}, {what} ...");
        let run = Instant::now();
        match scenario::burst_then_decisions(params, plan.decisions).await {
            Ok((startup, burst, decisions)) => {
                report.startups.push(startup);
                let decisions = match decisions {
                    Some(Err(err)) => {
                        report.failures.push(format!("decisions, {what}: {err:#}"));
                        None
                    }
                    other => other.and_then(Result::ok),
                };
                for phase in std::iter::once(burst).chain(decisions) {
                    record_breaches(&phase, report);
                    report.phases.push(phase);
                }
            }
            Err(err) => report.failures.push(format!("{name}, {what}: {err:#}")),
        }
        eprintln!("  done in {:.1} s", run.elapsed().as_secs_f64());
    }
    if plan.catch_up {
        eprintln!("running catch-up, {what} ...");
        let run = Instant::now();
        match scenario::catch_up(params).await {
            Ok(phase) => report.phases.push(phase),
            Err(err) => report.failures.push(format!("catch-up, {what}: {err:#}")),
        }
        eprintln!("  done in {:.1} s", run.elapsed().as_secs_f64());
    }
}

/// A duplicate issue or a second resolution fails the run, whatever the figures.
fn record_breaches(phase: &Phase, report: &mut Report) {
    for breach in &phase.exactly_once.breaches {
        let failure = format!("{}: {breach}", figures::label(phase));
        eprintln!("  FAILED: {failure}");
        report.failures.push(failure);
    }
}

/// Prints the table and the JSON line (also to `json_out`); fails when a run failed.
fn publish(report: &Report, json_out: Option<&Path>) -> Result<()> {
    print!("{}", table::render(report));
    let line = json_line::render(report).to_string();
    println!("{line}");
    if let Some(path) = json_out {
        std::fs::write(path, format!("{line}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !report.failures.is_empty() {
        bail!("{} benchmark run(s) failed", report.failures.len());
    }
    Ok(())
}
