//! `teleport-jira demo`: a sandbox for a first look. A fake Teleport cluster and a fake Jira Cloud
//! site (HTTPS) run in this process; this very binary runs as the plugin against them, with a config
//! file that uses only the Go plugin's keys; and a request is walked through its life, each step
//! printed with where to look. With `--keep-running` it then stays up with a small board page on
//! which a person can create requests and move cards.

mod board;
mod walk;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use teleport_proto::types::RequestState;
use testkit::jira::{
    FakeJira, FakeJiraOptions, IssueSnapshot, JiraUser, Permission, WebhookTarget,
};
use testkit::teleport::{FakeTeleport, FakeTeleportOptions, IdentityOptions, UserSpec};
use thiserror::Error;

/// How long each step may take before the demo gives up (the plugin answers in well under a second).
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
#[error("{0}")]
pub struct DemoError(String);

fn failed<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> DemoError {
    move |err| DemoError(format!("{what}: {err}"))
}

#[derive(Clone, Debug, Default)]
pub struct DemoOptions {
    /// Stay up after the walk-through, until Ctrl-C.
    pub keep_running: bool,
}

/// The fakes, the reviewer who works the board, and the running plugin.
struct Sandbox {
    teleport: Arc<FakeTeleport>,
    jira: Arc<FakeJira>,
    reviewer: JiraUser,
    /// The board page's URL.
    board: String,
    plugin: tokio::process::Child,
    plugin_http: String,
    log_file: PathBuf,
    config_file: PathBuf,
    /// Holds the config, identity and log files for as long as the demo runs.
    _dir: tempfile::TempDir,
}

pub async fn run(options: DemoOptions) -> Result<(), DemoError> {
    let mut sandbox = Sandbox::start().await?;
    let outcome = walk::walk_through(&sandbox).await;
    if outcome.is_ok() && options.keep_running {
        keep_running(&sandbox).await?;
    }
    step("Stopping the plugin with SIGTERM");
    let status = sandbox.stop_plugin().await?;
    println!("    the plugin exited: {status}");
    if outcome.is_err() {
        sandbox.show_log();
    }
    outcome
}

impl Sandbox {
    async fn start() -> Result<Self, DemoError> {
        let (teleport, jira, reviewer) = start_fakes().await?;

        let dir = tempfile::Builder::new()
            .prefix("teleport-jira-demo")
            .tempdir()
            .map_err(failed("making a scratch directory"))?;
        let identity = dir.path().join("identity");
        teleport
            .write_identity_file("jira-plugin", &identity, IdentityOptions::default())
            .map_err(failed("writing the plugin's identity file"))?;
        let jira_ca = dir.path().join("jira-ca.pem");
        jira.write_ca_file(&jira_ca)
            .map_err(failed("writing the fake Jira's CA"))?;
        let port = free_port()?;
        let log_file = dir.path().join("plugin.log");
        let config_file = dir.path().join("teleport-jira.toml");
        let config = plugin_config(&teleport, &jira, &identity, port, &log_file);
        std::fs::write(&config_file, &config).map_err(failed("writing the config file"))?;
        jira.register_webhook(WebhookTarget::new(format!("http://127.0.0.1:{port}/")))
            .map_err(failed("registering the webhook"))?;
        println!(
            "    the plugin's config (the Go plugin's keys only), {}:",
            config_file.display()
        );
        println!("{}", indent(&config));

        let (teleport, jira) = (Arc::new(teleport), Arc::new(jira));
        let board = board::serve(board::Board {
            teleport: teleport.clone(),
            jira: jira.clone(),
            reviewer: reviewer.account_id.clone(),
        })
        .await?;
        println!("    the board page (the fake Jira project and Teleport's requests): {board}");

        let plugin = spawn_plugin(&config_file, &jira_ca)?;
        let mut sandbox = Self {
            teleport,
            jira,
            reviewer,
            board,
            plugin,
            plugin_http: format!("http://127.0.0.1:{port}"),
            log_file,
            config_file,
            _dir: dir,
        };
        if let Err(err) = sandbox.wait_until_ready().await {
            sandbox.show_log();
            return Err(err);
        }
        Ok(sandbox)
    }

    async fn wait_until_ready(&mut self) -> Result<(), DemoError> {
        step(&format!(
            "Starting the plugin: teleport-jira start --insecure-no-tls --config {}",
            self.config_file.display()
        ));
        let http = reqwest::Client::new();
        let readyz = format!("{}/readyz", self.plugin_http);
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.plugin.try_wait() {
                return Err(DemoError(format!("the plugin exited at start ({status})")));
            }
            let answer = http.get(&readyz).send().await;
            if answer.is_ok_and(|answer| answer.status().is_success()) {
                println!("    {readyz} answers 200: the watch is up and Jira answered");
                println!("    the plugin's log: {}", self.log_file.display());
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DemoError(
                    "the plugin did not become ready within 30 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn issue_of(&self, request: &str) -> Result<IssueSnapshot, DemoError> {
        wait_for(|| async {
            let id = self
                .teleport
                .plugin_data(request, "jira")?
                .get("issue_id")?
                .clone();
            self.jira.issue(&id)
        })
        .await
    }

    async fn issue_in(
        &self,
        issue: &IssueSnapshot,
        status: &str,
    ) -> Result<IssueSnapshot, DemoError> {
        wait_for(|| async { self.jira.issue(&issue.id).filter(|i| i.status == status) }).await
    }

    async fn request_in(&self, request: &str, state: RequestState) -> Result<(), DemoError> {
        wait_for(|| async {
            let current = self.teleport.access_request(request)?.spec?.state;
            (current == state as i32).then_some(())
        })
        .await
    }

    fn show_log(&self) {
        println!("    the plugin's log, {}:", self.log_file.display());
        if let Ok(log) = std::fs::read_to_string(&self.log_file) {
            println!("{}", indent(&log));
        }
    }

    fn browse_url(&self, issue: &IssueSnapshot) -> String {
        format!("{}/browse/{}", self.board, issue.key)
    }

    async fn stop_plugin(&mut self) -> Result<std::process::ExitStatus, DemoError> {
        if let Some(pid) = self.plugin.id() {
            // The plugin drains its work on SIGTERM; kill_on_drop is only the fallback.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(STEP_TIMEOUT, self.plugin.wait()).await {
            Ok(status) => status.map_err(failed("waiting for the plugin")),
            Err(_) => {
                let _ = self.plugin.kill().await;
                Err(DemoError(
                    "the plugin did not stop within 30 s of SIGTERM".into(),
                ))
            }
        }
    }
}

async fn keep_running(sandbox: &Sandbox) -> Result<(), DemoError> {
    step("The sandbox keeps running; press Ctrl-C to stop");
    println!(
        "    the board (create requests, move cards):  {}",
        sandbox.board
    );
    println!(
        "    the plugin's readiness and metrics:       {0}/readyz  {0}/metrics",
        sandbox.plugin_http
    );
    println!(
        "    the plugin's log:                         {}",
        sandbox.log_file.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}

/// A fake Teleport with a requester, an admin and the plugin's user, and a fake Jira with a
/// reviewer who may move cards.
async fn start_fakes() -> Result<(FakeTeleport, FakeJira, JiraUser), DemoError> {
    step("Starting a fake Teleport cluster and a fake Jira Cloud site (HTTPS) on 127.0.0.1");
    let teleport = FakeTeleport::start(FakeTeleportOptions::default()).await;
    teleport.add_user("jira-plugin", UserSpec::plugin());
    teleport.add_user(
        "alice@example.com",
        UserSpec::requester(&["editor", "auditor"]),
    );
    teleport.add_user("admin", UserSpec::admin());
    let reviewer = JiraUser::new("5b10ac8d82e05b22cc7d4ef5", "Carol Reviewer")
        .with_email("carol@example.com")
        .with_permissions([
            Permission::BrowseProjects,
            Permission::TransitionIssues,
            Permission::AddComments,
        ]);
    let jira = FakeJira::start(FakeJiraOptions {
        tls: true,
        users: vec![reviewer.clone()],
        ..Default::default()
    })
    .await
    .map_err(failed("starting the fake Jira"))?;
    println!("    Teleport Auth Service: {}", teleport.auth_addr());
    println!("    Jira site:             {}", jira.url());
    Ok((teleport, jira, reviewer))
}

/// The plugin's config file: the Go plugin's keys only.
fn plugin_config(
    teleport: &FakeTeleport,
    jira: &FakeJira,
    identity: &Path,
    port: u16,
    log_file: &Path,
) -> String {
    let plugin_user = jira.plugin_user();
    format!(
        "[teleport]\naddr = \"{teleport}\"\nidentity = \"{identity}\"\nrefresh_identity = true\n\n\
         [jira]\nurl = \"{url}\"\nusername = \"{user}\"\napi_token = \"{token}\"\nproject = \"PROJ\"\n\n\
         [http]\nlisten_addr = \"127.0.0.1:{port}\"\n\n\
         [log]\noutput = \"{log}\"\nseverity = \"info\"\n",
        teleport = teleport.auth_addr(),
        identity = identity.display(),
        url = jira.url(),
        user = plugin_user.email.unwrap_or_default(),
        token = plugin_user.token.unwrap_or_default(),
        log = log_file.display(),
    )
}

fn spawn_plugin(config: &Path, jira_ca: &Path) -> Result<tokio::process::Child, DemoError> {
    let binary = std::env::current_exe().map_err(failed("finding this program"))?;
    tokio::process::Command::new(binary)
        .args(["start", "--insecure-no-tls", "--config"])
        .arg(config)
        // The fake Jira's CA is trusted the way an operator trusts a private one.
        .env("SSL_CERT_FILE", jira_ca)
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(failed("starting the plugin"))
}

fn free_port() -> Result<u16, DemoError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(failed("finding a free port"))
}

/// Polls `probe` until it yields, for at most [`STEP_TIMEOUT`].
async fn wait_for<T, F, Fut>(mut probe: F) -> Result<T, DemoError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DemoError(
                "timed out waiting for the plugin (see its log above)".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn step(text: &str) {
    println!("\n==> {text}");
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("      {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
