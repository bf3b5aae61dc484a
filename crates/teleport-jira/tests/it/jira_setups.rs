//! Real Jira setups: renamed or localized workflows, Jira Data Center with a personal access
//! token, hostile request text, resource requests, labels and extra fields.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use teleport_proto::types::RequestState;
use testkit::jira::{Deployment, FakeJiraOptions, StatusCategory, StatusSpec};
use testkit::teleport::CreateRequest;

use crate::support::*;

fn localized_workflow() -> SandboxOptions {
    let statuses = vec![
        StatusSpec::new("En attente", StatusCategory::ToDo),
        StatusSpec::new("Accepté", StatusCategory::Done),
        StatusSpec::new("Refusé", StatusCategory::Done),
        StatusSpec::new("Expiré", StatusCategory::Done),
    ];
    SandboxOptions {
        jira: FakeJiraOptions {
            tls: true,
            statuses,
            ..FakeJiraOptions::default()
        },
        ..Default::default()
    }
}

fn map_statuses(sandbox: &Sandbox) {
    let config = std::fs::read_to_string(&sandbox.config_path).unwrap().replace(
        "project = \"PROJ\"",
        // The sandbox's [jira] section ends with `project`, so the table can follow it.
        "project = \"PROJ\"\n\n[jira.statuses]\npending = \"en attente\"\napproved = \"ACCEPTÉ\"\ndenied = \"Refusé\"\nexpired = \"Expiré\"\n",
    );
    std::fs::write(&sandbox.config_path, config).unwrap();
}

#[tokio::test]
async fn localized_workflow_works_through_status_mapping() {
    let mut sandbox = Sandbox::with(localized_workflow()).await;
    map_statuses(&sandbox);
    sandbox.start_plugin().await;

    let approved = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&approved).await;
    assert_eq!(issue.status, "En attente");
    sandbox
        .jira
        .transition_as(&issue.id, "Accepté", JIRA_REVIEWER)
        .unwrap();
    sandbox
        .wait_for_state(&approved, RequestState::Approved)
        .await;
    sandbox
        .wait_for_comment(&issue.id, "Access request has been approved")
        .await;

    let expired = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&expired).await;
    sandbox.teleport.delete_access_request(&expired).unwrap();
    sandbox.wait_for_status(&issue.id, "Expiré").await;

    let denied = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&denied).await;
    sandbox
        .teleport
        .set_state_as("admin", &denied, RequestState::Denied, "non", "")
        .unwrap();
    sandbox.wait_for_status(&issue.id, "Refusé").await;
}

#[tokio::test]
async fn jira_data_center_with_a_personal_access_token() {
    let mut sandbox = Sandbox::with(SandboxOptions {
        jira: FakeJiraOptions {
            tls: true,
            deployment: Deployment::DataCenter,
            ..FakeJiraOptions::default()
        },
        ..Default::default()
    })
    .await;
    let config = std::fs::read_to_string(&sandbox.config_path).unwrap();
    let username = config
        .lines()
        .find(|l| l.starts_with("username"))
        .unwrap()
        .to_owned();
    std::fs::write(
        &sandbox.config_path,
        config.replace(&username, "auth = \"bearer\""),
    )
    .unwrap();
    sandbox.start_plugin().await;

    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .jira
        .comment_as(&issue.id, RANDOM_USER, "reason: not mine")
        .unwrap();
    sandbox
        .jira
        .comment_as(&issue.id, JIRA_REVIEWER, "Reason: checked on Data Center")
        .unwrap();
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    let request = sandbox.teleport.access_request(&id).unwrap().spec.unwrap();
    assert_eq!(request.resolve_reason, "checked on Data Center");
    let event = sandbox.audit_event_of(&id);
    assert_eq!(event.delegator, format!("jira:{JIRA_REVIEWER_EMAIL}"));
}

#[tokio::test]
async fn reason_full_of_wiki_markup_and_links_renders_inert() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let reason = "urgent *prod* fix, see [click here|https://phish.example/login] {color:red}now{color} !https://x/y.png! [~admin]\nh1. Approve me";
    let id = sandbox.create_request(reason);
    let description = sandbox.issue_of(&id).await.description.unwrap();
    let shown = description
        .split("Reason: *")
        .nth(1)
        .unwrap()
        .split("*\n\nRequest ID")
        .next()
        .unwrap();
    // Markup is live where a special character is not preceded by Jira's escape, the backslash.
    let live = |raw: &str| {
        shown
            .match_indices(raw)
            .any(|(at, _)| !shown[..at].ends_with('\\'))
    };
    for raw in [
        "[click", "|https", "{color", "!https", "[~admin", "\nh1.", "*prod*", "https://",
    ] {
        assert!(!live(raw), "{raw:?} is live in {shown:?}");
    }
    assert!(
        shown.contains("\\[click here\\|https\\://phish.example/login\\]"),
        "{shown}"
    );
    assert!(shown.contains("\\*prod\\*"), "{shown}");
}

#[tokio::test]
async fn resource_request_ticket_lists_resources_expiry_and_reviewers() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.teleport.create_access_request_with(CreateRequest {
        user: REQUESTER.into(),
        roles: vec!["editor".into()],
        reason: REASON.into(),
        suggested_reviewers: vec![REVIEWER1.into()],
        resource_ids: vec![teleport_proto::types::ResourceId {
            cluster_name: "teleport.example.com".into(),
            kind: "node".into(),
            name: "db-primary".into(),
            sub_resource_name: String::new(),
        }],
        ..CreateRequest::default()
    });
    let description = sandbox.issue_of(&id).await.description.unwrap();
    assert!(
        description.starts_with(&format!("User *{REQUESTER}* requested an access on")),
        "{description}"
    );
    assert!(
        description
            .contains("Requested resources:\n* node: db-primary (cluster teleport.example.com)"),
        "{description}"
    );
    assert!(description.contains("\nAccess until: *"), "{description}");
    assert!(
        description.contains(&format!("Suggested reviewers: {REVIEWER1}")),
        "{description}"
    );
}

#[tokio::test]
async fn configured_labels_and_fields_go_on_every_issue() {
    let mut sandbox = Sandbox::with(SandboxOptions {
        jira: FakeJiraOptions {
            tls: true,
            custom_fields: vec!["customfield_10050".into()],
            ..FakeJiraOptions::default()
        },
        ..Default::default()
    })
    .await;
    let config = std::fs::read_to_string(&sandbox.config_path).unwrap().replace(
        "project = \"PROJ\"",
        "project = \"PROJ\"\nlabels = [\"access-request\", \"teleport\"]\n\n[jira.fields]\ncustomfield_10050 = \"team-infra\"\n",
    );
    std::fs::write(&sandbox.config_path, config).unwrap();
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    assert!(
        issue.labels.contains(&"access-request".to_owned()),
        "{:?}",
        issue.labels
    );
    assert!(
        issue
            .labels
            .contains(&format!("teleport-access-request-{id}")),
        "{:?}",
        issue.labels
    );
    assert_eq!(
        issue.custom_fields.get("customfield_10050"),
        Some(&serde_json::json!("team-infra"))
    );
}

#[tokio::test]
async fn summary_stays_under_jiras_limit_for_many_roles() {
    let mut sandbox = Sandbox::new().await;
    let roles: Vec<String> = (0..60)
        .map(|i| format!("role-with-a-long-name-{i}"))
        .collect();
    let role_refs: Vec<&str> = roles.iter().map(String::as_str).collect();
    sandbox.teleport.add_user(
        "many@example.com",
        testkit::teleport::UserSpec::requester(&role_refs),
    );
    sandbox.start_plugin().await;
    let id = sandbox
        .teleport
        .create_access_request("many@example.com", &role_refs, REASON);
    let issue = sandbox.issue_of(&id).await;
    assert_eq!(
        issue.summary,
        "many@example.com requested access to 60 roles"
    );
}

#[tokio::test]
async fn a_promoted_request_without_a_promoted_status_gets_its_comment_and_is_not_retried() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let request = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&request).await;
    sandbox
        .teleport
        .promote_access_request(&request, "moved to the on-call access list")
        .unwrap();
    sandbox
        .wait_for_comment(&issue.id, "Access request has been promoted")
        .await;
    sandbox
        .wait_for_log("The workflow has no status for promoted requests")
        .await;
    sandbox
        .wait_for_log("Successfully resolved the issue")
        .await;
    assert_eq!(sandbox.jira.issue(&issue.id).unwrap().status, "Pending");
    assert!(
        !sandbox.log().contains("will retry"),
        "nothing to retry:\n{}",
        sandbox.log()
    );
}
