//! The world one benchmark run happens in, set up as an operator would: a FakeTeleport with the
//! plugin's identity file, a FakeJira over HTTPS whose CA the plugin trusts through
//! `SSL_CERT_FILE`, a config file with the Go plugin's keys (plus the tuning keys asked for on the
//! command line), a Jira webhook pointed at the plugin's plain-HTTP listener, and the release
//! `teleport-jira` binary as a child process whose stderr is watched for "Plugin is ready".
//! Replicas are more such processes on the same fakes, each with its own config file and
//! webhook port; Jira's webhook keeps pointing at the first.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use testkit::jira::{FakeJira, FakeJiraOptions, JiraUser, Permission, WebhookTarget};
use testkit::teleport::{
    CreateRequest, FakeTeleport, FakeTeleportOptions, IdentityOptions, UserSpec,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PLUGIN_USER: &str = "jira-plugin";
const REQUESTER: &str = "requester@example.com";
const ROLE: &str = "editor";
/// The Jira user who moves cards in the decision scenario.
pub const REVIEWER_ACCOUNT: &str = "5b10ac8d82e05b22cc7d4ef5";
const REVIEWER_EMAIL: &str = "reviewer@example.com";
/// The plugin's documented default for `[jira] max_concurrent_calls`.
pub const DEFAULT_JIRA_CONCURRENCY: usize = 16;
/// How many stderr lines of the plugin are kept for error messages.
const LOG_TAIL: usize = 40;
/// How many warning and error lines are kept as evidence for the report.
const NOTABLE_KEPT: usize = 200;

/// Optional tuning keys; `None` leaves the plugin's default (and the key out of the file).
#[derive(Clone, Debug, Default)]
pub struct Tuning {
    pub jira_concurrency: Option<usize>,
    pub workers: Option<usize>,
    pub scan_interval: Option<String>,
}

impl Tuning {
    /// The Jira concurrency the plugin runs with.
    pub fn effective_jira_concurrency(&self) -> usize {
        self.jira_concurrency.unwrap_or(DEFAULT_JIRA_CONCURRENCY)
    }
}

/// The fakes and the files the plugin reads. Dropping it stops the fakes and removes the files.
pub struct Sandbox {
    pub teleport: FakeTeleport,
    pub jira: FakeJira,
    /// Holds the identity, CA and config files for as long as the run lasts.
    dir: tempfile::TempDir,
    identity: PathBuf,
    tuning: Tuning,
    config_path: PathBuf,
    ca_path: PathBuf,
}

impl Sandbox {
    pub async fn start(tuning: &Tuning) -> Result<Self> {
        testkit::pki::install_crypto_provider();
        let teleport = FakeTeleport::start(FakeTeleportOptions::default()).await;
        teleport.add_user(PLUGIN_USER, UserSpec::plugin());
        teleport.add_user(REQUESTER, UserSpec::requester(&[ROLE]));
        let jira = start_jira().await?;

        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let identity = dir.path().join("auth_id");
        teleport
            .write_identity_file(PLUGIN_USER, &identity, IdentityOptions::default())
            .context("writing the identity file")?;
        let ca_path = dir.path().join("jira-ca.pem");
        jira.write_ca_file(&ca_path)
            .context("writing FakeJira's CA file")?;

        let port = free_port()?;
        let config = config_file(&teleport, &jira, &identity, port, tuning);
        let config_path = dir.path().join("teleport-jira.toml");
        std::fs::write(&config_path, config).context("writing the config file")?;
        jira.register_webhook(WebhookTarget::new(format!("http://127.0.0.1:{port}/")))
            .context("registering the webhook")?;
        Ok(Self {
            teleport,
            jira,
            dir,
            identity,
            tuning: tuning.clone(),
            config_path,
            ca_path,
        })
    }

    /// Creates one pending request as the requester; returns its ID.
    pub fn create_request(&self, index: usize) -> Result<String> {
        let created = self
            .teleport
            .try_create_access_request(CreateRequest {
                user: REQUESTER.to_owned(),
                roles: vec![ROLE.to_owned()],
                reason: format!("bench request {index}"),
                ..CreateRequest::default()
            })
            .map_err(|status| anyhow!("FakeTeleport refused a request: {status}"))?;
        created
            .metadata
            .map(|m| m.name)
            .filter(|id| !id.is_empty())
            .context("FakeTeleport returned a request without an ID")
    }

    /// The Jira issue ID the plugin recorded in the request's plugin data, if any.
    pub fn recorded_issue_id(&self, request_id: &str) -> Option<String> {
        self.teleport
            .plugin_data(request_id, "jira")
            .and_then(|mut data| data.remove("issue_id"))
            .filter(|id| !id.is_empty())
    }

    /// Starts `binary start --insecure-no-tls --config <file>`.
    pub fn spawn_plugin(&self, binary: &Path) -> Result<Plugin> {
        Plugin::spawn(binary, &self.config_path, &self.ca_path)
    }

    /// Starts replica number `index` (1 for the second process): the same config but for its
    /// own webhook port, which Jira does not know.
    pub fn spawn_replica(&self, binary: &Path, index: usize) -> Result<Plugin> {
        let port = free_port()?;
        let config = config_file(
            &self.teleport,
            &self.jira,
            &self.identity,
            port,
            &self.tuning,
        );
        let path = self.dir.path().join(format!("teleport-jira-{index}.toml"));
        std::fs::write(&path, config).context("writing a replica's config file")?;
        Plugin::spawn(binary, &path, &self.ca_path)
    }
}

/// A port free on 127.0.0.1 now, for a webhook listener.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("finding a free port for the webhook")?
        .port())
}

/// FakeJira over HTTPS with the reviewer who moves cards.
async fn start_jira() -> Result<FakeJira> {
    let reviewer = JiraUser::new(REVIEWER_ACCOUNT, "Rita Reviewer")
        .with_email(REVIEWER_EMAIL)
        .with_permissions([
            Permission::BrowseProjects,
            Permission::TransitionIssues,
            Permission::AddComments,
            Permission::EditIssues,
        ]);
    FakeJira::start(FakeJiraOptions {
        tls: true,
        users: vec![reviewer],
        // The plugin answers a webhook once the decision is applied; under a deep backlog
        // that takes a while, and a retried delivery would only add noise.
        webhook_timeout: Duration::from_secs(60),
        ..FakeJiraOptions::default()
    })
    .await
    .context("starting FakeJira")
}

/// The plugin's config file: the Go plugin's keys, plus the tuning keys asked for.
fn config_file(
    teleport: &FakeTeleport,
    jira: &FakeJira,
    identity: &Path,
    webhook_port: u16,
    tuning: &Tuning,
) -> String {
    let plugin_user = jira.plugin_user();
    let mut jira_tuning = String::new();
    if let Some(calls) = tuning.jira_concurrency {
        jira_tuning.push_str(&format!("max_concurrent_calls = {calls}\n"));
    }
    let mut reconcile = String::new();
    if let Some(workers) = tuning.workers {
        reconcile.push_str(&format!("workers = {workers}\n"));
    }
    if let Some(interval) = &tuning.scan_interval {
        reconcile.push_str(&format!("scan_interval = {interval:?}\n"));
    }
    if !reconcile.is_empty() {
        reconcile.insert_str(0, "\n[reconcile]\n");
    }
    format!(
        r#"[teleport]
addr = "{auth}"
identity = "{identity}"

[jira]
url = "{jira_url}"
username = "{username}"
api_token = "{token}"
project = "PROJ"
{jira_tuning}
[http]
listen_addr = "127.0.0.1:{webhook_port}"

[log]
output = "stderr"
severity = "info"
{reconcile}"#,
        auth = teleport.auth_addr(),
        identity = identity.display(),
        jira_url = jira.url(),
        username = plugin_user.email.unwrap_or_default(),
        token = plugin_user.token.unwrap_or_default(),
    )
}

/// What the stderr reader has seen.
#[derive(Debug, Default)]
struct LogState {
    first_line_at: Option<Instant>,
    ready_at: Option<Instant>,
    lines: usize,
    warnings: usize,
    errors: usize,
    tail: VecDeque<String>,
    /// The first warning and error lines.
    notable: Vec<String>,
}

/// Counts of the plugin's log lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogCounts {
    pub lines: usize,
    pub warnings: usize,
    pub errors: usize,
    /// Warning and error lines kept so far (see [`Plugin::notable_since`]).
    notable: usize,
}

impl LogCounts {
    pub fn since(self, earlier: Self) -> Self {
        Self {
            lines: self.lines.saturating_sub(earlier.lines),
            warnings: self.warnings.saturating_sub(earlier.warnings),
            errors: self.errors.saturating_sub(earlier.errors),
            notable: self.notable.saturating_sub(earlier.notable),
        }
    }

    /// Two processes' counts together.
    pub fn plus(self, other: Self) -> Self {
        Self {
            lines: self.lines + other.lines,
            warnings: self.warnings + other.warnings,
            errors: self.errors + other.errors,
            notable: self.notable + other.notable,
        }
    }
}

/// The plugin process. Killed if dropped while running.
pub struct Plugin {
    child: Child,
    pid: u32,
    spawned_at: Instant,
    log: Arc<Mutex<LogState>>,
}

impl Plugin {
    fn spawn(binary: &Path, config: &Path, ca_file: &Path) -> Result<Self> {
        let mut command = Command::new(binary);
        command
            .arg("start")
            .arg("--insecure-no-tls")
            .arg("--config")
            .arg(config)
            .env("SSL_CERT_FILE", ca_file)
            .env_remove("SSL_CERT_DIR")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned_at = Instant::now();
        let mut child = command.spawn().with_context(|| {
            format!(
                "cannot run {} (build it with `cargo build --release -p teleport-jira`)",
                binary.display()
            )
        })?;
        let pid = child.id().context("the plugin exited at once")?;
        let stderr = child.stderr.take().context("the plugin's stderr")?;
        let log = Arc::new(Mutex::new(LogState::default()));
        let state = Arc::clone(&log);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let now = Instant::now();
                let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                state.lines += 1;
                state.first_line_at.get_or_insert(now);
                // Text format: "<timestamp>  LEVEL target: message".
                let level = line.split_whitespace().nth(1);
                match level {
                    Some("WARN") => state.warnings += 1,
                    Some("ERROR") => state.errors += 1,
                    _ => {}
                }
                if matches!(level, Some("WARN" | "ERROR")) && state.notable.len() < NOTABLE_KEPT {
                    state.notable.push(line.clone());
                }
                if state.ready_at.is_none() && line.contains("Plugin is ready") {
                    state.ready_at = Some(now);
                }
                if state.tail.len() == LOG_TAIL {
                    state.tail.pop_front();
                }
                state.tail.push_back(line);
            }
        });
        Ok(Self {
            child,
            pid,
            spawned_at,
            log,
        })
    }

    fn log(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// Spawn to the first line on stderr: process start-up and config loading.
    pub fn first_line_after(&self) -> Option<Duration> {
        self.log()
            .first_line_at
            .map(|at| at.duration_since(self.spawned_at))
    }

    pub fn log_counts(&self) -> LogCounts {
        let log = self.log();
        LogCounts {
            lines: log.lines,
            warnings: log.warnings,
            errors: log.errors,
            notable: log.notable.len(),
        }
    }

    /// Up to `limit` warning and error lines logged after `mark` was taken.
    pub fn notable_since(&self, mark: LogCounts, limit: usize) -> Vec<String> {
        self.log()
            .notable
            .iter()
            .skip(mark.notable)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The last lines the plugin logged, for error messages.
    pub fn tail(&self) -> String {
        self.log()
            .tail
            .iter()
            .map(|line| format!("    {line}\n"))
            .collect()
    }

    /// Fails if the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!(
                "the plugin exited ({status}); its last log lines:\n{}",
                self.tail()
            ),
            Err(err) => Err(err).context("checking the plugin process"),
        }
    }

    /// Waits for "Plugin is ready" on stderr; returns the time from spawn to that line.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self.log().ready_at {
                return Ok(at.duration_since(self.spawned_at));
            }
            self.ensure_running()?;
            if Instant::now() >= deadline {
                bail!(
                    "the plugin did not log \"Plugin is ready\" within {timeout:?}; its last log lines:\n{}",
                    self.tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// SIGTERM (through `kill`, to stay free of `libc`), then SIGKILL after 10 s.
    pub async fn stop(mut self) -> Result<()> {
        if self.child.try_wait().ok().flatten().is_some() {
            return Ok(());
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => status.map(drop).context("waiting for the plugin to exit"),
            Err(_) => self.child.kill().await.context("killing the plugin"),
        }
    }
}
