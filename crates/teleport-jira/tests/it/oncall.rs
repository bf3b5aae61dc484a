//! On-call approval through JSM Operations, end to end: a requester on call in a schedule named
//! by the request's annotation (or the defaults) gets exactly one APPROVED review from the
//! plugin's own user; anyone else, or any failure on the way, gets none, and the ticket is made
//! all the same. The check runs once per request, across replays and restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use teleport_proto::types::RequestState;
use testkit::jira::JiraUser;
use testkit::jsm::{FakeJsmOps, FakeJsmOptions, JsmAccount, JsmSchedule};
use testkit::teleport::{CreateRequest, UserSpec, automatic_review_rule};

use crate::support::*;

const ALICE: &str = "alice@example.com";
const ALICE_ACCOUNT: &str = "acc-alice";
const PRIMARY: &str = "sched-primary";
const SECONDARY: &str = "sched-secondary";
const ANNOTATION: &str = "teleport.dev/schedules";

/// FakeJsmOps with the plugin's Atlassian account (the [jira] login) and two schedules:
/// alice is on call in the primary one only.
async fn jsm() -> FakeJsmOps {
    jsm_with(
        plugin_account(),
        vec![
            JsmSchedule::new(PRIMARY, "Primary", &[]).with_team("team-sre", &[ALICE_ACCOUNT]),
            JsmSchedule::new(SECONDARY, "Secondary", &["acc-bob"]),
        ],
    )
    .await
}

/// The plugin's Atlassian account: the [jira] login of the sandbox.
fn plugin_account() -> JsmAccount {
    JsmAccount::new("557058:plugin-0001", "plugin@example.com", "xyz")
}

/// FakeJsmOps for the sandbox's site, with one account and these schedules.
async fn jsm_with(account: JsmAccount, schedules: Vec<JsmSchedule>) -> FakeJsmOps {
    FakeJsmOps::start(FakeJsmOptions {
        cloud_id: "cloud-acme".into(),
        accounts: vec![account],
        schedules,
    })
    .await
    .unwrap()
}

/// A sandbox whose Jira site has the fake's cloud id, with `[jsm_oncall]` on (plus `extra`),
/// the plugin allowed to review and read users, and alice (trait set unless `with_trait` is
/// false) who may request `editor` with thresholds `approvals`.
async fn sandbox(jsm: &FakeJsmOps, extra: &str, with_trait: bool, approvals: u32) -> Sandbox {
    let options = SandboxOptions {
        extra_config: format!(
            "\n[jsm_oncall]\nenabled = true\napi_url = \"{}\"\n{extra}",
            jsm.url()
        ),
        jira: testkit::jira::FakeJiraOptions {
            tls: true,
            cloud_id: "cloud-acme".into(),
            ..testkit::jira::FakeJiraOptions::default()
        },
        ..SandboxOptions::default()
    };
    let sandbox = Sandbox::with(options).await;
    let ca_file = sandbox.path("jira-ca.pem");
    let bundle = std::fs::read_to_string(&ca_file).unwrap() + jsm.ca_pem();
    std::fs::write(&ca_file, bundle).unwrap();
    let plugin = UserSpec {
        review_roles: vec!["*".into()],
        ..UserSpec::plugin().with_rules_access()
    };
    sandbox.teleport.add_user(PLUGIN_USER, plugin);
    let mut alice = UserSpec::requester(&["editor"]).with_thresholds(approvals, 1);
    if with_trait {
        alice = alice.with_trait("jira_account_id", &[ALICE_ACCOUNT]);
    }
    sandbox.teleport.add_user(ALICE, alice);
    sandbox
}

fn request_with_schedules(sandbox: &Sandbox, schedules: &[&str]) -> String {
    let mut annotations = HashMap::new();
    if !schedules.is_empty() {
        let values = schedules.iter().map(|s| (*s).to_owned()).collect();
        annotations.insert(ANNOTATION.to_owned(), values);
    }
    sandbox.teleport.create_access_request_with(CreateRequest {
        user: ALICE.into(),
        roles: vec!["editor".into()],
        reason: "prod incident".into(),
        system_annotations: annotations,
        ..CreateRequest::default()
    })
}

/// The recorded end of the request's on-call check, once there is one.
async fn on_call_record(sandbox: &Sandbox, id: &str) -> String {
    let recorded = eventually(|| async { sandbox.plugin_data(id).contains_key("oncall") }).await;
    assert!(recorded, "no on-call record; log:\n{}", sandbox.log());
    sandbox.plugin_data(id)["oncall"].clone()
}

fn plugin_reviews(sandbox: &Sandbox, id: &str) -> usize {
    let request = sandbox.teleport.access_request(id).unwrap();
    let reviews = request.spec.unwrap().reviews;
    reviews.iter().filter(|r| r.author == PLUGIN_USER).count()
}

#[tokio::test]
async fn a_requester_on_call_gets_one_approving_review_and_a_comment_on_the_ticket() {
    let jsm = jsm().await;
    let mut sandbox = sandbox(&jsm, "", true, 1).await;
    sandbox.start_plugin().await;
    let id = request_with_schedules(&sandbox, &[SECONDARY, PRIMARY]);
    let issue = sandbox.issue_of(&id).await;
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    assert_eq!(plugin_reviews(&sandbox, &id), 1);
    let review = sandbox
        .teleport
        .access_request(&id)
        .unwrap()
        .spec
        .unwrap()
        .reviews[0]
        .clone();
    assert!(review.reason.contains(PRIMARY), "{}", review.reason);
    assert!(!review.reason.contains(SECONDARY), "{}", review.reason);
    sandbox
        .wait_for_comment(&issue.id, "on call in JSM schedule(s) sched-primary")
        .await;
    assert_eq!(
        on_call_record(&sandbox, &id).await,
        r#"{"outcome":"reviewed","schedules":["sched-primary"]}"#
    );
    assert_eq!(sandbox.teleport.calls("SetAccessRequestState"), 0);
    let calls = jsm.calls();
    assert!(calls.iter().all(|c| c.query == "flat=true"), "{calls:?}");
    assert!(
        sandbox
            .scrape_metrics()
            .await
            .contains("teleport_jira_oncall_checks_total{outcome=\"approved\"} 1")
    );
}

#[tokio::test]
async fn with_two_approvals_needed_the_plugins_review_leaves_the_request_pending() {
    let jsm = jsm().await;
    let mut sandbox = sandbox(&jsm, "", true, 2).await;
    sandbox.start_plugin().await;
    let id = request_with_schedules(&sandbox, &[PRIMARY]);
    on_call_record(&sandbox, &id).await;
    assert_eq!(plugin_reviews(&sandbox, &id), 1);
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));
}

#[tokio::test]
async fn a_requester_not_on_call_gets_no_review_and_default_schedules_apply_without_annotation() {
    let jsm = jsm().await;
    let defaults = format!("default_schedules = [\"{SECONDARY}\"]\n");
    let mut sandbox = sandbox(&jsm, &defaults, true, 1).await;
    sandbox.start_plugin().await;
    let id = request_with_schedules(&sandbox, &[]);
    sandbox.issue_of(&id).await;
    assert_eq!(
        on_call_record(&sandbox, &id).await,
        r#"{"outcome":"not_on_call"}"#
    );
    assert_eq!(jsm.on_call_reads(SECONDARY), 1);
    assert_eq!(plugin_reviews(&sandbox, &id), 0);
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));
}

#[tokio::test]
async fn a_request_without_schedules_is_never_checked() {
    let jsm = jsm().await;
    let mut sandbox = sandbox(&jsm, "", true, 1).await;
    sandbox.start_plugin().await;
    let id = request_with_schedules(&sandbox, &[]);
    sandbox.issue_of(&id).await;
    // A later request that is checked proves the first one had its chance.
    let later = request_with_schedules(&sandbox, &[SECONDARY]);
    on_call_record(&sandbox, &later).await;
    assert!(!sandbox.plugin_data(&id).contains_key("oncall"));
    assert_eq!(jsm.calls().len(), 1);
}

#[tokio::test]
async fn without_the_trait_and_without_email_lookup_the_requester_is_unresolved() {
    let jsm = jsm().await;
    let mut sandbox = sandbox(&jsm, "", false, 1).await;
    sandbox.start_plugin().await;
    let id = request_with_schedules(&sandbox, &[PRIMARY]);
    assert_eq!(
        on_call_record(&sandbox, &id).await,
        r#"{"outcome":"skipped","cause":"unresolved"}"#
    );
    assert_eq!(plugin_reviews(&sandbox, &id), 0);
    assert!(jsm.calls().is_empty());
    sandbox
        .wait_for_log("the requester's Atlassian account id is unknown")
        .await;
}

#[tokio::test]
async fn email_lookup_finds_the_one_jira_user_with_the_requesters_email() {
    let jsm = jsm().await;
    let mut sandbox = sandbox(&jsm, "email_lookup = true\n", false, 1).await;
    sandbox
        .jira
        .add_user(JiraUser::new(ALICE_ACCOUNT, "Alice").with_email(ALICE));
    sandbox.start_plugin().await;
    let id = request_with_schedules(&sandbox, &[PRIMARY]);
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    assert_eq!(plugin_reviews(&sandbox, &id), 1);
}

#[tokio::test]
async fn two_jira_users_matching_the_email_approve_nobody() {
    let jsm = jsm().await;
    let mut sandbox = sandbox(&jsm, "email_lookup = true\n", false, 1).await;
    sandbox
        .jira
        .add_user(JiraUser::new(ALICE_ACCOUNT, "Alice").with_email(ALICE));
    sandbox
        .jira
        .add_user(JiraUser::new("acc-alice-2", "Alice Again").with_email(ALICE));
    sandbox.start_plugin().await;
    let id = request_with_schedules(&sandbox, &[PRIMARY]);
    assert_eq!(
        on_call_record(&sandbox, &id).await,
        r#"{"outcome":"skipped","cause":"unresolved"}"#
    );
    assert_eq!(plugin_reviews(&sandbox, &id), 0);
}

/// Each refusal of JSM ends the check without approval, counted by its cause.
#[tokio::test]
async fn refusals_of_jsm_approve_nobody_and_are_counted_by_cause() {
    for (status, cause) in [
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "not_found"),
        (429, "rate_limited"),
        (503, "server_error"),
    ] {
        let jsm = jsm().await;
        // Three times: every attempt (429 after its Retry-After second, 503 after 2 s and 4 s).
        jsm.fail_next(3, status, (status == 429).then_some(1));
        let mut sandbox = sandbox(&jsm, "", true, 1).await;
        sandbox.start_plugin().await;
        let id = request_with_schedules(&sandbox, &[PRIMARY]);
        let expected = format!(r#"{{"outcome":"skipped","cause":"{cause}"}}"#);
        assert_eq!(on_call_record(&sandbox, &id).await, expected, "{status}");
        assert_eq!(plugin_reviews(&sandbox, &id), 0, "{status}");
        sandbox.issue_of(&id).await;
        let scraped = sandbox.scrape_metrics().await;
        let series = format!("teleport_jira_oncall_failures_total{{reason=\"{cause}\"}} 1");
        assert!(scraped.contains(&series), "{status}: {scraped}");
        assert!(scraped.contains("teleport_jira_oncall_checks_total{outcome=\"failed\"} 1"));
    }
}

#[tokio::test]
async fn a_rate_limited_check_waits_for_retry_after_and_then_approves() {
    let jsm = jsm().await;
    jsm.fail_next(1, 429, Some(1));
    let mut sandbox = sandbox(&jsm, "", true, 1).await;
    sandbox.start_plugin().await;
    let id = request_with_schedules(&sandbox, &[PRIMARY]);
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    assert_eq!(jsm.on_call_reads(PRIMARY), 2);
}

#[tokio::test]
async fn replays_and_a_restart_submit_no_second_review() {
    let jsm = jsm().await;
    let mut sandbox = sandbox(&jsm, "", true, 2).await;
    sandbox.start_plugin().await;
    let id = request_with_schedules(&sandbox, &[PRIMARY]);
    on_call_record(&sandbox, &id).await;
    // A replayed watch event: the watch reconnects and lists every request again.
    let listings = sandbox.teleport.calls("ListAccessRequests");
    sandbox.teleport.drop_watch_streams();
    let listed_again =
        eventually(|| async { sandbox.teleport.calls("ListAccessRequests") > listings }).await;
    assert!(listed_again, "{}", sandbox.log());
    sandbox.plugin().terminate().await;
    sandbox.start_plugin().await;
    // A new request checked after the restart proves the old one was seen again by then.
    let later = request_with_schedules(&sandbox, &[PRIMARY]);
    on_call_record(&sandbox, &later).await;
    assert_eq!(plugin_reviews(&sandbox, &id), 1);
    assert_eq!(jsm.on_call_reads(PRIMARY), 2);
    assert_eq!(sandbox.teleport.calls("SubmitAccessReview"), 2);
}

#[tokio::test]
async fn a_review_teleport_already_has_counts_as_done() {
    let jsm = jsm().await;
    let mut sandbox = sandbox(&jsm, "", true, 2).await;
    let id = request_with_schedules(&sandbox, &[PRIMARY]);
    sandbox
        .teleport
        .submit_review_as(PLUGIN_USER, &id, RequestState::Approved, "earlier")
        .unwrap();
    sandbox.start_plugin().await;
    assert_eq!(
        on_call_record(&sandbox, &id).await,
        r#"{"outcome":"reviewed","schedules":["sched-primary"]}"#
    );
    assert_eq!(plugin_reviews(&sandbox, &id), 1);
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));
}

#[tokio::test]
async fn approving_rules_choose_which_requests_are_eligible() {
    let jsm = jsm().await;
    let extra = "\n[access_monitoring_rules]\nenabled = true\n";
    let mut sandbox = sandbox(&jsm, "", true, 1).await;
    let config = std::fs::read_to_string(&sandbox.config_path).unwrap() + extra;
    std::fs::write(&sandbox.config_path, config).unwrap();
    let prod = r#"access_request.spec.request_reason == "prod incident""#;
    for rule in [
        automatic_review_rule("oncall-prod", "jsm-oncall", "APPROVED", prod),
        automatic_review_rule("deny-everything", "jsm-oncall", "DENIED", "true"),
    ] {
        sandbox
            .teleport
            .upsert_access_monitoring_rule(rule)
            .unwrap();
    }
    sandbox.start_plugin().await;
    let eligible = request_with_schedules(&sandbox, &[PRIMARY]);
    sandbox
        .wait_for_state(&eligible, RequestState::Approved)
        .await;
    let other = sandbox.teleport.create_access_request_with(CreateRequest {
        user: ALICE.into(),
        roles: vec!["editor".into()],
        reason: "curiosity".into(),
        system_annotations: HashMap::from([(ANNOTATION.to_owned(), vec![PRIMARY.to_owned()])]),
        ..CreateRequest::default()
    });
    assert_eq!(
        on_call_record(&sandbox, &other).await,
        r#"{"outcome":"skipped","cause":"not_eligible"}"#
    );
    assert_eq!(plugin_reviews(&sandbox, &other), 0);
}

/// Runs `teleport-jira check` on the sandbox's config: (exit code, OK lines, FAIL lines).
async fn check(sandbox: &Sandbox) -> (Option<i32>, Vec<String>, Vec<String>) {
    let output = tokio::process::Command::new(BINARY)
        .args(["check", "--insecure-no-tls", "--config"])
        .arg(&sandbox.config_path)
        .env("SSL_CERT_FILE", sandbox.path("jira-ca.pem"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines = |prefix: &str| {
        stdout
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    (output.status.code(), lines("OK "), lines("FAIL "))
}

#[tokio::test]
async fn check_verifies_the_cloud_id_the_token_each_default_schedule_and_the_review_right() {
    let jsm = jsm().await;
    let defaults = format!("default_schedules = [\"{PRIMARY}\"]\n");
    let sandbox = sandbox(&jsm, &defaults, true, 1).await;
    let (code, ok, failed) = check(&sandbox).await;
    assert_eq!(code, Some(0), "{failed:#?}");
    let said = ok.join("\n");
    for needle in [
        "may submit reviews",
        "cloud id cloud-acme (from",
        "accepts the token of plugin@example.com",
        "schedule sched-primary readable (1 on call now)",
    ] {
        assert!(said.contains(needle), "{needle}: {said}");
    }
    // The review right is probed with a request that cannot exist.
    assert_eq!(sandbox.teleport.calls("SubmitAccessReview"), 1);
}

#[tokio::test]
async fn check_fails_for_an_unreadable_schedule_a_refused_token_and_a_plugin_that_may_not_review() {
    let jsm = jsm_with(
        plugin_account(),
        vec![JsmSchedule::new(PRIMARY, "Primary", &[]).readable_only_by(&["someone-else"])],
    )
    .await;
    let defaults = format!("default_schedules = [\"{PRIMARY}\", \"nope\"]\n");
    let sandbox = sandbox(&jsm, &defaults, true, 1).await;
    sandbox.teleport.add_user(PLUGIN_USER, UserSpec::plugin());
    let (code, _, failed) = check(&sandbox).await;
    assert_eq!(code, Some(1));
    let said = failed.join("\n");
    for needle in [
        "may not submit reviews",
        "schedule sched-primary: no read access",
        "schedule nope: schedule \"nope\" not found (404)",
    ] {
        assert!(said.contains(needle), "{needle}: {said}");
    }
    std::fs::write(
        &sandbox.config_path,
        std::fs::read_to_string(&sandbox.config_path)
            .unwrap()
            .replace(
                "enabled = true\n",
                "enabled = true\napi_token = \"wrong\"\n",
            ),
    )
    .unwrap();
    let (_, _, failed) = check(&sandbox).await;
    assert!(
        failed
            .iter()
            .any(|l| l.contains("refused the credentials (401)")),
        "{failed:#?}"
    );
}

#[tokio::test]
async fn approving_rules_that_cannot_be_read_approve_nobody() {
    let jsm = jsm().await;
    let mut sandbox = sandbox(&jsm, "", true, 1).await;
    let config = std::fs::read_to_string(&sandbox.config_path).unwrap()
        + "\n[access_monitoring_rules]\nenabled = true\n";
    std::fs::write(&sandbox.config_path, config).unwrap();
    // The plugin may review and read users, but not read rules.
    let plugin = UserSpec {
        review_roles: vec!["*".into()],
        read_users: true,
        ..UserSpec::plugin()
    };
    sandbox.teleport.add_user(PLUGIN_USER, plugin);
    sandbox.start_plugin().await;
    let id = request_with_schedules(&sandbox, &[PRIMARY]);
    assert_eq!(
        on_call_record(&sandbox, &id).await,
        r#"{"outcome":"skipped","cause":"not_eligible"}"#
    );
    assert_eq!(plugin_reviews(&sandbox, &id), 0);
    assert!(jsm.calls().iter().all(|c| !c.path.contains("on-calls")));
    sandbox
        .wait_for_log("the approving Access Monitoring Rules cannot be read")
        .await;
}

#[tokio::test]
async fn a_rotated_jsm_token_file_is_used_after_sighup() {
    let jsm = jsm_with(
        JsmAccount::new("acc-ops", "ops@example.com", "rotated"),
        vec![JsmSchedule::new(PRIMARY, "Primary", &[ALICE_ACCOUNT])],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("jsm-token");
    std::fs::write(&token_file, "expired\n").unwrap();
    let keys = format!(
        "email = \"ops@example.com\"\napi_token = \"{}\"\ncloud_id = \"cloud-acme\"\n",
        token_file.display()
    );
    let mut sandbox = sandbox(&jsm, &keys, true, 2).await;
    sandbox.start_plugin().await;
    let before = request_with_schedules(&sandbox, &[PRIMARY]);
    assert_eq!(
        on_call_record(&sandbox, &before).await,
        r#"{"outcome":"skipped","cause":"unauthorized"}"#
    );
    std::fs::write(&token_file, "rotated\n").unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &sandbox.plugin().pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    sandbox.wait_for_log("jsm_oncall.api_token").await;
    let after = request_with_schedules(&sandbox, &[PRIMARY]);
    assert_eq!(
        on_call_record(&sandbox, &after).await,
        r#"{"outcome":"reviewed","schedules":["sched-primary"]}"#
    );
}
