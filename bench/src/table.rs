//! The report for people: a header, one row per phase, the legend, the start-ups, the Jira calls
//! and Teleport RPCs behind each phase, and a PASS/MISS line per target.

use std::fmt::Write as _;

use crate::calls::{JiraCalls, ratio};
use crate::figures::{all_calls, conditions, label, mib, ms, over_ideal};
use crate::report::{Column, Report};
use crate::scenario::{Phase, Scenario, Startup};
use crate::targets;

/// What the columns mean.
const LEGEND: [&str; 11] = [
    "time: first request created (decisions: first card moved; catch-up: process spawned) to the",
    "  last milestone seen. req/s = N / time.",
    "p50/p99: burst = request created -> issue `created` stamped by FakeJira (ms precision);",
    "  decisions = card moved -> request approved in Teleport (audit log polled every 5 ms + 5 us",
    "  per entry); catch-up = process spawned -> issue `created`.",
    "ideal = Jira calls before the last milestone x latency / concurrency, at least one latency",
    "  (under a rate limit R, at least the admitted ones / R). Jira/r = those calls / N.",
    "CPU ms/r: plugin process only (utime+stime, read in 10 ms ticks), follow-up work included.",
    "peak/end MiB: plugin VmHWM / VmRSS after the phase. fakes s: harness CPU (fakes, polling).",
    "429%: Jira calls answered 429 by its rate limit / all Jira calls of the phase (both windows).",
    "  With replicas, CPU and memory are the first process's; Jira's webhook reaches it alone.",
];

/// The human-readable report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    header(&mut out, report);
    phase_rows(&mut out, report);
    for line in LEGEND {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Start-up on an empty cluster (Jira latency 0), spawn until idle:"
    );
    for startup in &report.startups {
        let _ = writeln!(out, "  {}", startup_line(startup));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Calls per request (before the last milestone | after it):"
    );
    for phase in &report.phases {
        phase_calls(&mut out, phase);
    }
    let _ = writeln!(out);
    target_lines(&mut out, report);
    out
}

fn header(out: &mut String, report: &Report) {
    let tuning = &report.tuning;
    let _ = writeln!(
        out,
        "teleport-jira benchmark ({} mode, {}, {:.1} s)",
        report.mode,
        report.column.name(),
        report.wall.as_secs_f64()
    );
    if report.column == Column::Against {
        let _ = writeln!(
            out,
            "binary {} ({:.1} MiB); the Go plugin's config keys only (ideal s assumes {} \
             concurrent Jira calls); CLK_TCK {}",
            report.binary.display(),
            report.binary_bytes as f64 / (1024.0 * 1024.0),
            tuning.effective_jira_concurrency(),
            report.ticks_per_second,
        );
        let _ = writeln!(out);
        return;
    }
    let _ = writeln!(
        out,
        "binary {} ({:.1} MiB); Jira max_concurrent_calls {}{}; reconcile workers {}; CLK_TCK {}",
        report.binary.display(),
        report.binary_bytes as f64 / (1024.0 * 1024.0),
        tuning.effective_jira_concurrency(),
        if tuning.jira_concurrency.is_some() {
            ""
        } else {
            " (default)"
        },
        tuning
            .workers
            .map_or_else(|| "256 (default)".to_owned(), |w| w.to_string()),
        report.ticks_per_second,
    );
    let _ = writeln!(out);
}

fn phase_rows(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "{:<10} {:>6} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>5} {:>8} {:>8} {:>8} {:>7}",
        "scenario",
        "N",
        "lat",
        "time s",
        "ideal s",
        "vs ideal",
        "req/s",
        "p50 ms",
        "p99 ms",
        "Jira/r",
        "429%",
        "CPU ms/r",
        "peak MiB",
        "end MiB",
        "fakes s"
    );
    for phase in &report.phases {
        let _ = writeln!(out, "{}", phase_row(phase));
    }
    for failure in &report.failures {
        let _ = writeln!(out, "FAILED: {failure}");
    }
    let _ = writeln!(out);
}

fn phase_row(phase: &Phase) -> String {
    let (p50, p99) = phase.latency_ms.map_or(("-".into(), "-".into()), |s| {
        (format!("{:.1}", s.p50), format!("{:.1}", s.p99))
    });
    format!(
        "{:<10} {:>6} {:>5} {:>9.3} {:>9.3} {:>8} {:>8.1} {:>8} {:>8} {:>6.2} {:>5.1} {:>8.3} {:>8.1} {:>8.1} {:>7.2}{}{}",
        phase.scenario.name(),
        phase.n,
        format!("{}ms", phase.latency.as_millis()),
        phase.elapsed.as_secs_f64(),
        phase.ideal().as_secs_f64(),
        over_ideal(phase).map_or_else(|| "-".into(), |o| format!("{:+.1}%", o * 100.0)),
        phase.throughput(),
        p50,
        p99,
        phase.calls.per_request(phase.n),
        all_calls(phase).rate_limited_share() * 100.0,
        phase.plugin_cpu_ms_per_request(),
        mib(phase.peak_rss_kib),
        mib(phase.rss_after_kib),
        phase.bench_cpu_secs,
        conditions(phase).replacen(", ", "  ", 1),
        if phase.settled {
            ""
        } else {
            "  (did not settle)"
        },
    )
}

fn startup_line(startup: &Startup) -> String {
    let jira: Vec<String> = startup
        .jira
        .by_endpoint
        .iter()
        .map(|(endpoint, count)| format!("{count}x {endpoint}"))
        .collect();
    let rpcs: Vec<String> = startup
        .teleport
        .0
        .iter()
        .map(|(method, count)| format!("{count}x {method}"))
        .collect();
    format!(
        "ready {:.1} ms (/status 200 {}, first log line {}), idle RSS {:.1} MiB, CPU {:.2} s; Jira: {}; Teleport: {}",
        ms(startup.ready),
        startup
            .status_ok
            .map_or_else(|| "never".to_owned(), |d| format!("{:.1} ms", ms(d))),
        startup
            .first_log
            .map_or_else(|| "-".to_owned(), |d| format!("{:.1} ms", ms(d))),
        mib(startup.idle_rss_kib),
        startup.cpu_secs,
        jira.join(", "),
        rpcs.join(", ")
    )
}

/// One phase's summary line, then its calls per endpoint, RPCs, webhooks and notable log lines.
fn phase_calls(out: &mut String, phase: &Phase) {
    let _ = writeln!(out, "  {}", phase_calls_summary(phase));
    for (endpoint, before, after) in merge(&phase.calls, &phase.tail_calls) {
        let _ = writeln!(
            out,
            "      {:>6.2} | {:>5.2}  {endpoint}",
            ratio(before, phase.n),
            ratio(after, phase.n)
        );
    }
    let rpcs: Vec<String> = phase
        .teleport
        .0
        .iter()
        .map(|(method, count)| format!("{method} {:.2}", ratio(*count, phase.n)))
        .collect();
    let _ = writeln!(out, "      Teleport RPCs: {}", rpcs.join(", "));
    if let Some(webhooks) = &phase.webhooks {
        let events: Vec<String> = webhooks
            .events
            .iter()
            .map(|(event, count)| format!("{event} {:.2}", ratio(*count, phase.n)))
            .collect();
        let _ = writeln!(out, "      webhooks/request: {}", events.join(", "));
    }
    for line in &phase.notable {
        let shown: String = line.chars().take(240).collect();
        let _ = writeln!(out, "      log: {shown}");
    }
}

fn phase_calls_summary(phase: &Phase) -> String {
    let all = all_calls(phase);
    let non_2xx = match (all.failed, all.rate_limited) {
        (0, _) => String::new(),
        (failed, 0) => format!(" ({failed} non-2xx)"),
        (failed, refused) => format!(
            " ({failed} non-2xx, {refused} of {} answered 429)",
            all.total
        ),
    };
    let webhooks = phase.webhooks.as_ref().map_or_else(String::new, |w| {
        let failures: String = w
            .failures
            .iter()
            .map(|(why, count)| format!(": {count}x {why}"))
            .collect();
        format!(
            "; webhook attempts {} ({} failed{failures})",
            w.attempts, w.failed
        )
    });
    let ready = phase
        .ready
        .map_or_else(String::new, |r| format!("; ready after {:.1} ms", ms(r)));
    let issued = phase.issued_in.map_or_else(String::new, |d| {
        let what = if phase.scenario == Scenario::Decisions {
            "moves"
        } else {
            "requests"
        };
        format!("; all {what} issued in {:.1} ms", ms(d))
    });
    format!(
        "{}: Jira {:.2} | {:.2}{non_2xx}; log lines {} (warn {}, error {}){}{webhooks}{ready}{issued}{}",
        label(phase),
        phase.calls.per_request(phase.n),
        phase.tail_calls.per_request(phase.n),
        phase.log.lines,
        phase.log.warnings,
        phase.log.errors,
        replica_log(phase),
        exactly_once(phase),
    )
}

/// `; replicas' log lines 12 (warn 3, error 0)` when replicas ran.
fn replica_log(phase: &Phase) -> String {
    if phase.replicas < 2 {
        return String::new();
    }
    let log = &phase.replica_log;
    format!(
        "; replicas' log lines {} (warn {}, error {})",
        log.lines, log.warnings, log.errors
    )
}

/// `; issues created 1000 (0 duplicates)` after a burst, `; double resolutions 0` after decisions.
fn exactly_once(phase: &Phase) -> String {
    let once = &phase.exactly_once;
    match (phase.scenario, once.issues_created) {
        (_, Some(created)) => format!(
            "; issues created {created} ({} duplicates)",
            once.duplicate_issues
        ),
        (Scenario::Decisions, None) => {
            format!("; double resolutions {}", once.double_resolutions)
        }
        _ => String::new(),
    }
}

fn target_lines(out: &mut String, report: &Report) {
    let _ = writeln!(out, "Targets (reported, not asserted):");
    for target in targets::evaluate(report) {
        let verdict = match target.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a ",
        };
        let _ = writeln!(
            out,
            "  {verdict}  {:<28} {:<28} {}",
            target.name, target.goal, target.measured
        );
    }
}

/// Endpoints of both windows, with their counts in each, busiest first.
fn merge(before: &JiraCalls, after: &JiraCalls) -> Vec<(String, usize, usize)> {
    let mut rows: Vec<(String, usize, usize)> = before
        .by_endpoint
        .iter()
        .map(|(e, c)| {
            (
                e.clone(),
                *c,
                after.by_endpoint.get(e).copied().unwrap_or(0),
            )
        })
        .collect();
    for (endpoint, count) in &after.by_endpoint {
        if !before.by_endpoint.contains_key(endpoint) {
            rows.push((endpoint.clone(), 0, *count));
        }
    }
    rows.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then_with(|| a.0.cmp(&b.0)));
    rows
}
