//! Requests whose issue another process was creating when this one last looked: the step found
//! their lease taken and no issue yet. When the issue then appears it is in its first status, so
//! reading it back for a decision would cost a Jira call per request for nothing; the first step
//! that finds it skips that read. A webhook about the issue, or the scan, reads it as usual.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::lock::lock;

/// Requests remembered; past this many the memory is cleared (forgetting only costs a read).
const MAX_AWAITED: usize = 10_000;

#[derive(Default)]
pub(super) struct Awaited(Mutex<HashSet<String>>);

impl Awaited {
    pub(super) fn insert(&self, id: &str) {
        let mut awaited = lock(&self.0);
        if awaited.len() >= MAX_AWAITED {
            awaited.clear();
        }
        awaited.insert(id.to_owned());
    }

    /// Whether `id` was awaited, forgetting it.
    pub(super) fn take(&self, id: &str) -> bool {
        lock(&self.0).remove(id)
    }
}
