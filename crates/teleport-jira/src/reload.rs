//! SIGHUP: the webhook's certificate and key, and the Teleport credentials, are read again without
//! restarting anything. The listener keeps its socket and its open connections; new TLS handshakes
//! present the new certificate. Files that do not load are reported and the old ones kept.

use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use tokio::signal::unix::Signal;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::HttpTlsFiles;

/// The webhook TLS configuration being served, and the files it comes from.
pub struct WebhookTls {
    pub live: RustlsConfig,
    pub files: HttpTlsFiles,
    pub verify_client_cert: bool,
}

/// What a SIGHUP reloads.
pub struct Targets {
    pub webhook_tls: Option<WebhookTls>,
    /// Wakes the credential renewal task (`teleport::refresh`).
    pub credentials: Arc<Notify>,
}

pub async fn on_sighup(mut sighup: Signal, targets: Targets, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            received = sighup.recv() => if received.is_none() { return },
        }
        tracing::info!("Received SIGHUP, reloading TLS files and Teleport credentials");
        if let Some(tls) = &targets.webhook_tls {
            reload_webhook_tls(tls);
        }
        targets.credentials.notify_one();
    }
}

fn reload_webhook_tls(tls: &WebhookTls) {
    let files = &tls.files;
    match crate::webhook::server_config(&files.cert, &files.key, tls.verify_client_cert) {
        Ok(config) => {
            tls.live.reload_from_config(config);
            tracing::info!(cert = %files.cert.display(), "Reloaded the webhook's TLS certificate");
        }
        Err(err) => {
            tracing::warn!(error = %err, "Keeping the current webhook TLS certificate");
        }
    }
}
