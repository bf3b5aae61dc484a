//! An issue's watchers: `GET issue/{id}/watchers` and `POST issue/{id}/watchers`, whose body is a
//! JSON string naming the user (the account id on Cloud, the username on Data Center; none: the
//! caller). Adding someone else needs "Manage watchers"; with watching turned off on the site
//! every call is refused, as Jira refuses it.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::errors::{ApiError, Reply};
use super::model::{Deployment, Permission};
use super::req::Req;
use super::store::Store;

/// What Jira says when the site's "Allow users to watch issues" option is off.
pub(crate) const WATCHING_DISABLED: &str = "Watching is disabled.";

pub(crate) fn list_watchers(store: &Store, caller: usize, id: &str) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(caller, id)?;
    if !store.watching_enabled {
        return Err(ApiError::message(StatusCode::NOT_FOUND, WATCHING_DISABLED));
    }
    let watchers: Vec<Value> = store.issues[idx]
        .watchers
        .iter()
        .map(|account_id| store.user_json(account_id))
        .collect();
    Ok(Reply::ok(json!({
        "isWatching": store.issues[idx].watchers.contains(&store.users[caller].account_id),
        "watchCount": watchers.len(),
        "watchers": watchers,
    })))
}

pub(crate) fn add_watcher(
    store: &mut Store,
    caller: usize,
    id: &str,
    req: &Req<'_>,
) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(caller, id)?;
    if !store.watching_enabled {
        return Err(ApiError::message(StatusCode::NOT_FOUND, WATCHING_DISABLED));
    }
    let named = match req.json()? {
        Value::Null => None,
        Value::String(name) => Some(name),
        _ => {
            return Err(ApiError::bad_request(
                "The request body must be a JSON string naming the user.",
            ));
        }
    };
    let account_id = match named {
        None => store.users[caller].account_id.clone(),
        Some(name) => watcher_named(store, &name)?,
    };
    if account_id != store.users[caller].account_id
        && !store.users[caller].has(Permission::ManageWatchers)
    {
        return Err(ApiError::message(
            StatusCode::FORBIDDEN,
            "You do not have the permission to manage the watcher list.",
        ));
    }
    let watchers = &mut store.issues[idx].watchers;
    if !watchers.contains(&account_id) {
        watchers.push(account_id);
    }
    Ok(Reply::NoContent)
}

/// The account id of the active user `name` names on this deployment.
fn watcher_named(store: &Store, name: &str) -> Result<String, ApiError> {
    let user = match store.deployment {
        Deployment::Cloud => store.user(name),
        Deployment::DataCenter => store.users.iter().find(|u| u.username() == name),
    };
    match user {
        Some(user) if user.active => Ok(user.account_id.clone()),
        _ => Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("The user \"{name}\" does not exist or cannot watch this issue."),
        )),
    }
}
