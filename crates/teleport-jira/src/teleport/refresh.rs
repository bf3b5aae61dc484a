//! Credential renewal without a restart: the credential files are read again on SIGHUP and, with
//! `refresh_identity`, on an interval; when they changed and parse, the connection's credentials are
//! replaced. Unlike the Go plugin, whose reload stops after start-up, this task lives as long as the
//! process.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::client::TeleportClient;
use super::identity::Credentials;
use crate::metrics::Metrics;

/// Reads the credential files' text, compared with what is in use before anything is parsed.
pub type ReadCredentials = Box<dyn Fn() -> Result<String, String> + Send + Sync>;
/// Turns changed text into credentials.
pub type ParseCredentials = Box<dyn Fn(&str) -> Result<Credentials, String> + Send + Sync>;

pub struct Renewal {
    pub client: Arc<TeleportClient>,
    pub read: ReadCredentials,
    pub parse: ParseCredentials,
    /// `refresh_identity_interval` when `refresh_identity` is on.
    pub interval: Option<Duration>,
    /// The text of the credentials in use.
    pub applied: String,
    /// Notified on SIGHUP.
    pub reload_now: Arc<Notify>,
    /// Shows when the credentials in use expire.
    pub metrics: Arc<Metrics>,
}

pub async fn run(mut renewal: Renewal, shutdown: CancellationToken) {
    let mut ticker = renewal.interval.map(|interval| {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    });
    loop {
        let asked = tokio::select! {
            () = shutdown.cancelled() => return,
            () = renewal.reload_now.notified() => true,
            _ = async {
                match ticker.as_mut() {
                    Some(ticker) => ticker.tick().await,
                    None => std::future::pending().await,
                }
            } => false,
        };
        renewal.apply_if_changed(asked).await;
    }
}

impl Renewal {
    /// `asked` is whether an operator asked (SIGHUP): then "nothing changed" is worth saying too.
    async fn apply_if_changed(&mut self, asked: bool) {
        let text = match (self.read)() {
            Ok(text) => text,
            Err(err) => {
                tracing::warn!(error = %err, "Failed to reload identity file from disk.");
                return;
            }
        };
        if text == self.applied {
            if asked {
                tracing::info!("Teleport credentials unchanged on disk; keeping the connection");
            }
            return;
        }
        let credentials = match (self.parse)(&text) {
            Ok(credentials) => credentials,
            // tbot may be half-way through writing the file; the next tick will see all of it.
            Err(err) => {
                tracing::warn!(error = %err, "Failed to reload identity file from disk.");
                return;
            }
        };
        match self.client.replace_credentials(&credentials).await {
            Ok(()) => {
                tracing::info!(
                    user = %credentials.info.user,
                    valid_until = %credentials.info.valid_until(),
                    "Loaded renewed Teleport credentials"
                );
                self.applied = text;
                self.metrics
                    .set_identity_expiry(credentials.info.not_after.into());
            }
            Err(err) => {
                tracing::warn!(error = %err, "Renewed identity could not connect to Teleport; keeping the current one");
            }
        }
    }
}
