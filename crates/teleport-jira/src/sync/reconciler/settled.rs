//! Resolved requests whose issue was seen in its final state: nothing is left to do for them, so
//! their steps end before reading anything.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::lock::lock;

/// Resolved requests remembered as done; past this many the memory is cleared and refilled.
const MAX_SETTLED: usize = 50_000;

#[derive(Default)]
pub(super) struct Settled(Mutex<HashSet<String>>);

impl Settled {
    pub(super) fn contains(&self, id: &str) -> bool {
        lock(&self.0).contains(id)
    }

    pub(super) fn remove(&self, id: &str) {
        lock(&self.0).remove(id);
    }

    pub(super) fn insert(&self, id: &str) {
        let mut settled = lock(&self.0);
        // Forgetting is safe (a forgotten request is only checked again), so the set stays bounded.
        if settled.len() >= MAX_SETTLED {
            settled.clear();
        }
        settled.insert(id.to_owned());
    }
}
