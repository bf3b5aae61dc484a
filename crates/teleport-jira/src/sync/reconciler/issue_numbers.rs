//! The highest issue number seen in each project: a lower bound for the next one created there,
//! which is where a recovery starts reading issues by key (search may lag; reading by key cannot).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use super::Reconciler;
use crate::sync::recovery::issue_number;

/// By project key, the highest issue number known (present once a search answered or an issue
/// number was seen).
#[derive(Default)]
pub(super) struct IssueNumbers {
    latest: Mutex<HashMap<String, u64>>,
}

impl Reconciler {
    /// Learns the newest issue number of `project` (search may lag; a lower number only makes a
    /// later recovery read a few more issues).
    pub async fn learn_latest_issue(&self, project: &str) {
        let jql = format!("project = \"{project}\" ORDER BY created DESC");
        match self.jira.search(&jql, 1).await {
            Ok(hits) => {
                let newest = hits
                    .iter()
                    .filter_map(|hit| hit.key.as_deref().and_then(issue_number))
                    .max();
                self.note_latest(project, newest.unwrap_or(0));
            }
            Err(err) => {
                tracing::debug!(error = %err, project, "Could not learn the project's newest issue")
            }
        }
    }

    /// Notes an issue seen by key (`PROJ-42`).
    pub(super) fn note_issue_key(&self, key: &str) {
        if let (Some((project, _)), Some(number)) = (key.rsplit_once('-'), issue_number(key)) {
            self.note_latest(project, number);
        }
    }

    fn note_latest(&self, project: &str, number: u64) {
        let mut latest = crate::lock::lock(&self.numbers.latest);
        let known = latest.entry(project.to_owned()).or_default();
        *known = (*known).max(number);
    }

    pub(super) fn latest_issue(&self, project: &str) -> Option<u64> {
        crate::lock::lock(&self.numbers.latest)
            .get(project)
            .copied()
    }

    /// Every project an issue was seen in or learned about.
    pub(super) fn projects_seen(&self) -> BTreeSet<String> {
        crate::lock::lock(&self.numbers.latest)
            .keys()
            .cloned()
            .collect()
    }
}
