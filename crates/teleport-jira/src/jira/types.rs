//! The JSON shapes of the Jira REST API v2 that the plugin reads and writes. Unknown fields are
//! ignored, and everything optional on some deployment (Cloud hides e-mails, Data Center has no
//! account ids) is optional here too.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The entity property that names the access request an issue was made for.
pub const REQUEST_ID_PROPERTY: &str = "teleportAccessRequestId";

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub account_id: Option<String>,
    /// Data Center identifies users by `name`/`key` instead of `accountId`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

impl User {
    /// A stable identity: the Cloud account id, else the Data Center key or name.
    pub fn identity(&self) -> Option<&str> {
        [&self.account_id, &self.key, &self.name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .find(|id| !id.is_empty())
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Project {
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "issueTypes")]
    pub issue_types: Vec<IssueTypeRef>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct IssueTypeRef {
    #[serde(default)]
    pub name: String,
}

/// One issue type of `GET project/{key}/statuses`, with its workflow's statuses.
#[derive(Clone, Debug, Deserialize)]
pub struct IssueTypeStatuses {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub statuses: Vec<Status>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Permissions {
    #[serde(default)]
    pub permissions: HashMap<String, Permission>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    #[serde(default)]
    pub have_permission: bool,
}

/// The body of `POST /rest/api/2/issue`, in the field order the Go plugin sends.
#[derive(Clone, Debug, Serialize)]
pub struct IssueInput {
    pub fields: IssueFieldsInput,
    pub properties: Vec<EntityProperty>,
}

#[derive(Clone, Debug, Serialize)]
pub struct IssueFieldsInput {
    pub issuetype: NamedRef,
    pub project: KeyRef,
    pub summary: String,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Static fields from the config (priority, components, custom fields), sent as given.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NamedRef {
    pub name: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyRef {
    pub key: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct EntityProperty {
    pub key: String,
    pub value: serde_json::Value,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CreatedIssue {
    pub id: String,
    pub key: String,
}

/// An issue as read with `expand=changelog,transitions` and the request-id property.
#[derive(Clone, Debug, Deserialize)]
pub struct Issue {
    pub id: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub fields: IssueFields,
    #[serde(default)]
    pub changelog: Option<Changelog>,
    #[serde(default)]
    pub transitions: Vec<Transition>,
    #[serde(default)]
    pub properties: HashMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct IssueFields {
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// The embedded comments, oldest first; one page, which may leave some out.
    #[serde(default)]
    pub comment: Option<CommentPage>,
}

impl Issue {
    /// Every comment of the issue, oldest first, when the embedded page holds them all (Jira
    /// embeds a limited number; past it, they are read from the comment endpoint).
    pub fn all_comments(&self) -> Option<&[Comment]> {
        let page = self.fields.comment.as_ref()?;
        (page.start_at == 0 && page.total <= page.comments.len())
            .then_some(page.comments.as_slice())
    }

    pub fn status_name(&self) -> &str {
        self.fields
            .status
            .as_ref()
            .map(|s| s.name.as_str())
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub name: String,
}

/// A group a user belongs to.
#[derive(Clone, Debug, Deserialize)]
pub struct GroupRef {
    #[serde(default)]
    pub name: String,
}

/// `GET user?expand=groups` (Data Center): the user's groups.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct UserWithGroups {
    #[serde(default)]
    pub groups: GroupList,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct GroupList {
    #[serde(default)]
    pub items: Vec<GroupRef>,
}

/// The changelog `expand=changelog` embeds: on Jira Cloud one page, the newest histories first,
/// with the true `total`; on Data Center every history.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Changelog {
    #[serde(default)]
    pub histories: Vec<History>,
    /// How many histories the issue has in all (absent: the ones embedded).
    #[serde(default)]
    pub total: Option<usize>,
}

impl Changelog {
    /// Whether the issue has histories the embedded page leaves out.
    pub fn is_partial(&self) -> bool {
        self.total.is_some_and(|total| total > self.histories.len())
    }
}

/// A page of `GET issue/{key}/changelog` (Jira Cloud): oldest first.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangelogPage {
    #[serde(default)]
    pub start_at: usize,
    #[serde(default)]
    pub total: usize,
    #[serde(default)]
    pub values: Vec<History>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct History {
    #[serde(default)]
    pub author: Option<User>,
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub items: Vec<HistoryItem>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct HistoryItem {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub fieldtype: String,
    #[serde(default, rename = "toString")]
    pub to_string: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Transition {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub to: TransitionTarget,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TransitionTarget {
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentPage {
    #[serde(default)]
    pub start_at: usize,
    #[serde(default)]
    pub max_results: usize,
    #[serde(default)]
    pub total: usize,
    #[serde(default)]
    pub comments: Vec<Comment>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Comment {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub author: Option<User>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub created: String,
}

/// A page of `GET|POST /rest/api/2/search/jql`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    #[serde(default)]
    pub issues: Vec<SearchHit>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SearchHit {
    pub id: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub fields: Option<IssueFields>,
}

/// Jira's two error body shapes: `errors` is an object on current versions, a list on old ones.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub error_messages: Vec<String>,
    #[serde(default)]
    pub errors: Option<ErrorDetails>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ErrorDetails {
    Map(std::collections::BTreeMap<String, serde_json::Value>),
    List(Vec<String>),
}
