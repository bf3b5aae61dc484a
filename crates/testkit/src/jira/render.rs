//! JSON renderings of the store's entities in REST v2 shapes: users (Cloud `accountId` or Data
//! Center `name`/`key`, with privacy-hidden emails left out), statuses, projects, transitions,
//! comments, changelog histories, and issues with `fields`/`expand`/`properties` selection.
//! The same renderings feed the API answers and the webhook payloads, as in Jira.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use super::model::{Deployment, JiraUser, StatusCategory};
use super::store::{Comment, History, Store};

/// `2026-11-25T07:51:17.069+0000`: Jira's timestamp format (offset without a colon).
pub(crate) fn jira_time(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory][offset_minute]"
    ))
    .unwrap_or_default()
}

/// Which fields to render, from `fields=` (`*all`, `*navigable`, names, `-name` exclusions).
#[derive(Clone, Debug, Default)]
pub(crate) struct FieldSelection {
    all: bool,
    navigable: bool,
    include: BTreeSet<String>,
    exclude: BTreeSet<String>,
}

impl FieldSelection {
    pub(crate) fn all() -> Self {
        Self {
            all: true,
            ..Self::default()
        }
    }

    pub(crate) fn navigable() -> Self {
        Self {
            navigable: true,
            ..Self::default()
        }
    }

    /// Parses tokens; `default` applies when there are none.
    pub(crate) fn parse<'a>(tokens: impl IntoIterator<Item = &'a str>, default: Self) -> Self {
        let mut selection = Self::default();
        let mut any = false;
        for token in tokens.into_iter().map(str::trim).filter(|t| !t.is_empty()) {
            any = true;
            match token {
                "*all" => selection.all = true,
                "*navigable" => selection.navigable = true,
                t => match t.strip_prefix('-') {
                    Some(excluded) => {
                        selection.exclude.insert(excluded.to_string());
                    }
                    None => {
                        selection.include.insert(t.to_string());
                    }
                },
            }
        }
        if any { selection } else { default }
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.all && !self.navigable && self.include.is_empty()
    }

    pub(crate) fn wants(&self, field: &str) -> bool {
        if self.exclude.contains(field) {
            return false;
        }
        self.include.contains(field) || self.all || (self.navigable && field != "comment")
    }
}

/// Which entity properties to render, from `properties=` (keys, `*all`, `-key`).
#[derive(Clone, Debug, Default)]
pub(crate) struct PropertySelection {
    all: bool,
    include: BTreeSet<String>,
    exclude: BTreeSet<String>,
}

impl PropertySelection {
    pub(crate) fn parse<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        let mut selection = Self::default();
        for token in tokens.into_iter().map(str::trim).filter(|t| !t.is_empty()) {
            if token == "*all" {
                selection.all = true;
            } else if let Some(excluded) = token.strip_prefix('-') {
                selection.exclude.insert(excluded.to_string());
            } else {
                selection.include.insert(token.to_string());
            }
        }
        selection
    }

    fn wants(&self, key: &str) -> bool {
        !self.exclude.contains(key) && (self.all || self.include.contains(key))
    }
}

/// Everything that shapes one issue rendering.
pub(crate) struct IssueView {
    pub fields: FieldSelection,
    pub changelog: bool,
    pub transitions: bool,
    pub properties: Option<PropertySelection>,
    /// How many histories `expand=changelog` returns (100 on `GET issue`, 20 in search).
    pub changelog_cap: usize,
    /// Transitions are only listed for a caller allowed to transition.
    pub may_transition: bool,
}

impl Store {
    fn avatar_urls(&self) -> Value {
        let url = format!("{}/images/icons/avatar.png", self.base_url);
        json!({"48x48": url, "24x24": url, "16x16": url, "32x32": url})
    }

    pub(crate) fn user_json_of(&self, user: &JiraUser) -> Value {
        let mut out = Map::new();
        match self.deployment {
            Deployment::Cloud => {
                out.insert(
                    "self".into(),
                    json!(format!(
                        "{}/rest/api/2/user?accountId={}",
                        self.base_url, user.account_id
                    )),
                );
                out.insert("accountId".into(), json!(user.account_id));
                out.insert("accountType".into(), json!("atlassian"));
            }
            Deployment::DataCenter => {
                let name = user.username();
                out.insert(
                    "self".into(),
                    json!(format!("{}/rest/api/2/user?username={name}", self.base_url)),
                );
                out.insert("key".into(), json!(self.dc_user_key(user)));
                out.insert("name".into(), json!(name));
            }
        }
        // Cloud leaves a hidden address out entirely rather than sending null.
        if let Some(email) = user.visible_email() {
            out.insert("emailAddress".into(), json!(email));
        }
        out.insert("avatarUrls".into(), self.avatar_urls());
        out.insert("displayName".into(), json!(user.display_name));
        out.insert("active".into(), json!(user.active));
        out.insert(
            "timeZone".into(),
            json!(match self.deployment {
                Deployment::Cloud => "Etc/UTC",
                Deployment::DataCenter => "UTC",
            }),
        );
        Value::Object(out)
    }

    /// Data Center user keys look like `JIRAUSER10100` and never change with the name.
    pub(crate) fn dc_user_key(&self, user: &JiraUser) -> String {
        let index = self
            .users
            .iter()
            .position(|u| u.account_id == user.account_id)
            .unwrap_or(0);
        format!("JIRAUSER{}", 10000 + index)
    }

    pub(crate) fn user_json(&self, account_id: &str) -> Value {
        match self.user(account_id) {
            Some(user) => self.user_json_of(user),
            // A user removed from the site still authors old entries.
            None => json!({"accountId": account_id, "displayName": "Former user", "active": false}),
        }
    }

    pub(crate) fn status_category_json(&self, category: StatusCategory) -> Value {
        json!({
            "self": format!("{}/rest/api/2/statuscategory/{}", self.base_url, category.id()),
            "id": category.id(),
            "key": category.key(),
            "colorName": category.color(),
            "name": category.name(),
        })
    }

    pub(crate) fn status_json(&self, status: usize) -> Value {
        let s = &self.statuses[status];
        json!({
            "self": format!("{}/rest/api/2/status/{}", self.base_url, s.id),
            "description": "",
            "iconUrl": format!("{}/images/icons/statuses/generic.png", self.base_url),
            "name": s.name,
            "id": s.id,
            "statusCategory": self.status_category_json(s.category),
        })
    }

    pub(crate) fn issue_type_json(&self, issue_type: usize) -> Value {
        let t = &self.issue_types[issue_type];
        json!({
            "self": format!("{}/rest/api/2/issuetype/{}", self.base_url, t.id),
            "id": t.id,
            "description": "",
            "iconUrl": format!("{}/images/icons/issuetypes/{}.svg", self.base_url, t.name.to_lowercase()),
            "name": t.name,
            "subtask": false,
            "hierarchyLevel": 0,
        })
    }

    pub(crate) fn project_json(&self, project: usize, full: bool) -> Value {
        let p = &self.projects[project];
        let mut out = json!({
            "self": format!("{}/rest/api/2/project/{}", self.base_url, p.id),
            "id": p.id,
            "key": p.key,
            "name": p.name,
            "projectTypeKey": "software",
            "simplified": false,
            "avatarUrls": self.avatar_urls(),
        });
        if full && let Some(obj) = out.as_object_mut() {
            obj.insert(
                "expand".into(),
                json!("description,lead,issueTypes,url,projectKeys,permissions,insight"),
            );
            obj.insert("description".into(), json!(""));
            obj.insert("lead".into(), self.user_json_of(&self.users[0]));
            obj.insert("components".into(), json!([]));
            obj.insert(
                "issueTypes".into(),
                Value::Array(
                    (0..self.issue_types.len())
                        .map(|t| self.issue_type_json(t))
                        .collect(),
                ),
            );
            obj.insert("assigneeType".into(), json!("UNASSIGNED"));
            obj.insert("versions".into(), json!([]));
            obj.insert("roles".into(), json!({}));
            obj.insert("style".into(), json!("classic"));
            obj.insert("isPrivate".into(), json!(false));
            obj.insert("properties".into(), json!({}));
        }
        out
    }

    pub(crate) fn transition_json(&self, to: usize) -> Value {
        let s = &self.statuses[to];
        json!({
            "id": s.transition_id,
            "name": s.transition_name,
            "to": self.status_json(to),
            "hasScreen": false,
            "isGlobal": true,
            "isInitial": false,
            "isAvailable": true,
            "isConditional": false,
            "isLooped": false,
        })
    }

    pub(crate) fn transitions_json(&self, issue: usize, may_transition: bool) -> Value {
        if !may_transition {
            return json!([]);
        }
        let from = self.issues[issue].status;
        Value::Array(
            self.transitions_from(from)
                .map(|to| self.transition_json(to))
                .collect(),
        )
    }

    pub(crate) fn comment_json(&self, issue: usize, comment: &Comment) -> Value {
        let mut out = json!({
            "self": format!("{}/rest/api/2/issue/{}/comment/{}", self.base_url, self.issues[issue].id, comment.id),
            "id": comment.id.to_string(),
            "author": self.user_json(&comment.author),
            "body": comment.body,
            "updateAuthor": self.user_json(&comment.author),
            "created": jira_time(comment.created),
            "updated": jira_time(comment.updated),
        });
        if self.deployment == Deployment::Cloud
            && let Some(obj) = out.as_object_mut()
        {
            obj.insert("jsdPublic".into(), json!(true));
        }
        out
    }

    pub(crate) fn change_items_json(&self, history: &History) -> Value {
        Value::Array(
            history
                .items
                .iter()
                .map(|item| {
                    json!({
                        "field": item.field,
                        "fieldtype": item.field_type,
                        "fieldId": item.field_id,
                        "from": item.from,
                        "fromString": item.from_string,
                        "to": item.to,
                        "toString": item.to_string,
                    })
                })
                .collect(),
        )
    }

    pub(crate) fn history_json(&self, history: &History) -> Value {
        let mut json = json!({
            "id": history.id.to_string(),
            "created": jira_time(history.created),
            "items": self.change_items_json(history),
        });
        // An anonymous change (an automation rule run as nobody) has no author at all.
        if !history.author.is_empty() {
            json["author"] = self.user_json(&history.author);
        }
        json
    }

    /// `expand=changelog`: the most recent histories first, capped, with the real total.
    pub(crate) fn changelog_json(&self, issue: usize, cap: usize) -> Value {
        let histories = &self.issues[issue].histories;
        let shown: Vec<Value> = histories
            .iter()
            .rev()
            .take(cap)
            .map(|h| self.history_json(h))
            .collect();
        json!({
            "startAt": 0,
            "maxResults": shown.len(),
            "total": histories.len(),
            "histories": shown,
        })
    }

    /// The embedded `comment` field of an issue (oldest first, like the UI).
    fn comment_field_json(&self, issue: usize) -> Value {
        let i = &self.issues[issue];
        let comments: Vec<Value> = i
            .comments
            .iter()
            .map(|c| self.comment_json(issue, c))
            .collect();
        json!({
            "comments": comments,
            "self": format!("{}/rest/api/2/issue/{}/comment", self.base_url, i.id),
            "maxResults": comments.len(),
            "total": comments.len(),
            "startAt": 0,
        })
    }

    pub(crate) fn fields_json(&self, issue: usize, selection: &FieldSelection) -> Value {
        let i = &self.issues[issue];
        let mut fields = Map::new();
        let mut put = |name: &str, value: &dyn Fn() -> Value| {
            if selection.wants(name) {
                fields.insert(name.to_string(), value());
            }
        };
        put("summary", &|| json!(i.summary));
        put("description", &|| json!(i.description));
        put("labels", &|| json!(i.labels));
        put("status", &|| self.status_json(i.status));
        put("issuetype", &|| self.issue_type_json(i.issue_type));
        put("project", &|| self.project_json(i.project, false));
        put("created", &|| json!(jira_time(i.created)));
        put("updated", &|| json!(jira_time(i.updated)));
        put("reporter", &|| self.user_json(&i.reporter));
        put("creator", &|| self.user_json(&i.reporter));
        put("comment", &|| self.comment_field_json(issue));
        for name in &self.custom_fields {
            put(name, &|| i.custom.get(name).cloned().unwrap_or(Value::Null));
        }
        Value::Object(fields)
    }

    pub(crate) fn issue_json(&self, issue: usize, view: &IssueView) -> Value {
        let i = &self.issues[issue];
        let mut out = Map::new();
        out.insert(
            "expand".into(),
            json!(
                "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
            ),
        );
        out.insert("id".into(), json!(i.id.to_string()));
        out.insert(
            "self".into(),
            json!(format!("{}/rest/api/2/issue/{}", self.base_url, i.id)),
        );
        out.insert("key".into(), json!(i.key));
        out.insert("fields".into(), self.fields_json(issue, &view.fields));
        if view.changelog {
            out.insert(
                "changelog".into(),
                self.changelog_json(issue, view.changelog_cap),
            );
        }
        if view.transitions {
            out.insert(
                "transitions".into(),
                self.transitions_json(issue, view.may_transition),
            );
        }
        if let Some(selection) = &view.properties {
            let props: Map<String, Value> = i
                .properties
                .iter()
                .filter(|(k, _)| selection.wants(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            out.insert("properties".into(), Value::Object(props));
        }
        Value::Object(out)
    }
}
