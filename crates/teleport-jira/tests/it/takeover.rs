//! Switching from the Go plugin: state it left behind (plugin data, issues) is picked up as is,
//! and work that happened while no plugin ran is caught up at start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use teleport_proto::types::RequestState;

use crate::support::*;

/// Creates an issue exactly as the Go plugin does (its recorded request body), as the plugin user.
async fn create_issue_like_the_go_plugin(sandbox: &Sandbox, request_id: &str) -> (String, String) {
    let ca = reqwest::Certificate::from_pem(sandbox.jira.ca_pem().unwrap().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let user = sandbox.jira.plugin_user();
    let body = serde_json::json!({
        "fields": {
            "issuetype": {"name": "Task"},
            "project": {"key": "PROJ"},
            "summary": format!("{REQUESTER} requested editor"),
            "description": format!("User *{REQUESTER}* requested an access ...\n\nRequest ID: *{request_id}*\n"),
        },
        "properties": [{"key": "teleportAccessRequestId", "value": request_id}]
    });
    let created: serde_json::Value = client
        .post(format!("{}/rest/api/2/issue", sandbox.jira.url()))
        .basic_auth(user.email.unwrap(), user.token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn cluster_served_by_the_go_plugin_is_taken_over_without_a_duplicate_issue() {
    let mut sandbox = Sandbox::new().await;
    let id = sandbox.create_request(REASON);
    let (issue_id, issue_key) = create_issue_like_the_go_plugin(&sandbox, &id).await;
    let go_data = sandbox.go_plugin_data(&id, Some((&issue_id, &issue_key)));
    sandbox.teleport.set_plugin_data(&id, "jira", go_data);

    sandbox.start_plugin().await;
    sandbox
        .jira
        .transition_as(&issue_id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    sandbox
        .wait_for_comment(&issue_id, "Access request has been approved")
        .await;
    assert_eq!(
        sandbox.jira.created_issue_count(),
        1,
        "no second issue for a request the Go plugin served"
    );
    assert_eq!(sandbox.plugin_data(&id)["issue_id"], issue_id);
}

#[tokio::test]
async fn requests_created_while_no_plugin_ran_get_their_issue_at_start() {
    let mut sandbox = Sandbox::new().await;
    let ids: Vec<String> = (0..3).map(|_| sandbox.create_request(REASON)).collect();
    sandbox.start_plugin().await;
    for id in &ids {
        let issue = sandbox.issue_of(id).await;
        assert_eq!(issue.status, "Pending");
    }
    assert_eq!(sandbox.jira.created_issue_count(), 3);
}

#[tokio::test]
async fn resolution_that_happened_while_no_plugin_ran_reaches_jira_at_start() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    let status = sandbox.plugin().terminate().await;
    assert!(
        status.success(),
        "SIGTERM ends the plugin cleanly: {status:?}"
    );

    sandbox
        .teleport
        .set_state_as(
            "admin",
            &id,
            RequestState::Approved,
            "while you were out",
            "",
        )
        .unwrap();
    sandbox.start_plugin().await;
    let issue = sandbox.wait_for_status(&issue.id, "Approved").await;
    assert!(
        issue
            .comment_bodies()
            .contains(&"Access request has been approved\nReason: while you were out")
    );
}

#[tokio::test]
async fn request_deleted_while_no_plugin_ran_expires_its_issue_at_start() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox.plugin().kill().await;
    sandbox.teleport.delete_access_request(&id).unwrap();
    sandbox.start_plugin().await;
    let issue = sandbox.wait_for_status(&issue.id, "Expired").await;
    assert!(
        issue
            .comment_bodies()
            .contains(&"Access request has been expired\n")
    );
}
