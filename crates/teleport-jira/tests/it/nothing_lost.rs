//! Each way the Go plugin loses work (user-demand.md 1b-h, 1b-i), reproduced: every test here
//! fails on a design that handles each event once and never looks back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use teleport_proto::types::RequestState;

use testkit::jira::RecordedCall;

use crate::support::*;

fn fast_scan() -> SandboxOptions {
    SandboxOptions {
        extra_config: "\n[reconcile]\nscan_interval = \"1s\"\n".into(),
        ..Default::default()
    }
}

/// A lease time-to-live of 3 s, so a lease's renewals and expiry happen within a test.
fn short_lease() -> SandboxOptions {
    SandboxOptions {
        extra_config: "\n[reconcile]\nlease_ttl = \"3s\"\n".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn failed_issue_creation_is_retried_until_jira_recovers() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    sandbox
        .jira
        .faults()
        .fail_next_matching("/rest/api/2/issue", 6, 500);
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    assert_eq!(issue.status, "Pending");
    assert_eq!(sandbox.jira.created_issue_count(), 1);
}

#[tokio::test]
async fn issue_created_but_reply_lost_is_not_created_twice() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    // Jira creates the issue, then the reply is lost; search will not see it for minutes.
    sandbox
        .jira
        .faults()
        .set_search_lag(Duration::from_secs(600));
    sandbox
        .jira
        .faults()
        .fail_after_processing_next("/rest/api/2/issue", 1, 504);
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    assert_eq!(
        sandbox.jira.created_issue_count(),
        1,
        "the issue Jira made is adopted, not made again; plugin log:\n{}",
        sandbox.log()
    );
    assert_eq!(
        issue.properties.get("teleportAccessRequestId"),
        Some(&serde_json::json!(id))
    );
    assert!(
        sandbox
            .log()
            .contains("Found the issue an earlier attempt created"),
        "{}",
        sandbox.log()
    );
}

#[tokio::test]
async fn approval_whose_webhook_was_lost_is_applied_by_the_scan() {
    let mut sandbox = Sandbox::with(fast_scan()).await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .jira
        .transition_as_without_webhook(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    let event = sandbox.audit_event_of(&id);
    assert_eq!(event.delegator, format!("jira:{JIRA_REVIEWER_EMAIL}"));
    sandbox
        .wait_for_comment(&issue.id, "Access request has been approved")
        .await;
}

#[tokio::test]
async fn polling_only_mode_needs_no_webhook() {
    let mut sandbox = Sandbox::with(SandboxOptions {
        extra_config: "\n[reconcile]\nscan_interval = \"1s\"\n".into(),
        ..Default::default()
    })
    .await;
    let config = std::fs::read_to_string(&sandbox.config_path)
        .unwrap()
        .replace("[http]\n", "[http]\ndisable_webhook = true\n");
    std::fs::write(&sandbox.config_path, config).unwrap();
    sandbox.jira.clear_webhooks();
    sandbox.start_plugin().await;
    assert!(
        sandbox.log().contains("Webhook disabled"),
        "{}",
        sandbox.log()
    );
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .jira
        .transition_as(&issue.id, "Denied", JIRA_REVIEWER)
        .unwrap();
    sandbox.wait_for_state(&id, RequestState::Denied).await;
}

#[tokio::test]
async fn rate_limited_jira_calls_wait_for_retry_after() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    sandbox.jira.faults().rate_limit_next(3, 1);
    let id = sandbox.create_request(REASON);
    sandbox.issue_of(&id).await;
    // The issue can exist before a refused call that came after its creation is sent again:
    // wait for every retry rather than judge the log as it stands.
    let jira = &sandbox.jira;
    let all_retried = eventually(|| async { every_refusal_retried(&jira.all_calls()) }).await;
    let calls = sandbox.jira.all_calls();
    assert!(
        all_retried,
        "a refused call was never sent again: {calls:?}"
    );
    let limited = calls.iter().filter(|c| c.status == 429).count();
    assert_eq!(limited, 3, "{calls:?}");
    assert_eq!(sandbox.jira.created_issue_count(), 1);
    // Each refusal said `Retry-After: 1`: the refused call was not sent again sooner (a call
    // already in flight when the refusal came may still arrive). A lower bound, which a loaded
    // machine only makes easier to meet.
    for (index, refused) in calls.iter().enumerate().filter(|(_, c)| c.status == 429) {
        let Some(again) = retry_of(&calls, index) else {
            panic!("{} {} was never sent again", refused.method, refused.path);
        };
        let waited = again.received_at.duration_since(refused.received_at);
        assert!(
            waited >= Duration::from_millis(950),
            "{} {} was sent again {waited:?} after a 429 with Retry-After: 1",
            refused.method,
            refused.path
        );
    }
}

/// The first call after `calls[index]` with the same method and path.
fn retry_of(calls: &[RecordedCall], index: usize) -> Option<&RecordedCall> {
    let refused = &calls[index];
    calls[index + 1..]
        .iter()
        .find(|c| c.method == refused.method && c.path == refused.path)
}

fn every_refusal_retried(calls: &[RecordedCall]) -> bool {
    (0..calls.len())
        .filter(|&index| calls[index].status == 429)
        .all(|index| retry_of(calls, index).is_some())
}

#[tokio::test]
async fn resolution_during_a_jira_outage_reaches_jira_afterwards() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox.jira.faults().fail_next(20, 503);
    sandbox
        .teleport
        .set_state_as("admin", &id, RequestState::Denied, "outage", "")
        .unwrap();
    let issue = sandbox.wait_for_status(&issue.id, "Denied").await;
    assert_eq!(
        issue.comment_bodies(),
        vec!["Access request has been denied\nReason: outage"]
    );
}

#[tokio::test]
async fn request_created_while_the_watch_was_down_gets_its_issue() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    sandbox.teleport.set_refuse_connections(true);
    sandbox.teleport.drop_watch_streams();
    let id = sandbox.create_request(REASON);
    tokio::time::sleep(Duration::from_millis(300)).await;
    sandbox.teleport.set_refuse_connections(false);
    let issue = sandbox.issue_of(&id).await;
    assert_eq!(issue.status, "Pending");
}

#[tokio::test]
async fn after_the_watch_reconnects_only_requests_that_changed_meanwhile_are_looked_at() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin_caught_up().await;
    let unchanged: Vec<String> = (0..5).map(|_| sandbox.create_request(REASON)).collect();
    let denied = sandbox.create_request(REASON);
    for id in unchanged.iter().chain([&denied]) {
        sandbox.issue_of(id).await;
    }
    let reads = sandbox.teleport.calls("GetPluginData");
    let issue_reads = jira_issue_reads(&sandbox);

    sandbox.teleport.set_refuse_connections(true);
    sandbox.teleport.drop_watch_streams();
    sandbox
        .teleport
        .set_state_as("admin", &denied, RequestState::Denied, "outage", "")
        .unwrap();
    let created = sandbox.create_request(REASON);
    sandbox.teleport.set_refuse_connections(false);

    let relisted = eventually(|| async {
        sandbox
            .log()
            .contains("Reconciling the access requests that changed while the watch was down")
    })
    .await;
    assert!(relisted, "{}", sandbox.log());
    let denied_issue = sandbox.issue_of(&denied).await;
    sandbox.wait_for_status(&denied_issue.id, "Denied").await;
    sandbox.issue_of(&created).await;
    let log = sandbox.log();
    assert!(
        log.contains("changed=2"),
        "the denied and the new request only:\n{log}"
    );
    // Only the denied request's step reads records (a step that may end in nothing reads before
    // it writes, two reads here); the unchanged ones and the new one cost none, and no unchanged
    // card was read.
    assert!(
        sandbox.teleport.calls("GetPluginData") <= reads + 2,
        "{} reads before, {} after",
        reads,
        sandbox.teleport.calls("GetPluginData")
    );
    for id in &unchanged {
        let issue = sandbox.recorded_issue_id(id).unwrap();
        assert_eq!(
            jira_issue_reads(&sandbox).get(&issue),
            issue_reads.get(&issue),
            "issue {issue} of an unchanged request was read again"
        );
    }
}

/// `GET issue/{id}` calls so far, per issue id.
fn jira_issue_reads(sandbox: &Sandbox) -> HashMap<String, usize> {
    let mut reads = HashMap::new();
    for call in sandbox.jira.all_calls() {
        if call.method != "GET" {
            continue;
        }
        if let Some(issue) = call.path.strip_prefix("/rest/api/2/issue/")
            && !issue.contains('/')
        {
            *reads.entry(issue.to_owned()).or_insert(0) += 1;
        }
    }
    reads
}

#[tokio::test]
async fn two_replicas_create_one_issue_and_resolve_once() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let _replica = sandbox.start_replica().await;
    let ids: Vec<String> = (0..10).map(|_| sandbox.create_request(REASON)).collect();
    let mut issues = Vec::new();
    for id in &ids {
        issues.push(sandbox.issue_of(id).await.id);
    }
    for issue in &issues {
        sandbox
            .jira
            .transition_as(issue, "Approved", JIRA_REVIEWER)
            .unwrap();
    }
    for (id, issue) in ids.iter().zip(&issues) {
        sandbox.wait_for_state(id, RequestState::Approved).await;
        sandbox
            .wait_for_comment(issue, "Access request has been approved")
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sandbox.jira.created_issue_count(), ids.len());
    assert_eq!(
        sandbox.teleport.audit_events().len(),
        ids.len(),
        "each request resolved once"
    );
    for issue in &issues {
        let issue = sandbox.jira.issue(issue).unwrap();
        assert_eq!(issue.comments.len(), 1, "{:?}", issue.comment_bodies());
    }
}

/// The watch's first word of a pending request means nothing recorded it yet: the record is
/// written with a compare-and-swap expecting none, not read first. (Two replicas, above, prove a
/// wrong guess costs only a read: one of them guesses wrong for every request.)
#[tokio::test]
async fn a_new_request_gets_its_record_and_issue_without_reading_its_plugin_data() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin_caught_up().await;
    let ids: Vec<String> = (0..5).map(|_| sandbox.create_request(REASON)).collect();
    for id in &ids {
        let issue = sandbox.issue_of(id).await;
        assert_eq!(issue.status, "Pending");
        let recorded = eventually(|| async {
            sandbox
                .teleport
                .plugin_data(id, "jira")
                .is_some_and(|data| data.get("issue_id") == Some(&issue.id))
        })
        .await;
        assert!(recorded, "the record of {id} names {}", issue.id);
    }
    assert_eq!(sandbox.teleport.calls("GetPluginData"), 0);
    assert_eq!(sandbox.jira.created_issue_count(), ids.len());
}

/// A process that died holding a request's lease is waited out for the lease's time-to-live
/// (watched with a back-off, not a read every second), then its work is taken over once.
#[tokio::test]
async fn a_lease_left_by_a_dead_process_is_taken_over_after_its_time_to_live() {
    let mut sandbox = Sandbox::with(short_lease()).await;
    let id = sandbox.create_request(REASON);
    let dead_holder = HashMap::from([("lease".to_owned(), "0123456789abcdef 1 0".to_owned())]);
    sandbox.teleport.set_plugin_data(&id, "jira", dead_holder);
    let started = std::time::Instant::now();
    sandbox.start_plugin().await;

    let issue = sandbox.issue_of(&id).await;
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "the lease was respected for its time-to-live"
    );
    assert_eq!(issue.status, "Pending");
    assert_eq!(sandbox.jira.created_issue_count(), 1);
}

/// A lease held through a long Jira call is renewed from what this process stored, without
/// reading the record each time, and the work under it still ends as usual.
#[tokio::test]
async fn a_lease_held_through_a_slow_creation_is_renewed_without_reads() {
    let mut sandbox = Sandbox::with(short_lease()).await;
    sandbox.start_plugin_caught_up().await;
    let held = sandbox.jira.faults().hold_next_reply("POST", "/issue");
    let id = sandbox.create_request(REASON);
    let reached = tokio::time::timeout(WAIT, held.reached()).await;
    assert!(reached.is_ok(), "the creation reached Jira");

    // The record with the lease, then two renewals, each a write.
    let renewed = eventually(|| async { sandbox.teleport.calls("UpdatePluginData") >= 3 }).await;
    assert!(
        renewed,
        "the lease was renewed; plugin log:\n{}",
        sandbox.log()
    );
    assert_eq!(
        sandbox.teleport.calls("GetPluginData"),
        0,
        "plugin log:\n{}",
        sandbox.log()
    );
    held.release();

    let issue = sandbox.issue_of(&id).await;
    assert_eq!(issue.status, "Pending");
    assert_eq!(sandbox.jira.created_issue_count(), 1);
}

#[tokio::test]
async fn sigterm_stops_intake_and_exits_cleanly() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    sandbox.issue_of(&id).await;
    sandbox
        .jira
        .faults()
        .set_latency(Duration::from_millis(300));
    // A step in flight: its issue is being created when SIGTERM arrives.
    let in_flight = sandbox.create_request(REASON);
    let creating = eventually(|| async {
        sandbox.jira.all_calls().iter().any(|call| {
            call.method == "POST"
                && call.path.ends_with("/issue")
                && call.raw_body.contains(&in_flight)
        })
    })
    .await;
    assert!(creating, "{}", sandbox.log());
    let pid = sandbox.plugin().pid().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    // Arrives once the plugin has taken SIGTERM in: no step starts for it.
    sandbox.wait_for_log("Received SIGTERM").await;
    let too_late = sandbox.create_request(REASON);
    let status = sandbox.plugin().wait().await;
    assert!(status.success(), "{status:?}\n{}", sandbox.log());
    assert!(
        sandbox.log().contains("Successfully shut down"),
        "{}",
        sandbox.log()
    );
    assert!(
        sandbox.recorded_issue_id(&in_flight).is_some(),
        "the step in flight finished and recorded its issue; plugin log:\n{}",
        sandbox.log()
    );
    assert_eq!(sandbox.recorded_issue_id(&too_late), None);
    assert_eq!(sandbox.jira.created_issue_count(), 2);
}
