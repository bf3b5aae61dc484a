//! Validation of a `PUT issue` body into field edits: `fields` sets values, `update` runs label
//! operations (`add`, `remove`, `set`) in order. Every field error of the body is reported at once.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::errors::ApiError;
use super::fields::{
    FieldEdit, IGNORED_SYSTEM_FIELDS, cannot_set, label_error, not_a_string, parse_description,
    parse_labels, summary_error,
};
use super::model::{Deployment, Permission};
use super::store::Store;

/// The edits found so far, the errors, and the labels as the operations leave them.
struct EditDraft {
    errors: BTreeMap<String, String>,
    edits: Vec<FieldEdit>,
    labels: Vec<String>,
    labels_touched: bool,
}

impl EditDraft {
    fn fail(&mut self, field: &str, message: String) {
        self.errors.insert(field.to_string(), message);
    }

    fn set_labels(&mut self, field: &str, value: &Value) {
        match parse_labels(value) {
            Ok(new) => {
                self.labels = new;
                self.labels_touched = true;
            }
            Err(message) => self.fail(field, message),
        }
    }

    /// One `{"verb": argument}` of `update.labels`.
    fn label_operation(&mut self, field: &str, verb: &str, argument: &Value) {
        match (verb, argument) {
            ("add", Value::String(label)) => match label_error(label) {
                None => {
                    self.labels.push(label.clone());
                    self.labels_touched = true;
                }
                Some(message) => self.fail(field, message),
            },
            ("remove", Value::String(label)) => {
                self.labels.retain(|x| x != label);
                self.labels_touched = true;
            }
            ("set", value) => self.set_labels(field, value),
            _ => self.fail(
                field,
                format!(
                    "Could not find valid 'id' or 'name' in label object for operation '{verb}'."
                ),
            ),
        }
    }

    /// The edits, or every error at once. Labels are a set: sorted, without duplicates.
    fn finish(mut self) -> Result<Vec<FieldEdit>, ApiError> {
        if !self.errors.is_empty() {
            return Err(ApiError::fields(StatusCode::BAD_REQUEST, self.errors));
        }
        if self.labels_touched {
            self.labels.sort();
            self.labels.dedup();
            self.edits.push(FieldEdit::Labels(self.labels));
        }
        Ok(self.edits)
    }
}

impl Store {
    /// Validates a `PUT issue` body into edits, with Jira's per-field errors.
    pub(crate) fn parse_edit(
        &self,
        issue: usize,
        caller: usize,
        body: &Value,
    ) -> Result<Vec<FieldEdit>, ApiError> {
        let Some(body) = body.as_object() else {
            return Err(ApiError::bad_request(
                "Can not deserialize the edit out of a non-object.",
            ));
        };
        let mut draft = EditDraft {
            errors: BTreeMap::new(),
            edits: Vec::new(),
            labels: self.issues[issue].labels.clone(),
            labels_touched: false,
        };
        if let Some(fields) = body.get("fields").and_then(Value::as_object) {
            for (name, value) in fields {
                self.edit_field(&mut draft, caller, name, value);
            }
        }
        if let Some(update) = body.get("update").and_then(Value::as_object) {
            update_operations(&mut draft, update);
        }
        draft.finish()
    }

    /// One entry of `fields`.
    fn edit_field(&self, draft: &mut EditDraft, caller: usize, name: &str, value: &Value) {
        match name {
            "reporter" if !self.users[caller].has(Permission::ModifyReporter) => {
                draft.fail(name, cannot_set(name));
            }
            "reporter" => match self.reporter_of(value) {
                Some(account_id) => draft.edits.push(FieldEdit::Reporter(account_id)),
                None => draft.fail(
                    name,
                    "Specified user does not exist or you do not have required permissions".into(),
                ),
            },
            "summary" => match value {
                Value::String(s) => {
                    match summary_error(s, self.limits.summary_max_chars, self.deployment) {
                        None => draft.edits.push(FieldEdit::Summary(s.clone())),
                        Some(message) => draft.fail(name, message),
                    }
                }
                _ => draft.fail(name, not_a_string()),
            },
            "description" => match parse_description(value) {
                Ok(description) => draft.edits.push(FieldEdit::Description(description)),
                Err(message) => draft.fail(name, message),
            },
            "labels" => draft.set_labels(name, value),
            other if self.custom_fields.iter().any(|c| c == other) => {
                draft
                    .edits
                    .push(FieldEdit::Custom(other.to_string(), value.clone()));
            }
            other if IGNORED_SYSTEM_FIELDS.contains(&other) => {}
            other => draft.fail(other, cannot_set(other)),
        }
    }
}

impl Store {
    /// The account id of the user a `reporter` value names: `{"accountId"}` on Cloud,
    /// `{"name"}` on Data Center.
    fn reporter_of(&self, value: &Value) -> Option<String> {
        let user = match self.deployment {
            Deployment::Cloud => self.user(value.get("accountId")?.as_str()?),
            Deployment::DataCenter => {
                let name = value.get("name")?.as_str()?;
                self.users.iter().find(|u| u.username() == name)
            }
        }?;
        user.active.then(|| user.account_id.clone())
    }
}

/// `update`: label operations; other fields cannot be updated this way unless ignored.
fn update_operations(draft: &mut EditDraft, update: &Map<String, Value>) {
    for (name, operations) in update {
        if name != "labels" {
            if !IGNORED_SYSTEM_FIELDS.contains(&name.as_str()) {
                draft.fail(name, cannot_set(name));
            }
            continue;
        }
        let Some(operations) = operations.as_array() else {
            draft.fail(name, "data was not an array".into());
            continue;
        };
        for operation in operations.iter().filter_map(Value::as_object) {
            for (verb, argument) in operation {
                draft.label_operation(name, verb, argument);
            }
        }
    }
}
