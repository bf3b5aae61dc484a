//! Which request each issue belongs to, as this process read it in the requests' plugin data: a
//! webhook for a known issue starts its request's step at once, and that step's own read of the
//! issue is the only one (it checks again that the issue names the request before deciding).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::lock::lock;

/// Issues remembered; past this many the memory is cleared and refilled. Forgetting only costs a
/// webhook the read that ties its issue to a request.
const MAX_KNOWN: usize = 50_000;

/// Refusals remembered until their webhook asks; past this many they are cleared.
const MAX_REFUSALS: usize = 1_000;

#[derive(Default)]
pub(super) struct IssueOwners {
    owners: Mutex<HashMap<String, String>>,
    /// Issues a step found tied to the wrong request, and why: the webhook that started the step
    /// is refused with that reason.
    refusals: Mutex<HashMap<String, String>>,
}

impl IssueOwners {
    /// Plugin data of `request_id` names issue `issue_id`.
    pub(super) fn note(&self, request_id: &str, issue_id: &str) {
        let mut owners = lock(&self.owners);
        if owners
            .get(issue_id)
            .is_some_and(|known| known == request_id)
        {
            return;
        }
        if owners.len() >= MAX_KNOWN {
            owners.clear();
        }
        owners.insert(issue_id.to_owned(), request_id.to_owned());
    }

    pub(super) fn owner(&self, issue_id: &str) -> Option<String> {
        lock(&self.owners).get(issue_id).cloned()
    }

    /// A step found that issue `issue_id` does not belong where its webhook was sent.
    pub(super) fn refuse(&self, issue_id: &str, why: String) {
        let mut refusals = lock(&self.refusals);
        if refusals.len() >= MAX_REFUSALS {
            refusals.clear();
        }
        refusals.insert(issue_id.to_owned(), why);
    }

    pub(super) fn take_refusal(&self, issue_id: &str) -> Option<String> {
        lock(&self.refusals).remove(issue_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issue_noted_for_a_request_is_owned_by_it() {
        let owners = IssueOwners::default();
        owners.note("req-1", "10001");
        assert_eq!(owners.owner("10001").as_deref(), Some("req-1"));
        assert_eq!(owners.owner("10002"), None);
    }

    #[test]
    fn a_new_record_replaces_the_old_owner() {
        let owners = IssueOwners::default();
        owners.note("req-1", "10001");
        owners.note("req-2", "10001");
        assert_eq!(owners.owner("10001").as_deref(), Some("req-2"));
    }

    #[test]
    fn a_refusal_is_told_once() {
        let owners = IssueOwners::default();
        owners.refuse("10001", "tampered".into());
        assert_eq!(owners.take_refusal("10001").as_deref(), Some("tampered"));
        assert_eq!(owners.take_refusal("10001"), None);
    }
}
