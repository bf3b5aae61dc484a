//! One reconcile step for one access request: read the request, its plugin data and its issue,
//! then do the next thing that is missing.
//!
//! Idempotency contract: every write is either guarded by Teleport's plugin-data compare-and-swap
//! or checked against Jira first (a comment is posted only if its exact text is not on the issue;
//! an issue is created only if none made for the request can be found). Jira writes for a request
//! happen under its lease (see [`crate::plugin_data::Lease`]), so replicas never write at once, and a
//! step cut short by a crash is finished by the next one.
//!
//! The order of writes is the Go plugin's: plugin data before the issue; review comments in order;
//! on resolution the comment before the transition.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use teleport_proto::types::{AccessRequestV3, AccessReview, RequestState};
use thiserror::Error;

use super::cas::PluginDataStore;
use super::policy::{ApproverPolicy, Verdict};
use super::recovery::{self, issue_number, request_label};
use super::store::RequestStore;
use crate::config::ResolveWith;
pub use crate::config::StatusNames;
use crate::jira::render::{self, RequestView};
use crate::jira::same_name;
use crate::jira::types::{
    EntityProperty, Issue, IssueFieldsInput, IssueInput, KeyRef, NamedRef, REQUEST_ID_PROPERTY,
    User,
};
use crate::jira::{JiraClient, JiraError, decision};
use crate::metrics::Metrics;
use crate::plugin_data::{IssueRef, PluginData, Resolution};
use crate::teleport::{TeleportClient, TeleportError};

/// Resolved requests remembered as done; past this many the memory is cleared and refilled.
const MAX_SETTLED: usize = 50_000;

/// How long another process's lease is respected after it was taken.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// The status an issue takes for a resolution.
fn status_for(statuses: &StatusNames, resolution: &Resolution) -> String {
    match resolution {
        Resolution::Approved => statuses.approved.clone(),
        Resolution::Denied => statuses.denied.clone(),
        Resolution::Expired => statuses.expired.clone(),
        Resolution::Promoted => statuses.promoted.clone(),
        Resolution::Other(tag) => tag.clone(),
    }
}

/// What the plugin writes into new issues.
#[derive(Clone, Debug)]
pub struct IssueSettings {
    pub project: String,
    pub issue_type: String,
    pub statuses: StatusNames,
    /// The Teleport Proxy's public address, for links to requests in the web UI.
    pub proxy_public_addr: Option<String>,
    /// Labels added to every new issue, besides the request label.
    pub labels: Vec<String>,
    /// Static fields added to every new issue.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Who may decide from Jira.
    pub policy: ApproverPolicy,
    pub resolve_with: ResolveWith,
}

#[derive(Debug, Error)]
pub enum StepError {
    #[error("teleport: {0}")]
    Teleport(#[from] TeleportError),
    #[error("jira: {0}")]
    Jira(#[from] JiraError),
    #[error("{0}")]
    Workflow(String),
    /// Another process holds the request's lease; try again shortly.
    #[error("another process is working on this request")]
    Busy,
}

impl StepError {
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Teleport(err) => err.is_transient(),
            Self::Jira(err) => err.is_transient(),
            Self::Workflow(_) => false,
            Self::Busy => true,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Jira(err) => err.retry_after(),
            Self::Busy => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

pub struct Reconciler {
    pub teleport: Arc<TeleportClient>,
    pub jira: JiraClient,
    pub store: Arc<RequestStore>,
    pub settings: IssueSettings,
    data: PluginDataStore,
    /// The highest issue number seen in the project: a lower bound for the next one created.
    latest_issue: AtomicU64,
    /// Whether `latest_issue` is known (a search answered, or an issue number was seen).
    latest_issue_known: std::sync::atomic::AtomicBool,
    /// Whether new issues carry the request label (off once Jira refused the field).
    label_issues: std::sync::atomic::AtomicBool,
    /// Resolved requests whose issue was seen in its final state: nothing is left to do for them.
    settled: Mutex<HashSet<String>>,
    pub metrics: Arc<Metrics>,
}

impl Reconciler {
    pub fn new(
        teleport: Arc<TeleportClient>,
        jira: JiraClient,
        store: Arc<RequestStore>,
        settings: IssueSettings,
        lease_ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            data: PluginDataStore::new(teleport.clone(), lease_ttl),
            teleport,
            jira,
            store,
            settings,
            latest_issue: AtomicU64::new(0),
            latest_issue_known: std::sync::atomic::AtomicBool::new(false),
            label_issues: std::sync::atomic::AtomicBool::new(true),
            settled: Mutex::default(),
            metrics,
        }
    }

    /// Learns the newest issue number of the project (search may lag; a lower number only makes a
    /// later recovery read a few more issues).
    pub async fn learn_latest_issue(&self) {
        let jql = format!(
            "project = \"{}\" ORDER BY created DESC",
            self.settings.project
        );
        match self.jira.search(&jql, 1).await {
            Ok(hits) => {
                let newest = hits
                    .iter()
                    .filter_map(|hit| hit.key.as_deref().and_then(issue_number))
                    .max();
                self.note_issue_number(newest.unwrap_or(0));
            }
            Err(err) => tracing::debug!(error = %err, "Could not learn the project's newest issue"),
        }
    }

    fn note_issue_number(&self, number: u64) {
        self.latest_issue.fetch_max(number, Ordering::Relaxed);
        self.latest_issue_known.store(true, Ordering::Relaxed);
    }

    fn latest_issue(&self) -> Option<u64> {
        let known = self.latest_issue_known.load(Ordering::Relaxed);
        known.then(|| self.latest_issue.load(Ordering::Relaxed))
    }

    /// Brings request `id` and its issue one step closer to agreement.
    pub async fn step(&self, id: &str) -> Result<(), StepError> {
        if self.is_settled(id) {
            return Ok(());
        }
        // A decision applied from Jira changes the request; the second round mirrors that change.
        for _ in 0..2 {
            let data = self.data.load(id).await?;
            if let Some(issue) = data.as_ref().and_then(|d| d.issue.as_ref()) {
                // Every later line of this step is about that issue too.
                tracing::Span::current().record("jira_issue_key", issue.key.as_str());
                if let Some(number) = issue_number(&issue.key) {
                    self.note_issue_number(number);
                }
            }
            let Some(request) = self.request(id).await? else {
                return match data.filter(|d| d.issue.is_some()) {
                    Some(data) => self.resolve(id, data, Resolution::Expired, "").await,
                    None => Ok(()),
                };
            };
            let spec = request.spec.clone().unwrap_or_default();
            let resolution = match RequestState::try_from(spec.state) {
                Ok(RequestState::Pending) => {
                    let had_issue = data.as_ref().is_some_and(|d| d.issue.is_some());
                    let data = self.ensure_issue(id, &request, data).await?;
                    let data = self.comment_reviews(id, &request, data).await?;
                    // An issue made in this very step is still in its first status; reading it
                    // back would cost a Jira call per request for nothing.
                    if had_issue && self.apply_jira_decision(id, &request, &data).await? {
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

    /// The request from the cache, or from Teleport when the cache does not have it: a cache miss
    /// (a process that just started, a watch that is reconnecting) must never read as "deleted".
    async fn request(&self, id: &str) -> Result<Option<AccessRequestV3>, StepError> {
        if let Some(request) = self.store.get(id) {
            return Ok(Some(request));
        }
        let fresh = self.teleport.access_request(id).await?;
        if let Some(request) = &fresh {
            self.store.put(request.clone());
        }
        Ok(fresh)
    }

    /// Runs `work` under the request's lease, taken together with `change`, and releases it after.
    /// `change` returns `None` when there is nothing to do; then `work` does not run. `seen` is the
    /// data as the step last read it, tried first instead of reading it again.
    async fn with_lease<T, Fut>(
        &self,
        id: &str,
        seen: Option<&PluginData>,
        end: LeaseEnd,
        change: impl Fn(&PluginData) -> Option<PluginData>,
        work: impl FnOnce(PluginData, Option<PluginData>) -> Fut,
    ) -> Result<Option<T>, StepError>
    where
        Fut: Future<Output = Result<T, StepError>>,
    {
        let latest = self.latest_issue();
        let taken = self
            .data
            .modify_from(id, seen.cloned().map(Some), |current| {
                if self.data.leased_by_other(current) {
                    return None;
                }
                let current = current?;
                // An earlier holder's mark must survive a takeover, or an issue it created could
                // fall below the next holder's mark.
                let after_issue = match &current.lease {
                    Some(earlier) => earlier.after_issue.zip(latest).map(|(a, b)| a.min(b)),
                    None => latest,
                };
                let mut next = change(current)?;
                next.lease = Some(self.data.new_lease(after_issue));
                Some(next)
            })
            .await?;
        if !taken.wrote {
            return match taken.after {
                Some(current) if self.data.leased_by_other(Some(&current)) => Err(StepError::Busy),
                _ => Ok(None),
            };
        }
        let Some(leased) = taken.after else {
            return Ok(None);
        };
        // A slow step keeps its lease alive; only a dead (or cut-off) holder lets it lapse.
        let written = leased.clone();
        let result = tokio::select! {
            result = work(leased, taken.before) => result,
            never = self.data.keep_renewed(id) => match never {},
        };
        if result.is_err() && end == LeaseEnd::ExpireOnFailure {
            self.data.expire(id).await;
        } else {
            self.data.release(id, Some(written)).await;
        }
        result.map(Some)
    }

    /// Makes sure the pending request has its issue, and that plugin data names it.
    async fn ensure_issue(
        &self,
        id: &str,
        request: &AccessRequestV3,
        data: Option<PluginData>,
    ) -> Result<PluginData, StepError> {
        let data = match data {
            Some(data) if data.issue.is_some() => return Ok(data),
            other => other,
        };
        // The Go plugin writes the request data alone first; here it goes in with the lease.
        let fresh = request_data(request);
        let created = self
            .data
            .modify_from(id, Some(data.clone()), |current| match current {
                None => Some(PluginData {
                    lease: Some(self.data.new_lease(self.latest_issue())),
                    ..fresh.clone()
                }),
                Some(_) => None,
            })
            .await?;
        let seen = created.after.clone();
        let leased = if created.wrote {
            created.after
        } else {
            match created.after {
                Some(data) if data.issue.is_some() => return Ok(data),
                _ => None,
            }
        };
        let outcome = match leased {
            // A brand-new record: no issue can exist yet.
            Some(leased) => {
                let result = tokio::select! {
                    result = self.create_issue(id, request, Lookup::Skip, Some(leased)) => result,
                    never = self.data.keep_renewed(id) => match never {},
                };
                if result.is_err() {
                    // Keep the mark: an issue may exist that Jira did not confirm.
                    self.data.expire(id).await;
                }
                result
            }
            // A record without an issue: an earlier creation may have happened; look first.
            None => self
                .with_lease(
                    id,
                    seen.as_ref(),
                    LeaseEnd::ExpireOnFailure,
                    |current| current.issue.is_none().then(|| current.clone()),
                    |leased, before| {
                        // Issues an earlier holder may have created are numbered after the
                        // newest issue it knew of; a record without a lease (the Go plugin's)
                        // can only be searched for.
                        let after_issue = before
                            .and_then(|b| b.lease)
                            .and_then(|lease| lease.after_issue);
                        self.create_issue(id, request, Lookup::First { after_issue }, Some(leased))
                    },
                )
                .await?
                .ok_or(StepError::Busy),
        };
        match outcome {
            Ok(data) => Ok(data),
            Err(StepError::Busy) => match self.data.load(id).await? {
                Some(data) if data.issue.is_some() => Ok(data),
                _ => Err(StepError::Busy),
            },
            Err(err) => Err(err),
        }
    }

    /// Creates the issue and records it; with [`Lookup::First`] (an earlier attempt may have
    /// created it), first looks for an issue made for the request and adopts it instead.
    async fn create_issue(
        &self,
        id: &str,
        request: &AccessRequestV3,
        lookup: Lookup,
        written: Option<PluginData>,
    ) -> Result<PluginData, StepError> {
        let existing = match lookup {
            Lookup::First { after_issue } => {
                recovery::find_issues(&self.jira, &self.settings.project, id, after_issue).await?
            }
            Lookup::Skip => Vec::new(),
        };
        let issue = match existing.split_first() {
            Some((kept, duplicates)) => {
                tracing::info!(jira_issue_key = %kept.key, "Found the issue an earlier attempt created");
                for duplicate in duplicates {
                    recovery::close_duplicate(
                        &self.jira,
                        duplicate,
                        &kept.key,
                        &self.settings.statuses.expired,
                    )
                    .await?;
                }
                IssueRef {
                    id: kept.id.clone(),
                    key: kept.key.clone(),
                }
            }
            None => {
                let created = self.post_issue(request).await?;
                self.metrics.issues_created.inc();
                tracing::info!(jira_issue_id = %created.id, jira_issue_key = %created.key, "Jira Issue created");
                created
            }
        };
        tracing::Span::current().record("jira_issue_key", issue.key.as_str());
        if let Some(number) = issue_number(&issue.key) {
            self.note_issue_number(number);
        }
        let recorded = self
            .data
            .modify_from(id, written.map(Some), |current| {
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
        if let Some(kept) = stored.issue.as_ref().filter(|kept| kept.id != issue.id) {
            // Only possible if a lease expired under a very slow step; the board still converges.
            if let Some(duplicate) = self.jira.issue_if_exists(&issue.id).await? {
                recovery::close_duplicate(
                    &self.jira,
                    &duplicate,
                    &kept.key,
                    &self.settings.statuses.expired,
                )
                .await?;
            }
        }
        Ok(stored)
    }

    async fn post_issue(&self, request: &AccessRequestV3) -> Result<IssueRef, StepError> {
        let mut input = self.issue_input(request);
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
                labels: std::iter::once(request_label(&id))
                    .chain(self.settings.labels.iter().cloned())
                    .collect(),
                extra: self.settings.fields.clone(),
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
            .map(|s| s.reviews.clone())
            .unwrap_or_default();
        let count = reviews.len();
        if data.reviews_count >= count || data.issue.is_none() {
            return Ok(data);
        }
        let done = self
            .with_lease(
                id,
                Some(&data),
                LeaseEnd::Release,
                |current| {
                    (current.issue.is_some() && current.reviews_count < count)
                        .then(|| current.clone())
                },
                |leased, _| async move {
                    let Some(issue) = leased.issue.clone() else {
                        return Ok(leased);
                    };
                    // A step that died after commenting must not comment twice.
                    let existing = self.comment_bodies(&issue.id).await?;
                    for review in &reviews[leased.reviews_count..] {
                        let body = render::review_comment(review);
                        if !existing.contains(&body) {
                            self.jira.add_comment(&issue.id, &body).await?;
                        }
                    }
                    let recorded = self
                        .data
                        .modify(id, |current| {
                            let current = current?;
                            (current.reviews_count < count).then(|| PluginData {
                                reviews_count: count,
                                ..current.clone()
                            })
                        })
                        .await?;
                    Ok(recorded.after.unwrap_or(leased))
                },
            )
            .await?;
        match done {
            Some(data) => Ok(data),
            None => Ok(self.data.load(id).await?.unwrap_or(data)),
        }
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
        if let (Some(issue_ref), Some(recorded)) = (&data.issue, &data.resolution) {
            // Already recorded: nothing to write if the issue shows it.
            let issue = self.jira.issue(&issue_ref.id).await?;
            let comment = render::resolution_comment(recorded.tag(), &data.resolve_reason);
            let target = status_for(&self.settings.statuses, recorded);
            if same_name(issue.status_name(), &target)
                && self.comment_bodies(&issue.id).await?.contains(&comment)
            {
                self.settle(id);
                return Ok(());
            }
        }
        let finished = self
            .with_lease(
                id,
                Some(&data),
                LeaseEnd::Release,
                |current| {
                    current.issue.as_ref()?;
                    let mut next = current.clone();
                    if next.resolution.is_none() {
                        next.resolution = Some(resolution.clone());
                        next.resolve_reason = reason.to_owned();
                    }
                    Some(next)
                },
                |leased, _| self.mirror_resolution(leased),
            )
            .await?;
        if finished.is_some() {
            self.settle(id);
        }
        Ok(())
    }

    /// Under the lease: the resolution comment unless present, then the transition unless done.
    async fn mirror_resolution(&self, leased: PluginData) -> Result<(), StepError> {
        let (Some(issue_ref), Some(recorded)) = (leased.issue.clone(), leased.resolution.clone())
        else {
            return Ok(());
        };
        let target = status_for(&self.settings.statuses, &recorded);
        let issue = self.jira.issue(&issue_ref.id).await?;
        let comment = render::resolution_comment(recorded.tag(), &leased.resolve_reason);
        if !self.comment_bodies(&issue.id).await?.contains(&comment) {
            self.jira.add_comment(&issue.id, &comment).await?;
        }
        if !same_name(issue.status_name(), &target) {
            match self.move_issue(&issue, &target).await {
                Ok(()) => {
                    tracing::debug!(target_status = %target, "Successfully moved the issue to the target status");
                }
                // Many workflows have no Promoted status (the Go plugin's setup guide names only
                // four); retrying could never succeed, and the comment already tells the story.
                Err(StepError::Workflow(why)) if recorded == Resolution::Promoted => {
                    tracing::warn!(
                        reason = %why,
                        "The workflow has no status for promoted requests; the card keeps its status (map one with [jira.statuses] promoted)"
                    );
                }
                Err(err) => return Err(err),
            }
        }
        tracing::info!(
            resolution = recorded.tag(),
            "Successfully resolved the issue"
        );
        Ok(())
    }

    /// When the card of a pending request sits in Approved or Denied, resolves the request in
    /// Teleport on behalf of the Jira user who moved it, if the approver policy allows them.
    /// Returns whether the request may have changed.
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
        let status = issue.status_name().to_owned();
        let statuses = &self.settings.statuses;
        let decision = if same_name(&status, &statuses.approved) {
            Decision {
                state: RequestState::Approved,
                tag: "approved",
            }
        } else if same_name(&status, &statuses.denied) {
            Decision {
                state: RequestState::Denied,
                tag: "denied",
            }
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
        let author = decision::status_change_author(&issue, &status);
        let requester = request
            .spec
            .as_ref()
            .map(|s| s.user.as_str())
            .unwrap_or_default();
        let verdict = self.settings.policy.judge(author.as_ref(), requester);
        let reason = match (&author, &verdict) {
            (Some(author), Verdict::Allow { .. }) => self.reason_of(&issue.id, author).await.unwrap_or_else(|err| {
                tracing::error!(error = %err, "Failed to load resolution info from the issue history");
                None
            }),
            _ => None,
        }
        .unwrap_or_default();
        let applied = self
            .with_lease(
                id,
                Some(data),
                LeaseEnd::Release,
                |current| Some(current.clone()),
                |_, _| async {
                    // Under the lease, read the request from Teleport itself: the cache may lag a
                    // decision another replica already applied.
                    let fresh = self.teleport.access_request(id).await?;
                    let still_pending = fresh
                        .as_ref()
                        .and_then(|r| r.spec.as_ref())
                        .is_some_and(|s| s.state == RequestState::Pending as i32);
                    if !still_pending {
                        return Ok(());
                    }
                    match verdict {
                        Verdict::Refuse(why) => self.send_back(&issue, decision.tag, &why).await,
                        Verdict::Allow {
                            delegator,
                            teleport_user,
                        } => {
                            self.decide(
                                id,
                                &issue,
                                decision,
                                &reason,
                                &delegator,
                                teleport_user.as_deref(),
                            )
                            .await
                        }
                    }
                },
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
            return match self
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
            };
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

    /// Moves the issue along the transition that leads to `status` (matched by name, as the Go
    /// plugin does: transition names do not matter, only where they lead).
    async fn move_issue(&self, issue: &Issue, status: &str) -> Result<(), StepError> {
        let transition = issue
            .transitions
            .iter()
            .find(|t| same_name(&t.to.name, status))
            .ok_or_else(|| {
                StepError::Workflow(format!(
                    "cannot find a {} status among possible transitions",
                    status.to_lowercase()
                ))
            })?;
        self.jira.transition(&issue.id, &transition.id).await?;
        self.metrics.issue_moved(&transition.to.name);
        Ok(())
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

    fn is_settled(&self, id: &str) -> bool {
        crate::lock::lock(&self.settled).contains(id)
    }

    /// Something happened to the request's issue: look at it again even if it was settled, so a
    /// card moved after Teleport decided is brought back to Teleport's decision.
    pub fn unsettle(&self, id: &str) {
        crate::lock::lock(&self.settled).remove(id);
    }

    fn settle(&self, id: &str) {
        let mut settled = crate::lock::lock(&self.settled);
        // Forgetting is safe (a forgotten request is only checked again), so the set stays bounded.
        if settled.len() >= MAX_SETTLED {
            settled.clear();
        }
        settled.insert(id.to_owned());
    }
}

/// What happens to the lease when the work under it fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LeaseEnd {
    Release,
    /// Keep its record of the newest issue number, but let anyone take it over at once.
    ExpireOnFailure,
}

/// A decision read from the card.
#[derive(Clone, Copy, Debug)]
struct Decision {
    state: RequestState,
    tag: &'static str,
}

/// Whether to look for an existing issue before creating one.
enum Lookup {
    /// The record is brand new: no issue can exist.
    Skip,
    /// An earlier attempt may have created one, numbered after `after_issue` if that is known.
    First { after_issue: Option<u64> },
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
