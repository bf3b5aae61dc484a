//! What a webhook body says, and the deliveries already seen (Jira re-delivers).

use std::collections::{HashSet, VecDeque};

use serde::Deserialize;

/// Delivery identifiers remembered to recognise Jira's re-deliveries.
const SEEN_DELIVERIES: usize = 4096;

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(default, rename = "webhookEvent")]
    webhook_event: String,
    #[serde(default)]
    issue_event_type_name: String,
    #[serde(default)]
    issue: Option<PayloadIssue>,
}

#[derive(Debug, Deserialize)]
struct PayloadIssue {
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// What a webhook body asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// An event that never carries a decision (issue created, deleted, …).
    Ignored,
    /// Something happened to this issue.
    Issue(String),
}

/// Why a webhook body was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadDelivery {
    #[error("malformed JSON payload")]
    Malformed,
    #[error("got webhook without issue info")]
    NoIssue,
}

/// Reads a webhook body. Only the event name and the issue id are taken from it: everything else
/// is read from Jira itself.
pub fn parse_delivery(body: &[u8]) -> Result<Delivery, BadDelivery> {
    let payload: Payload = serde_json::from_slice(body).map_err(|_| BadDelivery::Malformed)?;
    // Comment, assignment and transition events all arrive as `jira:issue_updated`; what changed
    // is read from Jira, so any of them may carry a decision.
    if payload.webhook_event != "jira:issue_updated" {
        return Ok(Delivery::Ignored);
    }
    // A comment never moves a card; the plugin's own comments would otherwise echo back as a
    // second step for every decision.
    if matches!(
        payload.issue_event_type_name.as_str(),
        "issue_commented" | "issue_comment_edited" | "issue_comment_deleted"
    ) {
        return Ok(Delivery::Ignored);
    }
    match payload.issue.and_then(|issue| issue.id) {
        Some(serde_json::Value::String(id)) if !id.is_empty() && id.len() <= 64 => {
            Ok(Delivery::Issue(id))
        }
        Some(serde_json::Value::Number(id)) => Ok(Delivery::Issue(id.to_string())),
        _ => Err(BadDelivery::NoIssue),
    }
}

/// A bounded set of recent delivery identifiers.
#[derive(Default)]
pub(super) struct Deliveries {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Deliveries {
    pub(super) fn insert(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > SEEN_DELIVERIES
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }

    pub(super) fn remove(&mut self, id: &str) {
        self.ids.remove(id);
        self.order.retain(|seen| seen != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_events_are_ignored_and_transitions_of_any_type_are_not() {
        let event = |kind: &str| {
            format!(
                r#"{{"webhookEvent":"jira:issue_updated","issue_event_type_name":"{kind}","issue":{{"id":"7"}}}}"#
            )
        };
        assert_eq!(
            parse_delivery(event("issue_commented").as_bytes()),
            Ok(Delivery::Ignored)
        );
        assert_eq!(
            parse_delivery(event("issue_generic").as_bytes()),
            Ok(Delivery::Issue("7".into()))
        );
        assert_eq!(
            parse_delivery(event("issue_resolved").as_bytes()),
            Ok(Delivery::Issue("7".into()))
        );
    }

    #[test]
    fn deliveries_remember_a_bounded_number_of_ids() {
        let mut seen = Deliveries::default();
        assert!(seen.insert("a"));
        assert!(!seen.insert("a"));
        for i in 0..SEEN_DELIVERIES {
            seen.insert(&i.to_string());
        }
        assert!(seen.insert("a"), "the oldest id is forgotten");
    }
}
