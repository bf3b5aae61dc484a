//! Requests marked for their next step: a hint this process noted about a request that lets the
//! step skip a round trip (see the fields that hold them). A mark is taken once; forgetting one
//! only costs that round trip, so the set stays bounded.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::lock::lock;

/// Requests remembered; past this many the memory is cleared.
const MAX_MARKED: usize = 10_000;

#[derive(Default)]
pub(super) struct Marks(Mutex<HashSet<String>>);

impl Marks {
    pub(super) fn insert(&self, id: &str) {
        let mut marked = lock(&self.0);
        if marked.len() >= MAX_MARKED {
            marked.clear();
        }
        marked.insert(id.to_owned());
    }

    /// Whether `id` was marked, forgetting it.
    pub(super) fn take(&self, id: &str) -> bool {
        lock(&self.0).remove(id)
    }
}
