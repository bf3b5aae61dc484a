//! Teleport credentials: the identity file written by `tctl auth sign --format=file` and tbot, and the
//! `--format=tls` trio (key, certificate, CA bundle).
//!
//! The identity-file reader follows Teleport's own: lines are trimmed; a `-----BEGIN` line opens a PEM
//! block that the next line starting with `-----END` closes; blocks are placed by order only (first
//! = private key, second = client certificate, the rest = cluster CA certificates); SSH certificate
//! and `@cert-authority` lines are recognised and otherwise ignored, since only mutual TLS is used.
//! A private key is tried as PKCS#8, PKCS#1 and SEC1 whatever its label says, as Teleport does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::sign::{CertifiedKey, SigningKey};
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use thiserror::Error;
use time::OffsetDateTime;

/// The subject attribute in which Teleport writes the cluster name of the certificates it issues.
const TELEPORT_CLUSTER_OID: &str = "1.3.9999.1.7";

/// Mutual-TLS material for talking to a Teleport Auth Service.
#[derive(Clone)]
pub struct Credentials {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: Arc<dyn SigningKey>,
    /// The cluster's Host CA certificates: the only trust anchors for the Auth Service.
    pub(crate) roots: Vec<CertificateDer<'static>>,
    pub info: CertificateInfo,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key is deliberately absent.
        f.debug_struct("Credentials")
            .field("info", &self.info)
            .field("roots", &self.roots.len())
            .finish()
    }
}

/// What the client certificate says about who we are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Subject common name: the Teleport user the plugin acts as.
    pub user: String,
    /// Issuer common name: Teleport's user CA is named after the cluster.
    pub issuer: String,
    /// The cluster that issued the certificate, when the certificate says so.
    pub cluster_name: Option<String>,
    pub not_after: OffsetDateTime,
}

impl CertificateInfo {
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.not_after <= now
    }

    /// The expiry as RFC 3339, for logs and `check`.
    pub fn valid_until(&self) -> String {
        self.not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| self.not_after.to_string())
    }
}

#[derive(Debug, Error)]
pub enum IdentityError {
    #[error("reading {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid PEM block (fragment): a -----BEGIN line has no matching -----END line")]
    PemFragment,
    #[error("{0}")]
    Pem(String),
    #[error("no private key found")]
    MissingKey,
    #[error("no TLS client certificate found")]
    MissingCertificate,
    #[error("no cluster CA certificate found")]
    MissingCa,
    #[error("unexpected private key PEM type {0:?}")]
    UnsupportedKeyType(String),
    #[error("the private key is not a PKCS#8, PKCS#1 or SEC1 key of a supported algorithm")]
    UnreadableKey,
    #[error("private key does not match certificate's public key")]
    KeyMismatch,
    #[error("invalid TLS certificate: {0}")]
    Certificate(String),
}

impl IdentityError {
    /// Names the file the problem was found in, so the CLI can print one self-contained line.
    pub fn in_file(self, path: &Path) -> IdentityFileError {
        IdentityFileError {
            path: path.to_owned(),
            source: self,
        }
    }
}

#[derive(Debug, Error)]
#[error("identity file {path}: {source}")]
pub struct IdentityFileError {
    pub path: PathBuf,
    #[source]
    pub source: IdentityError,
}

/// Reads and parses an identity file.
pub fn read_identity_file(path: &Path) -> Result<Credentials, IdentityError> {
    let text = read(path, "identity file")?;
    parse_identity_file(&text)
}

/// Parses the text of an identity file.
pub fn parse_identity_file(text: &str) -> Result<Credentials, IdentityError> {
    let blocks = pem_blocks(text)?;
    let mut blocks = blocks.into_iter();
    let key_block = blocks.next().ok_or(IdentityError::MissingKey)?;
    let cert_block = blocks.next().ok_or(IdentityError::MissingCertificate)?;
    let key = parse_private_key(&key_block)?;
    let chain = vec![parse_certificate(&cert_block)?];
    let roots = blocks
        .map(|block| parse_certificate(&block))
        .collect::<Result<Vec<_>, _>>()?;
    assemble(chain, key, roots)
}

/// Reads the `--format=tls` trio: private key, client certificate (chain) and CA bundle.
pub fn read_key_pair(
    key: &Path,
    cert: &Path,
    root_cas: &Path,
) -> Result<Credentials, IdentityError> {
    let key_text = read(key, "client key")?;
    let cert_text = read(cert, "client certificate")?;
    let cas_text = read(root_cas, "root CAs")?;
    let key = pem_blocks(&key_text)?
        .into_iter()
        .next()
        .ok_or(IdentityError::MissingKey)?;
    let key = parse_private_key(&key)?;
    let chain = certificates_in(&cert_text)?;
    let roots = certificates_in(&cas_text)?;
    assemble(chain, key, roots)
}

fn read(path: &Path, what: &'static str) -> Result<String, IdentityError> {
    std::fs::read_to_string(path).map_err(|source| IdentityError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn assemble(
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn SigningKey>,
    roots: Vec<CertificateDer<'static>>,
) -> Result<Credentials, IdentityError> {
    let leaf = chain.first().ok_or(IdentityError::MissingCertificate)?;
    if roots.is_empty() {
        return Err(IdentityError::MissingCa);
    }
    let info = certificate_info(leaf)?;
    // `keys_match` answers `Unknown` when the provider cannot tell; the handshake will then.
    if let Err(rustls::Error::InconsistentKeys(_)) =
        CertifiedKey::new(chain.clone(), key.clone()).keys_match()
    {
        return Err(IdentityError::KeyMismatch);
    }
    Ok(Credentials {
        chain,
        key,
        roots,
        info,
    })
}

/// Splits the text into PEM blocks with Teleport's line rules.
fn pem_blocks(text: &str) -> Result<Vec<String>, IdentityError> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match current.as_mut() {
            Some(block) => {
                block.push_str(line);
                block.push('\n');
                if line.starts_with("-----END") {
                    blocks.extend(current.take());
                }
            }
            None if line.starts_with("-----BEGIN") => current = Some(format!("{line}\n")),
            // SSH certificate and @cert-authority lines, and anything else, carry nothing for mTLS.
            None => {}
        }
    }
    if current.is_some() {
        return Err(IdentityError::PemFragment);
    }
    Ok(blocks)
}

fn decode_block(block: &str) -> Result<(SectionKind, Vec<u8>), IdentityError> {
    let label = block
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("-----BEGIN ")
        .trim_end_matches('-')
        .to_owned();
    <(SectionKind, Vec<u8>) as PemObject>::from_pem_slice(block.as_bytes()).map_err(|err| match err
    {
        rustls_pki_types::pem::Error::NoItemsFound => {
            IdentityError::UnsupportedKeyType(label.clone())
        }
        other => IdentityError::Pem(format!("PEM block {label:?}: {other}")),
    })
}

fn parse_private_key(block: &str) -> Result<Arc<dyn SigningKey>, IdentityError> {
    let (kind, der) = decode_block(block)?;
    if !matches!(
        kind,
        SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
    ) {
        return Err(IdentityError::UnsupportedKeyType(format!("{kind:?}")));
    }
    // Some Teleport versions wrote PKCS#8 under an RSA label and the reverse, so the label is only a hint.
    let candidates = [
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.clone())),
        PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der.clone())),
        PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
    ];
    candidates
        .iter()
        .find_map(|key| ring::sign::any_supported_type(key).ok())
        .ok_or(IdentityError::UnreadableKey)
}

fn parse_certificate(block: &str) -> Result<CertificateDer<'static>, IdentityError> {
    match decode_block(block)? {
        (SectionKind::Certificate, der) => Ok(CertificateDer::from(der)),
        (kind, _) => Err(IdentityError::Certificate(format!(
            "expected a CERTIFICATE block, found {kind:?}"
        ))),
    }
}

fn certificates_in(text: &str) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    pem_blocks(text)?
        .iter()
        .map(|block| parse_certificate(block))
        .collect()
}

fn certificate_info(der: &CertificateDer<'_>) -> Result<CertificateInfo, IdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|err| IdentityError::Certificate(err.to_string()))?;
    let common_name = |name: &x509_parser::x509::X509Name<'_>| {
        name.iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let cluster_name = cert
        .subject()
        .iter_attributes()
        .find(|attr| attr.attr_type().to_id_string() == TELEPORT_CLUSTER_OID)
        .and_then(|attr| attr.as_str().ok())
        .map(str::to_owned);
    Ok(CertificateInfo {
        user: common_name(cert.subject()),
        issuer: common_name(cert.issuer()),
        cluster_name,
        not_after: cert.validity().not_after.to_datetime(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pem_blocks_follow_teleport_line_rules() {
        let text = "  -----BEGIN A-----  \nabc\n-----END WHATEVER-----\nssh-rsa-cert-v01@openssh.com AAAA\n@cert-authority x\n-----BEGIN B-----\n-----END B-----\n";
        let blocks = pem_blocks(text).unwrap();
        assert_eq!(
            blocks,
            vec![
                "-----BEGIN A-----\nabc\n-----END WHATEVER-----\n",
                "-----BEGIN B-----\n-----END B-----\n"
            ]
        );
    }

    #[test]
    fn unterminated_pem_block_is_a_fragment_error() {
        let err = pem_blocks("-----BEGIN RSA PRIVATE KEY-----\nabc\n").unwrap_err();
        assert!(matches!(err, IdentityError::PemFragment));
    }

    #[test]
    fn empty_or_garbage_file_reports_the_missing_key() {
        assert!(matches!(
            parse_identity_file("").unwrap_err(),
            IdentityError::MissingKey
        ));
        assert!(matches!(
            parse_identity_file("hello\nworld\n").unwrap_err(),
            IdentityError::MissingKey
        ));
    }

    #[test]
    fn key_without_certificate_reports_the_missing_certificate() {
        let text = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            parse_identity_file(text).unwrap_err(),
            IdentityError::MissingCertificate
        ));
    }

    #[test]
    fn undecodable_key_is_an_error_not_a_panic() {
        let text = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(parse_identity_file(text).is_err());
    }
}
