//! Reloads without a restart. SIGHUP re-reads the webhook's certificate and key, the Teleport
//! credentials, and the secrets given as files (`jira.api_token`, `http.webhook_secret`); the
//! webhook's files are also checked every `[http] tls_files_check_interval`, because
//! renewals that land on their own (cert-manager, a Kubernetes Secret, certbot) send no signal.
//! The listener keeps its socket and its open connections; new TLS handshakes present the new
//! certificate. Files that do not load are reported and the old ones kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use tokio::signal::unix::Signal;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::HttpTlsFiles;
use crate::secret::Secret;

/// The webhook TLS configuration being served, and the files it comes from.
pub struct WebhookTls {
    pub live: RustlsConfig,
    pub files: HttpTlsFiles,
    pub verify_client_cert: bool,
    /// The certificate and key bytes being served, to tell a renewal from no change.
    served: std::sync::Mutex<Vec<u8>>,
}

impl WebhookTls {
    pub fn new(live: RustlsConfig, files: HttpTlsFiles, verify_client_cert: bool) -> Self {
        let served = read_pair(&files).unwrap_or_default();
        Self {
            live,
            files,
            verify_client_cert,
            served: std::sync::Mutex::new(served),
        }
    }

    /// Serves the files' certificate if they changed (or `asked`, on SIGHUP, whatever they hold).
    fn reload(&self, asked: bool) {
        let files = &self.files;
        let Ok(bytes) = read_pair(files) else {
            tracing::warn!(cert = %files.cert.display(), key = %files.key.display(), "Cannot read the webhook's TLS files; keeping the current certificate");
            return;
        };
        let mut served = crate::lock::lock(&self.served);
        if !asked && *served == bytes {
            return;
        }
        match crate::listener::tls::server_config(&files.cert, &files.key, self.verify_client_cert)
        {
            Ok(config) => {
                self.live.reload_from_config(config);
                *served = bytes;
                tracing::info!(cert = %files.cert.display(), "Reloaded the webhook's TLS certificate");
            }
            // A renewal may be half-written; the next check sees the whole of it.
            Err(err) => {
                tracing::warn!(error = %err, "Keeping the current webhook TLS certificate");
            }
        }
    }
}

fn read_pair(files: &HttpTlsFiles) -> std::io::Result<Vec<u8>> {
    let mut bytes = std::fs::read(&files.cert)?;
    bytes.extend(std::fs::read(&files.key)?);
    Ok(bytes)
}

/// A secret the config gave as a file path, and where a new value goes.
pub struct SecretFile {
    /// The config key, for the log.
    pub key: &'static str,
    pub path: PathBuf,
    pub apply: Box<dyn Fn(Secret) + Send + Sync>,
}

impl SecretFile {
    /// Reads the file again and applies its value; with `only_if_changed` (the periodic check),
    /// a value equal to the one applied last is left alone, silently.
    fn reload(&self, only_if_changed: bool, applied: &mut Option<Secret>) {
        match crate::config::read_secret_file(&self.path) {
            Ok(value) if !value.is_empty() => {
                let value = Secret::new(value);
                if only_if_changed && applied.as_ref() == Some(&value) {
                    return;
                }
                *applied = Some(value.clone());
                (self.apply)(value);
                tracing::info!(key = self.key, path = %self.path.display(), "Reloaded a secret from its file");
            }
            Ok(_) => {
                tracing::warn!(key = self.key, path = %self.path.display(), "The secret file is empty; keeping the current value");
            }
            Err(err) => {
                tracing::warn!(key = self.key, error = %err, "Keeping the current value");
            }
        }
    }
}

/// What a SIGHUP reloads.
pub struct Targets {
    pub webhook_tls: Option<Arc<WebhookTls>>,
    /// Wakes the credential renewal task (`teleport::refresh`).
    pub credentials: Arc<Notify>,
    pub secret_files: Arc<SecretFiles>,
}

pub async fn on_sighup(mut sighup: Signal, targets: Targets, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            received = sighup.recv() => if received.is_none() { return },
        }
        tracing::info!(
            "Received SIGHUP, reloading TLS files, Teleport credentials and secret files"
        );
        if let Some(tls) = &targets.webhook_tls {
            tls.reload(true);
        }
        targets.secret_files.reload_all(false).await;
        targets.credentials.notify_one();
    }
}

/// The secret files, with the value each last applied (initially the one read at start).
pub struct SecretFiles(tokio::sync::Mutex<Vec<(SecretFile, Option<Secret>)>>);

impl SecretFiles {
    pub fn new(files: Vec<SecretFile>) -> Arc<Self> {
        let applied = files
            .into_iter()
            .map(|file| {
                let value = crate::config::read_secret_file(&file.path)
                    .ok()
                    .map(Secret::new);
                (file, value)
            })
            .collect();
        Arc::new(Self(tokio::sync::Mutex::new(applied)))
    }

    async fn reload_all(&self, only_if_changed: bool) {
        for (file, applied) in self.0.lock().await.iter_mut() {
            file.reload(only_if_changed, applied);
        }
    }
}

/// Picks up a rotated secret file (a Kubernetes Secret updated in place) without a signal.
pub async fn follow_secret_files(
    files: Arc<SecretFiles>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => files.reload_all(true).await,
        }
    }
}

/// Picks up a renewed webhook certificate without a signal.
pub async fn follow_tls_files(tls: Arc<WebhookTls>, every: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => tls.reload(false),
        }
    }
}
