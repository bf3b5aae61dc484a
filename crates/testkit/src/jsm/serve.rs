//! The HTTP side of the fake: authentication, faults, the routes and Atlassian's error shape.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::FakeJsmOptions;
use super::model::{JsmAccount, JsmCall, JsmSchedule};

/// A status the next calls get, whatever they ask.
pub(super) struct Fault {
    pub times: usize,
    pub status: u16,
    pub retry_after: Option<u64>,
}

pub(super) struct State {
    cloud_id: String,
    accounts: Vec<JsmAccount>,
    schedules: Vec<JsmSchedule>,
    pub faults: Vec<Fault>,
    pub latency: Duration,
    pub calls: Vec<JsmCall>,
}

impl State {
    pub fn new(options: FakeJsmOptions) -> Self {
        Self {
            cloud_id: options.cloud_id,
            accounts: options.accounts,
            schedules: options.schedules,
            faults: Vec::new(),
            latency: Duration::ZERO,
            calls: Vec::new(),
        }
    }

    pub fn schedule_mut(&mut self, id: &str) -> Option<&mut JsmSchedule> {
        self.schedules.iter_mut().find(|s| s.id == id)
    }

    /// The first pending fault, used up by one call.
    fn take_fault(&mut self) -> Option<(u16, Option<u64>)> {
        let fault = self.faults.iter_mut().find(|f| f.times > 0)?;
        fault.times -= 1;
        Some((fault.status, fault.retry_after))
    }
}

pub(super) fn router(state: Arc<Mutex<State>>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let latency = lock(&state).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut state = lock(&state);
    let caller = authenticate(&state.accounts, &headers).cloned();
    let (status, body, retry_after) = match state.take_fault() {
        Some((status, retry_after)) => (status, error_body(status, "injected"), retry_after),
        None => {
            let (status, body) = answer(&state, &method, uri.path(), uri.query(), caller.as_ref());
            (status, body, None)
        }
    };
    state.calls.push(JsmCall {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        caller: caller.map(|a| a.account_id),
        status,
    });
    drop(state);
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The account of a valid Basic `email:api_token`.
fn authenticate<'a>(accounts: &'a [JsmAccount], headers: &HeaderMap) -> Option<&'a JsmAccount> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (email, token) = decoded.split_once(':')?;
    accounts
        .iter()
        .find(|a| a.email.eq_ignore_ascii_case(email) && a.token == token)
}

/// Status and body for a call that got past the faults.
fn answer(
    state: &State,
    method: &Method,
    path: &str,
    query: Option<&str>,
    caller: Option<&JsmAccount>,
) -> (u16, Value) {
    let Some(account) = caller.filter(|a| a.has_ops_scope) else {
        return (401, error_body(401, "Unauthorized"));
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let route = match segments.as_slice() {
        ["jsm", "ops", "api", cloud, "v1", "schedules", rest @ ..] => Some((*cloud, rest)),
        _ => None,
    };
    let Some((cloud, rest)) = route.filter(|_| method == Method::GET) else {
        return (404, error_body(404, "Not Found"));
    };
    if cloud != state.cloud_id {
        return (404, error_body(404, "Site not found"));
    }
    let readable = |s: &&JsmSchedule| {
        s.readers
            .as_ref()
            .is_none_or(|readers| readers.contains(&account.account_id))
    };
    match rest {
        [] => {
            let values: Vec<Value> = state
                .schedules
                .iter()
                .filter(readable)
                .map(schedule_json)
                .collect();
            (200, json!({ "values": values, "links": {} }))
        }
        [id] | [id, "on-calls"] => {
            let Some(schedule) = state.schedules.iter().find(|s| s.id == *id) else {
                return (404, error_body(404, "Schedule not found"));
            };
            if !readable(&schedule) {
                return (
                    403,
                    error_body(403, "You are not authorized to view this schedule"),
                );
            }
            if rest.len() == 1 {
                return (200, schedule_json(schedule));
            }
            (200, on_calls(schedule, flat_asked(query)))
        }
        _ => (404, error_body(404, "Not Found")),
    }
}

fn flat_asked(query: Option<&str>) -> bool {
    query
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair.eq_ignore_ascii_case("flat=true"))
}

fn schedule_json(schedule: &JsmSchedule) -> Value {
    json!({
        "id": schedule.id,
        "name": schedule.name,
        "timezone": schedule.timezone,
        "enabled": true,
    })
}

/// `flat=true`: every account id on call; else the participants, teams with their users.
fn on_calls(schedule: &JsmSchedule, flat: bool) -> Value {
    if flat {
        return json!({ "onCallUsers": schedule.flat() });
    }
    let users = schedule
        .on_call
        .iter()
        .map(|id| json!({ "id": id, "type": "user" }));
    let teams = schedule.teams.iter().map(|team| {
        let members: Vec<Value> = team
            .users
            .iter()
            .map(|id| json!({ "id": id, "type": "user" }))
            .collect();
        json!({ "id": team.id, "type": "team", "onCallParticipants": members })
    });
    json!({ "onCallParticipants": users.chain(teams).collect::<Vec<_>>() })
}

/// Atlassian's API gateway error shape.
fn error_body(status: u16, message: &str) -> Value {
    json!({ "code": status, "message": message })
}
