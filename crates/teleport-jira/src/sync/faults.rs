//! Faults injected on purpose, in debug builds only, so tests can prove the plugin survives its
//! own bugs. Release builds compile this to nothing.

/// Makes the next steps panic, as many as `TELEPORT_JIRA_FAULT_STEP_PANICS` says (read once).
#[cfg(debug_assertions)]
pub fn before_step(request_id: &str) {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LEFT: std::sync::OnceLock<AtomicI64> = std::sync::OnceLock::new();
    let left = LEFT.get_or_init(|| {
        let count = std::env::var("TELEPORT_JIRA_FAULT_STEP_PANICS")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        AtomicI64::new(count)
    });
    if left.fetch_sub(1, Ordering::AcqRel) > 0 {
        panic!("fault injected into the step for {request_id}");
    }
}

#[cfg(not(debug_assertions))]
pub fn before_step(_request_id: &str) {}
