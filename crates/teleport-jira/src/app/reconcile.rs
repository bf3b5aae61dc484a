//! The reconcile engine as a part of the process: the reconciler built from the config, its
//! workers started, and drained at shutdown within the grace period.

use std::sync::Arc;
use std::time::Duration;

use teleport_proto::proto::PingResponse;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::jira::JiraClient;
use crate::metrics::Metrics;
use crate::sync::policy::ApproverPolicy;
use crate::sync::store::RequestStore;
use crate::sync::{Engine, IssueSettings, Reconciler};
use crate::teleport::TeleportClient;

/// The engine and the task that drives its workers.
pub struct Running {
    pub engine: Arc<Engine>,
    driver: JoinHandle<()>,
}

/// Builds the reconciler and starts the engine's workers; they stop when `shutdown` is cancelled.
pub async fn start(
    config: &Config,
    ping: &PingResponse,
    teleport: &Arc<TeleportClient>,
    jira: &JiraClient,
    metrics: &Arc<Metrics>,
    shutdown: &CancellationToken,
) -> Running {
    let reconciler = Reconciler::new(
        teleport.clone(),
        jira.clone(),
        Arc::new(RequestStore::default()),
        issue_settings(config, ping),
        config.reconcile.lease_ttl,
        metrics.clone(),
    );
    reconciler.learn_latest_issue(&config.jira.project).await;
    let (engine, driver) = Engine::start(reconciler, config.reconcile.workers, shutdown.clone());
    Running { engine, driver }
}

fn issue_settings(config: &Config, ping: &PingResponse) -> IssueSettings {
    let jira = &config.jira;
    IssueSettings {
        project: jira.project.clone(),
        issue_type: jira.issue_type.clone(),
        statuses: jira.statuses.clone(),
        proxy_public_addr: Some(ping.proxy_public_addr.clone()).filter(|addr| !addr.is_empty()),
        labels: jira.labels.clone(),
        fields: jira.fields.clone(),
        policy: ApproverPolicy {
            approvers: jira.approvers.clone(),
            groups: jira.approver_groups.clone(),
            users: jira.users.clone(),
        },
        resolve_with: jira.resolve_with,
        notification_name: config.access_monitoring_rules.notification_name.clone(),
        people: jira.people.clone(),
        audit: config.audit.clone(),
    }
}

/// After intake stopped: the other parts end, and steps already running get `grace` to finish.
pub async fn drain(running: Running, tasks: &TaskTracker, grace: Duration) {
    let drained = tokio::time::timeout(grace, async {
        tasks.wait().await;
        let _ = running.driver.await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            backlog = running.engine.backlog(),
            ?grace,
            "Shutdown grace period over; abandoning steps in flight (the next start redoes them)"
        );
    }
}
