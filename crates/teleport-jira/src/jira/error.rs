//! Jira errors: an HTTP status with Jira's own explanation, or a transport failure.

use std::time::Duration;

use thiserror::Error;

use super::types::{ErrorBody, ErrorDetails};

#[derive(Clone, Debug, Error)]
pub enum JiraError {
    /// Jira answered with an error status; `details` is Jira's explanation, as the Go plugin prints it.
    #[error("http error code={status}, errors=[{details}]")]
    Status {
        status: u16,
        details: String,
        retry_after: Option<Duration>,
    },
    #[error("Jira request failed: {0}")]
    Transport(String),
    /// Jira's TLS certificate was refused: a configuration error, not an outage.
    #[error(
        "Jira's certificate at {host} is not trusted: {problem}; if Jira uses a private CA, point SSL_CERT_FILE at its certificate (PEM)"
    )]
    Certificate { host: String, problem: String },
    /// The connection could not be made, so Jira cannot have acted on the request.
    #[error("cannot connect to Jira: {0}")]
    Unreachable(String),
    #[error("unexpected Jira response: {0}")]
    Decode(String),
    #[error("{0}")]
    Other(String),
}

impl JiraError {
    /// Whether the same call may succeed later: rate limits, server errors, timeouts, lost connections.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => {
                matches!(status, 408 | 409 | 425 | 429) || *status >= 500
            }
            Self::Transport(_) | Self::Unreachable(_) => true,
            Self::Certificate { .. } | Self::Decode(_) | Self::Other(_) => false,
        }
    }

    /// The wait Jira asked for with `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether Jira certainly did not act on the request (it refused it before processing, or
    /// never received it), so that even a non-idempotent call may be sent again.
    pub fn surely_not_processed(&self) -> bool {
        matches!(
            self,
            Self::Status { status: 429, .. } | Self::Unreachable(_)
        )
    }

    /// Whether Jira surely did not carry the request out, whatever it was: it answered with a
    /// client error (a 4xx, including 429: Jira checks before it acts) or was never reached. A
    /// time-out, a lost connection or a 5xx leave it unknown.
    pub fn surely_refused(&self) -> bool {
        match self {
            Self::Status { status, .. } => (400..500).contains(status),
            Self::Unreachable(_) | Self::Certificate { .. } => true,
            _ => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn from_body(status: u16, body: &str, retry_after: Option<Duration>) -> Self {
        Self::Status {
            status,
            details: describe_error_body(body),
            retry_after,
        }
    }
}

/// Renders both of Jira's error shapes the way the Go plugin does, so operators see the same text.
pub(crate) fn describe_error_body(body: &str) -> String {
    let parsed: ErrorBody = match serde_json::from_str(body) {
        Ok(parsed) => parsed,
        Err(_) if body.trim().is_empty() => return "Unknown Jira error".to_owned(),
        Err(_) => {
            let snippet: String = body.chars().take(200).collect();
            return format!(
                "Failed to unmarshal Jira error: {:?}",
                snippet.replace('\n', " ")
            );
        }
    };
    let mut parts = Vec::new();
    if !parsed.error_messages.is_empty() {
        parts.push(format!(
            "error messages: {} ",
            parsed.error_messages.join(";")
        ));
    }
    match parsed.errors {
        Some(ErrorDetails::Map(map)) if !map.is_empty() => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}:{}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                    )
                })
                .collect();
            parts.push(format!("error details: map[{}]", fields.join(" ")));
        }
        Some(ErrorDetails::List(list)) if !list.is_empty() => {
            parts.push(format!("error details: [{}]", list.join(" ")));
        }
        _ => {}
    }
    if parts.is_empty() {
        "Unknown Jira error".to_owned()
    } else {
        parts.join("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_error_shape_lists_field_errors() {
        let body = r#"{"errorMessages":[], "errors": {"project": "project is required"}}"#;
        assert_eq!(
            describe_error_body(body),
            "error details: map[project:project is required]"
        );
    }

    #[test]
    fn legacy_error_shape_lists_messages_and_errors() {
        let body = r#"{"errorMessages":["foo"],"errors":["bar", "baz"]}"#;
        assert_eq!(
            describe_error_body(body),
            "error messages: foo error details: [bar baz]"
        );
    }

    #[test]
    fn malformed_error_keeps_the_raw_text() {
        let body = r#"{"errorMessages":["Foo"],"errors":"This is a single string"}"#;
        assert!(describe_error_body(body).contains("This is a single string"));
    }

    #[test]
    fn empty_body_is_an_unknown_error() {
        assert_eq!(describe_error_body(""), "Unknown Jira error");
        assert_eq!(describe_error_body("{}"), "Unknown Jira error");
    }

    #[test]
    fn rate_limits_and_server_errors_are_transient() {
        assert!(JiraError::from_body(429, "", None).is_transient());
        assert!(JiraError::from_body(503, "", None).is_transient());
        assert!(!JiraError::from_body(400, "", None).is_transient());
        assert!(!JiraError::from_body(401, "", None).is_transient());
    }
}
