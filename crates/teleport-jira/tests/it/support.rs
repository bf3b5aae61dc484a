//! The sandbox every end-to-end test runs in: a FakeTeleport, a FakeJira over HTTPS (its CA trusted
//! through `SSL_CERT_FILE`, as an operator would), an identity file, a config file with the Go
//! plugin's keys only, and the built `teleport-jira` binary as a child process.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use teleport_proto::types::RequestState;
use testkit::jira::{
    FakeJira, FakeJiraOptions, IssueSnapshot, JiraUser, Permission, ProjectSpec, WebhookTarget,
};
use testkit::teleport::{AuditEvent, FakeTeleport, FakeTeleportOptions, IdentityOptions, UserSpec};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BINARY: &str = env!("CARGO_BIN_EXE_teleport-jira");
pub const PLUGIN_USER: &str = "plugin";
pub const REQUESTER: &str = "requester-oss@example.com";
pub const REQUESTER1: &str = "requester1@example.com";
pub const REVIEWER1: &str = "reviewer1@example.com";
pub const REVIEWER2: &str = "reviewer2@example.com";
pub const JIRA_REVIEWER: &str = "JIRA-REVIEWER";
pub const JIRA_REVIEWER_EMAIL: &str = "jira-reviewer@example.com";
pub const RANDOM_USER: &str = "RANDOM-USER";
pub const REASON: &str = "because of";
/// A requester who may ask for `db-admin` (in [`Sandbox::with_rule_targets`]).
pub const DBA: &str = "dba@example.com";
/// Generous: CI machines are shared and slow; a passing test never waits this long.
pub const WAIT: Duration = Duration::from_secs(90);

const ALL_PERMISSIONS: [Permission; 5] = [
    Permission::BrowseProjects,
    Permission::CreateIssues,
    Permission::TransitionIssues,
    Permission::AddComments,
    Permission::EditIssues,
];

/// The fakes, the files and (once started) the plugin process.
pub struct Sandbox {
    pub teleport: FakeTeleport,
    pub jira: FakeJira,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub webhook_url: String,
    webhook_tls: bool,
    plugin: Option<Plugin>,
}

pub struct SandboxOptions {
    pub issue_type: Option<String>,
    pub jira: FakeJiraOptions,
    pub teleport: FakeTeleportOptions,
    pub extra_config: String,
    /// Serve the webhook over HTTPS (the Go plugin's default) instead of `--insecure-no-tls`.
    pub webhook_tls: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            issue_type: None,
            jira: FakeJiraOptions {
                tls: true,
                ..FakeJiraOptions::default()
            },
            teleport: FakeTeleportOptions::default(),
            extra_config: String::new(),
            webhook_tls: false,
        }
    }
}

impl Sandbox {
    pub async fn new() -> Self {
        Self::with(SandboxOptions::default()).await
    }

    pub async fn with(options: SandboxOptions) -> Self {
        testkit::pki::install_crypto_provider();
        let teleport = FakeTeleport::start(options.teleport).await;
        teleport.add_user(PLUGIN_USER, UserSpec::plugin());
        teleport.add_user(REQUESTER, UserSpec::requester(&["editor"]));
        teleport.add_user(
            REQUESTER1,
            UserSpec::requester(&["editor"]).with_thresholds(2, 2),
        );
        teleport.add_user(REVIEWER1, UserSpec::reviewer(&["editor"]));
        teleport.add_user(REVIEWER2, UserSpec::reviewer(&["editor"]));
        teleport.add_user("admin", UserSpec::admin());

        let mut jira_options = options.jira;
        jira_options.users.push(
            JiraUser::new(JIRA_REVIEWER, "Jira Reviewer 1")
                .with_email(JIRA_REVIEWER_EMAIL)
                .with_permissions(ALL_PERMISSIONS),
        );
        jira_options.users.push(
            JiraUser::new(RANDOM_USER, "Random Folk")
                .with_email("randomfolk@example.com")
                .with_permissions(ALL_PERMISSIONS),
        );
        let jira = FakeJira::start(jira_options)
            .await
            .expect("FakeJira starts");

        let dir = tempfile::tempdir().unwrap();
        let identity = dir.path().join("auth_id");
        teleport
            .write_identity_file(PLUGIN_USER, &identity, IdentityOptions::default())
            .unwrap();
        jira.write_ca_file(dir.path().join("jira-ca.pem")).unwrap();

        let port = free_port();
        let (webhook_url, https_files, webhook_ca) = if options.webhook_tls {
            let web = testkit::pki::WebPki::localhost().unwrap();
            let (cert, key) = (
                dir.path().join("webhook.crt"),
                dir.path().join("webhook.key"),
            );
            std::fs::write(&cert, web.server().cert_pem()).unwrap();
            std::fs::write(&key, web.server().key_pem()).unwrap();
            std::fs::write(dir.path().join("webhook-ca.pem"), web.ca_pem()).unwrap();
            let files = format!(
                "https_cert_file = {:?}\nhttps_key_file = {:?}\n",
                cert.display().to_string(),
                key.display().to_string()
            );
            (
                format!("https://localhost:{port}/"),
                files,
                Some(web.ca_pem()),
            )
        } else {
            (format!("http://127.0.0.1:{port}/"), String::new(), None)
        };
        let plugin_user = jira.plugin_user();
        let config = format!(
            r#"[teleport]
addr = "{auth}"
identity = "{identity}"

[jira]
url = "{jira_url}"
username = "{username}"
api_token = "{token}"
project = "PROJ"
{issue_type}

[http]
listen_addr = "127.0.0.1:{port}"
{https_files}
[log]
output = "stderr"
severity = "debug"
{extra}"#,
            auth = teleport.auth_addr(),
            identity = identity.display(),
            jira_url = jira.url(),
            username = plugin_user.email.clone().unwrap_or_default(),
            token = plugin_user.token.clone().unwrap_or_default(),
            issue_type = options
                .issue_type
                .map(|t| format!("issue_type = {t:?}"))
                .unwrap_or_default(),
            extra = options.extra_config,
        );
        let config_path = dir.path().join("teleport-jira.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut target = WebhookTarget::new(webhook_url.clone());
        if let Some(ca) = webhook_ca {
            target = target.trusting_ca(ca);
        }
        jira.register_webhook(target).unwrap();
        Self {
            teleport,
            jira,
            dir,
            config_path,
            webhook_url,
            webhook_tls: options.webhook_tls,
            plugin: None,
        }
    }

    /// A sandbox for routing by Access Monitoring Rules: Jira projects PROJ (configured), OPS and
    /// SEC, a requester [`DBA`] who may ask for `db-admin`, and `extra_config`;
    /// `may_read_rules` grants the plugin's role `access_monitoring_rule: [read, list]` and
    /// `user: [read]`.
    pub async fn with_rule_targets(extra_config: &str, may_read_rules: bool) -> Self {
        let sandbox = Self::with(SandboxOptions {
            jira: FakeJiraOptions {
                tls: true,
                projects: vec![
                    ProjectSpec::new("PROJ", "The Project"),
                    ProjectSpec::new("OPS", "Operations"),
                    ProjectSpec::new("SEC", "Security"),
                ],
                ..FakeJiraOptions::default()
            },
            extra_config: extra_config.to_owned(),
            ..SandboxOptions::default()
        })
        .await;
        if may_read_rules {
            sandbox
                .teleport
                .add_user(PLUGIN_USER, UserSpec::plugin().with_rules_access());
        }
        sandbox
            .teleport
            .add_user(DBA, UserSpec::requester(&["editor", "db-admin"]));
        sandbox
    }

    /// Makes Jira sign its webhook deliveries with `secret` (as an admin setting the webhook's
    /// secret would), replacing the unsigned webhook the sandbox registered.
    pub fn sign_webhooks_with(&self, secret: &str) {
        self.jira.clear_webhooks();
        self.jira
            .register_webhook(WebhookTarget::new(self.webhook_url.clone()).with_secret(secret))
            .unwrap();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts the plugin (with `--insecure-no-tls` unless the webhook uses TLS) and waits until
    /// its watch is open.
    pub async fn start_plugin(&mut self) {
        let args: &[&str] = if self.webhook_tls {
            &[]
        } else {
            &["--insecure-no-tls"]
        };
        let plugin = Plugin::spawn(&self.config_path, &self.path("jira-ca.pem"), args);
        self.plugin = Some(plugin);
        // "Plugin is ready" follows the first INIT of the watch. A plugin that exits instead (a
        // taken port, a bad config) fails the test at once, with its log.
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.log().contains("Plugin is ready") {
            if let Ok(Some(status)) = self.plugin().child.try_wait() {
                panic!(
                    "the plugin exited at start ({status}); its log:\n{}",
                    self.log()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the plugin never logged \"Plugin is ready\"; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the plugin and waits, past "Plugin is ready", until it has listed the cluster's
    /// requests once: "ready" means the watch is open, and the listing that follows may still
    /// pick up a request created right after it. A request created after this call reaches the
    /// plugin through the watch only, as a new request.
    pub async fn start_plugin_caught_up(&mut self) {
        self.start_plugin().await;
        let caught_up = eventually(|| async {
            self.log()
                .contains("Reconciling every access request after (re)connecting")
        })
        .await;
        assert!(
            caught_up,
            "the plugin never listed the requests; its log:\n{}",
            self.log()
        );
    }

    /// Starts another replica of the plugin against the same cluster and board, with its own
    /// webhook port (Jira keeps delivering to the first one), and waits until it is ready.
    pub async fn start_replica(&self) -> Plugin {
        let config = std::fs::read_to_string(&self.config_path).unwrap();
        let listen = config
            .lines()
            .find(|l| l.starts_with("listen_addr"))
            .unwrap()
            .to_owned();
        let config = config.replace(
            &listen,
            &format!("listen_addr = \"127.0.0.1:{}\"", free_port()),
        );
        let path = self.path(&format!("replica-{}.toml", free_port()));
        std::fs::write(&path, config).unwrap();
        let args: &[&str] = if self.webhook_tls {
            &[]
        } else {
            &["--insecure-no-tls"]
        };
        let replica = Plugin::spawn(&path, &self.path("jira-ca.pem"), args);
        let ready = eventually(|| async { replica.log().contains("Plugin is ready") }).await;
        assert!(
            ready,
            "the replica never got ready; its log:\n{}",
            replica.log()
        );
        replica
    }

    pub fn plugin(&mut self) -> &mut Plugin {
        self.plugin.as_mut().expect("plugin started")
    }

    pub fn log(&self) -> String {
        self.plugin.as_ref().map(Plugin::log).unwrap_or_default()
    }

    pub async fn wait_for_log(&self, needle: &str) {
        let found = eventually(|| async { self.log().contains(needle) }).await;
        assert!(
            found,
            "the plugin never logged {needle:?}; its log:\n{}",
            self.log()
        );
    }

    /// What the plugin serves at `/metrics` now.
    pub async fn scrape_metrics(&self) -> String {
        reqwest::get(format!("{}metrics", self.webhook_url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn create_request(&self, reason: &str) -> String {
        self.teleport
            .create_access_request(REQUESTER, &["editor"], reason)
    }

    /// Waits until the request has an issue, and returns it.
    pub async fn issue_of(&self, request_id: &str) -> IssueSnapshot {
        let found = eventually(|| async { self.recorded_issue_id(request_id).is_some() }).await;
        assert!(
            found,
            "no issue recorded for {request_id}; plugin log:\n{}",
            self.log()
        );
        let id = self.recorded_issue_id(request_id).unwrap();
        self.jira
            .issue(&id)
            .expect("the recorded issue exists in Jira")
    }

    /// The plugin data the Go plugin writes for the request, naming `issue` (id, key) if any.
    pub fn go_plugin_data(
        &self,
        request_id: &str,
        issue: Option<(&str, &str)>,
    ) -> std::collections::HashMap<String, String> {
        let request = self.teleport.access_request(request_id).unwrap();
        let spec = request.spec.unwrap();
        let created = spec.created.unwrap().seconds.to_string();
        let mut data: std::collections::HashMap<String, String> = [
            ("user", spec.user.as_str()),
            ("roles", &spec.roles.join(",")),
            ("created", created.as_str()),
            ("request_reason", spec.request_reason.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some((id, key)) = issue {
            data.insert("issue_id".into(), id.into());
            data.insert("issue_key".into(), key.into());
        }
        data
    }

    pub fn recorded_issue_id(&self, request_id: &str) -> Option<String> {
        self.teleport
            .plugin_data(request_id, "jira")
            .and_then(|data| data.get("issue_id").cloned())
            .filter(|id| !id.is_empty())
    }

    pub fn plugin_data(&self, request_id: &str) -> std::collections::HashMap<String, String> {
        self.teleport
            .plugin_data(request_id, "jira")
            .unwrap_or_default()
    }

    /// What Teleport's audit log recorded for the request's state changes, oldest first.
    pub fn audit_events_of(&self, request_id: &str) -> Vec<AuditEvent> {
        self.teleport
            .audit_events()
            .into_iter()
            .filter(|e| e.request_id == request_id)
            .collect()
    }

    /// The first state change Teleport recorded for the request.
    pub fn audit_event_of(&self, request_id: &str) -> AuditEvent {
        self.audit_events_of(request_id)
            .into_iter()
            .next()
            .unwrap_or_else(|| {
                panic!(
                    "no audit event for {request_id}; plugin log:\n{}",
                    self.log()
                )
            })
    }

    pub fn state_of(&self, request_id: &str) -> Option<RequestState> {
        self.teleport
            .access_request(request_id)
            .and_then(|r| r.spec)
            .and_then(|s| RequestState::try_from(s.state).ok())
    }

    pub async fn wait_for_state(&self, request_id: &str, state: RequestState) {
        let reached = eventually(|| async { self.state_of(request_id) == Some(state) }).await;
        assert!(
            reached,
            "request {request_id} never reached {state:?}; plugin log:\n{}",
            self.log()
        );
    }

    /// Waits until the issue has a comment containing `needle`.
    pub async fn wait_for_comment(&self, issue_id: &str, needle: &str) -> IssueSnapshot {
        let found = eventually(|| async {
            self.jira
                .issue(issue_id)
                .is_some_and(|i| i.comments.iter().any(|c| c.body.contains(needle)))
        })
        .await;
        let issue = self.jira.issue(issue_id).unwrap();
        assert!(
            found,
            "no comment with {needle:?} on {}: {:?}; plugin log:\n{}",
            issue.key,
            issue.comment_bodies(),
            self.log()
        );
        issue
    }

    pub async fn wait_for_status(&self, issue_id: &str, status: &str) -> IssueSnapshot {
        let reached = eventually(|| async {
            self.jira
                .issue(issue_id)
                .is_some_and(|i| i.status == status)
        })
        .await;
        let issue = self.jira.issue(issue_id).unwrap();
        assert!(
            reached,
            "issue {} stayed in {:?}, wanted {status}; plugin log:\n{}",
            issue.key,
            issue.status,
            self.log()
        );
        issue
    }
}

/// Polls `check` until it holds or [`WAIT`] passes.
pub async fn eventually<F, Fut>(check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A port for a listener the plugin will open later. Taken below Linux's ephemeral range
/// (32768 and up), which the kernel hands to outgoing connections and to `bind(0)` at any
/// moment: a port from there could be taken between this call and the plugin's bind. Never the
/// same port twice in one test process.
pub fn free_port() -> u16 {
    use rand::Rng;
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap();
    loop {
        let port = rand::rng().random_range(20_000..32_000);
        if handed_out.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
}

/// The plugin process, its stderr collected for assertions and failure messages.
pub struct Plugin {
    child: Child,
    log: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Plugin {
    pub fn spawn(config: &Path, ca_file: &Path, extra_args: &[&str]) -> Self {
        Self::spawn_with_env(config, ca_file, extra_args, &[])
    }

    /// [`Plugin::spawn`] with extra environment variables (the debug build's fault hooks).
    pub fn spawn_with_env(
        config: &Path,
        ca_file: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(BINARY);
        command.envs(env.iter().copied());
        command
            .arg("start")
            .arg("--config")
            .arg(config)
            .args(extra_args)
            .env("SSL_CERT_FILE", ca_file)
            .env_remove("SSL_CERT_DIR")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the teleport-jira binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for stream in [
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child.stdout.take().map(|s| Box::new(s) as _),
        ] {
            let Some(stream) = stream else { continue };
            let log = log.clone();
            readers.push(tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line).await {
                        Ok(0) => break,
                        Ok(_) => log
                            .lock()
                            .unwrap()
                            .push_str(&String::from_utf8_lossy(&line)),
                        Err(err) => {
                            log.lock()
                                .unwrap()
                                .push_str(&format!("<log reader failed: {err}>\n"));
                            break;
                        }
                    }
                }
            }));
        }
        Self {
            child,
            log,
            readers,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub async fn wait_for_log(&self, needle: &str) {
        let found = eventually(|| async { self.log().contains(needle) }).await;
        assert!(
            found,
            "the plugin never logged {needle:?}; its log:\n{}",
            self.log()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.pid().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .unwrap()
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits for the exit status, and for everything the process printed to be collected.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("exits")
            .unwrap();
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(WAIT, reader).await;
        }
        status
    }
}

/// Runs the binary to completion with `args`, returning (status, stdout, stderr).
pub fn run_binary(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let output = std::process::Command::new(BINARY)
        .args(args)
        .output()
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Sends `signal` (as `kill` takes it, e.g. `-HUP`) to the process `pid`.
pub fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Exactly one issue per request, each recorded for the request its property names.
pub fn assert_each_request_has_its_own_issue(sandbox: &Sandbox, ids: &[String]) {
    assert_eq!(
        sandbox.jira.created_issue_count(),
        ids.len(),
        "one issue per request; plugin log:\n{}",
        sandbox.log()
    );
    for id in ids {
        let issue_id = sandbox.recorded_issue_id(id).expect("recorded issue");
        let issue = sandbox.jira.issue(&issue_id).unwrap();
        assert_eq!(
            issue.properties.get("teleportAccessRequestId"),
            Some(&serde_json::json!(id)),
            "request {id} recorded issue {issue_id}"
        );
    }
}
