//! The open issues on the board and the requests they were made for, so a request deleted or
//! expired while no plugin watched still gets its issue closed.

use super::Reconciler;
use crate::jira::JiraError;
use crate::jira::types::{REQUEST_ID_PROPERTY, SearchHit};
use crate::sync::recovery;

impl Reconciler {
    /// The requests of up to `limit` issues still pending in Jira, in every project issues may be
    /// in (routed ones too). Each project is searched alone: Jira refuses a whole query that
    /// names one project it does not know, and one bad rule target must not hide the others.
    pub async fn requests_with_open_issues(&self, limit: usize) -> Result<Vec<String>, JiraError> {
        let (mut ids, mut failure) = (Vec::new(), None);
        for project in self.projects() {
            let jql = format!(
                "project = \"{project}\" AND status = \"{}\"",
                self.settings.statuses.pending
            );
            let hits = match self.jira.search(&jql, limit).await {
                Ok(hits) => hits,
                Err(err) if project != self.settings.project => {
                    tracing::warn!(error = %err, project = %project, "Could not search a routed project for open issues");
                    continue;
                }
                Err(err) => {
                    failure = Some(err);
                    continue;
                }
            };
            for hit in hits {
                if let Some(id) = self.request_of_hit(&hit).await {
                    ids.push(id);
                }
            }
        }
        match failure {
            Some(err) if ids.is_empty() => Err(err),
            Some(err) => {
                tracing::warn!(error = %err, "Could not search the configured project for open issues");
                Ok(ids)
            }
            None => Ok(ids),
        }
    }

    /// The request id in the issue's label, or else (issues made by the Go plugin carry it only
    /// there) in its property.
    async fn request_of_hit(&self, hit: &SearchHit) -> Option<String> {
        let labelled = hit.fields.as_ref().and_then(|fields| {
            fields
                .labels
                .iter()
                .find_map(|label| recovery::request_id_in_label(label))
        });
        if let Some(id) = labelled {
            return Some(id.to_owned());
        }
        match self.jira.in_background().issue_if_exists(&hit.id).await {
            Ok(issue) => issue.and_then(|issue| match issue.properties.get(REQUEST_ID_PROPERTY) {
                Some(serde_json::Value::String(id)) if !id.is_empty() => Some(id.clone()),
                _ => None,
            }),
            Err(err) => {
                tracing::debug!(error = %err, jira_issue_id = %hit.id, "Skipping an issue the sweep could not read");
                None
            }
        }
    }
}
