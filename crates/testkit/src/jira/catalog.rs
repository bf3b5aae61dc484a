//! The site's lists that client libraries read first: `GET field` (system and custom fields with
//! their JQL clause names and schemas), `GET status` and `GET issuetype`.

use serde_json::{Value, json};

use super::errors::{ApiError, Reply};
use super::store::Store;

/// System fields the fake models: id, display name, schema type, whether JQL can search it.
const SYSTEM_FIELDS: &[(&str, &str, &str, bool)] = &[
    ("summary", "Summary", "string", true),
    ("description", "Description", "string", true),
    ("labels", "Labels", "array", true),
    ("status", "Status", "status", true),
    ("issuetype", "Issue Type", "issuetype", true),
    ("project", "Project", "project", true),
    ("created", "Created", "datetime", true),
    ("updated", "Updated", "datetime", true),
    ("reporter", "Reporter", "user", true),
    ("creator", "Creator", "user", true),
    ("comment", "Comment", "comments-page", true),
    ("issuekey", "Key", "string", false),
];

fn system_field_json(id: &str, name: &str, kind: &str, searchable: bool) -> Value {
    let mut schema = json!({"type": kind, "system": id});
    if kind == "array"
        && let Some(obj) = schema.as_object_mut()
    {
        obj.insert("items".into(), json!("string"));
    }
    json!({
        "id": id,
        "key": id,
        "name": name,
        "custom": false,
        "orderable": !matches!(id, "status" | "created" | "updated" | "creator" | "issuekey"),
        "navigable": true,
        "searchable": searchable,
        "clauseNames": clause_names(id),
        "schema": schema,
    })
}

fn clause_names(id: &str) -> Vec<&str> {
    match id {
        "issuetype" => vec!["issuetype", "type"],
        "issuekey" => vec!["id", "issue", "issuekey", "key"],
        "created" => vec!["created", "createdDate"],
        "updated" => vec!["updated", "updatedDate"],
        other => vec![other],
    }
}

/// Custom fields carry their number in `cf[…]` clause names, as in Jira.
fn custom_field_json(id: &str) -> Value {
    let number = id.strip_prefix("customfield_").unwrap_or(id);
    json!({
        "id": id,
        "key": id,
        "name": format!("Custom field {number}"),
        "untranslatedName": format!("Custom field {number}"),
        "custom": true,
        "orderable": true,
        "navigable": true,
        "searchable": true,
        "clauseNames": [format!("cf[{number}]")],
        "schema": {
            "type": "any",
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
            "customId": number.parse::<u64>().ok(),
        },
    })
}

/// `GET field`: every field, system ones first.
pub(crate) fn fields(store: &Store) -> Result<Reply, ApiError> {
    let system = SYSTEM_FIELDS
        .iter()
        .map(|(id, name, kind, searchable)| system_field_json(id, name, kind, *searchable));
    let custom = store.custom_fields.iter().map(|id| custom_field_json(id));
    Ok(Reply::ok(Value::Array(system.chain(custom).collect())))
}

/// `GET status`: every status of the workflow.
pub(crate) fn statuses(store: &Store) -> Result<Reply, ApiError> {
    let all = (0..store.statuses.len()).map(|s| store.status_json(s));
    Ok(Reply::ok(Value::Array(all.collect())))
}

/// `GET issuetype`: every issue type.
pub(crate) fn issue_types(store: &Store) -> Result<Reply, ApiError> {
    let all = (0..store.issue_types.len()).map(|t| store.issue_type_json(t));
    Ok(Reply::ok(Value::Array(all.collect())))
}
