//! `[jira]`: where Jira is, how the plugin signs in, and what its issues look like.

use std::path::{Path, PathBuf};

use super::raw::{self, RawJira};
use super::{
    ConfigError, DEFAULT_ISSUE_TYPE, DEFAULT_JIRA_CONCURRENCY, JiraAuthMethod, JiraConfig,
    ResolveWith, StatusNames, invalid, non_empty, read_secret_file,
};
use crate::secret::Secret;

pub(super) fn jira_section(raw: RawJira) -> Result<JiraConfig, ConfigError> {
    // As in the Go plugin, a token file is read before the values are validated.
    let api_token_file = non_empty(raw.api_token.clone())
        .filter(|v| v.starts_with('/'))
        .map(PathBuf::from);
    let api_token = match non_empty(raw.api_token) {
        Some(value) if value.starts_with('/') => Some(read_secret_file(Path::new(&value))?),
        other => other,
    };
    let url = non_empty(raw.url).ok_or_else(|| invalid("missing required value jira.url"))?;
    if !url.starts_with("https://") {
        return Err(invalid(format!(
            "parameter jira.url must start with \"https://\" (got {url:?})"
        )));
    }
    let auth = auth_method(raw.auth)?;
    // A personal access token identifies its user by itself.
    let username = match non_empty(raw.username) {
        Some(username) => username,
        None if auth == JiraAuthMethod::Bearer => String::new(),
        None => return Err(invalid("missing required value jira.username")),
    };
    check_labels(&raw.labels)?;
    let fields = static_fields(raw.fields)?;
    let resolve_with = resolve_with(raw.resolve_with)?;
    let statuses = status_names(raw.statuses);
    let people = super::people::people_section(raw.people)?;
    let api_token = api_token.ok_or_else(|| invalid("missing required value jira.api_token"))?;
    let (max_concurrent_calls, max_calls_per_second) =
        pace(raw.max_concurrent_calls, raw.max_calls_per_second)?;
    Ok(JiraConfig {
        url: url.trim_end_matches('/').to_owned(),
        username,
        api_token: Secret::new(api_token),
        project: raw.project.unwrap_or_default(),
        issue_type: non_empty(raw.issue_type).unwrap_or_else(|| DEFAULT_ISSUE_TYPE.to_owned()),
        api_token_file,
        max_concurrent_calls,
        max_calls_per_second,
        auth,
        labels: raw.labels,
        fields,
        statuses,
        approvers: raw
            .approvers
            .into_iter()
            .filter(|a| !a.trim().is_empty())
            .collect(),
        approver_groups: raw
            .approver_groups
            .into_iter()
            .filter(|g| !g.trim().is_empty())
            .collect(),
        users: raw.users,
        resolve_with,
        people,
    })
}

fn auth_method(raw: Option<String>) -> Result<JiraAuthMethod, ConfigError> {
    match non_empty(raw).map(|a| a.to_ascii_lowercase()).as_deref() {
        None | Some("basic") => Ok(JiraAuthMethod::Basic),
        Some("bearer" | "pat") => Ok(JiraAuthMethod::Bearer),
        Some(other) => Err(invalid(format!(
            "jira.auth must be \"basic\" (e-mail or login with an API token or password) or \"bearer\" (a Data Center personal access token), not {other:?}"
        ))),
    }
}

fn check_labels(labels: &[String]) -> Result<(), ConfigError> {
    for label in labels {
        if label.is_empty() || label.contains(char::is_whitespace) {
            return Err(invalid(format!(
                "jira.labels: {label:?} is not a valid Jira label (labels cannot be empty or contain spaces)"
            )));
        }
    }
    Ok(())
}

fn static_fields(
    fields: std::collections::BTreeMap<String, toml::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, ConfigError> {
    fields
        .into_iter()
        .map(|(key, value)| {
            serde_json::to_value(value)
                .map(|json| (key.clone(), json))
                .map_err(|err| invalid(format!("jira.fields.{key}: {err}")))
        })
        .collect()
}

fn resolve_with(raw: Option<String>) -> Result<ResolveWith, ConfigError> {
    match non_empty(raw).map(|r| r.to_ascii_lowercase()).as_deref() {
        None | Some("state") => Ok(ResolveWith::State),
        Some("review") => Ok(ResolveWith::Review),
        Some(other) => Err(invalid(format!(
            "jira.resolve_with must be \"state\" or \"review\", not {other:?}"
        ))),
    }
}

fn status_names(raw: raw::RawStatuses) -> StatusNames {
    let defaults = StatusNames::default();
    let status = |value: Option<String>, default: String| non_empty(value).unwrap_or(default);
    StatusNames {
        pending: status(raw.pending, defaults.pending),
        approved: status(raw.approved, defaults.approved),
        denied: status(raw.denied, defaults.denied),
        expired: status(raw.expired, defaults.expired),
        promoted: status(raw.promoted, defaults.promoted),
    }
}

/// The ceiling on calls in flight and the optional rate limit toward Jira.
fn pace(
    concurrent: Option<usize>,
    per_second: Option<f64>,
) -> Result<(usize, Option<f64>), ConfigError> {
    let max_concurrent_calls = concurrent.unwrap_or(DEFAULT_JIRA_CONCURRENCY);
    if max_concurrent_calls == 0 {
        return Err(invalid("jira.max_concurrent_calls must be at least 1"));
    }
    let max_calls_per_second = match per_second {
        None => None,
        Some(rate) if rate.is_finite() && rate > 0.0 => Some(rate),
        Some(rate) => {
            return Err(invalid(format!(
                "jira.max_calls_per_second must be a positive number (got {rate})"
            )));
        }
    };
    Ok((max_concurrent_calls, max_calls_per_second))
}
