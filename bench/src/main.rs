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
//! # side by side with another binary (the Go plugin), decisions kept 16 in flight
//! target/release/teleport-jira-bench --n 1000 --latency-ms 100 --decisions-in-flight 16 --against PATH
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
//! `--against PATH` runs every scenario (the start-ups, burst, decisions, catch-up) for the main
//! binary and then for PATH at each point, each run on fresh fakes, in one invocation. PATH gets
//! the same command line (`start --insecure-no-tls --config FILE`, which the Go plugin takes too)
//! and a config of the Go plugin's keys only: the tuning flags apply to the main binary alone,
//! and with `--replicas` the burst and decisions run for the main binary only (n/a for PATH).
//! Both binaries meet the same Jira, rate limit included. Each binary's table is printed, then
//! both side by side with the ratio ours / PATH for each figure (start to the first 200 from
//! `/status`, idle RSS, the burst's time, CPU per mirrored request, decision p50, decisions per
//! second, CPU per decision, peak RSS), and the JSON line carries PATH's report under `against`
//! and the rows under `versus`. A run PATH fails (e.g. a timeout; the Go plugin never mirrors
//! requests created while it was down) is recorded in its column with its log tail; the exit code
//! reflects the main binary's runs only. Readiness is "Plugin is ready" on stderr for both (the
//! Go plugin logs the same line); start-up is also timed to the first 200 from `GET /status` on
//! the webhook listener, polled every 2 ms over plain HTTP from spawn. `--decisions-in-flight K`
//! keeps K card moves awaiting approval instead of moving all N at once ([`moves`]). A wait for
//! milestones also gives up after a minute without progress ([`patience`]).
//!
//! Modules: [`sandbox`] (fakes, files), [`plugin`] (the child process), [`plugin_log`] (its
//! stderr), [`status_probe`] (its `/status`), [`fleet`] (the plugin and its replicas),
//! [`jira_limit`] (Jira's rate limit), [`plan`] (what runs, per binary), [`runs`] (the runs of
//! an invocation), [`scenario`] (one run), [`moves`] (the decisions' card moves), [`probe`]
//! (polling the fakes), [`patience`] (when a wait gives up), [`calls`] (Jira and Teleport call
//! tallies), [`exactly_once`] (no duplicate issue or resolution), [`measure`] (`/proc`,
//! percentiles), [`report`] (what was measured), [`figures`] (units and derived figures),
//! [`table`] (for people), [`versus`] and [`versus_table`] (two binaries side by side),
//! [`json_line`] (for machines), [`targets`] (PASS/MISS), [`webhooks`] (Jira's deliveries).

mod calls;
mod exactly_once;
mod figures;
#[cfg(test)]
mod fixtures;
mod fleet;
mod jira_limit;
mod json_line;
mod measure;
mod moves;
mod patience;
mod plan;
mod plugin;
mod plugin_log;
mod probe;
mod report;
mod runs;
mod sandbox;
mod scenario;
mod status_probe;
mod table;
mod targets;
mod versus;
mod versus_table;
mod webhooks;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use jira_limit::JiraLimit;
use plan::Plan;
use report::{Column, Report};
use sandbox::Tuning;

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

    /// Written as `[jira] max_concurrent_calls` (the plugin's default, 256, otherwise).
    #[arg(long)]
    jira_concurrency: Option<usize>,

    /// Written as `[reconcile] workers` (the plugin's default, 256, otherwise).
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

    /// Decisions: keep K card moves awaiting approval (one more moved as each is approved)
    /// instead of moving all N at once.
    #[arg(long, value_name = "K")]
    decisions_in_flight: Option<usize>,

    /// Also run every scenario for this binary (e.g. the Go plugin), with the Go plugin's config
    /// keys only, and print both columns side by side with the ratio ours / PATH.
    #[arg(long, value_name = "PATH")]
    against: Option<PathBuf>,

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

/// The plan of `cli`, with the defaults of its mode filled in.
fn plan(cli: &Cli) -> Result<Plan> {
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
    if cli.decisions_in_flight == Some(0) {
        bail!("--decisions-in-flight must be at least 1");
    }
    let wants = |s: ScenarioArg| cli.scenarios.is_empty() || cli.scenarios.contains(&s);
    let decisions = wants(ScenarioArg::Decisions);
    Ok(Plan {
        ns,
        latencies_ms: given_or(&cli.latency_ms, default_latency),
        // Decisions act on the burst's issues.
        burst: wants(ScenarioArg::Burst) || decisions,
        decisions,
        catch_up: wants(ScenarioArg::CatchUp),
        binary: cli.binary.clone(),
        against: cli.against.clone(),
        tuning: Tuning {
            jira_concurrency: cli.jira_concurrency,
            workers: cli.workers,
            scan_interval: cli.scan_interval.clone(),
        },
        ticks_per_second: measure::clock_ticks_per_second(),
        jira_limit: jira_limit(cli)?,
        replicas: cli.replicas,
        in_flight: cli.decisions_in_flight,
    })
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
    let plan = plan(&cli)?;
    let mut reports = Vec::new();
    for column in plan.columns() {
        let binary = plan.binary(column);
        let bytes = std::fs::metadata(&binary)
            .with_context(|| match column {
                Column::Ours => format!(
                    "cannot read {} (build it with `cargo build --release -p teleport-jira`)",
                    binary.display()
                ),
                Column::Against => format!("cannot read --against {}", binary.display()),
            })?
            .len();
        let tuning = plan.params(column, 0, Duration::ZERO).tuning;
        let mode = if cli.short { "short" } else { "full" };
        let ticks = plan.ticks_per_second;
        reports.push(Report::new(mode, column, binary, bytes, tuning, ticks));
    }
    runs::startups(&plan, &mut reports).await;
    for &n in &plan.ns {
        for &latency_ms in &plan.latencies_ms {
            runs::point(&plan, n, latency_ms, &mut reports).await;
        }
    }
    for report in &mut reports {
        report.wall = started.elapsed();
    }
    publish(&plan, &reports, cli.json_out.as_deref())
}

/// Prints each binary's table, the side-by-side table and the JSON line (also to `json_out`);
/// fails when a run of ours failed (the other binary's failures are findings, not errors).
fn publish(plan: &Plan, reports: &[Report], json_out: Option<&Path>) -> Result<()> {
    let [ours, rest @ ..] = reports else {
        bail!("no report");
    };
    for report in reports {
        print!("{}", table::render(report));
    }
    let against = rest
        .first()
        .map(|theirs| (theirs, versus::rows(plan, ours, theirs)));
    if let Some((theirs, rows)) = &against {
        print!("{}", versus_table::render(ours, theirs, rows));
    }
    let both = against
        .as_ref()
        .map(|(theirs, rows)| (*theirs, rows.as_slice()));
    let line = json_line::render_all(ours, both).to_string();
    println!("{line}");
    if let Some(path) = json_out {
        std::fs::write(path, format!("{line}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !ours.failures.is_empty() {
        bail!("{} benchmark run(s) of ours failed", ours.failures.len());
    }
    Ok(())
}
