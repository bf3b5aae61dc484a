//! The runs of one invocation, into one [`Report`] per binary: at each point, ours first, then the
//! `--against` binary, each on fresh fakes, so both columns meet the machine in the same state.
//! A failed run is recorded in its binary's report and the next run goes on.

use std::time::{Duration, Instant};

use crate::figures::{self, run_key};
use crate::plan::Plan;
use crate::report::Report;
use crate::scenario::{self, Phase, Scenario};

/// Dedicated plugin starts per binary (each burst run adds one more).
pub const STARTS: usize = 3;

/// The run key of the dedicated starts.
pub const STARTUP_KEY: &str = "start-up";

/// `STARTS` starts on an empty cluster, for each binary.
pub async fn startups(plan: &Plan, reports: &mut [Report]) {
    for report in reports {
        eprintln!(
            "running {STARTS} plugin starts on an empty cluster ({}) ...",
            report.column.name()
        );
        let base = plan.params(report.column, 0, Duration::ZERO);
        match scenario::startups(&base, STARTS).await {
            Ok(startups) => report.startups.extend(startups),
            Err(err) => report.fail(STARTUP_KEY.to_owned(), format!("start-up: {err:#}")),
        }
    }
}

/// The burst (with decisions) and the catch-up at one N and latency, for each binary.
pub async fn point(plan: &Plan, n: usize, latency_ms: u64, reports: &mut [Report]) {
    let latency = Duration::from_millis(latency_ms);
    let what = format!("N={n}, Jira latency {latency_ms} ms");
    if plan.burst {
        for report in reports.iter_mut() {
            if plan.runs_burst(report.column) {
                burst(plan, n, latency, &what, report).await;
            } else {
                report.not_run.push(run_key("burst", n, latency));
                report.not_run.push(run_key("decisions", n, latency));
            }
        }
    }
    if plan.catch_up {
        for report in reports.iter_mut() {
            let column = report.column.name();
            eprintln!("running catch-up, {what} ({column}) ...");
            let run = Instant::now();
            let params = plan.params(report.column, n, latency);
            match scenario::catch_up(&params).await {
                Ok(phase) => report.phases.push(phase),
                Err(err) => report.fail(
                    run_key("catch-up", n, latency),
                    format!("catch-up, {what}: {err:#}"),
                ),
            }
            eprintln!("  done in {:.1} s", run.elapsed().as_secs_f64());
        }
    }
}

/// The burst, then (if asked) the decisions, of one binary.
async fn burst(plan: &Plan, n: usize, latency: Duration, what: &str, report: &mut Report) {
    let what = format!("{what}{}", plan.conditions(report.column));
    let name = if plan.decisions {
        "burst + decisions"
    } else {
        "burst"
    };
    eprintln!("running {name}, {what} ({}) ...", report.column.name());
    let run = Instant::now();
    let params = plan.params(report.column, n, latency);
    let decisions_key = run_key(Scenario::Decisions.name(), n, latency);
    match scenario::burst_then_decisions(&params, plan.decisions).await {
        Ok((startup, burst, decisions)) => {
            report.startups.push(startup);
            let decisions = match decisions {
                Some(Err(err)) => {
                    report.fail(decisions_key, format!("decisions, {what}: {err:#}"));
                    None
                }
                other => other.and_then(Result::ok),
            };
            for phase in std::iter::once(burst).chain(decisions) {
                record_breaches(&phase, report);
                report.phases.push(phase);
            }
        }
        Err(err) => {
            report.fail(
                run_key(Scenario::Burst.name(), n, latency),
                format!("{name}, {what}: {err:#}"),
            );
            if plan.decisions {
                report.failed_runs.push(decisions_key);
            }
        }
    }
    eprintln!("  done in {:.1} s", run.elapsed().as_secs_f64());
}

/// A duplicate issue or a second resolution fails the run, whatever the figures.
fn record_breaches(phase: &Phase, report: &mut Report) {
    for breach in &phase.exactly_once.breaches {
        let failure = format!("{}: {breach}", figures::label(phase));
        eprintln!("  FAILED ({}): {failure}", report.column.name());
        report.fail(figures::phase_key(phase), failure);
    }
}
