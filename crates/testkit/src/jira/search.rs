//! Issue search: Cloud's `search/jql` (opaque `nextPageToken`, `isLast`, no total, ids only
//! unless fields are asked for, `reconcileIssues` for read-after-write) and Data Center's
//! classic `search` (`startAt`, `total`). Both match against the lagging index of `store`.

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::errors::{ApiError, Reply};
use super::jql::{self, DocView};
use super::model::Permission;
use super::render::{FieldSelection, IssueView, PropertySelection};
use super::req::{Req, non_negative};
use super::store::{IndexedDoc, Store, now};

// ----- search --------------------------------------------------------------------------------

struct SearchParams {
    jql: String,
    max_results: Option<usize>,
    start_at: usize,
    next_page_token: Option<String>,
    fields: Vec<String>,
    expand: Vec<String>,
    properties: Vec<String>,
    reconcile: Vec<u64>,
}

fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn search_params(req: &Req<'_>) -> Result<SearchParams, ApiError> {
    let params = if *req.method == Method::POST {
        body_params(&req.json()?)?
    } else {
        query_params(req)?
    };
    if params.reconcile.len() > 50 {
        return Err(ApiError::bad_request(
            "The maximum number of issues to reconcile is 50.",
        ));
    }
    Ok(params)
}

/// `POST search…`: the parameters in the JSON body (nulls count as absent).
fn body_params(body: &Value) -> Result<SearchParams, ApiError> {
    let get = |name: &str| body.get(name).filter(|v| !v.is_null());
    let number = |name: &str| {
        get(name)
            .map(|v| {
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "The value of '{name}' must be a non-negative integer."
                        ))
                    })
            })
            .transpose()
    };
    let mut params = SearchParams {
        jql: get("jql")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        max_results: number("maxResults")?,
        start_at: number("startAt")?.unwrap_or(0),
        next_page_token: get("nextPageToken")
            .and_then(Value::as_str)
            .map(str::to_string),
        fields: get("fields").map(string_list).unwrap_or_default(),
        expand: get("expand").map(string_list).unwrap_or_default(),
        properties: get("properties").map(string_list).unwrap_or_default(),
        reconcile: Vec::new(),
    };
    if let Some(ids) = get("reconcileIssues") {
        let not_ids = || ApiError::bad_request("reconcileIssues must be an array of issue ids.");
        for item in ids.as_array().ok_or_else(not_ids)? {
            let id = item
                .as_u64()
                .or_else(|| item.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(not_ids)?;
            params.reconcile.push(id);
        }
    }
    Ok(params)
}

/// `GET search…`: the parameters in the query string.
fn query_params(req: &Req<'_>) -> Result<SearchParams, ApiError> {
    let strings =
        |name: &str| -> Vec<String> { req.list(name).into_iter().map(str::to_string).collect() };
    let max_results = non_negative(req, "maxResults")?;
    let start_at = non_negative(req, "startAt")?.unwrap_or(0);
    let mut reconcile = Vec::new();
    for raw in req
        .list("reconcileIssues")
        .into_iter()
        .filter(|s| !s.is_empty())
    {
        reconcile.push(
            raw.trim().parse().map_err(|_| {
                ApiError::bad_request("reconcileIssues must be a list of issue ids.")
            })?,
        );
    }
    Ok(SearchParams {
        jql: req.param("jql").unwrap_or_default().to_string(),
        max_results,
        start_at,
        next_page_token: req
            .param("nextPageToken")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        fields: strings("fields"),
        expand: strings("expand"),
        properties: strings("properties"),
        reconcile,
    })
}

/// Matches the (lagging) index and returns issue indices in query order.
fn run_query(store: &Store, user: usize, query: &jql::Query, reconcile: &[u64]) -> Vec<usize> {
    if !store.users[user].has(Permission::BrowseProjects) {
        return Vec::new();
    }
    let mut hits: Vec<(usize, IndexedDoc)> = (0..store.issues.len())
        .filter_map(|idx| {
            let issue = &store.issues[idx];
            let doc = store.searchable_doc(idx, reconcile.contains(&issue.id))?;
            let view = doc_view(store, idx, &doc);
            query.matches(&view).then_some((idx, doc))
        })
        .collect();
    hits.sort_by(|(a, da), (b, db)| {
        query.compare(&doc_view(store, *a, da), &doc_view(store, *b, db))
    });
    hits.into_iter().map(|(idx, _)| idx).collect()
}

fn doc_view<'a>(store: &Store, idx: usize, doc: &'a IndexedDoc) -> DocView<'a> {
    let issue = &store.issues[idx];
    DocView {
        id: issue.id,
        project: issue.project,
        number: issue.number,
        issue_type: issue.issue_type,
        created: issue.created,
        doc,
    }
}

fn parse_jql(store: &Store, jql: &str) -> Result<jql::Query, ApiError> {
    jql::parse(jql, store, now())
        .map_err(|messages| ApiError::messages(StatusCode::BAD_REQUEST, messages))
}

/// Page tokens are opaque to clients; this one carries the offset and a hash of the query so
/// a token cannot be replayed against another search.
fn page_token(jql: &str, offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("fakejira:{offset}:{:016x}", fnv(jql)))
}

fn page_offset(jql: &str, token: &str) -> Option<usize> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut parts = raw.split(':');
    let (Some("fakejira"), Some(offset), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (hash == format!("{:016x}", fnv(jql))).then_some(())?;
    offset.parse().ok()
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn search_view(
    store: &Store,
    user: usize,
    params: &SearchParams,
    default: FieldSelection,
    changelog_cap: usize,
) -> IssueView {
    IssueView {
        fields: FieldSelection::parse(params.fields.iter().map(String::as_str), default),
        changelog: params.expand.iter().any(|e| e == "changelog"),
        transitions: params.expand.iter().any(|e| e == "transitions"),
        properties: (!params.properties.is_empty())
            .then(|| PropertySelection::parse(params.properties.iter().map(String::as_str))),
        changelog_cap,
        may_transition: store.users[user].has(Permission::TransitionIssues),
    }
}

/// Cloud's `search/jql`: token pagination, no total, ids only unless fields are asked for.
pub(crate) fn enhanced_search(
    store: &Store,
    user: usize,
    req: &Req<'_>,
) -> Result<Reply, ApiError> {
    let params = search_params(req)?;
    let query = parse_jql(store, &params.jql)?;
    if query.is_unbounded() {
        return Err(ApiError::bad_request(
            "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.",
        ));
    }
    let offset = match &params.next_page_token {
        None => 0,
        Some(token) => page_offset(&params.jql, token).ok_or_else(|| {
            ApiError::bad_request("The provided next page token is invalid or expired.")
        })?,
    };
    let view = search_view(store, user, &params, FieldSelection::default(), 20);
    let ids_only = view.fields.is_empty() && view.properties.is_none() && !view.changelog;
    let cap = if ids_only { 5000 } else { 100 };
    let max_results = params.max_results.unwrap_or(50).clamp(1, cap);
    let hits = run_query(store, user, &query, &params.reconcile);
    let issues: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(max_results)
        .map(|&idx| {
            if ids_only {
                json!({"id": store.issues[idx].id.to_string()})
            } else {
                store.issue_json(idx, &view)
            }
        })
        .collect();
    let is_last = offset + max_results >= hits.len();
    let mut body = json!({"issues": issues, "isLast": is_last});
    if !is_last && let Some(obj) = body.as_object_mut() {
        obj.insert(
            "nextPageToken".into(),
            json!(page_token(&params.jql, offset + max_results)),
        );
    }
    Ok(Reply::ok(body))
}

/// Data Center's classic search: offset pagination with a total.
pub(crate) fn classic_search(store: &Store, user: usize, req: &Req<'_>) -> Result<Reply, ApiError> {
    let params = search_params(req)?;
    let query = parse_jql(store, &params.jql)?;
    let view = search_view(store, user, &params, FieldSelection::navigable(), 100);
    let max_results = params.max_results.unwrap_or(50).min(1000);
    let hits = run_query(store, user, &query, &params.reconcile);
    let issues: Vec<Value> = hits
        .iter()
        .skip(params.start_at)
        .take(max_results)
        .map(|&idx| store.issue_json(idx, &view))
        .collect();
    Ok(Reply::ok(json!({
        "expand": "schema,names",
        "startAt": params.start_at,
        "maxResults": max_results,
        "total": hits.len(),
        "issues": issues,
    })))
}
