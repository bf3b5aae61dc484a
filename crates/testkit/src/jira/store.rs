//! The fake's memory: projects, workflow, users, issues with their comments, changelog and entity
//! properties, and the lagging search index, with the writes that change them (create, status
//! change, comment, field edit). Validation is in `fields`, `validate_create` and
//! `validate_edit`, JSON in `render`, HTTP in `api`.
//!
//! The store sits behind a `std::sync::Mutex` and is never held across an `.await`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use time::OffsetDateTime;

use super::errors::ApiError;
use super::faults::Faults;
use super::fields::{FieldEdit, NewIssue, comment_error};
use super::model::{
    ChangeItemSnapshot, CommentSnapshot, Deployment, HistorySnapshot, IssueSnapshot, JiraUser,
    Permission, ProjectSpec, RecordedCall, StatusCategory, StatusSpec,
};

/// Older index versions are dropped once a newer one is visible; this caps a burst of writes.
const MAX_INDEX_VERSIONS: usize = 64;

pub(crate) struct Limits {
    pub comment_page_size: usize,
    pub changelog_cap: usize,
    pub summary_max_chars: usize,
}

pub(crate) struct Project {
    pub id: String,
    pub key: String,
    pub name: String,
    next_number: u64,
}

pub(crate) struct IssueType {
    pub id: String,
    pub name: String,
}

pub(crate) struct Status {
    pub id: String,
    pub name: String,
    pub category: StatusCategory,
    /// The id of the (global) transition that leads *to* this status.
    pub transition_id: String,
    pub transition_name: String,
    /// Whether the transition to this status exists at all.
    pub reachable: bool,
}

pub(crate) struct Comment {
    pub id: u64,
    pub author: String,
    pub body: String,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
}

#[derive(Clone)]
pub(crate) struct ChangeItem {
    pub field: &'static str,
    /// `jira` for system fields, `custom` for custom fields such as the board's Rank.
    pub field_type: &'static str,
    pub field_id: &'static str,
    pub from: Option<String>,
    pub from_string: Option<String>,
    pub to: Option<String>,
    pub to_string: Option<String>,
}

#[derive(Clone)]
pub(crate) struct History {
    pub id: u64,
    pub author: String,
    pub created: OffsetDateTime,
    pub items: Vec<ChangeItem>,
}

/// What the search index knows about an issue at one moment. Immutable facts (id, key,
/// project, created) are read from the issue itself.
#[derive(Clone)]
pub(crate) struct IndexedDoc {
    pub status: usize,
    pub labels: Vec<String>,
    pub summary: String,
    pub description: Option<String>,
    pub updated: OffsetDateTime,
}

struct IndexVersion {
    written: Instant,
    doc: IndexedDoc,
}

pub(crate) struct Issue {
    pub id: u64,
    pub key: String,
    pub number: u64,
    pub project: usize,
    pub issue_type: usize,
    pub status: usize,
    pub summary: String,
    pub description: Option<String>,
    pub labels: Vec<String>,
    pub custom: BTreeMap<String, Value>,
    pub properties: BTreeMap<String, Value>,
    /// Oldest first.
    pub comments: Vec<Comment>,
    /// Oldest first; rendered newest first.
    pub histories: Vec<History>,
    pub reporter: String,
    /// Account ids, in the order added; the creator watches from the start, as Jira's default.
    pub watchers: Vec<String>,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub deleted: bool,
    index: Vec<IndexVersion>,
}

impl Issue {
    fn current_doc(&self) -> IndexedDoc {
        IndexedDoc {
            status: self.status,
            labels: self.labels.clone(),
            summary: self.summary.clone(),
            description: self.description.clone(),
            updated: self.updated,
        }
    }
}

/// The outcome of a status change, for the changelog and the webhook.
pub(crate) struct StatusChange {
    pub history: Option<History>,
}

pub(crate) struct Store {
    pub deployment: Deployment,
    pub base_url: String,
    pub projects: Vec<Project>,
    pub issue_types: Vec<IssueType>,
    pub statuses: Vec<Status>,
    pub initial_status: usize,
    /// `users[0]` is the plugin's own user.
    pub users: Vec<JiraUser>,
    pub issues: Vec<Issue>,
    pub custom_fields: Vec<String>,
    pub limits: Limits,
    pub calls: Vec<RecordedCall>,
    /// The site's "Allow users to watch issues" option.
    pub watching_enabled: bool,
    /// Owns the search lag, which tests may change at any time.
    pub(crate) faults: Arc<Faults>,
    next_issue_id: u64,
    next_comment_id: u64,
    next_history_id: u64,
}

pub(crate) struct StoreConfig {
    pub deployment: Deployment,
    pub base_url: String,
    pub projects: Vec<ProjectSpec>,
    pub issue_types: Vec<String>,
    pub statuses: Vec<StatusSpec>,
    pub initial_status: Option<String>,
    pub users: Vec<JiraUser>,
    pub custom_fields: Vec<String>,
    pub limits: Limits,
    pub faults: Arc<Faults>,
}

/// Jira stores times with millisecond precision.
pub(crate) fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}

impl Store {
    pub(crate) fn new(config: StoreConfig) -> Result<Self, String> {
        if config.projects.is_empty() {
            return Err("at least one project is required".into());
        }
        if config.statuses.len() < 2 {
            return Err("the workflow needs at least two statuses".into());
        }
        if config.issue_types.is_empty() {
            return Err("at least one issue type is required".into());
        }
        let statuses: Vec<Status> = config
            .statuses
            .iter()
            .enumerate()
            .map(|(i, spec)| Status {
                id: (10000 + i).to_string(),
                name: spec.name.clone(),
                category: spec.category,
                // Jira numbers the transitions of a new workflow 11, 21, 31, …
                transition_id: (i * 10 + 11).to_string(),
                transition_name: spec
                    .transition_name
                    .clone()
                    .unwrap_or_else(|| spec.name.clone()),
                reachable: spec.reachable,
            })
            .collect();
        let initial_status = match &config.initial_status {
            None => 0,
            Some(name) => statuses
                .iter()
                .position(|s| s.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| format!("initial status {name} is not in the workflow"))?,
        };
        Ok(Self {
            deployment: config.deployment,
            base_url: config.base_url,
            projects: config
                .projects
                .iter()
                .enumerate()
                .map(|(i, p)| Project {
                    id: (10000 + i).to_string(),
                    key: p.key.clone(),
                    name: p.name.clone(),
                    next_number: 1,
                })
                .collect(),
            issue_types: config
                .issue_types
                .iter()
                .enumerate()
                .map(|(i, name)| IssueType {
                    id: (10001 + i).to_string(),
                    name: name.clone(),
                })
                .collect(),
            statuses,
            initial_status,
            users: config.users,
            issues: Vec::new(),
            custom_fields: config.custom_fields,
            limits: config.limits,
            calls: Vec::new(),
            watching_enabled: true,
            faults: config.faults,
            next_issue_id: 10001,
            next_comment_id: 10000,
            next_history_id: 10100,
        })
    }

    // ----- lookups ---------------------------------------------------------------------------

    pub(crate) fn user_index(&self, account_id: &str) -> Option<usize> {
        self.users.iter().position(|u| u.account_id == account_id)
    }

    pub(crate) fn user(&self, account_id: &str) -> Option<&JiraUser> {
        self.users.iter().find(|u| u.account_id == account_id)
    }

    /// Finds a live issue by numeric id or by key (keys compare case-insensitively, as in Jira).
    pub(crate) fn issue_index(&self, id_or_key: &str) -> Option<usize> {
        let by_id = id_or_key.parse::<u64>().ok();
        self.issues.iter().position(|issue| {
            !issue.deleted
                && match by_id {
                    Some(id) => issue.id == id,
                    None => issue.key.eq_ignore_ascii_case(id_or_key),
                }
        })
    }

    pub(crate) fn status_index(&self, name_or_id: &str) -> Option<usize> {
        self.statuses
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(name_or_id) || s.id == name_or_id)
    }

    pub(crate) fn project_index(&self, key_or_id: &str) -> Option<usize> {
        self.projects
            .iter()
            .position(|p| p.key.eq_ignore_ascii_case(key_or_id) || p.id == key_or_id)
    }

    /// Transitions offered from `status`: one to every other status that has one.
    pub(crate) fn transitions_from(&self, status: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.statuses.len()).filter(move |&to| to != status && self.statuses[to].reachable)
    }

    /// Issue reads for a caller who may not browse answer 404, never 403, as Jira does.
    pub(crate) fn visible_issue(&self, caller: usize, id_or_key: &str) -> Result<usize, ApiError> {
        match self.issue_index(id_or_key) {
            Some(idx) if self.users[caller].has(Permission::BrowseProjects) => Ok(idx),
            _ => Err(ApiError::issue_not_found()),
        }
    }

    fn next_history(&mut self, author: &str, items: Vec<ChangeItem>) -> History {
        let id = self.next_history_id;
        self.next_history_id += 1;
        History {
            id,
            author: author.to_string(),
            created: now(),
            items,
        }
    }

    // ----- writes ----------------------------------------------------------------------------

    /// `POST /issue` once validated: assigns the next id and key, and indexes the issue.
    pub(crate) fn create_issue(&mut self, caller: usize, new: NewIssue) -> usize {
        let NewIssue {
            project,
            issue_type,
            summary,
            description,
            labels,
            custom,
            properties,
        } = new;
        let id = self.next_issue_id;
        self.next_issue_id += 1;
        let p = &mut self.projects[project];
        let number = p.next_number;
        p.next_number += 1;
        let key = format!("{}-{number}", p.key);
        let created = now();
        let issue = Issue {
            id,
            key,
            number,
            project,
            issue_type,
            status: self.initial_status,
            summary,
            description,
            labels,
            custom,
            properties,
            comments: Vec::new(),
            histories: Vec::new(),
            reporter: self.users[caller].account_id.clone(),
            watchers: vec![self.users[caller].account_id.clone()],
            created,
            updated: created,
            deleted: false,
            index: Vec::new(),
        };
        self.issues.push(issue);
        let idx = self.issues.len() - 1;
        self.reindex(idx);
        idx
    }

    /// Moves an issue to `to`, recording a changelog history by `author` unless `silent`.
    pub(crate) fn change_status(
        &mut self,
        issue: usize,
        to: usize,
        author: &str,
        silent: bool,
    ) -> StatusChange {
        let from = self.issues[issue].status;
        let history = (!silent).then(|| {
            let (from_s, to_s) = (&self.statuses[from], &self.statuses[to]);
            let item = ChangeItem {
                field: "status",
                field_type: "jira",
                field_id: "status",
                from: Some(from_s.id.clone()),
                from_string: Some(from_s.name.clone()),
                to: Some(to_s.id.clone()),
                to_string: Some(to_s.name.clone()),
            };
            self.next_history(author, vec![item])
        });
        let target = &mut self.issues[issue];
        target.status = to;
        if let Some(h) = &history {
            target.updated = h.created;
            target.histories.push(h.clone());
        } else {
            target.updated = now();
        }
        self.reindex(issue);
        StatusChange { history }
    }

    pub(crate) fn add_comment(
        &mut self,
        issue: usize,
        author: &str,
        body: &str,
    ) -> Result<usize, ApiError> {
        if let Some(error) = comment_error(body) {
            return Err(error);
        }
        let id = self.next_comment_id;
        self.next_comment_id += 1;
        let created = now();
        let target = &mut self.issues[issue];
        target.comments.push(Comment {
            id,
            author: author.to_string(),
            body: body.to_string(),
            created,
            updated: created,
        });
        target.updated = created;
        self.reindex(issue);
        Ok(self.issues[issue].comments.len() - 1)
    }

    /// Applies field edits and records one history with an item per changed field.
    pub(crate) fn edit_fields(
        &mut self,
        issue: usize,
        author: &str,
        edits: Vec<FieldEdit>,
    ) -> Option<History> {
        let mut items = Vec::new();
        {
            let target = &mut self.issues[issue];
            for edit in edits {
                match edit {
                    FieldEdit::Summary(new) if new != target.summary => {
                        items.push(text_item("summary", Some(&target.summary), Some(&new)));
                        target.summary = new;
                    }
                    FieldEdit::Description(new) if new != target.description => {
                        items.push(text_item(
                            "description",
                            target.description.as_deref(),
                            new.as_deref(),
                        ));
                        target.description = new;
                    }
                    FieldEdit::Labels(new) if new != target.labels => {
                        let (old, new_joined) = (target.labels.join(" "), new.join(" "));
                        items.push(text_item("labels", Some(&old), Some(&new_joined)));
                        target.labels = new;
                    }
                    FieldEdit::Reporter(new) if new != target.reporter => {
                        items.push(text_item("reporter", Some(&target.reporter), Some(&new)));
                        target.reporter = new;
                    }
                    FieldEdit::Custom(name, value) => {
                        target.custom.insert(name, value);
                    }
                    _ => {}
                }
            }
        }
        let history = (!items.is_empty()).then(|| self.next_history(author, items));
        let target = &mut self.issues[issue];
        target.updated = history.as_ref().map_or_else(now, |h| h.created);
        if let Some(h) = &history {
            target.histories.push(h.clone());
        }
        self.reindex(issue);
        history
    }

    /// A card dragged up the board: a `Rank` history, as Jira Software records one, and nothing
    /// else changes but `updated`.
    pub(crate) fn rank_higher(&mut self, issue: usize, author: &str) {
        let item = ChangeItem {
            field: "Rank",
            field_type: "custom",
            field_id: "customfield_10019",
            from: Some(String::new()),
            from_string: Some(String::new()),
            to: Some(String::new()),
            to_string: Some("Ranked higher".into()),
        };
        let history = self.next_history(author, vec![item]);
        let target = &mut self.issues[issue];
        target.updated = history.created;
        target.histories.push(history);
        self.reindex(issue);
    }

    // ----- the search index ------------------------------------------------------------------

    /// Records the issue's current state as a new index version, visible after the lag.
    pub(crate) fn reindex(&mut self, issue: usize) {
        let lag = self.faults.search_lag();
        let target = &mut self.issues[issue];
        let doc = target.current_doc();
        target.index.push(IndexVersion {
            written: Instant::now(),
            doc,
        });
        // A version is superseded once the one after it is visible.
        let now = Instant::now();
        while target.index.len() > 1
            && (target.index[1].written + lag <= now || target.index.len() > MAX_INDEX_VERSIONS)
        {
            target.index.remove(0);
        }
    }

    /// What a search sees of the issue now: the newest version older than the lag, or the
    /// live state when the caller asked to reconcile it. `None` while it is not yet indexed.
    pub(crate) fn searchable_doc(&self, issue: usize, reconcile: bool) -> Option<IndexedDoc> {
        let target = &self.issues[issue];
        if target.deleted {
            return None;
        }
        if reconcile {
            return Some(target.current_doc());
        }
        let (now, lag) = (Instant::now(), self.faults.search_lag());
        target
            .index
            .iter()
            .rev()
            .find(|v| v.written + lag <= now)
            .map(|v| v.doc.clone())
    }

    // ----- snapshots for tests ---------------------------------------------------------------

    pub(crate) fn snapshot(&self, issue: usize) -> IssueSnapshot {
        let i = &self.issues[issue];
        IssueSnapshot {
            id: i.id.to_string(),
            key: i.key.clone(),
            project_key: self.projects[i.project].key.clone(),
            issue_type: self.issue_types[i.issue_type].name.clone(),
            status: self.statuses[i.status].name.clone(),
            summary: i.summary.clone(),
            description: i.description.clone(),
            labels: i.labels.clone(),
            comments: i
                .comments
                .iter()
                .map(|c| CommentSnapshot {
                    id: c.id.to_string(),
                    author_account_id: c.author.clone(),
                    body: c.body.clone(),
                    created: c.created,
                })
                .collect(),
            properties: i.properties.clone(),
            changelog: i
                .histories
                .iter()
                .rev()
                .map(|h| HistorySnapshot {
                    id: h.id.to_string(),
                    author_account_id: h.author.clone(),
                    created: h.created,
                    items: h
                        .items
                        .iter()
                        .map(|item| ChangeItemSnapshot {
                            field: item.field.to_string(),
                            from: item.from.clone(),
                            from_string: item.from_string.clone(),
                            to: item.to.clone(),
                            to_string: item.to_string.clone(),
                        })
                        .collect(),
                })
                .collect(),
            custom_fields: i.custom.clone(),
            reporter_account_id: i.reporter.clone(),
            watchers: i.watchers.clone(),
            created: i.created,
            updated: i.updated,
        }
    }
}

fn text_item(field: &'static str, from: Option<&str>, to: Option<&str>) -> ChangeItem {
    ChangeItem {
        field,
        field_type: "jira",
        field_id: field,
        from: None,
        from_string: from.map(str::to_string),
        to: None,
        to_string: to.map(str::to_string),
    }
}
