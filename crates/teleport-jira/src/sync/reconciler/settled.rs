//! Resolved requests whose issue was seen in its final state: nothing is left to do for them, so
//! their steps end before reading anything.
//!
//! A step may only settle what it saw: if something happens to the issue after the step began
//! (a webhook unsettles the request while the step runs), what the step read may be stale, so its
//! settle is ignored and the rerun the webhook asked for looks at the issue again.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::lock::lock;

/// Resolved requests remembered as done; past this many the memory is cleared and refilled.
const MAX_SETTLED: usize = 50_000;

#[derive(Default)]
pub(super) struct Settled(Mutex<Sets>);

#[derive(Default)]
struct Sets {
    settled: HashSet<String>,
    /// Requests whose running step began after the last unsettle: only they may be settled.
    /// At most one entry per running step.
    looking: HashSet<String>,
}

impl Settled {
    /// A step for `id` begins: `None` when the request is settled and the step has nothing to
    /// do; otherwise the step's watch, which a later [`Settled::remove`] voids.
    pub(super) fn begin<'a>(&'a self, id: &'a str) -> Option<Looking<'a>> {
        let mut sets = lock(&self.0);
        if sets.settled.contains(id) {
            return None;
        }
        sets.looking.insert(id.to_owned());
        Some(Looking { settled: self, id })
    }

    /// Something happened to the issue: the request is looked at again, and a step already
    /// running may not settle it on what it read before.
    pub(super) fn remove(&self, id: &str) {
        let mut sets = lock(&self.0);
        sets.settled.remove(id);
        sets.looking.remove(id);
    }

    /// Whether nothing happened to the issue of `id` since its running step began: only then
    /// may the step leave a hint drawn from what it read.
    pub(super) fn undisturbed(&self, id: &str) -> bool {
        lock(&self.0).looking.contains(id)
    }

    /// The running step saw the issue in its final state: settles `id` unless the request was
    /// unsettled since the step began.
    pub(super) fn insert(&self, id: &str) {
        let mut sets = lock(&self.0);
        if !sets.looking.contains(id) {
            return;
        }
        // Forgetting is safe (a forgotten request is only checked again), so the set stays bounded.
        if sets.settled.len() >= MAX_SETTLED {
            sets.settled.clear();
        }
        sets.settled.insert(id.to_owned());
    }

    #[cfg(test)]
    fn contains(&self, id: &str) -> bool {
        lock(&self.0).settled.contains(id)
    }
}

/// A running step's watch on its request; ends with the step, however it ends.
pub(super) struct Looking<'a> {
    settled: &'a Settled,
    id: &'a str,
}

impl Drop for Looking<'_> {
    fn drop(&mut self) {
        lock(&self.settled.0).looking.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_settles_what_it_saw_and_later_steps_end_at_once() {
        let settled = Settled::default();
        {
            let _looking = settled.begin("r1");
            assert!(settled.undisturbed("r1"));
            settled.insert("r1");
        }
        assert!(settled.contains("r1"));
        assert!(settled.begin("r1").is_none());
    }

    #[test]
    fn an_unsettle_while_a_step_runs_voids_that_steps_settle() {
        let settled = Settled::default();
        let looking = settled.begin("r1");
        assert!(looking.is_some());
        // A webhook: the card moved after the step read it.
        settled.remove("r1");
        assert!(!settled.undisturbed("r1"));
        settled.insert("r1");
        drop(looking);
        assert!(!settled.contains("r1"));
        assert!(settled.begin("r1").is_some(), "the rerun looks again");
    }

    #[test]
    fn a_settle_outside_a_running_step_is_ignored() {
        let settled = Settled::default();
        drop(settled.begin("r1"));
        settled.insert("r1");
        assert!(!settled.contains("r1"));
    }
}
