//! Why the plugin did not start: one line each, which the CLI prints before exiting with status 1.

use thiserror::Error;

use crate::listener::ListenError;
use crate::teleport::TeleportError;

#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Credentials(String),
    #[error(
        "No valid credentials found, this likely means credentials are expired. In this case, please sign new credentials and increase their TTL if needed."
    )]
    Expired,
    #[error("{0}")]
    Teleport(#[from] TeleportError),
    #[error("{0}")]
    Version(String),
    #[error("webhook TLS: {0}")]
    WebhookTls(String),
    #[error("{0}")]
    Jira(String),
    /// A listener (the webhook's or the metrics one) could not start.
    #[error("{0}")]
    Listener(#[from] ListenError),
    #[error("installing the SIGHUP handler: {0}")]
    Signals(String),
}
