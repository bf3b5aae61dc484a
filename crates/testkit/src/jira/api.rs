//! The HTTP plumbing of the fake: one axum fallback handler that strips the base path, applies
//! the rate limit and the fault knobs, authenticates, hands `/rest/…` to the route table (`routes`), records the
//! call, and gives webhook events to the dispatcher once the store is unlocked.
//!
//! Routing is by hand on decoded path segments, so every answer (including bad query values
//! and bodies) has Jira's shape rather than axum's extractor rejections.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::{Auth, authenticate};
use super::errors::{ApiError, Reply};
use super::faults::{Fault, Faults};
use super::model::{Deployment, RecordedCall};
use super::rate_limit::{Admission, Limiter, mark_admitted, too_many_requests};
use super::req::{Req, decode_segments, parse_query, strip_base};
use super::routes::{self, Call};
use super::store::Store;
use super::webhook::{Dispatcher, OutgoingEvent};

/// What the handler shares with the test-side API.
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub faults: Arc<Faults>,
    pub webhooks: Arc<Dispatcher>,
    pub limiter: Limiter,
    pub base_path: String,
    pub deployment: Deployment,
    pub cloud_id: String,
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// What a call got, for the client and for the call log.
struct Answer {
    response: Response,
    status: u16,
    /// Account id of the authenticated caller, if the call got as far as authentication.
    caller: Option<String>,
}

impl Answer {
    fn of(result: Result<Reply, ApiError>, caller: Option<String>) -> Self {
        let (status, response) = match result {
            Ok(reply) => (reply.status(), reply.into_response()),
            Err(error) => (error.status(), error.into_response()),
        };
        Self {
            response,
            status: status.as_u16(),
            caller,
        }
    }

    fn fault(fault: Fault, caller: Option<String>) -> Self {
        Self {
            status: fault.status(),
            response: fault.into_response(),
            caller,
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_at = Instant::now();
    if let Some(tenant) = tenant_info(&shared, &method, &uri) {
        return tenant;
    }
    let path = match rest_path(&uri, &shared.base_path) {
        Ok(path) => path,
        Err(not_rest) => return not_rest.into_response(),
    };
    let query = parse_query(uri.query());
    let req = Req {
        method: &method,
        uri: &uri,
        query: &query,
        headers: &headers,
        body: &body,
    };
    let answer = match shared.limiter.admit() {
        // Refused at the edge: Jira does nothing, so nothing is authenticated either.
        Admission::Refused {
            limit,
            retry_after_secs,
            send_retry_after,
        } => Answer {
            response: too_many_requests(limit, retry_after_secs, send_retry_after),
            status: 429,
            caller: None,
        },
        admission => {
            let latency = shared.faults.latency();
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let mut answer = answer(&shared, &path, &req);
            shared.faults.hold_reply(method.as_str(), &path).await;
            if let Admission::Admitted { limit, remaining } = admission {
                mark_admitted(answer.response.headers_mut(), limit, remaining);
            }
            answer
        }
    };
    shared.store().calls.push(RecordedCall {
        method: method.to_string(),
        path,
        query,
        body: recorded_body(&body),
        raw_body: String::from_utf8_lossy(&body).into_owned(),
        status: answer.status,
        caller: answer.caller,
        received_at,
    });
    answer.response
}

/// Jira Cloud's `GET /_edge/tenant_info`: the site's cloud id, without authentication.
fn tenant_info(shared: &Shared, method: &Method, uri: &Uri) -> Option<Response> {
    let path = strip_base(uri.path(), &shared.base_path)?;
    if path != "/_edge/tenant_info" || method != Method::GET {
        return None;
    }
    if shared.deployment != Deployment::Cloud {
        return Some(NotRest::SitePage.into_response());
    }
    let body = serde_json::json!({ "cloudId": shared.cloud_id });
    Some(axum::Json(body).into_response())
}

/// A path the REST API does not serve: outside the base path, or a page of the site.
enum NotRest {
    OutsideBase,
    SitePage,
}

impl IntoResponse for NotRest {
    fn into_response(self) -> Response {
        match self {
            NotRest::OutsideBase => (StatusCode::NOT_FOUND, "Not Found").into_response(),
            NotRest::SitePage => (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/html")],
                "<h1>Not Found</h1>",
            )
                .into_response(),
        }
    }
}

/// The path below the base path when it is a REST path.
fn rest_path(uri: &Uri, base_path: &str) -> Result<String, NotRest> {
    let path = strip_base(uri.path(), base_path).ok_or(NotRest::OutsideBase)?;
    if path.starts_with("/rest/") {
        Ok(path.to_string())
    } else {
        Err(NotRest::SitePage)
    }
}

/// The parsed JSON body, a string when it was not JSON, null when empty.
fn recorded_body(body: &Bytes) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// A queued fault answers instead of Jira, or after it when the reply is lost on the way back.
fn answer(shared: &Shared, path: &str, req: &Req<'_>) -> Answer {
    match shared.faults.next_fault(path) {
        Some(fault @ Fault::AfterProcessing(_)) => {
            let served = serve(shared, path, req);
            Answer::fault(fault, served.caller)
        }
        Some(fault) => Answer::fault(fault, None),
        None => serve(shared, path, req),
    }
}

/// Runs the call against the store, then delivers its webhooks with the store unlocked.
fn serve(shared: &Shared, path: &str, req: &Req<'_>) -> Answer {
    let mut events = Vec::new();
    let (result, caller) = {
        let mut store = shared.store();
        let auth = authenticate(&store, req.headers);
        let caller = match auth {
            Auth::User(idx) => Some(idx),
            _ => None,
        };
        let caller_id = caller.map(|idx| store.users[idx].account_id.clone());
        let result = if matches!(auth, Auth::Rejected) {
            Err(ApiError::Unauthenticated { presented: true })
        } else {
            route(&mut store, caller, path, req, &mut events)
        };
        (result, caller_id)
    };
    for event in events {
        shared.webhooks.dispatch(event);
    }
    Answer::of(result, caller)
}

fn route(
    store: &mut Store,
    caller: Option<usize>,
    path: &str,
    req: &Req<'_>,
    events: &mut Vec<OutgoingEvent>,
) -> Result<Reply, ApiError> {
    let Some(segments) = decode_segments(path) else {
        return Err(ApiError::NoResource {
            uri: req.uri.to_string(),
        });
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let mut call = Call {
        store,
        caller,
        version: "",
        args: [""; 2],
        req,
        events,
    };
    routes::dispatch(&mut call, &segments)
}
