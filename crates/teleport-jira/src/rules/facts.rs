//! The facts a condition reads, taken from an access request and its user's traits.

use std::collections::BTreeMap;

use jiff::Timestamp;

use teleport_proto::types::AccessRequestV3;
use teleport_proto::wrappers::LabelValues;

use super::expr::Facts;

impl Facts {
    /// The request's facts; `traits` are its user's, empty when Teleport would not tell.
    pub fn of_request(request: &AccessRequestV3, traits: BTreeMap<String, Vec<String>>) -> Self {
        let spec = request.spec.clone().unwrap_or_default();
        // Teleport's `Expiry()` is the resource's own expiry; older requests may carry only the
        // access expiry.
        let expiry = request
            .metadata
            .as_ref()
            .and_then(|m| m.expires.as_ref())
            .or(spec.expires.as_ref());
        Self {
            roles: spec.roles,
            suggested_reviewers: spec.suggested_reviewers,
            system_annotations: label_values(spec.system_annotations),
            user: spec.user,
            request_reason: spec.request_reason,
            creation_time: timestamp(spec.created.as_ref()),
            expiry: timestamp(expiry),
            traits,
        }
    }
}

fn label_values(values: Option<LabelValues>) -> BTreeMap<String, Vec<String>> {
    values
        .map(|v| v.values.into_iter().map(|(k, v)| (k, v.values)).collect())
        .unwrap_or_default()
}

/// A protobuf timestamp; unset or out of range reads as the Unix epoch, which no schedule or
/// time comparison mistakes for "now".
fn timestamp(ts: Option<&prost_types::Timestamp>) -> Timestamp {
    ts.and_then(|ts| Timestamp::new(ts.seconds, ts.nanos).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}
