//! On-call approval through Jira Service Management Operations: a new pending request whose
//! requester is on call in one of its schedules gets one APPROVED review from the plugin's own
//! Teleport user. Teleport's thresholds still decide; the plugin never sets the state here.
//!
//! The check runs beside the step, never inside it: the step only offers the request (after its
//! ticket exists), and a task of its own asks JSM, so a slow or refusing JSM delays nothing else.
//! Its end is recorded in plugin data (`oncall`), so it runs once per request across restarts
//! and replicas; Teleport's "has already reviewed" answer covers two replicas racing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use teleport_proto::types::{AccessRequestV3, AccessReview, RequestState};
use tokio::sync::{OnceCell, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::Reconciler;
use crate::jsm::{JsmClient, JsmError};
use crate::lock::lock;
use crate::metrics::{ONCALL_FAILURES, OutcomeLabel, ReasonLabel};
use crate::plugin_data::{OnCallCheck, PluginData};
use crate::rules::{Eligibility, Facts};
use crate::sync::error::StepError;
use crate::sync::people::{Lookup, Resolved};
use crate::teleport::TeleportError;

/// On-call checks running at once; each waits on JSM, not on a core.
const CHECKS_AT_ONCE: usize = 16;
/// Attempts per JSM call when the failure may pass (429, 5xx, timeouts).
const ATTEMPTS: u32 = 3;
/// The longest `Retry-After` honoured; a longer one ends the check (no approval).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What the on-call check needs besides the clients.
#[derive(Clone, Debug)]
pub struct OnCallSettings {
    /// The system annotation naming the schedules to check.
    pub schedules_annotation: String,
    /// Schedules checked when a request carries no annotation.
    pub default_schedules: Vec<String>,
    pub account_id_trait: String,
    pub email_lookup: bool,
    /// The plugin's own Teleport user: the author of its reviews.
    pub plugin_user: String,
    /// The Jira Cloud site, whose tenant info names the cloud id when none is configured.
    pub jira_url: String,
    pub cloud_id: Option<String>,
}

/// The on-call check's state: the JSM client, the cloud id once known, and the requests offered.
pub(super) struct OnCall {
    settings: OnCallSettings,
    jsm: JsmClient,
    cloud_id: OnceCell<String>,
    /// Requests offered and not yet checked to an end, so a busy request is offered once.
    offered: Mutex<HashSet<String>>,
    queue: mpsc::UnboundedSender<String>,
    /// Taken by the task that runs the checks.
    ids: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

impl OnCall {
    pub(super) fn new(settings: OnCallSettings, jsm: JsmClient) -> Self {
        let (queue, ids) = mpsc::unbounded_channel();
        Self {
            cloud_id: OnceCell::new_with(settings.cloud_id.clone()),
            settings,
            jsm,
            offered: Mutex::default(),
            queue,
            ids: Mutex::new(Some(ids)),
        }
    }

    /// The schedules to check for `request`: its annotation's, else the configured defaults.
    fn schedules_of(&self, request: &AccessRequestV3) -> Vec<String> {
        let annotated = request
            .spec
            .as_ref()
            .and_then(|spec| spec.system_annotations.as_ref())
            .and_then(|a| a.values.get(&self.settings.schedules_annotation))
            .map(|values| non_blank(&values.values))
            .unwrap_or_default();
        if annotated.is_empty() {
            non_blank(&self.settings.default_schedules)
        } else {
            annotated
        }
    }

    /// The site's cloud id: configured, or read once from the site's tenant info.
    async fn cloud_id(&self) -> Result<&str, JsmError> {
        let id = self
            .cloud_id
            .get_or_try_init(|| with_retries(|| self.jsm.cloud_id_of(&self.settings.jira_url)))
            .await?;
        Ok(id)
    }
}

fn non_blank(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// How a check ended, before it is recorded.
enum Ended {
    Recorded(OnCallCheck),
    /// Nothing to record: not pending any more, or already checked.
    Nothing,
}

impl Reconciler {
    /// Offers a pending request whose ticket exists to the on-call check, once.
    pub(super) fn offer_on_call(&self, id: &str, request: &AccessRequestV3, data: &PluginData) {
        let Some(on_call) = &self.on_call else {
            return;
        };
        if data.oncall.is_some() || on_call.schedules_of(request).is_empty() {
            return;
        }
        if lock(&on_call.offered).insert(id.to_owned())
            && on_call.queue.send(id.to_owned()).is_err()
        {
            lock(&on_call.offered).remove(id);
        }
    }

    /// Says that the check is on, with the cloud id it asks JSM about.
    async fn announce_on_call(&self) {
        let Some(on_call) = &self.on_call else {
            return;
        };
        let schedules = &on_call.settings.default_schedules;
        match on_call.cloud_id().await {
            Ok(cloud_id) => {
                tracing::info!(%cloud_id, default_schedules = ?schedules, "On-call approval through JSM Operations is on")
            }
            Err(err) => {
                tracing::warn!(error = %err, "On-call approval is on, but the Jira site's cloud id cannot be read yet (set jsm_oncall.cloud_id to skip this); asking again at the first check")
            }
        }
    }

    /// The receiver of offered requests, for [`run_on_call_checks`]; `None` when the check is
    /// off or already running.
    pub fn take_on_call_queue(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.on_call.as_ref().and_then(|c| lock(&c.ids).take())
    }

    /// Checks one offered request to an end and records it. A passing failure (Teleport
    /// unavailable) records nothing: the request's next step offers it again.
    async fn check_on_call(&self, id: &str) {
        let Some(on_call) = &self.on_call else {
            return;
        };
        match self.on_call_end(id, on_call).await {
            Ok(Ended::Recorded(check)) => {
                if let Err(err) = self.record_on_call(id, &check).await {
                    tracing::warn!(error = %err, "Cannot record the on-call check; it runs again at the request's next step");
                }
            }
            Ok(Ended::Nothing) => {}
            Err(err) => {
                tracing::warn!(error = %err, "On-call check interrupted; it runs again at the request's next step")
            }
        }
        lock(&on_call.offered).remove(id);
    }

    async fn on_call_end(&self, id: &str, on_call: &OnCall) -> Result<Ended, StepError> {
        let data = self.data.load(id).await?;
        if data.as_ref().is_none_or(|d| d.oncall.is_some()) {
            return Ok(Ended::Nothing);
        }
        let Some(request) = self.request(id).await? else {
            return Ok(Ended::Nothing);
        };
        let spec = request.spec.clone().unwrap_or_default();
        if spec.state != RequestState::Pending as i32 {
            return Ok(Ended::Nothing);
        }
        let schedules = on_call.schedules_of(&request);
        if !self.eligible_for_on_call(&request).await? {
            return Ok(Ended::Recorded(self.on_call_outcome("not_eligible", None)));
        }
        let how = Lookup {
            trait_name: &on_call.settings.account_id_trait,
            email_lookup: on_call.settings.email_lookup,
            project: None,
        };
        let account = match self.people.jira_identity(&spec.user, &how).await? {
            Resolved::Found(account) => account,
            Resolved::Unresolved(why) => {
                tracing::warn!(user = %spec.user, reason = %why, "No on-call approval: the requester's Atlassian account id is unknown (set the trait named by jsm_oncall.account_id_trait, or turn on email_lookup)");
                return Ok(Ended::Recorded(self.on_call_outcome("unresolved", None)));
            }
        };
        let found = self.schedules_on_call(on_call, &schedules, &account).await;
        self.conclude_on_call(id, on_call, &spec.user, found).await
    }

    /// Whether approving rules (when any are in force) let the request be approved.
    async fn eligible_for_on_call(&self, request: &AccessRequestV3) -> Result<bool, StepError> {
        let rules = self.rules.snapshot();
        let user = request.spec.as_ref().map_or("", |s| s.user.as_str());
        let traits = if rules.approving_rules().any(|r| r.reads_traits()) {
            self.traits_of(user).await?
        } else {
            Default::default()
        };
        let (eligibility, skipped) = rules.eligibility(&Facts::of_request(request, traits));
        for (rule, err) in skipped {
            tracing::warn!(rule = %rule, error = %err, "Skipping an approving Access Monitoring Rule");
        }
        Ok(match eligibility {
            Eligibility::NoRules => true,
            Eligibility::Matched(rule) => {
                tracing::debug!(rule = %rule, "An approving rule makes the request eligible for on-call approval");
                true
            }
            Eligibility::NoMatch => false,
            Eligibility::Unknown => {
                tracing::warn!(
                    "No on-call approval: the approving Access Monitoring Rules cannot be read (grant the plugin's role access_monitoring_rule: [read, list])"
                );
                false
            }
        })
    }

    /// Which of `schedules` have `account` on call, and the failures met on the way.
    async fn schedules_on_call(
        &self,
        on_call: &OnCall,
        schedules: &[String],
        account: &str,
    ) -> OnCallFound {
        let mut found = OnCallFound::default();
        let cloud_id = match on_call.cloud_id().await {
            Ok(id) => id,
            Err(err) => {
                found
                    .failures
                    .push((format!("{}'s cloud id", on_call.settings.jira_url), err));
                return found;
            }
        };
        for schedule in schedules {
            match with_retries(|| on_call.jsm.on_call(cloud_id, schedule)).await {
                Ok(users) if users.iter().any(|u| u == account) => {
                    found.on_call_in.push(schedule.clone())
                }
                Ok(_) => {}
                Err(err) => found.failures.push((format!("schedule {schedule:?}"), err)),
            }
        }
        found
    }

    /// Approves when on call anywhere; otherwise says why not.
    async fn conclude_on_call(
        &self,
        id: &str,
        on_call: &OnCall,
        user: &str,
        found: OnCallFound,
    ) -> Result<Ended, StepError> {
        for (what, err) in &found.failures {
            tracing::warn!(on_call_source = %what, cause = err.cause(), error = %err, "On-call check failed");
            self.count_on_call_failure(err.cause());
        }
        if found.on_call_in.is_empty() {
            return Ok(Ended::Recorded(match found.failures.first() {
                Some((_, err)) => self.on_call_outcome("failed", Some(err.cause())),
                None => self.on_call_outcome("not_on_call", None),
            }));
        }
        let schedules = found.on_call_in.join(", ");
        let review = AccessReview {
            author: on_call.settings.plugin_user.clone(),
            proposed_state: RequestState::Approved as i32,
            reason: format!(
                "Access requested by user {user}, who is on call in JSM schedule(s) {schedules}"
            ),
            ..AccessReview::default()
        };
        match self.teleport.submit_access_review(id, review).await {
            Ok(_) | Err(TeleportError::AlreadyReviewed(_)) => {}
            Err(err) if err.is_transient() => return Err(err.into()),
            // Gone, or resolved while JSM was asked: nothing to approve any more.
            Err(err @ (TeleportError::NotFound(_) | TeleportError::BadParameter(_))) => {
                tracing::debug!(error = %err, "The request cannot take a review any more");
                return Ok(Ended::Nothing);
            }
            Err(err) => {
                tracing::warn!(error = %err, "Teleport refused the on-call approval; give the plugin's role review_requests for the requested roles");
                self.count_on_call_failure("review_refused");
                return Ok(Ended::Recorded(
                    self.on_call_outcome("failed", Some("review_refused")),
                ));
            }
        }
        tracing::info!(%user, %schedules, "The requester is on call: approved by the plugin's review");
        self.count_on_call("approved");
        Ok(Ended::Recorded(OnCallCheck::Reviewed {
            schedules: found.on_call_in,
        }))
    }

    /// Counts an outcome other than approval and gives the check's record for it.
    fn on_call_outcome(&self, outcome: &'static str, cause: Option<&str>) -> OnCallCheck {
        self.count_on_call(outcome);
        match outcome {
            "not_on_call" => OnCallCheck::NotOnCall,
            _ => OnCallCheck::Skipped {
                cause: cause.unwrap_or(outcome).to_owned(),
            },
        }
    }

    fn count_on_call(&self, outcome: &'static str) {
        self.metrics
            .oncall_checks
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    fn count_on_call_failure(&self, cause: &str) {
        let Some(reason) = ONCALL_FAILURES.into_iter().find(|c| *c == cause) else {
            return;
        };
        self.metrics
            .oncall_failures
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    async fn record_on_call(&self, id: &str, check: &OnCallCheck) -> Result<(), StepError> {
        self.data
            .modify(id, |stored| {
                let stored = stored.filter(|d| d.oncall.is_none())?;
                Some(PluginData {
                    oncall: Some(check.clone()),
                    ..stored.clone()
                })
            })
            .await
            .map(drop)
    }
}

/// Schedules with the requester on call, and the failures met.
#[derive(Default)]
struct OnCallFound {
    on_call_in: Vec<String>,
    failures: Vec<(String, JsmError)>,
}

/// `call` again while it fails in a way that may pass, waiting what JSM asked (at most
/// [`MAX_RETRY_AFTER`]) or a growing step.
async fn with_retries<T, F, Fut>(mut call: F) -> Result<T, JsmError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, JsmError>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(err) if err.is_passing() && attempt < ATTEMPTS => {
                let wait = err
                    .retry_after()
                    .unwrap_or(Duration::from_secs(1 << attempt));
                if wait > MAX_RETRY_AFTER {
                    return Err(err);
                }
                tracing::debug!(error = %err, ?wait, "JSM call failed; trying again");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Runs the checks of offered requests, a few at once, until `shutdown`. The site's cloud id,
/// when not configured, is read first (start-up does not wait for it); a site that does not
/// answer is asked again by the first check.
pub async fn run_on_call_checks(
    reconciler: Arc<Reconciler>,
    mut ids: mpsc::UnboundedReceiver<String>,
    shutdown: CancellationToken,
) {
    reconciler.announce_on_call().await;
    let slots = Arc::new(Semaphore::new(CHECKS_AT_ONCE));
    loop {
        let id = tokio::select! {
            () = shutdown.cancelled() => return,
            id = ids.recv() => match id {
                Some(id) => id,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let reconciler = reconciler.clone();
        let span = tracing::info_span!("oncall", request_id = %id);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                reconciler.check_on_call(&id).await;
                drop(slot);
            },
            span,
        ));
    }
}
