//! Figures derived from measurements, shared by the table, the JSON line and the targets: units,
//! a phase's label, how far a phase stayed from its ideal time and how it fared under Jira's
//! rate limit.

use std::time::Duration;

use crate::calls::JiraCalls;
use crate::scenario::Phase;

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `burst N=1000 100 ms`: how the report names a phase, with `, Jira 50/s` (and
/// `, no Retry-After`) under a rate limit, `, 2 replicas` when more than one process ran it and
/// `, 16 in flight` for decisions that kept 16 moves in flight.
pub fn label(phase: &Phase) -> String {
    format!("{}{}", phase_key(phase), conditions(phase))
}

/// The phase's [`run_key`].
pub fn phase_key(phase: &Phase) -> String {
    run_key(phase.scenario.name(), phase.n, phase.latency)
}

/// `, Jira 50/s, 2 replicas`: what set the phase apart beyond N and latency ("" when nothing).
pub fn conditions(phase: &Phase) -> String {
    let mut out = String::new();
    if let Some(window) = phase.in_flight {
        out.push_str(&format!(", {window} in flight"));
    }
    if let Some(limit) = &phase.jira_limit {
        out.push_str(&format!(", Jira {}", limit.describe()));
    }
    if phase.replicas > 1 {
        out.push_str(&format!(", {} replicas", phase.replicas));
    }
    out
}

/// `elapsed / ideal - 1`, or `None` when there is no latency to compare with.
pub fn over_ideal(phase: &Phase) -> Option<f64> {
    let ideal = phase.ideal().as_secs_f64();
    (ideal > 0.0).then(|| phase.elapsed.as_secs_f64() / ideal - 1.0)
}

/// A phase's Jira calls, before and after its last milestone together.
pub fn all_calls(phase: &Phase) -> JiraCalls {
    phase.calls.plus(&phase.tail_calls)
}

/// Under a rate limit: `elapsed / (N / R)`, how many times the fastest the limit allows.
pub fn over_limit_floor(phase: &Phase) -> Option<f64> {
    let floor = phase.jira_limit?.floor_secs(phase.n);
    (floor > 0.0).then(|| phase.elapsed.as_secs_f64() / floor)
}

/// `burst N=1000 100 ms`: a run's scenario at one point, without its conditions (the key by
/// which the side-by-side table matches the two binaries' runs and failures).
pub fn run_key(scenario: &str, n: usize, latency: Duration) -> String {
    format!("{scenario} N={n} {} ms", latency.as_millis())
}
