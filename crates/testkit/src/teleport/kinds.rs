//! The resource kind the fake serves and how a request is named, shared by the rules, the
//! plugin-data store, the watch and the gRPC service.

use teleport_proto::types::AccessRequestV3;

/// Resource kind of access requests.
pub const KIND_ACCESS_REQUEST: &str = "access_request";

/// A request's ID, which Teleport keeps as its metadata name.
pub(crate) fn request_id(request: &AccessRequestV3) -> &str {
    request.metadata.as_ref().map_or("", |m| m.name.as_str())
}
