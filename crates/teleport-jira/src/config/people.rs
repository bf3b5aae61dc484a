//! `[jira.people]` (who goes on the ticket, and reminders) and `[audit]` (the review trail in the
//! ticket, and a JSON line per resolved request). Every default keeps the ticket as the Go plugin
//! makes it: no new Jira or Teleport call, no changed text.

use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawAudit, RawPeople};
use super::{ConfigError, invalid, non_empty};

/// The trait a Teleport user's Jira identity is read from unless configured otherwise.
pub const DEFAULT_ACCOUNT_ID_TRAIT: &str = "jira_account_id";

/// People on the ticket, so Jira's own notifications reach them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeopleConfig {
    /// The Teleport trait holding the Jira account id (Cloud) or username (Data Center).
    pub account_id_trait: String,
    /// Without the trait, Jira's user search by the Teleport user name when it is an e-mail.
    pub email_lookup: bool,
    pub requester: RequesterAs,
    pub suggested_reviewers: ReviewersAs,
    /// The resolution comment mentions the requester.
    pub mention_on_resolution: bool,
    /// One comment mentioning the suggested reviewers once a request has been pending this long;
    /// `None`: no reminder.
    pub remind_after: Option<Duration>,
}

impl PeopleConfig {
    /// Whether anything asks for a Jira identity (otherwise no lookup is ever made).
    pub fn enabled(&self) -> bool {
        self.requester != RequesterAs::None
            || self.suggested_reviewers != ReviewersAs::None
            || self.mention_on_resolution
            || self.remind_after.is_some()
    }
}

impl Default for PeopleConfig {
    fn default() -> Self {
        Self {
            account_id_trait: DEFAULT_ACCOUNT_ID_TRAIT.to_owned(),
            email_lookup: false,
            requester: RequesterAs::None,
            suggested_reviewers: ReviewersAs::None,
            mention_on_resolution: false,
            remind_after: None,
        }
    }
}

/// What the requester becomes on their ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequesterAs {
    None,
    /// A watcher (needs the Manage watchers permission).
    Watcher,
    /// The reporter, set by an edit after creation (needs the Modify reporter permission).
    Reporter,
}

/// What the request's suggested reviewers become on the ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewersAs {
    None,
    Watcher,
    /// Mentioned in one comment after creation.
    Mention,
}

/// A record of each request that outlives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditConfig {
    /// The resolution comment lists every review: author, decision, reason, time.
    pub trail_in_ticket: bool,
    /// One JSON line per resolved request is appended here.
    pub jsonl_path: Option<PathBuf>,
}

pub(super) fn people_section(raw: RawPeople) -> Result<PeopleConfig, ConfigError> {
    let account_id_trait = match raw.account_id_trait {
        None => DEFAULT_ACCOUNT_ID_TRAIT.to_owned(),
        Some(name) if name.trim().is_empty() => {
            return Err(invalid(
                "jira.people.account_id_trait must not be empty (default \"jira_account_id\")",
            ));
        }
        Some(name) => name.trim().to_owned(),
    };
    let requester = match lowercase(raw.requester).as_deref() {
        None | Some("none") => RequesterAs::None,
        Some("watcher") => RequesterAs::Watcher,
        Some("reporter") => RequesterAs::Reporter,
        Some(other) => {
            return Err(invalid(format!(
                "jira.people.requester must be \"none\", \"watcher\" or \"reporter\", not {other:?}"
            )));
        }
    };
    let suggested_reviewers = match lowercase(raw.suggested_reviewers).as_deref() {
        None | Some("none") => ReviewersAs::None,
        Some("watcher") => ReviewersAs::Watcher,
        Some("mention") => ReviewersAs::Mention,
        Some(other) => {
            return Err(invalid(format!(
                "jira.people.suggested_reviewers must be \"none\", \"watcher\" or \"mention\", not {other:?}"
            )));
        }
    };
    Ok(PeopleConfig {
        account_id_trait,
        email_lookup: raw.email_lookup,
        requester,
        suggested_reviewers,
        mention_on_resolution: raw.mention_on_resolution,
        remind_after: raw.remind_after.filter(|after| !after.is_zero()),
    })
}

pub(super) fn audit_section(raw: RawAudit) -> AuditConfig {
    AuditConfig {
        trail_in_ticket: raw.trail_in_ticket,
        jsonl_path: non_empty(raw.jsonl_path).map(PathBuf::from),
    }
}

fn lowercase(value: Option<String>) -> Option<String> {
    non_empty(value).map(|v| v.trim().to_ascii_lowercase())
}
