//! The rustls client configuration for Teleport: our client certificate, the cluster's Host CA as the
//! only trust anchor, SNI `teleport.cluster.local`, and the ALPN list of the chosen route.

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::crypto::ring;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore};

use super::identity::Credentials;

/// The name Teleport's Auth and Proxy certificates carry, whatever the public host name.
pub(crate) const TELEPORT_SERVER_NAME: &str = "teleport.cluster.local";

/// The ALPN protocol that asks a TLS-routing Proxy to pass the connection, unterminated, to Auth.
pub(crate) fn auth_routing_protocol(cluster_name: &str) -> String {
    format!(
        "teleport-auth@{}.teleport.cluster.local",
        hex::encode(cluster_name)
    )
}

/// Builds a client config offering `alpn` (in order) with the given credentials.
pub(crate) fn client_config(
    credentials: &Credentials,
    alpn: Vec<Vec<u8>>,
) -> Result<ClientConfig, rustls::Error> {
    let mut roots = RootCertStore::empty();
    for root in &credentials.roots {
        roots.add(root.clone())?;
    }
    let certified = Arc::new(CertifiedKey::new(
        credentials.chain.clone(),
        credentials.key.clone(),
    ));
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(AlwaysPresent(certified)));
    config.alpn_protocols = alpn;
    Ok(config)
}

/// Teleport's Auth Service asks for a client certificate without naming acceptable CAs, so the
/// certificate is always sent, as Teleport's Go client does.
#[derive(Debug)]
struct AlwaysPresent(Arc<CertifiedKey>);

impl ResolvesClientCert for AlwaysPresent {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
