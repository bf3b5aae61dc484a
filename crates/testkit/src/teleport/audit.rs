//! The audit events the fake records for tests to read back.

use teleport_proto::types::RequestState;

/// One accepted `SetAccessRequestState` call, like Teleport's `access_request.update` audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Request ID.
    pub request_id: String,
    /// State that was set.
    pub state: RequestState,
    /// `Delegator` as sent (the Jira plugin sends `jira:<email>`).
    pub delegator: String,
    /// Resolve reason as sent.
    pub reason: String,
    /// Username of the caller (the plugin identity).
    pub caller: String,
}
