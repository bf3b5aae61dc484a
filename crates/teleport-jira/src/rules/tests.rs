//! Routing decisions over rule sets, as operators write rules.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use teleport_proto::teleport::accessmonitoringrules::v1::{
    AccessMonitoringRule, Schedule, TimeSchedule, time_schedule::Shift,
};
use testkit::teleport::access_monitoring_rule;

use super::*;

fn rule(name: &str, condition: &str, recipients: &[&str]) -> AccessMonitoringRule {
    access_monitoring_rule(name, "jira", condition, recipients)
}

fn set_of(rules: &[AccessMonitoringRule]) -> RuleSet {
    let mut set = RuleSet::new("jira");
    set.replace_all(rules);
    set
}

fn facts(roles: &[&str]) -> Facts {
    Facts {
        roles: roles.iter().map(|r| (*r).into()).collect(),
        user: "alice".into(),
        creation_time: "2026-12-07T18:00:00Z".parse().unwrap(),
        ..Facts::default()
    }
}

fn target(rule: &str, project: Option<&str>, issue_type: Option<&str>, labels: &[&str]) -> Route {
    Route::To(Target {
        rule: rule.into(),
        project: project.map(Into::into),
        issue_type: issue_type.map(Into::into),
        labels: labels.iter().map(|l| (*l).into()).collect(),
    })
}

const DB: &str = r#"contains_any(access_request.spec.roles, set("db-admin"))"#;

#[test]
fn no_matching_rule_routes_statically() {
    let set = set_of(&[rule("db", DB, &["OPS/Bug"])]);
    assert_eq!(set.route(&facts(&["editor"])).route, Route::Static);
    assert_eq!(
        RuleSet::new("jira").route(&facts(&["db-admin"])).route,
        Route::Static
    );
}

#[test]
fn a_matching_rule_chooses_project_issue_type_and_labels() {
    let set = set_of(&[rule("db", DB, &["OPS/Bug", "label:db-access"])]);
    assert_eq!(
        set.route(&facts(&["db-admin"])).route,
        target("db", Some("OPS"), Some("Bug"), &["db-access"])
    );
}

#[test]
fn recipients_of_every_match_are_united_and_the_first_rule_by_name_picks_the_project() {
    let set = set_of(&[
        rule("b-sec", "true", &["SEC", "label:audit"]),
        rule("a-ops", DB, &["OPS", "label:db"]),
        rule("c-labels", "true", &["label:audit", "label:all"]),
    ]);
    assert_eq!(
        set.route(&facts(&["db-admin"])).route,
        target("a-ops", Some("OPS"), None, &["db", "audit", "all"])
    );
    assert_eq!(
        set.route(&facts(&["editor"])).route,
        target("b-sec", Some("SEC"), None, &["audit", "all"])
    );
}

#[test]
fn labels_alone_keep_the_static_project() {
    let set = set_of(&[rule("tag", "true", &["label:from-rule"])]);
    assert_eq!(
        set.route(&facts(&[])).route,
        target("tag", None, None, &["from-rule"])
    );
}

#[test]
fn none_wins_over_every_other_recipient() {
    let set = set_of(&[
        rule("a", "true", &["OPS"]),
        rule("quiet", r#"access_request.spec.user == "alice""#, &["none"]),
    ]);
    assert_eq!(
        set.route(&facts(&[])).route,
        Route::Suppressed {
            rule: "quiet".into()
        }
    );
}

#[test]
fn rules_for_other_plugins_or_subjects_do_not_apply() {
    let slack = access_monitoring_rule("slack", "slack", "true", &["OPS"]);
    let mut other_subject = rule("other", "true", &["OPS"]);
    other_subject.spec.as_mut().unwrap().subjects = vec!["something_else".into()];
    let set = set_of(&[slack, other_subject]);
    assert!(set.is_empty());
}

#[test]
fn a_put_that_no_longer_applies_removes_the_rule_and_delete_forgets_it() {
    let mut set = set_of(&[rule("db", DB, &["OPS"]), rule("sec", "true", &["SEC"])]);
    let moved = access_monitoring_rule("db", "slack", DB, &["OPS"]);
    set.put(&moved);
    set.delete("sec");
    assert!(set.is_empty());
}

#[test]
fn broken_rules_are_skipped_and_reported_while_others_still_route() {
    let set = set_of(&[
        rule("a-bad", "access_request.spec.roles.contains(", &["BAD"]),
        rule("b-type", r#"access_request.spec.user && true"#, &["BAD"]),
        rule("c-good", "true", &["OPS"]),
    ]);
    let routing = set.route(&facts(&[]));
    assert_eq!(routing.route, target("c-good", Some("OPS"), None, &[]));
    let reasons: Vec<_> = routing
        .skipped
        .iter()
        .map(|(name, err)| (name.as_str(), err.reason()))
        .collect();
    assert_eq!(reasons, [("a-bad", "parse"), ("b-type", "evaluate")]);
}

#[test]
fn unreadable_recipients_are_kept_aside_and_the_rest_route() {
    let set = set_of(&[rule("r", "true", &["#channel", "OPS"])]);
    let only = set.rules().next().unwrap();
    assert_eq!(only.unreadable_recipients().len(), 1);
    assert_eq!(
        set.route(&facts(&[])).route,
        target("r", Some("OPS"), None, &[])
    );
    assert_eq!(set.projects().into_iter().collect::<Vec<_>>(), ["OPS"]);
}

#[test]
fn a_schedule_outside_its_shift_does_not_match() {
    let mut business = rule("hours", "true", &["OPS"]);
    business.spec.as_mut().unwrap().schedules = HashMap::from([(
        "business".to_owned(),
        Schedule {
            time: Some(TimeSchedule {
                shifts: vec![Shift {
                    weekday: "Monday".into(),
                    start: "09:00".into(),
                    end: "17:00".into(),
                }],
                timezone: "America/Los_Angeles".into(),
            }),
        },
    )]);
    let set = set_of(&[business]);
    // Monday 10:00 in Los Angeles, then Monday 02:00 there.
    let mut inside = facts(&[]);
    inside.creation_time = "2026-12-07T18:00:00Z".parse().unwrap();
    let mut outside = facts(&[]);
    outside.creation_time = "2026-12-07T10:00:00Z".parse().unwrap();
    assert_eq!(
        set.route(&inside).route,
        target("hours", Some("OPS"), None, &[])
    );
    assert_eq!(set.route(&outside).route, Route::Static);
}

fn approving_set(rules: &[AccessMonitoringRule]) -> RuleSet {
    let mut set = RuleSet::new("jira").with_review_integration("jsm-oncall");
    set.replace_all(rules);
    set
}

#[test]
fn without_approving_rules_every_request_is_eligible_for_the_on_call_check() {
    let set = approving_set(&[rule("db", DB, &["OPS"])]);
    assert_eq!(
        set.eligibility(&facts(&["db-admin"])).0,
        Eligibility::NoRules
    );
}

#[test]
fn approving_rules_for_the_integration_choose_the_eligible_requests() {
    use testkit::teleport::automatic_review_rule;
    let set = approving_set(&[
        automatic_review_rule("db-oncall", "jsm-oncall", "APPROVED", DB),
        automatic_review_rule("deny-all", "jsm-oncall", "DENIED", "true"),
        automatic_review_rule("other", "pagerduty", "APPROVED", "true"),
    ]);
    assert_eq!(set.approving_rules().count(), 1);
    assert_eq!(
        set.eligibility(&facts(&["db-admin"])).0,
        Eligibility::Matched("db-oncall".into())
    );
    assert_eq!(set.eligibility(&facts(&["editor"])).0, Eligibility::NoMatch);
    // Approving rules never route, and a set without the integration keeps none.
    assert_eq!(set.route(&facts(&["db-admin"])).route, Route::Static);
    let routing_only = set_of(&[automatic_review_rule(
        "db-oncall",
        "jsm-oncall",
        "APPROVED",
        DB,
    )]);
    assert_eq!(routing_only.approving_rules().count(), 0);
}

#[test]
fn an_approving_rule_that_cannot_be_evaluated_is_skipped_and_named() {
    use testkit::teleport::automatic_review_rule;
    let mut set = approving_set(&[automatic_review_rule(
        "broken",
        "jsm-oncall",
        "APPROVED",
        "contains_any(",
    )]);
    let (eligibility, skipped) = set.eligibility(&facts(&["db-admin"]));
    assert_eq!(eligibility, Eligibility::NoMatch);
    assert_eq!(skipped[0].0, "broken");
    set.delete("broken");
    assert_eq!(
        set.eligibility(&facts(&["db-admin"])).0,
        Eligibility::NoRules
    );
}

#[test]
fn approving_rules_never_listed_or_unreadable_make_eligibility_unknown() {
    let unlisted = RuleSet::new("jira").with_review_integration("jsm-oncall");
    assert_eq!(
        unlisted.eligibility(&facts(&["db-admin"])).0,
        Eligibility::Unknown
    );
    let mut set = approving_set(&[]);
    assert_eq!(
        set.eligibility(&facts(&["db-admin"])).0,
        Eligibility::NoRules
    );
    set.forget_all();
    assert_eq!(
        set.eligibility(&facts(&["db-admin"])).0,
        Eligibility::Unknown
    );
    // Without a review integration no rule is ever consulted.
    assert_eq!(
        RuleSet::new("jira").eligibility(&facts(&[])).0,
        Eligibility::NoRules
    );
}
