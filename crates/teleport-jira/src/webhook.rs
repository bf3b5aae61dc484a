//! The HTTP(S) server Jira calls: `POST /` (the webhook), with `GET /status`, `/readyz` and
//! `/metrics` beside it (see [`crate::health`]), all behind optional basic auth as the Go plugin
//! serves them.
//!
//! A webhook is only a hint: it names an issue, the issue names a request, and that request gets a
//! reconcile step, which reads the truth from Jira and Teleport itself. The reply waits for that
//! step for a bounded time, so callers that read Teleport right after a 200 see the result, while a
//! slow step never holds Jira's connection for long.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use crate::config::BasicAuth;
use crate::health::HealthState;
use crate::jira::JiraError;
use crate::jira::types::REQUEST_ID_PROPERTY;
use crate::metrics::Metrics;
use crate::plugin_data::{PLUGIN_NAME, PluginData};
use crate::secret::Secret;
use crate::sync::Engine;

/// How long a webhook reply waits for the reconcile step it triggered.
const REPLY_WAIT: Duration = Duration::from_secs(5);
/// A client gets this long to send its request headers, and this long for the whole exchange.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests handled at once; more wait their turn instead of exhausting the process.
const MAX_CONCURRENT_REQUESTS: usize = 256;
/// Delivery identifiers remembered to recognise Jira's re-deliveries.
const SEEN_DELIVERIES: usize = 4096;

/// The webhook secret in use; replaced when its file is reloaded.
pub type SharedSecret = Arc<arc_swap::ArcSwapOption<Secret>>;

#[derive(Clone)]
pub struct WebhookState {
    engine: Arc<Engine>,
    basic_auth: Option<BasicAuth>,
    secret: SharedSecret,
    seen: Arc<Mutex<Deliveries>>,
    metrics: Arc<Metrics>,
}

impl WebhookState {
    /// The handle through which a reloaded secret replaces the one in use.
    pub fn secret(&self) -> SharedSecret {
        self.secret.clone()
    }

    pub fn new(
        engine: Arc<Engine>,
        basic_auth: Option<BasicAuth>,
        secret: Option<Secret>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            engine,
            basic_auth,
            secret: Arc::new(arc_swap::ArcSwapOption::new(secret.map(Arc::new))),
            seen: Arc::default(),
            metrics,
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
            require_basic_auth,
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

/// Checks Jira's `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, in constant time.
fn signature_valid(secret: &Secret, headers: &HeaderMap, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let presented = headers
        .get("x-hub-signature")
        .or_else(|| headers.get("x-hub-signature-256"))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().strip_prefix("sha256=").map(str::to_owned))
        .and_then(|hex_digest| hex::decode(hex_digest).ok());
    let (Some(presented), Ok(mut mac)) = (
        presented,
        Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()),
    ) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&presented).is_ok()
}

async fn require_basic_auth(
    State(state): State<WebhookState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(expected) = &state.basic_auth {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !basic_auth_matches(presented, expected) {
            if request.method() == axum::http::Method::POST {
                state.metrics.webhook_delivery("unauthorized");
            }
            return (
                StatusCode::UNAUTHORIZED,
                [
                    (header::WWW_AUTHENTICATE, "Basic realm=Restricted"),
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                ],
                "Unauthorized\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

fn basic_auth_matches(presented: Option<&str>, expected: &BasicAuth) -> bool {
    use base64::Engine as _;
    let Some(encoded) = presented.and_then(|value| value.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let wanted = format!("{}:{}", expected.user, expected.password.expose());
    constant_time_eq(&decoded, wanted.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(default, rename = "webhookEvent")]
    webhook_event: String,
    #[serde(default)]
    issue_event_type_name: String,
    #[serde(default)]
    issue: Option<PayloadIssue>,
}

#[derive(Debug, Deserialize)]
struct PayloadIssue {
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// What a webhook body asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// An event that never carries a decision (issue created, deleted, …).
    Ignored,
    /// Something happened to this issue.
    Issue(String),
}

/// Why a webhook body was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadDelivery {
    #[error("malformed JSON payload")]
    Malformed,
    #[error("got webhook without issue info")]
    NoIssue,
}

/// Reads a webhook body. Only the event name and the issue id are taken from it: everything else
/// is read from Jira itself.
pub fn parse_delivery(body: &[u8]) -> Result<Delivery, BadDelivery> {
    let payload: Payload = serde_json::from_slice(body).map_err(|_| BadDelivery::Malformed)?;
    // Comment, assignment and transition events all arrive as `jira:issue_updated`; what changed
    // is read from Jira, so any of them may carry a decision.
    if payload.webhook_event != "jira:issue_updated" {
        return Ok(Delivery::Ignored);
    }
    // A comment never moves a card; the plugin's own comments would otherwise echo back as a
    // second step for every decision.
    if matches!(
        payload.issue_event_type_name.as_str(),
        "issue_commented" | "issue_comment_edited" | "issue_comment_deleted"
    ) {
        return Ok(Delivery::Ignored);
    }
    match payload.issue.and_then(|issue| issue.id) {
        Some(serde_json::Value::String(id)) if !id.is_empty() && id.len() <= 64 => {
            Ok(Delivery::Issue(id))
        }
        Some(serde_json::Value::Number(id)) => Ok(Delivery::Issue(id.to_string())),
        _ => Err(BadDelivery::NoIssue),
    }
}

async fn receive(State(state): State<WebhookState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(secret) = &*state.secret.load()
        && !signature_valid(secret, &headers, &body)
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
        && !crate::lock::lock(&state.seen).insert(delivery)
    {
        tracing::debug!(delivery = %delivery, "Ignoring a re-delivered webhook");
        state.metrics.webhook_delivery("redelivered");
        return StatusCode::OK.into_response();
    }
    tracing::debug!(jira_issue_id = %issue_id, "Processing incoming webhook event");
    match signal_issue(&state.engine, &issue_id).await {
        Ok(Some(done)) => {
            state.metrics.webhook_delivery("accepted");
            let _ = tokio::time::timeout(REPLY_WAIT, done).await;
            StatusCode::OK.into_response()
        }
        Ok(None) => {
            state.metrics.webhook_delivery("ignored");
            StatusCode::OK.into_response()
        }
        Err(SignalError::Refused(message)) => {
            state.metrics.webhook_delivery("refused");
            forget(&state, delivery.as_deref());
            tracing::warn!(jira_issue_id = %issue_id, reason = %message, "Refused webhook");
            reply(StatusCode::BAD_REQUEST, &message)
        }
        Err(SignalError::Unavailable(message)) => {
            // Let Jira deliver it again; the periodic scan would also catch the change.
            state.metrics.webhook_delivery("unavailable");
            forget(&state, delivery.as_deref());
            tracing::error!(jira_issue_id = %issue_id, error = %message, "Failed to process webhook");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily unable to process the webhook",
            )
        }
    }
}

fn forget(state: &WebhookState, delivery: Option<&str>) {
    if let Some(delivery) = delivery {
        crate::lock::lock(&state.seen).remove(delivery);
    }
}

enum SignalError {
    Refused(String),
    Unavailable(String),
}

/// Finds the request an issue belongs to and asks for a step for it. Anti-forgery: the request's
/// plugin data must name this very issue.
async fn signal_issue(
    engine: &Engine,
    issue_id: &str,
) -> Result<Option<tokio::sync::oneshot::Receiver<()>>, SignalError> {
    let reconciler = &engine.reconciler;
    let issue = match reconciler.jira.issue(issue_id).await {
        Ok(issue) => issue,
        Err(JiraError::Status { status: 404, .. }) => {
            return Err(SignalError::Refused(format!("unknown issue {issue_id}")));
        }
        Err(err) => return Err(SignalError::Unavailable(err.to_string())),
    };
    let request_id = match issue.properties.get(REQUEST_ID_PROPERTY) {
        Some(serde_json::Value::String(id)) if id.is_empty() => return Ok(None),
        Some(serde_json::Value::String(id)) => id.clone(),
        // Not an issue of ours (or a tampered one).
        _ => {
            return Err(SignalError::Refused(format!(
                "issue {issue_id} has no {REQUEST_ID_PROPERTY} property"
            )));
        }
    };
    let data = reconciler
        .teleport
        .plugin_data(&request_id, PLUGIN_NAME)
        .await
        .map_err(|err| SignalError::Unavailable(err.to_string()))?
        .map(|data| PluginData::decode(&data));
    match data.and_then(|d| d.issue) {
        Some(recorded) if recorded.id == issue.id => {
            reconciler.unsettle(&request_id);
            Ok(Some(engine.enqueue(&request_id)))
        }
        _ => Err(SignalError::Refused(format!(
            "issue {issue_id} is not the issue recorded for request {request_id}"
        ))),
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

/// A bounded set of recent delivery identifiers.
#[derive(Default)]
struct Deliveries {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Deliveries {
    fn insert(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > SEEN_DELIVERIES
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }

    fn remove(&mut self, id: &str) {
        self.ids.remove(id);
        self.order.retain(|seen| seen != id);
    }
}

/// The webhook's TLS configuration, ready to serve; see [`server_config`].
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
    verify_client_cert: bool,
) -> Result<axum_server::tls_rustls::RustlsConfig, String> {
    server_config(cert, key, verify_client_cert)
        .map(axum_server::tls_rustls::RustlsConfig::from_config)
}

/// The webhook's TLS settings: its certificate and key, and when `verify_client_cert` is set,
/// a client certificate required and verified against the system trust store (as the Go plugin).
pub fn server_config(
    cert: &std::path::Path,
    key: &std::path::Path,
    verify_client_cert: bool,
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("http.https_cert_file {}: {err}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|err| format!("http.https_key_file {}: {err}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?;
    let builder = if verify_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            return Err("http.tls.verify_client_cert needs trusted CAs, and the system trust store is empty".into());
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| format!("http.tls.verify_client_cert: {err}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|err| {
        format!("http.https_cert_file and http.https_key_file do not form a key pair: {err}")
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the router on `addr` (TLS when `tls` is given) until `shutdown`; returns the bound address
/// through `bound` as soon as the socket listens.
pub async fn serve(
    addr: SocketAddr,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    app: Router,
    shutdown: tokio_util::sync::CancellationToken,
    bound: tokio::sync::oneshot::Sender<SocketAddr>,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let graceful = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        graceful.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let _ = bound.send(listener.local_addr()?);
    let service = app.into_make_service();
    // Replies are small; without TCP_NODELAY one split across two segments can wait out the
    // peer's delayed ACK (tens of milliseconds per webhook or probe).
    let no_delay = axum_server::accept::NoDelayAcceptor::new();
    match tls {
        Some(tls) => {
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls).acceptor(no_delay);
            let mut server = axum_server::from_tcp(listener)?.acceptor(acceptor);
            slow_client_limits(server.http_builder());
            server.handle(handle).serve(service).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)?.acceptor(no_delay);
            slow_client_limits(server.http_builder());
            server.handle(handle).serve(service).await
        }
    }
}

/// A client that never finishes its headers is disconnected.
fn slow_client_limits(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn basic_auth_compares_user_and_password() {
        let expected = BasicAuth {
            user: "jira".into(),
            password: Secret::new("pw"),
        };
        assert!(basic_auth_matches(Some("Basic amlyYTpwdw=="), &expected));
        assert!(!basic_auth_matches(Some("Basic amlyYTpwdXg="), &expected));
        assert!(!basic_auth_matches(Some("Bearer x"), &expected));
        assert!(!basic_auth_matches(None, &expected));
    }

    #[test]
    fn comment_events_are_ignored_and_transitions_of_any_type_are_not() {
        let event = |kind: &str| {
            format!(
                r#"{{"webhookEvent":"jira:issue_updated","issue_event_type_name":"{kind}","issue":{{"id":"7"}}}}"#
            )
        };
        assert_eq!(
            parse_delivery(event("issue_commented").as_bytes()),
            Ok(Delivery::Ignored)
        );
        assert_eq!(
            parse_delivery(event("issue_generic").as_bytes()),
            Ok(Delivery::Issue("7".into()))
        );
        assert_eq!(
            parse_delivery(event("issue_resolved").as_bytes()),
            Ok(Delivery::Issue("7".into()))
        );
    }

    #[test]
    fn deliveries_remember_a_bounded_number_of_ids() {
        let mut seen = Deliveries::default();
        assert!(seen.insert("a"));
        assert!(!seen.insert("a"));
        for i in 0..SEEN_DELIVERIES {
            seen.insert(&i.to_string());
        }
        assert!(seen.insert("a"), "the oldest id is forgotten");
    }
}
