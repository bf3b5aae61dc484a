//! How a creation waits for its turn, and how a turn carries every creation waiting with it (see
//! [`crate::jira::bulk_create`]).

use std::time::Duration;

use reqwest::Method;
use tokio::sync::SemaphorePermit;

use super::{JiraClient, MAX_BODY, Retry, read_capped};
use crate::jira::bulk_create::{self, BulkAnswer, Created, Job, Ticket};
use crate::jira::error::JiraError;
use crate::jira::governor::{Permit, Priority};
use crate::jira::types::CreatedIssue;

/// The time a bulk call is given per issue it creates (see [`bulk_timeout`]).
const PER_ISSUE: Duration = Duration::from_millis(500);

/// Why a bulk call did not answer each creation it carried.
enum Unanswered {
    /// Jira refused the call as a whole (no bulk create, or a body it would not take): each
    /// creation goes alone, and learns its own answer.
    OneByOne,
    /// The call failed, or its answer could not be matched to its elements: each creation gets
    /// this error, and Jira may have created any of them.
    Failed(JiraError),
}

impl JiraClient {
    /// Queues the creation, then waits until a call carried it: its own, once the governor lets
    /// it go (taking along every creation waiting then), or another creation's.
    pub(super) async fn create_in_turn(&self, body: Vec<u8>) -> Result<CreatedIssue, JiraError> {
        let linger = self.creations.linger();
        let Ticket {
            mut reply,
            mut taken,
        } = self.creations.enqueue(body);
        let ready_at = tokio::time::Instant::now() + linger;
        let mut carried = false;
        loop {
            tokio::select! {
                biased;
                answer = &mut reply => return answer.unwrap_or_else(|_| Err(unanswered())),
                _ = &mut taken, if !carried => carried = true,
                turn = self.carrier_turn(ready_at), if !carried => {
                    // Empty when another call took this creation meanwhile: the turn goes back.
                    let (_carrier, permit) = turn;
                    let jobs = self.creations.take();
                    if !jobs.is_empty() {
                        Box::pin(self.carry(permit, jobs)).await;
                    }
                }
            }
        }
    }

    /// A turn to carry creations: a place among the calls creating issues, then the governor's
    /// go-ahead.
    async fn carrier_turn(
        &self,
        ready_at: tokio::time::Instant,
    ) -> (Option<SemaphorePermit<'_>>, Permit<'_>) {
        tokio::time::sleep_until(ready_at).await;
        // The semaphore is never closed.
        let carrier = self.creations.carriers.acquire().await.ok();
        (carrier, self.governor.acquire(Priority::Create).await)
    }

    /// Sends `jobs` on `permit`: one `POST issue` for one creation, a bulk call for more.
    async fn carry(&self, permit: Permit<'_>, mut jobs: Vec<Job>) {
        if jobs.len() == 1 {
            if let Some(job) = jobs.pop() {
                let created = self.create_one(Some(permit), job.body).await;
                let _ = job.reply.send(created);
            }
            return;
        }
        let outcome = if self.creations.bulk_served() {
            self.create_many(permit, &jobs).await
        } else {
            // Jira said it has no bulk create while these waited.
            drop(permit);
            Err(Unanswered::OneByOne)
        };
        match outcome {
            Ok(outcomes) => {
                for (job, created) in jobs.into_iter().zip(outcomes) {
                    let _ = job.reply.send(created);
                }
            }
            Err(Unanswered::OneByOne) => {
                let alone = jobs.into_iter().map(|job| async move {
                    let created = self.create_one(None, job.body).await;
                    let _ = job.reply.send(created);
                });
                futures_util::future::join_all(alone).await;
            }
            Err(Unanswered::Failed(err)) => {
                for job in jobs {
                    let _ = job.reply.send(Err(err.clone()));
                }
            }
        }
    }

    /// `POST issue/bulk` with every job's issue; each job's outcome, in order.
    async fn create_many(
        &self,
        permit: Permit<'_>,
        jobs: &[Job],
    ) -> Result<Vec<Created>, Unanswered> {
        tracing::debug!(issues = jobs.len(), "Creating issues in one bulk call");
        let body = bulk_create::bulk_body(jobs);
        // Jira answers 400 with the same body when it created none of the issues.
        let sent = self
            .send_from(
                Some(permit),
                "create_issues",
                Retry::IfNotProcessed,
                Some(400),
                || {
                    self.json_request(Method::POST, "issue/bulk", body.clone())
                        .timeout(bulk_timeout(jobs.len()))
                },
            )
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) if matches!(err.status(), Some(404 | 405)) => {
                self.creations
                    .stop_bulk("Jira has no bulk create (POST issue/bulk)");
                return Err(Unanswered::OneByOne);
            }
            Err(err) => {
                if !self.creations.is_proven() && err.status() != Some(429) {
                    self.creations.stop_bulk(&format!(
                        "The first bulk create (POST issue/bulk) failed: {err}"
                    ));
                }
                return Err(Unanswered::Failed(err));
            }
        };
        let refused_whole = response.status().as_u16() == 400;
        let bytes = read_capped(response, MAX_BODY)
            .await
            .map_err(Unanswered::Failed)?;
        let answer = serde_json::from_slice::<BulkAnswer>(&bytes).ok();
        let Some(outcomes) = answer.and_then(|answer| bulk_create::outcomes(jobs.len(), answer))
        else {
            // Not Jira's bulk answer: whatever answers there, creations no longer go through it.
            self.creations
                .stop_bulk("POST issue/bulk answered with something else than Jira's bulk answer");
            return Err(if refused_whole {
                Unanswered::OneByOne
            } else {
                Unanswered::Failed(JiraError::Decode(format!(
                    "the bulk create answer does not account for each of its {} issues once",
                    jobs.len()
                )))
            });
        };
        self.creations.proven();
        Ok(outcomes)
    }
}

/// How long a bulk call may take: Jira creates its issues one after the other, so a full call
/// gets more than the [`super::REQUEST_TIMEOUT`] of a single creation.
fn bulk_timeout(issues: usize) -> Duration {
    super::REQUEST_TIMEOUT.max(PER_ISSUE * u32::try_from(issues).unwrap_or(u32::MAX))
}

/// The answer of a creation whose call ended without one (its carrier was stopped): Jira may
/// have created the issue.
fn unanswered() -> JiraError {
    JiraError::Other("the call carrying this issue's creation ended without an answer".into())
}
