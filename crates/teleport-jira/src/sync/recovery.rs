//! Finding an issue already made for a request, so a creation cut short by a crash, a timeout or a
//! lost reply is never repeated; and closing a duplicate if one ever exists.
//!
//! Jira Cloud's search lags behind writes (seconds to minutes), so search alone can miss an issue
//! made just before a crash. Reading an issue by key is immediately consistent, and keys are
//! numbered in sequence per project: the issues created after a known number are read one by one
//! until a run of missing numbers. Together they find the issue whatever the index says.
//!
//! Many requests may look at once (after Jira timed out on a burst of creations), and their walks
//! cover the same numbers: which request an existing issue was made for never changes, so each
//! issue is read once and remembered in [`KnownIssues`], and a walk reads only the numbers no
//! other walk has seen, its own issue, and the few missing numbers that end it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::error::StepError;
use crate::jira::JiraClient;
use crate::jira::same_name;
use crate::jira::types::{Issue, REQUEST_ID_PROPERTY};

/// Missing numbers in a row that end the read-by-key walk (deleted or moved issues leave gaps).
const GAP_TOLERANCE: u32 = 5;
/// Upper bound of issues read by key in one recovery.
const MAX_KEY_READS: u32 = 200;
const SEARCH_LIMIT: usize = 20;
/// Issues read at once by the walk by key.
const WALK_BATCH: usize = 8;
/// Issues remembered by number; past this the lowest numbers (the oldest) are forgotten.
const KNOWN_ISSUES_KEPT: usize = 10_000;

/// For the issues read by key: the request each was made for (empty: none), by project and
/// number.
#[derive(Default)]
pub struct KnownIssues {
    by_number: Mutex<BTreeMap<(String, u64), String>>,
}

impl KnownIssues {
    fn made_for(&self, project: &str, number: u64) -> Option<String> {
        crate::lock::lock(&self.by_number)
            .get(&(project.to_owned(), number))
            .cloned()
    }

    fn remember(&self, project: &str, number: u64, issue: &Issue) {
        self.remember_number(project, number, made_for(issue).unwrap_or_default());
    }

    /// Notes that issue `key` was made for `request_id` (this process just created it).
    pub fn remember_made_for(&self, key: &str, request_id: &str) {
        if let (Some((project, _)), Some(number)) = (key.rsplit_once('-'), issue_number(key)) {
            self.remember_number(project, number, request_id);
        }
    }

    fn remember_number(&self, project: &str, number: u64, request_id: &str) {
        let mut known = crate::lock::lock(&self.by_number);
        known.insert((project.to_owned(), number), request_id.to_owned());
        while known.len() > KNOWN_ISSUES_KEPT {
            known.pop_first();
        }
    }
}

/// The label every issue carries with its request id, so that Jira search can find it.
pub fn request_label(request_id: &str) -> String {
    format!("{LABEL_PREFIX}{request_id}")
}

const LABEL_PREFIX: &str = "teleport-access-request-";

/// The request id in a label made by [`request_label`].
pub fn request_id_in_label(label: &str) -> Option<&str> {
    label
        .strip_prefix("teleport-access-request-")
        .filter(|id| !id.is_empty())
}

/// The number in an issue key (`PROJ-42` → 42).
pub fn issue_number(key: &str) -> Option<u64> {
    key.rsplit_once('-')
        .and_then(|(_, number)| number.parse().ok())
}

/// The issues of `project` made for `request_id`, oldest first. `after_issue` is the highest issue
/// number known before the creation that may have happened (`None` when unknown: search only).
/// Its calls wait behind creations and decisions: nobody is waiting on a repair.
pub async fn find_issues(
    jira: &JiraClient,
    known: &KnownIssues,
    project: &str,
    request_id: &str,
    after_issue: Option<u64>,
) -> Result<Vec<Issue>, StepError> {
    let jira = jira.in_background();
    let mut found = BTreeMap::new();
    let jql = format!(
        "project = \"{project}\" AND labels = \"{}\"",
        request_label(request_id)
    );
    match jira.search(&jql, SEARCH_LIMIT).await {
        Ok(hits) => {
            for hit in hits {
                if let Some(issue) = jira.issue_if_exists(&hit.id).await? {
                    keep_if_made_for(&mut found, issue, request_id);
                }
            }
        }
        // Search is a shortcut; the walk by key below is what guarantees the answer.
        Err(err) => {
            tracing::warn!(error = %err, "Jira search failed; looking the issue up by key only")
        }
    }
    // Search found it: lagging search can miss an issue but never invents one, so the walk
    // (which only makes up for the lag) is not needed.
    if let Some(after_issue) = after_issue.filter(|_| found.is_empty()) {
        walk_by_key(&jira, known, project, request_id, after_issue, &mut found).await?;
    }
    Ok(found.into_values().collect())
}

/// Reads the issues numbered after `after_issue` until a run of missing numbers, skipping those
/// already known to be made for another request.
async fn walk_by_key(
    jira: &JiraClient,
    known: &KnownIssues,
    project: &str,
    request_id: &str,
    after_issue: u64,
    found: &mut BTreeMap<u64, Issue>,
) -> Result<(), StepError> {
    let (mut next, mut misses, mut reads) = (after_issue + 1, 0, 0);
    while misses < GAP_TOLERANCE && reads < MAX_KEY_READS {
        // The next numbers not known to belong to another request, read at once: a walk over
        // many issues other replicas made costs a few round trips, not one per issue.
        let mut batch = Vec::with_capacity(WALK_BATCH);
        while batch.len() < WALK_BATCH {
            let other_request = known
                .made_for(project, next)
                .is_some_and(|made_for| made_for != request_id);
            if !other_request {
                batch.push(next);
            }
            next += 1;
        }
        let answers = futures_util::future::join_all(
            batch
                .iter()
                .map(|number| jira.issue_if_exists_owned(format!("{project}-{number}"))),
        )
        .await;
        for (number, answer) in batch.into_iter().zip(answers) {
            reads += 1;
            // A missing number is not remembered: an issue may take it any moment.
            match answer? {
                Some(issue) => {
                    misses = 0;
                    known.remember(project, number, &issue);
                    keep_if_made_for(found, issue, request_id);
                }
                None => misses += 1,
            }
        }
    }
    Ok(())
}

fn made_for(issue: &Issue) -> Option<&str> {
    match issue.properties.get(REQUEST_ID_PROPERTY) {
        Some(serde_json::Value::String(id)) => Some(id),
        _ => None,
    }
}

fn keep_if_made_for(found: &mut BTreeMap<u64, Issue>, issue: Issue, request_id: &str) {
    if made_for(&issue) == Some(request_id) {
        let number = issue.id.parse().unwrap_or(u64::MAX);
        found.entry(number).or_insert(issue);
    }
}

/// Takes a duplicate out of the way: a comment naming the issue that tracks the request, and a
/// move to `expired_status` when the workflow allows it.
pub async fn close_duplicate(
    jira: &JiraClient,
    duplicate: &Issue,
    canonical_key: &str,
    expired_status: &str,
) -> Result<(), StepError> {
    tracing::warn!(jira_issue_key = %duplicate.key, canonical = %canonical_key, "Closing a duplicate issue");
    let comment = format!(
        "This issue duplicates {canonical_key}, which tracks the same access request; it was closed automatically."
    );
    jira.add_comment(&duplicate.id, &comment).await?;
    if let Some(transition) = duplicate
        .transitions
        .iter()
        .find(|t| same_name(&t.to.name, expired_status))
    {
        jira.transition(&duplicate.id, &transition.id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_numbers_come_from_keys() {
        assert_eq!(issue_number("PROJ-42"), Some(42));
        assert_eq!(issue_number("MY-PROJ-7"), Some(7));
        assert_eq!(issue_number("PROJ"), None);
    }

    #[test]
    fn labels_carry_the_request_id_without_spaces() {
        let label = request_label("8bdbda57-6f72-44b5-ae66-f8f7d8578ec3");
        assert_eq!(
            label,
            "teleport-access-request-8bdbda57-6f72-44b5-ae66-f8f7d8578ec3"
        );
        assert!(!label.contains(' '));
    }
}
