//! Jira groups: the groups of a user (`GET user/groups?accountId=` on Cloud; on Data Center
//! `GET user?username=&expand=groups`) and a group's members (`GET group/member?groupname=`,
//! 404 for a group that does not exist). A group exists while a user belongs to it.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::errors::{ApiError, Reply};
use super::model::{Deployment, JiraUser};
use super::req::Req;
use super::store::Store;

/// `GET user/groups?accountId=`: the user's groups, as Cloud lists them.
pub(crate) fn user_groups(store: &Store, req: &Req<'_>) -> Result<Reply, ApiError> {
    if store.deployment == Deployment::DataCenter {
        return Err(ApiError::message(
            StatusCode::NOT_FOUND,
            "null for uri: user/groups",
        ));
    }
    let user = req
        .param("accountId")
        .and_then(|id| store.user(id))
        .ok_or_else(no_such_user)?;
    let groups: Vec<Value> = user
        .groups
        .iter()
        .map(|name| group_json(store, name))
        .collect();
    Ok(Reply::ok(Value::Array(groups)))
}

/// Data Center's `expand=groups` on `GET user`: `{size, items: [{name, self}]}`.
pub(crate) fn expanded_groups(store: &Store, user: &JiraUser) -> Value {
    let items: Vec<Value> = user
        .groups
        .iter()
        .map(|name| group_json(store, name))
        .collect();
    json!({ "size": items.len(), "items": items })
}

/// `GET group/member?groupname=`: the members, one page.
pub(crate) fn group_members(store: &Store, req: &Req<'_>) -> Result<Reply, ApiError> {
    let name = req.param("groupname").unwrap_or_default();
    let members: Vec<Value> = store
        .users
        .iter()
        .filter(|user| user.groups.iter().any(|group| group == name))
        .map(|user| store.user_json_of(user))
        .collect();
    if members.is_empty() {
        return Err(ApiError::message(
            StatusCode::NOT_FOUND,
            format!("Group with name '{name}' does not exist."),
        ));
    }
    let total = members.len();
    Ok(Reply::ok(json!({
        "self": format!("{}/rest/api/2/group/member?groupname={name}", store.base_url),
        "maxResults": 50,
        "startAt": 0,
        "total": total,
        "isLast": true,
        "values": members,
    })))
}

fn group_json(store: &Store, name: &str) -> Value {
    json!({
        "name": name,
        "groupId": format!("group-{name}"),
        "self": format!("{}/rest/api/2/group?groupname={name}", store.base_url),
    })
}

fn no_such_user() -> ApiError {
    ApiError::message(
        StatusCode::NOT_FOUND,
        "Specified user does not exist or you do not have required permissions",
    )
}
