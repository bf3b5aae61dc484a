//! User search: `GET user/search?query=` (every user the caller may see) and
//! `GET user/viewissue/search?query=&projectKey=` (only those who can browse the project).
//! `query` matches a case-insensitive prefix of the display name or the visible e-mail; Data
//! Center names it `username` (refusing a search without it) and matches usernames too. A caller without "Browse users
//! and groups" gets `[]`, never an error, as Jira answers; hidden e-mails are neither matched
//! nor shown.

use serde_json::Value;

use super::errors::{ApiError, Reply};
use super::model::{Deployment, JiraUser, Permission};
use super::req::Req;
use super::store::Store;

/// `GET user/search`.
pub(crate) fn user_search(store: &Store, caller: usize, req: &Req<'_>) -> Result<Reply, ApiError> {
    data_center_needs_username(store, req)?;
    Ok(Reply::ok(matching(store, caller, req, |_| true)))
}

/// Data Center names the search `username` and refuses a search without it.
fn data_center_needs_username(store: &Store, req: &Req<'_>) -> Result<(), ApiError> {
    if store.deployment == Deployment::DataCenter && req.param("username").is_none() {
        return Err(ApiError::bad_request(
            "The username query parameter was not provided",
        ));
    }
    Ok(())
}

/// `GET user/viewissue/search`: `projectKey` (or `issueKey`) names what the users must browse.
pub(crate) fn viewissue_search(
    store: &Store,
    caller: usize,
    req: &Req<'_>,
) -> Result<Reply, ApiError> {
    if let Some(key) = req.param("projectKey")
        && store.project_index(key).is_none()
    {
        return Err(ApiError::project_not_found(key));
    }
    if let Some(issue) = req.param("issueKey") {
        store.visible_issue(caller, issue)?;
    }
    data_center_needs_username(store, req)?;
    Ok(Reply::ok(matching(store, caller, req, |user| {
        user.has(Permission::BrowseProjects)
    })))
}

fn matching(store: &Store, caller: usize, req: &Req<'_>, may: impl Fn(&JiraUser) -> bool) -> Value {
    if !store.users[caller].has(Permission::BrowseUsers) {
        return Value::Array(Vec::new());
    }
    let query = req
        .param("query")
        .or(req.param("username"))
        .unwrap_or_default()
        .to_lowercase();
    if query.is_empty() {
        return Value::Array(Vec::new());
    }
    let found = store
        .users
        .iter()
        .filter(|user| user.active && may(user))
        .filter(|user| matches_prefix(store, user, &query))
        .map(|user| store.user_json_of(user))
        .collect();
    Value::Array(found)
}

fn matches_prefix(store: &Store, user: &JiraUser, query: &str) -> bool {
    let starts = |text: &str| text.to_lowercase().starts_with(query);
    starts(&user.display_name)
        || user.visible_email().is_some_and(starts)
        || (store.deployment == Deployment::DataCenter && starts(&user.username()))
}
