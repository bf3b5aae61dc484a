//! Approvals nobody can forge: signed webhooks, the self-approval guard, the approver allowlist,
//! and review mode, where Teleport's own thresholds decide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use teleport_proto::types::RequestState;
use testkit::jira::{IssueSnapshot, JiraUser, Permission};
use testkit::teleport::UserSpec;

use crate::support::*;

const SECRET: &str = "It's a Secret to Everybody";
const ALL: [Permission; 4] = [
    Permission::BrowseProjects,
    Permission::TransitionIssues,
    Permission::AddComments,
    Permission::EditIssues,
];

/// Appends keys to the `[http]` section and a table after `project` in `[jira]`.
fn configure(sandbox: &Sandbox, http: &str, jira_tables: &str) {
    let config = std::fs::read_to_string(&sandbox.config_path)
        .unwrap()
        .replace("[http]\n", &format!("[http]\n{http}"))
        .replace(
            "project = \"PROJ\"",
            &format!("project = \"PROJ\"\n{jira_tables}"),
        );
    std::fs::write(&sandbox.config_path, config).unwrap();
}

#[tokio::test]
async fn signed_webhooks_are_accepted_and_unsigned_ones_refused_without_effect() {
    let mut sandbox = Sandbox::new().await;
    configure(&sandbox, &format!("webhook_secret = {SECRET:?}\n"), "");
    sandbox.sign_webhooks_with(SECRET);
    sandbox.start_plugin().await;

    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    // A forged delivery: right shape, Approved in the payload, no or a wrong signature.
    sandbox
        .jira
        .transition_as_without_webhook(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    let body = sandbox
        .jira
        .status_webhook_payload(&issue.id, JIRA_REVIEWER)
        .unwrap()
        .to_string();
    let json = ("content-type", "application/json");
    assert_eq!(
        sandbox
            .jira
            .deliver_raw_webhook(body.clone(), &[json])
            .await
            .unwrap(),
        401
    );
    let wrong = testkit::jira::sign_webhook_body("not the secret", body.as_bytes());
    assert_eq!(
        sandbox
            .jira
            .deliver_raw_webhook(body.clone(), &[json, ("x-hub-signature", &wrong)])
            .await
            .unwrap(),
        401
    );
    // Both were seen and refused (no step is ever queued for a refused delivery).
    let refused = eventually(|| async {
        sandbox
            .log()
            .matches("Refused a webhook without a valid X-Hub-Signature")
            .count()
            >= 2
    })
    .await;
    assert!(refused, "{}", sandbox.log());
    assert_eq!(
        sandbox.state_of(&id),
        Some(RequestState::Pending),
        "an unsigned webhook changes nothing"
    );

    // The genuine, signed delivery does the job, and replaying it changes nothing more.
    let good = testkit::jira::sign_webhook_body(SECRET, body.as_bytes());
    let headers = [
        json,
        ("x-hub-signature", good.as_str()),
        ("x-atlassian-webhook-identifier", "delivery-1"),
    ];
    assert_eq!(
        sandbox
            .jira
            .deliver_raw_webhook(body.clone(), &headers)
            .await
            .unwrap(),
        200
    );
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    assert_eq!(
        sandbox
            .jira
            .deliver_raw_webhook(body, &headers)
            .await
            .unwrap(),
        200
    );
    sandbox
        .wait_for_log("Ignoring a re-delivered webhook")
        .await;
    assert_eq!(
        sandbox.teleport.audit_events().len(),
        1,
        "a replayed delivery changes nothing"
    );
    assert!(
        sandbox
            .log()
            .contains("Refused a webhook without a valid X-Hub-Signature")
    );
}

#[tokio::test]
async fn requester_cannot_approve_their_own_request_from_jira() {
    let mut sandbox = Sandbox::new().await;
    sandbox.jira.add_user(
        JiraUser::new("REQUESTER", "The Requester")
            .with_email(REQUESTER)
            .with_permissions(ALL),
    );
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", "REQUESTER")
        .unwrap();
    let issue = sandbox
        .wait_for_comment(&issue.id, "cannot decide their own request")
        .await;
    let issue = sandbox.wait_for_status(&issue.id, "Pending").await;
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));
    assert!(sandbox.teleport.audit_events().is_empty());
    assert!(
        issue
            .comment_bodies()
            .iter()
            .any(|b| b.starts_with("The request was not approved from Jira"))
    );
}

#[tokio::test]
async fn self_approval_is_refused_through_the_user_mapping_when_email_is_hidden() {
    let mut sandbox = Sandbox::new().await;
    sandbox.jira.add_user(
        JiraUser::new("HIDDEN", "Hidden Requester")
            .with_hidden_email(REQUESTER)
            .with_permissions(ALL),
    );
    configure(
        &sandbox,
        "",
        &format!("\n[jira.users]\nHIDDEN = {REQUESTER:?}\n"),
    );
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .jira
        .transition_as(&issue.id, "Denied", "HIDDEN")
        .unwrap();
    sandbox
        .wait_for_comment(&issue.id, "cannot decide their own request")
        .await;
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));
}

#[tokio::test]
async fn only_allowlisted_approvers_decide() {
    let mut sandbox = Sandbox::new().await;
    configure(
        &sandbox,
        "",
        &format!("approvers = [{JIRA_REVIEWER_EMAIL:?}]\n"),
    );
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", RANDOM_USER)
        .unwrap();
    sandbox
        .wait_for_comment(&issue.id, "not among the configured approvers")
        .await;
    sandbox.wait_for_status(&issue.id, "Pending").await;
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));

    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    let event = sandbox.audit_event_of(&id);
    assert_eq!(event.delegator, format!("jira:{JIRA_REVIEWER_EMAIL}"));
}

#[tokio::test]
async fn review_mode_resolves_only_when_teleport_thresholds_are_met() {
    let mut sandbox = Sandbox::new().await;
    // Submitting reviews on behalf of users needs Teleport's permission to do so.
    sandbox.teleport.add_user(
        PLUGIN_USER,
        UserSpec {
            admin: true,
            ..UserSpec::plugin()
        },
    );
    configure(
        &sandbox,
        "",
        &format!(
            "resolve_with = \"review\"\n\n[jira.users]\n{JIRA_REVIEWER_EMAIL:?} = {REVIEWER1:?}\n\"randomfolk@example.com\" = {REVIEWER2:?}\n"
        ),
    );
    sandbox.start_plugin().await;
    let id = sandbox
        .teleport
        .create_access_request(REQUESTER1, &["editor"], REASON);
    let issue = sandbox.issue_of(&id).await;

    sandbox
        .jira
        .comment_as(&issue.id, JIRA_REVIEWER, "reason: first look is fine")
        .unwrap();
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox
        .wait_for_comment(&issue.id, "needs more reviews before it is approved")
        .await;
    sandbox.wait_for_status(&issue.id, "Pending").await;
    assert_eq!(
        sandbox.state_of(&id),
        Some(RequestState::Pending),
        "thresholds 2/2: one approval is not enough"
    );
    let reviews = sandbox
        .teleport
        .access_request(&id)
        .unwrap()
        .spec
        .unwrap()
        .reviews;
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].author, REVIEWER1);
    assert_eq!(reviews[0].reason, "first look is fine");

    sandbox
        .jira
        .transition_as(&issue.id, "Approved", RANDOM_USER)
        .unwrap();
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    sandbox
        .wait_for_comment(&issue.id, "Access request has been approved")
        .await;
    sandbox.wait_for_status(&issue.id, "Approved").await;
    assert!(
        sandbox.teleport.audit_events().is_empty(),
        "no direct state change in review mode"
    );
}

#[tokio::test]
async fn review_mode_refuses_jira_users_without_a_teleport_mapping() {
    let mut sandbox = Sandbox::new().await;
    sandbox.teleport.add_user(
        PLUGIN_USER,
        UserSpec {
            admin: true,
            ..UserSpec::plugin()
        },
    );
    configure(&sandbox, "", "resolve_with = \"review\"\n");
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox
        .wait_for_comment(&issue.id, "no Teleport user is mapped")
        .await;
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));
}

/// A running plugin, and a request denied in Teleport whose card shows it.
async fn denied_in_teleport() -> (Sandbox, String, IssueSnapshot) {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let request = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&request).await;
    sandbox
        .teleport
        .set_state_as("admin", &request, RequestState::Denied, "not now", "")
        .unwrap();
    sandbox.wait_for_status(&issue.id, "Denied").await;
    (sandbox, request, issue)
}

#[tokio::test]
async fn a_card_moved_after_teleport_decided_goes_back_to_teleports_decision() {
    let (sandbox, request, issue) = denied_in_teleport().await;

    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox.wait_for_status(&issue.id, "Denied").await;
    assert_eq!(sandbox.state_of(&request), Some(RequestState::Denied));
    let comments = sandbox
        .jira
        .issue(&issue.id)
        .unwrap()
        .comment_bodies()
        .len();
    assert_eq!(comments, 1, "the resolution comment is not repeated");
}

/// The race behind a once-flaky run: a step reads the resolved card, the card is moved before
/// the step ends, and the step must not mark the request settled on what it read, or the rerun
/// the move's webhook asked for would skip it and the card would stay where it was moved.
#[tokio::test]
async fn a_card_moved_while_a_step_reads_it_still_goes_back_to_teleports_decision() {
    let (sandbox, request, issue) = denied_in_teleport().await;
    sandbox.wait_for_comment(&issue.id, "not now").await;

    // A step reads the card (still Denied) and is held there.
    let held = sandbox
        .jira
        .faults()
        .hold_next_reply("GET", &format!("/issue/{}", issue.id));
    sandbox
        .jira
        .set_labels_as(&issue.id, RANDOM_USER, &["touched"])
        .unwrap();
    let reached = tokio::time::timeout(WAIT, held.reached()).await;
    assert!(
        reached.is_ok(),
        "no step read the card; plugin log:\n{}",
        sandbox.log()
    );

    // The card moves, and the plugin has taken the move's webhook (its reply waits a bounded
    // time for the step, which is held) before the held read returns.
    let moves_delivered = || {
        sandbox
            .jira
            .deliveries()
            .iter()
            .filter(|d| d.event.ends_with("issue_generic") && d.status_code.is_some())
            .count()
    };
    let before = moves_delivered();
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    assert!(eventually(|| async { moves_delivered() > before }).await);
    held.release();

    sandbox.wait_for_status(&issue.id, "Denied").await;
    assert_eq!(sandbox.state_of(&request), Some(RequestState::Denied));
}

#[tokio::test]
async fn members_of_an_approver_group_decide_and_others_are_sent_back() {
    let mut sandbox = Sandbox::new().await;
    sandbox.jira.add_user(
        JiraUser::new("LEAD", "Team Lead")
            .with_email("lead@example.com")
            .with_permissions(ALL)
            .in_groups(["access-approvers", "jira-users"]),
    );
    configure(&sandbox, "", "approver_groups = [\"Access-Approvers\"]\n");
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;

    // Not in the group: sent back.
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", RANDOM_USER)
        .unwrap();
    sandbox
        .wait_for_comment(&issue.id, "not among the configured approvers")
        .await;
    sandbox.wait_for_status(&issue.id, "Pending").await;
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));

    // In the group (names compare as Jira compares them, ignoring case): decides.
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", "LEAD")
        .unwrap();
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    assert_eq!(
        sandbox.audit_event_of(&id).delegator,
        "jira:lead@example.com"
    );
}

#[tokio::test]
async fn a_group_membership_jira_will_not_show_sends_the_card_back() {
    let mut sandbox = Sandbox::new().await;
    configure(&sandbox, "", "approver_groups = [\"access-approvers\"]\n");
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    // The plugin's Jira user may not browse users and groups.
    sandbox
        .jira
        .faults()
        .fail_next_matching("/user/groups", 10, 403);
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox
        .wait_for_comment(
            &issue.id,
            "groups of the user who moved the card could not be read",
        )
        .await;
    sandbox.wait_for_status(&issue.id, "Pending").await;
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));
    assert!(sandbox.teleport.audit_events().is_empty());
}
