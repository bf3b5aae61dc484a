//! The configuration file: the Go plugin's TOML keys, defaults and validation, and the example
//! printed by `teleport-jira configure`.
//!
//! Loading happens in two stages: [`raw`] mirrors the file as written, then [`Config::from_raw`]
//! validates it into types that cannot hold an invalid value. Unknown keys become warnings; every
//! invalid value becomes a [`ConfigError`] that names the key and what is expected.

mod http;
mod jira;
mod jsm_oncall;
mod people;
mod raw;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::secret::Secret;
pub use jsm_oncall::JsmOnCallConfig;
pub use people::{AuditConfig, DEFAULT_ACCOUNT_ID_TRAIT, PeopleConfig, RequesterAs, ReviewersAs};
use raw::{RawAccessMonitoringRules, RawConfig};

/// The commented example config printed by `teleport-jira configure`.
pub const EXAMPLE_CONFIG: &str = include_str!("example.toml");

/// Default path of the config file, as for the Go plugin.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/teleport-jira.toml";

const DEFAULT_TELEPORT_ADDR: &str = "localhost:3025";
const DEFAULT_REFRESH_IDENTITY_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_ISSUE_TYPE: &str = "Task";
const DEFAULT_LISTEN_ADDR: &str = ":8081";
const DEFAULT_SCAN_INTERVAL: Duration = Duration::from_secs(300);
/// Without a webhook the scan is the only way decisions in Jira are seen, so it runs more often.
const DEFAULT_POLLING_SCAN_INTERVAL: Duration = Duration::from_secs(30);
/// Steps at once. A step in flight waits on the network, not on a core, and a burst's creations
/// share Jira calls, so more steps than Jira calls keep those calls full: 1,000 new requests at
/// 100 ms from Jira took 0.56 s with 256 steps, 0.42-0.43 s with 384 and 0.32-0.36 s with 512;
/// with 10,000 pending, peak memory was 27.5-27.9 MiB with 384 and 30.0-30.4 MiB with 512 (bench,
/// two cores).
const DEFAULT_WORKERS: usize = 384;
/// A healthy Jira takes a burst at once (over HTTP/2 the calls share one connection); push-back,
/// climbing latency and Jira's `X-RateLimit-Remaining` keep the calls in flight under this.
const DEFAULT_JIRA_CONCURRENCY: usize = 256;
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(15);
/// How long another process's lease on a request is respected after it was taken.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// How often the webhook's certificate and key are compared with what is being served, when
/// `[http] tls_files_check_interval` is not set.
pub const DEFAULT_TLS_FILES_CHECK_INTERVAL: Duration = Duration::from_secs(60);
/// Jira's issue payloads are a few KiB; the Go plugin accepted 25 MiB.
const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The Go plugin reads at most this many bytes of a token file.
const MAX_SECRET_FILE_BYTES: u64 = 2000;

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub teleport: TeleportConfig,
    pub jira: JiraConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub reconcile: ReconcileConfig,
    pub metrics: MetricsConfig,
    pub access_monitoring_rules: RulesConfig,
    pub jsm_oncall: JsmOnCallConfig,
    pub audit: AuditConfig,
}

/// Routing new requests by Teleport's Access Monitoring Rules (keys of this plugin only; off by
/// default, which is the Go plugin's one project and issue type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesConfig {
    pub enabled: bool,
    /// Rules whose `spec.notification.name` equals this apply.
    pub notification_name: String,
}

/// The `notification.name` rules for this plugin carry unless configured otherwise.
pub const DEFAULT_NOTIFICATION_NAME: &str = "jira";

/// Where health and metrics are served besides the webhook listener (a key of this plugin only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// A plain-HTTP listener without authentication for `/status`, `/readyz` and `/metrics`.
    pub listen_addr: Option<SocketAddr>,
}

/// How reconciliation is paced (keys of this plugin only; the defaults suit most sites).
#[derive(Clone, Debug, PartialEq)]
pub struct ReconcileConfig {
    /// How often every pending request is checked against its issue, webhook or not.
    pub scan_interval: Duration,
    /// Requests reconciled in parallel.
    pub workers: usize,
    /// How long SIGTERM waits for steps in flight before the process exits anyway.
    pub shutdown_grace_period: Duration,
    /// How long a replica's claim on a request's Jira work is respected by the others; a replica
    /// that dies holding one delays that request by at most this long.
    pub lease_ttl: Duration,
}

#[derive(Clone, Debug)]
pub struct TeleportConfig {
    /// `host:port` of an Auth Service or of a Proxy with TLS routing.
    pub addr: String,
    pub credentials: CredentialSource,
}

/// Where the plugin's Teleport credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// An identity file (`tctl auth sign --format=file`, tbot). With `refresh`, it is re-read every
    /// `interval` and a renewed file replaces the credentials in use.
    IdentityFile {
        path: PathBuf,
        refresh: Option<Duration>,
    },
    /// The `--format=tls` trio.
    KeyPair {
        key: PathBuf,
        cert: PathBuf,
        root_cas: PathBuf,
    },
}

#[derive(Clone, Debug)]
pub struct JiraConfig {
    /// Base URL without a trailing slash, always `https://`.
    pub url: String,
    pub username: String,
    pub api_token: Secret,
    pub project: String,
    pub issue_type: String,
    /// The file `api_token` was read from, when it was given as a path.
    pub api_token_file: Option<PathBuf>,
    /// Jira calls in flight at once.
    pub max_concurrent_calls: usize,
    /// Jira calls started per second; `None` means no limit beyond Jira's own 429s.
    pub max_calls_per_second: Option<f64>,
    /// Basic (Cloud e-mail + API token, Server login + password) or Bearer (Data Center PAT).
    pub auth: JiraAuthMethod,
    /// Labels added to every new issue, besides the request label.
    pub labels: Vec<String>,
    /// Static fields added to every new issue (`priority = { name = "High" }`, custom fields).
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub statuses: StatusNames,
    /// Who may approve or deny from Jira (account ids or e-mails); empty means anyone who can
    /// move the card, except the requester.
    pub approvers: Vec<String>,
    /// Jira groups whose members may approve or deny from Jira, besides `approvers`.
    pub approver_groups: Vec<String>,
    /// Jira users (account id or e-mail) to Teleport users, for the self-approval guard and
    /// for review mode.
    pub users: std::collections::BTreeMap<String, String>,
    pub resolve_with: ResolveWith,
    /// `[jira.people]`: who goes on the ticket, and reminders.
    pub people: PeopleConfig,
}

/// How a decision made in Jira reaches Teleport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolveWith {
    /// `SetAccessRequestState`, as the Go plugin does (thresholds are bypassed).
    State,
    /// `SubmitAccessReview` on behalf of the mapped Teleport user, so thresholds apply.
    Review,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JiraAuthMethod {
    Basic,
    Bearer,
}

/// The Jira status names the plugin moves issues to and reads decisions from; compared
/// case-insensitively. The defaults are the Go plugin's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusNames {
    pub pending: String,
    pub approved: String,
    pub denied: String,
    pub expired: String,
    pub promoted: String,
}

impl Default for StatusNames {
    fn default() -> Self {
        Self {
            pending: "Pending".into(),
            approved: "Approved".into(),
            denied: "Denied".into(),
            expired: "Expired".into(),
            promoted: "Promoted".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub listen_addr: SocketAddr,
    pub public_addr: Option<String>,
    /// Certificate and key of the webhook receiver; `None` only with `--insecure-no-tls`.
    pub tls: Option<HttpTlsFiles>,
    pub basic_auth: Option<BasicAuth>,
    pub verify_client_cert: bool,
    /// No inbound webhook at all: decisions in Jira are found by the periodic scan alone.
    pub disable_webhook: bool,
    /// Jira's webhook secret: deliveries must carry `X-Hub-Signature: sha256=<HMAC of the body>`.
    pub webhook_secret: Option<Secret>,
    /// The file `webhook_secret` was read from, when it was given as a path.
    pub webhook_secret_file: Option<PathBuf>,
    /// The file `basic_auth.password` was read from (`basic_auth.password_file`), re-read on
    /// SIGHUP and with the other secret files.
    pub basic_auth_password_file: Option<PathBuf>,
    /// Larger webhook bodies are refused with 413.
    pub max_body_bytes: usize,
    /// How often the certificate and key are compared with what is served; `None` only on SIGHUP.
    pub tls_files_check_interval: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug)]
pub struct BasicAuth {
    pub user: String,
    pub password: Secret,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub output: LogOutput,
    pub severity: Severity,
    pub format: LogFormat,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogOutput {
    Stderr,
    Stdout,
    File(PathBuf),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What the loader noticed but tolerated, reported once logging is up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigWarning {
    UnknownKey(String),
    DeprecatedAuthServer,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownKey(key) => write!(f, "unknown configuration key `{key}` is ignored; check its spelling and section"),
            Self::DeprecatedAuthServer => {
                f.write_str("Configuration setting `auth_server` is deprecated, consider to change it to `addr`")
            }
        }
    }
}

/// A configuration problem. Each message is one line naming the key and what is expected.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads, parses and validates the file at `path`. `insecure_no_tls` is the `--insecure-no-tls`
    /// flag: the webhook receiver then serves plain HTTP and needs no certificate.
    pub fn load(
        path: &Path,
        insecure_no_tls: bool,
    ) -> Result<(Self, Vec<ConfigWarning>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, insecure_no_tls).map_err(|err| match err {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates config text; see [`Config::load`].
    pub fn parse(
        text: &str,
        insecure_no_tls: bool,
    ) -> Result<(Self, Vec<ConfigWarning>), ConfigError> {
        let mut warnings = Vec::new();
        let raw = parse_raw(text, &mut warnings)?;
        let config = Self::from_raw(raw, insecure_no_tls, &mut warnings)?;
        Ok((config, warnings))
    }

    fn from_raw(
        raw: RawConfig,
        insecure_no_tls: bool,
        warnings: &mut Vec<ConfigWarning>,
    ) -> Result<Self, ConfigError> {
        let teleport = teleport_section(raw.teleport, warnings)?;
        let jira = jira::jira_section(raw.jira)?;
        let http = http::http_section(raw.http, insecure_no_tls)?;
        let log = log_section(raw.log)?;
        let reconcile = reconcile_section(raw.reconcile, http.disable_webhook)?;
        let metrics = MetricsConfig {
            listen_addr: non_empty(raw.metrics.listen_addr)
                .map(|addr| parse_addr("metrics.listen_addr", &addr))
                .transpose()?,
        };
        if metrics.listen_addr.is_some() && metrics.listen_addr == Some(http.listen_addr) {
            return Err(invalid(
                "metrics.listen_addr must differ from http.listen_addr (the webhook listener already serves /metrics)",
            ));
        }
        let access_monitoring_rules = rules_section(raw.access_monitoring_rules)?;
        let jsm_oncall = jsm_oncall::jsm_oncall_section(raw.jsm_oncall, &jira)?;
        let audit = people::audit_section(raw.audit);
        Ok(Self {
            teleport,
            jira,
            http,
            log,
            reconcile,
            metrics,
            access_monitoring_rules,
            jsm_oncall,
            audit,
        })
    }
}

fn rules_section(raw: RawAccessMonitoringRules) -> Result<RulesConfig, ConfigError> {
    let notification_name = match raw.notification_name {
        None => DEFAULT_NOTIFICATION_NAME.to_owned(),
        Some(name) if name.trim().is_empty() => {
            return Err(invalid(
                "access_monitoring_rules.notification_name must not be empty; set it to the notification.name your rules carry (default \"jira\")",
            ));
        }
        Some(name) => name,
    };
    Ok(RulesConfig {
        enabled: raw.enabled,
        notification_name,
    })
}

fn parse_raw(text: &str, warnings: &mut Vec<ConfigWarning>) -> Result<RawConfig, ConfigError> {
    let syntax = |err: toml::de::Error| ConfigError::Syntax {
        path: PathBuf::new(),
        message: describe_toml_error(text, &err),
    };
    let deserializer = toml::Deserializer::parse(text).map_err(syntax)?;
    serde_ignored::deserialize(deserializer, |path| {
        warnings.push(ConfigWarning::UnknownKey(path.to_string()));
    })
    .map_err(syntax)
}

/// toml's own `Display` spans several lines with a source excerpt; the CLI wants one line.
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', " ");
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, str::len) + 1;
            match key_at(text, span.start) {
                Some(key) => format!("line {line}, column {column}: {key}: {message}"),
                None => format!("line {line}, column {column}: {message}"),
            }
        }
        None => message,
    }
}

/// The dotted key (`section.key`) whose value sits at byte `offset`, so a wrong value is named by
/// its key and not only by its place; `None` where the line is not `key = value`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let section = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    Some(match section {
        Some(section) => format!("{section}.{key}"),
        None => key.to_owned(),
    })
}

fn teleport_section(
    raw: raw::RawTeleport,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<TeleportConfig, ConfigError> {
    let addr = match (non_empty(raw.addr), non_empty(raw.auth_server)) {
        (Some(addr), _) => addr,
        (None, Some(auth_server)) => {
            warnings.push(ConfigWarning::DeprecatedAuthServer);
            auth_server
        }
        (None, None) => DEFAULT_TELEPORT_ADDR.to_owned(),
    };

    let identity = non_empty(raw.identity);
    let trio = [
        ("client_crt", non_empty(raw.client_crt)),
        ("client_key", non_empty(raw.client_key)),
        ("root_cas", non_empty(raw.root_cas)),
    ];
    let provided: Vec<&str> = trio
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| *k)
        .collect();
    if !provided.is_empty() && provided.len() < trio.len() {
        let missing: Vec<&str> = trio
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
        return Err(invalid(format!(
            "configuration setting(s) {} are provided but setting(s) {} are missing",
            backticked(&provided),
            backticked(&missing)
        )));
    }
    if identity.is_some() && !provided.is_empty() {
        return Err(invalid(
            "configuration setting `identity` is mutually exclusive with all the `client_crt`, `client_key` and `root_cas` settings",
        ));
    }
    if raw.refresh_identity && identity.is_none() {
        return Err(invalid(
            "`refresh_identity` requires that `identity` be set",
        ));
    }
    let interval = raw.refresh_identity_interval.filter(|d| !d.is_zero());
    let credentials = match (identity, trio) {
        (Some(path), _) => CredentialSource::IdentityFile {
            path: PathBuf::from(path),
            refresh: raw
                .refresh_identity
                .then(|| interval.unwrap_or(DEFAULT_REFRESH_IDENTITY_INTERVAL)),
        },
        (None, [(_, Some(cert)), (_, Some(key)), (_, Some(root_cas))]) => {
            CredentialSource::KeyPair {
                key: PathBuf::from(key),
                cert: PathBuf::from(cert),
                root_cas: PathBuf::from(root_cas),
            }
        }
        _ => {
            return Err(invalid(
                "no credentials configured: set teleport.identity to an identity file, or teleport.client_key, client_crt and root_cas",
            ));
        }
    };
    Ok(TeleportConfig { addr, credentials })
}

fn reconcile_section(
    raw: raw::RawReconcile,
    polling_only: bool,
) -> Result<ReconcileConfig, ConfigError> {
    let default_scan = if polling_only {
        DEFAULT_POLLING_SCAN_INTERVAL
    } else {
        DEFAULT_SCAN_INTERVAL
    };
    let scan_interval = raw.scan_interval.unwrap_or(default_scan);
    if scan_interval < Duration::from_secs(1) {
        return Err(invalid("reconcile.scan_interval must be at least \"1s\""));
    }
    let workers = raw.workers.unwrap_or(DEFAULT_WORKERS);
    if workers == 0 {
        return Err(invalid("reconcile.workers must be at least 1"));
    }
    Ok(ReconcileConfig {
        scan_interval,
        workers,
        shutdown_grace_period: raw.shutdown_grace_period.unwrap_or(DEFAULT_SHUTDOWN_GRACE),
        lease_ttl: match raw.lease_ttl {
            Some(ttl) if ttl < Duration::from_secs(1) => {
                return Err(invalid("reconcile.lease_ttl must be at least \"1s\""));
            }
            Some(ttl) => ttl,
            None => DEFAULT_LEASE_TTL,
        },
    })
}

/// Reads a secret given as a file path, as the Go plugin does (at most 2000 bytes, trimmed).
pub fn read_secret_file(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_SECRET_FILE_BYTES).read_to_string(&mut text))
        .map_err(|err| {
            invalid(format!(
                "Error reading password from {}: {err}",
                path.display()
            ))
        })?;
    Ok(text.trim().to_owned())
}

fn parse_listen_addr(text: &str) -> Result<SocketAddr, ConfigError> {
    parse_addr("http.listen_addr", text)
}

/// Accepts Go's `[host]:port` forms: `:8081`, `0.0.0.0:8081`, `[::1]:8081`, `localhost:8081`.
fn parse_addr(key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    let bad = || {
        invalid(format!(
            "{key} {text:?} is not a valid [host]:port address, e.g. \":8081\" or \"127.0.0.1:8081\""
        ))
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "" => std::net::Ipv4Addr::UNSPECIFIED.into(),
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        other => other.parse().map_err(|_| bad())?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// Basic-auth credentials written into `public_addr` (`https://user:pass@host`), as the Go plugin allows.
fn public_addr_credentials(addr: &str, insecure: bool) -> Result<Option<BasicAuth>, ConfigError> {
    let with_scheme = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("{}://{addr}", if insecure { "http" } else { "https" })
    };
    let (scheme, rest) = with_scheme.split_once("://").unwrap_or(("https", addr));
    if scheme != "http" && scheme != "https" {
        return Err(invalid(format!(
            "wrong scheme in public_addr parameter: {scheme:?}"
        )));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let Some((userinfo, _host)) = authority.rsplit_once('@') else {
        return Ok(None);
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    if user.is_empty() {
        return Ok(None);
    }
    Ok(Some(BasicAuth {
        user: user.to_owned(),
        password: Secret::new(password),
    }))
}

fn log_section(raw: raw::RawLog) -> Result<LogConfig, ConfigError> {
    let output = match non_empty(raw.output).as_deref() {
        None | Some("stderr" | "error" | "2") => LogOutput::Stderr,
        Some("stdout" | "out" | "1") => LogOutput::Stdout,
        Some(path) => LogOutput::File(PathBuf::from(path)),
    };
    let severity = match non_empty(raw.severity)
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("info") => Severity::Info,
        Some("err" | "error") => Severity::Error,
        Some("debug") => Severity::Debug,
        Some("warn" | "warning") => Severity::Warn,
        Some("trace") => Severity::Trace,
        Some(other) => {
            return Err(invalid(format!(
                "unsupported logger severity: {other:?} (log.severity must be info, warn, error, debug or trace)"
            )));
        }
    };
    let format = match non_empty(raw.format)
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(invalid(format!(
                "unsupported log.format {other:?}: use \"text\" or \"json\""
            )));
        }
    };
    Ok(LogConfig {
        output,
        severity,
        format,
    })
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

#[cfg(test)]
mod tests;
