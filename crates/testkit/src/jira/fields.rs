//! Jira's rules for single fields, with its exact messages: the summary limit (counted in UTF-16
//! units like Java) and no newlines, the 32,767-character text limit, labels without spaces,
//! fields that are not on the screen, entity properties in a create body; and the validated
//! writes (`NewIssue`, `FieldEdit`) the store applies. Whole bodies are checked against the store
//! in `validate_create` and `validate_edit`.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::Value;

use super::errors::ApiError;
use super::model::Deployment;

/// Jira's limit for text fields (description, comment body) on Cloud and Data Center.
const TEXT_LIMIT: usize = 32_767;
const LABEL_LIMIT: usize = 255;
/// System fields a default create screen has. They are accepted and, apart from the ones the
/// fake models, ignored, as a real instance would store them without the plugin noticing.
pub(crate) const IGNORED_SYSTEM_FIELDS: &[&str] = &[
    "priority",
    "assignee",
    "reporter",
    "components",
    "duedate",
    "environment",
    "fixVersions",
    "versions",
    "timetracking",
    "security",
    "parent",
];

/// A validated create request, ready for the store to assign an id and key.
pub(crate) struct NewIssue {
    pub project: usize,
    pub issue_type: usize,
    pub summary: String,
    pub description: Option<String>,
    pub labels: Vec<String>,
    pub custom: BTreeMap<String, Value>,
    pub properties: BTreeMap<String, Value>,
}

/// A field edit requested through `PUT issue` or a test action.
pub(crate) enum FieldEdit {
    Summary(String),
    Description(Option<String>),
    Labels(Vec<String>),
    Custom(String, Value),
    /// The account id of the new reporter.
    Reporter(String),
}

/// Why a summary is refused, if it is. `max_chars` is the site's limit in UTF-16 units.
pub(crate) fn summary_error(
    summary: &str,
    max_chars: usize,
    deployment: Deployment,
) -> Option<String> {
    if summary.trim().is_empty() {
        return Some("You must specify a summary of the issue.".into());
    }
    if summary.contains(['\n', '\r']) {
        return Some("The summary is invalid because it contains newline characters.".into());
    }
    // Jira counts Java chars (UTF-16 code units), not bytes or scalar values.
    if summary.encode_utf16().count() > max_chars {
        return Some(match deployment {
            Deployment::Cloud => "Summary can't exceed 255 characters.".into(),
            Deployment::DataCenter => "Summary must be less than 255 characters.".into(),
        });
    }
    None
}

/// A description as given (`null` clears it), or why it is refused.
pub(crate) fn parse_description(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(d) if d.encode_utf16().count() > TEXT_LIMIT => Err(text_too_long()),
        Value::String(d) => Ok(Some(d.clone())),
        _ => Err(not_a_string()),
    }
}

pub(crate) fn not_a_string() -> String {
    "Operation value must be a string".into()
}

/// Why a comment body is refused, if it is.
pub(crate) fn comment_error(body: &str) -> Option<ApiError> {
    if body.trim().is_empty() {
        return Some(ApiError::field(
            StatusCode::BAD_REQUEST,
            "comment",
            "Comment body can not be empty!",
        ));
    }
    if body.encode_utf16().count() > TEXT_LIMIT {
        return Some(ApiError::field(
            StatusCode::BAD_REQUEST,
            "comment",
            text_too_long(),
        ));
    }
    None
}

fn text_too_long() -> String {
    "The entered text is too long. It exceeds the allowed limit of 32,767 characters.".into()
}

pub(crate) fn cannot_set(field: &str) -> String {
    format!("Field '{field}' cannot be set. It is not on the appropriate screen, or unknown.")
}

pub(crate) fn label_error(label: &str) -> Option<String> {
    if label.contains(char::is_whitespace) {
        return Some(format!(
            "The label '{label}' contains spaces which is invalid."
        ));
    }
    if label.is_empty() {
        return Some("The label '' is invalid.".into());
    }
    if label.encode_utf16().count() > LABEL_LIMIT {
        return Some(format!(
            "The label '{label}' exceeds the maximum length for a single label of 255 characters."
        ));
    }
    None
}

/// Labels are a set: Jira drops duplicates and returns them sorted.
pub(crate) fn parse_labels(value: &Value) -> Result<Vec<String>, String> {
    let Some(items) = value.as_array() else {
        return Err("data was not an array".into());
    };
    let mut labels = Vec::with_capacity(items.len());
    for item in items {
        let Some(label) = item.as_str() else {
            return Err("Operation value must be a string".into());
        };
        if let Some(message) = label_error(label) {
            return Err(message);
        }
        labels.push(label.to_string());
    }
    labels.sort();
    labels.dedup();
    Ok(labels)
}

pub(crate) fn parse_properties(value: &Value) -> Result<BTreeMap<String, Value>, ApiError> {
    let Some(items) = value.as_array() else {
        return Err(ApiError::bad_request(
            "Can not deserialize instance of java.util.ArrayList out of a non-array token.",
        ));
    };
    let mut properties = BTreeMap::new();
    for item in items {
        let key = item.get("key").and_then(Value::as_str).unwrap_or_default();
        if key.is_empty() {
            return Err(ApiError::bad_request("The property key cannot be empty."));
        }
        if key.encode_utf16().count() > 255 {
            return Err(ApiError::bad_request(
                "The property key cannot be longer than 255 characters.",
            ));
        }
        let value = item.get("value").cloned().unwrap_or(Value::Null);
        properties.insert(key.to_string(), value);
    }
    Ok(properties)
}
