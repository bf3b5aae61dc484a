//! What an operator runs the plugin with: readiness, metrics, SIGHUP reloads, JSON logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use teleport_proto::types::RequestState;
use testkit::pki::KeyFlavour;
use testkit::teleport::IdentityOptions;

use crate::support::{
    JIRA_REVIEWER, PLUGIN_USER, Sandbox, SandboxOptions, eventually, free_port, send_signal,
};

/// A sandbox whose plugin also serves health and metrics on a listener of their own.
async fn sandbox_with_metrics_listener() -> (Sandbox, String) {
    let port = free_port();
    let sandbox = Sandbox::with(SandboxOptions {
        extra_config: format!("\n[metrics]\nlisten_addr = \"127.0.0.1:{port}\"\n"),
        ..SandboxOptions::default()
    })
    .await;
    (sandbox, format!("http://127.0.0.1:{port}"))
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            (status, answer.text().await.unwrap_or_default())
        }
        Err(err) => (0, err.to_string()),
    }
}

async fn wait_for_readyz(base: &str, status: u16, sandbox: &Sandbox) -> String {
    let url = format!("{base}/readyz");
    let reached = eventually(|| async { get(&url).await.0 == status }).await;
    let (now, body) = get(&url).await;
    assert!(
        reached,
        "/readyz answered {now} ({body:?}), wanted {status}; plugin log:\n{}",
        sandbox.log()
    );
    body
}

#[tokio::test]
async fn readiness_drops_while_teleport_is_unreachable_and_returns_when_it_is_back() {
    let (mut sandbox, metrics_base) = sandbox_with_metrics_listener().await;
    sandbox.start_plugin().await;
    let webhook_base = sandbox.webhook_url.trim_end_matches('/').to_owned();

    wait_for_readyz(&metrics_base, 200, &sandbox).await;
    wait_for_readyz(&webhook_base, 200, &sandbox).await;
    assert_eq!(get(&format!("{metrics_base}/status")).await.0, 200);

    sandbox.teleport.set_refuse_connections(true);
    let why = wait_for_readyz(&metrics_base, 503, &sandbox).await;
    assert!(why.contains("watch"), "{why}");
    // Liveness is not readiness: the process is fine, it only waits for Teleport.
    assert_eq!(get(&format!("{metrics_base}/status")).await.0, 200);
    let scraped = get(&format!("{metrics_base}/metrics")).await.1;
    assert_eq!(sample(&scraped, "teleport_jira_ready"), Some(0.0));
    assert_eq!(sample(&scraped, "teleport_jira_watch_connected"), Some(0.0));

    sandbox.teleport.set_refuse_connections(false);
    wait_for_readyz(&metrics_base, 200, &sandbox).await;
    wait_for_readyz(&webhook_base, 200, &sandbox).await;
}

#[tokio::test]
async fn readiness_drops_when_jira_stops_answering() {
    let (mut sandbox, metrics_base) = sandbox_with_metrics_listener().await;
    sandbox.start_plugin().await;
    wait_for_readyz(&metrics_base, 200, &sandbox).await;
    // Jira answers nothing but 503 from now on; the probe notices within the silence limit.
    sandbox.jira.faults().fail_next(u32::MAX, 503);
    let url = format!("{metrics_base}/readyz");
    let dropped = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let (status, body) = get(&url).await;
            if status == 503 {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("/readyz noticed that Jira stopped answering");
    assert!(dropped.contains("Jira has not answered"), "{dropped}");
    sandbox.jira.faults().clear();
    wait_for_readyz(&metrics_base, 200, &sandbox).await;
}

#[tokio::test]
async fn readiness_drops_while_jira_refuses_the_token_and_returns_when_it_accepts_it() {
    let (mut sandbox, metrics_base) = sandbox_with_metrics_listener().await;
    sandbox.start_plugin().await;
    wait_for_readyz(&metrics_base, 200, &sandbox).await;
    // The token is revoked: Jira answers 401 to everything (an answer, so not silence).
    sandbox.jira.faults().fail_next(u32::MAX, 401);
    let why = wait_for_readyz(&metrics_base, 503, &sandbox).await;
    assert!(why.contains("unauthorized"), "{why}");
    let scraped = get(&format!("{metrics_base}/metrics")).await.1;
    assert_eq!(
        sample(
            &scraped,
            "teleport_jira_jira_refusing{reason=\"unauthorized\"}"
        ),
        Some(1.0)
    );
    sandbox.wait_for_log("Jira refuses the plugin").await;
    // A new token: ready again with nothing happening on the board.
    sandbox.jira.faults().clear();
    wait_for_readyz(&metrics_base, 200, &sandbox).await;
}

/// Samples of an OpenMetrics text, keyed by `name{labels}`; panics on a malformed line.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" {
            assert!(lines.peek().is_none(), "text after # EOF");
            return samples;
        }
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.starts_with("# UNIT ")
        {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("malformed sample line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("malformed value in {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "malformed metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "malformed labels in {line:?}");
        }
        samples.insert(series.to_owned(), value);
    }
    panic!("no # EOF at the end of the metrics text:\n{text}");
}

fn sample(text: &str, series: &str) -> Option<f64> {
    parse_metrics(text).get(series).copied()
}

#[tokio::test]
async fn metrics_move_as_a_request_goes_through_its_life() {
    let (mut sandbox, metrics_base) = sandbox_with_metrics_listener().await;
    sandbox.start_plugin().await;
    let scrape = || async { parse_metrics(&get(&format!("{metrics_base}/metrics")).await.1) };
    let before = scrape().await;
    let delta = |after: &HashMap<String, f64>, series: &str| {
        after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
    };

    // A Jira and a Teleport failure on the way: both are counted, and the step is retried.
    sandbox.jira.faults().fail_next_matching("/issue", 1, 503);
    sandbox
        .teleport
        .fail_next("GetPluginData", tonic::Code::Unavailable, 1);
    let approved = sandbox.create_request("metrics");
    let issue = sandbox.issue_of(&approved).await;
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox
        .wait_for_state(&approved, RequestState::Approved)
        .await;
    let denied = sandbox.create_request("metrics");
    let denied_issue = sandbox.issue_of(&denied).await;
    sandbox
        .teleport
        .set_state_as("admin", &denied, RequestState::Denied, "no", "")
        .unwrap();
    sandbox.wait_for_status(&denied_issue.id, "Denied").await;

    let settled = eventually(|| async {
        let after = scrape().await;
        delta(
            &after,
            "teleport_jira_issue_transitions_total{status=\"Denied\"}",
        ) == 1.0
            && delta(&after, "teleport_jira_issues_created_total") == 2.0
            // Gauges are read at the scrape: wait for the state, never assert one instant.
            && after.get("teleport_jira_requests{state=\"approved\"}") == Some(&1.0)
            && after.get("teleport_jira_queue_depth") == Some(&0.0)
            && after.get("teleport_jira_ready") == Some(&1.0)
    })
    .await;
    let after = scrape().await;
    assert!(settled, "counters and gauges did not settle: {after:#?}");
    for (series, at_least) in [
        ("teleport_jira_requests_seen_total{state=\"pending\"}", 2.0),
        ("teleport_jira_requests_seen_total{state=\"approved\"}", 1.0),
        ("teleport_jira_requests_seen_total{state=\"denied\"}", 1.0),
        (
            "teleport_jira_webhook_deliveries_total{outcome=\"accepted\"}",
            1.0,
        ),
        (
            "teleport_jira_jira_call_duration_seconds_count{call=\"create_issue\"}",
            3.0,
        ),
        (
            "teleport_jira_jira_call_errors_total{call=\"create_issue\",code=\"503\"}",
            1.0,
        ),
        (
            "teleport_jira_teleport_call_errors_total{call=\"get_plugin_data\",code=\"Unavailable\"}",
            1.0,
        ),
        (
            "teleport_jira_teleport_call_duration_seconds_count{call=\"set_access_request_state\"}",
            1.0,
        ),
        (
            "teleport_jira_teleport_call_duration_seconds_count{call=\"update_plugin_data\"}",
            2.0,
        ),
        ("teleport_jira_retries_total", 1.0),
        ("teleport_jira_reconcile_lag_seconds_count", 2.0),
    ] {
        assert!(
            delta(&after, series) >= at_least,
            "{series} moved by {}, wanted at least {at_least}; scraped:\n{after:#?}",
            delta(&after, series)
        );
    }
}

#[tokio::test]
async fn metrics_on_the_webhook_listener_sit_behind_its_basic_auth() {
    let mut sandbox = Sandbox::with(SandboxOptions {
        extra_config: String::new(),
        ..SandboxOptions::default()
    })
    .await;
    let config = std::fs::read_to_string(&sandbox.config_path)
        .unwrap()
        .replace(
            "[http]\n",
            "[http]\nbasic_auth = { user = \"jira\", password = \"s3cret\" }\n",
        );
    std::fs::write(&sandbox.config_path, config).unwrap();
    sandbox.start_plugin().await;
    let base = sandbox.webhook_url.trim_end_matches('/').to_owned();
    assert_eq!(get(&format!("{base}/metrics")).await.0, 401);
    let answer = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .basic_auth("jira", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.unwrap();
    assert!(parse_metrics(&text).contains_key("teleport_jira_issues_created_total"));
}

/// The leaf certificate the webhook presents in a fresh TLS handshake, checked against `ca_pem`.
async fn presented_certificate(port: u16, ca_pem: &str) -> Result<Vec<u8>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|err| err.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|err| err.to_string())?;
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0].to_vec())
}

/// A running plugin whose webhook serves HTTPS (with `http_keys` added to `[http]`), and its port.
async fn running_with_https_webhook(http_keys: &str) -> (Sandbox, u16) {
    let mut sandbox = Sandbox::with(SandboxOptions {
        webhook_tls: true,
        ..SandboxOptions::default()
    })
    .await;
    let config = std::fs::read_to_string(&sandbox.config_path)
        .unwrap()
        .replace("[http]\n", &format!("[http]\n{http_keys}"));
    std::fs::write(&sandbox.config_path, config).unwrap();
    sandbox.start_plugin().await;
    let port = sandbox
        .webhook_url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (sandbox, port)
}

#[tokio::test]
async fn sighup_makes_new_handshakes_present_the_new_certificate_on_the_same_listener() {
    let (mut sandbox, port) = running_with_https_webhook("").await;
    let old_ca = std::fs::read_to_string(sandbox.path("webhook-ca.pem")).unwrap();
    let old = presented_certificate(port, &old_ca).await.unwrap();

    let renewed = testkit::pki::WebPki::localhost().unwrap();
    std::fs::write(sandbox.path("webhook.crt"), renewed.server().cert_pem()).unwrap();
    std::fs::write(sandbox.path("webhook.key"), renewed.server().key_pem()).unwrap();
    assert!(
        presented_certificate(port, &renewed.ca_pem())
            .await
            .is_err(),
        "nothing is reloaded before the signal"
    );
    send_signal(sandbox.plugin().pid(), "-HUP");
    sandbox
        .wait_for_log("Reloaded the webhook's TLS certificate")
        .await;

    let new = presented_certificate(port, &renewed.ca_pem())
        .await
        .unwrap();
    assert_ne!(new, old);
    assert_eq!(new, renewed.server().cert_der().to_vec());
    // The plugin still works end to end over the same listener.
    let request = sandbox.create_request("after reload");
    sandbox.issue_of(&request).await;
}

#[tokio::test]
async fn sighup_with_broken_tls_files_keeps_the_old_certificate() {
    let (mut sandbox, port) = running_with_https_webhook("").await;
    let ca = std::fs::read_to_string(sandbox.path("webhook-ca.pem")).unwrap();
    let before = presented_certificate(port, &ca).await.unwrap();
    std::fs::write(sandbox.path("webhook.key"), "not a key").unwrap();
    send_signal(sandbox.plugin().pid(), "-HUP");
    sandbox
        .wait_for_log("Keeping the current webhook TLS certificate")
        .await;
    assert_eq!(presented_certificate(port, &ca).await.unwrap(), before);
}

#[tokio::test]
async fn sighup_loads_a_renewed_identity_without_refresh_identity() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    sandbox
        .teleport
        .write_identity_file(
            PLUGIN_USER,
            &sandbox.path("auth_id"),
            IdentityOptions::default().with_key(KeyFlavour::Pkcs8Ecdsa),
        )
        .unwrap();
    send_signal(sandbox.plugin().pid(), "-HUP");
    sandbox
        .wait_for_log("Loaded renewed Teleport credentials")
        .await;
    let request = sandbox.create_request("after identity reload");
    sandbox.issue_of(&request).await;
}

#[tokio::test]
async fn json_logs_parse_and_lines_about_a_request_carry_its_id_and_issue_key() {
    let mut sandbox = Sandbox::with(SandboxOptions {
        extra_config: "format = \"json\"\n".into(),
        ..SandboxOptions::default()
    })
    .await;
    sandbox.start_plugin().await;
    let request = sandbox.create_request("json");
    let issue = sandbox.issue_of(&request).await;
    sandbox
        .teleport
        .set_state_as("admin", &request, RequestState::Denied, "no", "")
        .unwrap();
    sandbox.wait_for_status(&issue.id, "Denied").await;
    sandbox.plugin().terminate().await;

    let log = sandbox.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
        })
        .collect();
    assert!(lines.len() > 5, "{log}");
    for line in &lines {
        for field in ["timestamp", "level", "message"] {
            assert!(line.get(field).is_some(), "no {field} in {line}");
        }
    }
    let about_request: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["span"]["request_id"] == request.as_str())
        .collect();
    assert!(!about_request.is_empty(), "no line names {request}:\n{log}");
    let resolution = about_request
        .iter()
        .find(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m == "Successfully resolved the issue")
        })
        .unwrap_or_else(|| panic!("no resolution line about {request}:\n{log}"));
    assert_eq!(resolution["span"]["jira_issue_key"], issue.key.as_str());
    assert!(
        lines
            .iter()
            .any(|line| line["message"] == "Jira Issue created"
                && line["jira_issue_key"] == issue.key.as_str()
                && line["span"]["request_id"] == request.as_str()),
        "{log}"
    );
}

#[tokio::test]
async fn secret_files_open_to_every_user_are_reported_but_group_readable_ones_are_not() {
    use std::os::unix::fs::PermissionsExt;
    let mut sandbox = Sandbox::new().await;
    let identity = sandbox.path("auth_id");
    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o640)).unwrap();
    sandbox.start_plugin().await;
    assert!(
        !sandbox.log().contains("open to every user"),
        "a group-readable identity is fine:\n{}",
        sandbox.log()
    );
    sandbox.plugin().terminate().await;

    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o644)).unwrap();
    sandbox.start_plugin().await;
    sandbox
        .wait_for_log("teleport.identity is open to every user on this machine")
        .await;
}

#[tokio::test]
async fn a_certificate_renewed_on_disk_is_served_without_a_signal() {
    let (sandbox, port) = running_with_https_webhook("tls_files_check_interval = \"1s\"\n").await;

    // As cert-manager or a Secret volume would: new files, no signal.
    let renewed = testkit::pki::WebPki::localhost().unwrap();
    std::fs::write(sandbox.path("webhook.key"), renewed.server().key_pem()).unwrap();
    std::fs::write(sandbox.path("webhook.crt"), renewed.server().cert_pem()).unwrap();
    let served = eventually(|| async {
        presented_certificate(port, &renewed.ca_pem())
            .await
            .is_ok_and(|cert| cert == renewed.server().cert_der().to_vec())
    })
    .await;
    assert!(
        served,
        "the renewed certificate was never served:\n{}",
        sandbox.log()
    );
    assert!(!sandbox.log().contains("Received SIGHUP"));
}

/// Points `key = "..."` in the config at a file holding `value`, as an operator keeping secrets
/// in files would.
fn secret_in_file(sandbox: &Sandbox, section: &str, key: &str, value: &str) -> std::path::PathBuf {
    let path = sandbox.path(&format!("{key}.secret"));
    std::fs::write(&path, format!("{value}\n")).unwrap();
    let config = std::fs::read_to_string(&sandbox.config_path).unwrap();
    let config = match config
        .lines()
        .find(|line| line.starts_with(&format!("{key} =")))
    {
        Some(line) => config.replace(line, &format!("{key} = {:?}", path.display().to_string())),
        None => config.replace(
            &format!("[{section}]\n"),
            &format!("[{section}]\n{key} = {:?}\n", path.display().to_string()),
        ),
    };
    std::fs::write(&sandbox.config_path, config).unwrap();
    path
}

#[tokio::test]
async fn sighup_rereads_a_rotated_jira_api_token_from_its_file() {
    let mut sandbox = Sandbox::new().await;
    let plugin_user = sandbox.jira.plugin_user();
    let token_file = secret_in_file(
        &sandbox,
        "jira",
        "api_token",
        plugin_user.token.as_deref().unwrap(),
    );
    sandbox.start_plugin().await;

    // The old token is revoked in Jira and the new one written where the config points.
    sandbox
        .jira
        .add_user(plugin_user.clone().with_token("rotated-token"));
    std::fs::write(&token_file, "rotated-token\n").unwrap();
    send_signal(sandbox.plugin().pid(), "-HUP");
    sandbox
        .wait_for_log("Reloaded a secret from its file")
        .await;

    let request = sandbox.create_request("after token rotation");
    sandbox.issue_of(&request).await;
    assert!(
        !sandbox.log().contains("rotated-token"),
        "secrets stay out of logs"
    );
}

#[tokio::test]
async fn sighup_rereads_a_rotated_webhook_secret_from_its_file() {
    let mut sandbox = Sandbox::new().await;
    let secret_file = secret_in_file(&sandbox, "http", "webhook_secret", "first secret");
    sandbox.sign_webhooks_with("first secret");
    sandbox.start_plugin().await;

    // Jira's webhook is given a new secret, and so is the file.
    sandbox.sign_webhooks_with("second secret");
    std::fs::write(&secret_file, "second secret\n").unwrap();
    send_signal(sandbox.plugin().pid(), "-HUP");
    sandbox
        .wait_for_log("Reloaded a secret from its file")
        .await;

    let request = sandbox.create_request("after secret rotation");
    let issue = sandbox.issue_of(&request).await;
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    // The scan is minutes away: only an accepted webhook approves the request this fast.
    sandbox
        .wait_for_state(&request, RequestState::Approved)
        .await;
    assert!(
        !sandbox.log().contains("without a valid X-Hub-Signature"),
        "{}",
        sandbox.log()
    );
}

#[tokio::test]
async fn a_rotated_basic_auth_password_file_is_picked_up_without_a_signal() {
    let mut sandbox = Sandbox::new().await;
    let file = sandbox.path("basic_auth_password");
    std::fs::write(&file, "first password\n").unwrap();
    let mut config = std::fs::read_to_string(&sandbox.config_path)
        .unwrap()
        .replace("[http]\n", "[http]\ntls_files_check_interval = \"1s\"\n");
    config.push_str(&format!(
        "\n[http.basic_auth]\nuser = \"jira\"\npassword_file = {:?}\n",
        file.display().to_string()
    ));
    std::fs::write(&sandbox.config_path, config).unwrap();
    sandbox.start_plugin().await;
    let status_url = format!("{}status", sandbox.webhook_url);
    let status_with = |password: &'static str| {
        let url = status_url.clone();
        async move {
            reqwest::Client::new()
                .get(&url)
                .basic_auth("jira", Some(password))
                .send()
                .await
                .map(|answer| answer.status().as_u16())
                .unwrap_or(0)
        }
    };
    assert_eq!(status_with("first password").await, 200);

    // The mounted Secret is rotated in place; no SIGHUP.
    std::fs::write(&file, "second password\n").unwrap();
    sandbox
        .wait_for_log("Reloaded a secret from its file")
        .await;
    assert_eq!(status_with("second password").await, 200);
    assert_eq!(status_with("first password").await, 401);
    assert!(
        !sandbox.log().contains("second password"),
        "secrets stay out of logs"
    );
}
