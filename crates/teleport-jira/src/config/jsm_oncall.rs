//! `[jsm_oncall]`: approving requesters who are on call in Jira Service Management Operations.
//! Off by default; every key but `enabled` has a default that reuses `[jira]`.

use std::path::{Path, PathBuf};

use super::raw::RawJsmOnCall;
use super::{ConfigError, JiraConfig, invalid, non_empty, read_secret_file};
use crate::secret::Secret;

/// Where Atlassian serves the JSM Operations API.
pub const DEFAULT_JSM_API_URL: &str = "https://api.atlassian.com";
/// The system annotation the siblings (Opsgenie, PagerDuty) read approve schedules from.
pub const DEFAULT_SCHEDULES_ANNOTATION: &str = "teleport.dev/schedules";
/// The Teleport trait holding a user's Atlassian account id.
pub const DEFAULT_ACCOUNT_ID_TRAIT: &str = "jira_account_id";
/// The `automatic_review.integration` of Access Monitoring Rules that choose eligible requests.
pub const DEFAULT_INTEGRATION: &str = "jsm-oncall";

/// A validated `[jsm_oncall]`.
#[derive(Clone, Debug)]
pub struct JsmOnCallConfig {
    pub enabled: bool,
    /// Base URL of the JSM Operations API, without a trailing slash.
    pub api_url: String,
    /// The site's cloud id; `None`: read from `<jira.url>/_edge/tenant_info` at start.
    pub cloud_id: Option<String>,
    pub email: String,
    pub api_token: Secret,
    /// The file `api_token` was read from, when it was given as a path.
    pub api_token_file: Option<PathBuf>,
    pub schedules_annotation: String,
    /// Schedule ids used when a request carries no annotation.
    pub default_schedules: Vec<String>,
    pub account_id_trait: String,
    /// Whether a requester without the trait may be found by a Jira user search by e-mail.
    pub email_lookup: bool,
    /// Rules with `desired_state: reviewed` and this `automatic_review.integration` choose
    /// which requests are eligible.
    pub integration: String,
}

pub(super) fn jsm_oncall_section(
    raw: RawJsmOnCall,
    jira: &JiraConfig,
) -> Result<JsmOnCallConfig, ConfigError> {
    let api_url = non_empty(raw.api_url).unwrap_or_else(|| DEFAULT_JSM_API_URL.to_owned());
    if !api_url.starts_with("https://") {
        return Err(invalid(format!(
            "jsm_oncall.api_url must start with \"https://\" (got {api_url:?}); the default is {DEFAULT_JSM_API_URL:?}"
        )));
    }
    let schedules_annotation = named(
        "schedules_annotation",
        raw.schedules_annotation,
        DEFAULT_SCHEDULES_ANNOTATION,
    )?;
    let account_id_trait = named(
        "account_id_trait",
        raw.account_id_trait,
        DEFAULT_ACCOUNT_ID_TRAIT,
    )?;
    let integration = named("integration", raw.integration, DEFAULT_INTEGRATION)?;
    let default_schedules = raw
        .default_schedules
        .into_iter()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
        .collect();
    let (api_token, api_token_file) = token(raw.api_token, raw.enabled, jira)?;
    let email = non_empty(raw.email).unwrap_or_else(|| jira.username.clone());
    if raw.enabled && email.is_empty() {
        return Err(invalid(
            "jsm_oncall.email is required when [jira] has no username (JSM Operations signs in with an Atlassian account's e-mail and API token)",
        ));
    }
    Ok(JsmOnCallConfig {
        enabled: raw.enabled,
        api_url: api_url.trim_end_matches('/').to_owned(),
        cloud_id: non_empty(raw.cloud_id).map(|id| id.trim().to_owned()),
        email,
        api_token,
        api_token_file,
        schedules_annotation,
        default_schedules,
        account_id_trait,
        email_lookup: raw.email_lookup,
        integration,
    })
}

/// The token: its own (a value, or a file when it starts with `/`, read only when the feature
/// is on), else `[jira] api_token`.
fn token(
    raw: Option<String>,
    enabled: bool,
    jira: &JiraConfig,
) -> Result<(Secret, Option<PathBuf>), ConfigError> {
    match non_empty(raw) {
        Some(path) if path.starts_with('/') => {
            let text = if enabled {
                read_secret_file(Path::new(&path))
                    .map_err(|err| invalid(format!("jsm_oncall.api_token: {err}")))?
            } else {
                String::new()
            };
            Ok((Secret::new(text), Some(PathBuf::from(path))))
        }
        Some(value) => Ok((Secret::new(value), None)),
        None => Ok((jira.api_token.clone(), jira.api_token_file.clone())),
    }
}

/// A name-like key: its default when absent, an error when set blank.
fn named(key: &str, value: Option<String>, default: &str) -> Result<String, ConfigError> {
    match value {
        None => Ok(default.to_owned()),
        Some(text) if text.trim().is_empty() => Err(invalid(format!(
            "jsm_oncall.{key} must not be empty; remove it for the default {default:?}"
        ))),
        Some(text) => Ok(text.trim().to_owned()),
    }
}
