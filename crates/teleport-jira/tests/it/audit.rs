//! The audit file, end to end: one JSON line per resolved request, with its reviews and who
//! decided, written once even when the process stops between appending the line and recording
//! that it did, or between recording that it would and appending.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::Value;
use teleport_proto::types::RequestState;

use crate::support::*;

async fn sandbox_with_audit_file() -> (Sandbox, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.keep().join("audit.jsonl");
    let sandbox = Sandbox::with(SandboxOptions {
        extra_config: format!("\n[audit]\njsonl_path = {:?}\n", path.display().to_string()),
        ..SandboxOptions::default()
    })
    .await;
    (sandbox, path)
}

/// The audit file's lines for `request_id`.
fn lines_of(path: &PathBuf, request_id: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line["request_id"] == request_id)
        .collect()
}

async fn wait_for_mark(sandbox: &Sandbox, request_id: &str, mark: &str) {
    let reached = eventually(|| async {
        sandbox
            .plugin_data(request_id)
            .get("audit")
            .is_some_and(|v| v == mark)
    })
    .await;
    assert!(
        reached,
        "audit never {mark} for {request_id}; plugin log:\n{}",
        sandbox.log()
    );
}

/// Approves a new request by a review in Teleport and waits until its line is recorded written.
async fn approved_and_written(sandbox: &Sandbox) -> String {
    let request = sandbox.create_request(REASON);
    sandbox.issue_of(&request).await;
    sandbox
        .teleport
        .submit_review_as(REVIEWER1, &request, RequestState::Approved, "okay")
        .unwrap();
    wait_for_mark(sandbox, &request, "written").await;
    request
}

#[tokio::test]
async fn a_decision_on_the_board_writes_one_line_naming_who_decided() {
    let (mut sandbox, path) = sandbox_with_audit_file().await;
    sandbox.start_plugin().await;
    let request = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&request).await;
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    wait_for_mark(&sandbox, &request, "written").await;
    let lines = lines_of(&path, &request);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["user"], REQUESTER);
    assert_eq!(line["roles"], serde_json::json!(["editor"]));
    assert_eq!(line["reason"], REASON);
    assert_eq!(line["resolution"], "approved");
    assert_eq!(line["delegator"], format!("jira:{JIRA_REVIEWER_EMAIL}"));
    assert_eq!(line["issue_key"], issue.key);
    assert!(line["created"].as_str().unwrap().ends_with('Z'), "{line}");
    assert!(
        line["resolved_at"].as_str().unwrap().ends_with('Z'),
        "{line}"
    );
}

#[tokio::test]
async fn a_review_in_teleport_is_in_the_line_and_its_author_decided() {
    let (mut sandbox, path) = sandbox_with_audit_file().await;
    sandbox.start_plugin().await;
    let request = approved_and_written(&sandbox).await;
    let line = &lines_of(&path, &request)[0];
    assert_eq!(line["delegator"], REVIEWER1);
    assert_eq!(line["reviews"][0]["author"], REVIEWER1);
    assert_eq!(line["reviews"][0]["state"], "APPROVED");
    assert_eq!(line["reviews"][0]["reason"], "okay");
    let served = reqwest::get(format!("{}metrics", sandbox.webhook_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        served.contains("teleport_jira_audit_lines_total 1"),
        "{served}"
    );
}

#[tokio::test]
async fn a_restart_between_the_append_and_its_record_writes_no_second_line() {
    let (mut sandbox, path) = sandbox_with_audit_file().await;
    sandbox.start_plugin().await;
    let request = approved_and_written(&sandbox).await;
    sandbox.plugin().kill().await;
    // As a process stopped after appending, before recording that it had.
    let mut data = sandbox.plugin_data(&request);
    data.insert("audit".into(), "writing".into());
    sandbox.teleport.set_plugin_data(&request, "jira", data);

    sandbox.start_plugin().await;
    wait_for_mark(&sandbox, &request, "written").await;
    assert_eq!(lines_of(&path, &request).len(), 1);
    sandbox
        .wait_for_log("The audit file already has this request's line")
        .await;
}

#[tokio::test]
async fn a_restart_before_the_append_writes_the_line_once() {
    let (mut sandbox, path) = sandbox_with_audit_file().await;
    sandbox.start_plugin().await;
    let request = approved_and_written(&sandbox).await;
    sandbox.plugin().kill().await;
    // As a process stopped after recording that it would append, before appending.
    std::fs::write(&path, "").unwrap();
    let mut data = sandbox.plugin_data(&request);
    data.insert("audit".into(), "writing".into());
    sandbox.teleport.set_plugin_data(&request, "jira", data);

    sandbox.start_plugin().await;
    wait_for_mark(&sandbox, &request, "written").await;
    assert_eq!(lines_of(&path, &request).len(), 1);
}
