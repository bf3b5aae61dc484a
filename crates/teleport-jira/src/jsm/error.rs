//! Why a JSM Operations call gave no answer to use, each cause named for the operator's fix.

use std::time::Duration;

#[derive(Clone, Debug, thiserror::Error)]
pub enum JsmError {
    #[error(
        "JSM Operations refused the credentials (401): check jsm_oncall.email and api_token; a scoped token needs read:ops-config:jira-service-management"
    )]
    Unauthorized,
    #[error(
        "no read access to {what} (403): make the plugin's Atlassian account a member of the schedule's owning team or a responder"
    )]
    Forbidden { what: String },
    #[error("{what} not found (404): check jsm_oncall.cloud_id and the schedule id")]
    NotFound { what: String },
    #[error("JSM Operations is rate limiting the plugin (429){}", after(*retry_after))]
    RateLimited { retry_after: Option<Duration> },
    #[error("JSM Operations failed ({status}): {body}")]
    Server { status: u16, body: String },
    #[error("JSM Operations answered {status} for {what}: {body}")]
    Unexpected {
        what: String,
        status: u16,
        body: String,
    },
    #[error("JSM Operations did not answer in time")]
    Timeout,
    #[error("cannot reach JSM Operations: {0}")]
    Transport(String),
    #[error("cannot read JSM Operations' answer for {what}: {problem}")]
    Decode { what: String, problem: String },
}

fn after(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |wait| {
        format!(", retry after {} s", wait.as_secs())
    })
}

impl JsmError {
    /// A short label for metrics and logs.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound { .. } => "not_found",
            Self::RateLimited { .. } => "rate_limited",
            Self::Server { .. } => "server_error",
            Self::Unexpected { .. } => "unexpected",
            Self::Timeout => "timeout",
            Self::Transport(_) => "unreachable",
            Self::Decode { .. } => "bad_answer",
        }
    }

    /// Whether asking again later may succeed.
    pub fn is_passing(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Server { .. } | Self::Timeout | Self::Transport(_)
        )
    }

    /// The wait the API asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}
