//! What the HTTP clients of Jira and of JSM Operations share: how they are built, reading an
//! answer with a cap (so a broken or hostile server cannot make the process hold an unbounded
//! answer), `Retry-After`, and escaping path segments.

use std::time::Duration;

/// A client builder whose TLS is rustls with ring, the one crypto provider compiled in: reqwest
/// takes the process's provider, so it is installed first if nothing did (tests, `check`).
pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than {limit} bytes; refusing to read it")]
    TooLarge { limit: usize },
    /// The answer broke off; the caller describes the error with its sources.
    #[error("{0}")]
    Transport(reqwest::Error),
}

/// The body of `response`, refused past `limit` bytes (whatever `Content-Length` claims).
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After` is either seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when =
        time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc2822)
            .ok()?;
    let wait = when - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// A path segment percent-encoded, as the Go client does for path parameters.
pub fn escape_path(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(escape_path("PROJ-1"), "PROJ-1");
        assert_eq!(escape_path("a/b c"), "a%2Fb%20c");
    }
}
