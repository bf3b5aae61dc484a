//! The plugin data the Jira plugin keeps in Teleport for each access request, in the Go plugin's
//! exact encoding (plugin name `jira`, nine keys, all always written), so a cluster can move between
//! the Go plugin and this one in either direction.
//!
//! One key of our own, `lease`, exists only while a process is writing to Jira for the request (see
//! [`Lease`]). The Go plugin neither reads nor compares it, and it is removed when the work is done.
//! Another, `route`, exists only when an Access Monitoring Rule chose where the issue goes (see
//! [`Routed`]); it stays for the request's life, so every later step finds the issue there.
//! `oncall` records how the request's on-call check (`[jsm_oncall]`) ended, so it runs once.
//! Three more record what `[jira.people]` and `[audit]` did once, so that neither a restart nor
//! another replica does it again: `people` (the requester and suggested reviewers were put on the
//! ticket), `reminded` (the reminder was posted) and `audit` (the JSON line is being, or was,
//! written). Each exists only once set; the Go plugin ignores them all, as it does `decided_by`
//! (the Jira user on whose behalf the plugin resolved the request, for the audit line).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Plugin name under which the data is stored, shared with the Go plugin.
pub const PLUGIN_NAME: &str = "jira";

const USER: &str = "user";
const ROLES: &str = "roles";
const CREATED: &str = "created";
const REQUEST_REASON: &str = "request_reason";
const REVIEWS_COUNT: &str = "reviews_count";
const RESOLUTION: &str = "resolution";
const RESOLVE_REASON: &str = "resolve_reason";
const ISSUE_ID: &str = "issue_id";
const ISSUE_KEY: &str = "issue_key";
pub const LEASE_KEY: &str = "lease";
pub const ROUTE_KEY: &str = "route";
pub const ONCALL_KEY: &str = "oncall";
const PEOPLE_KEY: &str = "people";
const REMINDED_KEY: &str = "reminded";
const AUDIT_KEY: &str = "audit";
const DECIDED_BY_KEY: &str = "decided_by";
/// The value of a once-only key that is set.
const DONE: &str = "done";

/// The keys the Go plugin writes, in a fixed order.
pub const KEYS: [&str; 9] = [
    USER,
    ROLES,
    CREATED,
    REQUEST_REASON,
    REVIEWS_COUNT,
    RESOLUTION,
    RESOLVE_REASON,
    ISSUE_ID,
    ISSUE_KEY,
];

/// What is known about one access request's issue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginData {
    pub user: String,
    pub roles: Vec<String>,
    /// Creation time of the request, at second precision; `None` when unknown.
    pub created: Option<OffsetDateTime>,
    pub request_reason: String,
    /// How many of the request's reviews already have a comment on the issue.
    pub reviews_count: usize,
    /// `None` until the issue has been resolved.
    pub resolution: Option<Resolution>,
    pub resolve_reason: String,
    pub issue: Option<IssueRef>,
    /// Who is writing to Jira for this request right now, if anyone.
    pub lease: Option<Lease>,
    /// Where a rule sent the issue; `None`: the configured project and issue type.
    pub route: Option<Routed>,
    /// What the on-call check of the request found, once it ran to an end.
    pub oncall: Option<OnCallCheck>,
    /// Whether the people `[jira.people]` puts on the ticket were added (or given up on).
    pub people_added: bool,
    /// Whether the reminder of a long-pending request was posted.
    pub reminded: bool,
    /// Where the request's line in the audit file stands; `None`: not started.
    pub audit: Option<AuditMark>,
    /// Who the plugin resolved the request on behalf of (`jira:<e-mail or account id>`), when a
    /// decision on the board resolved it; empty otherwise.
    pub decided_by: String,
}

/// The end of a request's on-call check (JSM Operations), recorded so that it runs once per
/// request across restarts and replicas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OnCallCheck {
    /// The requester was on call: the plugin's approving review is in Teleport.
    Reviewed { schedules: Vec<String> },
    /// The requester was on call in none of the schedules.
    NotOnCall,
    /// No approval, for this reason (a short label).
    Skipped { cause: String },
}

impl OnCallCheck {
    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn decode(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// The request's line in `[audit] jsonl_path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditMark {
    /// A process is about to append it, or stopped between appending and recording that it did:
    /// whoever finds this checks the file before appending.
    Writing,
    Written,
}

impl AuditMark {
    fn encode(self) -> &'static str {
        match self {
            Self::Writing => "writing",
            Self::Written => "written",
        }
    }

    fn decode(text: &str) -> Option<Self> {
        match text {
            "writing" => Some(Self::Writing),
            "written" => Some(Self::Written),
            _ => None,
        }
    }
}

/// What an Access Monitoring Rule decided for a request, recorded before its issue is made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Routed {
    /// A rule said `none`: the request has no issue, and none is ever made for it.
    Suppressed { rule: String },
    /// The issue goes to this project, as this issue type, with these extra labels.
    Project {
        rule: String,
        project: String,
        issue_type: String,
        labels: Vec<String>,
    },
}

impl Routed {
    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn decode(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// A claim on a request's Jira work, taken and released with compare-and-swap, so that replicas
/// never write to Jira for the same request at once. A lease another process has seen unchanged
/// for a full time-to-live, on its own clock, belongs to a process that died; that process may
/// take it over (and then redoes the work idempotently).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// A random id of the process holding it.
    pub owner: String,
    /// When it was taken or last renewed (Unix seconds, by the holder's clock): a renewal changes
    /// it, which is what other processes watch; 0 when the holder gave it up at once.
    pub since: i64,
    /// The highest issue number known in the project when the lease was taken (0: the project
    /// had none; `None`: unknown). Issues created under this lease have higher numbers, which a
    /// successor can read back without search.
    pub after_issue: Option<u64>,
}

impl Lease {
    fn encode(&self) -> String {
        let after = self
            .after_issue
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        format!("{} {} {after}", self.owner, self.since)
    }

    fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split(' ');
        let owner = parts.next().filter(|o| !o.is_empty())?.to_owned();
        let since = parts.next()?.parse().ok()?;
        let after_issue = parts.next().and_then(|n| n.parse().ok());
        Some(Self {
            owner,
            since,
            after_issue,
        })
    }
}

/// The Jira issue made for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueRef {
    pub id: String,
    pub key: String,
}

/// How the request ended, as recorded on the issue. The text forms are the Go plugin's tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    Approved,
    Denied,
    Expired,
    Promoted,
    /// A tag written by some other version; kept verbatim so a rewrite does not change it.
    Other(String),
}

impl Resolution {
    pub fn tag(&self) -> &str {
        match self {
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Promoted => "promoted",
            Self::Other(tag) => tag,
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        Some(match tag {
            "" => return None,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "expired" => Self::Expired,
            "promoted" => Self::Promoted,
            other => Self::Other(other.to_owned()),
        })
    }
}

impl PluginData {
    /// Whether a rule kept the request off the board (it never gets an issue).
    pub fn is_suppressed(&self) -> bool {
        matches!(self.route, Some(Routed::Suppressed { .. }))
    }

    /// Encodes all nine keys; empty values stand for "absent", as Teleport's compare-and-swap expects.
    pub fn encode(&self) -> HashMap<String, String> {
        let (issue_id, issue_key) = match &self.issue {
            Some(issue) => (issue.id.clone(), issue.key.clone()),
            None => (String::new(), String::new()),
        };
        let values = [
            self.user.clone(),
            self.roles.join(","),
            self.created
                .map(|t| t.unix_timestamp().to_string())
                .unwrap_or_default(),
            self.request_reason.clone(),
            if self.reviews_count == 0 {
                String::new()
            } else {
                self.reviews_count.to_string()
            },
            self.resolution
                .as_ref()
                .map(|r| r.tag().to_owned())
                .unwrap_or_default(),
            self.resolve_reason.clone(),
            issue_id,
            issue_key,
        ];
        let mut encoded: HashMap<String, String> =
            KEYS.iter().map(|k| (*k).to_owned()).zip(values).collect();
        if let Some(lease) = &self.lease {
            encoded.insert(LEASE_KEY.to_owned(), lease.encode());
        }
        if let Some(route) = &self.route {
            encoded.insert(ROUTE_KEY.to_owned(), route.encode());
        }
        if let Some(oncall) = &self.oncall {
            encoded.insert(ONCALL_KEY.to_owned(), oncall.encode());
        }
        for (key, set) in [
            (PEOPLE_KEY, self.people_added),
            (REMINDED_KEY, self.reminded),
        ] {
            if set {
                encoded.insert(key.to_owned(), DONE.to_owned());
            }
        }
        if !self.decided_by.is_empty() {
            encoded.insert(DECIDED_BY_KEY.to_owned(), self.decided_by.clone());
        }
        if let Some(mark) = self.audit {
            encoded.insert(AUDIT_KEY.to_owned(), mark.encode().to_owned());
        }
        encoded
    }

    /// Decodes what the Go plugin or this one wrote. Missing keys read as empty; malformed numbers
    /// read as absent rather than failing, since the data is advisory and rewritten on the next step.
    pub fn decode(data: &HashMap<String, String>) -> Self {
        let get = |key: &str| data.get(key).map(String::as_str).unwrap_or_default();
        let issue = match (get(ISSUE_ID), get(ISSUE_KEY)) {
            ("", _) => None,
            (id, key) => Some(IssueRef {
                id: id.to_owned(),
                key: key.to_owned(),
            }),
        };
        Self {
            user: get(USER).to_owned(),
            roles: match get(ROLES) {
                "" => Vec::new(),
                roles => roles.split(',').map(str::to_owned).collect(),
            },
            created: get(CREATED)
                .parse::<i64>()
                .ok()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
            request_reason: get(REQUEST_REASON).to_owned(),
            reviews_count: get(REVIEWS_COUNT).parse().unwrap_or(0),
            resolution: Resolution::from_tag(get(RESOLUTION)),
            resolve_reason: get(RESOLVE_REASON).to_owned(),
            issue,
            lease: Lease::decode(get(LEASE_KEY)),
            route: Routed::decode(get(ROUTE_KEY)),
            oncall: OnCallCheck::decode(get(ONCALL_KEY)),
            people_added: get(PEOPLE_KEY) == DONE,
            reminded: get(REMINDED_KEY) == DONE,
            audit: AuditMark::decode(get(AUDIT_KEY)),
            decided_by: get(DECIDED_BY_KEY).to_owned(),
        }
    }

    /// The compare-and-swap expectation for "no data yet": all nine keys absent.
    pub fn absent() -> HashMap<String, String> {
        KEYS.iter()
            .map(|k| ((*k).to_owned(), String::new()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    /// The sample of the Go plugin's own `plugindata_test.go`.
    fn sample() -> PluginData {
        PluginData {
            user: "user-foo".into(),
            roles: vec!["role-foo".into(), "role-bar".into()],
            created: Some(datetime!(2021-06-01 13:27:17 UTC)),
            request_reason: "foo reason".into(),
            reviews_count: 3,
            resolution: Some(Resolution::Approved),
            resolve_reason: "foo ok".into(),
            issue: Some(IssueRef {
                id: "123".into(),
                key: "ISSUE-123".into(),
            }),
            lease: None,
            route: None,
            oncall: None,
            people_added: false,
            reminded: false,
            audit: None,
            decided_by: String::new(),
        }
    }

    #[test]
    fn an_on_call_check_is_its_own_key_and_reads_back() {
        for (check, text) in [
            (
                OnCallCheck::Reviewed {
                    schedules: vec!["s-1".into()],
                },
                r#"{"outcome":"reviewed","schedules":["s-1"]}"#,
            ),
            (OnCallCheck::NotOnCall, r#"{"outcome":"not_on_call"}"#),
            (
                OnCallCheck::Skipped {
                    cause: "forbidden".into(),
                },
                r#"{"outcome":"skipped","cause":"forbidden"}"#,
            ),
        ] {
            let data = PluginData {
                oncall: Some(check),
                ..sample()
            };
            let encoded = data.encode();
            assert_eq!(encoded[ONCALL_KEY], text);
            assert_eq!(PluginData::decode(&encoded), data);
        }
        assert!(!sample().encode().contains_key(ONCALL_KEY));
    }

    #[test]
    fn once_only_marks_are_keys_of_their_own_only_when_set() {
        let marked = PluginData {
            people_added: true,
            reminded: true,
            audit: Some(AuditMark::Writing),
            decided_by: "jira:lead@example.com".into(),
            ..sample()
        };
        let encoded = marked.encode();
        assert_eq!(encoded.len(), 13);
        assert_eq!(encoded["decided_by"], "jira:lead@example.com");
        assert_eq!(encoded["people"], "done");
        assert_eq!(encoded["reminded"], "done");
        assert_eq!(encoded["audit"], "writing");
        assert_eq!(PluginData::decode(&encoded), marked);
        let written = PluginData {
            audit: Some(AuditMark::Written),
            ..sample()
        };
        assert_eq!(written.encode()["audit"], "written");
        assert_eq!(PluginData::decode(&written.encode()), written);
    }

    #[test]
    fn a_route_is_its_own_key_and_reads_back() {
        let routed = PluginData {
            route: Some(Routed::Project {
                rule: "db".into(),
                project: "OPS".into(),
                issue_type: "Bug".into(),
                labels: vec!["db-access".into()],
            }),
            ..sample()
        };
        let encoded = routed.encode();
        assert_eq!(
            encoded[ROUTE_KEY],
            r#"{"to":"project","rule":"db","project":"OPS","issue_type":"Bug","labels":["db-access"]}"#
        );
        assert_eq!(PluginData::decode(&encoded), routed);
        let quiet = PluginData {
            route: Some(Routed::Suppressed { rule: "q".into() }),
            ..PluginData::default()
        };
        assert_eq!(
            quiet.encode()[ROUTE_KEY],
            r#"{"to":"suppressed","rule":"q"}"#
        );
        assert_eq!(PluginData::decode(&quiet.encode()), quiet);
    }

    #[test]
    fn encodes_exactly_like_the_go_plugin() {
        let encoded = sample().encode();
        let expected: HashMap<String, String> = [
            ("user", "user-foo"),
            ("roles", "role-foo,role-bar"),
            ("created", "1622554037"),
            ("request_reason", "foo reason"),
            ("reviews_count", "3"),
            ("resolution", "approved"),
            ("resolve_reason", "foo ok"),
            ("issue_id", "123"),
            ("issue_key", "ISSUE-123"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(encoded, expected);
    }

    #[test]
    fn decodes_the_go_plugins_encoding() {
        assert_eq!(PluginData::decode(&sample().encode()), sample());
    }

    #[test]
    fn empty_data_encodes_to_nine_empty_keys_and_back() {
        let encoded = PluginData::default().encode();
        assert_eq!(encoded.len(), 9);
        assert!(encoded.values().all(String::is_empty));
        assert_eq!(encoded, PluginData::absent());
        assert_eq!(PluginData::decode(&HashMap::new()), PluginData::default());
    }

    #[test]
    fn lease_is_a_tenth_key_only_while_held() {
        let lease = Lease {
            owner: "ab12".into(),
            since: 1_700_000_000,
            after_issue: Some(41),
        };
        let held = PluginData {
            lease: Some(lease.clone()),
            ..sample()
        };
        let encoded = held.encode();
        assert_eq!(encoded.len(), 10);
        assert_eq!(encoded["lease"], "ab12 1700000000 41");
        assert_eq!(PluginData::decode(&encoded).lease, Some(lease.clone()));
        assert_eq!(sample().encode().len(), 9);
    }

    #[test]
    fn unknown_resolution_tags_survive_a_round_trip() {
        let mut data = HashMap::new();
        data.insert("resolution".to_owned(), "escalated".to_owned());
        assert_eq!(
            PluginData::decode(&data).encode()["resolution"],
            "escalated"
        );
    }
}
