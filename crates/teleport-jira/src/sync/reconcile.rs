//! One reconcile step for one access request: read the request, its plugin data and its issue,
//! then do the next thing that is missing. Every action is idempotent or guarded by Teleport's
//! plugin-data compare-and-swap, so a step can be repeated, raced by another replica, or cut short
//! by a crash, and the next step finishes the job.
//!
//! The order of writes is the Go plugin's: plugin data before the issue; review comments in order;
//! on resolution the comment before the transition.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use teleport_proto::types::{AccessRequestV3, RequestState};
use thiserror::Error;

use super::store::RequestStore;
use crate::backoff::Backoff;
use crate::jira::render::{self, RequestView};
use crate::jira::types::{
    EntityProperty, Issue, IssueFieldsInput, IssueInput, KeyRef, NamedRef, REQUEST_ID_PROPERTY,
};
use crate::jira::{JiraClient, JiraError, decision};
use crate::plugin_data::{IssueRef, PLUGIN_NAME, PluginData, Resolution};
use crate::teleport::{TeleportClient, TeleportError};

/// Compare-and-swap rounds lost in a row before the step gives up and is retried later.
const MAX_CAS_ROUNDS: usize = 32;

/// The Jira status names the plugin moves issues to and reads decisions from (case-insensitive).
#[derive(Clone, Debug)]
pub struct StatusNames {
    pub pending: String,
    pub approved: String,
    pub denied: String,
    pub expired: String,
    pub promoted: String,
}

impl Default for StatusNames {
    fn default() -> Self {
        Self {
            pending: "Pending".into(),
            approved: "Approved".into(),
            denied: "Denied".into(),
            expired: "Expired".into(),
            promoted: "Promoted".into(),
        }
    }
}

impl StatusNames {
    fn for_resolution(&self, resolution: &Resolution) -> String {
        match resolution {
            Resolution::Approved => self.approved.clone(),
            Resolution::Denied => self.denied.clone(),
            Resolution::Expired => self.expired.clone(),
            Resolution::Promoted => self.promoted.clone(),
            Resolution::Other(tag) => tag.clone(),
        }
    }
}

/// What the plugin writes into new issues.
#[derive(Clone, Debug, Default)]
pub struct IssueSettings {
    pub project: String,
    pub issue_type: String,
    pub statuses: StatusNames,
    /// The Teleport Proxy's public address, for links to requests in the web UI.
    pub proxy_public_addr: Option<String>,
}

#[derive(Debug, Error)]
pub enum StepError {
    #[error("teleport: {0}")]
    Teleport(#[from] TeleportError),
    #[error("jira: {0}")]
    Jira(#[from] JiraError),
    #[error("{0}")]
    Workflow(String),
}

impl StepError {
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Teleport(err) => err.is_transient(),
            Self::Jira(err) => err.is_transient(),
            Self::Workflow(_) => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Jira(err) => err.retry_after(),
            _ => None,
        }
    }
}

pub struct Reconciler {
    pub teleport: Arc<TeleportClient>,
    pub jira: JiraClient,
    pub store: Arc<RequestStore>,
    pub settings: IssueSettings,
    /// Resolved requests whose issue was seen in its final state: nothing is left to do for them.
    settled: Mutex<HashSet<String>>,
}

impl Reconciler {
    pub fn new(
        teleport: Arc<TeleportClient>,
        jira: JiraClient,
        store: Arc<RequestStore>,
        settings: IssueSettings,
    ) -> Self {
        Self {
            teleport,
            jira,
            store,
            settings,
            settled: Mutex::default(),
        }
    }

    /// Brings request `id` and its issue one step closer to agreement.
    pub async fn step(&self, id: &str) -> Result<(), StepError> {
        if self.is_settled(id) {
            return Ok(());
        }
        // A decision applied from Jira changes the request; the second round mirrors that change.
        for _ in 0..2 {
            let data = self.load(id).await?;
            let Some(request) = self.store.get(id) else {
                return match data.filter(|d| d.issue.is_some()) {
                    Some(data) => self.resolve(id, data, Resolution::Expired, "").await,
                    None => Ok(()),
                };
            };
            let spec = request.spec.clone().unwrap_or_default();
            let resolution = match RequestState::try_from(spec.state) {
                Ok(RequestState::Pending) => {
                    let data = self.ensure_issue(id, &request, data).await?;
                    let data = self.comment_reviews(id, &request, data).await?;
                    if self.apply_jira_decision(id, &request, &data).await? {
                        continue;
                    }
                    return Ok(());
                }
                Ok(RequestState::Approved) => Resolution::Approved,
                Ok(RequestState::Denied) => Resolution::Denied,
                Ok(RequestState::Promoted) => Resolution::Promoted,
                _ => {
                    tracing::warn!(request_state = spec.state, "Unknown request state");
                    return Ok(());
                }
            };
            let Some(data) = data.filter(|d| d.issue.is_some()) else {
                tracing::debug!("Failed to resolve the issue: plugin data is blank");
                return Ok(());
            };
            let data = self.comment_reviews(id, &request, data).await?;
            return self
                .resolve(id, data, resolution, &spec.resolve_reason)
                .await;
        }
        Ok(())
    }

    async fn load(&self, id: &str) -> Result<Option<PluginData>, StepError> {
        Ok(self
            .teleport
            .plugin_data(id, PLUGIN_NAME)
            .await?
            .map(|data| PluginData::decode(&data)))
    }

    /// Compare-and-swap loop: `change` sees the stored data and returns what to store, or `None`
    /// to leave it. Returns the data stored when the loop ends. `change` may run several times.
    async fn modify(
        &self,
        id: &str,
        change: impl Fn(Option<&PluginData>) -> Option<PluginData>,
    ) -> Result<Option<PluginData>, StepError> {
        let mut backoff = Backoff::compare_and_swap();
        for _ in 0..MAX_CAS_ROUNDS {
            let current = self.load(id).await?;
            let Some(next) = change(current.as_ref()) else {
                return Ok(current);
            };
            let expect = current
                .as_ref()
                .map_or_else(PluginData::absent, PluginData::encode);
            match self
                .teleport
                .update_plugin_data(id, PLUGIN_NAME, next.encode(), expect)
                .await
            {
                Ok(()) => return Ok(Some(next)),
                Err(TeleportError::CompareFailed(_)) => {
                    tokio::time::sleep(backoff.next_delay()).await
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(TeleportError::CompareFailed(format!("plugin data of {id} kept changing")).into())
    }

    /// Makes sure the pending request has its issue, and that plugin data names it.
    async fn ensure_issue(
        &self,
        id: &str,
        request: &AccessRequestV3,
        data: Option<PluginData>,
    ) -> Result<PluginData, StepError> {
        if let Some(data) = data.filter(|d| d.issue.is_some()) {
            return Ok(data);
        }
        let fresh = request_data(request);
        let data = self
            .modify(id, |current| match current {
                None => Some(fresh.clone()),
                Some(_) => None,
            })
            .await?
            .unwrap_or(fresh);
        if data.issue.is_some() {
            return Ok(data);
        }
        let created = self.jira.create_issue(&self.issue_input(request)).await?;
        tracing::info!(jira_issue_id = %created.id, jira_issue_key = %created.key, "Jira Issue created");
        let issue = IssueRef {
            id: created.id,
            key: created.key,
        };
        let stored = self
            .modify(id, |current| {
                let mut next = current.cloned().unwrap_or_else(|| request_data(request));
                if next.issue.is_some() {
                    return None;
                }
                next.issue = Some(issue.clone());
                Some(next)
            })
            .await?
            .unwrap_or_default();
        if stored
            .issue
            .as_ref()
            .is_some_and(|kept| kept.id != issue.id)
        {
            tracing::warn!(
                jira_issue_key = %issue.key,
                "Another process recorded a different issue for this request first; this issue is a duplicate"
            );
        }
        Ok(stored)
    }

    fn issue_input(&self, request: &AccessRequestV3) -> IssueInput {
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
                    name: self.settings.issue_type.clone(),
                },
                project: KeyRef {
                    key: self.settings.project.clone(),
                },
                summary: render::summary(&view),
                description: render::description(&view),
                labels: Vec::new(),
            },
            properties: vec![EntityProperty {
                key: REQUEST_ID_PROPERTY.to_owned(),
                value: id.into(),
            }],
        }
    }

    /// Posts one comment per review not yet commented, in order, then records the count.
    async fn comment_reviews(
        &self,
        id: &str,
        request: &AccessRequestV3,
        data: PluginData,
    ) -> Result<PluginData, StepError> {
        let reviews = request
            .spec
            .as_ref()
            .map(|s| s.reviews.as_slice())
            .unwrap_or_default();
        let Some(issue) = data.issue.clone() else {
            return Ok(data);
        };
        if data.reviews_count >= reviews.len() {
            return Ok(data);
        }
        // A step that died after commenting must not comment twice.
        let existing = self.comment_bodies(&issue.id).await?;
        for review in &reviews[data.reviews_count..] {
            let body = render::review_comment(review);
            if !existing.contains(&body) {
                self.jira.add_comment(&issue.id, &body).await?;
            }
        }
        let count = reviews.len();
        let stored = self
            .modify(id, |current| {
                let current = current?;
                (current.reviews_count < count).then(|| PluginData {
                    reviews_count: count,
                    ..current.clone()
                })
            })
            .await?;
        Ok(stored.unwrap_or(data))
    }

    async fn comment_bodies(&self, issue_id: &str) -> Result<HashSet<String>, StepError> {
        let mut bodies = HashSet::new();
        self.jira
            .visit_comments_newest_first(issue_id, |comment| {
                bodies.insert(comment.body.clone());
                true
            })
            .await?;
        Ok(bodies)
    }

    /// Records the resolution (once, across replicas) and brings the issue to it: the resolution
    /// comment, then the transition. Teleport's state wins over what the card shows.
    async fn resolve(
        &self,
        id: &str,
        data: PluginData,
        resolution: Resolution,
        reason: &str,
    ) -> Result<(), StepError> {
        let data = if data.resolution.is_none() {
            let claimed = self
                .modify(id, |current| {
                    let current =
                        current.filter(|c| c.issue.is_some() && c.resolution.is_none())?;
                    Some(PluginData {
                        resolution: Some(resolution.clone()),
                        resolve_reason: reason.to_owned(),
                        ..current.clone()
                    })
                })
                .await?;
            claimed.unwrap_or(data)
        } else {
            data
        };
        let (Some(issue_ref), Some(recorded)) = (data.issue.clone(), data.resolution.clone())
        else {
            return Ok(());
        };
        let target = self.settings.statuses.for_resolution(&recorded);
        let issue = self.jira.issue(&issue_ref.id).await?;
        if issue.status_name().eq_ignore_ascii_case(&target)
            && self.resolution_commented(&issue, &recorded, &data).await?
        {
            self.settle(id);
            return Ok(());
        }
        let comment = render::resolution_comment(recorded.tag(), &data.resolve_reason);
        if !self.comment_bodies(&issue.id).await?.contains(&comment) {
            self.jira.add_comment(&issue.id, &comment).await?;
        }
        if !issue.status_name().eq_ignore_ascii_case(&target) {
            let transition = issue
                .transitions
                .iter()
                .find(|t| t.to.name.eq_ignore_ascii_case(&target))
                .ok_or_else(|| {
                    StepError::Workflow(format!(
                        "cannot find a {} status among possible transitions",
                        target.to_lowercase()
                    ))
                })?;
            self.jira.transition(&issue.id, &transition.id).await?;
            tracing::debug!(target_status = %target, "Successfully moved the issue to the target status");
        }
        tracing::info!(
            resolution = recorded.tag(),
            "Successfully resolved the issue"
        );
        self.settle(id);
        Ok(())
    }

    async fn resolution_commented(
        &self,
        issue: &Issue,
        recorded: &Resolution,
        data: &PluginData,
    ) -> Result<bool, StepError> {
        let comment = render::resolution_comment(recorded.tag(), &data.resolve_reason);
        Ok(self.comment_bodies(&issue.id).await?.contains(&comment))
    }

    /// When the card of a pending request sits in Approved or Denied, resolves the request in
    /// Teleport on behalf of the Jira user who moved it. Returns whether the request changed.
    async fn apply_jira_decision(
        &self,
        id: &str,
        request: &AccessRequestV3,
        data: &PluginData,
    ) -> Result<bool, StepError> {
        let Some(issue_ref) = &data.issue else {
            return Ok(false);
        };
        let issue = self.jira.issue(&issue_ref.id).await?;
        let status = issue.status_name();
        let statuses = &self.settings.statuses;
        let (state, tag) = if status.eq_ignore_ascii_case(&statuses.approved) {
            (RequestState::Approved, "approved")
        } else if status.eq_ignore_ascii_case(&statuses.denied) {
            (RequestState::Denied, "denied")
        } else {
            return Ok(false);
        };
        // Anti-forgery: plugin data (which only the plugin writes) named this issue; the issue must
        // also name this request, or someone copied it around.
        match issue.properties.get(REQUEST_ID_PROPERTY) {
            Some(serde_json::Value::String(named)) if named == id => {}
            other => {
                tracing::warn!(jira_issue_id = %issue.id, property = ?other, "Issue property does not name this request; ignoring its status");
                return Ok(false);
            }
        }
        let author = decision::status_change_author(&issue, status);
        let mut reason = String::new();
        if let Some(author) = &author {
            let found = self.reason_of(&issue.id, author).await;
            match found {
                Ok(Some(text)) => reason = text,
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(error = %err, "Failed to load resolution info from the issue history")
                }
            }
        }
        let who = author
            .as_ref()
            .and_then(|a| {
                a.email_address
                    .clone()
                    .filter(|e| !e.is_empty())
                    .or_else(|| a.identity().map(str::to_owned))
            })
            .unwrap_or_default();
        let delegator = format!("jira:{who}");
        let user = request
            .spec
            .as_ref()
            .map(|s| s.user.as_str())
            .unwrap_or_default();
        match self
            .teleport
            .set_access_request_state(id, state, &reason, &delegator)
            .await
        {
            Ok(()) => {
                tracing::info!(resolution = tag, jira_user_email = %who, request_user = %user, reason = %reason, "Jira user processed the request");
            }
            // Teleport refuses to change a denied request; its state wins and is mirrored next.
            Err(TeleportError::BadParameter(message)) if message.contains("already denied") => {
                tracing::info!(%message, "Teleport already denied the request; mirroring Teleport's state");
            }
            Err(TeleportError::NotFound(_)) => {
                self.store.remove(id);
                return Ok(true);
            }
            Err(err) => return Err(err.into()),
        }
        match self.teleport.access_request(id).await? {
            Some(fresh) => {
                self.store.put(fresh);
            }
            None => self.store.remove(id),
        }
        Ok(true)
    }

    /// The reason `author` gave in their newest comment that has one.
    async fn reason_of(
        &self,
        issue_id: &str,
        author: &crate::jira::types::User,
    ) -> Result<Option<String>, StepError> {
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

    fn is_settled(&self, id: &str) -> bool {
        self.settled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(id)
    }

    fn settle(&self, id: &str) {
        self.settled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned());
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
