//! Judging another process's lease on this process's own clock, as Kubernetes leader election
//! does: replicas' wall clocks may disagree by more than a lease's time-to-live, so the `since`
//! a holder writes is never compared with this process's time. A lease may be taken over once
//! this process has seen it unchanged (neither renewed nor released) for a full time-to-live on
//! its monotonic clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::lock::lock;
use crate::plugin_data::Lease;

/// When this process first saw each foreign lease, by request.
#[derive(Default)]
pub struct LeaseSightings {
    seen: Mutex<HashMap<String, (Lease, Instant)>>,
}

impl LeaseSightings {
    /// Whether `lease` on request `id` has been seen unchanged for at least `ttl`; a lease seen
    /// for the first time, or renewed since, starts the count again.
    pub fn unchanged_for(&self, id: &str, lease: &Lease, ttl: Duration) -> bool {
        let mut seen = lock(&self.seen);
        let sighting = seen
            .entry(id.to_owned())
            .or_insert_with(|| (lease.clone(), Instant::now()));
        if sighting.0 != *lease {
            *sighting = (lease.clone(), Instant::now());
        }
        sighting.1.elapsed() >= ttl
    }

    /// Forgets request `id`: no foreign lease on it any more.
    pub fn forget(&self, id: &str) {
        lock(&self.seen).remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(since: i64) -> Lease {
        Lease {
            owner: "other".into(),
            since,
            after_issue: None,
        }
    }

    #[test]
    fn a_lease_is_stale_only_after_a_full_ttl_unchanged_whatever_its_timestamp_says() {
        let sightings = LeaseSightings::default();
        let ttl = Duration::from_millis(50);
        // Written by a replica whose clock is far behind: its `since` means nothing here.
        assert!(!sightings.unchanged_for("r", &lease(1), ttl));
        std::thread::sleep(ttl);
        assert!(sightings.unchanged_for("r", &lease(1), ttl));
        // Renewed: the count starts again.
        assert!(!sightings.unchanged_for("r", &lease(2), ttl));
    }
}
