//! The REST v2 resources other than search: server info, the caller, users, projects,
//! `mypermissions`, and issues with their comments, transitions and entity properties. Each
//! function runs with the store locked and returns a reply or Jira's error; webhook events go
//! into `events`, which `api` dispatches once the lock is released.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::adf;
use super::errors::{ApiError, Reply};
use super::fields::NewIssue;
use super::model::{Deployment, Permission};
use super::render::{FieldSelection, IssueView, PropertySelection, jira_time};
use super::req::{Req, non_negative};
use super::store::{Store, now};
use super::webhook::OutgoingEvent;

// ----- identity and configuration ------------------------------------------------------------

pub(crate) fn server_info(store: &Store) -> Reply {
    let (version, numbers, deployment, build) = match store.deployment {
        Deployment::Cloud => ("1001.0.0-SNAPSHOT", json!([1001, 0, 0]), "Cloud", 100_287),
        Deployment::DataCenter => ("10.3.1", json!([10, 3, 1]), "DataCenter", 10_030_001),
    };
    Reply::ok(json!({
        "baseUrl": store.base_url,
        "displayUrl": store.base_url,
        "version": version,
        "versionNumbers": numbers,
        "deploymentType": deployment,
        "buildNumber": build,
        "buildDate": "2026-11-24T00:00:00.000+0000",
        "serverTime": jira_time(now()),
        "scmInfo": "0000000000000000000000000000000000000000",
        "serverTitle": "Jira",
        "defaultLocale": {"locale": "en_US"},
        "serverTimeZone": "Etc/UTC",
    }))
}

pub(crate) fn myself(store: &Store, user: usize) -> Result<Reply, ApiError> {
    let mut body = store.user_json_of(&store.users[user]);
    if let Some(obj) = body.as_object_mut() {
        obj.insert("locale".into(), json!("en_US"));
        obj.insert("groups".into(), json!({"size": 1, "items": []}));
        obj.insert("applicationRoles".into(), json!({"size": 1, "items": []}));
        obj.insert("expand".into(), json!("groups,applicationRoles"));
    }
    Ok(Reply::ok(body))
}

pub(crate) fn user(store: &Store, req: &Req<'_>) -> Result<Reply, ApiError> {
    let found = match store.deployment {
        Deployment::Cloud => req.param("accountId").and_then(|id| store.user(id)),
        Deployment::DataCenter => req
            .param("username")
            .and_then(|name| store.users.iter().find(|u| u.username() == name))
            .or_else(|| {
                req.param("key")
                    .and_then(|key| store.users.iter().find(|u| store.dc_user_key(u) == key))
            }),
    };
    match found {
        Some(user) => {
            let mut json = store.user_json_of(user);
            if req.list("expand").contains(&"groups") {
                json["groups"] = super::groups::expanded_groups(store, user);
            }
            Ok(Reply::ok(json))
        }
        None => Err(ApiError::message(
            StatusCode::NOT_FOUND,
            "Specified user does not exist or you do not have required permissions",
        )),
    }
}

pub(crate) fn project(store: &Store, user: usize, key: &str) -> Result<Reply, ApiError> {
    match store.project_index(key) {
        Some(p) if store.users[user].has(Permission::BrowseProjects) => {
            Ok(Reply::ok(store.project_json(p, true)))
        }
        _ => Err(ApiError::project_not_found(key)),
    }
}

/// `GET project/{key}/statuses`: every issue type with the statuses of its workflow (one workflow
/// for all types here).
pub(crate) fn project_statuses(store: &Store, user: usize, key: &str) -> Result<Reply, ApiError> {
    match store.project_index(key) {
        Some(_) if store.users[user].has(Permission::BrowseProjects) => {
            let statuses: Vec<serde_json::Value> = (0..store.statuses.len())
                .map(|s| store.status_json(s))
                .collect();
            let types: Vec<serde_json::Value> = (0..store.issue_types.len())
                .map(|t| {
                    let mut issue_type = store.issue_type_json(t);
                    if let Some(obj) = issue_type.as_object_mut() {
                        obj.insert(
                            "statuses".into(),
                            serde_json::Value::Array(statuses.clone()),
                        );
                    }
                    issue_type
                })
                .collect();
            Ok(Reply::ok(serde_json::Value::Array(types)))
        }
        _ => Err(ApiError::project_not_found(key)),
    }
}

pub(crate) fn my_permissions(store: &Store, user: usize, req: &Req<'_>) -> Result<Reply, ApiError> {
    if let Some(key) = req.param("projectKey").or(req.param("projectId"))
        && store.project_index(key).is_none()
    {
        return Err(ApiError::project_not_found(key));
    }
    if let Some(issue) = req.param("issueKey").or(req.param("issueId")) {
        store.visible_issue(user, issue)?;
    }
    let requested: Vec<&str> = req
        .list("permissions")
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    let permissions: Vec<Permission> = if requested.is_empty() {
        // Cloud made the parameter mandatory in 2019; Data Center still lists everything.
        if store.deployment == Deployment::Cloud {
            return Err(ApiError::bad_request(
                "The 'permissions' query parameter is required.",
            ));
        }
        Permission::ALL.to_vec()
    } else {
        let mut out = Vec::new();
        for key in requested {
            match Permission::from_key(key.trim()) {
                Some(p) => out.push(p),
                None => {
                    return Err(ApiError::bad_request(format!(
                        "Permission '{}' does not exist.",
                        key.trim()
                    )));
                }
            }
        }
        out
    };
    let u = &store.users[user];
    let entries: Map<String, Value> = permissions
        .into_iter()
        .map(|p| {
            (
                p.key().to_string(),
                json!({
                    "id": p.id(),
                    "key": p.key(),
                    "name": p.display_name(),
                    "type": if p == Permission::BrowseUsers { "GLOBAL" } else { "PROJECT" },
                    "description": p.description(),
                    "havePermission": u.has(p),
                }),
            )
        })
        .collect();
    Ok(Reply::ok(json!({"permissions": entries})))
}

// ----- issues --------------------------------------------------------------------------------

pub(crate) fn create_issue(
    store: &mut Store,
    user: usize,
    req: &Req<'_>,
    events: &mut Vec<OutgoingEvent>,
) -> Result<Reply, ApiError> {
    let body = req.json()?;
    let new = store.validate_create(user, &body)?;
    Ok(Reply::created(create_validated(store, user, new, events)))
}

/// Creates a validated issue, queues its `issue_created` event, and returns what Jira answers
/// for it (id, key, self).
fn create_validated(
    store: &mut Store,
    user: usize,
    new: NewIssue,
    events: &mut Vec<OutgoingEvent>,
) -> Value {
    let idx = store.create_issue(user, new);
    let actor = store.users[user].account_id.clone();
    events.push(store.created_event(idx, &actor));
    let issue = &store.issues[idx];
    json!({
        "id": issue.id.to_string(),
        "key": issue.key,
        "self": format!("{}/rest/api/2/issue/{}", store.base_url, issue.id),
    })
}

/// The most issues one `POST issue/bulk` creates.
pub(crate) const BULK_CREATE_MAX: usize = 50;

/// `POST issue/bulk`: each element of `issueUpdates` is validated and created as `POST issue`
/// would, one after the other; not transactional. 201 with the issues created (in the order of
/// their elements) and an error per failed element, which `failedElementNumber` points at; 400
/// with the same body when none was created.
pub(crate) fn create_issues(
    store: &mut Store,
    user: usize,
    req: &Req<'_>,
    events: &mut Vec<OutgoingEvent>,
) -> Result<Reply, ApiError> {
    let body = req.json()?;
    let Some(updates) = body.get("issueUpdates").and_then(Value::as_array) else {
        return Err(ApiError::bad_request("Field 'issueUpdates' is required."));
    };
    if updates.is_empty() || updates.len() > BULK_CREATE_MAX {
        return Err(ApiError::bad_request(format!(
            "Bulk create takes 1 to {BULK_CREATE_MAX} issues; the request had {}.",
            updates.len()
        )));
    }
    let mut issues = Vec::new();
    let mut errors = Vec::new();
    for (index, update) in updates.iter().enumerate() {
        match store.validate_create(user, update) {
            Ok(new) => issues.push(create_validated(store, user, new, events)),
            Err(err) => errors.push(json!({
                "status": err.status().as_u16(),
                "elementErrors": err.collection(),
                "failedElementNumber": index,
            })),
        }
    }
    let status = if issues.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::CREATED
    };
    Ok(Reply::Json(
        status,
        json!({"issues": issues, "errors": errors}),
    ))
}

/// `GET issue/{id}`; on v3 (`adf`), rich text comes as documents.
pub(crate) fn get_issue(
    store: &Store,
    user: usize,
    id: &str,
    req: &Req<'_>,
    adf: bool,
) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    let expand = req.list("expand");
    let view = IssueView {
        fields: FieldSelection::parse(req.list("fields"), FieldSelection::all()),
        changelog: expand.contains(&"changelog"),
        transitions: expand.contains(&"transitions"),
        properties: req
            .param("properties")
            .map(|_| PropertySelection::parse(req.list("properties"))),
        changelog_cap: store.limits.changelog_cap,
        may_transition: store.users[user].has(Permission::TransitionIssues),
    };
    let mut issue = store.issue_json(idx, &view);
    if adf {
        adf::issue_to_v3(&mut issue);
    }
    Ok(Reply::ok(issue))
}

/// `DELETE issue/{id}`: later reads answer 404 and searches stop finding it. The fake has no
/// subtasks, so `deleteSubtasks` changes nothing.
pub(crate) fn delete_issue(store: &mut Store, user: usize, id: &str) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    if !store.users[user].has(Permission::DeleteIssues) {
        return Err(ApiError::message(
            StatusCode::FORBIDDEN,
            "You do not have permission to delete issues in this project.",
        ));
    }
    store.issues[idx].deleted = true;
    Ok(Reply::NoContent)
}

pub(crate) fn edit_issue(
    store: &mut Store,
    user: usize,
    id: &str,
    req: &Req<'_>,
    events: &mut Vec<OutgoingEvent>,
) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    let body = req.json()?;
    if !store.users[user].has(Permission::EditIssues) {
        return Err(ApiError::bad_request(
            "You do not have permission to edit issues in this project.",
        ));
    }
    let edits = store.parse_edit(idx, user, &body)?;
    let actor = store.users[user].account_id.clone();
    if let Some(history) = store.edit_fields(idx, &actor, edits) {
        events.push(store.updated_event(idx, &actor, "issue_updated", Some(&history), None));
    }
    Ok(Reply::NoContent)
}

// ----- comments ------------------------------------------------------------------------------

pub(crate) fn list_comments(
    store: &Store,
    user: usize,
    id: &str,
    req: &Req<'_>,
) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    let start_at = non_negative(req, "startAt")?.unwrap_or(0);
    let cap = store.limits.comment_page_size;
    let max_results = non_negative(req, "maxResults")?.map_or(cap, |m| m.min(cap));
    let newest_first = match req.param("orderBy") {
        None | Some("") | Some("created") | Some("+created") => false,
        Some("-created") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "The orderBy value '{other}' is not supported. Use 'created', '+created' or '-created'."
            )));
        }
    };
    let comments = &store.issues[idx].comments;
    let ordered: Vec<_> = if newest_first {
        comments.iter().rev().collect()
    } else {
        comments.iter().collect()
    };
    let page: Vec<Value> = ordered
        .into_iter()
        .skip(start_at)
        .take(max_results)
        .map(|c| store.comment_json(idx, c))
        .collect();
    Ok(Reply::ok(json!({
        "startAt": start_at,
        "maxResults": max_results,
        "total": comments.len(),
        "comments": page,
    })))
}

pub(crate) fn get_comment(
    store: &Store,
    user: usize,
    id: &str,
    comment_id: &str,
) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    store.issues[idx]
        .comments
        .iter()
        .find(|c| c.id.to_string() == comment_id)
        .map(|c| Reply::ok(store.comment_json(idx, c)))
        .ok_or_else(|| {
            ApiError::message(
                StatusCode::NOT_FOUND,
                format!("Can not find a comment for the id: {comment_id}."),
            )
        })
}

pub(crate) fn add_comment(
    store: &mut Store,
    user: usize,
    id: &str,
    req: &Req<'_>,
    events: &mut Vec<OutgoingEvent>,
) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    let body = req.json()?;
    if !store.users[user].has(Permission::AddComments) {
        return Err(ApiError::message(
            StatusCode::FORBIDDEN,
            "You do not have the permission to comment on this issue.",
        ));
    }
    let text = match body.get("body") {
        Some(Value::String(text)) => text.clone(),
        None | Some(Value::Null) => String::new(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Can not deserialize instance of java.lang.String out of a non-string token.",
            ));
        }
    };
    let actor = store.users[user].account_id.clone();
    let comment = store.add_comment(idx, &actor, &text)?;
    events.push(store.updated_event(idx, &actor, "issue_commented", None, Some(comment)));
    let rendered = store.comment_json(idx, &store.issues[idx].comments[comment]);
    Ok(Reply::created(rendered))
}

// ----- transitions ---------------------------------------------------------------------------

pub(crate) fn list_transitions(
    store: &Store,
    user: usize,
    id: &str,
    req: &Req<'_>,
) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    let mut transitions =
        store.transitions_json(idx, store.users[user].has(Permission::TransitionIssues));
    if let (Some(wanted), Some(list)) = (req.param("transitionId"), transitions.as_array_mut()) {
        list.retain(|t| t.get("id").and_then(Value::as_str) == Some(wanted));
    }
    Ok(Reply::ok(
        json!({"expand": "transitions", "transitions": transitions}),
    ))
}

pub(crate) fn do_transition(
    store: &mut Store,
    user: usize,
    id: &str,
    req: &Req<'_>,
    events: &mut Vec<OutgoingEvent>,
) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    let body = req.json()?;
    // Only `transition.id` matters; `to`, `fields`, `update` and the rest are ignored.
    let transition_id = match body.get("transition").and_then(|t| t.get("id")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(ApiError::bad_request("Missing 'transition' identifier")),
    };
    let current = store.issues[idx].status;
    let target = store
        .transitions_from(current)
        .find(|&to| store.statuses[to].transition_id == transition_id)
        .filter(|_| store.users[user].has(Permission::TransitionIssues));
    let Some(to) = target else {
        return Err(ApiError::bad_request(format!(
            "Transition id '{transition_id}' is not valid for this issue."
        )));
    };
    let actor = store.users[user].account_id.clone();
    let change = store.change_status(idx, to, &actor, false);
    events.push(store.updated_event(idx, &actor, "issue_generic", change.history.as_ref(), None));
    Ok(Reply::NoContent)
}

// ----- entity properties ---------------------------------------------------------------------

pub(crate) fn list_properties(store: &Store, user: usize, id: &str) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    let issue = &store.issues[idx];
    let keys: Vec<Value> = issue
        .properties
        .keys()
        .map(|k| {
            json!({
                "self": format!("{}/rest/api/2/issue/{}/properties/{k}", store.base_url, issue.id),
                "key": k,
            })
        })
        .collect();
    Ok(Reply::ok(json!({"keys": keys})))
}

fn property_not_found(key: &str) -> ApiError {
    ApiError::message(
        StatusCode::NOT_FOUND,
        format!("The property with key '{key}' does not exist."),
    )
}

pub(crate) fn get_property(
    store: &Store,
    user: usize,
    id: &str,
    key: &str,
) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    match store.issues[idx].properties.get(key) {
        Some(value) => Ok(Reply::ok(json!({"key": key, "value": value}))),
        None => Err(property_not_found(key)),
    }
}

fn may_edit_properties(store: &Store, user: usize) -> Result<(), ApiError> {
    if store.users[user].has(Permission::EditIssues) {
        Ok(())
    } else {
        Err(ApiError::message(
            StatusCode::FORBIDDEN,
            "You do not have permission to edit the properties of this issue.",
        ))
    }
}

pub(crate) fn put_property(
    store: &mut Store,
    user: usize,
    id: &str,
    key: &str,
    req: &Req<'_>,
) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    let value = req.json()?;
    may_edit_properties(store, user)?;
    if key.encode_utf16().count() > 255 {
        return Err(ApiError::bad_request(
            "The property key cannot be longer than 255 characters.",
        ));
    }
    if req.body.len() > 32_768 {
        return Err(ApiError::bad_request(
            "The property value cannot be longer than 32768 characters.",
        ));
    }
    let created = store.issues[idx]
        .properties
        .insert(key.to_string(), value)
        .is_none();
    // Entity properties are invisible: no changelog, no `updated` bump, no webhook.
    Ok(if created {
        Reply::created(json!({}))
    } else {
        Reply::ok(json!({}))
    })
}

pub(crate) fn delete_property(
    store: &mut Store,
    user: usize,
    id: &str,
    key: &str,
) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    may_edit_properties(store, user)?;
    match store.issues[idx].properties.remove(key) {
        Some(_) => Ok(Reply::NoContent),
        None => Err(property_not_found(key)),
    }
}
