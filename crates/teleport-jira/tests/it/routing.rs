//! Routing by Access Monitoring Rules, end to end: rules created in Teleport decide the Jira
//! project, issue type and labels of new requests, or keep them off the board; a plugin that may
//! not read rules, or runs with routing off, sends everything to the configured project.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use teleport_proto::teleport::accessmonitoringrules::v1::{
    AccessMonitoringRule, Schedule, TimeSchedule, time_schedule::Shift,
};
use teleport_proto::types::RequestState;
use testkit::jira::IssueSnapshot;
use testkit::teleport::{UserSpec, access_monitoring_rule};

use crate::support::*;

/// A rule for this plugin (notification `jira`).
fn rule(name: &str, condition: &str, recipients: &[&str]) -> AccessMonitoringRule {
    access_monitoring_rule(name, "jira", condition, recipients)
}

const ROUTING_ON: &str = "\n[access_monitoring_rules]\nenabled = true\n";

fn request_db_admin(sandbox: &Sandbox) -> String {
    sandbox
        .teleport
        .create_access_request(DBA, &["db-admin"], "schema migration")
}

const DB_ADMIN: &str = r#"contains_any(access_request.spec.roles, set("db-admin"))"#;

#[tokio::test]
async fn routing_off_sends_every_request_to_the_configured_project_and_never_lists_rules() {
    let mut sandbox = Sandbox::with_rule_targets("", true).await;
    sandbox
        .teleport
        .upsert_access_monitoring_rule(rule("db", DB_ADMIN, &["OPS"]))
        .unwrap();
    sandbox.start_plugin().await;
    let issue = sandbox.issue_of(&request_db_admin(&sandbox)).await;
    assert_eq!(issue.project_key, "PROJ");
    for method in [
        "ListAccessMonitoringRulesWithFilter",
        "ListAccessMonitoringRules",
        "GetUser",
        "GetUserLoginState",
    ] {
        assert_eq!(sandbox.teleport.calls(method), 0, "{method}");
    }
}

#[tokio::test]
async fn a_plugin_that_may_not_read_rules_routes_statically_and_says_so() {
    let mut sandbox = Sandbox::with_rule_targets(ROUTING_ON, false).await;
    sandbox
        .teleport
        .upsert_access_monitoring_rule(rule("db", DB_ADMIN, &["OPS"]))
        .unwrap();
    sandbox.start_plugin().await;
    sandbox
        .wait_for_log("Teleport does not stream Access Monitoring Rules to this plugin")
        .await;
    let issue = sandbox.issue_of(&request_db_admin(&sandbox)).await;
    assert_eq!(issue.project_key, "PROJ");
}

#[tokio::test]
async fn a_matching_rule_sends_the_issue_to_its_project_type_and_labels_and_decisions_come_back() {
    let mut sandbox = Sandbox::with_rule_targets(ROUTING_ON, true).await;
    sandbox
        .teleport
        .upsert_access_monitoring_rule(rule("db", DB_ADMIN, &["OPS/Bug", "label:db-access"]))
        .unwrap();
    sandbox.start_plugin().await;

    let editor = sandbox.create_request(REASON);
    let db = request_db_admin(&sandbox);
    let unrouted = sandbox.issue_of(&editor).await;
    assert_eq!(
        (unrouted.project_key.as_str(), unrouted.issue_type.as_str()),
        ("PROJ", "Task")
    );
    let routed = sandbox.issue_of(&db).await;
    assert_eq!(
        (routed.project_key.as_str(), routed.issue_type.as_str()),
        ("OPS", "Bug")
    );
    assert!(
        routed.labels.contains(&"db-access".to_owned()),
        "{:?}",
        routed.labels
    );
    let data = sandbox.plugin_data(&db);
    assert_eq!(
        data["issue_key"], routed.key,
        "the Go plugin's keys keep their meaning"
    );
    assert!(data["route"].contains("\"project\":\"OPS\""), "{data:?}");

    // The webhook accepts the routed project's issue, and its decision reaches Teleport.
    sandbox
        .jira
        .transition_as(&routed.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox.wait_for_state(&db, RequestState::Approved).await;
    sandbox
        .wait_for_comment(&routed.id, "Access request has been approved")
        .await;
    let served = sandbox.scrape_metrics().await;
    assert!(
        served.contains(r#"teleport_jira_routing_decisions_total{rule="db",target="OPS/Bug"} 1"#),
        "{served}"
    );
}

#[tokio::test]
async fn matching_rules_are_united_none_wins_and_a_suppressed_request_never_gets_an_issue() {
    let mut sandbox = Sandbox::with_rule_targets(ROUTING_ON, true).await;
    let teleport = &sandbox.teleport;
    teleport
        .upsert_access_monitoring_rule(rule("a-sec", "true", &["SEC", "label:audited"]))
        .unwrap();
    teleport
        .upsert_access_monitoring_rule(rule("b-ops", DB_ADMIN, &["OPS", "label:db"]))
        .unwrap();
    teleport
        .upsert_access_monitoring_rule(rule(
            "c-quiet",
            r#"access_request.spec.request_reason == "no ticket""#,
            &["none"],
        ))
        .unwrap();
    sandbox.start_plugin().await;

    let quiet = sandbox
        .teleport
        .create_access_request(DBA, &["db-admin"], "no ticket");
    let db = request_db_admin(&sandbox);
    let routed = sandbox.issue_of(&db).await;
    assert_eq!(
        routed.project_key, "SEC",
        "the first matching rule by name picks the project"
    );
    for label in ["audited", "db"] {
        assert!(
            routed.labels.contains(&label.to_owned()),
            "{:?}",
            routed.labels
        );
    }
    let recorded = eventually(|| async {
        sandbox
            .teleport
            .plugin_data(&quiet, "jira")
            .is_some_and(|d| d.get("route").is_some_and(|r| r.contains("suppressed")))
    })
    .await;
    assert!(
        recorded,
        "the suppressed request is recorded; log:\n{}",
        sandbox.log()
    );
    let data = sandbox.plugin_data(&quiet);
    assert_eq!(data.get("issue_id").map(String::as_str).unwrap_or(""), "");
    assert_eq!(
        data.get("lease").map(String::as_str).unwrap_or(""),
        "",
        "no lease is left"
    );

    // Resolved, it still gets nothing; a later request shows the plugin went on working.
    sandbox
        .teleport
        .set_state_as("admin", &quiet, RequestState::Denied, "no", "")
        .unwrap();
    let later = sandbox.create_request(REASON);
    sandbox.issue_of(&later).await;
    let quiet_issues = sandbox
        .jira
        .issues_with_property("teleportAccessRequestId", &serde_json::json!(quiet));
    assert!(quiet_issues.is_empty(), "{quiet_issues:?}");
}

/// A schedule of shifts covering every minute of the given weekdays in Los Angeles.
fn all_day(weekdays: &[&str]) -> Schedule {
    Schedule {
        time: Some(TimeSchedule {
            shifts: weekdays
                .iter()
                .map(|day| Shift {
                    weekday: (*day).into(),
                    start: "00:00".into(),
                    end: "23:59".into(),
                })
                .collect(),
            timezone: "America/Los_Angeles".into(),
        }),
    }
}

#[tokio::test]
async fn a_rule_whose_schedule_is_off_shift_does_not_match() {
    const WEEK: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let mut sandbox = Sandbox::with_rule_targets(ROUTING_ON, true).await;
    // Today in Los Angeles, and the days three and four days off: whatever the clock says while
    // the test runs, the off-shift rule cannot match and the always-on one must.
    let today = jiff::Timestamp::now()
        .in_tz("America/Los_Angeles")
        .unwrap()
        .weekday()
        .to_monday_zero_offset() as usize;
    let off = [WEEK[(today + 3) % 7], WEEK[(today + 4) % 7]];
    let mut off_shift = rule("a-off-shift", "true", &["OPS"]);
    off_shift.spec.as_mut().unwrap().schedules =
        HashMap::from([("business".to_owned(), all_day(&off))]);
    let mut on_shift = rule("b-on-shift", "true", &["SEC"]);
    on_shift.spec.as_mut().unwrap().schedules =
        HashMap::from([("always".to_owned(), all_day(&WEEK))]);
    sandbox
        .teleport
        .upsert_access_monitoring_rule(off_shift)
        .unwrap();
    sandbox
        .teleport
        .upsert_access_monitoring_rule(on_shift)
        .unwrap();
    sandbox.start_plugin().await;
    let issue = sandbox.issue_of(&sandbox.create_request(REASON)).await;
    assert_eq!(issue.project_key, "SEC");
}

#[tokio::test]
async fn a_rule_with_a_bad_condition_is_skipped_logged_and_counted() {
    let mut sandbox = Sandbox::with_rule_targets(ROUTING_ON, true).await;
    sandbox
        .teleport
        .upsert_access_monitoring_rule(rule(
            "a-broken",
            "access_request.spec.roles.contains(",
            &["OPS"],
        ))
        .unwrap();
    sandbox
        .teleport
        .upsert_access_monitoring_rule(rule("b-good", "true", &["SEC"]))
        .unwrap();
    sandbox.start_plugin().await;
    let issue = sandbox.issue_of(&sandbox.create_request(REASON)).await;
    assert_eq!(issue.project_key, "SEC");
    sandbox
        .wait_for_log("An Access Monitoring Rule can never match")
        .await;
    let served = sandbox.scrape_metrics().await;
    assert!(
        served.contains(r#"teleport_jira_rule_errors_total{reason="parse"} 1"#),
        "{served}"
    );
}

#[tokio::test]
async fn rules_put_and_deleted_while_running_route_only_new_requests() {
    let mut sandbox = Sandbox::with_rule_targets(ROUTING_ON, true).await;
    sandbox.start_plugin().await;
    let before = sandbox.issue_of(&sandbox.create_request(REASON)).await;
    assert_eq!(before.project_key, "PROJ");

    sandbox
        .teleport
        .upsert_access_monitoring_rule(rule("ops", "true", &["OPS"]))
        .unwrap();
    sandbox.wait_for_log("Access Monitoring Rule applies").await;
    let during = sandbox.issue_of(&sandbox.create_request(REASON)).await;
    assert_eq!(during.project_key, "OPS");

    // A rule changed to another plugin's notification no longer applies.
    let moved = access_monitoring_rule("ops", "slack", "true", &["OPS"]);
    sandbox
        .teleport
        .upsert_access_monitoring_rule(moved)
        .unwrap();
    sandbox
        .wait_for_log("Access Monitoring Rule does not apply to this plugin")
        .await;
    let after_move = sandbox.issue_of(&sandbox.create_request(REASON)).await;
    assert_eq!(after_move.project_key, "PROJ");

    sandbox
        .teleport
        .upsert_access_monitoring_rule(rule("sec", "true", &["SEC"]))
        .unwrap();
    sandbox.wait_for_log("Access Monitoring Rule applies").await;
    sandbox
        .teleport
        .delete_access_monitoring_rule("sec")
        .unwrap();
    sandbox.wait_for_log("Access Monitoring Rule deleted").await;
    let after_delete = sandbox.issue_of(&sandbox.create_request(REASON)).await;
    assert_eq!(after_delete.project_key, "PROJ");
    let unmoved: IssueSnapshot = sandbox.jira.issue(&during.id).unwrap();
    assert_eq!(unmoved.project_key, "OPS", "rule changes never move issues");
}

#[tokio::test]
async fn conditions_read_traits_and_rules_are_filtered_here_on_servers_without_the_filter() {
    let mut sandbox = Sandbox::with_rule_targets(ROUTING_ON, true).await;
    sandbox.teleport.set_rules_filter_unimplemented(true);
    sandbox.teleport.add_user(
        DBA,
        UserSpec::requester(&["editor", "db-admin"]).with_login_state_traits(&[("team", &["dba"])]),
    );
    // Another plugin's rule, first by name, must not apply here.
    let slack = access_monitoring_rule("a-slack", "slack", "true", &["SEC"]);
    sandbox
        .teleport
        .upsert_access_monitoring_rule(slack)
        .unwrap();
    sandbox
        .teleport
        .upsert_access_monitoring_rule(rule(
            "b-team",
            r#"contains_any(user.traits["team"], set("dba"))"#,
            &["OPS"],
        ))
        .unwrap();
    sandbox.start_plugin().await;
    let dba = sandbox.issue_of(&request_db_admin(&sandbox)).await;
    assert_eq!(dba.project_key, "OPS");
    let other = sandbox.issue_of(&sandbox.create_request(REASON)).await;
    assert_eq!(other.project_key, "PROJ");
    assert!(sandbox.teleport.calls("ListAccessMonitoringRules") > 0);
    assert!(sandbox.teleport.calls("GetUserLoginState") > 0);
}

#[tokio::test]
async fn a_target_jira_refuses_sends_the_request_to_the_configured_project_instead() {
    let mut sandbox = Sandbox::with_rule_targets(ROUTING_ON, true).await;
    sandbox
        .teleport
        .upsert_access_monitoring_rule(rule("ghost", "true", &["GHOST", "label:from-ghost"]))
        .unwrap();
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    assert_eq!(issue.project_key, "PROJ");
    assert!(
        issue.labels.contains(&"from-ghost".to_owned()),
        "{:?}",
        issue.labels
    );
    assert!(sandbox.plugin_data(&id)["route"].contains("\"project\":\"PROJ\""));
    sandbox
        .wait_for_log("Jira refuses issues where an Access Monitoring Rule sends them")
        .await;
    let served = sandbox.scrape_metrics().await;
    assert!(
        served.contains(r#"teleport_jira_rule_errors_total{reason="target"} 1"#),
        "{served}"
    );
    assert_eq!(sandbox.jira.created_issue_count(), 1);
}

#[tokio::test]
async fn a_request_the_go_plugin_recorded_stays_in_the_configured_project_with_routing_on() {
    let mut sandbox = Sandbox::with_rule_targets(ROUTING_ON, true).await;
    sandbox
        .teleport
        .upsert_access_monitoring_rule(rule("all", "true", &["OPS"]))
        .unwrap();
    // The Go plugin's record without an issue (its creation failed): the plugin looks for the
    // issue and makes it where the Go plugin would have, not where the rule now says.
    let id = sandbox.create_request(REASON);
    let go_data = sandbox.go_plugin_data(&id, None);
    sandbox.teleport.set_plugin_data(&id, "jira", go_data);
    sandbox.start_plugin().await;
    let issue = sandbox.issue_of(&id).await;
    assert_eq!(issue.project_key, "PROJ");
    let fresh = sandbox.issue_of(&sandbox.create_request(REASON)).await;
    assert_eq!(fresh.project_key, "OPS", "new requests follow the rule");
}
