//! `teleport-jira check`: verifies a production config before going live, without side effects:
//! the config, the credentials and their expiry, Teleport and the plugin role's permissions, Jira,
//! its token, project, issue type, permissions and workflow statuses, and the webhook certificate.
//! One line per check, `OK`, `WARN` or `FAIL` with the fix; the caller exits 1 if any failed (a
//! warning alone keeps 0).

use std::path::Path;

use time::OffsetDateTime;

use crate::config::Config;
use crate::jira::{JiraAuth, JiraClient, JiraClientOptions, JiraError};
use crate::teleport::{TeleportClient, TeleportError};

use crate::jira::same_name;
use crate::startup::JIRA_PERMISSIONS;
/// Credentials that expire sooner than this, and are not renewed in place, fail the check.
const MIN_CREDENTIAL_LIFETIME: time::Duration = time::Duration::minutes(15);
/// A request id that cannot exist, for permission probes that must not change anything.
const PROBE_REQUEST_ID: &str = "00000000-0000-4000-8000-000000000000";

/// Collects and prints check results.
#[derive(Default)]
struct Report {
    failed: usize,
}

impl Report {
    fn ok(&mut self, check: &str, detail: impl std::fmt::Display) {
        println!("OK   {check}: {detail}");
    }

    /// Worth fixing, but the plugin works: the exit code stays 0.
    fn warn(&mut self, check: &str, problem: impl std::fmt::Display, fix: &str) {
        println!("WARN {check}: {problem}. Fix: {fix}");
    }

    fn fail(&mut self, check: &str, problem: impl std::fmt::Display, fix: &str) {
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
    check_teleport(&config, &mut report).await;
    check_jira(&config, &mut report).await;
    report.failed == 0
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

async fn check_teleport(config: &Config, report: &mut Report) {
    let credentials = match crate::startup::load_credentials(&config.teleport.credentials) {
        Ok((credentials, _)) => credentials,
        Err(err) => {
            report.fail("credentials", err, "sign new credentials with `tctl auth sign` (or let tbot renew them) and check the path in [teleport]");
            return;
        }
    };
    let left = credentials.info.not_after - OffsetDateTime::now_utc();
    let until = credentials.info.valid_until();
    let expiry = format!(
        "{} valid until {until} (in {} min)",
        credentials.info.user,
        left.whole_minutes()
    );
    let renewed = matches!(
        config.teleport.credentials,
        crate::config::CredentialSource::IdentityFile {
            refresh: Some(_),
            ..
        }
    );
    if left < MIN_CREDENTIAL_LIFETIME && !renewed {
        report.fail(
            "credentials",
            format!("{expiry}: about to expire"),
            "sign credentials with a longer TTL, or use tbot with refresh_identity = true",
        );
    } else {
        report.ok("credentials", expiry);
    }
    let client = match TeleportClient::connect(&config.teleport.addr, &credentials).await {
        Ok((client, ping)) => {
            report.ok(
                "teleport",
                format!(
                    "{} answers ({}, cluster {}, version {})",
                    config.teleport.addr,
                    client.route(),
                    ping.cluster_name,
                    ping.server_version
                ),
            );
            client
        }
        Err(err) => {
            report.fail("teleport", err, "check teleport.addr (Auth Service host:3025 or Proxy host:443) and that this host can reach it");
            return;
        }
    };
    check_teleport_permissions(&client, report).await;
}

/// Probes each RPC the plugin needs with a request id that cannot exist: Teleport checks the
/// caller's permissions before looking the request up, so "not found" means "allowed".
async fn check_teleport_permissions(client: &TeleportClient, report: &mut Report) {
    let role_fix =
        "give the plugin's role access_request list, read, update and access_plugin_data update";
    let probes: [(&str, Result<(), TeleportError>); 4] = [
        (
            "list access requests",
            client.access_request(PROBE_REQUEST_ID).await.map(drop),
        ),
        (
            "read plugin data",
            client
                .plugin_data(PROBE_REQUEST_ID, crate::plugin_data::PLUGIN_NAME)
                .await
                .map(drop),
        ),
        (
            "update plugin data",
            client
                .update_plugin_data(
                    PROBE_REQUEST_ID,
                    crate::plugin_data::PLUGIN_NAME,
                    Default::default(),
                    crate::plugin_data::PluginData::absent(),
                )
                .await,
        ),
        (
            "update access requests",
            client
                .set_access_request_state(
                    PROBE_REQUEST_ID,
                    teleport_proto::types::RequestState::Approved,
                    "",
                    "jira:check",
                )
                .await,
        ),
    ];
    for (what, outcome) in probes {
        match outcome {
            Ok(()) | Err(TeleportError::NotFound(_)) => {
                report.ok("teleport role", format!("may {what}"))
            }
            Err(err @ TeleportError::AccessDenied(_)) => {
                report.fail("teleport role", format!("may not {what}: {err}"), role_fix)
            }
            Err(err) => report.fail(
                "teleport role",
                format!("cannot tell whether it may {what}: {err}"),
                "check that Teleport is healthy and retry",
            ),
        }
    }
}

async fn check_jira(config: &Config, report: &mut Report) {
    let auth = JiraAuth::from_config(&config.jira);
    let options = JiraClientOptions {
        base_url: config.jira.url.clone(),
        auth,
        max_concurrent_calls: 4,
        max_calls_per_second: None,
    };
    let jira = match JiraClient::new(options) {
        Ok(jira) => jira,
        Err(err) => {
            return report.fail("jira", err, "check the system trust store (SSL_CERT_FILE)");
        }
    };
    match jira.myself().await {
        Ok(()) => report.ok(
            "jira",
            format!("{} answers and accepts the credentials", config.jira.url),
        ),
        Err(err) => {
            let fix = match err.status() {
                Some(401 | 403) => {
                    "check jira.username and jira.api_token (Jira Data Center personal access tokens need jira.auth = \"bearer\")"
                }
                _ => {
                    "check jira.url (the site address, with any path prefix) and that this host trusts its certificate"
                }
            };
            return report.fail("jira", err, fix);
        }
    }
    let project = &config.jira.project;
    let issue_types = match jira.project(project).await {
        Ok(found) => {
            report.ok("jira project", format!("{} ({})", found.key, found.name));
            found.issue_types
        }
        Err(err) => return report.fail("jira project", err, "set jira.project to the project key (e.g. \"PROJ\"), not its name, and let the Jira user browse it"),
    };
    let issue_type = &config.jira.issue_type;
    if issue_types.is_empty() || issue_types.iter().any(|t| same_name(&t.name, issue_type)) {
        report.ok("jira issue type", issue_type);
    } else {
        let names: Vec<&str> = issue_types.iter().map(|t| t.name.as_str()).collect();
        report.fail(
            "jira issue type",
            format!(
                "{issue_type:?} is not an issue type of {project} (it has {})",
                names.join(", ")
            ),
            "set jira.issue_type to one of those",
        );
    }
    match jira.my_permissions(project, &JIRA_PERMISSIONS).await {
        Ok(granted) => {
            for key in JIRA_PERMISSIONS {
                if granted
                    .permissions
                    .get(key)
                    .is_some_and(|p| p.have_permission)
                {
                    report.ok("jira permission", key);
                } else {
                    report.fail(
                        "jira permission",
                        format!("the Jira user lacks {key} in {project}"),
                        "grant it in the project's permission scheme",
                    );
                }
            }
        }
        Err(err) => report.fail(
            "jira permission",
            err,
            "check that the Jira user may view its own permissions",
        ),
    }
    check_approver_groups(&jira, config, report).await;
    check_workflow(&jira, config, report).await;
}

/// Each `approver_groups` entry names a group whose members the plugin can read.
async fn check_approver_groups(jira: &JiraClient, config: &Config, report: &mut Report) {
    for group in &config.jira.approver_groups {
        match jira.group_exists(group).await {
            Ok(true) => report.ok("jira approver group", format!("{group:?} exists and can be read")),
            Ok(false) => report.fail(
                "jira approver group",
                format!("no Jira group named {group:?}"),
                "correct the name in [jira] approver_groups (Jira group names, as in Jira's user management)",
            ),
            Err(err) => report.fail(
                "jira approver group",
                format!("cannot read group {group:?}: {err}"),
                "give the Jira user the Browse users and groups global permission",
            ),
        }
    }
}

async fn check_workflow(jira: &JiraClient, config: &Config, report: &mut Report) {
    let statuses = &config.jira.statuses;
    let available = match jira
        .project_statuses(&config.jira.project, &config.jira.issue_type)
        .await
    {
        Ok(available) => available,
        Err(err @ JiraError::Status { status: 404, .. }) => {
            return report.ok(
                "jira workflow",
                format!("not verified: this Jira cannot list a project's statuses ({err})"),
            );
        }
        Err(err) => {
            return report.fail(
                "jira workflow",
                err,
                "check that the Jira user may browse the project",
            );
        }
    };
    let wanted = [
        ("pending", &statuses.pending),
        ("approved", &statuses.approved),
        ("denied", &statuses.denied),
        ("expired", &statuses.expired),
    ];
    for (role, name) in wanted {
        if available.iter().any(|s| same_name(s, name)) {
            report.ok("jira workflow", format!("{role} status {name:?} exists"));
        } else {
            report.fail(
                "jira workflow",
                format!("no status named {name:?} for {role} (the workflow has {})", available.join(", ")),
                &format!("add it to the workflow, or map it with [jira.statuses] {role} = \"<your status>\""),
            );
        }
    }
    check_transitions(jira, config, report).await;
    // Optional, as in the Go plugin: without it a promoted request gets its comment only.
    let promoted = &statuses.promoted;
    if available.iter().any(|s| same_name(s, promoted)) {
        report.ok(
            "jira workflow",
            format!("promoted status {promoted:?} exists"),
        );
    } else {
        report.ok(
            "jira workflow",
            format!(
                "no status named {promoted:?}: promoted requests get their comment and the card keeps its status (optional; map one with [jira.statuses] promoted)"
            ),
        );
    }
}

/// That the plugin can move a card from the pending status to each status it moves cards to,
/// read from the transitions of an issue that sits in the pending status (Jira offers a
/// workflow's transitions only on an issue, and `check` creates none).
async fn check_transitions(jira: &JiraClient, config: &Config, report: &mut Report) {
    let statuses = &config.jira.statuses;
    let pending = &statuses.pending;
    let jql = format!(
        "project = \"{}\" AND status = \"{pending}\" ORDER BY created DESC",
        config.jira.project
    );
    let sample = match jira.search(&jql, 1).await {
        Ok(hits) => hits.into_iter().next(),
        Err(err) => {
            return report.ok(
                "jira transitions",
                format!("not verified: the search for an issue in {pending:?} failed ({err})"),
            );
        }
    };
    let Some(hit) = sample else {
        return report.ok("jira transitions", format!("not verified: no issue sits in {pending:?} yet to read the workflow's transitions from; run check again once one does"));
    };
    let issue = match jira.issue(&hit.id).await {
        Ok(issue) => issue,
        Err(err) => {
            return report.fail(
                "jira transitions",
                err,
                "check that the Jira user may browse the project",
            );
        }
    };
    for (role, name) in [
        ("approved", &statuses.approved),
        ("denied", &statuses.denied),
        ("expired", &statuses.expired),
    ] {
        if issue
            .transitions
            .iter()
            .any(|t| same_name(&t.to.name, name))
        {
            report.ok(
                "jira transitions",
                format!("from {pending:?} a transition leads to {name:?} ({role})"),
            );
        } else {
            report.fail(
                "jira transitions",
                format!("no transition leads from {pending:?} to {name:?} ({role}) on {}", issue.key),
                &format!("add a transition from {pending} to {name} to the project's workflow (the plugin moves cards there when Teleport decides)"),
            );
        }
    }
}
