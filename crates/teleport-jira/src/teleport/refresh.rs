//! `refresh_identity`: re-reads the identity file on an interval and, when it changed and parses,
//! replaces the connection's credentials without a restart. Unlike the Go plugin, whose reload
//! stops after start-up, this task lives as long as the process.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::client::TeleportClient;
use super::identity::parse_identity_file;

pub async fn run(
    client: Arc<TeleportClient>,
    path: PathBuf,
    interval: Duration,
    initial_text: String,
    shutdown: CancellationToken,
) {
    let mut applied = initial_text;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "Failed to reload identity file from disk.");
                continue;
            }
        };
        if text == applied {
            continue;
        }
        let credentials = match parse_identity_file(&text) {
            Ok(credentials) => credentials,
            // tbot may be half-way through writing it; the next tick will see the whole file.
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "Failed to reload identity file from disk.");
                continue;
            }
        };
        match client.replace_credentials(&credentials).await {
            Ok(()) => {
                tracing::info!(
                    path = %path.display(),
                    valid_until = %credentials.info.valid_until(),
                    "Loaded renewed Teleport credentials"
                );
                applied = text;
            }
            Err(err) => {
                tracing::warn!(error = %err, "Renewed identity could not connect to Teleport; keeping the current one");
            }
        }
    }
}
