//! Which request an issue belongs to, as a webhook asks. Anti-forgery: the issue's property names
//! the request, and the request's plugin data (written only by the plugin) names this very issue.

use super::Reconciler;
use crate::jira::JiraError;
use crate::jira::types::REQUEST_ID_PROPERTY;
use crate::plugin_data::{PLUGIN_NAME, PluginData};

/// Why an issue could not be tied to a request.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// The issue is unknown, not ours, or not the one recorded for its request.
    #[error("{0}")]
    Refused(String),
    /// Jira or Teleport could not be asked; asking again later may succeed.
    #[error("{0}")]
    Unavailable(String),
}

impl Reconciler {
    /// The request that issue `issue_id` was made for; `None` for an issue whose property is
    /// blank (one the plugin gave up on).
    pub async fn owner_of_issue(&self, issue_id: &str) -> Result<Option<String>, OwnerError> {
        // Tied already by plugin data this process read: the step reads the issue, and only a
        // card that names its request is ever taken as a decision.
        if let Some(request_id) = self.owners.owner(issue_id) {
            return Ok(Some(request_id));
        }
        let issue = match self.jira.issue(issue_id).await {
            Ok(issue) => issue,
            Err(JiraError::Status { status: 404, .. }) => {
                return Err(OwnerError::Refused(format!("unknown issue {issue_id}")));
            }
            Err(err) => return Err(OwnerError::Unavailable(err.to_string())),
        };
        let request_id = match issue.properties.get(REQUEST_ID_PROPERTY) {
            Some(serde_json::Value::String(id)) if id.is_empty() => return Ok(None),
            Some(serde_json::Value::String(id)) => id.clone(),
            // Not an issue of ours (or a tampered one).
            _ => {
                return Err(OwnerError::Refused(format!(
                    "issue {issue_id} has no {REQUEST_ID_PROPERTY} property"
                )));
            }
        };
        let data = self
            .teleport
            .plugin_data(&request_id, PLUGIN_NAME)
            .await
            .map_err(|err| OwnerError::Unavailable(err.to_string()))?
            .map(|data| PluginData::decode(&data));
        match data.and_then(|d| d.issue) {
            Some(recorded) if recorded.id == issue.id => {
                self.owners.note(&request_id, &issue.id);
                Ok(Some(request_id))
            }
            _ => Err(OwnerError::Refused(format!(
                "issue {issue_id} is not the issue recorded for request {request_id}"
            ))),
        }
    }

    /// Why the step a webhook for issue `issue_id` started refused the issue, if it did.
    pub fn take_refusal(&self, issue_id: &str) -> Option<String> {
        self.owners.take_refusal(issue_id)
    }
}
