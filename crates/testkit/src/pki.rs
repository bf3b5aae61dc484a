//! Test PKI made with rcgen: Teleport-style cluster CAs, server and client certificates, a web-PKI CA for
//! `localhost`, and every private-key PEM flavour a Teleport identity file can carry.
//!
//! It owns key generation and encoding only: no sockets, no files. Teleport's conventions that matter to a
//! client are reproduced: cluster CAs have CN = O = cluster name, client certificates carry the username in
//! CN and the roles in O, and every certificate issued by a cluster CA also carries the cluster name in the
//! subject attribute `1.3.9999.1.7`, which Teleport clients read to learn the cluster name offline.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// Teleport's subject attribute holding the cluster name (`tlsca.TeleportClusterASN1ExtensionOID`).
const TELEPORT_CLUSTER_OID: [u64; 5] = [1, 3, 9999, 1, 7];

/// Slack on `not_before`, so a certificate is valid even if a peer's clock runs a little behind.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Lifetime of every CA made here: long enough that no test ever sees one expire.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Installs ring as the process-wide rustls crypto provider.
///
/// The workspace uses exactly one provider; installing it explicitly avoids rustls' panic when it
/// cannot pick one by itself. A second call (or one racing another thread) is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Why a certificate or key could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused the parameters (for example a SAN that is not a valid DNS name).
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The requested PEM flavour does not exist for this key algorithm (SEC1 for an RSA key, say).
    #[error("a {kind:?} key cannot be written as {flavour:?}")]
    Flavour {
        /// Algorithm of the key.
        kind: KeyKind,
        /// Flavour that was asked for.
        flavour: KeyFlavour,
    },
    /// The PKCS#8 document produced by the crypto library did not have the expected shape.
    #[error("unexpected PKCS#8 structure: {0}")]
    Der(&'static str),
    /// rustls rejected a configuration built from these certificates.
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    /// A client-certificate verifier could not be built.
    #[error("client verifier configuration failed: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Key algorithm of a leaf certificate. Teleport's signature-algorithm suites pick one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA 2048 (Teleport's legacy suite).
    Rsa2048,
    /// ECDSA on P-256 (the balanced suites).
    EcdsaP256,
    /// Ed25519.
    Ed25519,
}

/// How a private key is written to PEM: the label and the DER structure under it.
///
/// Teleport's encoder writes [`RsaPkcs1`](Self::RsaPkcs1), [`Pkcs8Ecdsa`](Self::Pkcs8Ecdsa) and
/// [`Pkcs8Ed25519`](Self::Pkcs8Ed25519). Its reader also accepts SEC1 and, because some versions wrote
/// one, PKCS#8 DER under an `RSA PRIVATE KEY` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyFlavour {
    /// `RSA PRIVATE KEY` holding PKCS#1 `RSAPrivateKey`.
    #[default]
    RsaPkcs1,
    /// `PRIVATE KEY` holding PKCS#8 with an RSA key.
    Pkcs8Rsa,
    /// `PRIVATE KEY` holding PKCS#8 with a P-256 key.
    Pkcs8Ecdsa,
    /// `EC PRIVATE KEY` holding SEC1 `ECPrivateKey` with the named curve.
    Sec1Ecdsa,
    /// `PRIVATE KEY` holding PKCS#8 v1 with an Ed25519 key.
    Pkcs8Ed25519,
    /// The mislabeled variant: PKCS#8 DER of an RSA key under `RSA PRIVATE KEY`.
    RsaPkcs8UnderRsaLabel,
}

impl KeyFlavour {
    /// The key algorithm this flavour holds.
    pub fn kind(self) -> KeyKind {
        match self {
            Self::RsaPkcs1 | Self::Pkcs8Rsa | Self::RsaPkcs8UnderRsaLabel => KeyKind::Rsa2048,
            Self::Pkcs8Ecdsa | Self::Sec1Ecdsa => KeyKind::EcdsaP256,
            Self::Pkcs8Ed25519 => KeyKind::Ed25519,
        }
    }

    /// The PEM label written on the BEGIN and END lines.
    pub fn pem_label(self) -> &'static str {
        match self {
            Self::RsaPkcs1 | Self::RsaPkcs8UnderRsaLabel => "RSA PRIVATE KEY",
            Self::Pkcs8Rsa | Self::Pkcs8Ecdsa | Self::Pkcs8Ed25519 => "PRIVATE KEY",
            Self::Sec1Ecdsa => "EC PRIVATE KEY",
        }
    }

    /// The flavour Teleport's own encoder uses for this algorithm (`keys.MarshalPrivateKey`).
    pub fn teleport_default(kind: KeyKind) -> Self {
        match kind {
            KeyKind::Rsa2048 => Self::RsaPkcs1,
            KeyKind::EcdsaP256 => Self::Pkcs8Ecdsa,
            KeyKind::Ed25519 => Self::Pkcs8Ed25519,
        }
    }
}

/// A freshly generated private key.
pub struct LeafKey {
    kind: KeyKind,
    pair: KeyPair,
}

impl std::fmt::Debug for LeafKey {
    // Never print key material, even in test logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl LeafKey {
    /// Generates a new key of the given algorithm.
    ///
    /// # Errors
    /// [`PkiError::Rcgen`] if the crypto library fails to generate the key.
    pub fn generate(kind: KeyKind) -> Result<Self, PkiError> {
        let pair = match kind {
            KeyKind::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?
            }
            KeyKind::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
            KeyKind::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519)?,
        };
        Ok(Self { kind, pair })
    }

    /// The key algorithm.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key as PKCS#8 DER, as the crypto library produced it.
    pub fn pkcs8_der(&self) -> &[u8] {
        self.pair.serialized_der()
    }

    /// The key in the form rustls takes it.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8_der().to_vec()))
    }

    /// The key as Teleport's encoder writes it (see [`KeyFlavour::teleport_default`]).
    pub fn pem(&self) -> String {
        self.pem_as(KeyFlavour::teleport_default(self.kind))
            .expect("invariant: the default flavour of a key kind always matches that kind")
    }

    /// The key written in a chosen PEM flavour.
    ///
    /// # Errors
    /// [`PkiError::Flavour`] if the flavour is for another algorithm; [`PkiError::Der`] if the
    /// PKCS#8 produced by the crypto library cannot be unwrapped.
    pub fn pem_as(&self, flavour: KeyFlavour) -> Result<String, PkiError> {
        if flavour.kind() != self.kind {
            return Err(PkiError::Flavour {
                kind: self.kind,
                flavour,
            });
        }
        let pkcs8 = self.pkcs8_der();
        let der = match flavour {
            KeyFlavour::RsaPkcs1 => der::pkcs8_inner_key(pkcs8)?.to_vec(),
            KeyFlavour::Sec1Ecdsa => der::pkcs8_to_sec1(pkcs8)?,
            KeyFlavour::Pkcs8Ed25519 => der::pkcs8_to_v1(pkcs8)?,
            KeyFlavour::Pkcs8Rsa | KeyFlavour::Pkcs8Ecdsa | KeyFlavour::RsaPkcs8UnderRsaLabel => {
                pkcs8.to_vec()
            }
        };
        Ok(pem_encode(flavour.pem_label(), &der))
    }

    fn pair(&self) -> &KeyPair {
        &self.pair
    }
}

/// A certificate together with the private key it was issued for.
#[derive(Debug)]
pub struct IssuedCert {
    cert: rcgen::Certificate,
    key: LeafKey,
}

impl IssuedCert {
    /// The certificate as PEM (`CERTIFICATE`).
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The certificate as DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// The private key.
    pub fn key(&self) -> &LeafKey {
        &self.key
    }

    /// The private key as Teleport's encoder writes it.
    pub fn key_pem(&self) -> String {
        self.key.pem()
    }
}

/// Validity window of an issued certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First instant the certificate is valid.
    pub not_before: OffsetDateTime,
    /// Last instant the certificate is valid.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Valid from (almost) now for `ttl`.
    pub fn for_ttl(ttl: Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - CLOCK_SKEW,
            not_after: now + ttl,
        }
    }

    /// Valid from two hours ago until `not_after`, which may lie in the past (an expired certificate).
    pub fn until(not_after: OffsetDateTime) -> Self {
        let start = OffsetDateTime::now_utc() - Duration::from_secs(2 * 3600);
        Self {
            not_before: start.min(not_after - CLOCK_SKEW),
            not_after,
        }
    }
}

/// A self-signed certificate authority that issues server and client certificates.
pub struct CertAuthority {
    common_name: String,
    cluster_name: Option<String>,
    cert: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAuthority")
            .field("common_name", &self.common_name)
            .field("cluster_name", &self.cluster_name)
            .finish_non_exhaustive()
    }
}

impl CertAuthority {
    /// A plain CA with the given subject, for web PKI or a foreign cluster.
    ///
    /// # Errors
    /// [`PkiError::Rcgen`] if the key or the certificate cannot be generated.
    pub fn new(common_name: &str, organization: &str) -> Result<Self, PkiError> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, organization);
        Self::self_signed(common_name, None, dn)
    }

    /// A Teleport cluster CA (Host CA or User CA): CN = O = cluster name.
    ///
    /// # Errors
    /// [`PkiError::Rcgen`] if the key or the certificate cannot be generated.
    pub fn teleport(cluster_name: &str) -> Result<Self, PkiError> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, cluster_name);
        dn.push(DnType::CommonName, cluster_name);
        Self::self_signed(cluster_name, Some(cluster_name.to_owned()), dn)
    }

    fn self_signed(
        common_name: &str,
        cluster_name: Option<String>,
        dn: DistinguishedName,
    ) -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let validity = Validity::for_ttl(CA_LIFETIME);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            common_name: common_name.to_owned(),
            cluster_name,
            cert,
            issuer: Issuer::new(params, key),
        })
    }

    /// Subject common name of the CA (the cluster name for Teleport CAs).
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// The CA certificate as PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate as DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A trust store holding only this CA.
    pub fn root_store(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.cert_der())
            .expect("invariant: a CA certificate made by rcgen parses as a trust anchor");
        roots
    }

    /// Issues a server certificate (EKU serverAuth and clientAuth, like Teleport host certificates).
    /// Each SAN that parses as an IP address becomes an IP SAN, any other a DNS SAN.
    ///
    /// # Errors
    /// [`PkiError::Rcgen`] if a SAN is invalid or signing fails.
    pub fn issue_server(&self, sans: &[&str], key: KeyKind) -> Result<IssuedCert, PkiError> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans
            .iter()
            .map(|san| match san.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName((*san).try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            sans.first().copied().unwrap_or("server"),
        );
        params.distinguished_name = dn;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(params, key, Validity::for_ttl(CA_LIFETIME))
    }

    /// Issues a client certificate: CN = `username`, O = the roles, EKU clientAuth.
    ///
    /// rcgen holds one value per attribute type, so the roles share one `O` attribute, joined with
    /// commas (the usual single-role plugin identity is unaffected).
    ///
    /// # Errors
    /// [`PkiError::Rcgen`] if signing fails.
    pub fn issue_client(
        &self,
        username: &str,
        roles: &[String],
        key: KeyKind,
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, username);
        if !roles.is_empty() {
            dn.push(DnType::OrganizationName, roles.join(","));
        }
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, key, validity)
    }

    fn sign(
        &self,
        mut params: CertificateParams,
        key: KeyKind,
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        if let Some(cluster) = &self.cluster_name {
            params.distinguished_name.push(
                DnType::CustomDnType(TELEPORT_CLUSTER_OID.to_vec()),
                cluster.as_str(),
            );
        }
        // Key encipherment only means something for RSA (as Go's x509 templates have it).
        params.key_usages = match key {
            KeyKind::Rsa2048 => {
                vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ]
            }
            KeyKind::EcdsaP256 | KeyKind::Ed25519 => vec![KeyUsagePurpose::DigitalSignature],
        };
        params.use_authority_key_identifier_extension = true;
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let key = LeafKey::generate(key)?;
        let cert = params.signed_by(key.pair(), &self.issuer)?;
        Ok(IssuedCert { cert, key })
    }
}

/// A web-PKI CA and a server certificate for `localhost`, `127.0.0.1` and `::1`.
///
/// Stands in for a public CA: point `SSL_CERT_FILE` (or a client's trust store) at [`ca_pem`](Self::ca_pem).
#[derive(Debug)]
pub struct WebPki {
    ca: CertAuthority,
    server: IssuedCert,
}

impl WebPki {
    /// Generates the CA and the `localhost` server certificate.
    ///
    /// # Errors
    /// [`PkiError::Rcgen`] if generation fails.
    pub fn localhost() -> Result<Self, PkiError> {
        let ca = CertAuthority::new("testkit web CA", "testkit")?;
        let server = ca.issue_server(&["localhost", "127.0.0.1", "::1"], KeyKind::EcdsaP256)?;
        Ok(Self { ca, server })
    }

    /// The CA certificate as PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.cert_pem()
    }

    /// The CA.
    pub fn ca(&self) -> &CertAuthority {
        &self.ca
    }

    /// The server certificate and key.
    pub fn server(&self) -> &IssuedCert {
        &self.server
    }

    /// A rustls server configuration presenting the `localhost` certificate with these ALPN protocols.
    ///
    /// # Errors
    /// [`PkiError::Tls`] if rustls rejects the key.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        install_crypto_provider();
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.server.cert_der()],
                self.server.key().private_key_der(),
            )?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// Writes DER as a PEM block with 64-column base64 lines and a trailing newline.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("invariant: base64 output is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Just enough DER to re-shape PKCS#8 into PKCS#1, SEC1 and PKCS#8 v1 (all definite-length).
mod der {
    use super::PkiError;

    const INTEGER: u8 = 0x02;
    const OCTET_STRING: u8 = 0x04;
    const SEQUENCE: u8 = 0x30;
    /// `[0]` constructed: ECPrivateKey `parameters`.
    const EC_PARAMETERS: u8 = 0xa0;

    pub(super) struct Tlv<'a> {
        pub(super) tag: u8,
        pub(super) content: &'a [u8],
        pub(super) raw: &'a [u8],
    }

    fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), PkiError> {
        let short = || PkiError::Der("truncated element");
        let tag = *input.first().ok_or_else(short)?;
        let first_len = *input.get(1).ok_or_else(short)?;
        let (len, header) = if first_len < 0x80 {
            (usize::from(first_len), 2)
        } else {
            let count = usize::from(first_len & 0x7f);
            if count == 0 || count > 4 {
                return Err(PkiError::Der("unsupported length form"));
            }
            let bytes = input.get(2..2 + count).ok_or_else(short)?;
            (
                bytes
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
                2 + count,
            )
        };
        let end = header.checked_add(len).ok_or_else(short)?;
        let raw = input.get(..end).ok_or_else(short)?;
        Ok((
            Tlv {
                tag,
                content: &raw[header..],
                raw,
            },
            &input[end..],
        ))
    }

    fn children(content: &[u8]) -> Result<Vec<Tlv<'_>>, PkiError> {
        let mut out = Vec::new();
        let mut rest = content;
        while !rest.is_empty() {
            let (tlv, next) = read(rest)?;
            out.push(tlv);
            rest = next;
        }
        Ok(out)
    }

    fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(u8::try_from(len).expect("invariant: checked < 0x80"));
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .iter()
                .copied()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | u8::try_from(bytes.len()).expect("invariant: usize has <= 8 bytes"));
            out.extend_from_slice(&bytes);
        }
        out.extend_from_slice(content);
        out
    }

    /// Top-level elements of a PKCS#8 `PrivateKeyInfo`: version, algorithm, privateKey, extras.
    fn pkcs8_fields(pkcs8: &[u8]) -> Result<Vec<Tlv<'_>>, PkiError> {
        let (outer, _) = read(pkcs8)?;
        if outer.tag != SEQUENCE {
            return Err(PkiError::Der("PrivateKeyInfo is not a SEQUENCE"));
        }
        let fields = children(outer.content)?;
        let well_formed = fields.len() >= 3
            && fields[0].tag == INTEGER
            && fields[1].tag == SEQUENCE
            && fields[2].tag == OCTET_STRING;
        if !well_formed {
            return Err(PkiError::Der("PrivateKeyInfo fields"));
        }
        Ok(fields)
    }

    /// The `privateKey` OCTET STRING content: PKCS#1 `RSAPrivateKey` or SEC1 `ECPrivateKey`.
    pub(super) fn pkcs8_inner_key(pkcs8: &[u8]) -> Result<&[u8], PkiError> {
        Ok(pkcs8_fields(pkcs8)?[2].content)
    }

    /// SEC1 `ECPrivateKey` with `[0] namedCurve`, which a PKCS#8 wrapper may have left out
    /// (the curve is then only in the PKCS#8 AlgorithmIdentifier) and standalone SEC1 needs.
    pub(super) fn pkcs8_to_sec1(pkcs8: &[u8]) -> Result<Vec<u8>, PkiError> {
        let fields = pkcs8_fields(pkcs8)?;
        let algorithm = children(fields[1].content)?;
        let curve = algorithm
            .get(1)
            .ok_or(PkiError::Der("EC AlgorithmIdentifier without curve"))?;
        let (ec_key, _) = read(fields[2].content)?;
        let parts = children(ec_key.content)?;
        if parts.iter().any(|p| p.tag == EC_PARAMETERS) {
            return Ok(ec_key.raw.to_vec());
        }
        if parts.len() < 2 {
            return Err(PkiError::Der("ECPrivateKey fields"));
        }
        let mut body = Vec::new();
        body.extend_from_slice(parts[0].raw);
        body.extend_from_slice(parts[1].raw);
        body.extend(encode(EC_PARAMETERS, curve.raw));
        for part in &parts[2..] {
            body.extend_from_slice(part.raw);
        }
        Ok(encode(SEQUENCE, &body))
    }

    /// PKCS#8 v1 (version 0, no public key), as Go's `x509.MarshalPKCS8PrivateKey` writes Ed25519 keys.
    pub(super) fn pkcs8_to_v1(pkcs8: &[u8]) -> Result<Vec<u8>, PkiError> {
        let fields = pkcs8_fields(pkcs8)?;
        let mut body = encode(INTEGER, &[0]);
        body.extend_from_slice(fields[1].raw);
        body.extend_from_slice(fields[2].raw);
        Ok(encode(SEQUENCE, &body))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    fn parse_pem(pem: &str) -> (String, Vec<u8>) {
        let label = pem
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("-----BEGIN ");
        let label = label.trim_end_matches("-----").to_owned();
        let (_, der) =
            <(rustls_pki_types::pem::SectionKind, Vec<u8>)>::from_pem_slice(pem.as_bytes())
                .unwrap();
        (label, der)
    }

    #[test]
    fn every_key_flavour_loads_into_rustls() {
        install_crypto_provider();
        let provider = rustls::crypto::ring::default_provider();
        for flavour in [
            KeyFlavour::RsaPkcs1,
            KeyFlavour::Pkcs8Rsa,
            KeyFlavour::Pkcs8Ecdsa,
            KeyFlavour::Sec1Ecdsa,
            KeyFlavour::Pkcs8Ed25519,
        ] {
            let key = LeafKey::generate(flavour.kind()).unwrap();
            let pem = key.pem_as(flavour).unwrap();
            let (label, _) = parse_pem(&pem);
            assert_eq!(label, flavour.pem_label(), "{flavour:?}");
            let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
            provider
                .key_provider
                .load_private_key(der)
                .unwrap_or_else(|e| panic!("{flavour:?}: {e}"));
        }
    }

    #[test]
    fn mislabeled_rsa_key_holds_pkcs8_under_rsa_label() {
        let key = LeafKey::generate(KeyKind::Rsa2048).unwrap();
        let (label, der) = parse_pem(&key.pem_as(KeyFlavour::RsaPkcs8UnderRsaLabel).unwrap());
        assert_eq!(label, "RSA PRIVATE KEY");
        assert_eq!(der, key.pkcs8_der());
    }

    #[test]
    fn sec1_key_names_its_curve() {
        let key = LeafKey::generate(KeyKind::EcdsaP256).unwrap();
        let (_, der) = parse_pem(&key.pem_as(KeyFlavour::Sec1Ecdsa).unwrap());
        let prime256v1 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        assert!(der.windows(prime256v1.len()).any(|w| w == prime256v1));
    }

    #[test]
    fn flavour_of_another_algorithm_is_refused() {
        let key = LeafKey::generate(KeyKind::EcdsaP256).unwrap();
        assert!(matches!(
            key.pem_as(KeyFlavour::RsaPkcs1),
            Err(PkiError::Flavour { .. })
        ));
    }

    #[test]
    fn client_cert_names_user_roles_and_cluster() {
        let ca = CertAuthority::teleport("example.com").unwrap();
        let roles = vec!["access-plugin".to_owned()];
        let cert = ca
            .issue_client(
                "jira",
                &roles,
                KeyKind::EcdsaP256,
                Validity::for_ttl(Duration::from_secs(60)),
            )
            .unwrap();
        let der = cert.cert_der();
        let (_, x509) = x509_parser::parse_x509_certificate(&der).unwrap();
        let subject_cn = x509
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        let org = x509
            .subject()
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        let issuer_cn = x509
            .issuer()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(
            (subject_cn, org, issuer_cn),
            ("jira", "access-plugin", "example.com")
        );
        let cluster = x509
            .subject()
            .iter_attributes()
            .find(|a| a.attr_type().to_id_string() == "1.3.9999.1.7")
            .unwrap();
        assert_eq!(cluster.as_str().unwrap(), "example.com");
    }
}
