//! The resource kinds the fake serves and how a request and a rule are named, shared by the rules, the
//! plugin-data store, the watch and the gRPC service.

use teleport_proto::teleport::accessmonitoringrules::v1::AccessMonitoringRule;
use teleport_proto::types::AccessRequestV3;

/// Resource kind of access requests.
pub const KIND_ACCESS_REQUEST: &str = "access_request";

/// A request's ID, which Teleport keeps as its metadata name.
pub(crate) fn request_id(request: &AccessRequestV3) -> &str {
    request.metadata.as_ref().map_or("", |m| m.name.as_str())
}

/// Resource kind of Access Monitoring Rules.
pub const KIND_ACCESS_MONITORING_RULE: &str = "access_monitoring_rule";

/// A rule's name, from its `header.v1` metadata.
pub(crate) fn rule_name(rule: &AccessMonitoringRule) -> &str {
    rule.metadata.as_ref().map_or("", |m| m.name.as_str())
}
