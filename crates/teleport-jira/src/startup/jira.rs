//! Jira at start, as the Go plugin checks it: the API answers, the project exists, the plugin's
//! user has the permissions it needs. An outage is waited out for a while; a wrong URL,
//! credential, project or permission fails at once.

use std::sync::Arc;
use std::time::Duration;

use super::StartError;
use crate::backoff::Backoff;
use crate::config::Config;
use crate::jira::{JiraAuth, JiraClient, JiraClientOptions, JiraError};
use crate::metrics::Metrics;

/// The permissions the Go plugin checks before it starts.
pub const JIRA_PERMISSIONS: [&str; 4] = [
    "BROWSE_PROJECTS",
    "CREATE_ISSUES",
    "TRANSITION_ISSUES",
    "ADD_COMMENTS",
];

/// How long start-up waits out a Jira outage (5xx, 429, lost connections) before giving up; a
/// wrong URL, credential, project or permission fails at once.
const JIRA_STARTUP_PATIENCE: Duration = Duration::from_secs(60);

/// The Jira client the config describes, checked as the Go plugin checks it at start.
pub async fn connect_jira(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> Result<JiraClient, StartError> {
    let jira = JiraClient::new(JiraClientOptions {
        base_url: config.jira.url.clone(),
        auth: JiraAuth::from_config(&config.jira),
        max_concurrent_calls: config.jira.max_concurrent_calls,
        max_calls_per_second: config.jira.max_calls_per_second,
    })
    .map_err(|err| StartError::Jira(err.to_string()))?
    .with_metrics(metrics.clone());
    check_jira_patiently(&jira, &config.jira.project).await?;
    Ok(jira)
}

/// The Go plugin's start-up check of Jira: the API answers, the project exists, permissions are there.
pub async fn check_jira(jira: &JiraClient, project: &str) -> Result<(), JiraError> {
    tracing::debug!("Starting Jira API health check");
    // The Go plugin's three calls, sent at once (none depends on another's answer) and judged in
    // its order, so start-up waits one round trip instead of three and fails as it does.
    let (myself, found, permissions) = tokio::join!(
        jira.myself(),
        jira.project(project),
        jira.my_permissions(project, &JIRA_PERMISSIONS)
    );
    myself?;
    let found = found?;
    tracing::debug!(project = %found.key, project_name = %found.name, "Found Jira project");
    let permissions = permissions?;
    for key in JIRA_PERMISSIONS {
        if !permissions
            .permissions
            .get(key)
            .is_some_and(|p| p.have_permission)
        {
            return Err(JiraError::Other(format!(
                "plugin jira user does not have {key} permission"
            )));
        }
    }
    tracing::debug!("Jira API health check finished ok");
    Ok(())
}

async fn check_jira_patiently(jira: &JiraClient, project: &str) -> Result<(), StartError> {
    let deadline = tokio::time::Instant::now() + JIRA_STARTUP_PATIENCE;
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        match check_jira(jira, project).await {
            Ok(()) => return Ok(()),
            Err(err) if err.is_transient() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %err, "Jira is not answering yet; retrying the health check");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(err) => return Err(StartError::Jira(format!("api health check failed: {err}"))),
        }
    }
}
