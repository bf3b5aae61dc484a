//! Why a reconcile step failed, and how soon it may be tried again.

use std::time::Duration;

use thiserror::Error;

use super::audit_log::AuditFileError;
use crate::jira::JiraError;
use crate::teleport::TeleportError;

#[derive(Debug, Error)]
pub enum StepError {
    #[error("teleport: {0}")]
    Teleport(#[from] TeleportError),
    #[error("jira: {0}")]
    Jira(#[from] JiraError),
    #[error("{0}")]
    Workflow(String),
    /// The audit file could not be read or appended to (a full disk may pass: tried again).
    #[error(transparent)]
    AuditFile(#[from] AuditFileError),
    /// Another process holds the request's lease; try again shortly.
    #[error("another process is working on this request")]
    Busy,
    /// The step panicked (a bug); caught at the step's edge and retried with back-off.
    #[error("the step panicked: {0}")]
    Panicked(String),
}

impl StepError {
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Teleport(err) => err.is_transient(),
            Self::Jira(err) => err.is_transient(),
            Self::Workflow(_) => false,
            Self::Busy | Self::Panicked(_) | Self::AuditFile(_) => true,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Jira(err) => err.retry_after(),
            _ => None,
        }
    }
}
