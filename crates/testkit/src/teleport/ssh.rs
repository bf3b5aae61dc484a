//! The SSH half of an identity: an OpenSSH user certificate for the identity's own key, signed by the
//! cluster's SSH User CA, and the SSH Host CA's `@cert-authority` known_hosts line.
//!
//! Teleport's Go client parses both whenever it loads an identity file (`SSHClientConfig`: the
//! certificate must parse and carry the same public key as the private key; every CA line must parse
//! as known_hosts), even when it will only ever dial Auth over TLS. So they are real: encoded as in
//! OpenSSH's PROTOCOL.certkeys, the certificate signed by an Ed25519 SSH User CA, the Host CA line an
//! RSA key as in Teleport's legacy suite. No plugin uses them for SSH.
//!
//! RSA keys take a fifth of a second each to generate, so the Host CA keys come from a pool shared by
//! every fake cluster of the process (index 0 for the Host CA, the next ones for the extra, unrelated
//! CAs of a rotation). Nothing checks an SSH host key against them.

use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use rcgen::{KeyPair, PublicKeyData as _, SigningKey as _};
use x509_parser::prelude::FromDer as _;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::pki::{IssuedCert, KeyKind, PkiError, Validity};

const ED25519: &str = "ssh-ed25519";
const RSA: &str = "ssh-rsa";
/// `SSH_CERT_TYPE_USER`.
const USER_CERT: u32 = 1;

/// An SSH certificate authority with an Ed25519 key.
pub(crate) struct SshCa {
    key: KeyPair,
}

impl std::fmt::Debug for SshCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshCa").finish_non_exhaustive()
    }
}

impl SshCa {
    pub(crate) fn generate() -> Result<Self, PkiError> {
        Ok(Self {
            key: KeyPair::generate_for(&rcgen::PKCS_ED25519)?,
        })
    }

    /// The CA's public key in SSH wire form (`string "ssh-ed25519", string key`).
    fn public_blob(&self) -> Vec<u8> {
        let mut blob = Vec::new();
        put_string(&mut blob, ED25519.as_bytes());
        put_string(&mut blob, self.key.der_bytes());
        blob
    }

    /// A user certificate for the key of `issued` (the identity's TLS certificate and key), valid as
    /// long as the TLS certificate, as one authorized_keys line.
    pub(crate) fn user_cert_line(
        &self,
        issued: &IssuedCert,
        username: &str,
        roles: &[String],
        validity: Validity,
    ) -> Result<String, PkiError> {
        let cert_type = cert_type(issued.key().kind());
        let mut blob = Vec::new();
        put_string(&mut blob, cert_type.as_bytes());
        put_string(&mut blob, &rand::random::<[u8; 32]>());
        put_public_key_fields(&mut blob, issued)?;
        blob.extend_from_slice(&rand::random::<u64>().to_be_bytes());
        blob.extend_from_slice(&USER_CERT.to_be_bytes());
        put_string(&mut blob, username.as_bytes());
        let mut principals = Vec::new();
        put_string(&mut principals, username.as_bytes());
        put_string(&mut blob, &principals);
        blob.extend_from_slice(&unix_seconds(validity.not_before).to_be_bytes());
        blob.extend_from_slice(&unix_seconds(validity.not_after).to_be_bytes());
        put_string(&mut blob, &[]); // critical options
        put_string(&mut blob, &extensions(roles));
        put_string(&mut blob, &[]); // reserved
        put_string(&mut blob, &self.public_blob());
        let signature = self.key.sign(&blob)?;
        let mut sig = Vec::new();
        put_string(&mut sig, ED25519.as_bytes());
        put_string(&mut sig, &signature);
        put_string(&mut blob, &sig);
        Ok(format!("{cert_type} {}", b64(&blob)))
    }
}

/// `@cert-authority <cluster>,*.<cluster> ssh-rsa <base64> type=host`, as Teleport writes a Host CA
/// into identity files (`MarshalKnownHost`). `index` picks the pooled key: 0 for the cluster's Host
/// CA, 1 and up for extra CAs.
pub(crate) fn host_ca_line(cluster_name: &str, index: usize) -> Result<String, PkiError> {
    Ok(format!(
        "@cert-authority {cluster_name},*.{cluster_name} {RSA} {} type=host",
        b64(&pooled_rsa_blob(index)?)
    ))
}

/// SSH wire blobs (`string "ssh-rsa", mpint e, mpint n`) of the shared RSA Host CA keys.
static RSA_HOST_KEYS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn pooled_rsa_blob(index: usize) -> Result<Vec<u8>, PkiError> {
    let mut pool = RSA_HOST_KEYS.lock().unwrap_or_else(PoisonError::into_inner);
    while pool.len() <= index {
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?;
        let spki = key.subject_public_key_info();
        let (_, spki) = SubjectPublicKeyInfo::from_der(&spki)
            .map_err(|_| PkiError::Der("generated RSA key has no SubjectPublicKeyInfo"))?;
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(PkiError::Der("generated RSA key is not RSA"));
        };
        let mut blob = Vec::new();
        put_string(&mut blob, RSA.as_bytes());
        put_mpint(&mut blob, rsa.exponent);
        put_mpint(&mut blob, rsa.modulus);
        pool.push(blob);
    }
    Ok(pool[index].clone())
}

/// The OpenSSH certificate type of a key algorithm.
pub(crate) fn cert_type(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Rsa2048 => "ssh-rsa-cert-v01@openssh.com",
        KeyKind::EcdsaP256 => "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        KeyKind::Ed25519 => "ssh-ed25519-cert-v01@openssh.com",
    }
}

/// The certified key's fields, taken from the TLS certificate so both certify the same key:
/// RSA `mpint e, mpint n`; ECDSA `string "nistp256", string Q`; Ed25519 `string key`.
fn put_public_key_fields(out: &mut Vec<u8>, issued: &IssuedCert) -> Result<(), PkiError> {
    let der = issued.cert_der();
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| PkiError::Der("issued certificate does not parse"))?;
    let spki = cert.public_key();
    match issued.key().kind() {
        KeyKind::Rsa2048 => {
            let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
                return Err(PkiError::Der("RSA certificate without an RSA public key"));
            };
            put_mpint(out, rsa.exponent);
            put_mpint(out, rsa.modulus);
        }
        KeyKind::EcdsaP256 => {
            put_string(out, b"nistp256");
            put_string(out, &spki.subject_public_key.data);
        }
        KeyKind::Ed25519 => put_string(out, &spki.subject_public_key.data),
    }
    Ok(())
}

/// Teleport's user-certificate extensions: the usual permissions and the roles.
fn extensions(roles: &[String]) -> Vec<u8> {
    let roles = serde_json::json!({ "version": "v1", "roles": roles }).to_string();
    let mut out = Vec::new();
    // Sorted by name, as OpenSSH requires; flag extensions carry an empty string.
    for (name, data) in [
        ("permit-agent-forwarding", ""),
        ("permit-port-forwarding", ""),
        ("permit-pty", ""),
        ("teleport-roles", roles.as_str()),
    ] {
        put_string(&mut out, name.as_bytes());
        let mut value = Vec::new();
        if !data.is_empty() {
            put_string(&mut value, data.as_bytes());
        }
        put_string(&mut out, &value);
    }
    out
}

fn put_string(out: &mut Vec<u8>, data: &[u8]) {
    let len = u32::try_from(data.len()).expect("invariant: SSH fields are far below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
}

/// A non-negative big-endian integer as an SSH `mpint`: no leading zero bytes, except one when the
/// top bit is set.
fn put_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let trimmed = match magnitude.iter().position(|b| *b != 0) {
        Some(first) => &magnitude[first..],
        None => &[],
    };
    let mut value = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        value.push(0);
    }
    value.extend_from_slice(trimmed);
    put_string(out, &value);
}

fn unix_seconds(t: time::OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp()).unwrap_or(0)
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mpint_is_minimal_and_non_negative() {
        let mut out = Vec::new();
        put_mpint(&mut out, &[0, 0, 0x01, 0x00, 0x01]);
        assert_eq!(out, [0, 0, 0, 3, 0x01, 0x00, 0x01]);
        out.clear();
        put_mpint(&mut out, &[0x80]);
        assert_eq!(out, [0, 0, 0, 2, 0, 0x80]);
        out.clear();
        put_mpint(&mut out, &[0, 0]);
        assert_eq!(out, [0, 0, 0, 0]);
    }

    #[test]
    fn host_ca_lines_carry_distinct_rsa_keys() {
        let line = host_ca_line("example.com", 0).unwrap();
        let fields: Vec<_> = line.split(' ').collect();
        assert_eq!(
            fields[..3],
            ["@cert-authority", "example.com,*.example.com", RSA]
        );
        assert_eq!(fields[4], "type=host");
        let blob = base64::engine::general_purpose::STANDARD
            .decode(fields[3])
            .unwrap();
        assert_eq!(&blob[4..4 + RSA.len()], RSA.as_bytes());
        assert_eq!(
            host_ca_line("other.com", 0).unwrap().split(' ').nth(3),
            Some(fields[3])
        );
        assert_ne!(
            host_ca_line("example.com", 1).unwrap().split(' ').nth(3),
            Some(fields[3])
        );
    }
}
