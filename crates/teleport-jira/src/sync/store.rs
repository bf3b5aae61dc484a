//! The access requests as last seen by the watch (or a listing), so a step does not have to ask
//! Teleport for a request on every signal.

use std::collections::HashMap;
use std::sync::Mutex;

use teleport_proto::types::{AccessRequestV3, RequestState};

#[derive(Default)]
pub struct RequestStore {
    requests: Mutex<HashMap<String, AccessRequestV3>>,
}

impl RequestStore {
    /// Stores a request; returns its id, or `None` for a request without one.
    pub fn put(&self, request: AccessRequestV3) -> Option<String> {
        let id = request
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .filter(|id| !id.is_empty())?;
        self.lock().insert(id.clone(), request);
        Some(id)
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    pub fn get(&self, id: &str) -> Option<AccessRequestV3> {
        self.lock().get(id).cloned()
    }

    /// Replaces everything with a fresh listing; returns the ids of the listing and of requests that
    /// disappeared since the last one (they were deleted or expired meanwhile).
    pub fn replace_all(&self, requests: Vec<AccessRequestV3>) -> Vec<String> {
        let mut fresh = HashMap::with_capacity(requests.len());
        for request in requests {
            if let Some(id) = request.metadata.as_ref().map(|m| m.name.clone()) {
                fresh.insert(id, request);
            }
        }
        let mut store = self.lock();
        let mut ids: Vec<String> = fresh.keys().cloned().collect();
        ids.extend(store.keys().filter(|id| !fresh.contains_key(*id)).cloned());
        *store = fresh;
        ids
    }

    pub fn pending_ids(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, request)| {
                request
                    .spec
                    .as_ref()
                    .is_some_and(|s| s.state == RequestState::Pending as i32)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// How many requests are in each state (by `RequestState` number).
    pub fn count_by_state(&self) -> HashMap<i32, usize> {
        let mut counts = HashMap::new();
        for request in self.lock().values() {
            *counts
                .entry(request.spec.as_ref().map_or(0, |spec| spec.state))
                .or_insert(0) += 1;
        }
        counts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, AccessRequestV3>> {
        crate::lock::lock(&self.requests)
    }
}
