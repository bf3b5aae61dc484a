//! The fake's public vocabulary: deployment kind, users and their permissions, the workflow
//! (statuses and their categories), projects, webhook targets, and the snapshots and logs that
//! tests read back. Nothing here touches the network or the store's locking.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use serde_json::Value;
use time::OffsetDateTime;

/// Which Jira the fake pretends to be. The two differ in auth, user identity and search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Deployment {
    /// Jira Cloud: Basic `email:api_token`, users keyed by `accountId`, `/search` gone (410).
    #[default]
    Cloud,
    /// Jira Data Center: Bearer PATs (and Basic), users keyed by `name`/`key`, classic `/search`.
    DataCenter,
}

/// The project permissions the plugin cares about, as `mypermissions` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    BrowseProjects,
    CreateIssues,
    TransitionIssues,
    AddComments,
    EditIssues,
    DeleteIssues,
    /// The global "Browse users and groups": without it, user searches find nobody.
    BrowseUsers,
    /// "Manage watchers": adding someone else to an issue's watchers.
    ManageWatchers,
    /// "Modify reporter": setting an issue's reporter.
    ModifyReporter,
}

impl Permission {
    pub const ALL: [Permission; 9] = [
        Permission::BrowseProjects,
        Permission::CreateIssues,
        Permission::TransitionIssues,
        Permission::AddComments,
        Permission::EditIssues,
        Permission::DeleteIssues,
        Permission::BrowseUsers,
        Permission::ManageWatchers,
        Permission::ModifyReporter,
    ];

    /// The key used by `mypermissions` and the permission-scheme API.
    pub fn key(self) -> &'static str {
        match self {
            Permission::BrowseProjects => "BROWSE_PROJECTS",
            Permission::CreateIssues => "CREATE_ISSUES",
            Permission::TransitionIssues => "TRANSITION_ISSUES",
            Permission::AddComments => "ADD_COMMENTS",
            Permission::EditIssues => "EDIT_ISSUES",
            Permission::DeleteIssues => "DELETE_ISSUES",
            Permission::BrowseUsers => "USER_PICKER",
            Permission::ManageWatchers => "MANAGE_WATCHERS",
            Permission::ModifyReporter => "MODIFY_REPORTER",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.key() == key)
    }

    /// Jira's legacy numeric permission ids, still present in `mypermissions` answers.
    pub(crate) fn id(self) -> &'static str {
        match self {
            Permission::BrowseProjects => "10",
            Permission::CreateIssues => "11",
            Permission::EditIssues => "12",
            Permission::AddComments => "15",
            Permission::DeleteIssues => "16",
            Permission::BrowseUsers => "27",
            Permission::ModifyReporter => "30",
            Permission::ManageWatchers => "32",
            Permission::TransitionIssues => "46",
        }
    }

    pub(crate) fn display_name(self) -> &'static str {
        match self {
            Permission::BrowseProjects => "Browse Projects",
            Permission::CreateIssues => "Create Issues",
            Permission::TransitionIssues => "Transition Issues",
            Permission::AddComments => "Add Comments",
            Permission::EditIssues => "Edit Issues",
            Permission::DeleteIssues => "Delete Issues",
            Permission::BrowseUsers => "Browse users and groups",
            Permission::ManageWatchers => "Manage Watchers",
            Permission::ModifyReporter => "Modify Reporter",
        }
    }

    pub(crate) fn description(self) -> &'static str {
        match self {
            Permission::BrowseProjects => "Ability to browse projects and the issues within them.",
            Permission::CreateIssues => "Ability to create issues.",
            Permission::TransitionIssues => "Ability to transition issues.",
            Permission::AddComments => "Ability to comment on issues.",
            Permission::EditIssues => "Ability to edit issues.",
            Permission::DeleteIssues => "Ability to delete issues.",
            Permission::BrowseUsers => {
                "Ability to select a user or group from a popup window and to search users."
            }
            Permission::ManageWatchers => "Ability to manage the watchers of an issue.",
            Permission::ModifyReporter => {
                "Ability to modify the reporter when creating or editing an issue."
            }
        }
    }
}

/// A Jira user. On Cloud the identity is `account_id`; on Data Center it is `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JiraUser {
    pub account_id: String,
    /// The address the user logs in with (Basic auth on Cloud). `None`: no Basic login.
    pub email: Option<String>,
    /// Cloud privacy settings can hide the address: then `emailAddress` is absent everywhere.
    pub email_visible: bool,
    pub display_name: String,
    /// API token (Cloud, Basic password) or personal access token (Data Center, Bearer).
    pub token: Option<String>,
    pub active: bool,
    pub permissions: Vec<Permission>,
    /// Data Center username. Defaults to the email's local part, else the account id.
    pub name: Option<String>,
    /// The Jira groups the user belongs to (a group exists while it has a member).
    pub groups: Vec<String>,
}

impl JiraUser {
    /// An active user with every permission, no email and no token.
    pub fn new(account_id: impl Into<String>, display_name: impl Into<String>) -> Self {
        Self {
            account_id: account_id.into(),
            email: None,
            email_visible: true,
            display_name: display_name.into(),
            token: None,
            active: true,
            permissions: Permission::ALL.to_vec(),
            name: None,
            groups: Vec::new(),
        }
    }

    pub fn in_groups<S: Into<String>>(mut self, groups: impl IntoIterator<Item = S>) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self.email_visible = true;
        self
    }

    /// The user can log in with this address, but the API never shows it (Cloud privacy).
    pub fn with_hidden_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self.email_visible = false;
        self
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn with_permissions(mut self, permissions: impl IntoIterator<Item = Permission>) -> Self {
        self.permissions = permissions.into_iter().collect();
        self
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn inactive(mut self) -> Self {
        self.active = false;
        self
    }

    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// The address the API may show, honouring privacy.
    pub(crate) fn visible_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_visible)
    }

    pub(crate) fn username(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match &self.email {
            Some(email) => email.split('@').next().unwrap_or(email).to_string(),
            None => self.account_id.clone(),
        }
    }
}

/// The three fixed status categories of Jira. Their keys survive status renames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCategory {
    ToDo,
    InProgress,
    Done,
}

impl StatusCategory {
    pub(crate) fn id(self) -> u64 {
        match self {
            StatusCategory::ToDo => 2,
            StatusCategory::Done => 3,
            StatusCategory::InProgress => 4,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            StatusCategory::ToDo => "new",
            StatusCategory::InProgress => "indeterminate",
            StatusCategory::Done => "done",
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            StatusCategory::ToDo => "To Do",
            StatusCategory::InProgress => "In Progress",
            StatusCategory::Done => "Done",
        }
    }

    pub(crate) fn color(self) -> &'static str {
        match self {
            StatusCategory::ToDo => "blue-gray",
            StatusCategory::InProgress => "yellow",
            StatusCategory::Done => "green",
        }
    }
}

/// One workflow status. Every status can be reached from every other one through a transition
/// named `transition_name` (the status name when `None`), unless it has no transition at all
/// ([`StatusSpec::without_transition`]: a workflow an admin left incomplete).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSpec {
    pub name: String,
    pub category: StatusCategory,
    pub transition_name: Option<String>,
    /// Whether a transition leads to this status (from every other one).
    pub reachable: bool,
}

impl StatusSpec {
    pub fn new(name: impl Into<String>, category: StatusCategory) -> Self {
        Self {
            name: name.into(),
            category,
            transition_name: None,
            reachable: true,
        }
    }

    /// No transition leads to this status: issues can start there but never be moved there.
    pub fn without_transition(mut self) -> Self {
        self.reachable = false;
        self
    }

    pub fn with_transition_name(mut self, name: impl Into<String>) -> Self {
        self.transition_name = Some(name.into());
        self
    }

    /// Pending (To Do), Approved, Denied, Expired (Done), with transitions Approve, Deny, Expire.
    pub fn defaults() -> Vec<StatusSpec> {
        vec![
            StatusSpec::new("Pending", StatusCategory::ToDo).with_transition_name("Reopen"),
            StatusSpec::new("Approved", StatusCategory::Done).with_transition_name("Approve"),
            StatusSpec::new("Denied", StatusCategory::Done).with_transition_name("Deny"),
            StatusSpec::new("Expired", StatusCategory::Done).with_transition_name("Expire"),
        ]
    }
}

/// A project. Its numeric id is assigned by the fake (10000, 10001, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectSpec {
    pub key: String,
    pub name: String,
}

impl ProjectSpec {
    pub fn new(key: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            name: name.into(),
        }
    }
}

/// Where and how to deliver webhooks, like an admin webhook configured in Jira.
#[derive(Clone, Debug, Default)]
pub struct WebhookTarget {
    pub url: String,
    /// Sign each body: `X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
    pub secret: Option<String>,
    /// Data Center lets admins put Basic credentials on the webhook URL.
    pub basic_auth: Option<(String, String)>,
    /// Trust exactly this CA (PEM) when the URL is HTTPS; the platform roots otherwise.
    pub trust_ca_pem: Option<String>,
    /// Also deliver `jira:issue_created`. Off by default: the plugin registers for updates only.
    pub issue_created_events: bool,
}

impl WebhookTarget {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    pub fn with_basic_auth(mut self, user: impl Into<String>, pass: impl Into<String>) -> Self {
        self.basic_auth = Some((user.into(), pass.into()));
        self
    }

    pub fn trusting_ca(mut self, ca_pem: impl Into<String>) -> Self {
        self.trust_ca_pem = Some(ca_pem.into());
        self
    }
}

/// A comment as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct CommentSnapshot {
    pub id: String,
    pub author_account_id: String,
    pub body: String,
    pub created: OffsetDateTime,
}

/// One changed field inside a changelog history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeItemSnapshot {
    pub field: String,
    pub from: Option<String>,
    pub from_string: Option<String>,
    pub to: Option<String>,
    pub to_string: Option<String>,
}

/// One changelog history (one edit or transition), newest first in [`IssueSnapshot::changelog`].
#[derive(Clone, Debug, PartialEq)]
pub struct HistorySnapshot {
    pub id: String,
    pub author_account_id: String,
    pub created: OffsetDateTime,
    pub items: Vec<ChangeItemSnapshot>,
}

/// What an issue looks like right now, for assertions.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueSnapshot {
    pub id: String,
    pub key: String,
    pub project_key: String,
    pub issue_type: String,
    pub status: String,
    pub summary: String,
    pub description: Option<String>,
    pub labels: Vec<String>,
    /// Oldest first, as created.
    pub comments: Vec<CommentSnapshot>,
    pub properties: BTreeMap<String, Value>,
    /// Newest first, as `expand=changelog` lists them.
    pub changelog: Vec<HistorySnapshot>,
    pub custom_fields: BTreeMap<String, Value>,
    pub reporter_account_id: String,
    /// Account ids of the issue's watchers, in the order they were added (the creator first).
    pub watchers: Vec<String>,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
}

impl IssueSnapshot {
    pub fn comment_bodies(&self) -> Vec<&str> {
        self.comments.iter().map(|c| c.body.as_str()).collect()
    }
}

/// One API call as the fake saw it. `path` has the base path removed, so it compares with the
/// golden recording; `body` is the parsed JSON (a string when it was not JSON, null when empty).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedCall {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub body: Value,
    /// The body exactly as received (lossy UTF-8), for byte-level comparisons.
    pub raw_body: String,
    pub status: u16,
    /// Account id of the authenticated caller, if any.
    pub caller: Option<String>,
    /// When the call arrived (before any latency knob), to measure how long a client waited.
    pub received_at: Instant,
}

/// One attempt at delivering one webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// `X-Atlassian-Webhook-Identifier`; the same on every retry and on a duplicate.
    pub id: String,
    /// 1 for the first attempt; `X-Atlassian-Webhook-Retry` is `attempt - 1` when > 1.
    pub attempt: u32,
    /// `None` when the attempt failed before an HTTP status (connect error, timeout).
    pub status_code: Option<u16>,
    pub error: Option<String>,
    /// True for the extra copy sent because of the duplicate knob.
    pub duplicate: bool,
    /// `webhookEvent` / `issue_event_type_name`, e.g. `jira:issue_updated/issue_generic`.
    pub event: String,
    pub issue_key: Option<String>,
}

/// Errors of the test-side API (never of the HTTP API, which answers like Jira).
#[derive(Debug, thiserror::Error)]
pub enum FakeJiraError {
    #[error("no issue {0}")]
    UnknownIssue(String),
    #[error("no user with account id {0}")]
    UnknownUser(String),
    #[error("no status named {0}")]
    UnknownStatus(String),
    #[error("issue {issue} is already in status {status}")]
    SameStatus { issue: String, status: String },
    #[error("Jira would refuse this: {0}")]
    Refused(String),
    #[error("no webhook registered")]
    NoWebhook,
    #[error("webhook delivery failed: {0}")]
    Delivery(String),
    #[error("invalid options: {0}")]
    Options(String),
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl fmt::Display for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Deployment::Cloud => "Cloud",
            Deployment::DataCenter => "DataCenter",
        })
    }
}
