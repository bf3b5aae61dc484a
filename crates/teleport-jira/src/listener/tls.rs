//! The TLS a listener serves: its certificate and key, and an optional client-certificate check
//! against the system trust store (as the Go plugin's `verify_client_cert`).

use std::sync::Arc;

/// The webhook's TLS configuration, ready to serve; see [`server_config`].
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
    verify_client_cert: bool,
) -> Result<axum_server::tls_rustls::RustlsConfig, String> {
    server_config(cert, key, verify_client_cert)
        .map(axum_server::tls_rustls::RustlsConfig::from_config)
}

/// The webhook's TLS settings: its certificate and key, and when `verify_client_cert` is set,
/// a client certificate required and verified against the system trust store (as the Go plugin).
pub fn server_config(
    cert: &std::path::Path,
    key: &std::path::Path,
    verify_client_cert: bool,
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("http.https_cert_file {}: {err}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|err| format!("http.https_key_file {}: {err}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?;
    let builder = if verify_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            return Err("http.tls.verify_client_cert needs trusted CAs, and the system trust store is empty".into());
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| format!("http.tls.verify_client_cert: {err}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|err| {
        format!("http.https_cert_file and http.https_key_file do not form a key pair: {err}")
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
