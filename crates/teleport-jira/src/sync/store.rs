//! The access requests as last seen by the watch (or a listing), so a step does not have to ask
//! Teleport for a request on every signal.
//!
//! Each request is kept in its protobuf wire form, with its state beside it, and decoded when a
//! step asks for it. A decoded `AccessRequestV3` is over a kilobyte inline before any of its
//! strings, and a map holding 10,000 of them reserved 20 MB for its table alone; the wire form is
//! a few hundred bytes, and decoding one takes microseconds against a step's round trips.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use prost::Message;
use teleport_proto::types::{AccessRequestV3, RequestState};

/// How a request put in the store compares with the copy it had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The store did not have it.
    New,
    /// The store had it, in another form: something changed in Teleport.
    Changed,
    /// The store had exactly this.
    Unchanged,
}

/// One request as stored.
struct Stored {
    /// Its `RequestState` number, for the counts and the scan without decoding.
    state: i32,
    wire: Box<[u8]>,
}

impl Stored {
    fn of(request: &AccessRequestV3) -> Self {
        Self {
            state: request.spec.as_ref().map_or(0, |spec| spec.state),
            wire: request.encode_to_vec().into_boxed_slice(),
        }
    }

    fn decode(&self, id: &str) -> Option<AccessRequestV3> {
        match AccessRequestV3::decode(&*self.wire) {
            Ok(request) => Some(request),
            // Bytes this process encoded itself; were they ever unreadable, the step reads the
            // request from Teleport as on any cache miss.
            Err(err) => {
                tracing::error!(request_id = id, error = %err, "Cached access request unreadable");
                None
            }
        }
    }
}

#[derive(Default)]
pub struct RequestStore {
    requests: Mutex<HashMap<String, Stored>>,
}

impl RequestStore {
    /// Stores a request; returns its id, or `None` for a request without one.
    pub fn put(&self, request: AccessRequestV3) -> Option<String> {
        self.put_noting_new(request).map(|(id, _)| id)
    }

    /// Stores a request; returns its id and whether the store did not have it before, or `None`
    /// for a request without an id.
    pub fn put_noting_new(&self, request: AccessRequestV3) -> Option<(String, bool)> {
        self.put_noting_change(request)
            .map(|(id, seen)| (id, seen == Seen::New))
    }

    /// Stores a request; returns its id and how it compares with the copy the store had, or
    /// `None` for a request without an id.
    pub fn put_noting_change(&self, request: AccessRequestV3) -> Option<(String, Seen)> {
        let id = id_of(&request)?;
        let stored = Stored::of(&request);
        // One look-up: every watch event comes through here.
        let seen = match self.lock().entry(id.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(stored);
                Seen::New
            }
            Entry::Occupied(mut slot) => {
                let before = slot.insert(stored);
                if before.wire == slot.get().wire {
                    Seen::Unchanged
                } else {
                    Seen::Changed
                }
            }
        };
        Some((id, seen))
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    pub fn get(&self, id: &str) -> Option<AccessRequestV3> {
        self.lock().get(id)?.decode(id)
    }

    /// Forgets every request not in `listed` (a fresh listing, already put); returns their ids:
    /// they were deleted or expired since the last listing.
    pub fn keep_only(&self, listed: &HashSet<String>) -> Vec<String> {
        let mut vanished = Vec::new();
        self.lock().retain(|id, _| {
            let keep = listed.contains(id);
            if !keep {
                vanished.push(id.clone());
            }
            keep
        });
        vanished
    }

    pub fn pending_ids(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, stored)| stored.state == RequestState::Pending as i32)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// How many requests are in each state (by `RequestState` number).
    pub fn count_by_state(&self) -> HashMap<i32, usize> {
        let mut counts = HashMap::new();
        for stored in self.lock().values() {
            *counts.entry(stored.state).or_insert(0) += 1;
        }
        counts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stored>> {
        crate::lock::lock(&self.requests)
    }
}

/// The request's id (its metadata name); `None` when it has none.
fn id_of(request: &AccessRequestV3) -> Option<String> {
    request
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use teleport_proto::types::{AccessRequestSpecV3, Metadata};

    fn request(id: &str, state: RequestState, reason: &str) -> AccessRequestV3 {
        AccessRequestV3 {
            metadata: Some(Metadata {
                name: id.to_owned(),
                ..Metadata::default()
            }),
            spec: Some(AccessRequestSpecV3 {
                user: "alice".to_owned(),
                roles: vec!["editor".to_owned()],
                state: state as i32,
                request_reason: reason.to_owned(),
                ..AccessRequestSpecV3::default()
            }),
            ..AccessRequestV3::default()
        }
    }

    #[test]
    fn a_stored_request_comes_back_as_it_went_in() {
        let store = RequestStore::default();
        let original = request("r1", RequestState::Pending, "on call ✓");
        assert_eq!(store.put(original.clone()).as_deref(), Some("r1"));
        assert_eq!(store.get("r1"), Some(original));
        assert_eq!(store.get("r2"), None);
    }

    #[test]
    fn a_put_tells_a_changed_request_from_one_seen_exactly_so_before() {
        let store = RequestStore::default();
        let pending = request("r1", RequestState::Pending, "a");
        assert_eq!(
            store.put_noting_change(pending.clone()),
            Some(("r1".to_owned(), Seen::New))
        );
        assert_eq!(
            store.put_noting_change(pending),
            Some(("r1".to_owned(), Seen::Unchanged))
        );
        let approved = request("r1", RequestState::Approved, "a");
        assert_eq!(
            store.put_noting_change(approved),
            Some(("r1".to_owned(), Seen::Changed))
        );
    }

    #[test]
    fn a_put_tells_a_request_first_seen_from_an_update() {
        let store = RequestStore::default();
        let first = store.put_noting_new(request("r1", RequestState::Pending, "a"));
        assert_eq!(first, Some(("r1".to_owned(), true)));
        let update = store.put_noting_new(request("r1", RequestState::Approved, "a"));
        assert_eq!(update, Some(("r1".to_owned(), false)));
    }

    #[test]
    fn states_are_counted_and_pending_ones_listed_without_decoding_anything_else() {
        let store = RequestStore::default();
        store.put(request("p", RequestState::Pending, ""));
        store.put(request("a", RequestState::Approved, ""));
        store.put(request("p", RequestState::Pending, "again"));
        assert_eq!(store.pending_ids(), vec!["p".to_owned()]);
        let counts = store.count_by_state();
        assert_eq!(counts[&(RequestState::Pending as i32)], 1);
        assert_eq!(counts[&(RequestState::Approved as i32)], 1);
    }

    #[test]
    fn keeping_only_a_listing_names_the_requests_that_vanished() {
        let store = RequestStore::default();
        store.put(request("gone", RequestState::Pending, ""));
        store.put(request("new", RequestState::Pending, ""));
        let listed = HashSet::from(["new".to_owned()]);
        assert_eq!(store.keep_only(&listed), vec!["gone".to_owned()]);
        assert_eq!(store.get("gone"), None);
        assert!(store.get("new").is_some());
    }

    #[test]
    fn a_request_without_an_id_is_not_stored() {
        let store = RequestStore::default();
        assert_eq!(store.put(request("", RequestState::Pending, "")), None);
        assert!(store.count_by_state().is_empty());
    }
}
