//! People on the ticket, end to end: the requester as watcher or reporter, the suggested
//! reviewers as watchers or mentioned, found by their Teleport trait or by Jira's user search by
//! e-mail; the refusals that switch a part off without stopping the ticket; the requester
//! mentioned in the resolution comment with the review trail; a reminder that comes once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use teleport_proto::types::RequestState;
use testkit::jira::{Deployment, FakeJiraOptions, JiraUser, Permission};
use testkit::teleport::{CreateRequest, UserSpec};

use crate::support::*;

/// The requester's Jira account, named by their `jira_account_id` trait.
const REQUESTER_ACCOUNT: &str = "712020:requester";
/// A Teleport user whose name is the visible e-mail of exactly one Jira user.
const FOUND_BY_EMAIL: &str = "found@example.com";
const FOUND_ACCOUNT: &str = "712020:found";
/// A Teleport user whose Jira account hides its e-mail.
const HIDDEN: &str = "hidden@example.com";
/// A Teleport user whose e-mail is a prefix of two Jira users' e-mails.
const AMBIGUOUS: &str = "twin@example.com";

/// A sandbox with `people` as the `[jira.people]` section (and `extra` after it), Jira users to
/// be found, and a plugin role that may read users' traits.
async fn sandbox_with(people: &str, extra: &str) -> Sandbox {
    let mut options = SandboxOptions {
        extra_config: format!("\n[jira.people]\n{people}\n{extra}"),
        ..SandboxOptions::default()
    };
    options.jira.users.extend([
        JiraUser::new(REQUESTER_ACCOUNT, "The Requester").with_email("someone-else@example.com"),
        JiraUser::new(FOUND_ACCOUNT, "Found").with_email(FOUND_BY_EMAIL),
        JiraUser::new("712020:hidden", "Hidden").with_hidden_email(HIDDEN),
        JiraUser::new("712020:twin-1", "Twin").with_email(AMBIGUOUS),
        JiraUser::new("712020:twin-2", "Twin Too").with_email("twin@example.com.au"),
    ]);
    let sandbox = Sandbox::with(options).await;
    sandbox
        .teleport
        .add_user(PLUGIN_USER, UserSpec::plugin().with_rules_access());
    sandbox.teleport.add_user(
        REQUESTER,
        UserSpec::requester(&["editor"]).with_trait("jira_account_id", &[REQUESTER_ACCOUNT]),
    );
    for reviewer in [FOUND_BY_EMAIL, HIDDEN, AMBIGUOUS] {
        sandbox
            .teleport
            .add_user(reviewer, UserSpec::reviewer(&["editor"]));
    }
    sandbox
}

fn request_suggesting(sandbox: &Sandbox, reviewers: &[&str]) -> String {
    sandbox.teleport.create_access_request_with(CreateRequest {
        user: REQUESTER.to_owned(),
        roles: vec!["editor".to_owned()],
        reason: REASON.to_owned(),
        suggested_reviewers: reviewers.iter().map(|r| (*r).to_owned()).collect(),
        ..CreateRequest::default()
    })
}

/// Waits until the request's plugin data records that its people were put on the ticket.
async fn wait_for_people(sandbox: &Sandbox, request_id: &str) {
    let done = eventually(|| async {
        sandbox
            .plugin_data(request_id)
            .get("people")
            .is_some_and(|v| v == "done")
    })
    .await;
    assert!(
        done,
        "people never recorded for {request_id}; plugin log:\n{}",
        sandbox.log()
    );
}

fn calls_to(sandbox: &Sandbox, method: &str, path_part: &str) -> usize {
    sandbox
        .jira
        .all_calls()
        .iter()
        .filter(|call| call.method == method && call.path.contains(path_part))
        .count()
}

#[tokio::test]
async fn by_default_nobody_is_looked_up_or_added() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let request = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&request).await;
    sandbox
        .teleport
        .submit_review_as(REVIEWER1, &request, RequestState::Approved, "fine")
        .unwrap();
    let issue = sandbox
        .wait_for_comment(&issue.id, "Access request has been approved")
        .await;
    assert!(!sandbox.plugin_data(&request).contains_key("people"));
    assert_eq!(calls_to(&sandbox, "POST", "/watchers"), 0);
    assert_eq!(calls_to(&sandbox, "GET", "/user/"), 0);
    assert_eq!(calls_to(&sandbox, "PUT", "/issue/"), 0);
    for method in ["GetUser", "GetUserLoginState"] {
        assert_eq!(sandbox.teleport.calls(method), 0, "{method}");
    }
    let resolution = issue
        .comments
        .iter()
        .find(|c| c.body.starts_with("Access request has been approved"))
        .unwrap();
    assert_eq!(
        resolution.body,
        "Access request has been approved\nReason: fine"
    );
}

#[tokio::test]
async fn the_requester_found_by_trait_watches_their_ticket() {
    let mut sandbox = sandbox_with("requester = \"watcher\"", "").await;
    sandbox.start_plugin().await;
    let request = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&request).await;
    wait_for_people(&sandbox, &request).await;
    let issue = sandbox.jira.issue(&issue.id).unwrap();
    assert!(
        issue.watchers.contains(&REQUESTER_ACCOUNT.to_owned()),
        "{:?}",
        issue.watchers
    );
}

#[tokio::test]
async fn the_requester_becomes_reporter_by_an_edit_after_a_plain_creation() {
    let mut sandbox = sandbox_with("requester = \"reporter\"", "").await;
    sandbox.start_plugin().await;
    let request = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&request).await;
    wait_for_people(&sandbox, &request).await;
    assert_eq!(
        sandbox.jira.issue(&issue.id).unwrap().reporter_account_id,
        REQUESTER_ACCOUNT
    );
    let calls = sandbox.jira.call_log();
    let create = calls
        .iter()
        .find(|c| c.method == "POST" && c.path.ends_with("/issue"))
        .unwrap();
    assert!(create.body["fields"].get("reporter").is_none());
    let edit = calls
        .iter()
        .find(|c| c.method == "PUT" && c.path.contains("/issue/"))
        .unwrap();
    assert_eq!(
        edit.body["fields"]["reporter"]["accountId"],
        REQUESTER_ACCOUNT
    );
}

#[tokio::test]
async fn suggested_reviewers_found_by_email_are_mentioned_once_and_the_unsure_left_out() {
    let mut sandbox =
        sandbox_with("email_lookup = true\nsuggested_reviewers = \"mention\"", "").await;
    sandbox.start_plugin().await;
    let request = request_suggesting(&sandbox, &[FOUND_BY_EMAIL, HIDDEN, AMBIGUOUS, "bob"]);
    let issue = sandbox.issue_of(&request).await;
    wait_for_people(&sandbox, &request).await;
    let bodies: Vec<String> = sandbox
        .jira
        .issue(&issue.id)
        .unwrap()
        .comments
        .iter()
        .map(|c| c.body.clone())
        .filter(|body| body.starts_with("Suggested reviewers"))
        .collect();
    assert_eq!(
        bodies,
        [format!("Suggested reviewers: [~accountid:{FOUND_ACCOUNT}]")]
    );
    let searches = sandbox.jira.all_calls();
    let search = searches
        .iter()
        .find(|c| c.path.contains("/user/viewissue/search"))
        .unwrap();
    assert_eq!(search.query["projectKey"], "PROJ");
}

#[tokio::test]
async fn suggested_reviewers_watch_the_ticket() {
    let mut sandbox =
        sandbox_with("email_lookup = true\nsuggested_reviewers = \"watcher\"", "").await;
    sandbox.start_plugin().await;
    let request = request_suggesting(&sandbox, &[FOUND_BY_EMAIL]);
    let issue = sandbox.issue_of(&request).await;
    wait_for_people(&sandbox, &request).await;
    let watchers = sandbox.jira.issue(&issue.id).unwrap().watchers;
    assert!(watchers.contains(&FOUND_ACCOUNT.to_owned()), "{watchers:?}");
}

#[tokio::test]
async fn watching_turned_off_is_warned_once_and_tickets_are_made_all_the_same() {
    let mut sandbox = sandbox_with("requester = \"watcher\"", "").await;
    sandbox.jira.set_watching_enabled(false);
    sandbox.start_plugin().await;
    let first = sandbox.create_request(REASON);
    sandbox.issue_of(&first).await;
    wait_for_people(&sandbox, &first).await;
    let second = sandbox.create_request(REASON);
    sandbox.issue_of(&second).await;
    wait_for_people(&sandbox, &second).await;
    let warning = "this part of [jira.people] is off until restart";
    assert_eq!(
        sandbox.log().matches(warning).count(),
        1,
        "{}",
        sandbox.log()
    );
    assert_eq!(calls_to(&sandbox, "POST", "/watchers"), 1);
}

#[tokio::test]
async fn without_modify_reporter_the_reporter_stays_the_plugin_and_the_ticket_lives_on() {
    let mut sandbox = sandbox_with("requester = \"reporter\"", "").await;
    let plugin = sandbox.jira.plugin_user().account_id;
    let without: Vec<Permission> = Permission::ALL
        .into_iter()
        .filter(|p| *p != Permission::ModifyReporter)
        .collect();
    sandbox.jira.set_user_permissions(&plugin, without).unwrap();
    sandbox.start_plugin().await;
    let request = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&request).await;
    wait_for_people(&sandbox, &request).await;
    assert_eq!(
        sandbox.jira.issue(&issue.id).unwrap().reporter_account_id,
        plugin
    );
    sandbox
        .wait_for_log("this part of [jira.people] is off until restart")
        .await;
    sandbox
        .teleport
        .submit_review_as(REVIEWER1, &request, RequestState::Approved, "fine")
        .unwrap();
    sandbox
        .wait_for_comment(&issue.id, "Access request has been approved")
        .await;
}

#[tokio::test]
async fn the_resolution_comment_lists_the_reviews_and_mentions_the_requester() {
    let mut sandbox = sandbox_with(
        "mention_on_resolution = true",
        "\n[audit]\ntrail_in_ticket = true\n",
    )
    .await;
    sandbox.start_plugin().await;
    let request = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&request).await;
    sandbox
        .teleport
        .submit_review_as(REVIEWER1, &request, RequestState::Approved, "looks fine")
        .unwrap();
    let issue = sandbox
        .wait_for_comment(&issue.id, "Access request has been approved")
        .await;
    let resolution = issue
        .comments
        .iter()
        .find(|c| c.body.starts_with("Access request has been approved"))
        .unwrap();
    assert!(
        resolution.body.starts_with("Access request has been approved\nReason: looks fine\nReviews:\n* *reviewer1@example.com*: *APPROVED* at *"),
        "{}",
        resolution.body
    );
    assert!(
        resolution.body.ends_with(&format!(
            ". Reason: looks fine\n[~accountid:{REQUESTER_ACCOUNT}]"
        )),
        "{}",
        resolution.body
    );
}

#[tokio::test]
async fn a_reminder_mentions_the_reviewers_once_on_a_request_left_pending() {
    let mut sandbox = sandbox_with(
        "email_lookup = true\nremind_after = \"1s\"",
        "\n[reconcile]\nscan_interval = \"1s\"\n",
    )
    .await;
    sandbox.start_plugin().await;
    let request = request_suggesting(&sandbox, &[FOUND_BY_EMAIL]);
    let issue = sandbox.issue_of(&request).await;
    let reminder = format!(
        "This request has been waiting for a review for more than 1s: [~accountid:{FOUND_ACCOUNT}]"
    );
    sandbox.wait_for_comment(&issue.id, &reminder).await;
    // Later steps of the same request (a review comment, then several scans) add no second one.
    sandbox
        .teleport
        .submit_review_as(REVIEWER1, &request, RequestState::Approved, "fine")
        .unwrap();
    let issue = sandbox
        .wait_for_comment(&issue.id, "Access request has been approved")
        .await;
    let reminders = issue
        .comments
        .iter()
        .filter(|c| c.body.starts_with("This request has been waiting"))
        .count();
    assert_eq!(reminders, 1, "{:?}", issue.comment_bodies());
    assert_eq!(sandbox.plugin_data(&request)["reminded"], "done");
}

#[tokio::test]
async fn a_passing_jira_failure_is_tried_again_and_the_watcher_added_once() {
    let mut sandbox = sandbox_with("requester = \"watcher\"", "").await;
    // More failures than the client's own attempts: the step fails and is tried again later.
    sandbox
        .jira
        .faults()
        .fail_next_matching("/watchers", 6, 503);
    sandbox.start_plugin().await;
    let request = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&request).await;
    wait_for_people(&sandbox, &request).await;
    let issue = sandbox.jira.issue(&issue.id).unwrap();
    assert!(issue.watchers.contains(&REQUESTER_ACCOUNT.to_owned()));
    let added = sandbox
        .jira
        .all_calls()
        .iter()
        .filter(|c| c.path.ends_with("/watchers") && c.status == 204)
        .count();
    assert_eq!(added, 1);
}

#[tokio::test]
async fn a_plugin_that_may_not_read_traits_warns_once_and_adds_nobody() {
    let mut sandbox = sandbox_with("requester = \"watcher\"", "").await;
    sandbox.teleport.add_user(PLUGIN_USER, UserSpec::plugin());
    sandbox.start_plugin().await;
    for _ in 0..2 {
        let request = sandbox.create_request(REASON);
        sandbox.issue_of(&request).await;
        wait_for_people(&sandbox, &request).await;
    }
    let warning = "Cannot read requesters' traits";
    assert_eq!(
        sandbox.log().matches(warning).count(),
        1,
        "{}",
        sandbox.log()
    );
    assert_eq!(calls_to(&sandbox, "POST", "/watchers"), 0);
}

/// A Data Center site whose users are named by username; the plugin signs in with a personal
/// access token (`bearer`) or with basic auth.
async fn data_center_sandbox(people: &str, bearer: bool) -> Sandbox {
    let mut options = SandboxOptions {
        jira: FakeJiraOptions {
            tls: true,
            deployment: Deployment::DataCenter,
            ..FakeJiraOptions::default()
        },
        extra_config: format!("\n[jira.people]\n{people}\n"),
        ..SandboxOptions::default()
    };
    options.jira.users.extend([
        JiraUser::new("dc-requester", "The Requester").with_name("requester-dc"),
        JiraUser::new("dc-found", "Found")
            .with_email(FOUND_BY_EMAIL)
            .with_name("found-dc"),
    ]);
    let sandbox = Sandbox::with(options).await;
    if bearer {
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
    }
    sandbox
        .teleport
        .add_user(PLUGIN_USER, UserSpec::plugin().with_rules_access());
    sandbox.teleport.add_user(
        REQUESTER,
        UserSpec::requester(&["editor"]).with_trait("jira_account_id", &["requester-dc"]),
    );
    sandbox
        .teleport
        .add_user(FOUND_BY_EMAIL, UserSpec::reviewer(&["editor"]));
    sandbox
}

#[tokio::test]
async fn on_data_center_people_are_named_by_username() {
    let people = "email_lookup = true\nrequester = \"watcher\"\nsuggested_reviewers = \"mention\"";
    let mut sandbox = data_center_sandbox(people, true).await;
    sandbox.start_plugin().await;
    let request = request_suggesting(&sandbox, &[FOUND_BY_EMAIL]);
    let issue = sandbox.issue_of(&request).await;
    wait_for_people(&sandbox, &request).await;
    let issue = sandbox.jira.issue(&issue.id).unwrap();
    assert!(
        issue.watchers.contains(&"dc-requester".to_owned()),
        "{:?}",
        issue.watchers
    );
    assert!(
        issue
            .comment_bodies()
            .contains(&"Suggested reviewers: [~found-dc]"),
        "{:?}",
        issue.comment_bodies()
    );
}

#[tokio::test]
async fn data_center_with_basic_auth_searches_by_username_once_query_is_refused() {
    let people = "email_lookup = true\nsuggested_reviewers = \"mention\"";
    let mut sandbox = data_center_sandbox(people, false).await;
    sandbox.start_plugin().await;
    let request = request_suggesting(&sandbox, &[FOUND_BY_EMAIL]);
    let issue = sandbox.issue_of(&request).await;
    sandbox
        .wait_for_comment(&issue.id, "Suggested reviewers: [~found-dc]")
        .await;
    let searches: Vec<_> = sandbox
        .jira
        .all_calls()
        .into_iter()
        .filter(|c| c.path.contains("/user/viewissue/search"))
        .map(|c| (c.query.contains_key("username"), c.status))
        .collect();
    assert_eq!(searches, [(false, 400), (true, 200)]);
}

#[tokio::test]
async fn a_jira_failing_to_add_watchers_never_holds_up_a_decision_on_the_board() {
    let mut sandbox = sandbox_with("requester = \"watcher\"", "").await;
    sandbox
        .jira
        .faults()
        .fail_next_matching("/watchers", 100_000, 503);
    sandbox.start_plugin().await;
    let request = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&request).await;
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox
        .wait_for_state(&request, RequestState::Approved)
        .await;
    assert!(!sandbox.plugin_data(&request).contains_key("people"));
}

#[tokio::test]
async fn a_request_resolved_before_remind_after_is_never_reminded() {
    let mut sandbox = sandbox_with(
        "remind_after = \"2s\"",
        "\n[reconcile]\nscan_interval = \"1s\"\n",
    )
    .await;
    sandbox.start_plugin().await;
    let resolved = sandbox.create_request(REASON);
    let resolved_issue = sandbox.issue_of(&resolved).await;
    sandbox
        .teleport
        .submit_review_as(REVIEWER1, &resolved, RequestState::Approved, "fine")
        .unwrap();
    sandbox
        .wait_for_comment(&resolved_issue.id, "Access request has been approved")
        .await;
    // A request made later and left pending is reminded: by then the resolved one, older, has
    // been due for a while and scanned.
    let pending = sandbox.create_request(REASON);
    let pending_issue = sandbox.issue_of(&pending).await;
    sandbox
        .wait_for_comment(
            &pending_issue.id,
            "This request has been waiting for a review",
        )
        .await;
    let resolved_issue = sandbox.jira.issue(&resolved_issue.id).unwrap();
    assert!(
        !resolved_issue
            .comment_bodies()
            .iter()
            .any(|b| b.starts_with("This request has been waiting")),
        "{:?}",
        resolved_issue.comment_bodies()
    );
    assert!(!sandbox.plugin_data(&resolved).contains_key("reminded"));
}
