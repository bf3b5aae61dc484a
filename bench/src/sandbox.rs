//! The world one benchmark run happens in, set up as an operator would: a FakeTeleport with the
//! plugin's identity file, a FakeJira over HTTPS whose CA the plugin trusts through
//! `SSL_CERT_FILE`, a config file with the Go plugin's keys (plus the tuning keys asked for on the
//! command line), a Jira webhook pointed at the plugin's plain-HTTP listener, and the release
//! `teleport-jira` binary (or the one it is compared with) as a child process
//! ([`Plugin`](crate::plugin::Plugin)). Replicas are more such processes on the same fakes, each
//! with its own config file and webhook port; Jira's webhook keeps pointing at the first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use testkit::jira::{FakeJira, FakeJiraOptions, JiraUser, Permission, WebhookTarget};
use testkit::teleport::{
    CreateRequest, FakeTeleport, FakeTeleportOptions, IdentityOptions, UserSpec,
};

use crate::plugin::Plugin;

const PLUGIN_USER: &str = "jira-plugin";
const REQUESTER: &str = "requester@example.com";
const ROLE: &str = "editor";
/// The Jira user who moves cards in the decision scenario.
pub const REVIEWER_ACCOUNT: &str = "5b10ac8d82e05b22cc7d4ef5";
const REVIEWER_EMAIL: &str = "reviewer@example.com";
/// The plugin's documented default for `[jira] max_concurrent_calls`.
pub const DEFAULT_JIRA_CONCURRENCY: usize = 256;

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
    /// The first process's webhook port, which Jira's webhook reaches.
    webhook_port: u16,
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
            webhook_port: port,
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
        Plugin::spawn(binary, &self.config_path, &self.ca_path, self.webhook_port)
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
        Plugin::spawn(binary, &path, &self.ca_path, port)
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
