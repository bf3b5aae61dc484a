//! `/status`, `/readyz` and `/metrics`: served on the webhook listener (behind its basic auth, as
//! the Go plugin's `/status` is) and, when `[metrics] listen_addr` is set, on a plain-HTTP listener
//! of their own for probes and scrapers.
//!
//! Ready means the plugin can do its job right now: the watch on Teleport's access requests is
//! established, and Jira answered within [`JIRA_SILENCE_LIMIT`]. A quiet board makes no calls, so
//! [`keep_jira_checked`] asks Jira something cheap whenever it has been silent for a while.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::jira::{JiraClient, JiraError};
use crate::metrics::Metrics;

/// How long Jira may go without answering before the plugin stops calling itself ready.
pub const JIRA_SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// How often a silent Jira is asked something; well inside the limit, so one lost answer does not
/// flip readiness.
const JIRA_PROBE_INTERVAL: Duration = Duration::from_secs(15);

/// Refreshes the gauges that are read rather than counted (queue depth, requests by state).
pub type BeforeScrape = Arc<dyn Fn(&Metrics) + Send + Sync>;

#[derive(Clone)]
pub struct HealthState {
    metrics: Arc<Metrics>,
    before_scrape: BeforeScrape,
}

impl HealthState {
    pub fn new(metrics: Arc<Metrics>, before_scrape: BeforeScrape) -> Self {
        Self {
            metrics,
            before_scrape,
        }
    }
}

pub fn routes(state: HealthState) -> Router {
    Router::new()
        .route("/status", get(|| async { StatusCode::OK }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Whether the plugin can do its job now; the error says what is missing.
pub fn readiness(metrics: &Metrics) -> Result<(), String> {
    let verdict = if metrics.watch_connected.get() != 1 {
        Err("the watch on Teleport's access requests is not established".to_owned())
    } else if let Some(reason) = metrics.jira_refusal() {
        Err(format!(
            "Jira refuses the plugin ({reason}); see the log for the fix"
        ))
    } else {
        match metrics.jira_silence() {
            None => Err("Jira has not answered yet".to_owned()),
            Some(silence) if silence > JIRA_SILENCE_LIMIT.as_secs_f64() => {
                Err(format!("Jira has not answered for {silence:.0} s"))
            }
            Some(_) => Ok(()),
        }
    };
    metrics.ready.set(i64::from(verdict.is_ok()));
    verdict
}

async fn readyz(State(state): State<HealthState>) -> Response {
    let (status, body) = match readiness(&state.metrics) {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn metrics(State(state): State<HealthState>) -> Response {
    (state.before_scrape)(&state.metrics);
    let _ = readiness(&state.metrics);
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

/// Asks Jira who the plugin is whenever it has been silent for [`JIRA_PROBE_INTERVAL`], so
/// readiness reflects Jira even when nothing happens on the board. The client records the answer.
pub async fn keep_jira_checked(
    jira: JiraClient,
    project: String,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(JIRA_PROBE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let silent = metrics
            .jira_silence()
            .is_none_or(|silence| silence >= JIRA_PROBE_INTERVAL.as_secs_f64());
        // While Jira refuses the plugin, keep asking: a fixed token or permission makes it ready
        // again without anything happening on the board.
        if metrics.jira_refusal().is_some() {
            probe_refusing_jira(&jira, &metrics, &project).await;
        } else if silent && let Err(err) = jira.myself().await {
            tracing::debug!(error = %err, "Jira did not answer the readiness probe");
        }
        let _ = readiness(&metrics);
    }
}

/// While Jira refuses the plugin, checks again what start-up checks (credentials, project,
/// permissions), so a fixed token or permission makes it ready again with nothing happening on
/// the board, and a permission still missing keeps it not ready.
async fn probe_refusing_jira(jira: &JiraClient, metrics: &Metrics, project: &str) {
    match crate::startup::check_jira(jira, project).await {
        Ok(()) => tracing::info!("Jira accepts the plugin again"),
        Err(JiraError::Other(missing)) => {
            metrics.set_jira_refusing(Some("forbidden"));
            tracing::error!(error = %missing, "Jira refuses the plugin; grant the permission in the project's permission scheme");
        }
        Err(err) => {
            tracing::error!(error = %err, "Jira refuses the plugin; not ready until it accepts it");
        }
    }
}
