//! The TOML file as written: a serde mirror of the Go plugin's keys, before any validation.
//!
//! Every value is optional here; `config::Config::from_raw` decides what is required. Keys this
//! mirror does not know are collected by the loader and reported as warnings, never dropped silently.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawConfig {
    pub teleport: RawTeleport,
    pub jira: RawJira,
    pub http: RawHttp,
    pub log: RawLog,
    pub reconcile: RawReconcile,
    pub metrics: RawMetrics,
    pub access_monitoring_rules: RawAccessMonitoringRules,
    pub jsm_oncall: RawJsmOnCall,
    pub audit: RawAudit,
}

/// Approval of requesters on call in Jira Service Management (keys of this plugin only).
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawJsmOnCall {
    pub enabled: bool,
    pub api_url: Option<String>,
    pub cloud_id: Option<String>,
    pub email: Option<String>,
    pub api_token: Option<String>,
    pub schedules_annotation: Option<String>,
    pub default_schedules: Vec<String>,
    pub account_id_trait: Option<String>,
    pub email_lookup: bool,
    pub integration: Option<String>,
}

/// A record of each request that outlives it (keys of this plugin only).
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAudit {
    pub trail_in_ticket: bool,
    pub jsonl_path: Option<String>,
}

/// `[jira.people]`: who goes on the ticket (keys of this plugin only).
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawPeople {
    pub account_id_trait: Option<String>,
    pub email_lookup: bool,
    pub requester: Option<String>,
    pub suggested_reviewers: Option<String>,
    pub mention_on_resolution: bool,
    #[serde(deserialize_with = "go_duration")]
    pub remind_after: Option<Duration>,
}

/// Routing by Teleport's Access Monitoring Rules (keys of this plugin only).
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAccessMonitoringRules {
    pub enabled: bool,
    pub notification_name: Option<String>,
}

/// A listener of its own for `/status`, `/readyz` and `/metrics` (a key of this plugin only).
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawMetrics {
    pub listen_addr: Option<String>,
}

/// Keys this plugin adds; none is needed, each only tunes.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawReconcile {
    #[serde(deserialize_with = "go_duration")]
    pub scan_interval: Option<Duration>,
    pub workers: Option<usize>,
    #[serde(deserialize_with = "go_duration")]
    pub shutdown_grace_period: Option<Duration>,
    #[serde(deserialize_with = "go_duration")]
    pub lease_ttl: Option<Duration>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawTeleport {
    pub addr: Option<String>,
    pub auth_server: Option<String>,
    pub identity: Option<String>,
    pub refresh_identity: bool,
    #[serde(deserialize_with = "go_duration")]
    pub refresh_identity_interval: Option<Duration>,
    pub client_key: Option<String>,
    pub client_crt: Option<String>,
    pub root_cas: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawJira {
    pub url: Option<String>,
    pub username: Option<String>,
    pub api_token: Option<String>,
    pub project: Option<String>,
    pub issue_type: Option<String>,
    pub max_concurrent_calls: Option<usize>,
    pub max_calls_per_second: Option<f64>,
    pub auth: Option<String>,
    pub labels: Vec<String>,
    pub fields: std::collections::BTreeMap<String, toml::Value>,
    pub statuses: RawStatuses,
    pub people: RawPeople,
    pub approvers: Vec<String>,
    pub approver_groups: Vec<String>,
    pub users: std::collections::BTreeMap<String, String>,
    pub resolve_with: Option<String>,
}

/// The project's own names for the statuses the plugin uses.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawStatuses {
    pub pending: Option<String>,
    pub approved: Option<String>,
    pub denied: Option<String>,
    pub expired: Option<String>,
    pub promoted: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawHttp {
    pub listen_addr: Option<String>,
    pub public_addr: Option<String>,
    pub https_key_file: Option<String>,
    pub https_cert_file: Option<String>,
    pub basic_auth: RawBasicAuth,
    pub tls: RawHttpTls,
    pub disable_webhook: bool,
    pub webhook_secret: Option<String>,
    pub max_body_bytes: Option<usize>,
    #[serde(deserialize_with = "go_duration")]
    pub tls_files_check_interval: Option<Duration>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawBasicAuth {
    pub user: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawHttpTls {
    pub verify_client_cert: bool,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawLog {
    pub output: Option<String>,
    pub severity: Option<String>,
    pub format: Option<String>,
}

/// Accepts what the Go plugin's TOML decoder accepts for a `time.Duration`: a Go duration string
/// (`"1m"`, `"1m30s"`, `"1.5h"`) or an integer number of nanoseconds.
fn go_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Nanos(u64),
        Text(String),
    }
    match Value::deserialize(deserializer)? {
        Value::Nanos(nanos) => Ok(Some(Duration::from_nanos(nanos))),
        Value::Text(text) => parse_go_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Parses a Go-style duration such as `1m`, `90s`, `1h30m` or `1.5h`.
pub(crate) fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(trimmed).map_err(|err| {
        format!("invalid duration {text:?} ({err}); use a value such as \"1m\" or \"30s\"")
    })
}
