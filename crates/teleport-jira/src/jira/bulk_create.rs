//! Issues created in bursts share calls. A creation while no other is on the wire goes at once,
//! as one `POST issue` (the Go plugin's own call). While others are, it waits up to [`LINGER`]
//! for more to come, and at most [`CARRIERS`] calls create issues at once; the next call takes
//! along every creation waiting then, up to [`BULK_MAX`] in one `POST issue/bulk`. On a Jira that
//! has no bulk create (404 or 405), that answers it with something else than Jira's bulk answer,
//! or that fails it before one ever worked, every creation is its own call from then on.
//!
//! So a burst of thousands of new requests costs Jira tens of calls instead of thousands: fewer
//! round trips, far less of its rate limit, and a few calls' worth of buffers in the process
//! instead of one per request.
//!
//! Bulk create is not transactional: Jira answers with the issues it created, in the order of
//! their elements, and an error for each element it refused (`failedElementNumber`). An answer
//! that does not account for every element exactly once leaves each creation of the call
//! unsure; the reconcile step then looks for the issue before creating it again, as after any
//! call whose outcome is unknown.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;
use tokio::sync::{Semaphore, oneshot};

use super::error::{JiraError, describe_error_body};
use super::types::CreatedIssue;
use crate::lock::lock;

/// The most issues Jira creates in one bulk call.
pub const BULK_MAX: usize = 50;
/// The most calls creating issues at once: sixteen calls carry up to 800 creations per round
/// trip, more than the rest of the process can prepare meanwhile.
pub const CARRIERS: usize = 16;
/// How long a creation waits for others to share its call while other creations are on the
/// wire: a burst's creations go out a few milliseconds apart in calls of tens, instead of one
/// by one or a round trip apart. A creation while none is on the wire goes at once.
pub const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// What a creation is answered with.
pub type Created = Result<CreatedIssue, JiraError>;

/// One creation waiting to be sent: its `POST issue` body, where its answer goes, and whom to tell
/// that a call carries it now.
pub struct Job {
    pub body: Vec<u8>,
    pub reply: oneshot::Sender<Created>,
    taken: Option<oneshot::Sender<()>>,
}

/// How a caller follows its creation: the answer, and the moment a call took it along.
pub struct Ticket {
    pub reply: oneshot::Receiver<Created>,
    pub taken: oneshot::Receiver<()>,
}

/// The creations waiting for a call, shared by every clone of the client.
#[derive(Debug)]
pub struct Creations {
    waiting: Mutex<VecDeque<Job>>,
    /// One permit per call that may create issues now.
    pub carriers: Semaphore,
    /// Set for good once Jira answered that it has no bulk create.
    unsupported: AtomicBool,
    /// Set once a bulk call was answered as Jira answers one.
    proven: AtomicBool,
}

impl Default for Creations {
    fn default() -> Self {
        Self {
            waiting: Mutex::default(),
            carriers: Semaphore::new(CARRIERS),
            unsupported: AtomicBool::new(false),
            proven: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl Creations {
    /// Whether creations may still share calls.
    pub fn bulk_served(&self) -> bool {
        !self.unsupported.load(Ordering::Relaxed)
    }

    /// Notes that a bulk call was answered as Jira answers one.
    pub fn proven(&self) {
        self.proven.store(true, Ordering::Relaxed);
    }

    /// Whether a bulk call was ever answered as Jira answers one. Until then, a bulk call that
    /// fails (not pushed back) turns bulk off: whatever answers there may fail every bulk call
    /// the same way, and each failure sends its creations to the slower look-up.
    pub fn is_proven(&self) -> bool {
        self.proven.load(Ordering::Relaxed)
    }

    /// Every creation is its own call from now on, because of `why` (logged once).
    pub fn stop_bulk(&self, why: &str) {
        if !self.unsupported.swap(true, Ordering::Relaxed) {
            tracing::info!("{why}; creating issues one by one from now on");
        }
    }

    /// How long a creation queued now waits for others before it asks for a call: not at all
    /// when no creation is on the wire or a call's worth already waits.
    pub fn linger(&self) -> std::time::Duration {
        let idle = self.carriers.available_permits() == CARRIERS;
        if idle || lock(&self.waiting).len() >= BULK_MAX {
            std::time::Duration::ZERO
        } else {
            LINGER
        }
    }

    /// Queues a creation with its `POST issue` body.
    pub fn enqueue(&self, body: Vec<u8>) -> Ticket {
        let (reply, reply_rx) = oneshot::channel();
        let (taken, taken_rx) = oneshot::channel();
        lock(&self.waiting).push_back(Job {
            body,
            reply,
            taken: Some(taken),
        });
        Ticket {
            reply: reply_rx,
            taken: taken_rx,
        }
    }

    /// Takes up to [`BULK_MAX`] waiting creations, oldest first, telling each it is taken; a
    /// creation whose caller gave up is dropped.
    pub fn take(&self) -> Vec<Job> {
        let mut waiting = lock(&self.waiting);
        let mut batch = Vec::new();
        while batch.len() < BULK_MAX {
            let Some(job) = waiting.pop_front() else {
                break;
            };
            if job.reply.is_closed() {
                continue;
            }
            batch.push(job);
        }
        drop(waiting);
        for taken in batch.iter_mut().filter_map(|job| job.taken.take()) {
            let _ = taken.send(());
        }
        batch
    }
}

/// The bulk call's body: each creation's own body as one element of `issueUpdates`.
pub fn bulk_body(jobs: &[Job]) -> Vec<u8> {
    let size = jobs.iter().map(|job| job.body.len() + 1).sum::<usize>();
    let mut body = Vec::with_capacity(size + 20);
    body.extend_from_slice(b"{\"issueUpdates\":[");
    for (index, job) in jobs.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&job.body);
    }
    body.extend_from_slice(b"]}");
    body
}

/// Jira's answer to a bulk create (201 when some issues were created, 400 when none was).
#[derive(Debug, Deserialize)]
pub struct BulkAnswer {
    #[serde(default)]
    issues: Vec<CreatedIssue>,
    #[serde(default)]
    errors: Vec<ElementError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ElementError {
    status: u16,
    #[serde(default)]
    element_errors: serde_json::Value,
    failed_element_number: usize,
}

/// Each element's outcome, in the order of the elements; `None` when the answer does not account
/// for each of the `count` elements exactly once.
pub fn outcomes(count: usize, answer: BulkAnswer) -> Option<Vec<Created>> {
    let mut outcomes: Vec<Option<Created>> = (0..count).map(|_| None).collect();
    for error in answer.errors {
        let slot = outcomes.get_mut(error.failed_element_number)?;
        if slot.is_some() {
            return None;
        }
        *slot = Some(Err(JiraError::Status {
            status: error.status,
            details: describe_error_body(&error.element_errors.to_string()),
            retry_after: None,
        }));
    }
    let mut issues = answer.issues.into_iter();
    for slot in outcomes.iter_mut().filter(|slot| slot.is_none()) {
        *slot = Some(Ok(issues.next()?));
    }
    if issues.next().is_some() {
        return None;
    }
    outcomes.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn answer(json: &str) -> BulkAnswer {
        serde_json::from_str(json).unwrap()
    }

    fn keys(outcomes: &[Created]) -> Vec<String> {
        outcomes
            .iter()
            .map(|outcome| match outcome {
                Ok(issue) => issue.key.clone(),
                Err(err) => format!("{}", err.status().unwrap_or(0)),
            })
            .collect()
    }

    #[test]
    fn created_issues_go_to_the_elements_jira_did_not_refuse_in_order() {
        let answer = answer(
            r#"{"issues":[{"id":"1","key":"P-1"},{"id":"3","key":"P-3"}],
                "errors":[{"status":400,"elementErrors":{"errorMessages":[],"errors":{"summary":"too long"}},"failedElementNumber":1}]}"#,
        );
        let outcomes = outcomes(3, answer).unwrap();
        assert_eq!(keys(&outcomes), ["P-1", "400", "P-3"]);
        let Err(refused) = &outcomes[1] else {
            panic!("element 1 was refused")
        };
        assert!(refused.surely_refused());
        assert!(
            refused.to_string().contains("summary:too long"),
            "{refused}"
        );
    }

    #[test]
    fn an_answer_that_does_not_account_for_every_element_once_leaves_all_unsure() {
        let short = answer(r#"{"issues":[{"id":"1","key":"P-1"}],"errors":[]}"#);
        assert!(outcomes(2, short).is_none());
        let long = answer(r#"{"issues":[{"id":"1","key":"P-1"},{"id":"2","key":"P-2"}]}"#);
        assert!(outcomes(1, long).is_none());
        let twice = answer(
            r#"{"issues":[],"errors":[{"status":400,"failedElementNumber":0},{"status":400,"failedElementNumber":0}]}"#,
        );
        assert!(outcomes(2, twice).is_none());
        let beyond = answer(r#"{"issues":[],"errors":[{"status":400,"failedElementNumber":5}]}"#);
        assert!(outcomes(1, beyond).is_none());
    }

    #[test]
    fn the_bulk_body_carries_each_creation_body_as_an_element() {
        let creations = Creations::default();
        let _first = creations.enqueue(br#"{"fields":{"summary":"a"}}"#.to_vec());
        let _second = creations.enqueue(br#"{"fields":{"summary":"b"}}"#.to_vec());
        let batch = creations.take();
        let body: serde_json::Value = serde_json::from_slice(&bulk_body(&batch)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"issueUpdates": [
                {"fields": {"summary": "a"}},
                {"fields": {"summary": "b"}},
            ]})
        );
    }

    #[tokio::test]
    async fn taking_tells_each_creation_and_skips_those_whose_caller_gave_up() {
        let creations = Creations::default();
        let gave_up = creations.enqueue(b"{}".to_vec());
        drop(gave_up);
        let mut waiting: Vec<Ticket> = (0..BULK_MAX + 1)
            .map(|_| creations.enqueue(b"{}".to_vec()))
            .collect();
        let batch = creations.take();
        assert_eq!(batch.len(), BULK_MAX);
        let mut last = waiting.split_off(BULK_MAX);
        for mut ticket in waiting {
            assert!(ticket.taken.try_recv().is_ok());
        }
        assert!(last[0].taken.try_recv().is_err(), "still waiting");
        assert_eq!(
            creations.take().len(),
            1,
            "the one past the first call's room"
        );
        assert!(creations.take().is_empty());
    }
}
