//! Who decided is read from the issue's history, however deep: a move buried under more than the
//! 100 histories `expand=changelog` embeds is found in the paged changelog, and a move nobody can
//! be credited with (an anonymous change) is sent back instead of applied as `jira:`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use teleport_proto::types::RequestState;
use testkit::jira::{JiraUser, Permission};

use crate::support::*;

const ALL: [Permission; 4] = [
    Permission::BrowseProjects,
    Permission::TransitionIssues,
    Permission::AddComments,
    Permission::EditIssues,
];

/// Edits after the move: more than the embedded page holds.
const EDITS_AFTER_THE_MOVE: usize = 120;

/// Delivers again the webhook of the newest status change of `issue` (as Jira re-delivers).
async fn deliver_status_webhook_again(sandbox: &Sandbox, issue: &str, account_id: &str) {
    let payload = sandbox
        .jira
        .status_webhook_payload(issue, account_id)
        .unwrap();
    let status = sandbox
        .jira
        .deliver_raw_webhook(
            serde_json::to_vec(&payload).unwrap(),
            &[("Content-Type", "application/json")],
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "plugin log:\n{}", sandbox.log());
}

#[tokio::test]
async fn a_self_approval_buried_under_many_edits_is_found_in_the_paged_changelog() {
    let mut sandbox = Sandbox::new().await;
    sandbox.jira.add_user(
        JiraUser::new("REQUESTER", "The Requester")
            .with_email(REQUESTER)
            .with_permissions(ALL),
    );
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    // The requester approves their own request; the webhook is lost; an automation then edits
    // the card so often that the move leaves the embedded page.
    sandbox
        .jira
        .transition_as_without_webhook(&issue.id, "Approved", "REQUESTER")
        .unwrap();
    sandbox
        .jira
        .edit_fields_n_times(&issue.id, JIRA_REVIEWER, EDITS_AFTER_THE_MOVE)
        .unwrap();
    deliver_status_webhook_again(&sandbox, &issue.id, "REQUESTER").await;

    let issue = sandbox
        .wait_for_comment(&issue.id, "cannot decide their own request")
        .await;
    sandbox.wait_for_status(&issue.id, "Pending").await;
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));
    assert!(sandbox.teleport.audit_events().is_empty());
    let paged = sandbox
        .jira
        .all_calls()
        .iter()
        .filter(|call| call.path.ends_with("/changelog"))
        .count();
    assert!(paged > 0, "the paged changelog was read");
}

#[tokio::test]
async fn an_approval_buried_under_many_edits_is_credited_to_the_mover() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .jira
        .transition_as_without_webhook(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox
        .jira
        .edit_fields_n_times(&issue.id, RANDOM_USER, EDITS_AFTER_THE_MOVE)
        .unwrap();
    deliver_status_webhook_again(&sandbox, &issue.id, JIRA_REVIEWER).await;
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    let event = sandbox.audit_event_of(&id);
    assert_eq!(event.delegator, format!("jira:{JIRA_REVIEWER_EMAIL}"));
}

#[tokio::test]
async fn a_move_without_an_author_is_sent_back_and_the_request_stays_pending() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .jira
        .transition_anonymously_without_webhook(&issue.id, "Approved")
        .unwrap();
    deliver_status_webhook_again(&sandbox, &issue.id, JIRA_REVIEWER).await;

    let issue = sandbox
        .wait_for_comment(&issue.id, "could not be identified")
        .await;
    sandbox.wait_for_status(&issue.id, "Pending").await;
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));
    assert!(
        sandbox.teleport.audit_events().is_empty(),
        "nobody is credited with an anonymous move"
    );
}
