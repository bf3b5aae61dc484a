//! The first phase: a pending request gets its issue, recorded in its plugin data. A creation that
//! may have happened before (a crash, a lost reply) is looked for first and adopted, never repeated.

use std::sync::atomic::Ordering;

use teleport_proto::types::AccessRequestV3;

use super::Reconciler;
use super::lease::LeaseEnd;
use super::routing::Placement;
use crate::jira::JiraError;
use crate::jira::render::{self, RequestView};
use crate::jira::types::{
    EntityProperty, IssueFieldsInput, IssueInput, KeyRef, NamedRef, REQUEST_ID_PROPERTY,
};
use crate::plugin_data::{IssueRef, PluginData};
use crate::sync::cas::Change;
use crate::sync::error::StepError;
use crate::sync::recovery::{self, request_label};

/// What a record without an issue needs after [`Reconciler::record_new`].
enum Next {
    /// This step wrote the record, with its lease: create the issue.
    Create(Box<PluginData>),
    /// A record was there (as last seen): an issue may exist; look for it under the lease.
    LookFirst(Option<Box<PluginData>>),
}

/// Whether to look for an existing issue before creating one.
enum Lookup {
    /// The record is brand new: no issue can exist.
    Skip,
    /// An earlier attempt may have created one, numbered after `after_issue` if that is known.
    First { after_issue: Option<u64> },
}

/// A pending request's record once [`Reconciler::ensure_issue`] made sure of its issue.
pub(super) struct Ensured {
    pub data: PluginData,
    /// Whether the issue was there before this step. One this step made, adopted after a lost
    /// creation, or waited for while another process made it is still in its first status.
    pub found: bool,
}

impl Ensured {
    fn found(data: PluginData) -> Self {
        Self { data, found: true }
    }
}

impl Reconciler {
    /// Makes sure the pending request has its issue, and that plugin data names it. The rare paths
    /// (routing by rules, the first look at the project, the look-up after an unknown outcome,
    /// closing duplicates) are boxed, so the common creation does not carry their room.
    pub(super) async fn ensure_issue(
        &self,
        id: &str,
        request: &AccessRequestV3,
        data: Option<Box<PluginData>>,
    ) -> Result<Ensured, StepError> {
        // Only what the next phase needs lives on across its await, and the record in a box:
        // every copy of it a step keeps in flight is 400 bytes, times the steps in flight.
        let next = {
            let data = match data {
                Some(data) if data.issue.is_some() || data.is_suppressed() => {
                    return Ok(Ensured::found(*data));
                }
                other => other.map(|data| *data),
            };
            let created = self.record_new(id, request, data).await?;
            match created.after {
                // Recorded already (by another process, or before the step's guess of no record).
                Some(data) if data.issue.is_some() || data.is_suppressed() => {
                    if data.is_suppressed() {
                        tracing::info!(
                            "No Jira issue for this request: an Access Monitoring Rule said none"
                        );
                    }
                    return Ok(Ensured::found(data));
                }
                Some(leased) if created.wrote => Next::Create(Box::new(leased)),
                seen => Next::LookFirst(seen.map(Box::new)),
            }
        };
        let outcome = match next {
            // A brand-new record: no issue can exist yet.
            Next::Create(leased) => self.create_first_issue(id, request, leased).await,
            // A record without an issue: an earlier creation may have happened; look first.
            Next::LookFirst(seen) => Box::pin(self.with_lease(
                id,
                seen.as_deref(),
                LeaseEnd::ExpireOnFailure,
                |current| current.issue.is_none().then(|| current.clone()),
                |leased, before| {
                    // Issues an earlier holder may have created are numbered after the
                    // newest issue it knew of; a record without a lease (the Go plugin's)
                    // can only be searched for.
                    let after_issue = before
                        .and_then(|b| b.lease)
                        .and_then(|lease| lease.after_issue);
                    let leased = Some(Box::new(leased));
                    self.create_issue(id, request, Lookup::First { after_issue }, leased)
                },
            ))
            .await?
            .ok_or(StepError::Busy),
        };
        let data = match outcome {
            Ok(data) => data,
            Err(StepError::Busy) => match self.data.load(id).await? {
                Some(data) if data.issue.is_some() => data,
                _ => return Err(StepError::Busy),
            },
            Err(err) => return Err(err),
        };
        Ok(Ensured { data, found: false })
    }

    /// Writes the record of a request seen for the first time (nothing when `data` shows one
    /// exists): the Go plugin writes the request data alone first; here it goes in with the
    /// lease, and with where the rules sent the issue (decided once, before any Jira write). A
    /// request the rules keep off the board gets no lease: nothing will be written to Jira.
    async fn record_new(
        &self,
        id: &str,
        request: &AccessRequestV3,
        data: Option<PluginData>,
    ) -> Result<Change, StepError> {
        let mut fresh = request_data(request);
        if data.is_none() {
            fresh.route = Box::pin(self.route_new_request(request)).await?;
        }
        let suppressed = fresh.is_suppressed();
        let project = self.placement(Some(&fresh)).project;
        if !suppressed && self.latest_issue(&project).is_none() {
            Box::pin(self.learn_latest_issue(&project)).await;
        }
        self.data
            .modify_from(id, Some(data), |current| match current {
                None => Some(PluginData {
                    lease: (!suppressed).then(|| self.data.new_lease(self.latest_issue(&project))),
                    ..fresh.clone()
                }),
                Some(_) => None,
            })
            .await
    }

    /// Creates the issue of a record this step just made (no issue can exist), under its lease.
    /// A creation Jira surely refused clears the record, so the next step starts over as new
    /// with no look-up; an unknown outcome keeps the mark for the look-up that then follows.
    async fn create_first_issue(
        &self,
        id: &str,
        request: &AccessRequestV3,
        leased: Box<PluginData>,
    ) -> Result<PluginData, StepError> {
        let record = leased.clone();
        let result = tokio::select! {
            result = self.create_issue(id, request, Lookup::Skip, Some(leased)) => result,
            never = self.data.keep_renewed(id, record.clone()) => match never {},
        };
        match &result {
            Ok(_) => {}
            Err(StepError::Jira(err)) if err.surely_refused() => {
                if let JiraError::Status {
                    status: 400 | 403 | 404,
                    details,
                    ..
                } = err
                {
                    self.note_refused_creation(&record, details);
                }
                if let Err(forget) = self.data.forget(id).await {
                    tracing::warn!(error = %forget, "Failed to clear the record of a refused creation; the next step looks for an issue first");
                    self.data.expire(id).await;
                }
            }
            Err(_) => self.data.expire(id).await,
        }
        result
    }

    /// Creates the issue and records it; with [`Lookup::First`] (an earlier attempt may have
    /// created it), first looks for an issue made for the request and adopts it instead.
    async fn create_issue(
        &self,
        id: &str,
        request: &AccessRequestV3,
        lookup: Lookup,
        written: Option<Box<PluginData>>,
    ) -> Result<PluginData, StepError> {
        let placement = self.placement(written.as_deref());
        let existing = match lookup {
            Lookup::First { after_issue } => {
                Box::pin(recovery::find_issues(
                    &self.jira,
                    &self.known_issues,
                    &placement.project,
                    id,
                    after_issue,
                ))
                .await?
            }
            Lookup::Skip => Vec::new(),
        };
        let issue = match existing.split_first() {
            Some((kept, duplicates)) => {
                tracing::info!(jira_issue_key = %kept.key, "Found the issue an earlier attempt created");
                for duplicate in duplicates {
                    Box::pin(recovery::close_duplicate(
                        &self.jira,
                        duplicate,
                        &kept.key,
                        &self.settings.statuses.expired,
                    ))
                    .await?;
                }
                IssueRef {
                    id: kept.id.clone(),
                    key: kept.key.clone(),
                }
            }
            None => {
                let created = self.post_issue(request, &placement).await?;
                self.metrics.issues_created.inc();
                self.known_issues.remember_made_for(&created.key, id);
                tracing::info!(jira_issue_id = %created.id, jira_issue_key = %created.key, "Jira Issue created");
                created
            }
        };
        tracing::Span::current().record("jira_issue_key", issue.key.as_str());
        self.note_issue_key(&issue.key);
        let recorded = self
            .data
            .modify_from(id, written.map(|written| Some(*written)), |current| {
                let mut next = current.cloned().unwrap_or_else(|| request_data(request));
                if next.issue.is_some() {
                    return None;
                }
                next.issue = Some(issue.clone());
                next.lease = None;
                Some(next)
            })
            .await?;
        let stored = recorded.after.unwrap_or_default();
        if let Some(recorded) = &stored.issue {
            self.owners.note(id, &recorded.id);
        }
        if let Some(kept) = stored.issue.as_ref().filter(|kept| kept.id != issue.id) {
            // Only possible if a lease expired under a very slow step; the board still converges.
            if let Some(duplicate) = Box::pin(self.jira.issue_if_exists(&issue.id)).await? {
                Box::pin(recovery::close_duplicate(
                    &self.jira,
                    &duplicate,
                    &kept.key,
                    &self.settings.statuses.expired,
                ))
                .await?;
            }
        }
        Ok(stored)
    }

    async fn post_issue(
        &self,
        request: &AccessRequestV3,
        placement: &Placement,
    ) -> Result<IssueRef, StepError> {
        let mut input = self.issue_input(request, placement);
        if !self.label_issues.load(Ordering::Relaxed) {
            input.fields.labels.clear();
        }
        let created = match self.jira.create_issue(&input).await {
            // Some create screens have no Labels field; the issue is still findable by key.
            Err(JiraError::Status {
                status: 400,
                details,
                ..
            }) if details.contains("labels") && !input.fields.labels.is_empty() => {
                tracing::warn!(%details, "Jira refused the labels field; creating issues without the request label");
                self.label_issues.store(false, Ordering::Relaxed);
                input.fields.labels.clear();
                self.jira.create_issue(&input).await?
            }
            other => other?,
        };
        Ok(IssueRef {
            id: created.id,
            key: created.key,
        })
    }

    fn issue_input(&self, request: &AccessRequestV3, placement: &Placement) -> IssueInput {
        let id = request
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let link = self
            .settings
            .proxy_public_addr
            .as_deref()
            .and_then(|addr| render::request_link(addr, &id));
        let view = RequestView::of(request, link);
        IssueInput {
            fields: IssueFieldsInput {
                issuetype: NamedRef {
                    name: placement.issue_type.clone(),
                },
                project: KeyRef {
                    key: placement.project.clone(),
                },
                summary: render::summary(&view),
                description: render::description(&view),
                labels: std::iter::once(request_label(&id))
                    .chain(self.settings.labels.iter().cloned())
                    .chain(
                        placement
                            .labels
                            .iter()
                            .filter(|label| !self.settings.labels.contains(label))
                            .cloned(),
                    )
                    .collect(),
                extra: self.settings.fields.clone(),
            },
            properties: vec![EntityProperty {
                key: REQUEST_ID_PROPERTY.to_owned(),
                value: id.into(),
            }],
        }
    }
}

/// Plugin data for a request that has no issue yet.
fn request_data(request: &AccessRequestV3) -> PluginData {
    let spec = request.spec.clone().unwrap_or_default();
    PluginData {
        user: spec.user,
        roles: spec.roles,
        created: spec.created.as_ref().and_then(render::timestamp),
        request_reason: spec.request_reason,
        ..PluginData::default()
    }
}
