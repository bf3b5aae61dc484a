//! Teleport errors, mapped from gRPC status codes the way Teleport's own client maps them.

use thiserror::Error;
use tonic::Code;

/// The message suffix Teleport uses when a reviewer submits a second review; Teleport's own plugins
/// match on it because the code (PermissionDenied) is shared with real denials.
const ALREADY_REVIEWED_SUFFIX: &str = "has already reviewed this request";

#[derive(Debug, Error)]
pub enum TeleportError {
    #[error("not found: {0}")]
    NotFound(String),
    /// A plugin-data compare-and-swap lost to a concurrent writer: read again and retry.
    #[error("compare failed: {0}")]
    CompareFailed(String),
    #[error("{0}")]
    AlreadyReviewed(String),
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("bad parameter: {0}")]
    BadParameter(String),
    #[error("not implemented: {0}")]
    NotImplemented(String),
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The connection failed or the server is going away: worth retrying.
    #[error("connection problem: {0}")]
    Unavailable(String),
    #[error("teleport answered {code:?}: {message}")]
    Other { code: Code, message: String },
}

impl TeleportError {
    /// Whether trying the same call again later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::LimitExceeded(_) | Self::CompareFailed(_)
        ) || matches!(
            self,
            Self::Other {
                code: Code::Unknown | Code::Internal,
                ..
            }
        )
    }
}

impl From<tonic::Status> for TeleportError {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::NotFound => Self::NotFound(message),
            Code::FailedPrecondition => Self::CompareFailed(message),
            Code::PermissionDenied if message.ends_with(ALREADY_REVIEWED_SUFFIX) => {
                Self::AlreadyReviewed(message)
            }
            Code::PermissionDenied | Code::Unauthenticated => Self::AccessDenied(message),
            Code::InvalidArgument => Self::BadParameter(message),
            Code::Unimplemented => Self::NotImplemented(message),
            Code::ResourceExhausted => Self::LimitExceeded(message),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
                Self::Unavailable(message)
            }
            code => Self::Other { code, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_review_is_recognised_by_its_message() {
        let status =
            tonic::Status::permission_denied("user \"bob\" has already reviewed this request");
        assert!(matches!(
            TeleportError::from(status),
            TeleportError::AlreadyReviewed(_)
        ));
        let status = tonic::Status::permission_denied("access denied");
        assert!(matches!(
            TeleportError::from(status),
            TeleportError::AccessDenied(_)
        ));
    }

    #[test]
    fn codes_map_like_teleports_client() {
        let cases = [
            (Code::NotFound, "NotFound"),
            (Code::FailedPrecondition, "CompareFailed"),
            (Code::InvalidArgument, "BadParameter"),
            (Code::Unimplemented, "NotImplemented"),
            (Code::Unavailable, "Unavailable"),
            (Code::ResourceExhausted, "LimitExceeded"),
        ];
        for (code, expected) in cases {
            let mapped = TeleportError::from(tonic::Status::new(code, "m"));
            assert!(
                format!("{mapped:?}").starts_with(expected),
                "{code:?} -> {mapped:?}"
            );
        }
    }
}
