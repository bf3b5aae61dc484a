//! `teleport-jira check`: verifies a production config before going live, without side effects:
//! the config, the credentials and their expiry, Teleport and the plugin role's permissions, the
//! Access Monitoring Rules it would route by, Jira, its token, and for the configured project and
//! every project a rule routes to: the project, issue type, permissions and workflow; and the
//! webhook certificate. One line per check, `OK`, `WARN` or `FAIL` with the fix; the caller exits
//! 1 if any failed (a warning alone keeps 0).
//!
//! - `teleport_side`: credentials, the connection and the role's permissions.
//! - `rules_side`: whether rules can be read, the rules that apply, the targets they name.
//! - `jira_side`: the token, then each target's project, issue type, permissions and workflow.
//! - `oncall_side`: with `[jsm_oncall]` on, the cloud id, the JSM token, each default schedule and
//!   the right to submit reviews.

mod jira_side;
mod oncall_side;
mod rules_side;
mod teleport_side;

use std::path::Path;

use crate::config::Config;

/// Collects and prints check results.
#[derive(Default)]
pub(super) struct Report {
    failed: usize,
}

impl Report {
    pub(super) fn ok(&mut self, check: &str, detail: impl std::fmt::Display) {
        println!("OK   {check}: {detail}");
    }

    /// Worth fixing, but the plugin works: the exit code stays 0.
    pub(super) fn warn(&mut self, check: &str, problem: impl std::fmt::Display, fix: &str) {
        println!("WARN {check}: {problem}. Fix: {fix}");
    }

    pub(super) fn fail(&mut self, check: &str, problem: impl std::fmt::Display, fix: &str) {
        self.failed += 1;
        println!("FAIL {check}: {problem}. Fix: {fix}");
    }
}

/// Runs every check; returns whether all passed.
pub async fn run(path: &Path, insecure_no_tls: bool) -> bool {
    let mut report = Report::default();
    let config = match Config::load(path, insecure_no_tls) {
        Ok((config, warnings)) => {
            let note = if warnings.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} warning(s): {})",
                    warnings.len(),
                    warnings
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            };
            report.ok("config", format!("{} is valid{note}", path.display()));
            config
        }
        Err(err) => {
            report.fail("config", err, "correct the value named above; `teleport-jira configure` prints a commented example");
            return false;
        }
    };
    check_webhook(&config, &mut report);
    let teleport = teleport_side::check(&config, &mut report).await;
    let routed = match &teleport {
        Some(client) => rules_side::check(&config, client, &mut report).await,
        None => Vec::new(),
    };
    jira_side::check(&config, &routed, &mut report).await;
    oncall_side::check(&config, teleport.as_ref(), &mut report).await;
    report.failed == 0
}

/// Where issues may be made: the configured project and issue type, or a rule's.
pub(super) struct Target {
    pub(super) project: String,
    pub(super) issue_type: String,
    /// The rule that routes here; `None` for the configured target.
    pub(super) rule: Option<String>,
}

fn check_webhook(config: &Config, report: &mut Report) {
    if config.http.disable_webhook {
        report.ok(
            "webhook",
            "disabled; decisions in Jira are found by the periodic scan",
        );
        return;
    }
    match &config.http.tls {
        None => report.ok("webhook", format!("plain HTTP on {} (--insecure-no-tls)", config.http.listen_addr)),
        Some(files) => match crate::listener::tls::tls_config(&files.cert, &files.key, config.http.verify_client_cert) {
            Ok(_) => report.ok("webhook", format!("HTTPS on {} with {}", config.http.listen_addr, files.cert.display())),
            Err(err) => report.fail("webhook", err, "point http.https_cert_file and http.https_key_file at a readable PEM certificate and its key"),
        },
    }
    if crate::startup::webhook_is_open(config) {
        report.warn(
            "webhook",
            format!(
                "anyone who reaches {} can deliver a webhook: it is not signed, nor behind basic auth or client certificates",
                config.http.listen_addr
            ),
            "set http.webhook_secret to the secret of the webhook in Jira (System > WebHooks > Secret), or set http.basic_auth",
        );
    }
}
