//! Webhooks as Jira Cloud sends them: the `jira:issue_updated` (and optionally
//! `jira:issue_created`) payloads built from the store, and asynchronous at-least-once delivery
//! with Atlassian's headers, HMAC signature, retries on 408/409/425/429/5xx and connection
//! errors, and the drop/duplicate fault knobs.
//!
//! Each delivery is its own task (order is not guaranteed, as on Cloud); all of them stop at
//! shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::faults::Faults;
use super::model::{Delivery, Deployment, FakeJiraError, WebhookTarget};
use super::render::FieldSelection;
use super::store::{History, Store};

/// `X-Hub-Signature` value for `body` keyed with `secret`: `sha256=<lowercase hex>`.
pub fn sign_webhook_body(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One event, rendered once and sent to every registered target.
pub(crate) struct OutgoingEvent {
    /// `webhookEvent/issue_event_type_name`, for the delivery log.
    pub label: String,
    pub issue_key: String,
    pub body: Bytes,
    pub created_event: bool,
}

impl Store {
    fn webhook_user(&self, account_id: &str) -> Value {
        let mut user = self.user_json(account_id);
        // Cloud webhooks carry no email, whatever the privacy settings.
        if self.deployment == Deployment::Cloud
            && let Some(obj) = user.as_object_mut()
        {
            obj.remove("emailAddress");
        }
        user
    }

    fn webhook_issue(&self, issue: usize) -> Value {
        let i = &self.issues[issue];
        json!({
            "id": i.id.to_string(),
            "self": format!("{}/rest/api/2/issue/{}", self.base_url, i.id),
            "key": i.key,
            "fields": self.fields_json(issue, &FieldSelection::navigable()),
        })
    }

    /// `jira:issue_updated`: a transition or edit (with its changelog) or a comment.
    pub(crate) fn updated_event(
        &self,
        issue: usize,
        actor: &str,
        type_name: &str,
        history: Option<&History>,
        comment: Option<usize>,
    ) -> OutgoingEvent {
        let mut body = json!({
            "timestamp": OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": type_name,
            "user": self.webhook_user(actor),
            "issue": self.webhook_issue(issue),
        });
        if let Some(obj) = body.as_object_mut() {
            if let Some(h) = history {
                obj.insert(
                    "changelog".into(),
                    json!({"id": h.id.to_string(), "items": self.change_items_json(h)}),
                );
            }
            if let Some(c) = comment.and_then(|c| self.issues[issue].comments.get(c)) {
                obj.insert("comment".into(), self.comment_json(issue, c));
            }
        }
        OutgoingEvent {
            label: format!("jira:issue_updated/{type_name}"),
            issue_key: self.issues[issue].key.clone(),
            body: Bytes::from(body.to_string()),
            created_event: false,
        }
    }

    pub(crate) fn created_event(&self, issue: usize, actor: &str) -> OutgoingEvent {
        let body = json!({
            "timestamp": OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
            "webhookEvent": "jira:issue_created",
            "issue_event_type_name": "issue_created",
            "user": self.webhook_user(actor),
            "issue": self.webhook_issue(issue),
        });
        OutgoingEvent {
            label: "jira:issue_created/issue_created".into(),
            issue_key: self.issues[issue].key.clone(),
            body: Bytes::from(body.to_string()),
            created_event: true,
        }
    }
}

/// Retry schedule, scaled down for tests (Cloud retries for up to about 30 minutes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff: Duration,
    pub timeout: Duration,
}

#[derive(Clone)]
struct Target {
    url: String,
    secret: Option<String>,
    basic_auth: Option<(String, String)>,
    issue_created_events: bool,
    client: reqwest::Client,
}

pub(crate) struct Dispatcher {
    targets: Mutex<Vec<Target>>,
    deliveries: Mutex<Vec<Delivery>>,
    dropped: AtomicUsize,
    in_flight: AtomicUsize,
    idle: Notify,
    cancel: CancellationToken,
    runtime: tokio::runtime::Handle,
    policy: RetryPolicy,
    faults: Arc<Faults>,
}

/// Keeps `in_flight` right even when a delivery task is cancelled mid-way.
struct InFlight(Arc<Dispatcher>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Dispatcher {
    pub(crate) fn new(
        runtime: tokio::runtime::Handle,
        policy: RetryPolicy,
        faults: Arc<Faults>,
    ) -> Self {
        Self {
            targets: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Vec::new()),
            dropped: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            cancel: CancellationToken::new(),
            runtime,
            policy,
            faults,
        }
    }

    pub(crate) fn register(&self, target: WebhookTarget) -> Result<(), FakeJiraError> {
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &target.trust_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| FakeJiraError::Tls(e.to_string()))?;
            builder = builder.tls_certs_only(certs);
        }
        let client = builder
            .build()
            .map_err(|e| FakeJiraError::Tls(e.to_string()))?;
        lock(&self.targets).push(Target {
            url: target.url,
            secret: target.secret,
            basic_auth: target.basic_auth,
            issue_created_events: target.issue_created_events,
            client,
        });
        Ok(())
    }

    pub(crate) fn clear(&self) {
        lock(&self.targets).clear();
    }

    pub(crate) fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.deliveries).clone()
    }

    pub(crate) fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    pub(crate) fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Waits until no delivery is in flight (retries included). False on timeout.
    pub(crate) async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight.load(Ordering::SeqCst) == 0;
            }
        }
    }

    fn new_identifier(&self) -> String {
        uuid::Builder::from_random_bytes(self.faults.random_bytes())
            .into_uuid()
            .to_string()
    }

    /// Queues `event` for every target, applying the drop and duplicate knobs.
    pub(crate) fn dispatch(self: &Arc<Self>, event: OutgoingEvent) {
        let targets = lock(&self.targets).clone();
        for target in targets {
            if event.created_event && !target.issue_created_events {
                continue;
            }
            let (dropped, duplicated) = self.faults.webhook_fate();
            if dropped {
                self.dropped.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let id = self.new_identifier();
            let copies = if duplicated { 2 } else { 1 };
            for copy in 0..copies {
                self.spawn_delivery(Job {
                    target: target.clone(),
                    id: id.clone(),
                    body: event.body.clone(),
                    label: event.label.clone(),
                    issue_key: event.issue_key.clone(),
                    duplicate: copy == 1,
                });
            }
        }
    }

    fn spawn_delivery(self: &Arc<Self>, job: Job) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(Arc::clone(self));
        let this = Arc::clone(self);
        self.runtime.spawn(async move {
            let _guard = guard;
            tokio::select! {
                _ = this.cancel.cancelled() => {}
                _ = this.deliver(job) => {}
            }
        });
    }

    async fn deliver(&self, job: Job) {
        for attempt in 1..=self.policy.max_attempts.max(1) {
            let mut request = job
                .target
                .client
                .post(&job.target.url)
                .timeout(self.policy.timeout)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                )
                .header(reqwest::header::USER_AGENT, "Atlassian Webhook HTTP Client")
                .header("X-Atlassian-Webhook-Identifier", &job.id)
                .body(job.body.clone());
            if attempt > 1 {
                request = request.header("X-Atlassian-Webhook-Retry", (attempt - 1).to_string());
            }
            if let Some(secret) = &job.target.secret {
                request = request.header("X-Hub-Signature", sign_webhook_body(secret, &job.body));
            }
            if let Some((user, pass)) = &job.target.basic_auth {
                request = request.basic_auth(user, Some(pass));
            }
            let (status, error) = match request.send().await {
                Ok(response) => (Some(response.status().as_u16()), None),
                Err(e) => (None, Some(e.to_string())),
            };
            lock(&self.deliveries).push(Delivery {
                id: job.id.clone(),
                attempt,
                status_code: status,
                error,
                duplicate: job.duplicate,
                event: job.label.clone(),
                issue_key: Some(job.issue_key.clone()),
            });
            let retry = match status {
                None => true,
                Some(code) => matches!(code, 408 | 409 | 425 | 429) || code >= 500,
            };
            if !retry {
                return;
            }
            if attempt < self.policy.max_attempts {
                let factor = 2u32.saturating_pow(attempt - 1);
                tokio::time::sleep(self.policy.backoff.saturating_mul(factor)).await;
            }
        }
    }

    /// Sends `body` once, with exactly `headers`, to the most recently registered target.
    pub(crate) async fn send_raw(
        &self,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<u16, FakeJiraError> {
        let target = lock(&self.targets)
            .last()
            .cloned()
            .ok_or(FakeJiraError::NoWebhook)?;
        let mut request = target
            .client
            .post(&target.url)
            .timeout(self.policy.timeout)
            .body(body);
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request
            .send()
            .await
            .map_err(|e| FakeJiraError::Delivery(e.to_string()))?;
        let status = response.status().as_u16();
        let id = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-atlassian-webhook-identifier"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        lock(&self.deliveries).push(Delivery {
            id,
            attempt: 1,
            status_code: Some(status),
            error: None,
            duplicate: false,
            event: "raw".into(),
            issue_key: None,
        });
        Ok(status)
    }
}

struct Job {
    target: Target,
    id: String,
    body: Bytes,
    label: String,
    issue_key: String,
    duplicate: bool,
}
