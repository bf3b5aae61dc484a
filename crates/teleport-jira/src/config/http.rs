//! `[http]`: the webhook's listener, its TLS, and who may call it.

use std::path::{Path, PathBuf};

use super::raw::RawHttp;
use super::{
    BasicAuth, ConfigError, DEFAULT_LISTEN_ADDR, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TLS_FILES_CHECK_INTERVAL, HttpConfig, HttpTlsFiles, invalid, non_empty,
    parse_listen_addr, public_addr_credentials, read_secret_file,
};
use crate::secret::Secret;

pub(super) fn http_section(raw: RawHttp, insecure_no_tls: bool) -> Result<HttpConfig, ConfigError> {
    let listen = non_empty(raw.listen_addr).unwrap_or_else(|| DEFAULT_LISTEN_ADDR.to_owned());
    let webhook_secret_file = non_empty(raw.webhook_secret.clone())
        .filter(|v| v.starts_with('/'))
        .map(PathBuf::from);
    let webhook_secret = match non_empty(raw.webhook_secret) {
        Some(value) if value.starts_with('/') => {
            Some(Secret::new(read_secret_file(Path::new(&value))?))
        }
        other => other.map(Secret::new),
    };
    let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if max_body_bytes < 1024 {
        return Err(invalid(
            "http.max_body_bytes must be at least 1024 (Jira's payloads are several KiB)",
        ));
    }
    let listen_addr = parse_listen_addr(&listen)?;
    let public_addr = non_empty(raw.public_addr);
    let basic_auth_password_file = non_empty(raw.basic_auth.password_file).map(PathBuf::from);
    let password = basic_auth_password(
        non_empty(raw.basic_auth.password),
        basic_auth_password_file.as_deref(),
    )?;
    let basic_auth = basic_auth(
        non_empty(raw.basic_auth.user),
        password,
        public_addr.as_deref(),
        insecure_no_tls,
    )?;
    let tls = tls_files(
        non_empty(raw.https_cert_file),
        non_empty(raw.https_key_file),
        insecure_no_tls || raw.disable_webhook,
    )?;
    Ok(HttpConfig {
        listen_addr,
        // The credentials moved into `basic_auth` above; the address keeps none to print.
        public_addr: public_addr.as_deref().map(without_userinfo),
        tls: if insecure_no_tls { None } else { tls },
        basic_auth,
        verify_client_cert: raw.tls.verify_client_cert,
        disable_webhook: raw.disable_webhook,
        webhook_secret,
        webhook_secret_file,
        basic_auth_password_file,
        max_body_bytes,
        tls_files_check_interval: match raw.tls_files_check_interval {
            None => Some(DEFAULT_TLS_FILES_CHECK_INTERVAL),
            Some(interval) if interval.is_zero() => None,
            Some(interval) => Some(interval),
        },
    })
}

/// `basic_auth.password`, or the content of `basic_auth.password_file`; not both.
fn basic_auth_password(
    password: Option<String>,
    file: Option<&Path>,
) -> Result<Option<String>, ConfigError> {
    match (password, file) {
        (Some(_), Some(_)) => Err(invalid(
            "http.basic_auth.password and http.basic_auth.password_file are both set; keep one (password_file keeps the password out of the config file)",
        )),
        (Some(password), None) => Ok(Some(password)),
        (None, Some(file)) => read_secret_file(file).map(Some),
        (None, None) => Ok(None),
    }
}

/// The webhook's basic auth: from `[http.basic_auth]`, or from credentials in `public_addr` (as the
/// Go plugin accepts them), never both.
fn basic_auth(
    user: Option<String>,
    password: Option<String>,
    public_addr: Option<&str>,
    insecure_no_tls: bool,
) -> Result<Option<BasicAuth>, ConfigError> {
    let configured = match (user, password) {
        (Some(user), password) => Some(BasicAuth {
            user,
            password: Secret::new(password.unwrap_or_default()),
        }),
        (None, Some(_)) => {
            return Err(invalid(
                "basic_auth.user is required when basic_auth.password is specified",
            ));
        }
        (None, None) => None,
    };
    let in_public_addr = match public_addr {
        Some(addr) => public_addr_credentials(addr, insecure_no_tls)?,
        None => None,
    };
    match (configured, in_public_addr) {
        (Some(_), Some(_)) => Err(invalid(
            "passing credentials both in basic_auth section and public_addr parameter is not supported",
        )),
        (configured, in_public_addr) => Ok(configured.or(in_public_addr)),
    }
}

/// The webhook's certificate and key; both or neither, and neither only without TLS.
fn tls_files(
    cert: Option<String>,
    key: Option<String>,
    tls_optional: bool,
) -> Result<Option<HttpTlsFiles>, ConfigError> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(HttpTlsFiles {
            cert: cert.into(),
            key: key.into(),
        })),
        (None, Some(_)) => Err(invalid(
            "https_cert_file is required when https_key_file is specified",
        )),
        (Some(_), None) => Err(invalid(
            "https_key_file is required when https_cert_file is specified",
        )),
        (None, None) if tls_optional => Ok(None),
        (None, None) => Err(invalid(
            "http.https_cert_file and http.https_key_file are required to serve the webhook over HTTPS; set them or start with --insecure-no-tls",
        )),
    }
}

/// `addr` without the `user:password@` of its authority.
fn without_userinfo(addr: &str) -> String {
    let (scheme, rest) = match addr.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, addr),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}
