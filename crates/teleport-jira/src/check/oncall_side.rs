//! The on-call side of `check`, with `[jsm_oncall]` on: the cloud id, the JSM token, read access
//! to each default schedule, and whether the plugin's role may submit reviews.

use super::Report;
use crate::config::Config;
use crate::jsm::{JsmClient, JsmError};
use crate::teleport::{TeleportClient, TeleportError};

const CHECK: &str = "jsm on-call";
/// A request id that cannot exist: Teleport checks the right to review before looking it up.
const PROBE_REQUEST_ID: &str = "00000000-0000-4000-8000-000000000000";

pub(super) async fn check(config: &Config, teleport: Option<&TeleportClient>, report: &mut Report) {
    let oncall = &config.jsm_oncall;
    if !oncall.enabled {
        return;
    }
    if let Some(client) = teleport {
        check_review_permission(client, report).await;
    }
    let jsm = match JsmClient::new(&oncall.api_url, &oncall.email, oncall.api_token.clone()) {
        Ok(jsm) => jsm,
        Err(err) => return report.fail(CHECK, err, "check the system's TLS setup"),
    };
    let cloud_id = match &oncall.cloud_id {
        Some(id) => {
            report.ok(CHECK, format!("cloud id {id} (configured)"));
            id.clone()
        }
        None => match jsm.cloud_id_of(&config.jira.url).await {
            Ok(id) => {
                report.ok(
                    CHECK,
                    format!("cloud id {id} (from {}'s tenant info)", config.jira.url),
                );
                id
            }
            Err(err) => {
                return report.fail(
                    CHECK,
                    format!("cannot read the site's cloud id: {err}"),
                    "set jsm_oncall.cloud_id (Atlassian: \"How to find your cloud ID\")",
                );
            }
        },
    };
    match jsm.readable_schedules(&cloud_id).await {
        Ok(count) => report.ok(
            CHECK,
            format!(
                "{} accepts the token of {}; {count} schedule(s) readable",
                oncall.api_url, oncall.email
            ),
        ),
        Err(err) => return report.fail(CHECK, &err, fix_for(&err)),
    }
    if oncall.default_schedules.is_empty() {
        report.ok(
            CHECK,
            "no default schedules: only requests with the schedules annotation are checked",
        );
    }
    for schedule in &oncall.default_schedules {
        match jsm.on_call(&cloud_id, schedule).await {
            Ok(users) => report.ok(
                CHECK,
                format!("schedule {schedule} readable ({} on call now)", users.len()),
            ),
            Err(err) => report.fail(CHECK, format!("schedule {schedule}: {err}"), fix_for(&err)),
        }
    }
}

fn fix_for(err: &JsmError) -> &'static str {
    match err {
        JsmError::Unauthorized => {
            "set jsm_oncall.email and api_token to an Atlassian account's API token (a scoped one needs read:ops-config:jira-service-management)"
        }
        JsmError::Forbidden { .. } => {
            "make the plugin's Atlassian account a member of the schedule's owning team, or a responder"
        }
        JsmError::NotFound { .. } => "check the schedule id and jsm_oncall.cloud_id",
        _ => "check that api.atlassian.com is reachable from here and retry",
    }
}

/// Probes `SubmitAccessReview` with a request that cannot exist.
async fn check_review_permission(client: &TeleportClient, report: &mut Report) {
    let review = teleport_proto::types::AccessReview {
        proposed_state: teleport_proto::types::RequestState::Approved as i32,
        reason: "teleport-jira check".into(),
        ..Default::default()
    };
    match client.submit_access_review(PROBE_REQUEST_ID, review).await {
        // Teleport only tells here whether the role may review anything; which requested roles
        // it may review is judged per request.
        Ok(_) | Err(TeleportError::NotFound(_)) => report.ok("teleport role", "may submit reviews (review_requests; make sure it covers the roles on-call requesters ask for)"),
        Err(err @ TeleportError::AccessDenied(_)) => report.fail(
            "teleport role",
            format!("may not submit reviews: {err}"),
            "give the plugin's role allow.review_requests.roles for the roles its on-call approval covers",
        ),
        Err(err) => report.fail("teleport role", format!("cannot tell whether it may submit reviews: {err}"), "check that Teleport is healthy and retry"),
    }
}
