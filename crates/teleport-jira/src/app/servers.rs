//! The listeners as parts of the process: the plain-HTTP metrics listener when configured, and the
//! webhook listener (with `/status`, `/readyz` and `/metrics` beside it) unless disabled.

use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::StartError;
use super::reconcile::Running;
use super::reloads::Reloads;
use crate::config::Config;
use crate::health::{self, HealthState};
use crate::listener;
use crate::metrics::Metrics;
use crate::reload::{SecretFile, WebhookTls};
use crate::startup;
use crate::webhook::{self, WebhookState};

/// Binds and serves the listeners the config asks for; a bind failure is a start-up error.
pub async fn start(
    config: &Config,
    tls: Option<RustlsConfig>,
    running: &Running,
    metrics: &Arc<Metrics>,
    reloads: &mut Reloads,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<(), StartError> {
    let engine = running.engine.clone();
    let health = HealthState::new(
        metrics.clone(),
        Arc::new(move |metrics: &Metrics| engine.publish_gauges(metrics)),
    );
    if let Some(addr) = config.metrics.listen_addr {
        let routes = health::routes(health.clone());
        listener::start("metrics", addr, None, routes, tasks, shutdown).await?;
    }
    if config.http.disable_webhook {
        tracing::info!(
            scan_interval = ?config.reconcile.scan_interval,
            "Webhook disabled: decisions made in Jira are found by the periodic scan"
        );
        return Ok(());
    }
    startup::warn_if_unauthenticated(config);
    let state = WebhookState::new(
        running.engine.clone(),
        config.http.basic_auth.clone(),
        config.http.webhook_secret.clone(),
        metrics.clone(),
    );
    if let Some(path) = &config.http.webhook_secret_file {
        let secret = state.secret();
        reloads.add_secret_file(SecretFile {
            key: "http.webhook_secret",
            path: path.clone(),
            apply: Box::new(move |value| secret.store(Some(Arc::new(value)))),
        });
    }
    if let Some(path) = &config.http.basic_auth_password_file {
        let basic_auth = state.basic_auth();
        reloads.add_secret_file(SecretFile {
            key: "http.basic_auth.password_file",
            path: path.clone(),
            apply: Box::new(move |password| {
                let user = basic_auth.load().as_ref().map(|auth| auth.user.clone());
                if let Some(user) = user {
                    basic_auth.store(Some(Arc::new(crate::config::BasicAuth { user, password })));
                }
            }),
        });
    }
    if let (Some(live), Some(files)) = (&tls, &config.http.tls) {
        let verify = config.http.verify_client_cert;
        reloads.serve_webhook_tls(WebhookTls::new(live.clone(), files.clone(), verify));
    }
    let router = webhook::router(state, config.http.max_body_bytes, health);
    listener::start(
        "webhook",
        config.http.listen_addr,
        tls,
        router,
        tasks,
        shutdown,
    )
    .await?;
    Ok(())
}
