//! Jira's field validation for `POST issue` and `PUT issue`, with its exact messages: required
//! project, issue type and summary, the summary limit (counted in UTF-16 units like Java) and
//! no newlines, the 32,767-character text limit, labels without spaces, custom fields only when
//! they are on the screen, and entity properties in the create body.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::errors::ApiError;
use super::model::{Deployment, Permission};
use super::store::{FieldEdit, Store};

/// Jira's limit for text fields (description, comment body) on Cloud and Data Center.
const TEXT_LIMIT: usize = 32_767;
const LABEL_LIMIT: usize = 255;
/// System fields a default create screen has. They are accepted and, apart from the ones the
/// fake models, ignored, as a real instance would store them without the plugin noticing.
const IGNORED_SYSTEM_FIELDS: &[&str] = &[
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

impl Store {
    /// Validates a `POST /issue` body like Jira, reporting all field errors at once.
    pub(crate) fn validate_create(
        &self,
        caller: usize,
        body: &Value,
    ) -> Result<NewIssue, ApiError> {
        let Some(body) = body.as_object() else {
            return Err(ApiError::bad_request(
                "Can not deserialize instance of the issue out of a non-object token.",
            ));
        };
        let empty = Map::new();
        let fields = match body.get("fields") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(fields)) => fields,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "Can not deserialize instance of fields out of a non-object token.",
                ));
            }
        };
        let user = &self.users[caller];
        let mut errors = BTreeMap::new();

        let project = match fields.get("project") {
            None | Some(Value::Null) => {
                errors.insert("project".into(), "Specify a valid project ID or key".into());
                None
            }
            Some(reference) => match self.project_from_ref(reference) {
                Some(p) if user.has(Permission::BrowseProjects) => {
                    if user.has(Permission::CreateIssues) {
                        Some(p)
                    } else {
                        errors.insert(
                            "project".into(),
                            "You do not have permission to create issues in this project.".into(),
                        );
                        None
                    }
                }
                _ => {
                    errors.insert("project".into(), "valid project is required".into());
                    None
                }
            },
        };

        let issue_type = match fields.get("issuetype") {
            None | Some(Value::Null) => {
                errors.insert("issuetype".into(), "Specify an issue type".into());
                None
            }
            Some(reference) => match self.issue_type_from_ref(reference) {
                Ok(t) => Some(t),
                Err(message) => {
                    errors.insert("issuetype".into(), message.into());
                    None
                }
            },
        };

        let summary = match fields.get("summary") {
            Some(Value::String(s)) => match self.summary_error(s) {
                None => Some(s.clone()),
                Some(message) => {
                    errors.insert("summary".into(), message);
                    None
                }
            },
            None | Some(Value::Null) => {
                errors.insert(
                    "summary".into(),
                    "You must specify a summary of the issue.".into(),
                );
                None
            }
            Some(_) => {
                errors.insert("summary".into(), "Operation value must be a string".into());
                None
            }
        };

        let description = match fields.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) if d.encode_utf16().count() > TEXT_LIMIT => {
                errors.insert("description".into(), text_too_long());
                None
            }
            Some(Value::String(d)) => Some(d.clone()),
            Some(_) => {
                errors.insert(
                    "description".into(),
                    "Operation value must be a string".into(),
                );
                None
            }
        };

        let labels = match fields.get("labels") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => match parse_labels(value) {
                Ok(labels) => labels,
                Err(message) => {
                    errors.insert("labels".into(), message);
                    Vec::new()
                }
            },
        };

        let mut custom = BTreeMap::new();
        for (name, value) in fields {
            let known = matches!(
                name.as_str(),
                "project" | "issuetype" | "summary" | "description" | "labels"
            ) || IGNORED_SYSTEM_FIELDS.contains(&name.as_str());
            if known {
                continue;
            }
            if self.custom_fields.contains(name) {
                custom.insert(name.clone(), value.clone());
            } else {
                errors.insert(name.clone(), cannot_set(name));
            }
        }

        let properties = match body.get("properties") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(value) => parse_properties(value)?,
        };

        let (Some(project), Some(issue_type), Some(summary), true) =
            (project, issue_type, summary, errors.is_empty())
        else {
            return Err(ApiError::fields(StatusCode::BAD_REQUEST, errors));
        };
        Ok(NewIssue {
            project,
            issue_type,
            summary,
            description,
            labels,
            custom,
            properties,
        })
    }

    fn project_from_ref(&self, reference: &Value) -> Option<usize> {
        let obj = reference.as_object()?;
        if let Some(key) = obj.get("key").and_then(Value::as_str) {
            return self
                .projects
                .iter()
                .position(|p| p.key.eq_ignore_ascii_case(key));
        }
        let id = match obj.get("id")? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        self.projects.iter().position(|p| p.id == id)
    }

    fn issue_type_from_ref(&self, reference: &Value) -> Result<usize, &'static str> {
        let Some(obj) = reference.as_object() else {
            return Err("Specify an issue type");
        };
        if let Some(name) = obj.get("name").and_then(Value::as_str) {
            return self
                .issue_types
                .iter()
                .position(|t| t.name.eq_ignore_ascii_case(name))
                .ok_or("Specify a valid issue type");
        }
        let id = match obj.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err("Specify an issue type"),
        };
        self.issue_types
            .iter()
            .position(|t| t.id == id)
            .ok_or("The issue type selected is invalid.")
    }

    pub(crate) fn summary_error(&self, summary: &str) -> Option<String> {
        if summary.trim().is_empty() {
            return Some("You must specify a summary of the issue.".into());
        }
        if summary.contains(['\n', '\r']) {
            return Some("The summary is invalid because it contains newline characters.".into());
        }
        // Jira counts Java chars (UTF-16 code units), not bytes or scalar values.
        if summary.encode_utf16().count() > self.limits.summary_max_chars {
            return Some(match self.deployment {
                Deployment::Cloud => "Summary can't exceed 255 characters.".into(),
                Deployment::DataCenter => "Summary must be less than 255 characters.".into(),
            });
        }
        None
    }

    /// Validates a `PUT issue` body into edits, with Jira's per-field errors.
    pub(crate) fn parse_edit(
        &self,
        issue: usize,
        body: &Value,
    ) -> Result<Vec<FieldEdit>, ApiError> {
        let Some(body) = body.as_object() else {
            return Err(ApiError::bad_request(
                "Can not deserialize the edit out of a non-object.",
            ));
        };
        let mut errors = BTreeMap::new();
        let mut edits = Vec::new();
        let mut labels = self.issues[issue].labels.clone();
        let mut labels_touched = false;
        if let Some(fields) = body.get("fields").and_then(Value::as_object) {
            for (name, value) in fields {
                match name.as_str() {
                    "summary" => match value {
                        Value::String(s) => match self.summary_error(s) {
                            None => edits.push(FieldEdit::Summary(s.clone())),
                            Some(message) => {
                                errors.insert(name.clone(), message);
                            }
                        },
                        _ => {
                            errors.insert(name.clone(), "Operation value must be a string".into());
                        }
                    },
                    "description" => match value {
                        Value::Null => edits.push(FieldEdit::Description(None)),
                        Value::String(d) if d.encode_utf16().count() > TEXT_LIMIT => {
                            errors.insert(name.clone(), text_too_long());
                        }
                        Value::String(d) => edits.push(FieldEdit::Description(Some(d.clone()))),
                        _ => {
                            errors.insert(name.clone(), "Operation value must be a string".into());
                        }
                    },
                    "labels" => match parse_labels(value) {
                        Ok(new) => {
                            labels = new;
                            labels_touched = true;
                        }
                        Err(message) => {
                            errors.insert(name.clone(), message);
                        }
                    },
                    other if self.custom_fields.iter().any(|c| c == other) => {
                        edits.push(FieldEdit::Custom(other.to_string(), value.clone()));
                    }
                    other if IGNORED_SYSTEM_FIELDS.contains(&other) => {}
                    other => {
                        errors.insert(other.to_string(), cannot_set(other));
                    }
                }
            }
        }
        if let Some(update) = body.get("update").and_then(Value::as_object) {
            for (name, ops) in update {
                if name != "labels" {
                    if !IGNORED_SYSTEM_FIELDS.contains(&name.as_str()) {
                        errors.insert(name.clone(), cannot_set(name));
                    }
                    continue;
                }
                let Some(ops) = ops.as_array() else {
                    errors.insert(name.clone(), "data was not an array".into());
                    continue;
                };
                for op in ops.iter().filter_map(Value::as_object) {
                    for (verb, arg) in op {
                        match (verb.as_str(), arg) {
                            ("add", Value::String(l)) => match label_error(l) {
                                None => {
                                    labels.push(l.clone());
                                    labels_touched = true;
                                }
                                Some(message) => {
                                    errors.insert(name.clone(), message);
                                }
                            },
                            ("remove", Value::String(l)) => {
                                labels.retain(|x| x != l);
                                labels_touched = true;
                            }
                            ("set", value) => match parse_labels(value) {
                                Ok(new) => {
                                    labels = new;
                                    labels_touched = true;
                                }
                                Err(message) => {
                                    errors.insert(name.clone(), message);
                                }
                            },
                            _ => {
                                errors.insert(
                                    name.clone(),
                                    format!(
                                        "Could not find valid 'id' or 'name' in label object for operation '{verb}'."
                                    ),
                                );
                            }
                        }
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::fields(StatusCode::BAD_REQUEST, errors));
        }
        if labels_touched {
            labels.sort();
            labels.dedup();
            edits.push(FieldEdit::Labels(labels));
        }
        Ok(edits)
    }
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

fn label_error(label: &str) -> Option<String> {
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
fn parse_labels(value: &Value) -> Result<Vec<String>, String> {
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

fn parse_properties(value: &Value) -> Result<BTreeMap<String, Value>, ApiError> {
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
