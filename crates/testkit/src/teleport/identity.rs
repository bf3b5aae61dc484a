//! Identities as `tctl auth sign` writes them: `--format=file` (one identity file) and `--format=tls`
//! (key, certificate and CA bundle side by side), renewed in place through a temporary file and a
//! rename, like tbot does.
//!
//! Every part is real: a TLS client certificate signed by the User CA, an SSH user certificate for the
//! same key signed by the SSH User CA, the SSH Host CA line and the Host CA certificates (Teleport's Go
//! client parses all of them when it loads the file).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

use super::ssh::{self, SshCa};
use crate::pki::{CertAuthority, KeyFlavour, PkiError, Validity};

/// How to issue an identity.
#[derive(Debug, Clone)]
pub struct IdentityOptions {
    /// Algorithm and PEM flavour of the private key.
    pub key: KeyFlavour,
    /// Certificate lifetime from now.
    pub ttl: Duration,
    /// Overrides `ttl`: the exact expiry, which may lie in the past (an already expired identity).
    pub not_after: Option<OffsetDateTime>,
    /// Additional, unrelated cluster CA certificates appended after the real Host CA, as during a CA
    /// rotation.
    pub extra_ca_count: usize,
}

impl Default for IdentityOptions {
    fn default() -> Self {
        Self {
            key: KeyFlavour::RsaPkcs1,
            ttl: Duration::from_secs(3600),
            not_after: None,
            extra_ca_count: 0,
        }
    }
}

impl IdentityOptions {
    /// An identity whose certificate expired an hour ago.
    pub fn expired() -> Self {
        Self {
            not_after: Some(OffsetDateTime::now_utc() - Duration::from_secs(3600)),
            ..Self::default()
        }
    }

    /// The same options with another key flavour.
    pub fn with_key(mut self, key: KeyFlavour) -> Self {
        self.key = key;
        self
    }

    fn validity(&self) -> Validity {
        self.not_after
            .map_or_else(|| Validity::for_ttl(self.ttl), Validity::until)
    }
}

/// An issued identity, in the pieces an identity file is made of.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Private key PEM, in the chosen flavour.
    pub key_pem: String,
    /// The SSH certificate as one authorized_keys line.
    pub ssh_cert_line: String,
    /// TLS client certificate PEM, signed by the User CA.
    pub cert_pem: String,
    /// `@cert-authority` known_hosts lines, one per TLS CA.
    pub ssh_ca_lines: Vec<String>,
    /// TLS CA certificate PEMs: the Host CA first, then any extra CAs.
    pub ca_pems: Vec<String>,
}

impl Identity {
    /// The identity file: key, SSH cert, TLS cert, SSH CA lines, TLS CAs, each block newline-terminated.
    pub fn to_identity_file(&self) -> String {
        let mut out = String::new();
        out.push_str(&self.key_pem);
        out.push_str(&self.ssh_cert_line);
        out.push('\n');
        out.push_str(&self.cert_pem);
        for line in &self.ssh_ca_lines {
            out.push_str(line);
            out.push('\n');
        }
        for ca in &self.ca_pems {
            out.push_str(ca);
        }
        out
    }

    /// The TLS CA certificates concatenated, as in a `.cas` file.
    pub fn ca_bundle(&self) -> String {
        self.ca_pems.concat()
    }
}

/// Paths written by [`FakeTeleport::write_tls_files`](super::FakeTeleport::write_tls_files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Private key PEM.
    pub key: PathBuf,
    /// TLS client certificate PEM.
    pub crt: PathBuf,
    /// TLS CA certificates PEM.
    pub cas: PathBuf,
}

/// The cluster authorities an identity is issued from.
pub(crate) struct Authorities<'a> {
    pub(crate) user_ca: &'a CertAuthority,
    pub(crate) host_ca: &'a CertAuthority,
    pub(crate) ssh_user_ca: &'a SshCa,
}

/// Issues an identity for `username` with `roles`, trusted through the Host CAs.
pub(crate) fn issue(
    cluster_name: &str,
    cas: &Authorities<'_>,
    username: &str,
    roles: &[String],
    options: &IdentityOptions,
) -> Result<Identity, PkiError> {
    let validity = options.validity();
    let cert = cas
        .user_ca
        .issue_client(username, roles, options.key.kind(), validity)?;
    let ssh_cert_line = cas
        .ssh_user_ca
        .user_cert_line(&cert, username, roles, validity)?;
    let mut ca_pems = vec![cas.host_ca.cert_pem()];
    let mut ssh_ca_lines = vec![ssh::host_ca_line(cluster_name, 0)?];
    for extra in 1..=options.extra_ca_count {
        ca_pems.push(CertAuthority::teleport(cluster_name)?.cert_pem());
        ssh_ca_lines.push(ssh::host_ca_line(cluster_name, extra)?);
    }
    Ok(Identity {
        key_pem: cert.key().pem_as(options.key)?,
        ssh_cert_line,
        cert_pem: cert.cert_pem(),
        ssh_ca_lines,
        ca_pems,
    })
}

/// Replaces `path` atomically: readers see the old file or the new one, never a partial write.
pub(crate) fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(contents.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
