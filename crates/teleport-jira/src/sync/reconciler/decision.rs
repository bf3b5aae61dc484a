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
use crate::plugin_data::{PluginData, Resolution};
use crate::sync::error::StepError;
use crate::sync::policy::Verdict;
use crate::teleport::TeleportError;

/// What applying a decision did to the request.
enum Outcome {
    /// Teleport took the decision: the request as it now stands, and on whose behalf.
    Resolved(Box<AccessRequestV3>, String),
    /// The request as Teleport has it now (`None`: gone), for the step's next round.
    Now(Option<Box<AccessRequestV3>>),
    /// The card went back to pending; the request did not change.
    SentBack,
    /// Teleport refused in a way that says the request changed elsewhere: read it again.
    Unknown,
}

/// An allowed decision, and on whose behalf.
#[derive(Clone, Copy)]
struct Decided<'a> {
    id: &'a str,
    decision: Decision,
    reason: &'a str,
    delegator: &'a str,
}

/// A decision read from the card.
#[derive(Clone, Copy, Debug)]
struct Decision {
    state: RequestState,
    tag: &'static str,
}

fn is_pending(request: &AccessRequestV3) -> bool {
    request
        .spec
        .as_ref()
        .is_some_and(|s| s.state == RequestState::Pending as i32)
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
        // The one read of the issue before Teleport is told: status, history, comments, property.
        let issue = self.jira.issue(&issue_ref.id).await?;
        if !self.names_request(&issue, id) {
            return Ok(false);
        }
        let Some(decision) = self.decision_on(&issue) else {
            return Ok(false);
        };
        let (verdict, reason) = self.judge_mover(&issue, request).await?;
        let outcome = self
            .with_lease_tracked(
                id,
                Some(data),
                LeaseEnd::Release,
                |current| Some(current.clone()),
                |leased, _| async {
                    let outcome = self
                        .decide_if_pending(id, &issue, decision, verdict, &reason)
                        .await?;
                    let written = match &outcome {
                        Outcome::Resolved(after, delegator) => {
                            self.mirror_decision(id, leased, &issue, after, delegator)
                                .await?
                        }
                        _ => leased,
                    };
                    Ok((outcome, written))
                },
            )
            .await?;
        match outcome {
            None | Some(Outcome::SentBack) => Ok(false),
            Some(Outcome::Resolved(after, _)) => {
                self.store.put(*after);
                self.audit_just_resolved(id, data).await?;
                self.settle(id);
                Ok(false)
            }
            Some(Outcome::Now(Some(now))) => {
                self.store.put(*now);
                Ok(true)
            }
            Some(Outcome::Now(None)) => {
                self.store.remove(id);
                Ok(true)
            }
            Some(Outcome::Unknown) => {
                match self.teleport.access_request(id).await? {
                    Some(fresh) => {
                        self.store.put(fresh);
                    }
                    None => self.store.remove(id),
                }
                Ok(true)
            }
        }
    }

    /// Under the lease, right after Teleport took the decision: records the resolution, then
    /// mirrors it on the card from the issue this step read (nothing was written to it since), so
    /// a decision costs no second read. Returns the data as last written.
    async fn mirror_decision(
        &self,
        id: &str,
        leased: PluginData,
        issue: &Issue,
        after: &AccessRequestV3,
        delegator: &str,
    ) -> Result<PluginData, StepError> {
        let spec = after.spec.as_ref();
        let resolution = match spec.map(|s| RequestState::try_from(s.state)) {
            Some(Ok(RequestState::Approved)) => Resolution::Approved,
            Some(Ok(RequestState::Denied)) => Resolution::Denied,
            _ => return Ok(leased),
        };
        let reason = spec.map(|s| s.resolve_reason.as_str()).unwrap_or_default();
        let recorded = self
            .data
            .modify_from(id, Some(Some(leased.clone())), |current| {
                let current = current.filter(|c| self.data.holds_lease(Some(c)))?;
                current.resolution.is_none().then(|| PluginData {
                    resolution: Some(resolution.clone()),
                    resolve_reason: reason.to_owned(),
                    decided_by: delegator.to_owned(),
                    ..current.clone()
                })
            })
            .await?;
        let Some(current) = recorded
            .after
            .filter(|current| self.data.holds_lease(Some(current)))
        else {
            return Ok(leased);
        };
        self.mirror_resolution(id, current.clone(), Some(issue))
            .await?;
        Ok(current)
    }

    /// Anti-forgery: plugin data (which only the plugin writes) named this issue; the issue must
    /// also name this request, or someone copied it around. A mismatch refuses the webhook.
    fn names_request(&self, issue: &Issue, id: &str) -> bool {
        let named = issue.properties.get(REQUEST_ID_PROPERTY);
        if matches!(named, Some(serde_json::Value::String(named)) if named == id) {
            return true;
        }
        tracing::warn!(jira_issue_id = %issue.id, property = ?named, "Issue property does not name this request; ignoring its status");
        let why = format!(
            "issue {} is not the issue recorded for request {}",
            issue.id,
            match named {
                Some(serde_json::Value::String(named)) => named.as_str(),
                _ => "(none)",
            }
        );
        self.owners.refuse(&issue.id, why);
        false
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
            Verdict::Allow { .. } => self.reason_of(issue, &author).await.unwrap_or_else(|err| {
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
    ) -> Result<Outcome, StepError> {
        let fresh = self.teleport.access_request(id).await?;
        let fresh = match fresh {
            Some(request) if is_pending(&request) => request,
            other => return Ok(Outcome::Now(other.map(Box::new))),
        };
        match verdict {
            Verdict::Refuse(why) => {
                self.send_back(issue, decision.tag, &why).await?;
                Ok(Outcome::SentBack)
            }
            Verdict::Allow {
                delegator,
                teleport_user,
            } => {
                let decided = Decided {
                    id,
                    decision,
                    reason,
                    delegator: &delegator,
                };
                self.decide(fresh, issue, decided, teleport_user.as_deref())
                    .await
            }
        }
    }

    /// Applies an allowed decision: directly (`SetAccessRequestState`, the Go plugin's way) or as a
    /// review by the mapped Teleport user, so that Teleport's thresholds and rules apply.
    async fn decide(
        &self,
        request: AccessRequestV3,
        issue: &Issue,
        decided: Decided<'_>,
        teleport_user: Option<&str>,
    ) -> Result<Outcome, StepError> {
        let Decided {
            id,
            decision,
            reason,
            delegator,
        } = decided;
        if self.settings.resolve_with == ResolveWith::State {
            return self.set_state(request, decided).await;
        }
        let Some(reviewer) = teleport_user else {
            let why = format!("no Teleport user is mapped to {delegator} (add it to [jira.users])");
            self.send_back(issue, decision.tag, &why).await?;
            return Ok(Outcome::SentBack);
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
                let why = format!("Teleport refused the review by {reviewer}: {err}");
                self.send_back(issue, decision.tag, &why).await?;
                return Ok(Outcome::SentBack);
            }
            Err(err) => return Err(err.into()),
        };
        tracing::info!(
            resolution = decision.tag,
            reviewer,
            reason,
            "Submitted a review on behalf of the Jira user"
        );
        if after.as_ref().is_some_and(is_pending) {
            let note = format!(
                "the review by {reviewer} was recorded, and the request needs more reviews before it is {}",
                decision.tag
            );
            self.send_back(issue, decision.tag, &note).await?;
        }
        // The review is on the request now: the next round comments it, then mirrors the state.
        Ok(Outcome::Now(after.map(Box::new)))
    }

    /// The Go plugin's way: the request takes the decision at once, on the mover's behalf.
    async fn set_state(
        &self,
        mut request: AccessRequestV3,
        decided: Decided<'_>,
    ) -> Result<Outcome, StepError> {
        let Decided {
            id,
            decision,
            reason,
            delegator,
        } = decided;
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
                // What Teleport now holds; its watch event confirms it later.
                if let Some(spec) = request.spec.as_mut() {
                    spec.state = decision.state as i32;
                    spec.resolve_reason = reason.to_owned();
                }
                Ok(Outcome::Resolved(Box::new(request), delegator.to_owned()))
            }
            // Teleport refuses to change a denied request; its state wins and is mirrored next.
            Err(TeleportError::BadParameter(message)) if message.contains("already denied") => {
                tracing::info!(%message, "Teleport already denied the request; mirroring Teleport's state");
                Ok(Outcome::Unknown)
            }
            Err(TeleportError::NotFound(_)) => Ok(Outcome::Unknown),
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
    async fn reason_of(&self, issue: &Issue, author: &User) -> Result<Option<String>, StepError> {
        let mut reason = None;
        self.jira
            .visit_issue_comments_newest_first(issue, |comment| {
                if decision::written_by(comment, author) {
                    reason = decision::reason_in_comment(&comment.body);
                }
                reason.is_none()
            })
            .await?;
        Ok(reason)
    }
}
