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
use crate::jsm::JsmClient;
use crate::metrics::Metrics;
use crate::sync::policy::ApproverPolicy;
use crate::sync::store::RequestStore;
use crate::sync::{Engine, IssueSettings, OnCallSettings, Reconciler};
use crate::teleport::TeleportClient;

/// The engine and the task that drives its workers.
pub struct Running {
    pub engine: Arc<Engine>,
    /// The JSM client of the on-call check, when it is on (its token file is reloaded).
    pub jsm: Option<JsmClient>,
    driver: JoinHandle<()>,
}

/// Builds the reconciler and starts the engine's workers; they stop when `shutdown` is cancelled.
pub async fn start(
    config: &Config,
    ping: &PingResponse,
    plugin_user: &str,
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
    let on_call = on_call(config, plugin_user);
    let jsm = on_call.as_ref().map(|(_, jsm)| jsm.clone());
    let reconciler = match on_call {
        Some((settings, jsm)) => reconciler.with_on_call(settings, jsm),
        None => reconciler,
    };
    let (engine, driver) = Engine::start(reconciler, config.reconcile.workers, shutdown.clone());
    engine.learn_latest_issue_soon(&config.jira.project);
    Running {
        engine,
        jsm,
        driver,
    }
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
        rules: crate::startup::rule_filter(config),
        people: jira.people.clone(),
        audit: config.audit.clone(),
    }
}

/// The on-call check's settings and client, when `[jsm_oncall]` is on.
fn on_call(config: &Config, plugin_user: &str) -> Option<(OnCallSettings, JsmClient)> {
    let oncall = &config.jsm_oncall;
    if !oncall.enabled {
        return None;
    }
    let jsm = match JsmClient::new(&oncall.api_url, &oncall.email, oncall.api_token.clone()) {
        Ok(jsm) => jsm,
        Err(err) => {
            tracing::warn!(error = %err, "On-call approval is off: cannot build its HTTP client");
            return None;
        }
    };
    let settings = OnCallSettings {
        schedules_annotation: oncall.schedules_annotation.clone(),
        default_schedules: oncall.default_schedules.clone(),
        account_id_trait: oncall.account_id_trait.clone(),
        email_lookup: oncall.email_lookup,
        plugin_user: plugin_user.to_owned(),
        jira_url: config.jira.url.clone(),
        cloud_id: oncall.cloud_id.clone(),
    };
    Some((settings, jsm))
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
