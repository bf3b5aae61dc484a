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
//! ```
//!
//! Modules: [`sandbox`] (fakes, files, the child process), [`scenario`] (the runs), [`probe`]
//! (polling the fakes), [`calls`] (Jira and Teleport call tallies), [`measure`] (`/proc`,
//! percentiles), [`report`] (what was measured), [`figures`] (units and derived figures),
//! [`table`] (for people), [`json_line`] (for machines), [`targets`] (PASS/MISS).

mod calls;
mod figures;
mod json_line;
mod measure;
mod probe;
mod report;
mod sandbox;
mod scenario;
mod table;
mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use report::Report;
use sandbox::Tuning;
use scenario::Params;

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
        })
    }

    fn params(&self, binary: &Path, n: usize, latency: Duration) -> Params {
        Params {
            binary: binary.to_path_buf(),
            n,
            latency,
            tuning: self.tuning.clone(),
            ticks_per_second: self.ticks_per_second,
        }
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

/// The burst (with decisions) and the catch-up at one N and latency, into `report`.
async fn run_point(plan: &Plan, params: &Params, what: &str, report: &mut Report) {
    if plan.burst {
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
                report.phases.push(burst);
                report.phases.extend(decisions);
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
