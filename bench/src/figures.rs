//! Figures derived from measurements, shared by the table, the JSON line and the targets: units,
//! a phase's label and how far a phase stayed from its ideal time.

use std::time::Duration;

use crate::scenario::Phase;

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `burst N=1000 100 ms`: how the report names a phase.
pub fn label(phase: &Phase) -> String {
    format!(
        "{} N={} {} ms",
        phase.scenario.name(),
        phase.n,
        phase.latency.as_millis()
    )
}

/// `elapsed / ideal - 1`, or `None` when there is no latency to compare with.
pub fn over_ideal(phase: &Phase) -> Option<f64> {
    let ideal = phase.ideal().as_secs_f64();
    (ideal > 0.0).then(|| phase.elapsed.as_secs_f64() / ideal - 1.0)
}
