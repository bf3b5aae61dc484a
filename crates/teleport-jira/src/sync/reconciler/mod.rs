//! One reconcile step for one access request: read the request, its plugin data and its issue,
//! then do the next thing that is missing. Each phase has its file: [`ensure_issue`] (the issue
//! exists and is recorded), [`reviews`] (reviews become comments), [`decision`] (a card moved on
//! the board resolves the request), [`resolution`] (Teleport's resolution reaches the card).
//!
//! Idempotency contract: every write is either guarded by Teleport's plugin-data compare-and-swap
//! or checked against Jira first (a comment is posted only if its exact text is not on the issue;
//! an issue is created only if none made for the request can be found). Jira writes for a request
//! happen under its lease (see [`crate::plugin_data::Lease`] and [`lease`]), so replicas never
//! write at once, and a step cut short by a crash is finished by the next one.
//!
//! The order of writes is the Go plugin's: plugin data before the issue; review comments in order;
//! on resolution the comment before the transition.

mod approver_groups;
mod audit;
mod decision;
mod ensure_issue;
mod issue_numbers;
mod issue_owners;
mod lease;
mod marks;
mod oncall;
mod owner;
mod people_on_ticket;
mod reminder;
mod resolution;
mod reviews;
mod routing;
mod settled;
mod sweep;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use teleport_proto::types::{AccessRequestV3, RequestState};

use super::audit_log::AuditLog;
use super::cas::PluginDataStore;
use super::error::StepError;
use super::people::People;
use super::policy::ApproverPolicy;
use super::recovery::KnownIssues;
use super::store::RequestStore;
use crate::config::{AuditConfig, PeopleConfig, ResolveWith, StatusNames};
use crate::jira::types::Issue;
use crate::jira::{JiraClient, same_name};
use crate::metrics::Metrics;
use crate::plugin_data::{PluginData, Resolution};
use crate::rules::{LiveRules, RuleFilter};
use crate::teleport::{TeleportClient, TeleportError};
use approver_groups::Memberships;
use issue_numbers::IssueNumbers;
use issue_owners::IssueOwners;
use marks::Marks;
use oncall::OnCall;
pub use oncall::{OnCallSettings, run_on_call_checks};
pub use owner::OwnerError;
use people_on_ticket::PeopleOnTicket;
use settled::Settled;

/// What the plugin writes into new issues, and how it reads decisions from them.
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
    /// Which Access Monitoring Rules apply: those notifying this plugin (and those asking its
    /// review integration to approve).
    pub rules: RuleFilter,
    /// Who goes on the ticket, and reminders.
    pub people: PeopleConfig,
    pub audit: AuditConfig,
}

/// The context every phase works in: the two clients, the request cache, and what this process
/// remembers between steps. Its parts are reached through its methods only.
pub struct Reconciler {
    teleport: Arc<TeleportClient>,
    jira: JiraClient,
    store: Arc<RequestStore>,
    settings: IssueSettings,
    data: PluginDataStore,
    numbers: IssueNumbers,
    /// Which request each issue seen in plugin data belongs to, for webhooks.
    owners: IssueOwners,
    /// Issues read while looking for lost creations, shared by every look-up.
    known_issues: KnownIssues,
    /// Whether new issues carry the request label (off once Jira refused the field).
    label_issues: AtomicBool,
    settled: Settled,
    /// Requests whose issue another process was creating when this one last looked (the step
    /// found their lease taken and no issue yet). When the issue then appears it is in its first
    /// status, so the first step that finds it does not read it back for a decision; a webhook
    /// about the issue, or the scan, reads it as usual.
    awaited: Marks,
    /// Pending requests this process saw created (the watch's first word of them): nothing can
    /// have recorded them yet in the common case, so their first step starts from "no record"
    /// instead of reading it; the compare-and-swap that writes the record checks that guess.
    unrecorded: Marks,
    /// The approver groups of recent movers.
    memberships: Memberships,
    /// The Access Monitoring Rules in force (none unless the watch delivers them).
    rules: LiveRules,
    /// Rule targets Jira refused lately.
    refused_targets: routing::RefusedTargets,
    /// Teleport users' Jira identities.
    people: People,
    /// The on-call check, when `[jsm_oncall]` is on.
    on_call: Option<OnCall>,
    /// How the site names people, and the parts of `[jira.people]` Jira refused.
    on_ticket: PeopleOnTicket,
    /// `[audit] jsonl_path`, when set.
    audit_log: Option<AuditLog>,
    metrics: Arc<Metrics>,
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
        let people = People::new(teleport.clone(), jira.clone());
        let reconciler = Self {
            data: PluginDataStore::new(teleport.clone(), lease_ttl),
            teleport,
            jira,
            store,
            numbers: IssueNumbers::default(),
            owners: IssueOwners::default(),
            known_issues: KnownIssues::default(),
            label_issues: AtomicBool::new(true),
            settled: Settled::default(),
            awaited: Marks::default(),
            unrecorded: Marks::default(),
            memberships: Memberships::default(),
            rules: LiveRules::new(&settings.rules),
            refused_targets: routing::RefusedTargets::default(),
            people,
            on_call: None,
            on_ticket: PeopleOnTicket::default(),
            audit_log: settings.audit.jsonl_path.clone().map(AuditLog::new),
            settings,
            metrics,
        };
        let static_target = reconciler.static_routing_label();
        drop(
            reconciler
                .metrics
                .routing_decisions
                .get_or_create(&static_target),
        );
        reconciler
    }

    /// Turns on the on-call check (see [`oncall`]).
    pub fn with_on_call(mut self, settings: OnCallSettings, jsm: crate::jsm::JsmClient) -> Self {
        self.on_call = Some(OnCall::new(settings, jsm));
        self
    }

    /// How long another process's claim on a request is respected.
    pub fn lease_ttl(&self) -> Duration {
        self.data.lease_ttl
    }

    /// The requests last seen, shared with whoever feeds them in.
    pub fn store(&self) -> &Arc<RequestStore> {
        &self.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Hands every access request Teleport has now to `visit`, page by page.
    pub async fn visit_requests(
        &self,
        visit: impl FnMut(AccessRequestV3) + Send,
    ) -> Result<(), TeleportError> {
        self.teleport
            .visit_access_requests(Default::default(), visit)
            .await
    }

    /// Brings request `id` and its issue one step closer to agreement.
    ///
    /// Each phase (creating, commenting, deciding, resolving) is boxed while it runs: a future
    /// inlines the room of every phase it may await, so a step creating an issue would otherwise
    /// also carry the room of resolving one. A step creating an issue holds its task (1.3 KB) and
    /// the boxed creation (4.6 KB), as `-Zprint-type-sizes` reports them; a burst keeps hundreds
    /// of steps in flight.
    pub async fn step(&self, id: &str) -> Result<(), StepError> {
        // Held to the step's end: a settle is only taken from a step nothing happened during.
        let Some(_looking) = self.settled.begin(id) else {
            return Ok(());
        };
        self.step_unsettled(id).await
    }

    async fn step_unsettled(&self, id: &str) -> Result<(), StepError> {
        let mut guess_unrecorded = self.unrecorded.take(id);
        // A decision applied from Jira changes the request; the second round mirrors that change.
        for _ in 0..2 {
            // Boxed: its Teleport reads need room only until they return.
            let (data, request) =
                Box::pin(self.record_and_request(id, std::mem::take(&mut guess_unrecorded)))
                    .await?;
            if let Some(issue) = data.as_ref().and_then(|d| d.issue.as_ref()) {
                // Every later line of this step is about that issue too.
                tracing::Span::current().record("jira_issue_key", issue.key.as_str());
                self.note_issue_key(&issue.key);
                self.owners.note(id, &issue.id);
            }
            let Some(request) = request.map(Box::new) else {
                return match data.filter(|d| d.issue.is_some()) {
                    Some(data) => Box::pin(self.resolve(id, data, Resolution::Expired, "")).await,
                    None => Ok(()),
                };
            };
            // The request lives to the step's end: boxed, it is a pointer in the step's task
            // instead of 800 bytes beside each phase (a burst keeps hundreds of steps waiting).
            let state = request.spec.as_ref().map_or(0, |spec| spec.state);
            let resolution = match RequestState::try_from(state) {
                Ok(RequestState::Pending) => {
                    let data = data.map(Box::new);
                    if Box::pin(self.step_pending(id, &request, data)).await? {
                        continue;
                    }
                    return Ok(());
                }
                Ok(RequestState::Approved) => Resolution::Approved,
                Ok(RequestState::Denied) => Resolution::Denied,
                Ok(RequestState::Promoted) => Resolution::Promoted,
                _ => {
                    tracing::warn!(request_state = state, "Unknown request state");
                    return Ok(());
                }
            };
            let Some(data) = data.filter(|d| d.issue.is_some()) else {
                tracing::debug!("Failed to resolve the issue: plugin data is blank");
                return Ok(());
            };
            let data = Box::pin(self.comment_reviews(id, &request, data)).await?;
            let reason = request
                .spec
                .as_ref()
                .map_or("", |spec| spec.resolve_reason.as_str());
            return Box::pin(self.resolve(id, data, resolution, reason)).await;
        }
        Ok(())
    }

    /// The request's record (its plugin data) and the request. With `guess_unrecorded`, a request
    /// still pending is taken to have no record, unread: a pending step acts on that only through
    /// the compare-and-swap that writes a new record, which reads the record when there is one.
    /// A request no longer pending has its record read, as any step that may end in nothing.
    async fn record_and_request(
        &self,
        id: &str,
        guess_unrecorded: bool,
    ) -> Result<(Option<PluginData>, Option<AccessRequestV3>), StepError> {
        if !guess_unrecorded {
            let data = self.data.load(id).await?;
            return Ok((data, self.request(id).await?));
        }
        let request = self.request(id).await?;
        let pending = request
            .as_ref()
            .and_then(|request| request.spec.as_ref())
            .is_some_and(|spec| spec.state == RequestState::Pending as i32);
        // A request resolved or gone stays so: the one read stands, only its record is read.
        let data = if pending {
            None
        } else {
            self.data.load(id).await?
        };
        Ok((data, request))
    }

    /// A pending request: its issue, its reviews as comments, then a decision on the board if
    /// there is one. Returns whether the request may have changed.
    async fn step_pending(
        &self,
        id: &str,
        request: &AccessRequestV3,
        data: Option<Box<PluginData>>,
    ) -> Result<bool, StepError> {
        let ensured = match self.ensure_issue(id, request, data).await {
            Err(StepError::Busy) => {
                // Unless a webhook came meanwhile: its rerun must read the card it announced.
                if self.settled.undisturbed(id) {
                    self.awaited.insert(id);
                }
                return Err(StepError::Busy);
            }
            other => other?,
        };
        let (data, had_issue) = (ensured.data, ensured.found);
        self.offer_on_call(id, request, &data);
        if data.issue.is_none() {
            // A rule kept the request off the board: nothing more to do, now or later.
            return Ok(false);
        }
        let data = Box::pin(self.comment_reviews(id, request, data)).await?;
        // People and reminders come after what the request itself needs: a passing failure of
        // theirs never holds up a decision on the board, it only asks for the step again.
        let (data, later) = Box::pin(self.people_and_reminder(id, request, data)).await;
        // An issue made in this very step, or by another process since this one last looked, is
        // still in its first status; reading it back would cost a Jira call per request for
        // nothing.
        let made_elsewhere_since = self.awaited.take(id);
        if !had_issue || made_elsewhere_since {
            return later.map(|()| false);
        }
        let changed = Box::pin(self.apply_jira_decision(id, request, &data)).await?;
        later.map(|()| changed)
    }

    /// `[jira.people]` on a pending request's issue: its people, then its reminder when due. The
    /// data as last written, and how that went.
    async fn people_and_reminder(
        &self,
        id: &str,
        request: &AccessRequestV3,
        data: PluginData,
    ) -> (PluginData, Result<(), StepError>) {
        if !self.settings.people.enabled() {
            return (data, Ok(()));
        }
        let data = match self.put_people_on(id, request, data.clone()).await {
            Ok(data) => data,
            Err(err) => return (data, Err(err)),
        };
        match self.remind(id, request, data.clone()).await {
            Ok(data) => (data, Ok(())),
            Err(err) => (data, Err(err)),
        }
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

    /// The watch announced pending request `id` for the first time: its first step guesses it
    /// has no record yet.
    pub fn note_new_request(&self, id: &str) {
        self.unrecorded.insert(id);
    }

    /// Something happened to the request's issue: look at it again even if it was settled, so a
    /// card moved after Teleport decided is brought back to Teleport's decision.
    pub fn unsettle(&self, id: &str) {
        self.settled.remove(id);
        self.awaited.take(id);
    }

    /// The running step saw the issue final; ignored when the request was unsettled since the
    /// step began (what it saw may be stale, and the rerun asked for must look again).
    fn settle(&self, id: &str) {
        self.settled.insert(id);
    }
}
