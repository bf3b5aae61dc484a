//! `make demo`: runs the real `teleport-jira` binary against a FakeTeleport and a FakeJira on this
//! machine, with a config file that uses only the Go plugin's keys, and walks through a request's
//! life: a ticket appears, a reviewer approves it from Jira, Teleport denies another, a third expires.
//!
//! Usage: `teleport-jira-demo <path to teleport-jira> [--keep-running]`

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use teleport_proto::types::RequestState;
use testkit::jira::{FakeJira, FakeJiraOptions, JiraUser, Permission, WebhookTarget};
use testkit::teleport::{FakeTeleport, FakeTeleportOptions, IdentityOptions, UserSpec};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let binary = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/release/teleport-jira".into()),
    );
    let keep_running = args.any(|arg| arg == "--keep-running");
    testkit::pki::install_crypto_provider();

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
    .await?;

    let dir = tempfile::tempdir()?;
    let identity = dir.path().join("auth_id");
    teleport.write_identity_file("jira-plugin", &identity, IdentityOptions::default())?;
    let ca_file = dir.path().join("jira-ca.pem");
    jira.write_ca_file(&ca_file)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let plugin_user = jira.plugin_user();
    let config = dir.path().join("teleport-jira.toml");
    std::fs::write(
        &config,
        format!(
            "[teleport]\naddr = \"{}\"\nidentity = \"{}\"\nrefresh_identity = true\n\n[jira]\nurl = \"{}\"\nusername = \"{}\"\napi_token = \"{}\"\nproject = \"PROJ\"\n\n[http]\nlisten_addr = \"127.0.0.1:{port}\"\n\n[log]\nseverity = \"info\"\n",
            teleport.auth_addr(),
            identity.display(),
            jira.url(),
            plugin_user.email.unwrap_or_default(),
            plugin_user.token.unwrap_or_default(),
        ),
    )?;
    jira.register_webhook(WebhookTarget::new(format!("http://127.0.0.1:{port}/")))?;
    println!(
        "    config: {}\n{}",
        config.display(),
        indent(&std::fs::read_to_string(&config)?)
    );

    step(&format!(
        "Starting {} start --insecure-no-tls",
        binary.display()
    ));
    let mut plugin = tokio::process::Command::new(&binary)
        .args(["start", "--insecure-no-tls", "--config"])
        .arg(&config)
        .env("SSL_CERT_FILE", &ca_file)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| {
            format!(
                "cannot run {}: {err} (build it with `cargo build --release`)",
                binary.display()
            )
        })?;
    if !teleport.wait_for_watchers(1, Duration::from_secs(30)).await {
        return Err("the plugin did not connect to Teleport".into());
    }

    step("alice@example.com requests the editor and auditor roles");
    let approved = teleport.create_access_request(
        "alice@example.com",
        &["editor", "auditor"],
        "Fix the prod outage",
    );
    let issue = wait_for(|| issue_of(&teleport, &jira, &approved)).await?;
    println!(
        "    Jira issue {} ({}): {:?}",
        issue.key, issue.status, issue.summary
    );
    println!(
        "{}",
        indent(issue.description.as_deref().unwrap_or_default())
    );

    step("Carol comments with a reason and moves the card to Approved");
    jira.comment_as(
        &issue.id,
        &reviewer.account_id,
        "Checked the on-call rota.\nReason: approved for the incident",
    )?;
    jira.transition_as(&issue.id, "Approved", &reviewer.account_id)?;
    wait_for(|| state_is(&teleport, &approved, RequestState::Approved)).await?;
    for event in teleport.audit_events() {
        println!(
            "    Teleport: {} -> {:?} by {:?}, reason {:?}",
            event.request_id, event.state, event.delegator, event.reason
        );
    }

    step("Another request is denied in Teleport; the card follows");
    let denied = teleport.create_access_request("alice@example.com", &["editor"], "");
    let issue = wait_for(|| issue_of(&teleport, &jira, &denied)).await?;
    teleport.set_state_as(
        "admin",
        &denied,
        RequestState::Denied,
        "not during the freeze",
        "",
    )?;
    let issue = wait_for(|| jira.issue(&issue.id).filter(|i| i.status == "Denied")).await?;
    println!(
        "    Jira issue {} is now {}; comments: {:?}",
        issue.key,
        issue.status,
        issue.comment_bodies()
    );

    step("A third request expires; its card moves to Expired");
    let expired = teleport.create_access_request("alice@example.com", &["auditor"], "audit");
    let issue = wait_for(|| issue_of(&teleport, &jira, &expired)).await?;
    teleport.delete_access_request(&expired)?;
    let issue = wait_for(|| jira.issue(&issue.id).filter(|i| i.status == "Expired")).await?;
    println!("    Jira issue {} is now {}", issue.key, issue.status);

    if keep_running {
        step("The plugin keeps running; press Ctrl-C to stop");
        let _ = tokio::signal::ctrl_c().await;
    }
    step("Stopping the plugin with SIGTERM");
    if let Some(pid) = plugin.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let status = plugin.wait().await?;
    println!("    exit status: {status}");
    Ok(())
}

fn issue_of(
    teleport: &FakeTeleport,
    jira: &FakeJira,
    request: &str,
) -> Option<testkit::jira::IssueSnapshot> {
    let id = teleport
        .plugin_data(request, "jira")?
        .get("issue_id")?
        .clone();
    jira.issue(&id)
}

fn state_is(teleport: &FakeTeleport, request: &str, state: RequestState) -> Option<()> {
    let current = teleport.access_request(request)?.spec?.state;
    (current == state as i32).then_some(())
}

async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> Result<T, Error> {
    for _ in 0..300 {
        if let Some(value) = probe() {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("timed out waiting for the plugin".into())
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
