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
//! percentiles), [`report`] (table, JSON), [`targets`] (PASS/MISS).

mod calls;
mod measure;
mod probe;
mod report;
mod sandbox;
mod scenario;
mod targets;

use std::path::PathBuf;
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
    let (default_n, default_latency): (&[usize], &[u64]) = if cli.short {
        (&[50], &[0, 20])
    } else {
        (&[1000, 10_000], &[0, 100])
    };
    let ns = if cli.n.is_empty() {
        default_n.to_vec()
    } else {
        cli.n.clone()
    };
    let latencies = if cli.latency_ms.is_empty() {
        default_latency.to_vec()
    } else {
        cli.latency_ms.clone()
    };
    if ns.contains(&0) {
        bail!("--n must be at least 1");
    }
    let wants = |s: ScenarioArg| cli.scenarios.is_empty() || cli.scenarios.contains(&s);
    let decisions = wants(ScenarioArg::Decisions);
    let burst = wants(ScenarioArg::Burst) || decisions;
    let catch_up = wants(ScenarioArg::CatchUp);
    let tuning = Tuning {
        jira_concurrency: cli.jira_concurrency,
        workers: cli.workers,
        scan_interval: cli.scan_interval.clone(),
    };
    let ticks_per_second = measure::clock_ticks_per_second();

    let mut report = Report {
        mode: if cli.short { "short" } else { "full" },
        binary: cli.binary.clone(),
        binary_bytes,
        tuning: tuning.clone(),
        ticks_per_second,
        startups: Vec::new(),
        phases: Vec::new(),
        failures: Vec::new(),
        wall: Duration::ZERO,
    };
    eprintln!("running {STARTS} plugin starts on an empty cluster ...");
    let base = Params {
        binary: cli.binary.clone(),
        n: 0,
        latency: Duration::ZERO,
        tuning: tuning.clone(),
        ticks_per_second,
    };
    match scenario::startups(&base, STARTS).await {
        Ok(startups) => report.startups.extend(startups),
        Err(err) => report.failures.push(format!("start-up: {err:#}")),
    }
    for &n in &ns {
        for &latency_ms in &latencies {
            let params = Params {
                binary: cli.binary.clone(),
                n,
                latency: Duration::from_millis(latency_ms),
                tuning: tuning.clone(),
                ticks_per_second,
            };
            let what = format!("N={n}, Jira latency {latency_ms} ms");
            if burst {
                let name = if decisions {
                    "burst + decisions"
                } else {
                    "burst"
                };
                eprintln!("running {name}, {what} ...");
                let run = Instant::now();
                match scenario::burst_then_decisions(&params, decisions).await {
                    Ok((startup, burst, decisions)) => {
                        report.startups.push(startup);
                        report.phases.push(burst);
                        report.phases.extend(decisions);
                    }
                    Err(err) => report.failures.push(format!("{name}, {what}: {err:#}")),
                }
                eprintln!("  done in {:.1} s", run.elapsed().as_secs_f64());
            }
            if catch_up {
                eprintln!("running catch-up, {what} ...");
                let run = Instant::now();
                match scenario::catch_up(&params).await {
                    Ok(phase) => report.phases.push(phase),
                    Err(err) => report.failures.push(format!("catch-up, {what}: {err:#}")),
                }
                eprintln!("  done in {:.1} s", run.elapsed().as_secs_f64());
            }
        }
    }
    report.wall = started.elapsed();

    print!("{}", report.table());
    let line = report.json().to_string();
    println!("{line}");
    if let Some(path) = &cli.json_out {
        std::fs::write(path, format!("{line}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !report.failures.is_empty() {
        bail!("{} benchmark run(s) failed", report.failures.len());
    }
    Ok(())
}
