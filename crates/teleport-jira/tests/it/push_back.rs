//! Jira pushing back: a burst of requests under Jira Cloud's rate limit, with and without
//! `Retry-After`, and a step that panics. Nothing is lost, nothing is made twice, and a call Jira
//! refused is known not to have happened (no look-up follows it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit::jira::{FakeJiraOptions, RateLimit};

use crate::support::*;

/// Requests created at once.
const BURST: usize = 40;

fn rate_limited(limit: RateLimit) -> SandboxOptions {
    SandboxOptions {
        jira: FakeJiraOptions {
            tls: true,
            rate_limit: Some(limit),
            ..FakeJiraOptions::default()
        },
        ..SandboxOptions::default()
    }
}

/// Creates `BURST` requests at once and waits until each has its issue; returns their ids.
async fn burst_of_requests(sandbox: &Sandbox) -> Vec<String> {
    let ids: Vec<String> = (0..BURST).map(|_| sandbox.create_request(REASON)).collect();
    for id in &ids {
        sandbox.issue_of(id).await;
    }
    ids
}

/// Every request has exactly one issue, and no recovery look-up (a search for a request's
/// label) was made: every refused creation was known not to have happened.
fn assert_one_issue_each_without_look_ups(sandbox: &Sandbox, ids: &[String]) {
    let calls = sandbox.jira.call_log();
    assert_each_request_has_its_own_issue(sandbox, ids);
    let look_ups = calls
        .iter()
        .filter(|call| call.raw_body.contains("teleport-access-request-"))
        .filter(|call| call.path.contains("/search"))
        .count();
    assert_eq!(
        look_ups, 0,
        "a creation answered 429 is not looked for afterwards"
    );
}

/// Refusals the fault knob adds on top of the bucket, so that some surely happen however slowly
/// a loaded machine runs the plugin.
const FORCED_REFUSALS: u32 = 8;
/// Without `Retry-After`, each refusal in a row doubles the pause (0.25 s, 0.5 s, 1 s, …). A burst
/// shares a few bulk calls, so forced refusals come one after another rather than in one wave:
/// three keep the test's pauses under two seconds.
const FORCED_REFUSALS_WITHOUT_RETRY_AFTER: u32 = 3;

/// The calls answered 429: at least the forced ones, and the bucket's own refusals at most a
/// third of all calls: a client that heeds push-back process-wide sends few calls into an empty
/// bucket, where one that retries only the refused call keeps hammering with the others. (A
/// burst shares bulk calls, so all calls are few and the forced refusals alone may be a third.)
fn assert_push_back_heeded(sandbox: &Sandbox, forced: u32) {
    let calls = sandbox.jira.all_calls();
    let refused = calls.iter().filter(|call| call.status == 429).count();
    assert!(refused >= forced as usize, "{refused} refused");
    assert!(
        (refused - forced as usize) * 3 <= calls.len(),
        "{refused} of {} calls were refused; plugin log:\n{}",
        calls.len(),
        sandbox.log()
    );
}

#[tokio::test]
async fn a_burst_under_the_rate_limit_gets_one_issue_per_request() {
    let mut sandbox = Sandbox::with(rate_limited(RateLimit::new(5.0, 2))).await;
    sandbox.start_plugin().await;
    sandbox.jira.faults().rate_limit_next(FORCED_REFUSALS, 1);
    let ids = burst_of_requests(&sandbox).await;
    assert_one_issue_each_without_look_ups(&sandbox, &ids);
    assert_push_back_heeded(&sandbox, FORCED_REFUSALS);
}

#[tokio::test]
async fn a_burst_under_a_rate_limit_without_retry_after_gets_one_issue_per_request() {
    let limit = RateLimit::new(5.0, 2).without_retry_after();
    let mut sandbox = Sandbox::with(rate_limited(limit)).await;
    sandbox.start_plugin().await;
    sandbox
        .jira
        .faults()
        .rate_limit_next_without_retry_after(FORCED_REFUSALS_WITHOUT_RETRY_AFTER);
    let ids = burst_of_requests(&sandbox).await;
    assert_one_issue_each_without_look_ups(&sandbox, &ids);
    assert_push_back_heeded(&sandbox, FORCED_REFUSALS_WITHOUT_RETRY_AFTER);
}

#[tokio::test]
async fn a_step_that_panics_is_retried_and_does_not_jam_its_request() {
    let sandbox = Sandbox::new().await;
    // The debug build's fault hook: the first two steps panic.
    let config = sandbox.config_path.clone();
    let mut plugin = Plugin::spawn_with_env(
        &config,
        &sandbox.path("jira-ca.pem"),
        &["--insecure-no-tls"],
        &[("TELEPORT_JIRA_FAULT_STEP_PANICS", "2")],
    );
    plugin.wait_for_log("Plugin is ready").await;
    let id = sandbox.create_request(REASON);
    let issue = wait_for_issue(&sandbox, &id, &plugin).await;
    // A webhook for the same request is still served by a step, not stuck behind the panic.
    sandbox
        .jira
        .transition_as(&issue, "Approved", JIRA_REVIEWER)
        .unwrap();
    let approved = eventually(|| async {
        sandbox.state_of(&id) == Some(teleport_proto::types::RequestState::Approved)
    })
    .await;
    assert!(approved, "plugin log:\n{}", plugin.log());
    let log = plugin.log();
    assert!(log.contains("A step panicked; will retry"), "{log}");
    assert!(
        log.contains(&id),
        "the panic is logged with its request id:\n{log}"
    );
    plugin.terminate().await;
}

async fn wait_for_issue(sandbox: &Sandbox, id: &str, plugin: &Plugin) -> String {
    let found = eventually(|| async { sandbox.recorded_issue_id(id).is_some() }).await;
    assert!(found, "no issue; plugin log:\n{}", plugin.log());
    sandbox.recorded_issue_id(id).unwrap()
}
