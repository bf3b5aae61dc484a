//! The demo's board page: the fake Jira project's cards by status and the fake cluster's access
//! requests, with forms to ask for access (as alice@example.com) and to move a card (as the
//! reviewer, with an optional reason). Plain HTML forms, no script, so any browser works.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use teleport_proto::types::{AccessRequestV3, RequestState};
use testkit::jira::{FakeJira, IssueSnapshot};
use testkit::teleport::{CreateRequest, FakeTeleport};

use super::{DemoError, failed};

/// The requester the board asks for access as.
pub const REQUESTER: &str = "alice@example.com";
/// The board's columns, in workflow order.
const COLUMNS: [&str; 4] = ["Pending", "Approved", "Denied", "Expired"];

#[derive(Clone)]
pub struct Board {
    pub teleport: Arc<FakeTeleport>,
    pub jira: Arc<FakeJira>,
    /// The Jira account that moves cards and writes reasons.
    pub reviewer: String,
}

/// Serves the board on a free loopback port until the process ends; returns its URL.
pub async fn serve(board: Board) -> Result<String, DemoError> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(failed("starting the board page"))?;
    let addr = listener
        .local_addr()
        .map_err(failed("starting the board page"))?;
    let app = Router::new()
        .route("/", get(overview))
        .route("/requests", post(ask_for_access))
        .route("/browse/{key}", get(issue_page))
        .route("/browse/{key}/move", post(move_card))
        .with_state(board);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(error = %err, "the demo board stopped");
        }
    });
    Ok(format!("http://{addr}"))
}

async fn overview(State(board): State<Board>) -> Html<String> {
    let mut page = header("teleport-jira demo board");
    page.push_str(
        "<h2>Ask for access</h2>\
         <form method=\"post\" action=\"/requests\">\
         <label>Roles <input name=\"roles\" value=\"editor\"></label> \
         <label>Reason <input name=\"reason\" value=\"on call\"></label> \
         <button type=\"submit\">Request as alice@example.com</button></form>",
    );
    page.push_str("<h2>Jira project PROJ</h2><div class=\"board\">");
    let issues = board.jira.issues();
    for column in COLUMNS {
        let _ = write!(page, "<section><h3>{column}</h3>");
        for issue in issues.iter().filter(|issue| issue.status == column) {
            let _ = write!(
                page,
                "<article><a href=\"/browse/{key}\">{key}</a> {summary}</article>",
                key = escape(&issue.key),
                summary = escape(&issue.summary)
            );
        }
        page.push_str("</section>");
    }
    page.push_str("</div><h2>Teleport access requests</h2><table><tr><th>Request</th><th>User</th><th>Roles</th><th>State</th></tr>");
    for request in board.teleport.access_requests() {
        let _ = write!(page, "{}", request_row(&request));
    }
    page.push_str("</table><p><a href=\"/\">Refresh</a></p></body></html>");
    Html(page)
}

fn request_row(request: &AccessRequestV3) -> String {
    let id = request.metadata.as_ref().map_or("", |m| m.name.as_str());
    let spec = request.spec.clone().unwrap_or_default();
    let state = RequestState::try_from(spec.state)
        .map(|state| state.as_str_name())
        .unwrap_or("UNKNOWN");
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"state\">{}</td></tr>",
        escape(id),
        escape(&spec.user),
        escape(&spec.roles.join(", ")),
        state
    )
}

async fn issue_page(State(board): State<Board>, Path(key): Path<String>) -> Response {
    let Some(issue) = board.jira.issue(&key) else {
        return (
            StatusCode::NOT_FOUND,
            Html(format!("no issue {}", escape(&key))),
        )
            .into_response();
    };
    Html(issue_html(&issue)).into_response()
}

fn issue_html(issue: &IssueSnapshot) -> String {
    let mut page = header(&format!("{} {}", issue.key, issue.summary));
    let _ = write!(
        page,
        "<p><a href=\"/\">Board</a></p><h2>{key}: {summary}</h2><p>Status: <strong class=\"status\">{status}</strong></p><pre>{description}</pre>",
        key = escape(&issue.key),
        summary = escape(&issue.summary),
        status = escape(&issue.status),
        description = escape(issue.description.as_deref().unwrap_or_default()),
    );
    if issue.status == "Pending" {
        let _ = write!(
            page,
            "<form method=\"post\" action=\"/browse/{key}/move\">\
             <label>Reason <input name=\"reason\" value=\"looks fine\"></label> \
             <button name=\"to\" value=\"Approved\">Approve</button> \
             <button name=\"to\" value=\"Denied\">Deny</button></form>",
            key = escape(&issue.key)
        );
    }
    page.push_str("<h3>Comments</h3>");
    for comment in issue.comment_bodies() {
        let _ = write!(page, "<pre class=\"comment\">{}</pre>", escape(comment));
    }
    page.push_str("</body></html>");
    page
}

#[derive(Deserialize)]
struct AccessForm {
    roles: String,
    #[serde(default)]
    reason: String,
}

async fn ask_for_access(State(board): State<Board>, Form(form): Form<AccessForm>) -> Response {
    let roles: Vec<&str> = form
        .roles
        .split([',', ' '])
        .map(str::trim)
        .filter(|role| !role.is_empty())
        .collect();
    if roles.is_empty() {
        return (StatusCode::BAD_REQUEST, "name at least one role").into_response();
    }
    let request = CreateRequest {
        user: REQUESTER.to_owned(),
        roles: roles.into_iter().map(str::to_owned).collect(),
        reason: form.reason,
        ..CreateRequest::default()
    };
    match board.teleport.try_create_access_request(request) {
        Ok(_) => Redirect::to("/").into_response(),
        Err(status) => (StatusCode::BAD_REQUEST, status.message().to_owned()).into_response(),
    }
}

#[derive(Deserialize)]
struct MoveForm {
    to: String,
    #[serde(default)]
    reason: String,
}

async fn move_card(
    State(board): State<Board>,
    Path(key): Path<String>,
    Form(form): Form<MoveForm>,
) -> Response {
    if !COLUMNS.contains(&form.to.as_str()) {
        return (StatusCode::BAD_REQUEST, "unknown status").into_response();
    }
    let Some(issue) = board.jira.issue(&key) else {
        return (StatusCode::NOT_FOUND, "no such issue").into_response();
    };
    let reason = form.reason.trim();
    if !reason.is_empty()
        && let Err(err) =
            board
                .jira
                .comment_as(&issue.id, &board.reviewer, &format!("Reason: {reason}"))
    {
        return (StatusCode::BAD_REQUEST, err.to_string()).into_response();
    }
    match board
        .jira
        .transition_as(&issue.id, &form.to, &board.reviewer)
    {
        Ok(()) => Redirect::to(&format!("/browse/{key}")).into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    }
}

fn header(title: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\"><title>{}</title><style>\
         body{{font-family:sans-serif;margin:2em}} .board{{display:flex;gap:1em}} \
         section{{background:#f4f5f7;padding:.5em;min-width:12em}} article{{background:#fff;margin:.3em 0;padding:.3em}} \
         td,th{{padding:.2em .6em;text-align:left}} pre{{background:#f4f5f7;padding:.5em;white-space:pre-wrap}}\
         </style></head><body><h1>{}</h1>",
        escape(title),
        escape(title)
    )
}

/// Text into HTML: everything on this page comes from requests and comments anyone can write.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}
