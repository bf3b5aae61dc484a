//! The engine: signals in, steps out. Watch events, webhooks and scans name requests; the engine
//! keeps them in a coalescing queue, runs one step per request at a time, and retries a failed
//! step with backoff.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use teleport_proto::types::RequestState;
use tokio_util::sync::CancellationToken;

use super::error::StepError;
use super::queue::{self, Lane, WorkQueue};
use super::reconciler::{OwnerError, Reconciler, run_on_call_checks};
use super::store::{RequestStore, Seen};
use crate::backoff::Backoff;
use crate::lock::lock;
use crate::metrics::{Metrics, StateLabel, set_gauge};
use crate::teleport::watch::WatchEvent;

/// Open issues looked at per sweep; more are seen by later sweeps as these close.
const SWEEP_LIMIT: usize = 1000;

/// Signals and retries for reconciliation, shared by the watch, the webhook and the scan.
pub struct Engine {
    reconciler: Arc<Reconciler>,
    store: Arc<RequestStore>,
    queue: Arc<WorkQueue>,
    retries: Mutex<HashMap<String, Backoff>>,
    /// Requests with a retry scheduled: a failure while one is pending does not add another.
    retry_pending: Mutex<HashSet<String>>,
    /// Set while a sweep of open issues runs, so sweeps never pile up.
    sweeping: std::sync::atomic::AtomicBool,
    /// When each request waiting for a step was first signalled, for the reconcile lag.
    signalled: Mutex<HashMap<String, Instant>>,
    /// Set once the first listing after start went through: later listings (after the watch
    /// reconnected) step only what changed meanwhile.
    listed_once: std::sync::atomic::AtomicBool,
}

impl Engine {
    /// Builds the engine and starts its workers; they stop when `shutdown` is cancelled.
    pub fn start(
        reconciler: Reconciler,
        parallelism: usize,
        shutdown: CancellationToken,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let (queue, ready) = WorkQueue::new();
        let engine = Arc::new(Self {
            store: reconciler.store().clone(),
            reconciler: Arc::new(reconciler),
            queue: queue.clone(),
            retries: Mutex::new(HashMap::new()),
            retry_pending: Mutex::default(),
            sweeping: std::sync::atomic::AtomicBool::new(false),
            signalled: Mutex::default(),
            listed_once: std::sync::atomic::AtomicBool::new(false),
        });
        if let Some(offered) = engine.reconciler.take_on_call_queue() {
            let reconciler = engine.reconciler.clone();
            tokio::spawn(run_on_call_checks(reconciler, offered, shutdown.clone()));
        }
        let worker = engine.clone();
        let driver = tokio::spawn(queue::drive(
            queue,
            ready,
            parallelism,
            shutdown.clone(),
            move |id, lane| {
                let engine = worker.clone();
                let shutdown = shutdown.clone();
                async move { engine.run_step(id, lane, shutdown).await }
            },
        ));
        (engine, driver)
    }

    /// Learns the project's newest issue number in the background: a warm-up that start-up
    /// does not wait for (a creation that comes first learns it itself).
    pub fn learn_latest_issue_soon(&self, project: &str) {
        let reconciler = self.reconciler.clone();
        let project = project.to_owned();
        tokio::spawn(async move { reconciler.learn_latest_issue(&project).await });
    }

    /// Asks for a step for request `id`.
    pub fn enqueue(&self, id: &str) {
        self.signal_in(id, Lane::Now);
    }

    /// Asks for a step for request `id` in `lane`, for nobody who waits.
    fn signal_in(&self, id: &str, lane: Lane) {
        self.note_signal(id);
        self.queue.signal_in(id, lane);
    }

    /// Asks for a step for request `id`; resolves when a step that started after the call ended.
    pub fn enqueue_waiting(&self, id: &str) -> tokio::sync::oneshot::Receiver<()> {
        self.note_signal(id);
        self.queue.enqueue_in(id, Lane::Now)
    }

    fn note_signal(&self, id: &str) {
        lock(&self.signalled)
            .entry(id.to_owned())
            .or_insert_with(Instant::now);
    }

    /// Sets the gauges that are read rather than counted; called before each scrape.
    pub fn publish_gauges(&self, metrics: &Metrics) {
        set_gauge(&metrics.queue_depth, self.backlog());
        let oldest = lock(&self.signalled).values().min().map(Instant::elapsed);
        metrics.set_oldest_unreconciled(oldest);
        for (state, count) in self.store.count_by_state() {
            set_gauge(
                &metrics.requests.get_or_create(&StateLabel {
                    state: state_name(state),
                }),
                count,
            );
        }
    }

    /// Requests waiting for or in a step.
    pub fn backlog(&self) -> usize {
        self.queue.len()
    }

    /// Feeds a watch event: keeps the request cache current and asks for a step. On INIT every
    /// request is listed again, because Teleport does not replay what happened while disconnected.
    pub async fn on_watch_event(self: &Arc<Self>, event: WatchEvent) {
        match event {
            WatchEvent::Put(request) => {
                let state = request.spec.as_ref().map_or(0, |spec| spec.state);
                self.metrics()
                    .requests_seen
                    .get_or_create(&StateLabel {
                        state: state_name(state),
                    })
                    .inc();
                if let Some((id, new)) = self.store.put_noting_new(*request) {
                    if new && state == RequestState::Pending as i32 {
                        self.reconciler.note_new_request(&id);
                    }
                    self.enqueue(&id);
                }
            }
            WatchEvent::Delete { id } => {
                self.metrics()
                    .requests_seen
                    .get_or_create(&StateLabel { state: "deleted" })
                    .inc();
                self.store.remove(&id);
                self.enqueue(&id);
            }
            WatchEvent::Init => self.catch_up().await,
            WatchEvent::Rules(rules) => self.reconciler.replace_rules(&rules),
            WatchEvent::RulesUnreadable => self.reconciler.rules_unreadable(),
            WatchEvent::RulePut(rule) => self.reconciler.put_rule(&rule),
            WatchEvent::RuleDelete { name } => self.reconciler.delete_rule(&name),
        }
    }

    /// Lists every request and asks for a step for each, and for those that vanished meanwhile
    /// (including, through their open issues, those deleted before this process started). The
    /// listing goes into the cache page by page, so thousands of requests are never held decoded
    /// at once.
    ///
    /// After a reconnect, only requests that changed while the watch was down (new, different
    /// from the cached copy, or gone) get a step: Teleport replays nothing, but a request exactly
    /// as last seen missed no event, and what happens in Jira comes by webhook and scan. Stepping
    /// every request again would read each one's record and issue at once, a storm on both
    /// services every time a busy watch falls behind. A request first seen after a reconnect is
    /// taken as new, as the watch takes one: its record is written with a compare-and-swap that
    /// finds any record another process wrote.
    pub async fn catch_up(self: &Arc<Self>) {
        let first = !self.listed_once.load(Ordering::Relaxed);
        let mut listed = HashSet::new();
        let mut to_step = Vec::new();
        let visited = self
            .reconciler
            .visit_requests(|request| {
                let pending = request
                    .spec
                    .as_ref()
                    .is_some_and(|spec| spec.state == RequestState::Pending as i32);
                if let Some((id, seen)) = self.store.put_noting_change(request) {
                    if !first && seen == Seen::New && pending {
                        self.reconciler.note_new_request(&id);
                    }
                    if first || seen != Seen::Unchanged {
                        to_step.push(id.clone());
                    }
                    listed.insert(id);
                }
            })
            .await;
        if let Err(err) = visited {
            tracing::error!(error = %err, "Failed to list access requests; the periodic scan will retry");
            return;
        }
        self.listed_once.store(true, Ordering::Relaxed);
        let vanished = self.store.keep_only(&listed);
        if first {
            tracing::info!(
                requests = listed.len(),
                "Reconciling every access request after (re)connecting"
            );
        } else {
            tracing::info!(
                requests = listed.len(),
                changed = to_step.len() + vanished.len(),
                "Reconciling the access requests that changed while the watch was down"
            );
        }
        for id in to_step.iter().chain(&vanished) {
            self.enqueue(id);
        }
        // Requests deleted while nobody watched are in no listing; their open issues are.
        self.spawn_sweep();
    }

    /// Asks for a step for every pending request, so a decision in Jira whose webhook was lost is
    /// still seen; and for every request whose issue is still pending in Jira although Teleport no
    /// longer has the request (deleted or expired while no plugin was watching).
    pub fn scan(self: &Arc<Self>) {
        // A scan that comes while most of the last one's steps still queue would only pile reads
        // on a Jira that is already the bottleneck (and push repairs and creations further
        // back). A few steps in the queue (steady webhook traffic) never hold a scan up.
        let pending = self.store.pending_ids();
        let backlog = self.backlog();
        if backlog > 0 && backlog * 2 > pending.len() {
            tracing::debug!(
                backlog,
                "Skipping this scan: most of the last one is still queued"
            );
            return;
        }
        // In the scan lane: creations, decisions and retries go first, in the queue and in Jira.
        for id in pending {
            self.signal_in(&id, Lane::Scan);
        }
        self.spawn_sweep();
    }

    /// Sweeps in the background: a large board must not hold up watch events.
    fn spawn_sweep(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            engine.sweep_open_issues().await;
            engine.sweeping.store(false, Ordering::Release);
        });
    }

    async fn sweep_open_issues(&self) {
        let ids = match self.reconciler.requests_with_open_issues(SWEEP_LIMIT).await {
            Ok(ids) => ids,
            Err(err) => {
                tracing::warn!(error = %err, "Failed to search Jira for open issues; the next scan will retry");
                return;
            }
        };
        for id in ids.into_iter().filter(|id| self.store.get(id).is_none()) {
            tracing::debug!(request_id = %id, "Open issue of a request Teleport no longer has");
            self.enqueue(&id);
        }
    }

    /// A webhook said issue `issue_id` changed: asks for a step for the request it belongs to.
    /// Returns what resolves when that step ended, or `None` for an issue the plugin gave up on.
    pub async fn signal_issue(
        &self,
        issue_id: &str,
    ) -> Result<Option<tokio::sync::oneshot::Receiver<()>>, OwnerError> {
        let Some(request_id) = self.reconciler.owner_of_issue(issue_id).await? else {
            return Ok(None);
        };
        self.reconciler.unsettle(&request_id);
        Ok(Some(self.enqueue_waiting(&request_id)))
    }

    /// Why the step a webhook for issue `issue_id` started refused that issue, if it did.
    pub fn take_refusal(&self, issue_id: &str) -> Option<String> {
        self.reconciler.take_refusal(issue_id)
    }

    async fn run_step(self: Arc<Self>, id: String, lane: Lane, shutdown: CancellationToken) {
        let span = tracing::info_span!(
            "reconcile",
            request_id = %id,
            jira_issue_key = tracing::field::Empty
        );
        let step = async {
            tracing::debug!("Step started");
            super::faults::before_step(&id);
            match lane {
                Lane::Now => self.reconciler.step(&id).await,
                Lane::Scan => crate::jira::client::as_scan(self.reconciler.step(&id)).await,
            }
        };
        // A panic is caught here, at the step's edge: the request's slot in the queue is freed and
        // the step retried like any failure, instead of jamming every later signal for it.
        let result =
            tracing::Instrument::instrument(AssertUnwindSafe(step).catch_unwind(), span.clone())
                .await
                .unwrap_or_else(|panic| Err(StepError::Panicked(panic_message(panic.as_ref()))));
        let _entered = span.enter();
        match result {
            Ok(()) => self.step_done(&id),
            Err(err) => self.step_failed(id, err, shutdown),
        }
    }

    fn step_done(&self, id: &str) {
        tracing::debug!("Step done");
        self.retry_lock().remove(id);
        if let Some(first_signal) = lock(&self.signalled).remove(id) {
            self.metrics()
                .reconcile_lag
                .observe(first_signal.elapsed().as_secs_f64());
        }
    }

    fn step_failed(self: Arc<Self>, id: String, err: StepError, shutdown: CancellationToken) {
        self.metrics().retries.inc();
        let delay = self.retry_delay(&id, &err);
        let retry_in_ms = delay.as_millis() as u64;
        match &err {
            StepError::Busy => {
                tracing::debug!("Another process holds this request's lease; retrying shortly")
            }
            StepError::Panicked(_) => {
                self.metrics().step_panics.inc();
                tracing::error!(error = %err, retry_in_ms, "A step panicked; will retry");
            }
            err if err.is_transient() => {
                tracing::warn!(error = %err, retry_in_ms, "Failed to process request; will retry")
            }
            err => {
                tracing::error!(error = %err, retry_in_ms, "Failed to process request; will retry")
            }
        }
        if !lock(&self.retry_pending).insert(id.clone()) {
            return;
        }
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(delay) => {
                    lock(&self.retry_pending).remove(&id);
                    self.enqueue(&id);
                }
            }
        });
    }

    fn retry_delay(&self, id: &str, err: &StepError) -> Duration {
        if let Some(wait) = err.retry_after() {
            return wait;
        }
        let mut retries = self.retry_lock();
        if matches!(err, StepError::Busy) {
            // A holder at work releases within its Jira calls (a webhook for the request asks
            // for a step at once anyway); a dead one is only told by its lease going unrenewed
            // for a time-to-live. Looking every second meant a read of plugin data per second
            // per request while another replica worked through a paced burst.
            let first = Duration::from_secs(1);
            let watch_cap = (self.reconciler.lease_ttl() / 3).max(first);
            let delay = retries
                .entry(id.to_owned())
                .or_insert_with(|| Backoff::new(first, watch_cap))
                .next_delay();
            // The request may carry the back-off of an earlier failure, with a longer cap.
            return delay.min(watch_cap);
        }
        let backoff = retries
            .entry(id.to_owned())
            .or_insert_with(|| Backoff::new(Duration::from_millis(500), Duration::from_secs(300)));
        let delay = backoff.next_delay();
        // A permanent error (a refused issue type, missing permission) is retried slowly; fixing
        // the Jira side then heals the request without a restart.
        if err.is_transient() {
            delay
        } else {
            delay.max(Duration::from_secs(30))
        }
    }

    fn retry_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Backoff>> {
        lock(&self.retries)
    }

    fn metrics(&self) -> &Metrics {
        self.reconciler.metrics()
    }
}

/// What a panic said, for the log.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The label for a request state in metrics.
fn state_name(state: i32) -> &'static str {
    match RequestState::try_from(state) {
        Ok(RequestState::None) => "none",
        Ok(RequestState::Pending) => "pending",
        Ok(RequestState::Approved) => "approved",
        Ok(RequestState::Denied) => "denied",
        Ok(RequestState::Promoted) => "promoted",
        Err(_) => "unknown",
    }
}
