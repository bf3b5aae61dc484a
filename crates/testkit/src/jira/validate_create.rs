//! Validation of a `POST issue` body against the site: required project, issue type and summary,
//! the caller's permission to create, custom fields only when they are on the screen. Jira
//! reports every field error of a body at once, so each field is checked even after one failed.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::errors::ApiError;
use super::fields::{
    IGNORED_SYSTEM_FIELDS, NewIssue, cannot_set, not_a_string, parse_description, parse_labels,
    parse_properties, summary_error,
};
use super::model::Permission;
use super::store::Store;

/// Field name → Jira's message, as in the `errors` object of the answer.
type FieldErrors = BTreeMap<String, String>;

/// The field's value, or `None` with its message recorded.
fn checked<T>(errors: &mut FieldErrors, field: &str, result: Result<T, String>) -> Option<T> {
    result
        .map_err(|message| errors.insert(field.into(), message))
        .ok()
}

/// The fields the create body sets by name; a missing value is `None`, like an explicit `null`.
fn given<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
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
        let mut errors = FieldErrors::new();
        let project = checked(&mut errors, "project", self.create_project(caller, fields));
        let issue_type = checked(&mut errors, "issuetype", self.create_issue_type(fields));
        let summary = checked(&mut errors, "summary", self.create_summary(fields));
        let description = given(fields, "description").map_or(Ok(None), parse_description);
        let description = checked(&mut errors, "description", description);
        let labels = given(fields, "labels").map_or(Ok(Vec::new()), parse_labels);
        let labels = checked(&mut errors, "labels", labels);
        let custom = self.create_custom_fields(fields, &mut errors);
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
            description: description.flatten(),
            labels: labels.unwrap_or_default(),
            custom,
            properties,
        })
    }

    fn create_project(&self, caller: usize, fields: &Map<String, Value>) -> Result<usize, String> {
        let Some(reference) = given(fields, "project") else {
            return Err("Specify a valid project ID or key".into());
        };
        let user = &self.users[caller];
        match self.project_from_ref(reference) {
            Some(p) if user.has(Permission::BrowseProjects) => {
                if user.has(Permission::CreateIssues) {
                    Ok(p)
                } else {
                    Err("You do not have permission to create issues in this project.".into())
                }
            }
            _ => Err("valid project is required".into()),
        }
    }

    fn create_issue_type(&self, fields: &Map<String, Value>) -> Result<usize, String> {
        match given(fields, "issuetype") {
            None => Err("Specify an issue type".into()),
            Some(reference) => self.issue_type_from_ref(reference).map_err(String::from),
        }
    }

    fn create_summary(&self, fields: &Map<String, Value>) -> Result<String, String> {
        match given(fields, "summary") {
            Some(Value::String(s)) => {
                match summary_error(s, self.limits.summary_max_chars, self.deployment) {
                    None => Ok(s.clone()),
                    Some(message) => Err(message),
                }
            }
            None => Err("You must specify a summary of the issue.".into()),
            Some(_) => Err(not_a_string()),
        }
    }

    /// The custom fields on the screen; any other unknown field is an error.
    fn create_custom_fields(
        &self,
        fields: &Map<String, Value>,
        errors: &mut FieldErrors,
    ) -> BTreeMap<String, Value> {
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
        custom
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
}
