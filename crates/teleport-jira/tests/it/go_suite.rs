//! The Go plugin's integration suite (`go-plugin-behavior.md` §7.2), case by case, against our binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use teleport_proto::types::RequestState;

use crate::support::*;

#[tokio::test]
async fn pending_request_gets_one_issue_with_property_and_plugin_data() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;

    assert_eq!(issue.project_key, "PROJ");
    assert_eq!(issue.status, "Pending");
    assert_eq!(
        issue.properties.get("teleportAccessRequestId"),
        Some(&serde_json::json!(id))
    );
    assert_eq!(issue.summary, format!("{REQUESTER} requested editor"));
    let data = sandbox.plugin_data(&id);
    assert_eq!(data["issue_id"], issue.id);
    assert_eq!(data["issue_key"], issue.key);
    assert_eq!(data["user"], REQUESTER);
    assert_eq!(data["roles"], "editor");
    assert_eq!(data["request_reason"], REASON);
    assert_eq!(sandbox.jira.created_issue_count(), 1);
}

#[tokio::test]
async fn plugin_data_is_written_in_the_go_plugins_encoding() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    let request = sandbox.teleport.access_request(&id).unwrap();
    let created = request.spec.unwrap().created.unwrap().seconds.to_string();

    // Every write carries all nine keys, as the Go plugin's encoder emits them; the only other
    // key is our transient `lease`, gone once the work is done.
    const GO_KEYS: [&str; 9] = [
        "user",
        "roles",
        "created",
        "request_reason",
        "reviews_count",
        "resolution",
        "resolve_reason",
        "issue_id",
        "issue_key",
    ];
    let updates = sandbox.teleport.plugin_data_updates();
    let ours: Vec<_> = updates.iter().filter(|u| u.resource == id).collect();
    assert!(ours.len() >= 2, "{ours:?}");
    for update in &ours {
        assert_eq!(update.plugin, "jira");
        for map in [&update.set, &update.expect] {
            assert!(GO_KEYS.iter().all(|key| map.contains_key(*key)), "{map:?}");
            assert!(
                map.keys()
                    .all(|key| GO_KEYS.contains(&key.as_str()) || key == "lease"),
                "{map:?}"
            );
        }
    }
    assert!(
        ours[0].expect.values().all(String::is_empty),
        "the first write expects no data"
    );
    let stored = sandbox.plugin_data(&id);
    let expected: std::collections::HashMap<String, String> = [
        ("user", REQUESTER),
        ("roles", "editor"),
        ("created", created.as_str()),
        ("request_reason", REASON),
        ("issue_id", issue.id.as_str()),
        ("issue_key", issue.key.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        stored, expected,
        "empty keys are deleted by Teleport, the rest match"
    );
}

#[tokio::test]
async fn description_carries_the_request_reason() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    let description = issue.description.unwrap();
    assert!(
        description.contains("Reason: *because of*"),
        "{description}"
    );
    assert!(
        description.contains(&format!("Request ID: *{id}*")),
        "{description}"
    );
}

#[tokio::test]
async fn large_request_reason_is_cut_at_3000_bytes_in_the_description() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let reason = format!("{REASON} {}", "A".repeat(3000 + 10));
    let id = sandbox.create_request(&reason);
    let description = sandbox.issue_of(&id).await.description.unwrap();
    let run = description.split("Reason: *because of ").nth(1).unwrap();
    assert_eq!(run.chars().take_while(|c| *c == 'A').count(), 2989);
    assert_eq!(
        sandbox.plugin_data(&id)["request_reason"],
        reason,
        "plugin data keeps the whole reason"
    );
}

#[tokio::test]
async fn custom_issue_type_is_used() {
    let mut sandbox = Sandbox::with(SandboxOptions {
        issue_type: Some("Story".into()),
        ..Default::default()
    })
    .await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    assert_eq!(sandbox.issue_of(&id).await.issue_type, "Story");
}

async fn decide_in_jira(
    sandbox: &Sandbox,
    status: &str,
    comments: &[(&str, &str)],
) -> (String, String) {
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    for (author, body) in comments {
        sandbox.jira.comment_as(&issue.id, author, body).unwrap();
    }
    sandbox
        .jira
        .transition_as(&issue.id, status, JIRA_REVIEWER)
        .unwrap();
    (id, issue.id)
}

#[tokio::test]
async fn moving_the_card_to_approved_approves_the_request() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let (id, issue_id) = decide_in_jira(&sandbox, "Approved", &[]).await;
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    let events = sandbox.audit_events_of(&id);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].state, RequestState::Approved);
    assert_eq!(events[0].delegator, format!("jira:{JIRA_REVIEWER_EMAIL}"));
    let issue = sandbox
        .wait_for_comment(&issue_id, "Access request has been approved")
        .await;
    assert_eq!(issue.status, "Approved");
}

#[tokio::test]
async fn moving_the_card_to_denied_denies_the_request() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let (id, issue_id) = decide_in_jira(&sandbox, "Denied", &[]).await;
    sandbox.wait_for_state(&id, RequestState::Denied).await;
    let events = sandbox.audit_events_of(&id);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].delegator, format!("jira:{JIRA_REVIEWER_EMAIL}"));
    sandbox
        .wait_for_comment(&issue_id, "Access request has been denied")
        .await;
}

#[tokio::test]
async fn approval_reason_is_read_from_the_reviewers_block_comment() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let comment = "hi! i'm going to approve this request.\nReason:\n\nfoo\nbar\nbaz";
    let (id, issue_id) = decide_in_jira(&sandbox, "Approved", &[(JIRA_REVIEWER, comment)]).await;
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    let request = sandbox.teleport.access_request(&id).unwrap();
    assert_eq!(request.spec.unwrap().resolve_reason, "foo\nbar\nbaz");
    let event = sandbox.audit_event_of(&id);
    assert_eq!(event.delegator, format!("jira:{JIRA_REVIEWER_EMAIL}"));
    let issue = sandbox
        .wait_for_comment(&issue_id, "Access request has been approved")
        .await;
    assert!(
        issue
            .comment_bodies()
            .iter()
            .any(|b| b.contains("Reason: foo\nbar\nbaz")),
        "{:?}",
        issue.comment_bodies()
    );
}

#[tokio::test]
async fn denial_reason_is_the_reviewers_newest_reason_comment() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let comments = [
        (JIRA_REVIEWER, "first\nreason: bar baz"),
        (JIRA_REVIEWER, "second\nreason: foo bar baz"),
        (JIRA_REVIEWER, "comment 1"),
        (RANDOM_USER, "reason: test"),
    ];
    let (id, issue_id) = decide_in_jira(&sandbox, "Denied", &comments).await;
    sandbox.wait_for_state(&id, RequestState::Denied).await;
    assert_eq!(
        sandbox
            .teleport
            .access_request(&id)
            .unwrap()
            .spec
            .unwrap()
            .resolve_reason,
        "foo bar baz"
    );
    let issue = sandbox
        .wait_for_comment(&issue_id, "Access request has been denied")
        .await;
    assert!(
        issue
            .comment_bodies()
            .iter()
            .any(|b| b.contains("Reason: foo bar baz"))
    );
}

#[tokio::test]
async fn deleted_request_moves_the_issue_to_expired() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox.teleport.delete_access_request(&id).unwrap();
    let issue = sandbox.wait_for_status(&issue.id, "Expired").await;
    assert!(
        issue
            .comment_bodies()
            .contains(&"Access request has been expired\n"),
        "{:?}",
        issue.comment_bodies()
    );
    assert_eq!(sandbox.plugin_data(&id)["resolution"], "expired");
}

#[tokio::test]
async fn each_review_becomes_one_comment() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox
        .teleport
        .create_access_request(REQUESTER1, &["editor"], REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .teleport
        .submit_review_as(REVIEWER1, &id, RequestState::Approved, "okay")
        .unwrap();
    sandbox.wait_for_comment(&issue.id, "Reason: okay").await;
    sandbox
        .teleport
        .submit_review_as(REVIEWER2, &id, RequestState::Denied, "not okay")
        .unwrap();
    let issue = sandbox
        .wait_for_comment(&issue.id, "Reason: not okay")
        .await;
    let found = eventually(|| async {
        sandbox
            .plugin_data(&id)
            .get("reviews_count")
            .map(String::as_str)
            == Some("2")
    })
    .await;
    assert!(found, "{:?}", sandbox.plugin_data(&id));

    let bodies = issue.comment_bodies();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies[0].contains(&format!("*{REVIEWER1}* reviewed the request")));
    assert!(bodies[0].contains("Resolution: *APPROVED*"));
    assert!(bodies[1].contains(&format!("*{REVIEWER2}* reviewed the request")));
    assert!(bodies[1].contains("Resolution: *DENIED*"));
    assert_eq!(
        sandbox.state_of(&id),
        Some(RequestState::Pending),
        "thresholds 2/2 keep it pending"
    );
}

async fn resolve_by_reviews(state: RequestState, status: &str, tag: &str, final_reason: &str) {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox
        .teleport
        .create_access_request(REQUESTER1, &["editor"], REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .teleport
        .submit_review_as(REVIEWER1, &id, state, "okay")
        .unwrap();
    sandbox.wait_for_comment(&issue.id, "Reason: okay").await;
    sandbox
        .teleport
        .submit_review_as(REVIEWER2, &id, state, final_reason)
        .unwrap();
    let issue = sandbox.wait_for_status(&issue.id, status).await;
    let data = sandbox.plugin_data(&id);
    assert_eq!(data["reviews_count"], "2");
    assert_eq!(data["resolution"], tag);
    assert_eq!(data["resolve_reason"], final_reason);
    let last = issue
        .comment_bodies()
        .last()
        .copied()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        last,
        format!("Access request has been {tag}\nReason: {final_reason}")
    );
    assert_eq!(issue.comments.len(), 3, "{:?}", issue.comment_bodies());
}

#[tokio::test]
async fn reviewers_reaching_the_approval_threshold_approve_the_issue() {
    resolve_by_reviews(
        RequestState::Approved,
        "Approved",
        "approved",
        "finally okay",
    )
    .await;
}

#[tokio::test]
async fn reviewers_reaching_the_denial_threshold_deny_the_issue() {
    resolve_by_reviews(RequestState::Denied, "Denied", "denied", "finally not okay").await;
}

#[tokio::test]
async fn many_concurrent_requests_each_resolve_exactly_once() {
    const N: usize = 16;
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let ids: Vec<String> = (0..N).map(|_| sandbox.create_request(REASON)).collect();
    let mut issues = Vec::new();
    for id in &ids {
        let issue = sandbox.issue_of(id).await;
        assert_eq!(issue.status, "Pending");
        issues.push(issue.id);
    }
    for issue in &issues {
        sandbox
            .jira
            .transition_as(issue, "Approved", JIRA_REVIEWER)
            .unwrap();
    }
    for id in &ids {
        sandbox.wait_for_state(id, RequestState::Approved).await;
    }
    for issue in &issues {
        sandbox
            .wait_for_comment(issue, "Access request has been approved")
            .await;
    }
    let events = sandbox.teleport.audit_events();
    let resolved: HashSet<_> = events.iter().map(|e| e.request_id.clone()).collect();
    assert_eq!(
        events.len(),
        N,
        "each request resolved exactly once: {events:?}"
    );
    assert_eq!(resolved.len(), N);
    assert_eq!(sandbox.jira.created_issue_count(), N);
    for issue in &issues {
        let issue = sandbox.jira.issue(issue).unwrap();
        let resolutions = issue
            .comment_bodies()
            .iter()
            .filter(|b| b.starts_with("Access request has been"))
            .count();
        assert_eq!(resolutions, 1, "{:?}", issue.comment_bodies());
    }
}

#[tokio::test]
async fn resolution_in_teleport_comments_then_transitions_the_issue() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request("");
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .teleport
        .set_state_as(
            "admin",
            &id,
            RequestState::Denied,
            "not during the freeze",
            "",
        )
        .unwrap();
    let issue = sandbox.wait_for_status(&issue.id, "Denied").await;
    assert_eq!(
        issue.comment_bodies(),
        vec!["Access request has been denied\nReason: not during the freeze"]
    );
    // The comment is posted before the transition, as the Go plugin does.
    let calls = sandbox.jira.call_log();
    let comment_at = calls
        .iter()
        .position(|c| c.path.ends_with("/comment"))
        .unwrap();
    let transition_at = calls
        .iter()
        .position(|c| c.path.ends_with("/transitions"))
        .unwrap();
    assert!(comment_at < transition_at);
}

#[tokio::test]
async fn approval_arrives_over_an_https_webhook() {
    let mut sandbox = Sandbox::with(SandboxOptions {
        webhook_tls: true,
        ..Default::default()
    })
    .await;
    sandbox.start_plugin().await;
    let (id, issue_id) = decide_in_jira(&sandbox, "Approved", &[]).await;
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    sandbox
        .wait_for_comment(&issue_id, "Access request has been approved")
        .await;
    assert!(sandbox.jira.wait_webhooks_idle(WAIT).await);
    let delivered = sandbox
        .jira
        .deliveries()
        .iter()
        .any(|d| d.status_code == Some(200));
    assert!(delivered, "{:?}", sandbox.jira.deliveries());
}
