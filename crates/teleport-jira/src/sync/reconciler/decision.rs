//! A decision made on the board: the card of a pending request sits in Approved or Denied, and the
//! request is resolved in Teleport on behalf of whoever moved it, if the approver policy allows
//! them; otherwise the card goes back to Pending with a comment saying why.

use teleport_proto::types::{AccessRequestV3, AccessReview, RequestState};

use super::Reconciler;
use super::approver_groups::Unknown;
use super::lease::LeaseEnd;
use crate::config::ResolveWith;
use crate::jira::decision;
use crate::jira::mover::{self, Mover};
use crate::jira::same_name;
use crate::jira::types::{Issue, REQUEST_ID_PROPERTY, User};
use crate::plugin_data::PluginData;
use crate::sync::error::StepError;
use crate::sync::policy::Verdict;
use crate::teleport::TeleportError;

/// A decision read from the card.
#[derive(Clone, Copy, Debug)]
struct Decision {
    state: RequestState,
    tag: &'static str,
}

/// Anti-forgery: plugin data (which only the plugin writes) named this issue; the issue must also
/// name this request, or someone copied it around.
fn names_request(issue: &Issue, id: &str) -> bool {
    match issue.properties.get(REQUEST_ID_PROPERTY) {
        Some(serde_json::Value::String(named)) if named == id => true,
        other => {
            tracing::warn!(jira_issue_id = %issue.id, property = ?other, "Issue property does not name this request; ignoring its status");
            false
        }
    }
}

impl Reconciler {
    /// When the card of a pending request sits in Approved or Denied, resolves the request in
    /// Teleport on behalf of the Jira user who moved it, if the approver policy allows them.
    /// Returns whether the request may have changed.
    pub(super) async fn apply_jira_decision(
        &self,
        id: &str,
        request: &AccessRequestV3,
        data: &PluginData,
    ) -> Result<bool, StepError> {
        let Some(issue_ref) = &data.issue else {
            return Ok(false);
        };
        let issue = self.jira.issue(&issue_ref.id).await?;
        let Some(decision) = self.decision_on(&issue) else {
            return Ok(false);
        };
        if !names_request(&issue, id) {
            return Ok(false);
        }
        let (verdict, reason) = self.judge_mover(&issue, request).await?;
        let applied = self
            .with_lease(
                id,
                Some(data),
                LeaseEnd::Release,
                |current| Some(current.clone()),
                |_, _| self.decide_if_pending(id, &issue, decision, verdict, &reason),
            )
            .await?;
        if applied.is_none() {
            return Ok(false);
        }
        match self.teleport.access_request(id).await? {
            Some(fresh) => {
                self.store.put(fresh);
            }
            None => self.store.remove(id),
        }
        Ok(true)
    }

    /// The decision the card's status stands for, if any.
    fn decision_on(&self, issue: &Issue) -> Option<Decision> {
        let status = issue.status_name();
        let statuses = &self.settings.statuses;
        if same_name(status, &statuses.approved) {
            Some(Decision {
                state: RequestState::Approved,
                tag: "approved",
            })
        } else if same_name(status, &statuses.denied) {
            Some(Decision {
                state: RequestState::Denied,
                tag: "denied",
            })
        } else {
            None
        }
    }

    /// Whether the mover may decide, and the reason they gave (empty when none, or not allowed).
    /// Nobody is credited with a move whose author cannot be found: the card goes back.
    async fn judge_mover(
        &self,
        issue: &Issue,
        request: &AccessRequestV3,
    ) -> Result<(Verdict, String), StepError> {
        let author = match mover::find_mover(&self.jira, issue, issue.status_name()).await? {
            Mover::Found(author) => author,
            Mover::Unknown(why) => {
                let refusal =
                    format!("the Jira user who moved the card could not be identified ({why})");
                return Ok((Verdict::Refuse(refusal), String::new()));
            }
        };
        let requester = request
            .spec
            .as_ref()
            .map(|s| s.user.as_str())
            .unwrap_or_default();
        let in_a_group = match self.in_approver_group(&author).await {
            Ok(in_a_group) => in_a_group,
            Err(Unknown::Retry(err)) => return Err(err.into()),
            // Fail closed: a decision nobody could check is sent back, saying why.
            Err(Unknown::Refuse(why)) => return Ok((Verdict::Refuse(why), String::new())),
        };
        let verdict = self.settings.policy.judge(&author, requester, in_a_group);
        let reason = match &verdict {
            Verdict::Allow { .. } => self.reason_of(&issue.id, &author).await.unwrap_or_else(|err| {
                tracing::error!(error = %err, "Failed to load resolution info from the issue history");
                None
            }),
            Verdict::Refuse(_) => None,
        };
        Ok((verdict, reason.unwrap_or_default()))
    }

    /// Under the lease: reads the request from Teleport itself (the cache may lag a decision
    /// another replica already applied) and applies the verdict if it is still pending.
    async fn decide_if_pending(
        &self,
        id: &str,
        issue: &Issue,
        decision: Decision,
        verdict: Verdict,
        reason: &str,
    ) -> Result<(), StepError> {
        let fresh = self.teleport.access_request(id).await?;
        let still_pending = fresh
            .as_ref()
            .and_then(|r| r.spec.as_ref())
            .is_some_and(|s| s.state == RequestState::Pending as i32);
        if !still_pending {
            return Ok(());
        }
        match verdict {
            Verdict::Refuse(why) => self.send_back(issue, decision.tag, &why).await,
            Verdict::Allow {
                delegator,
                teleport_user,
            } => {
                self.decide(
                    id,
                    issue,
                    decision,
                    reason,
                    &delegator,
                    teleport_user.as_deref(),
                )
                .await
            }
        }
    }

    /// Applies an allowed decision: directly (`SetAccessRequestState`, the Go plugin's way) or as a
    /// review by the mapped Teleport user, so that Teleport's thresholds and rules apply.
    async fn decide(
        &self,
        id: &str,
        issue: &Issue,
        decision: Decision,
        reason: &str,
        delegator: &str,
        teleport_user: Option<&str>,
    ) -> Result<(), StepError> {
        if self.settings.resolve_with == ResolveWith::State {
            return self.set_state(id, decision, reason, delegator).await;
        }
        let Some(reviewer) = teleport_user else {
            let why = format!("no Teleport user is mapped to {delegator} (add it to [jira.users])");
            return self.send_back(issue, decision.tag, &why).await;
        };
        let review = AccessReview {
            author: reviewer.to_owned(),
            proposed_state: decision.state as i32,
            reason: reason.to_owned(),
            ..AccessReview::default()
        };
        let after = match self.teleport.submit_access_review(id, review).await {
            Ok(after) => Some(after),
            Err(TeleportError::AlreadyReviewed(_)) => self.teleport.access_request(id).await?,
            Err(
                err @ (TeleportError::AccessDenied(_)
                | TeleportError::BadParameter(_)
                | TeleportError::NotImplemented(_)),
            ) => {
                return self
                    .send_back(
                        issue,
                        decision.tag,
                        &format!("Teleport refused the review by {reviewer}: {err}"),
                    )
                    .await;
            }
            Err(err) => return Err(err.into()),
        };
        tracing::info!(
            resolution = decision.tag,
            reviewer,
            reason,
            "Submitted a review on behalf of the Jira user"
        );
        let still_pending = after
            .as_ref()
            .and_then(|r| r.spec.as_ref())
            .is_some_and(|s| s.state == RequestState::Pending as i32);
        if still_pending {
            let note = format!(
                "the review by {reviewer} was recorded, and the request needs more reviews before it is {}",
                decision.tag
            );
            self.send_back(issue, decision.tag, &note).await?;
        }
        Ok(())
    }

    /// The Go plugin's way: the request takes the decision at once, on the mover's behalf.
    async fn set_state(
        &self,
        id: &str,
        decision: Decision,
        reason: &str,
        delegator: &str,
    ) -> Result<(), StepError> {
        match self
            .teleport
            .set_access_request_state(id, decision.state, reason, delegator)
            .await
        {
            Ok(()) => {
                tracing::info!(
                    resolution = decision.tag,
                    delegator,
                    reason,
                    "Jira user processed the request"
                );
                Ok(())
            }
            // Teleport refuses to change a denied request; its state wins and is mirrored next.
            Err(TeleportError::BadParameter(message)) if message.contains("already denied") => {
                tracing::info!(%message, "Teleport already denied the request; mirroring Teleport's state");
                Ok(())
            }
            Err(TeleportError::NotFound(_)) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Moves a card whose decision was not applied back to the pending status, saying why.
    async fn send_back(&self, issue: &Issue, tag: &str, why: &str) -> Result<(), StepError> {
        tracing::warn!(jira_issue_key = %issue.key, reason = %why, "Moving the issue back to pending");
        let comment = format!(
            "The request was not {tag} from Jira: {}.",
            crate::jira::markup::escape(why)
        );
        self.jira.add_comment(&issue.id, &comment).await?;
        let pending = &self.settings.statuses.pending;
        self.move_issue(issue, pending).await
    }

    /// The reason `author` gave in their newest comment that has one.
    async fn reason_of(&self, issue_id: &str, author: &User) -> Result<Option<String>, StepError> {
        let mut reason = None;
        self.jira
            .visit_comments_newest_first(issue_id, |comment| {
                if decision::written_by(comment, author) {
                    reason = decision::reason_in_comment(&comment.body);
                }
                reason.is_none()
            })
            .await?;
        Ok(reason)
    }
}
