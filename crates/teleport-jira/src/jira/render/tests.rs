#![allow(clippy::unwrap_used)]

use super::*;
use time::macros::datetime;

fn roles(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn view<'a>(roles: &'a [String], reason: &'a str) -> RequestView<'a> {
    RequestView {
        id: "8bdbda57-6f72-44b5-ae66-f8f7d8578ec3",
        user: "alice@example.com",
        roles,
        reason,
        created: Some(datetime!(2026-11-25 07:51:17.069592 UTC)),
        link: None,
        resources: &[],
        access_expires: None,
        suggested_reviewers: &[],
    }
}

#[test]
fn description_matches_the_go_plugins_golden_body_with_user_text_escaped() {
    let roles = roles(&["editor", "auditor"]);
    let reason =
        "Need to fix the *prod* outage; see [runbook|https://example.com/rb] {code}rm -rf{code}";
    assert_eq!(
        description(&view(&roles, reason)),
        "User *alice@example.com* requested an access on *25 Nov 26 07:51 UTC* with the following roles:\n\n* editor\n\n* auditor\n\n\nReason: *Need to fix the \\*prod\\* outage; see \\[runbook\\|https\\://example.com/rb\\] \\{code\\}rm \\-rf\\{code\\}*\n\nRequest ID: *8bdbda57-6f72-44b5-ae66-f8f7d8578ec3*\n"
    );
}

#[test]
fn description_of_plain_input_is_the_go_plugins_byte_for_byte() {
    let roles = roles(&["editor", "auditor"]);
    assert_eq!(
        description(&view(&roles, "Need to fix the prod outage")),
        "User *alice@example.com* requested an access on *25 Nov 26 07:51 UTC* with the following roles:\n\n* editor\n\n* auditor\n\n\nReason: *Need to fix the prod outage*\n\nRequest ID: *8bdbda57-6f72-44b5-ae66-f8f7d8578ec3*\n"
    );
}

#[test]
fn description_lists_resources_expiry_and_reviewers_after_the_go_text() {
    let roles = roles(&["node-access"]);
    let resources = [teleport_proto::types::ResourceId {
        cluster_name: "prod".into(),
        kind: "node".into(),
        name: "db-1".into(),
        sub_resource_name: String::new(),
    }];
    let reviewers = ["bob@example.com".to_owned()];
    let mut v = view(&roles, "");
    v.resources = &resources;
    v.access_expires = Some(datetime!(2026-11-25 19:51:00 UTC));
    v.suggested_reviewers = &reviewers;
    let text = description(&v);
    let go_part = "with the following roles:\n\n* node-access\n\n\nRequest ID: *8bdbda57-6f72-44b5-ae66-f8f7d8578ec3*\n";
    assert!(text.contains(go_part), "{text}");
    assert!(text.ends_with(
        "\nRequested resources:\n* node: db-1 (cluster prod)\n\nAccess until: *25 Nov 26 19:51 UTC*\n\nSuggested reviewers: bob@example.com\n"
    ), "{text}");
}

#[test]
fn description_without_reason_collapses_blank_lines() {
    let roles = roles(&["editor"]);
    let mut v = view(&roles, "");
    v.id = "4f3ea060-bf80-4572-aa16-4a475594a8ec";
    v.user = "dave@example.com";
    assert_eq!(
        description(&v),
        "User *dave@example.com* requested an access on *25 Nov 26 07:51 UTC* with the following roles:\n\n* editor\n\n\nRequest ID: *4f3ea060-bf80-4572-aa16-4a475594a8ec*\n"
    );
}

#[test]
fn description_cuts_the_reason_at_3000_bytes() {
    let roles = roles(&["editor"]);
    let reason = format!("because of {}", "A".repeat(3000 + 10));
    let text = description(&view(&roles, &reason));
    let run = text.split("Reason: *because of ").nth(1).unwrap();
    assert_eq!(run.chars().take_while(|c| *c == 'A').count(), 2989);
}

#[test]
fn description_ends_with_the_request_link_when_known() {
    let roles = roles(&["editor"]);
    let mut v = view(&roles, "");
    v.link = request_link("teleport.example.com:443", v.id);
    assert!(description(&v).ends_with(
        "To approve or deny the request, proceed to https://teleport.example.com/web/requests/8bdbda57-6f72-44b5-ae66-f8f7d8578ec3"
    ));
}

#[test]
fn summary_lists_roles_or_counts_them_when_too_long() {
    let one = roles(&["editor"]);
    let mut v = view(&one, "");
    v.user = "my-user";
    assert_eq!(summary(&v), "my-user requested editor");
    let many: Vec<String> = (0..1000).map(|_| "editor".to_owned()).collect();
    v.roles = &many;
    assert_eq!(summary(&v), "my-user requested access to 1000 roles");
}

#[test]
fn review_comment_matches_the_golden_body() {
    let review = AccessReview {
        author: "bob@example.com".into(),
        proposed_state: RequestState::Approved as i32,
        reason: "looks fine".into(),
        created: Some(prost_types::Timestamp {
            seconds: datetime!(2026-11-25 07:51:17 UTC).unix_timestamp(),
            nanos: 0,
        }),
        ..Default::default()
    };
    assert_eq!(
        review_comment(&review),
        "*bob@example.com* reviewed the request at *25 Nov 26 07:51 UTC*.\nResolution: *APPROVED*.\nReason: looks fine."
    );
}

#[test]
fn resolution_comments_match_the_golden_bodies() {
    assert_eq!(
        resolution_comment("approved", "approved for the incident"),
        "Access request has been approved\nReason: approved for the incident"
    );
    assert_eq!(
        resolution_comment("expired", ""),
        "Access request has been expired\n"
    );
}

#[test]
fn unset_teleport_timestamps_are_none() {
    assert!(
        timestamp(&prost_types::Timestamp {
            seconds: -62_135_596_800,
            nanos: 0
        })
        .is_none()
    );
}

#[test]
fn the_review_trail_lists_every_review_on_its_own_line() {
    let review = |author: &str, state: RequestState, reason: &str| AccessReview {
        author: author.into(),
        proposed_state: state as i32,
        reason: reason.into(),
        created: Some(prost_types::Timestamp {
            seconds: 1_795_593_060,
            nanos: 0,
        }),
        ..Default::default()
    };
    assert_eq!(
        review_trail(&[
            review("bob", RequestState::Approved, "ok"),
            review("carol", RequestState::Denied, ""),
        ]),
        "\nReviews:\n* *bob*: *APPROVED* at *25 Nov 26 07:51 UTC*. Reason: ok\n* *carol*: *DENIED* at *25 Nov 26 07:51 UTC*"
    );
    assert_eq!(review_trail(&[]), "\nReviews: none.");
}
