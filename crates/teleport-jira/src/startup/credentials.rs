//! The Teleport credentials the config names: read, parsed, refused when expired; and a warning
//! when a file holding a secret is open to every user.

use time::OffsetDateTime;

use super::StartError;
use crate::config::{Config, CredentialSource};
use crate::teleport::Credentials;
use crate::teleport::identity::{self, IdentityError};

/// The text of the credential files the config names, so a reload can tell whether anything
/// changed before parsing them.
pub fn credentials_text(source: &CredentialSource) -> Result<String, StartError> {
    match source {
        CredentialSource::IdentityFile { path, .. } => {
            std::fs::read_to_string(path).map_err(|err| {
                StartError::Credentials(format!("reading identity file {}: {err}", path.display()))
            })
        }
        CredentialSource::KeyPair {
            key,
            cert,
            root_cas,
        } => Ok([key, cert, root_cas]
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap_or_default())
            .collect()),
    }
}

/// The credentials in `text` (read by [`credentials_text`]), with the file name in every error.
pub fn parse_credentials(source: &CredentialSource, text: &str) -> Result<Credentials, StartError> {
    match source {
        CredentialSource::IdentityFile { path, .. } => identity::parse_identity_file(text)
            .map_err(|err: IdentityError| StartError::Credentials(err.in_file(path).to_string())),
        // Three files: read again by path, which names the one at fault.
        CredentialSource::KeyPair {
            key,
            cert,
            root_cas,
        } => identity::read_key_pair(key, cert, root_cas)
            .map_err(|err| StartError::Credentials(format!("teleport client credentials: {err}"))),
    }
}

/// Loads the credentials the config names and refuses expired ones; also returns the text they
/// were read from.
pub fn load_credentials(source: &CredentialSource) -> Result<(Credentials, String), StartError> {
    let text = credentials_text(source)?;
    let loaded = (parse_credentials(source, &text)?, text);
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

/// Files holding secrets must not be open to every user on the machine; say so when they are. A
/// group may read them: tbot and the plugin often share one, and Kubernetes mounts Secrets
/// group-readable under `fsGroup`.
pub fn warn_about_open_secret_files(config: &Config) {
    use std::os::unix::fs::PermissionsExt;
    let mut files: Vec<(&str, &std::path::Path)> = Vec::new();
    match &config.teleport.credentials {
        CredentialSource::IdentityFile { path, .. } => files.push(("teleport.identity", path)),
        CredentialSource::KeyPair { key, .. } => files.push(("teleport.client_key", key)),
    }
    if let Some(tls) = &config.http.tls {
        files.push(("http.https_key_file", &tls.key));
    }
    // The JSM token, when it is a file of its own (by default it is [jira]'s, already listed).
    let jsm_token = Some(&config.jsm_oncall.api_token_file)
        .filter(|_| config.jsm_oncall.enabled)
        .filter(|file| **file != config.jira.api_token_file)
        .and_then(Option::as_ref);
    for source in [
        config.jira.api_token_file.as_ref(),
        config.http.webhook_secret_file.as_ref(),
        jsm_token,
    ]
    .into_iter()
    .flatten()
    {
        files.push(("secret file", source));
    }
    for (key, path) in files {
        if let Ok(metadata) = std::fs::metadata(path)
            && metadata.permissions().mode() & 0o006 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", metadata.permissions().mode() & 0o777),
                "{key} is open to every user on this machine; restrict it to the service user and its group (chmod 600 or 640)"
            );
        }
    }
}
