//! The Jira webhooks of a phase, as FakeJira delivered them to the plugin: attempts, failures
//! and events.

use std::collections::BTreeMap;

use testkit::jira::Delivery;

/// Webhook deliveries FakeJira made during a phase.
#[derive(Clone, Debug, Default)]
pub struct Webhooks {
    pub attempts: usize,
    /// Attempts that got no 2xx (timeouts, refusals, 5xx).
    pub failed: usize,
    /// Failed attempts by HTTP status or error, e.g. `503` or `error: operation timed out`.
    pub failures: BTreeMap<String, usize>,
    /// Attempts by event, e.g. `jira:issue_updated/issue_generic`.
    pub events: BTreeMap<String, usize>,
}

impl Webhooks {
    pub fn tally(deliveries: &[Delivery]) -> Self {
        let mut tally = Self {
            attempts: deliveries.len(),
            ..Self::default()
        };
        for delivery in deliveries {
            *tally.events.entry(delivery.event.clone()).or_default() += 1;
            let why = match (delivery.status_code, &delivery.error) {
                (Some(code), _) if (200..300).contains(&code) => continue,
                (Some(code), _) => code.to_string(),
                (None, Some(error)) => {
                    format!("error: {}", error.chars().take(80).collect::<String>())
                }
                (None, None) => "no answer".to_owned(),
            };
            tally.failed += 1;
            *tally.failures.entry(why).or_default() += 1;
        }
        tally
    }
}
