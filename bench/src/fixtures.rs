//! Test fixtures: a phase and a report with the figures a test sets and plain values elsewhere.

use std::path::PathBuf;
use std::time::Duration;

use crate::calls::{JiraCalls, TeleportRpcs};
use crate::exactly_once::ExactlyOnce;
use crate::plugin_log::LogCounts;
use crate::report::{Column, Report};
use crate::sandbox::Tuning;
use crate::scenario::{Phase, Scenario, Startup};

/// A phase of `n` requests at `latency_ms` that took `secs` and `calls` Jira calls.
pub fn phase(scenario: Scenario, n: usize, latency_ms: u64, secs: f64, calls: usize) -> Phase {
    Phase {
        scenario,
        n,
        latency: Duration::from_millis(latency_ms),
        concurrency: 16,
        elapsed: Duration::from_secs_f64(secs),
        latency_ms: None,
        calls: JiraCalls {
            total: calls,
            ..JiraCalls::default()
        },
        tail_calls: JiraCalls::default(),
        teleport: TeleportRpcs::default(),
        plugin_cpu_secs: 0.5,
        bench_cpu_secs: 0.0,
        peak_rss_kib: 70 * 1024,
        rss_after_kib: 0,
        log: LogCounts::default(),
        notable: Vec::new(),
        settled: true,
        ready: None,
        issued_in: None,
        webhooks: None,
        jira_limit: None,
        replicas: 1,
        in_flight: None,
        replica_log: LogCounts::default(),
        exactly_once: ExactlyOnce::default(),
    }
}

/// A report of ours with `phases` and one start per entry of `ready_ms`.
pub fn report(phases: Vec<Phase>, ready_ms: &[u64]) -> Report {
    Report {
        mode: "test",
        column: Column::Ours,
        binary: PathBuf::from("teleport-jira"),
        binary_bytes: 0,
        tuning: Tuning::default(),
        ticks_per_second: 100.0,
        startups: ready_ms
            .iter()
            .map(|ms| Startup {
                ready: Duration::from_millis(*ms),
                status_ok: None,
                first_log: None,
                idle_rss_kib: 12 * 1024,
                cpu_secs: 0.0,
                jira: JiraCalls::default(),
                teleport: TeleportRpcs::default(),
            })
            .collect(),
        phases,
        failures: Vec::new(),
        failed_runs: Vec::new(),
        not_run: Vec::new(),
        wall: Duration::ZERO,
    }
}
