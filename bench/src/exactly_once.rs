//! Nothing duplicated: read from the fakes once a phase has settled. After a burst, FakeJira
//! created exactly one issue per request and each request's plugin data names its own; after the
//! decisions, FakeTeleport's audit log resolves each request exactly once. A breach is a run
//! failure, whatever the figures.

use std::collections::HashMap;

use serde_json::Value;

use crate::sandbox::Sandbox;

/// The issue property the plugin stamps with the request ID on every issue it creates.
const REQUEST_ID_PROPERTY: &str = "teleportAccessRequestId";
/// How many breaches are spelled out; the rest are counted.
const SHOWN: usize = 5;

/// A request and the issue its plugin data named when the burst saw it.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub request_id: String,
    pub issue_id: String,
}

/// What a phase left behind, against one issue and one resolution per request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExactlyOnce {
    /// Burst: issues FakeJira created during the phase (N when none was duplicated).
    pub issues_created: Option<usize>,
    /// Burst: issues created beyond one per request.
    pub duplicate_issues: usize,
    /// Decisions: requests FakeTeleport's audit log resolves more than once.
    pub double_resolutions: usize,
    /// Each breach in words, for the report's failures.
    pub breaches: Vec<String>,
}

/// After a burst: `created_before` is FakeJira's issue count when the phase began.
pub fn check_issues(sandbox: &Sandbox, tickets: &[Ticket], created_before: usize) -> ExactlyOnce {
    let created = sandbox
        .jira
        .created_issue_count()
        .saturating_sub(created_before);
    let mut breaches = Vec::new();
    if created != tickets.len() {
        breaches.push(format!(
            "FakeJira created {created} issues for {} requests",
            tickets.len()
        ));
    }
    let mut naming: HashMap<&str, usize> = HashMap::new();
    for ticket in tickets {
        *naming.entry(ticket.issue_id.as_str()).or_default() += 1;
        let now = sandbox.recorded_issue_id(&ticket.request_id);
        if now.as_deref() != Some(ticket.issue_id.as_str()) {
            breaches.push(format!(
                "request {}: plugin data named issue {}, now {now:?}",
                ticket.request_id, ticket.issue_id
            ));
        }
    }
    let mut shared: Vec<String> = naming
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(issue, count)| format!("issue {issue} is named by {count} requests"))
        .collect();
    shared.sort();
    breaches.extend(shared);
    breaches.extend(issues_per_request(sandbox, tickets));
    ExactlyOnce {
        issues_created: Some(created),
        duplicate_issues: created.saturating_sub(tickets.len()),
        double_resolutions: 0,
        breaches: shorten(breaches),
    }
}

/// Requests with more than one live issue stamped with their ID.
fn issues_per_request(sandbox: &Sandbox, tickets: &[Ticket]) -> Vec<String> {
    let mut keys: HashMap<String, Vec<String>> = HashMap::new();
    for issue in sandbox.jira.issues() {
        if let Some(Value::String(request)) = issue.properties.get(REQUEST_ID_PROPERTY) {
            keys.entry(request.clone()).or_default().push(issue.key);
        }
    }
    tickets
        .iter()
        .filter_map(|ticket| {
            let keys = keys.get(&ticket.request_id)?;
            (keys.len() > 1).then(|| {
                format!(
                    "request {} has {} issues: {}",
                    ticket.request_id,
                    keys.len(),
                    keys.join(", ")
                )
            })
        })
        .collect()
}

/// After the decisions: every request in `ids` resolved exactly once.
pub fn check_resolutions(sandbox: &Sandbox, ids: &[String]) -> ExactlyOnce {
    let mut resolved: HashMap<&str, usize> = ids.iter().map(|id| (id.as_str(), 0)).collect();
    for event in sandbox.teleport.audit_events() {
        if let Some(count) = resolved.get_mut(event.request_id.as_str()) {
            *count += 1;
        }
    }
    let mut breaches: Vec<String> = ids
        .iter()
        .filter_map(|id| {
            let count = resolved[id.as_str()];
            (count != 1).then(|| format!("request {id} resolved {count} times"))
        })
        .collect();
    let double_resolutions = resolved.values().filter(|count| **count > 1).count();
    breaches.sort();
    ExactlyOnce {
        issues_created: None,
        duplicate_issues: 0,
        double_resolutions,
        breaches: shorten(breaches),
    }
}

/// The first [`SHOWN`] breaches, and how many more there were.
fn shorten(mut breaches: Vec<String>) -> Vec<String> {
    if breaches.len() > SHOWN {
        let more = breaches.len() - SHOWN;
        breaches.truncate(SHOWN);
        breaches.push(format!("... and {more} more"));
    }
    breaches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_of_breaches_are_cut() {
        let many: Vec<String> = (0..8).map(|i| format!("breach {i}")).collect();
        let cut = shorten(many);
        assert_eq!(cut.len(), SHOWN + 1);
        assert_eq!(cut.last().map(String::as_str), Some("... and 3 more"));
        assert_eq!(shorten(vec!["one".into()]), vec!["one".to_owned()]);
    }
}
