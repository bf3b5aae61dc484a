//! The report for machines: one JSON object with every figure, printed as the last line of stdout.
//! With `--against`, the other binary's report is under `against` (same shape) and the figures
//! side by side under `versus`, each with both values and the ratio ours / against.

use serde_json::{Value, json};

use crate::calls::JiraCalls;
use crate::figures::{all_calls, ms, over_ideal, over_limit_floor};
use crate::measure::Summary;
use crate::report::Report;
use crate::scenario::Phase;
use crate::targets;
use crate::versus::Row;

/// Ours, and with `--against` the other binary and the side-by-side rows.
pub fn render_all(ours: &Report, against: Option<(&Report, &[Row])>) -> Value {
    let mut json = render(ours);
    json["against"] = against.map_or(Value::Null, |(theirs, _)| render(theirs));
    json["versus"] = against.map_or(Value::Null, |(_, rows)| {
        rows.iter().map(row_json).collect::<Vec<_>>().into()
    });
    json
}

fn row_json(row: &Row) -> Value {
    json!({
        "figure": row.figure,
        "unit": row.unit,
        "ours": row.ours.value(),
        "against": row.theirs.value(),
        "ours_status": row.ours.status(),
        "against_status": row.theirs.status(),
        "ratio": row.ratio(),
        "higher_is_better": row.higher_is_better,
    })
}

/// Every figure, as one JSON object.
pub fn render(report: &Report) -> Value {
    let phases: Vec<Value> = report.phases.iter().map(phase_json).collect();
    let targets: Vec<Value> = targets::evaluate(report)
        .into_iter()
        .map(|t| {
            json!({
                "name": t.name,
                "goal": t.goal,
                "measured": t.measured,
                "value": t.value,
                "status": match t.pass { Some(true) => "PASS", Some(false) => "MISS", None => "n/a" },
            })
        })
        .collect();
    json!({
        "bench": "teleport-jira",
        "mode": report.mode,
        "column": report.column.name(),
        "binary": report.binary.display().to_string(),
        "binary_bytes": report.binary_bytes,
        "jira_max_concurrent_calls": report.tuning.effective_jira_concurrency(),
        "reconcile_workers": report.tuning.workers,
        "scan_interval": report.tuning.scan_interval,
        "clock_ticks_per_second": report.ticks_per_second,
        "ready_ms": report.ready_ms(),
        "status_ok_ms": report.startups.iter().map(|s| s.status_ok.map(ms)).collect::<Vec<_>>(),
        "idle_rss_kib": report.startups.iter().map(|s| s.idle_rss_kib).collect::<Vec<_>>(),
        "startup_cpu_secs": report.startups.iter().map(|s| s.cpu_secs).collect::<Vec<_>>(),
        "startup_jira_calls": report.startups.iter().map(|s| s.jira.total).collect::<Vec<_>>(),
        "startup_teleport_rpcs": report.startups.iter().map(|s| s.teleport.total()).collect::<Vec<_>>(),
        "phases": phases,
        "targets": targets,
        "failures": report.failures,
        "failed_runs": report.failed_runs,
        "not_run": report.not_run,
        "wall_secs": report.wall.as_secs_f64(),
    })
}

fn summary_json(summary: Option<Summary>) -> Value {
    summary.map_or(
        Value::Null,
        |s| json!({"count": s.count, "p50": s.p50, "p99": s.p99, "max": s.max, "mean": s.mean}),
    )
}

fn phase_json(phase: &Phase) -> Value {
    let calls = |c: &JiraCalls| json!({"total": c.total, "failed": c.failed, "rate_limited": c.rate_limited, "by_endpoint": c.by_endpoint});
    let mut json = json!({
        "scenario": phase.scenario.name(),
        "n": phase.n,
        "jira_latency_ms": ms(phase.latency),
        "concurrency": phase.concurrency,
        "secs": phase.elapsed.as_secs_f64(),
        "ideal_secs": phase.ideal().as_secs_f64(),
        "over_ideal": over_ideal(phase),
        "throughput_per_sec": phase.throughput(),
        "latency_ms": summary_json(phase.latency_ms),
        "jira_calls_per_request": phase.calls.per_request(phase.n),
        "jira_calls": calls(&phase.calls),
        "jira_calls_after": calls(&phase.tail_calls),
        "teleport_rpcs": phase.teleport.0,
        "teleport_rpcs_total": phase.teleport.total(),
        "plugin_cpu_secs": phase.plugin_cpu_secs,
        "plugin_cpu_ms_per_request": phase.plugin_cpu_ms_per_request(),
        "plugin_cpu_secs_per_1000": phase.plugin_cpu_ms_per_request(),
        "bench_cpu_secs": phase.bench_cpu_secs,
        "peak_rss_kib": phase.peak_rss_kib,
        "rss_after_kib": phase.rss_after_kib,
        "log_lines": phase.log.lines,
        "log_warnings": phase.log.warnings,
        "log_errors": phase.log.errors,
        "settled": phase.settled,
        "ready_ms": phase.ready.map(ms),
        "webhook_attempts": phase.webhooks.as_ref().map(|w| w.attempts),
        "webhook_failed": phase.webhooks.as_ref().map(|w| w.failed),
        "webhook_failures": phase.webhooks.as_ref().map(|w| &w.failures),
        "webhook_events": phase.webhooks.as_ref().map(|w| &w.events),
        "issued_ms": phase.issued_in.map(ms),
        "decisions_in_flight": phase.in_flight,
        "notable_log_lines": phase.notable,
    });
    json["push_back"] = push_back_json(phase);
    json["replicas"] = replicas_json(phase);
    json["exactly_once"] = exactly_once_json(phase);
    json
}

/// Jira's rate limit during the phase (`limit` null when there was none) and how the phase fared:
/// both windows' calls per request and the share answered 429.
fn push_back_json(phase: &Phase) -> Value {
    let all = all_calls(phase);
    json!({
        "limit_per_sec": phase.jira_limit.map(|l| l.per_second),
        "retry_after": phase.jira_limit.map(|l| l.retry_after),
        "over_n_per_r": over_limit_floor(phase),
        "jira_calls": all.total,
        "jira_calls_per_request": all.per_request(phase.n),
        "rate_limited": all.rate_limited,
        "rate_limited_share": all.rate_limited_share(),
    })
}

fn replicas_json(phase: &Phase) -> Value {
    let log = &phase.replica_log;
    json!({
        "processes": phase.replicas,
        "log_lines": log.lines,
        "log_warnings": log.warnings,
        "log_errors": log.errors,
    })
}

fn exactly_once_json(phase: &Phase) -> Value {
    let once = &phase.exactly_once;
    json!({
        "issues_created": once.issues_created,
        "duplicate_issues": once.duplicate_issues,
        "double_resolutions": once.double_resolutions,
        "breaches": once.breaches,
    })
}
