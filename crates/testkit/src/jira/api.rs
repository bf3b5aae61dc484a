//! The HTTP plumbing of the fake: one axum fallback handler that strips the base path, applies
//! the fault knobs, authenticates, routes `/rest/api/{2,3,latest}/…` to `endpoints` and
//! `search`, records the call, and hands webhook events to the dispatcher once the store is
//! unlocked.
//!
//! Routing is by hand on decoded path segments, so every answer (including bad query values
//! and bodies) has Jira's shape rather than axum's extractor rejections.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::faults::Fault;

use super::errors::{ApiError, Reply};
use super::faults::Faults;
use super::model::{Deployment, RecordedCall};
use super::store::Store;
use super::webhook::{Dispatcher, OutgoingEvent};
use super::{endpoints, search};

/// What the handler shares with the test-side API.
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub faults: Arc<Faults>,
    pub webhooks: Arc<Dispatcher>,
    pub base_path: String,
    pub deployment: Deployment,
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// One decoded request.
pub(crate) struct Req<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub query: &'a BTreeMap<String, String>,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
}

impl Req<'_> {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    pub(crate) fn list(&self, name: &str) -> Vec<&str> {
        self.param(name)
            .map(|v| v.split(',').collect())
            .unwrap_or_default()
    }

    /// Jira rejects non-JSON bodies at the Jersey layer with 415, and unparsable JSON with 400.
    pub(crate) fn json(&self) -> Result<Value, ApiError> {
        let is_json = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "No content to map to Object due to end of input",
            ));
        }
        serde_json::from_slice(self.body).map_err(|e| {
            ApiError::bad_request(format!("Unexpected character in the request body: {e}"))
        })
    }
}

struct Outcome {
    result: Result<Reply, ApiError>,
    caller: Option<String>,
    events: Vec<OutgoingEvent>,
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(path) = strip_base(uri.path(), &shared.base_path) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    if !path.starts_with("/rest/") {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html")],
            "<h1>Not Found</h1>",
        )
            .into_response();
    }
    let path = path.to_string();
    let query = parse_query(uri.query());
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = shared.faults.next_fault(&path);
    let lost_reply = match &fault {
        Some(Fault::AfterProcessing(_)) => fault.clone(),
        _ => None,
    };
    let (response, status, caller) = match fault.filter(|f| !matches!(f, Fault::AfterProcessing(_)))
    {
        Some(fault) => {
            let status = fault.status();
            (fault.into_response(), status, None)
        }
        None => {
            let req = Req {
                method: &method,
                uri: &uri,
                query: &query,
                headers: &headers,
                body: &body,
            };
            let outcome = route(&shared, &path, &req);
            for event in outcome.events {
                shared.webhooks.dispatch(event);
            }
            match outcome.result {
                Ok(reply) => {
                    let status = reply.status().as_u16();
                    (reply.into_response(), status, outcome.caller)
                }
                Err(error) => {
                    let status = error.status().as_u16();
                    (error.into_response(), status, outcome.caller)
                }
            }
        }
    };
    let recorded_body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let (response, status) = match lost_reply {
        Some(fault) => {
            let status = fault.status();
            (fault.into_response(), status)
        }
        None => (response, status),
    };
    shared.store().calls.push(RecordedCall {
        method: method.to_string(),
        path,
        query,
        body: recorded_body,
        raw_body: String::from_utf8_lossy(&body).into_owned(),
        status,
        caller,
    });
    response
}

fn strip_base<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    if base.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(base)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Repeated keys are joined with commas, which is how Jira reads list parameters either way.
fn parse_query(query: Option<&str>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k, true).unwrap_or_else(|| k.to_string());
        let v = percent_decode(v, true).unwrap_or_else(|| v.to_string());
        out.entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

enum Auth {
    Anonymous,
    User(usize),
    Rejected,
}

fn authenticate(store: &Store, headers: &HeaderMap) -> Auth {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Auth::Anonymous;
    };
    let Some((scheme, credentials)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
        return Auth::Rejected;
    };
    let credentials = credentials.trim();
    let found = match scheme.to_ascii_lowercase().as_str() {
        "basic" => STANDARD
            .decode(credentials)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| {
                let (login, secret) = pair.split_once(':')?;
                store.users.iter().position(|u| {
                    let login_matches = u
                        .email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(login))
                        || (store.deployment == Deployment::DataCenter && u.username() == login);
                    login_matches && u.token.as_deref() == Some(secret)
                })
            }),
        // Personal access tokens exist on Data Center only; Cloud's Bearer is for OAuth apps.
        "bearer" if store.deployment == Deployment::DataCenter => store
            .users
            .iter()
            .position(|u| u.token.as_deref() == Some(credentials)),
        _ => None,
    };
    match found {
        Some(idx) if store.users[idx].active => Auth::User(idx),
        _ => Auth::Rejected,
    }
}

fn route(shared: &Shared, path: &str, req: &Req<'_>) -> Outcome {
    let mut store = shared.store();
    let mut events = Vec::new();
    let auth = authenticate(&store, req.headers);
    let caller = match auth {
        Auth::User(idx) => Some(idx),
        _ => None,
    };
    let caller_id = caller.map(|idx| store.users[idx].account_id.clone());
    let result = if matches!(auth, Auth::Rejected) {
        Err(ApiError::Unauthenticated { presented: true })
    } else {
        match decode_segments(path) {
            Some(segments) => {
                let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
                dispatch(&mut store, caller, &segments, req, &mut events)
            }
            None => Err(ApiError::NoResource {
                uri: req.uri.to_string(),
            }),
        }
    };
    Outcome {
        result,
        caller: caller_id,
        events,
    }
}

fn decode_segments(path: &str) -> Option<Vec<String>> {
    path.strip_prefix("/rest/")?
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect()
}

fn allow(req: &Req<'_>, methods: &[Method]) -> Result<(), ApiError> {
    if methods.contains(req.method) {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

fn need_user(caller: Option<usize>) -> Result<usize, ApiError> {
    caller.ok_or(ApiError::Unauthenticated { presented: false })
}

fn dispatch(
    store: &mut Store,
    caller: Option<usize>,
    segments: &[&str],
    req: &Req<'_>,
    events: &mut Vec<OutgoingEvent>,
) -> Result<Reply, ApiError> {
    let no_resource = || ApiError::NoResource {
        uri: req.uri.to_string(),
    };
    let ["api", version, rest @ ..] = segments else {
        return Err(no_resource());
    };
    let cloud = store.deployment == Deployment::Cloud;
    let version_ok = match *version {
        "2" | "latest" => true,
        // Only the search endpoints are modelled on v3 (the rest would need ADF bodies).
        "3" => cloud && matches!(rest, ["search"] | ["search", "jql"]),
        _ => false,
    };
    if !version_ok {
        return Err(no_resource());
    }
    let get = Method::GET;
    let post = Method::POST;
    let put = Method::PUT;
    let delete = Method::DELETE;
    match rest {
        ["serverInfo"] => {
            allow(req, &[get])?;
            Ok(endpoints::server_info(store))
        }
        ["myself"] => {
            allow(req, &[get])?;
            endpoints::myself(store, need_user(caller)?)
        }
        ["user"] => {
            allow(req, &[get])?;
            need_user(caller)?;
            endpoints::user(store, req)
        }
        ["project", key] => {
            allow(req, &[get])?;
            endpoints::project(store, need_user(caller)?, key)
        }
        ["project", key, "statuses"] => {
            allow(req, &[get])?;
            endpoints::project_statuses(store, need_user(caller)?, key)
        }
        ["mypermissions"] => {
            allow(req, &[get])?;
            endpoints::my_permissions(store, need_user(caller)?, req)
        }
        ["issue"] => {
            allow(req, &[post])?;
            endpoints::create_issue(store, need_user(caller)?, req, events)
        }
        ["issue", id] => {
            allow(req, &[get.clone(), put.clone()])?;
            let user = need_user(caller)?;
            if req.method == put {
                endpoints::edit_issue(store, user, id, req, events)
            } else {
                endpoints::get_issue(store, user, id, req)
            }
        }
        ["issue", id, "comment"] => {
            allow(req, &[get.clone(), post.clone()])?;
            let user = need_user(caller)?;
            if req.method == post {
                endpoints::add_comment(store, user, id, req, events)
            } else {
                endpoints::list_comments(store, user, id, req)
            }
        }
        ["issue", id, "comment", comment_id] => {
            allow(req, &[get])?;
            endpoints::get_comment(store, need_user(caller)?, id, comment_id)
        }
        ["issue", id, "transitions"] => {
            allow(req, &[get.clone(), post.clone()])?;
            let user = need_user(caller)?;
            if req.method == post {
                endpoints::do_transition(store, user, id, req, events)
            } else {
                endpoints::list_transitions(store, user, id, req)
            }
        }
        ["issue", id, "properties"] => {
            allow(req, &[get])?;
            endpoints::list_properties(store, need_user(caller)?, id)
        }
        ["issue", id, "properties", key] => {
            allow(req, &[get.clone(), put.clone(), delete.clone()])?;
            let user = need_user(caller)?;
            match req.method {
                m if *m == put => endpoints::put_property(store, user, id, key, req),
                m if *m == delete => endpoints::delete_property(store, user, id, key),
                _ => endpoints::get_property(store, user, id, key),
            }
        }
        ["search"] => {
            allow(req, &[get, post])?;
            let user = need_user(caller)?;
            if cloud {
                Err(ApiError::message(
                    StatusCode::GONE,
                    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046",
                ))
            } else {
                search::classic_search(store, user, req)
            }
        }
        ["search", "jql"] if cloud => {
            allow(req, &[get, post])?;
            search::enhanced_search(store, need_user(caller)?, req)
        }
        _ => Err(no_resource()),
    }
}

/// A non-negative integer query parameter; negative values count as 0, as in Jira.
pub(crate) fn non_negative(req: &Req<'_>, name: &str) -> Result<Option<usize>, ApiError> {
    match req.param(name) {
        None | Some("") => Ok(None),
        Some(raw) => raw
            .parse::<i64>()
            .map(|n| Some(usize::try_from(n.max(0)).unwrap_or(0)))
            .map_err(|_| {
                ApiError::bad_request(format!("Invalid value '{raw}' for parameter '{name}'."))
            }),
    }
}
