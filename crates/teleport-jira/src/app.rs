//! Start-up and the long-running tasks: load credentials, connect to Teleport and check it, then
//! keep the watch (and identity renewal) running until shutdown.
//!
//! Start-up failures are returned as [`StartError`], one line each, which the CLI prints before
//! exiting with status 1. After start-up, nothing short of a shutdown signal ends the process:
//! connection problems are retried.

use std::sync::Arc;

use thiserror::Error;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, CredentialSource};
use crate::teleport::identity::{self, IdentityError};
use crate::teleport::watch::{self as teleport_watch, WatchEvent, WatchOptions};
use crate::teleport::{Credentials, TeleportClient, TeleportError, refresh};
use crate::version::check_server_version;

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
    Environment(String),
}

/// What the process needs besides the config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub fail_fast: bool,
}

/// Loads the credentials the config names, with the file name in every error.
pub fn load_credentials(
    source: &CredentialSource,
) -> Result<(Credentials, Option<String>), StartError> {
    let loaded = match source {
        CredentialSource::IdentityFile { path, .. } => {
            let text = std::fs::read_to_string(path).map_err(|err| {
                StartError::Credentials(format!("reading identity file {}: {err}", path.display()))
            })?;
            identity::parse_identity_file(&text)
                .map(|credentials| (credentials, Some(text)))
                .map_err(|err: IdentityError| {
                    StartError::Credentials(err.in_file(path).to_string())
                })
        }
        CredentialSource::KeyPair {
            key,
            cert,
            root_cas,
        } => identity::read_key_pair(key, cert, root_cas)
            .map(|credentials| (credentials, None))
            .map_err(|err| StartError::Credentials(format!("teleport client credentials: {err}"))),
    }?;
    let info = &loaded.0.info;
    if info.is_expired_at(OffsetDateTime::now_utc()) {
        tracing::warn!(
            "expired credential found: the certificate for '{}', issued by '{}' is not valid after '{}'",
            info.user,
            info.issuer,
            info.not_after
        );
        return Err(StartError::Expired);
    }
    Ok(loaded)
}

/// Checks that the webhook's certificate and key can be loaded, as the Go plugin does at start.
fn check_webhook_tls(config: &Config) -> Result<(), StartError> {
    let Some(files) = &config.http.tls else {
        return Ok(());
    };
    for (path, what) in [
        (&files.cert, "https_cert_file"),
        (&files.key, "https_key_file"),
    ] {
        std::fs::metadata(path).map_err(|err| {
            StartError::WebhookTls(format!("http.{what} {}: {err}", path.display()))
        })?;
    }
    Ok(())
}

/// Runs the plugin until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    tracing::info!(version = %crate::version::version_line(), "Starting Teleport Jira Plugin");
    let (credentials, identity_text) = load_credentials(&config.teleport.credentials)?;
    check_webhook_tls(&config)?;
    tracing::info!(
        user = %credentials.info.user,
        valid_until = %credentials.info.not_after,
        "Loaded Teleport credentials"
    );

    tracing::debug!("Checking Teleport server version");
    let (client, ping) = TeleportClient::connect(&config.teleport.addr, &credentials)
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
    let client = Arc::new(client);

    let tasks = TaskTracker::new();
    if let (
        CredentialSource::IdentityFile {
            path,
            refresh: Some(interval),
        },
        Some(text),
    ) = (&config.teleport.credentials, identity_text)
    {
        tasks.spawn(refresh::run(
            client.clone(),
            path.clone(),
            *interval,
            text,
            shutdown.clone(),
        ));
    }

    let (events_tx, mut events) = mpsc::channel(1024);
    let (connected_tx, mut connected) = watch::channel(false);
    let watcher = tasks.spawn(teleport_watch::run(
        client.clone(),
        events_tx,
        connected_tx,
        shutdown.clone(),
        WatchOptions {
            fail_fast: options.fail_fast,
        },
    ));
    tasks.close();

    let mut ready_logged = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = connected.changed() => {
                if changed.is_err() { break; }
                if *connected.borrow() && !ready_logged {
                    tracing::info!("Plugin is ready");
                    ready_logged = true;
                }
            }
            event = events.recv() => match event {
                Some(event) => log_event(&event),
                None => break,
            },
        }
    }
    shutdown.cancel();
    tasks.wait().await;
    match watcher.await {
        Ok(Err(err)) => Err(err.into()),
        _ => Ok(()),
    }
}

fn log_event(event: &WatchEvent) {
    match event {
        WatchEvent::Init => tracing::debug!("Watch (re)initialized"),
        WatchEvent::Put(request) => {
            let id = request
                .metadata
                .as_ref()
                .map(|m| m.name.as_str())
                .unwrap_or_default();
            tracing::debug!(request_id = %id, "Processing watcher event");
        }
        WatchEvent::Delete { id } => tracing::debug!(request_id = %id, "Processing watcher event"),
    }
}
