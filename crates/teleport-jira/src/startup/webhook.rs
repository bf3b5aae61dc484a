//! The webhook's listener settings at start: its certificate and key load (as the Go plugin checks),
//! and an operator hears about a webhook anyone can call.

use axum_server::tls_rustls::RustlsConfig;

use super::StartError;
use crate::config::Config;
use crate::listener;

/// Checks that the webhook's certificate and key can be loaded, as the Go plugin does at start.
pub fn check_webhook_tls(config: &Config) -> Result<(), StartError> {
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

/// The TLS the webhook serves, when it serves TLS.
pub fn webhook_tls(config: &Config) -> Result<Option<RustlsConfig>, StartError> {
    let Some(files) = &config.http.tls else {
        return Ok(None);
    };
    listener::tls::tls_config(&files.cert, &files.key, config.http.verify_client_cert)
        .map(Some)
        .map_err(StartError::WebhookTls)
}

/// Anyone who can reach an unauthenticated webhook can make the plugin look at any issue; the
/// anti-forgery checks hold, but an operator should know.
pub fn warn_if_unauthenticated(config: &Config) {
    let http = &config.http;
    if webhook_is_open(config) {
        tracing::warn!(
            listen_addr = %http.listen_addr,
            "THE WEBHOOK ACCEPTS UNAUTHENTICATED REQUESTS: set http.webhook_secret to Jira's webhook secret \
             (or http.basic_auth, or http.tls.verify_client_cert)"
        );
    }
}

/// Whether the webhook accepts deliveries from anyone who can reach it: served beyond loopback,
/// and neither signed, behind basic auth nor behind client certificates.
pub fn webhook_is_open(config: &Config) -> bool {
    let http = &config.http;
    let authenticated =
        http.webhook_secret.is_some() || http.basic_auth.is_some() || http.verify_client_cert;
    !http.disable_webhook && !authenticated && !http.listen_addr.ip().is_loopback()
}
