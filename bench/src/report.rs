//! The results: a table for people, the Jira calls and Teleport RPCs behind each phase, a
//! PASS/MISS line per target (see [`crate::targets`]), and one JSON line with every figure for
//! machines.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::calls::{JiraCalls, ratio};
use crate::measure::Summary;
use crate::sandbox::Tuning;
use crate::scenario::{Phase, Scenario, Startup};
use crate::targets;

/// Everything one invocation measured.
#[derive(Debug)]
pub struct Report {
    pub mode: &'static str,
    pub binary: PathBuf,
    pub binary_bytes: u64,
    pub tuning: Tuning,
    pub ticks_per_second: f64,
    /// Plugin starts on an empty cluster with Jira latency 0.
    pub startups: Vec<Startup>,
    pub phases: Vec<Phase>,
    /// Runs that failed, with their error.
    pub failures: Vec<String>,
    pub wall: Duration,
}

/// What the columns mean.
const LEGEND: [&str; 8] = [
    "time: first request created (decisions: first card moved; catch-up: process spawned) to the",
    "  last milestone seen. req/s = N / time.",
    "p50/p99: burst = request created -> issue `created` stamped by FakeJira (ms precision);",
    "  decisions = card moved -> request approved in Teleport (audit log polled every 5 ms + 5 us",
    "  per entry); catch-up = process spawned -> issue `created`.",
    "ideal = Jira calls before the last milestone x latency / concurrency. Jira/r = those calls / N.",
    "CPU ms/r: plugin process only (utime+stime, read in 10 ms ticks), follow-up work included.",
    "peak/end MiB: plugin VmHWM / VmRSS after the phase. fakes s: harness CPU (fakes, polling).",
];

pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

pub(crate) fn label(phase: &Phase) -> String {
    format!(
        "{} N={} {} ms",
        phase.scenario.name(),
        phase.n,
        phase.latency.as_millis()
    )
}

/// `elapsed / ideal - 1`, or `None` when there is no latency to compare with.
pub(crate) fn over_ideal(phase: &Phase) -> Option<f64> {
    let ideal = phase.ideal().as_secs_f64();
    (ideal > 0.0).then(|| phase.elapsed.as_secs_f64() / ideal - 1.0)
}

impl Report {
    pub(crate) fn ready_ms(&self) -> Vec<f64> {
        self.startups.iter().map(|s| ms(s.ready)).collect()
    }

    /// The human-readable report.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let concurrency = self.tuning.effective_jira_concurrency();
        let _ = writeln!(
            out,
            "teleport-jira benchmark ({} mode, {:.1} s)",
            self.mode,
            self.wall.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "binary {} ({:.1} MiB); Jira max_concurrent_calls {concurrency}{}; reconcile workers {}; CLK_TCK {}",
            self.binary.display(),
            self.binary_bytes as f64 / (1024.0 * 1024.0),
            if self.tuning.jira_concurrency.is_some() {
                ""
            } else {
                " (default)"
            },
            self.tuning
                .workers
                .map_or_else(|| "64 (default)".to_owned(), |w| w.to_string()),
            self.ticks_per_second,
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<10} {:>6} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8} {:>8} {:>7}",
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
            "CPU ms/r",
            "peak MiB",
            "end MiB",
            "fakes s"
        );
        for phase in &self.phases {
            let (p50, p99) = phase.latency_ms.map_or(("-".into(), "-".into()), |s| {
                (format!("{:.1}", s.p50), format!("{:.1}", s.p99))
            });
            let _ = writeln!(
                out,
                "{:<10} {:>6} {:>5} {:>9.3} {:>9.3} {:>8} {:>8.1} {:>8} {:>8} {:>6.2} {:>8.3} {:>8.1} {:>8.1} {:>7.2}{}",
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
                phase.plugin_cpu_ms_per_request(),
                mib(phase.peak_rss_kib),
                mib(phase.rss_after_kib),
                phase.bench_cpu_secs,
                if phase.settled {
                    ""
                } else {
                    "  (did not settle)"
                },
            );
        }
        for failure in &self.failures {
            let _ = writeln!(out, "FAILED: {failure}");
        }
        let _ = writeln!(out);
        for line in LEGEND {
            let _ = writeln!(out, "{line}");
        }

        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Start-up on an empty cluster (Jira latency 0), spawn until idle:"
        );
        for startup in &self.startups {
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
            let _ = writeln!(
                out,
                "  ready {:.1} ms (first log line {}), idle RSS {:.1} MiB, CPU {:.2} s; Jira: {}; Teleport: {}",
                ms(startup.ready),
                startup
                    .first_log
                    .map_or_else(|| "-".to_owned(), |d| format!("{:.1} ms", ms(d))),
                mib(startup.idle_rss_kib),
                startup.cpu_secs,
                jira.join(", "),
                rpcs.join(", ")
            );
        }

        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Calls per request (before the last milestone | after it):"
        );
        for phase in &self.phases {
            let _ = writeln!(
                out,
                "  {}: Jira {:.2} | {:.2}{}; log lines {} (warn {}, error {}){}{}{}",
                label(phase),
                phase.calls.per_request(phase.n),
                phase.tail_calls.per_request(phase.n),
                if phase.calls.failed + phase.tail_calls.failed > 0 {
                    format!(
                        " ({} non-2xx)",
                        phase.calls.failed + phase.tail_calls.failed
                    )
                } else {
                    String::new()
                },
                phase.log.lines,
                phase.log.warnings,
                phase.log.errors,
                phase
                    .webhooks
                    .as_ref()
                    .map_or_else(String::new, |w| format!(
                        "; webhook attempts {} ({} failed{})",
                        w.attempts,
                        w.failed,
                        w.failures
                            .iter()
                            .map(|(why, count)| format!(": {count}x {why}"))
                            .collect::<String>()
                    )),
                phase
                    .ready
                    .map_or_else(String::new, |r| format!("; ready after {:.1} ms", ms(r))),
                phase.issued_in.map_or_else(String::new, |d| format!(
                    "; all {} issued in {:.1} ms",
                    if phase.scenario == Scenario::Decisions {
                        "moves"
                    } else {
                        "requests"
                    },
                    ms(d)
                )),
            );
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
                let _ = writeln!(
                    out,
                    "      log: {}",
                    line.chars().take(240).collect::<String>()
                );
            }
        }

        let _ = writeln!(out);
        let _ = writeln!(out, "Targets (reported, not asserted):");
        for target in targets::evaluate(self) {
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
        out
    }

    /// Every figure, as one JSON object.
    pub fn json(&self) -> Value {
        let phases: Vec<Value> = self.phases.iter().map(phase_json).collect();
        let targets: Vec<Value> = targets::evaluate(self)
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
            "mode": self.mode,
            "binary": self.binary.display().to_string(),
            "binary_bytes": self.binary_bytes,
            "jira_max_concurrent_calls": self.tuning.effective_jira_concurrency(),
            "reconcile_workers": self.tuning.workers,
            "scan_interval": self.tuning.scan_interval,
            "clock_ticks_per_second": self.ticks_per_second,
            "ready_ms": self.ready_ms(),
            "idle_rss_kib": self.startups.iter().map(|s| s.idle_rss_kib).collect::<Vec<_>>(),
            "startup_cpu_secs": self.startups.iter().map(|s| s.cpu_secs).collect::<Vec<_>>(),
            "startup_jira_calls": self.startups.iter().map(|s| s.jira.total).collect::<Vec<_>>(),
            "startup_teleport_rpcs": self.startups.iter().map(|s| s.teleport.total()).collect::<Vec<_>>(),
            "phases": phases,
            "targets": targets,
            "failures": self.failures,
            "wall_secs": self.wall.as_secs_f64(),
        })
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

fn summary_json(summary: Option<Summary>) -> Value {
    summary.map_or(
        Value::Null,
        |s| json!({"count": s.count, "p50": s.p50, "p99": s.p99, "max": s.max, "mean": s.mean}),
    )
}

fn phase_json(phase: &Phase) -> Value {
    let calls =
        |c: &JiraCalls| json!({"total": c.total, "failed": c.failed, "by_endpoint": c.by_endpoint});
    json!({
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
        "notable_log_lines": phase.notable,
    })
}
