//! A burst of new requests shares Jira calls (`POST issue/bulk`), and each request still ends
//! with exactly its own issue: when Jira creates them all, when it has no bulk create, and when
//! the answer of a bulk call is lost after Jira created the issues.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use teleport_jira::jira::bulk_create::CARRIERS;
use testkit::jira::RecordedCall;

use crate::support::*;

/// Jira's latency during a burst: long enough that the 16 calls that may create issues at once
/// are all on the wire before a loaded machine has prepared the burst's other creations, so
/// these wait and share calls however slowly the plugin runs.
const LATENCY: Duration = Duration::from_millis(400);

/// Starts the plugin, then makes Jira answer after [`LATENCY`], creates `count` requests at once
/// and waits until each has its issue.
async fn burst(sandbox: &mut Sandbox, count: usize) -> Vec<String> {
    sandbox.start_plugin_caught_up().await;
    sandbox.jira.faults().set_latency(LATENCY);
    let ids: Vec<String> = (0..count).map(|_| sandbox.create_request(REASON)).collect();
    for id in &ids {
        sandbox.issue_of(id).await;
    }
    ids
}

fn creations(sandbox: &Sandbox, path: &str) -> Vec<RecordedCall> {
    sandbox
        .jira
        .call_log()
        .into_iter()
        .filter(|call| call.method == "POST" && call.path == path)
        .collect()
}

#[tokio::test]
async fn a_burst_of_new_requests_shares_bulk_calls_and_each_gets_its_own_issue() {
    let mut sandbox = Sandbox::new().await;
    let ids = burst(&mut sandbox, 60).await;
    assert_each_request_has_its_own_issue(&sandbox, &ids);
    let bulk = creations(&sandbox, "/rest/api/2/issue/bulk");
    let single = creations(&sandbox, "/rest/api/2/issue");
    assert!(
        !bulk.is_empty(),
        "no bulk call; plugin log:\n{}",
        sandbox.log()
    );
    assert!(
        bulk.len() + single.len() < ids.len() / 2,
        "{} bulk and {} single creations for {} requests",
        bulk.len(),
        single.len(),
        ids.len()
    );
    for call in &bulk {
        let elements = call.body["issueUpdates"].as_array().unwrap();
        assert!((2..=50).contains(&elements.len()), "{}", elements.len());
    }
}

#[tokio::test]
async fn a_lone_request_is_created_with_the_go_plugins_own_call() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin_caught_up().await;
    let id = sandbox.create_request(REASON);
    sandbox.issue_of(&id).await;
    assert_eq!(creations(&sandbox, "/rest/api/2/issue").len(), 1);
    assert!(creations(&sandbox, "/rest/api/2/issue/bulk").is_empty());
}

#[tokio::test]
async fn without_bulk_create_each_issue_is_created_once_on_its_own_call() {
    let mut sandbox = Sandbox::new().await;
    sandbox.jira.faults().set_bulk_create(false);
    let ids = burst(&mut sandbox, 30).await;
    assert_each_request_has_its_own_issue(&sandbox, &ids);
    // Only the bulk calls already on the wire when the first 405 came back (at most the 16
    // calls that may create issues at once) were tried.
    let tried = creations(&sandbox, "/rest/api/2/issue/bulk");
    assert!(
        (1..=CARRIERS).contains(&tried.len()),
        "bulk tried {} times",
        tried.len()
    );
    assert!(tried.iter().all(|call| call.status == 405));
    assert_eq!(creations(&sandbox, "/rest/api/2/issue").len(), ids.len());
    let log = sandbox.log();
    assert!(log.contains("Jira has no bulk create"), "{log}");
    assert!(
        !log.contains("refused"),
        "no creation is taken as refused:\n{log}"
    );
}

#[tokio::test]
async fn issues_a_bulk_call_created_before_its_answer_was_lost_are_found_not_made_again() {
    let mut sandbox = Sandbox::new().await;
    // Every bulk call is carried out, but its answer is a gateway timeout: the plugin cannot
    // know which issues exist and must look before creating any again.
    sandbox
        .jira
        .faults()
        .fail_after_processing_next("/issue/bulk", 1_000, 504);
    let ids = burst(&mut sandbox, 30).await;
    assert_each_request_has_its_own_issue(&sandbox, &ids);
    assert!(
        !creations(&sandbox, "/rest/api/2/issue/bulk").is_empty(),
        "the burst went through bulk calls"
    );
}

#[tokio::test]
async fn a_bulk_create_that_fails_before_it_ever_worked_is_not_tried_again() {
    let mut sandbox = Sandbox::new().await;
    // Whatever answers POST issue/bulk there fails it (a proxy, a partial Jira): the creations
    // it carried are looked for and made one by one, and no later burst tries bulk again.
    sandbox
        .jira
        .faults()
        .fail_next_matching("/issue/bulk", 1_000, 500);
    let ids = burst(&mut sandbox, 30).await;
    assert_each_request_has_its_own_issue(&sandbox, &ids);
    let tried = || creations(&sandbox, "/rest/api/2/issue/bulk").len();
    let before = tried();
    assert!(
        (1..=CARRIERS).contains(&before),
        "bulk tried {before} times"
    );
    let more: Vec<String> = (0..20).map(|_| sandbox.create_request(REASON)).collect();
    for id in &more {
        sandbox.issue_of(id).await;
    }
    assert_eq!(tried(), before, "bulk tried again after it failed");
    assert!(
        sandbox
            .log()
            .contains("The first bulk create (POST issue/bulk) failed")
    );
}
