//! Teleport at start: connect with the credentials, check the server's version as the Go plugin
//! does, and say where the plugin is connected.

use std::sync::Arc;

use teleport_proto::proto::PingResponse;

use super::StartError;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::teleport::{Credentials, TeleportClient, TeleportError};
use crate::version::check_server_version;

/// A connected client, reporting to `metrics`, and the server's answer to `Ping`.
pub async fn connect_teleport(
    config: &Config,
    credentials: &Credentials,
    metrics: &Arc<Metrics>,
) -> Result<(Arc<TeleportClient>, PingResponse), StartError> {
    tracing::info!(
        user = %credentials.info.user,
        valid_until = %credentials.info.valid_until(),
        "Loaded Teleport credentials"
    );
    tracing::debug!("Checking Teleport server version");
    let (client, ping) = TeleportClient::connect(&config.teleport.addr, credentials)
        .await
        .map_err(|err| match err {
            TeleportError::NotImplemented(message) => {
                StartError::Version(format!("server version must be at least 6.1.0: {message}"))
            }
            other => other.into(),
        })?;
    check_server_version(&ping.server_version).map_err(StartError::Version)?;
    tracing::info!(
        cluster = %ping.cluster_name,
        server_version = %ping.server_version,
        route = %client.route(),
        "Connected to Teleport"
    );
    Ok((Arc::new(client.with_metrics(metrics.clone())), ping))
}
