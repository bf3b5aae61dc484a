//! The highest issue number seen in the project: a lower bound for the next one created, which is
//! where a recovery starts reading issues by key (search may lag; reading by key cannot).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::Reconciler;
use crate::sync::recovery::issue_number;

#[derive(Default)]
pub(super) struct IssueNumbers {
    latest: AtomicU64,
    /// Whether `latest` is known (a search answered, or an issue number was seen).
    known: AtomicBool,
}

impl Reconciler {
    /// Learns the newest issue number of the project (search may lag; a lower number only makes a
    /// later recovery read a few more issues).
    pub async fn learn_latest_issue(&self) {
        let jql = format!(
            "project = \"{}\" ORDER BY created DESC",
            self.settings.project
        );
        match self.jira.search(&jql, 1).await {
            Ok(hits) => {
                let newest = hits
                    .iter()
                    .filter_map(|hit| hit.key.as_deref().and_then(issue_number))
                    .max();
                self.note_issue_number(newest.unwrap_or(0));
            }
            Err(err) => tracing::debug!(error = %err, "Could not learn the project's newest issue"),
        }
    }

    pub(super) fn note_issue_number(&self, number: u64) {
        self.numbers.latest.fetch_max(number, Ordering::Relaxed);
        self.numbers.known.store(true, Ordering::Relaxed);
    }

    pub(super) fn latest_issue(&self) -> Option<u64> {
        let known = self.numbers.known.load(Ordering::Relaxed);
        known.then(|| self.numbers.latest.load(Ordering::Relaxed))
    }
}
