//! The HTTP(S) server Jira calls: `POST /` (the webhook), with `GET /status`, `/readyz` and
//! `/metrics` beside it (see [`crate::health`]), all behind optional basic auth as the Go plugin
//! serves them.
//!
//! A webhook is only a hint: it names an issue, the issue names a request, and that request gets a
//! reconcile step, which reads the truth from Jira and Teleport itself. The reply waits for that
//! step for a bounded time, so callers that read Teleport right after a 200 see the result, while a
//! slow step never holds Jira's connection for long.

mod auth;
mod delivery;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::config::BasicAuth;
use crate::health::HealthState;
use crate::lock::lock;
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::sync::{Engine, OwnerError};
use delivery::Deliveries;
pub use delivery::{BadDelivery, Delivery, parse_delivery};

/// How long a webhook reply waits for the reconcile step it triggered.
const REPLY_WAIT: Duration = Duration::from_secs(5);
/// Replies that wait for their step at once. Past this (Jira delivering a board's worth of moves
/// at once), a webhook is answered as soon as its step is queued: every delivery is taken in at
/// once, none is held (with its connection and body) behind thousands of steps until Jira's
/// delivery times out; a refusal found by a step nobody waits for is still logged by the step.
const MAX_WAITING_REPLIES: usize = 64;
/// A client gets this long for the whole exchange.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests handled at once; more wait their turn instead of exhausting the process.
const MAX_CONCURRENT_REQUESTS: usize = 256;

/// The webhook secret in use; replaced when its file is reloaded.
pub type SharedSecret = Arc<arc_swap::ArcSwapOption<Secret>>;
/// The webhook's basic auth, replaced whole when its password file is re-read.
pub type SharedBasicAuth = Arc<arc_swap::ArcSwapOption<BasicAuth>>;

#[derive(Clone)]
pub struct WebhookState {
    engine: Arc<Engine>,
    basic_auth: SharedBasicAuth,
    secret: SharedSecret,
    seen: Arc<Mutex<Deliveries>>,
    metrics: Arc<Metrics>,
    waiting_replies: Arc<tokio::sync::Semaphore>,
}

impl WebhookState {
    /// The handle through which a reloaded secret replaces the one in use.
    pub fn secret(&self) -> SharedSecret {
        self.secret.clone()
    }

    /// The handle through which a reloaded basic-auth password replaces the one in use.
    pub fn basic_auth(&self) -> SharedBasicAuth {
        self.basic_auth.clone()
    }

    pub fn new(
        engine: Arc<Engine>,
        basic_auth: Option<BasicAuth>,
        secret: Option<Secret>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            engine,
            basic_auth: Arc::new(arc_swap::ArcSwapOption::new(basic_auth.map(Arc::new))),
            secret: Arc::new(arc_swap::ArcSwapOption::new(secret.map(Arc::new))),
            seen: Arc::default(),
            metrics,
            waiting_replies: Arc::new(tokio::sync::Semaphore::new(MAX_WAITING_REPLIES)),
        }
    }
}

/// The routes, with basic auth in front of all of them when configured (as in the Go plugin), a
/// body limit, a deadline per request and a ceiling on requests in flight.
pub fn router(state: WebhookState, max_body_bytes: usize, health: HealthState) -> Router {
    Router::new()
        .route("/", post(receive))
        .with_state(state.clone())
        .merge(crate::health::routes(health))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_basic_auth,
        ))
        .layer(axum::middleware::from_fn(within_deadline))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            MAX_CONCURRENT_REQUESTS,
        ))
}

/// A client that trickles its body is cut off instead of holding a connection forever.
async fn within_deadline(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => reply(StatusCode::REQUEST_TIMEOUT, "request took too long"),
    }
}

async fn receive(State(state): State<WebhookState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(secret) = &*state.secret.load()
        && !auth::signature_valid(secret, &headers, &body)
    {
        tracing::warn!("Refused a webhook without a valid X-Hub-Signature");
        state.metrics.webhook_delivery("unauthorized");
        return reply(
            StatusCode::UNAUTHORIZED,
            "missing or invalid X-Hub-Signature",
        );
    }
    let issue_id = match parse_delivery(&body) {
        Ok(Delivery::Issue(id)) => id,
        Ok(Delivery::Ignored) => {
            state.metrics.webhook_delivery("ignored");
            return StatusCode::OK.into_response();
        }
        Err(err) => {
            tracing::error!(error = %err, "Failed to parse webhook payload");
            state.metrics.webhook_delivery("malformed");
            return reply(StatusCode::BAD_REQUEST, &err.to_string());
        }
    };
    let delivery = headers
        .get("x-atlassian-webhook-identifier")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(delivery) = &delivery
        && !lock(&state.seen).insert(delivery)
    {
        tracing::debug!(delivery = %delivery, "Ignoring a re-delivered webhook");
        state.metrics.webhook_delivery("redelivered");
        return StatusCode::OK.into_response();
    }
    tracing::debug!(jira_issue_id = %issue_id, "Processing incoming webhook event");
    signal(&state, &issue_id, delivery.as_deref()).await
}

/// Asks for a step for the issue's request and waits (a bounded time, and only while few other
/// replies wait) for it to end.
async fn signal(state: &WebhookState, issue_id: &str, delivery: Option<&str>) -> Response {
    match state.engine.signal_issue(issue_id).await {
        Ok(Some(done)) => {
            if let Ok(_waiting) = state.waiting_replies.try_acquire() {
                let _ = tokio::time::timeout(REPLY_WAIT, done).await;
            }
            // The step found the issue tied to another request than its record says.
            if let Some(message) = state.engine.take_refusal(issue_id) {
                return refuse(state, issue_id, delivery, &message);
            }
            state.metrics.webhook_delivery("accepted");
            StatusCode::OK.into_response()
        }
        Ok(None) => {
            state.metrics.webhook_delivery("ignored");
            StatusCode::OK.into_response()
        }
        Err(OwnerError::Refused(message)) => refuse(state, issue_id, delivery, &message),
        Err(OwnerError::Unavailable(message)) => {
            // Let Jira deliver it again; the periodic scan would also catch the change.
            state.metrics.webhook_delivery("unavailable");
            forget(state, delivery);
            tracing::error!(jira_issue_id = %issue_id, error = %message, "Failed to process webhook");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily unable to process the webhook",
            )
        }
    }
}

fn refuse(state: &WebhookState, issue_id: &str, delivery: Option<&str>, message: &str) -> Response {
    state.metrics.webhook_delivery("refused");
    forget(state, delivery);
    tracing::warn!(jira_issue_id = %issue_id, reason = %message, "Refused webhook");
    reply(StatusCode::BAD_REQUEST, message)
}

fn forget(state: &WebhookState, delivery: Option<&str>) {
    if let Some(delivery) = delivery {
        lock(&state.seen).remove(delivery);
    }
}

fn reply(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}
