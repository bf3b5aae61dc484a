//! `teleport-jira start`: the start-up checks, then the long-running parts wired together until
//! shutdown. Each part starts its own tasks and listeners in one tracker and stops on the one
//! shutdown token; [`run`] only names them in order.
//!
//! Start-up failures are returned as [`StartError`], one line each, which the CLI prints before
//! exiting with status 1. After start-up, nothing short of a shutdown signal ends the process:
//! connection problems are retried.

mod event_loop;
mod reconcile;
mod reloads;
mod servers;

use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::health;
use crate::metrics::Metrics;
use crate::startup;
pub use crate::startup::StartError;
use crate::teleport::refresh;

/// What the process needs besides the config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// End with an error when the watch fails instead of reconnecting (tests).
    pub fail_fast: bool,
}

/// Runs the plugin until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    tracing::info!(version = %crate::version::version_line(), "Starting Teleport Jira Plugin");
    // Installed first: until then SIGHUP's default action would end the process.
    let sighup =
        signal(SignalKind::hangup()).map_err(|err| StartError::Signals(err.to_string()))?;
    let (credentials, credentials_in_use) =
        startup::load_credentials(&config.teleport.credentials)?;
    startup::check_webhook_tls(&config)?;
    startup::warn_about_open_secret_files(&config);
    let metrics = Arc::new(Metrics::new());
    metrics.set_identity_expiry(credentials.info.not_after.into());
    // Teleport and Jira are checked at once: neither needs the other, and start-up then waits
    // for the slower of the two instead of their sum. The first failure ends start-up.
    let ((teleport, ping), jira) = tokio::try_join!(
        startup::connect_teleport(&config, &credentials, &metrics),
        startup::connect_jira(&config, &metrics)
    )?;
    let webhook_tls = startup::webhook_tls(&config)?;

    let tasks = TaskTracker::new();
    let plugin_user = &credentials.info.user;
    let engine = reconcile::start(
        &config,
        &ping,
        plugin_user,
        &teleport,
        &jira,
        &metrics,
        &shutdown,
    )
    .await;
    let mut reloads = reloads::Reloads::new(&config, &jira);
    reloads.reload_jsm_token(&config, engine.jsm.as_ref());
    let renewal = reloads.credential_renewal(&config, &teleport, credentials_in_use, &metrics);
    tasks.spawn(refresh::run(renewal, shutdown.clone()));
    tasks.spawn(health::keep_jira_checked(
        jira,
        config.jira.project.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    servers::start(
        &config,
        webhook_tls,
        &engine,
        &metrics,
        &mut reloads,
        &tasks,
        &shutdown,
    )
    .await?;
    reloads.start(sighup, &tasks, &shutdown);
    let rules = config
        .access_monitoring_rules
        .enabled
        .then(|| crate::startup::rule_filter(&config));
    let (watch, signals) = event_loop::Watch::start(teleport, options, rules, &tasks, &shutdown);
    tasks.close();

    event_loop::run(&config, &engine, &metrics, signals, &shutdown).await;
    reconcile::drain(engine, &tasks, config.reconcile.shutdown_grace_period).await;
    watch.outcome()
}
