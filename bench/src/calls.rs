//! What the plugin asked of the fakes during a phase: Jira REST calls (from FakeJira's call log,
//! grouped by endpoint) and Teleport RPCs (from FakeTeleport's per-method counters).

use std::collections::BTreeMap;

use testkit::jira::{FakeJira, RecordedCall};
use testkit::teleport::FakeTeleport;

/// The Teleport RPCs a plugin makes (the fake counts each by gRPC method name).
const TELEPORT_METHODS: [&str; 8] = [
    "Ping",
    "WatchEvents",
    "ListAccessRequests",
    "GetAccessRequestsV2",
    "GetPluginData",
    "UpdatePluginData",
    "SetAccessRequestState",
    "SubmitAccessReview",
];

/// Jira's answer when its rate limit refuses a call.
const TOO_MANY_REQUESTS: u16 = 429;

/// Jira calls in a window of the call log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JiraCalls {
    pub total: usize,
    /// Answers other than 2xx (faults, refusals, conflicts), 429s included.
    pub failed: usize,
    /// Answers 429: Jira's rate limit pushing back.
    pub rate_limited: usize,
    /// `METHOD /path/with/{id}` → count.
    pub by_endpoint: BTreeMap<String, usize>,
}

impl JiraCalls {
    /// Tallies `calls`.
    pub fn tally(calls: &[RecordedCall]) -> Self {
        let mut tally = Self::default();
        for call in calls {
            tally.total += 1;
            if !(200..300).contains(&call.status) {
                tally.failed += 1;
            }
            if call.status == TOO_MANY_REQUESTS {
                tally.rate_limited += 1;
            }
            *tally
                .by_endpoint
                .entry(endpoint(&call.method, &call.path))
                .or_default() += 1;
        }
        tally
    }

    pub fn per_request(&self, n: usize) -> f64 {
        ratio(self.total, n)
    }

    /// The share of calls answered 429 (0 when there were none).
    pub fn rate_limited_share(&self) -> f64 {
        ratio(self.rate_limited, self.total)
    }

    /// Both windows of a phase together.
    pub fn plus(&self, other: &Self) -> Self {
        let mut sum = self.clone();
        sum.total += other.total;
        sum.failed += other.failed;
        sum.rate_limited += other.rate_limited;
        for (endpoint, count) in &other.by_endpoint {
            *sum.by_endpoint.entry(endpoint.clone()).or_default() += count;
        }
        sum
    }
}

/// A mark in FakeJira's call log; the calls after it are read in one copy at the end of a phase.
#[derive(Clone, Copy, Debug)]
pub struct JiraMark(usize);

impl JiraMark {
    pub fn now(jira: &FakeJira) -> Self {
        Self(jira.all_calls().len())
    }

    /// The calls since this mark, and a mark at the end of them.
    pub fn since(self, jira: &FakeJira) -> (JiraCalls, Self) {
        let calls = jira.all_calls();
        let window = calls.get(self.0..).unwrap_or_default();
        (JiraCalls::tally(window), Self(calls.len()))
    }
}

/// `METHOD path` with numeric IDs and issue keys replaced by `{id}`.
fn endpoint(method: &str, path: &str) -> String {
    let mut previous = "";
    let path: Vec<&str> = path
        .split('/')
        .map(|segment| {
            // The API version after `api` stays: `/rest/api/2/…`.
            let version = std::mem::replace(&mut previous, segment) == "api";
            let numeric = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
            let issue_key = segment.split_once('-').is_some_and(|(project, number)| {
                !project.is_empty()
                    && project.bytes().all(|b| b.is_ascii_uppercase())
                    && !number.is_empty()
                    && number.bytes().all(|b| b.is_ascii_digit())
            });
            if (numeric || issue_key) && !version {
                "{id}"
            } else {
                segment
            }
        })
        .collect();
    format!("{method} {}", path.join("/"))
}

/// Teleport RPC counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TeleportRpcs(pub BTreeMap<&'static str, usize>);

impl TeleportRpcs {
    pub fn now(teleport: &FakeTeleport) -> Self {
        Self(
            TELEPORT_METHODS
                .iter()
                .map(|method| (*method, teleport.calls(method)))
                .collect(),
        )
    }

    /// The calls made between `earlier` and `self`, zero counts left out.
    pub fn since(&self, earlier: &Self) -> Self {
        Self(
            self.0
                .iter()
                .map(|(method, count)| {
                    let before = earlier.0.get(method).copied().unwrap_or(0);
                    (*method, count.saturating_sub(before))
                })
                .filter(|(_, count)| *count > 0)
                .collect(),
        )
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }
}

pub fn ratio(count: usize, n: usize) -> f64 {
    if n == 0 { 0.0 } else { count as f64 / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(status: u16) -> RecordedCall {
        RecordedCall {
            method: "POST".into(),
            path: "/rest/api/2/issue".into(),
            query: BTreeMap::new(),
            body: serde_json::Value::Null,
            raw_body: String::new(),
            status,
            caller: None,
            received_at: std::time::Instant::now(),
        }
    }

    #[test]
    fn refusals_are_counted_apart_from_other_failures() {
        let calls = [call(201), call(429), call(429), call(503)];
        let tally = JiraCalls::tally(&calls);
        assert_eq!((tally.total, tally.failed, tally.rate_limited), (4, 3, 2));
        assert!((tally.rate_limited_share() - 0.5).abs() < 1e-9);
        let both = tally.plus(&JiraCalls::tally(&[call(200)]));
        assert_eq!((both.total, both.rate_limited), (5, 2));
        assert_eq!(both.by_endpoint.get("POST /rest/api/2/issue"), Some(&5));
    }

    #[test]
    fn endpoints_hide_ids_and_keys() {
        assert_eq!(
            endpoint("GET", "/rest/api/2/issue/10023/comment"),
            "GET /rest/api/2/issue/{id}/comment"
        );
        assert_eq!(
            endpoint("POST", "/rest/api/2/issue/PROJ-17/transitions"),
            "POST /rest/api/2/issue/{id}/transitions"
        );
        assert_eq!(
            endpoint("GET", "/rest/api/2/search/jql"),
            "GET /rest/api/2/search/jql"
        );
        assert_eq!(
            endpoint("GET", "/rest/api/2/myself"),
            "GET /rest/api/2/myself"
        );
    }
}
