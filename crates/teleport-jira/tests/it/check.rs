//! `teleport-jira check` against fakes that are misconfigured in each way an operator can get wrong:
//! one failing line each, naming the fix, and exit code 1; all OK and exit 0 otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit::jira::{FakeJiraOptions, Permission, StatusCategory, StatusSpec};
use testkit::teleport::{IdentityOptions, UserSpec, access_monitoring_rule};

use crate::support::*;

/// Runs `check` on the sandbox's config; returns its exit code and its lines by their prefix.
async fn run_check(sandbox: &Sandbox) -> (Option<i32>, impl Fn(&str) -> Vec<String>) {
    let output = tokio::process::Command::new(BINARY)
        .args(["check", "--insecure-no-tls", "--config"])
        .arg(&sandbox.config_path)
        .env("SSL_CERT_FILE", sandbox.path("jira-ca.pem"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines = move |prefix: &str| {
        stdout
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    (output.status.code(), lines)
}

/// Runs `check`; returns (exit code, the OK lines, the FAIL lines), and fails on any WARN line.
async fn check(sandbox: &Sandbox) -> (Option<i32>, Vec<String>, Vec<String>) {
    let (code, lines) = run_check(sandbox).await;
    assert!(
        lines("WARN ").is_empty(),
        "unexpected warnings: {:#?}",
        lines("WARN ")
    );
    (code, lines("OK "), lines("FAIL "))
}

/// Runs `check`; returns (exit code, the WARN lines).
async fn check_warnings(sandbox: &Sandbox) -> (Option<i32>, Vec<String>) {
    let (code, lines) = run_check(sandbox).await;
    (code, lines("WARN "))
}

#[tokio::test]
async fn an_open_webhook_is_one_warning_with_the_fix_and_exit_code_0() {
    let sandbox = Sandbox::new().await;
    edit_config(
        &sandbox,
        "listen_addr = \"127.0.0.1:",
        "listen_addr = \"0.0.0.0:",
    );
    let (code, warnings) = check_warnings(&sandbox).await;
    assert_eq!(code, Some(0), "{warnings:#?}");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("webhook_secret"), "{}", warnings[0]);

    // Signed deliveries: no warning.
    edit_config(
        &sandbox,
        "[http]\n",
        "[http]\nwebhook_secret = \"s3cret\"\n",
    );
    let (code, warnings) = check_warnings(&sandbox).await;
    assert_eq!((code, warnings), (Some(0), Vec::<String>::new()));
}

fn edit_config(sandbox: &Sandbox, from: &str, to: &str) {
    let config = std::fs::read_to_string(&sandbox.config_path).unwrap();
    assert!(config.contains(from), "{from:?} not in config");
    std::fs::write(&sandbox.config_path, config.replace(from, to)).unwrap();
}

/// Runs `check` expecting exit code 1 and exactly one FAIL line; returns that line.
async fn the_only_failure(sandbox: &Sandbox) -> String {
    let (code, _, mut failures) = check(sandbox).await;
    assert_eq!(code, Some(1), "{failures:#?}");
    assert_eq!(failures.len(), 1, "{failures:#?}");
    failures.remove(0)
}

#[tokio::test]
async fn a_correct_setup_passes_every_check_and_changes_nothing() {
    let sandbox = Sandbox::new().await;
    let (code, ok, failures) = check(&sandbox).await;
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(code, Some(0));
    assert!(
        ok.iter()
            .any(|l| l.contains("credentials") && l.contains("valid until")),
        "{ok:#?}"
    );
    assert!(
        ok.iter()
            .any(|l| l.contains("jira workflow") && l.contains("Expired")),
        "{ok:#?}"
    );
    assert_eq!(sandbox.jira.created_issue_count(), 0);
    // Reads only: GETs, and JQL search (a POST that changes nothing).
    let writes: Vec<_> = sandbox
        .jira
        .call_log()
        .into_iter()
        .filter(|c| !c.path.ends_with("/search/jql"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(
        ok.iter()
            .any(|l| l.starts_with("OK   jira transitions: not verified")),
        "{ok:#?}"
    );
    assert!(sandbox.teleport.audit_events().is_empty());
}

#[tokio::test]
async fn wrong_jira_token_fails_one_check_naming_the_keys() {
    let sandbox = Sandbox::new().await;
    edit_config(&sandbox, "api_token = \"xyz\"", "api_token = \"wrong\"");
    let line = the_only_failure(&sandbox).await;
    assert!(
        line.starts_with("FAIL jira:") && line.contains("jira.api_token"),
        "{line}"
    );
}

#[tokio::test]
async fn unknown_project_fails_one_check() {
    let sandbox = Sandbox::new().await;
    edit_config(&sandbox, "project = \"PROJ\"", "project = \"NOPE\"");
    let line = the_only_failure(&sandbox).await;
    assert!(
        line.starts_with("FAIL jira project:") && line.contains("jira.project"),
        "{line}"
    );
}

#[tokio::test]
async fn unknown_issue_type_fails_one_check_listing_the_types() {
    let sandbox = Sandbox::with(SandboxOptions {
        issue_type: Some("Incident".into()),
        ..Default::default()
    })
    .await;
    let line = the_only_failure(&sandbox).await;
    assert!(
        line.starts_with("FAIL jira issue type:") && line.contains("Task"),
        "{line}"
    );
}

#[tokio::test]
async fn missing_jira_permission_fails_one_check() {
    let sandbox = Sandbox::new().await;
    let plugin = sandbox.jira.plugin_user();
    sandbox
        .jira
        .set_user_permissions(
            &plugin.account_id,
            [
                Permission::BrowseProjects,
                Permission::CreateIssues,
                Permission::TransitionIssues,
            ],
        )
        .unwrap();
    let line = the_only_failure(&sandbox).await;
    assert!(
        line.contains("ADD_COMMENTS") && line.contains("permission scheme"),
        "{line}"
    );
}

#[tokio::test]
async fn workflow_without_a_mapped_status_fails_one_check_naming_the_mapping() {
    let statuses = vec![
        StatusSpec::new("Pending", StatusCategory::ToDo),
        StatusSpec::new("Approved", StatusCategory::Done),
        StatusSpec::new("Declined", StatusCategory::Done),
        StatusSpec::new("Expired", StatusCategory::Done),
    ];
    let sandbox = Sandbox::with(SandboxOptions {
        jira: FakeJiraOptions {
            tls: true,
            statuses,
            ..FakeJiraOptions::default()
        },
        ..Default::default()
    })
    .await;
    let line = the_only_failure(&sandbox).await;
    assert!(
        line.contains("\"Denied\"") && line.contains("[jira.statuses] denied"),
        "{line}"
    );

    // Mapping the status fixes it.
    edit_config(
        &sandbox,
        "project = \"PROJ\"",
        "project = \"PROJ\"\n\n[jira.statuses]\ndenied = \"Declined\"\n",
    );
    let (code, _, failures) = check(&sandbox).await;
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn plugin_role_without_update_rights_fails_the_role_checks() {
    let sandbox = Sandbox::new().await;
    sandbox
        .teleport
        .add_user("reader", UserSpec::reviewer(&["editor"]));
    let identity = sandbox.path("reader_id");
    sandbox
        .teleport
        .write_identity_file("reader", &identity, IdentityOptions::default())
        .unwrap();
    edit_config(
        &sandbox,
        &sandbox.path("auth_id").display().to_string(),
        &identity.display().to_string(),
    );
    let (code, _, failures) = check(&sandbox).await;
    assert_eq!(code, Some(1));
    assert!(!failures.is_empty());
    assert!(
        failures.iter().all(
            |l| l.starts_with("FAIL teleport role:") && l.contains("access_plugin_data update")
        ),
        "{failures:#?}"
    );
}

#[tokio::test]
async fn expired_credentials_fail_one_check() {
    let sandbox = Sandbox::new().await;
    sandbox
        .teleport
        .write_identity_file(
            PLUGIN_USER,
            &sandbox.path("auth_id"),
            IdentityOptions::expired(),
        )
        .unwrap();
    let line = the_only_failure(&sandbox).await;
    assert!(
        line.starts_with("FAIL credentials:") && line.contains("tctl auth sign"),
        "{line}"
    );
}

#[tokio::test]
async fn unreachable_teleport_fails_one_check() {
    let sandbox = Sandbox::new().await;
    sandbox.teleport.stop().await;
    let line = the_only_failure(&sandbox).await;
    assert!(
        line.starts_with("FAIL teleport:") && line.contains("teleport.addr"),
        "{line}"
    );
}

#[tokio::test]
async fn a_workflow_without_a_transition_to_a_mapped_status_fails_one_check() {
    let mut statuses = StatusSpec::defaults();
    statuses[3] = StatusSpec::new("Expired", StatusCategory::Done).without_transition();
    let mut sandbox = Sandbox::with(SandboxOptions {
        jira: FakeJiraOptions {
            tls: true,
            statuses,
            ..FakeJiraOptions::default()
        },
        ..Default::default()
    })
    .await;
    // An issue in Pending to read the workflow's transitions from, made by the plugin itself.
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    sandbox.issue_of(&id).await;
    sandbox.plugin().terminate().await;

    let line = the_only_failure(&sandbox).await;
    assert!(
        line.starts_with("FAIL jira transitions:")
            && line.contains("\"Expired\"")
            && line.contains("add a transition from Pending to Expired"),
        "{line}"
    );
}

#[tokio::test]
async fn an_approver_group_jira_does_not_have_fails_one_check() {
    let sandbox = Sandbox::new().await;
    sandbox.jira.add_user(
        testkit::jira::JiraUser::new("LEAD", "Team Lead").in_groups(["access-approvers"]),
    );
    edit_config(
        &sandbox,
        "project = \"PROJ\"",
        "project = \"PROJ\"\napprover_groups = [\"access-approvers\", \"acess-aprovers\"]",
    );
    let line = the_only_failure(&sandbox).await;
    assert!(
        line.starts_with("FAIL jira approver group:")
            && line.contains("\"acess-aprovers\"")
            && line.contains("approver_groups"),
        "{line}"
    );
}

async fn routing_sandbox(may_read_rules: bool) -> Sandbox {
    let routing_on = "\n[access_monitoring_rules]\nenabled = true\n";
    Sandbox::with_rule_targets(routing_on, may_read_rules).await
}

#[tokio::test]
async fn routing_check_lists_the_rules_and_checks_every_project_they_route_to() {
    let sandbox = routing_sandbox(true).await;
    for (name, recipients) in [
        ("db", &["OPS/Bug", "label:db-access"][..]),
        ("ghost", &["GHOST"][..]),
        ("quiet", &["none"][..]),
    ] {
        sandbox
            .teleport
            .upsert_access_monitoring_rule(access_monitoring_rule(name, "jira", "true", recipients))
            .unwrap();
    }
    let (code, ok, failures) = check(&sandbox).await;
    assert_eq!(code, Some(1), "{failures:#?}");
    for expected in [
        "OK   access monitoring rules: may read them; 3 apply (notification name \"jira\")",
        "OK   access monitoring rules: may read requesters' traits",
        "OK   access monitoring rule: db -> OPS/Bug, label:db-access",
        "OK   access monitoring rule: quiet -> none",
        "OK   jira project (rule db): OPS (Operations)",
        "OK   jira issue type (rule db): Bug",
        "OK   jira project: PROJ (The Project)",
    ] {
        assert!(
            ok.iter().any(|line| line == expected),
            "no {expected:?} in {ok:#?}"
        );
    }
    assert!(
        ok.iter()
            .any(|l| l.starts_with("OK   jira permission (rule db): ")),
        "{ok:#?}"
    );
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].starts_with("FAIL jira project (rule ghost): ")
            && failures[0].contains("correct the project key in the rule's recipients"),
        "{}",
        failures[0]
    );
}

#[tokio::test]
async fn routing_check_fails_when_the_plugin_may_not_read_rules_and_warns_about_broken_ones() {
    let sandbox = routing_sandbox(false).await;
    let failure = the_only_failure(&sandbox).await;
    assert!(
        failure.starts_with("FAIL access monitoring rules: may not read them")
            && failure.contains("access_monitoring_rule: [read, list]"),
        "{failure}"
    );

    sandbox
        .teleport
        .add_user(PLUGIN_USER, UserSpec::plugin().with_rules_access());
    sandbox
        .teleport
        .upsert_access_monitoring_rule(access_monitoring_rule(
            "broken",
            "jira",
            "access_request.spec.roles.(",
            &["OPS", "#chan"],
        ))
        .unwrap();
    let (code, warnings) = check_warnings(&sandbox).await;
    assert_eq!(code, Some(0), "{warnings:#?}");
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].contains("broken never matches"),
        "{}",
        warnings[0]
    );
    assert!(warnings[1].contains("\"#chan\""), "{}", warnings[1]);
}

#[tokio::test]
async fn people_modes_report_the_permissions_they_need_and_warn_when_one_lacks() {
    let sandbox = Sandbox::with(SandboxOptions {
        extra_config: "\n[jira.people]\nrequester = \"reporter\"\nsuggested_reviewers = \"watcher\"\nemail_lookup = true\n".into(),
        ..SandboxOptions::default()
    })
    .await;
    // Without the right to read users, the traits are a warning of their own.
    let (code, warnings) = check_warnings(&sandbox).await;
    assert_eq!(code, Some(0), "{warnings:#?}");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("may not read users' traits"),
        "{}",
        warnings[0]
    );

    sandbox
        .teleport
        .add_user(PLUGIN_USER, UserSpec::plugin().with_rules_access());
    let (code, ok, failed) = check(&sandbox).await;
    assert_eq!((code, failed), (Some(0), Vec::<String>::new()));
    for key in [
        "MANAGE_WATCHERS",
        "MODIFY_REPORTER",
        "USER_PICKER",
        "may read users' traits",
    ] {
        assert!(ok.iter().any(|line| line.contains(key)), "{key}: {ok:#?}");
    }

    let plugin = sandbox.jira.plugin_user().account_id;
    let without: Vec<Permission> = Permission::ALL
        .into_iter()
        .filter(|p| *p != Permission::ModifyReporter)
        .collect();
    sandbox.jira.set_user_permissions(&plugin, without).unwrap();
    let (code, warnings) = check_warnings(&sandbox).await;
    assert_eq!(code, Some(0), "{warnings:#?}");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("MODIFY_REPORTER") && warnings[0].contains("requester"),
        "{}",
        warnings[0]
    );
}
