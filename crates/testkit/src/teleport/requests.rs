//! Access requests: creation, deletion, reviews with threshold resolution, direct state changes and listing.
//!
//! The checks run in Teleport's order and refuse with Teleport's codes and texts (teleport-wire.md §2.4,
//! §5, §6), so a client's error handling meets the same answers it would get from a real cluster.
//! Every accepted change is published to watchers as a PUT of the whole request.

use std::collections::HashMap;

use time::OffsetDateTime;
use time::macros::format_description;
use tonic::Status;

use teleport_proto::proto::{
    AccessRequestSort, ListAccessRequestsRequest, ListAccessRequestsResponse, RequestStateSetter,
};
use teleport_proto::types::{
    AccessRequestFilter, AccessRequestScope, AccessRequestSpecV3, AccessRequestV3, AccessReview,
    AccessReviewSubmission, AccessReviewThreshold, Metadata, RequestState, ResourceId,
    ThresholdIndexSet, ThresholdIndexSets,
};
use teleport_proto::wrappers::{LabelValues, StringValues};

use super::audit::AuditEvent;
use super::clock::{self, ACCESS_TTL, GO_ZERO_TIME};
use super::kinds::{KIND_ACCESS_REQUEST, request_id};
use super::state::State;
use super::users::{Caller, action_denied};

/// ListAccessRequests page size when the request leaves `Limit` at 0 (Teleport's `DefaultChunkSize`).
pub const LIST_DEFAULT_LIMIT: i32 = 1000;

/// Largest `Limit` ListAccessRequests accepts; above it Teleport answers InvalidArgument.
pub const LIST_MAX_LIMIT: i32 = 16_000;

/// A request to create, for [`FakeTeleport::create_access_request_with`](super::FakeTeleport::create_access_request_with).
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Requesting user; must have been added with the roles as requestable.
    pub user: String,
    /// Requested roles; empty means every requestable role, as in Teleport.
    pub roles: Vec<String>,
    /// Request reason.
    pub reason: String,
    /// Suggested reviewers.
    pub suggested_reviewers: Vec<String>,
    /// Requested resources (resource access requests).
    pub resource_ids: Vec<ResourceId>,
    /// System annotations (Teleport derives them from the requester's roles; here they are given).
    pub system_annotations: HashMap<String, Vec<String>>,
    /// Login hint.
    pub login_hint: String,
    /// Request ID; a new UUID when `None`.
    pub id: Option<String>,
}

impl CreateRequest {
    /// The request as a Go client would send it to `CreateAccessRequestV2`.
    pub(crate) fn into_wire(self) -> AccessRequestV3 {
        AccessRequestV3 {
            kind: KIND_ACCESS_REQUEST.into(),
            version: "v3".into(),
            metadata: Some(Metadata {
                name: self.id.unwrap_or_default(),
                ..Metadata::default()
            }),
            spec: Some(AccessRequestSpecV3 {
                user: self.user,
                roles: self.roles,
                state: RequestState::Pending.into(),
                request_reason: self.reason,
                suggested_reviewers: self.suggested_reviewers,
                requested_resource_i_ds: self.resource_ids,
                system_annotations: Some(label_values(self.system_annotations)),
                login_hint: self.login_hint,
                ..AccessRequestSpecV3::default()
            }),
            ..AccessRequestV3::default()
        }
    }
}

impl State {
    /// `CreateAccessRequestV2`.
    pub(crate) fn create_request(
        &mut self,
        caller: &Caller,
        request: AccessRequestV3,
    ) -> Result<AccessRequestV3, Status> {
        let mut spec = request.spec.unwrap_or_default();
        if spec.user.is_empty() {
            spec.user.clone_from(&caller.name);
        }
        // `CheckAndSetDefaults` turns an unset state into PENDING before any permission check.
        let wanted = match RequestState::try_from(spec.state).unwrap_or(RequestState::None) {
            RequestState::None => RequestState::Pending,
            state => state,
        };
        spec.state = wanted.into();
        let pending = wanted == RequestState::Pending;
        // Without the `create` verb a user may only file pending requests for themself.
        if !caller.spec.admin && (!pending || spec.user != caller.name) {
            return Err(action_denied("create", KIND_ACCESS_REQUEST));
        }
        if !pending && spec.user == caller.name {
            return Err(Status::permission_denied(
                "cannot create access request for self in non-pending state",
            ));
        }
        let owner = self
            .users
            .get(&spec.user)
            .ok_or_else(|| Status::not_found(format!("user {:?} is not found", spec.user)))?;
        if spec.roles.is_empty() {
            if owner.requestable_roles.is_empty() {
                return Err(Status::invalid_argument(
                    "no requestable roles, please verify static RBAC configuration",
                ));
            }
            spec.roles.clone_from(&owner.requestable_roles);
        }
        if let Some(role) = spec
            .roles
            .iter()
            .find(|r| !owner.requestable_roles.contains(r))
        {
            return Err(Status::invalid_argument(format!(
                "user {:?} can not request role {role:?}",
                spec.user
            )));
        }
        let id = request
            .metadata
            .map(|m| m.name)
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if self.requests.contains_key(&id) {
            return Err(Status::already_exists(format!(
                "access request {id:?} already exists"
            )));
        }
        let stored = new_request(id.clone(), spec, owner.thresholds.unwrap_or((1, 1)));
        if stored.spec.as_ref().is_some_and(|s| s.dry_run) {
            return Ok(stored);
        }
        self.requests.insert(id, stored.clone());
        self.watchers.publish_put(&stored);
        Ok(stored)
    }

    /// `DeleteAccessRequest` (the caller's `delete` right is checked by the caller of this method).
    pub(crate) fn delete_request(&mut self, id: &str) -> Result<(), Status> {
        if self.requests.remove(id).is_none() {
            return Err(Status::not_found(format!(
                "cannot delete access request {id:?} (not found)"
            )));
        }
        // Plugin data stays: Teleport keeps it until access expiry + 1h for DELETE handling.
        self.watchers.publish_delete(id);
        Ok(())
    }

    /// `SubmitAccessReview`, returning the request after the review.
    pub(crate) fn submit_review(
        &mut self,
        caller: &Caller,
        submission: AccessReviewSubmission,
    ) -> Result<AccessRequestV3, Status> {
        let id = submission.request_id;
        let mut review = submission.review.unwrap_or_default();
        let proposed = RequestState::try_from(review.proposed_state).unwrap_or(RequestState::None);
        if proposed == RequestState::Promoted {
            return Err(Status::invalid_argument(
                "state promoted can be only set when promoting to access list",
            ));
        }
        if review.author.is_empty() {
            review.author.clone_from(&caller.name);
        }
        self.authorize_review(caller, &review.author, &id)?;
        let request = self
            .requests
            .get_mut(&id)
            .expect("invariant: authorize_review found the request under the same lock");
        apply_review(request, review, proposed)?;
        let updated = request.clone();
        self.watchers.publish_put(&updated);
        Ok(updated)
    }

    /// The checks Teleport makes before it looks at the review itself.
    fn authorize_review(&self, caller: &Caller, author: &str, id: &str) -> Result<(), Status> {
        if author != caller.name && !caller.spec.admin {
            return Err(Status::permission_denied(format!(
                "user {:?} cannot submit reviews on behalf of {author:?}",
                caller.name
            )));
        }
        let author_spec = self
            .users
            .get(author)
            .ok_or_else(|| Status::not_found(format!("user {author:?} is not found")))?;
        if !author_spec.reviews_anything() {
            return Err(Status::permission_denied(format!(
                "user {author:?} cannot submit reviews"
            )));
        }
        let request = self.requests.get(id).ok_or_else(|| {
            Status::not_found(format!(
                "cannot apply review to access request {id:?} (not found)"
            ))
        })?;
        if !Caller::can_review(author, author_spec, request) {
            return Err(Status::permission_denied(format!(
                "user {author:?} cannot review request {id:?}"
            )));
        }
        Ok(())
    }

    /// `SetAccessRequestState` with the v17-era rules; records an audit event when accepted.
    pub(crate) fn set_state(
        &mut self,
        caller: &Caller,
        setter: RequestStateSetter,
    ) -> Result<(), Status> {
        if !caller.spec.manages_requests() {
            return Err(action_denied("update", KIND_ACCESS_REQUEST));
        }
        if setter.id.is_empty() {
            return Err(Status::invalid_argument("missing request id"));
        }
        let request = self.requests.get_mut(&setter.id).ok_or_else(|| {
            Status::not_found(format!(
                "cannot set state of access request {:?} (not found)",
                setter.id
            ))
        })?;
        let wanted = check_state_change(request, caller, &setter)?;
        let spec = request
            .spec
            .get_or_insert_with(AccessRequestSpecV3::default);
        spec.state = wanted.into();
        spec.resolve_reason.clone_from(&setter.reason);
        spec.resolve_annotations = Some(setter.annotations.unwrap_or_default());
        if !setter.roles.is_empty() {
            spec.roles = setter.roles;
        }
        if setter.assume_start_time.is_some() {
            spec.assume_start_time = setter.assume_start_time;
        }
        let access_expiry = spec.expires;
        if wanted == RequestState::Approved
            && let Some(meta) = request.metadata.as_mut()
        {
            meta.expires = access_expiry;
        }
        touch(request);
        let updated = request.clone();
        self.watchers.publish_put(&updated);
        self.audit.push(AuditEvent {
            request_id: setter.id,
            state: wanted,
            delegator: setter.delegator,
            reason: setter.reason,
            caller: caller.name.clone(),
        });
        Ok(())
    }

    /// What Teleport does when a request is promoted to an access list (the access-list service,
    /// not `SetAccessRequestState`, which refuses PROMOTED): the state changes and watchers see it.
    pub(crate) fn promote(&mut self, id: &str, reason: &str) -> Result<(), Status> {
        let request = self
            .requests
            .get_mut(id)
            .ok_or_else(|| Status::not_found(format!("access request {id:?} is not found")))?;
        let spec = request
            .spec
            .get_or_insert_with(AccessRequestSpecV3::default);
        if spec.state != i32::from(RequestState::Pending) {
            return Err(Status::invalid_argument(
                "only pending requests can be promoted",
            ));
        }
        spec.state = RequestState::Promoted.into();
        spec.resolve_reason = reason.to_owned();
        touch(request);
        let updated = request.clone();
        self.watchers.publish_put(&updated);
        Ok(())
    }

    /// `ListAccessRequests`: filtered, sorted, paginated with opaque keys like Teleport's cache.
    pub(crate) fn list_requests(
        &self,
        caller: &Caller,
        request: ListAccessRequestsRequest,
    ) -> Result<ListAccessRequestsResponse, Status> {
        if self.faults.list_unimplemented {
            return Err(Status::unimplemented(
                "unknown method ListAccessRequests for service proto.AuthService",
            ));
        }
        let limit = match request.limit {
            l if l <= 0 => LIST_DEFAULT_LIMIT,
            l if l > LIST_MAX_LIMIT => {
                return Err(Status::invalid_argument(format!(
                    "page size of {l} is too large"
                )));
            }
            l => l,
        };
        let limit = usize::try_from(limit).expect("invariant: limit is positive");
        let sort_key = sort_key(request.sort)?;
        let filter = request.filter.unwrap_or_default();
        let mut page: Vec<(String, &AccessRequestV3)> = self
            .requests
            .values()
            .filter(|r| caller.sees(r) && filter_matches(&filter, &caller.name, r))
            .map(|r| (sort_key(r), r))
            .collect();
        page.sort_by(|a, b| a.0.cmp(&b.0));
        if request.descending {
            page.reverse();
        }
        let start = &request.start_key;
        let mut page: Vec<_> = page
            .into_iter()
            .filter(|(key, _)| {
                start.is_empty()
                    || if request.descending {
                        key <= start
                    } else {
                        key >= start
                    }
            })
            .take(limit + 1)
            .collect();
        let next_key = if page.len() > limit {
            page.pop().map(|(key, _)| key).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListAccessRequestsResponse {
            access_requests: page.into_iter().map(|(_, r)| r.clone()).collect(),
            next_key,
        })
    }

    /// `GetAccessRequestsV2`: every visible match, in backend (ID) order.
    pub(crate) fn matching_requests(
        &self,
        caller: &Caller,
        filter: &AccessRequestFilter,
    ) -> Vec<AccessRequestV3> {
        self.requests
            .values()
            .filter(|r| caller.sees(r) && filter_matches(filter, &caller.name, r))
            .cloned()
            .collect()
    }
}

/// A new request as Teleport stores it: thresholds and role mapping from the requester's spec, the
/// non-nullable fields filled, expiry one access TTL away.
fn new_request(
    id: String,
    mut spec: AccessRequestSpecV3,
    (approve, deny): (u32, u32),
) -> AccessRequestV3 {
    let created = clock::now();
    let expires = clock::after(&created, ACCESS_TTL);
    let role_threshold_mapping = spec
        .roles
        .iter()
        .map(|role| {
            let all = ThresholdIndexSet { indexes: vec![0] };
            (role.clone(), ThresholdIndexSets { sets: vec![all] })
        })
        .collect();
    let system_annotations = Some(spec.system_annotations.take().unwrap_or_default());
    AccessRequestV3 {
        kind: KIND_ACCESS_REQUEST.into(),
        sub_kind: String::new(),
        version: "v3".into(),
        metadata: Some(Metadata {
            name: id,
            namespace: "default".into(),
            expires: Some(expires),
            revision: uuid::Uuid::new_v4().to_string(),
            ..Metadata::default()
        }),
        spec: Some(AccessRequestSpecV3 {
            created: Some(created),
            expires: Some(expires),
            resolve_reason: String::new(),
            resolve_annotations: Some(LabelValues::default()),
            system_annotations,
            thresholds: vec![AccessReviewThreshold {
                name: "default".into(),
                filter: String::new(),
                approve,
                deny,
            }],
            role_threshold_mapping,
            reviews: Vec::new(),
            max_duration: Some(expires),
            session_ttl: Some(expires),
            resource_expiry: None,
            ..spec
        }),
    }
}

/// `ApplyAccessReview` after the permission checks: compatibility, threshold matching, the
/// already-resolved check, then resolution.
fn apply_review(
    request: &mut AccessRequestV3,
    mut review: AccessReview,
    proposed: RequestState,
) -> Result<(), Status> {
    let spec = request
        .spec
        .get_or_insert_with(AccessRequestSpecV3::default);
    check_review_compat(spec, &review, proposed)?;
    // Thresholds with a filter predicate would need Teleport's predicate language; the fake only
    // creates unfiltered thresholds, which every review matches.
    review.threshold_indexes = (0..spec.thresholds.len())
        .filter(|i| spec.thresholds[*i].filter.is_empty())
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    if clock::is_unset(review.created.as_ref()) {
        review.created = Some(clock::now());
    }
    review.annotations.get_or_insert_with(LabelValues::default);
    let current = RequestState::try_from(spec.state).unwrap_or(RequestState::None);
    if matches!(
        current,
        RequestState::Approved | RequestState::Denied | RequestState::Promoted
    ) {
        let word = current.as_str_name().to_lowercase();
        return Err(Status::permission_denied(format!(
            "the access request has been already {word}"
        )));
    }
    if review.assume_start_time.is_some() {
        spec.assume_start_time = review.assume_start_time;
    }
    spec.reviews.push(review);
    if let Some((state, reason)) = review_resolution(spec) {
        spec.state = state.into();
        spec.resolve_reason = reason;
        let access_expiry = spec.expires;
        if let Some(meta) = request.metadata.as_mut() {
            // Teleport resets the resource expiry to the access expiry on resolution.
            meta.expires = access_expiry;
        }
    }
    touch(request);
    Ok(())
}

/// The refusals of `SetAccessRequestState`, in Teleport's order; returns the state to set.
fn check_state_change(
    request: &AccessRequestV3,
    caller: &Caller,
    setter: &RequestStateSetter,
) -> Result<RequestState, Status> {
    let (requester, current, roles) = request.spec.as_ref().map_or(("", 0, &[][..]), |s| {
        (s.user.as_str(), s.state, &s.roles[..])
    });
    if requester == caller.name {
        return Err(Status::permission_denied(
            "directly updating the state of your own access requests is not permitted",
        ));
    }
    let wanted = RequestState::try_from(setter.state).unwrap_or(RequestState::None);
    if wanted == RequestState::None {
        return Err(Status::invalid_argument("missing request state"));
    }
    if !setter.roles.is_empty() && wanted != RequestState::Approved {
        return Err(Status::invalid_argument(format!(
            "cannot override roles when setting state: {}",
            wanted.as_str_name()
        )));
    }
    if wanted == RequestState::Promoted {
        return Err(Status::invalid_argument(
            "state promoted can be only set when promoting to access list",
        ));
    }
    // Denials overwrite approvals, approvals never overwrite denials.
    if current == i32::from(RequestState::Denied) && wanted != RequestState::Denied {
        return Err(Status::invalid_argument(format!(
            "cannot set request-state {:?} (already denied)",
            wanted.as_str_name()
        )));
    }
    if let Some(role) = setter.roles.iter().find(|r| !roles.contains(r)) {
        return Err(Status::invalid_argument(format!(
            "role {role:?} not in original request, overrides must be a subset of original role list"
        )));
    }
    Ok(wanted)
}

/// `checkReviewCompat`: what a review must look like before it is applied.
fn check_review_compat(
    spec: &AccessRequestSpecV3,
    review: &AccessReview,
    proposed: RequestState,
) -> Result<(), Status> {
    if !matches!(proposed, RequestState::Approved | RequestState::Denied) {
        return Err(Status::invalid_argument(format!(
            "invalid state proposal: {} (expected approval/denial)",
            proposed.as_str_name()
        )));
    }
    if spec.thresholds.is_empty() {
        return Err(Status::invalid_argument(
            "request is uninitialized or does not support reviews",
        ));
    }
    if spec.reviews.iter().any(|r| r.author == review.author) {
        return Err(Status::permission_denied(format!(
            "user {:?} has already reviewed this request",
            review.author
        )));
    }
    if !review.roles.is_empty() && review.roles.len() != spec.role_threshold_mapping.len() {
        return Err(Status::unimplemented(
            "role subselection is not yet supported in reviews, try omitting role list",
        ));
    }
    if review
        .annotations
        .as_ref()
        .is_some_and(|a| !a.values.is_empty())
    {
        return Err(Status::unimplemented(
            "annotations are not yet supported in reviews, try omitting annotations field",
        ));
    }
    if let Some(role) = review
        .roles
        .iter()
        .find(|r| !spec.role_threshold_mapping.contains_key(*r))
    {
        return Err(Status::invalid_argument(format!(
            "role {role:?} is not a member of this request"
        )));
    }
    Ok(())
}

/// `calculateReviewBasedResolution`: walks the reviews in order, counting per threshold. Any threshold
/// reaching its deny count denies; the request is approved once every role's every threshold set has a
/// threshold whose approve count is reached. The triggering review's reason becomes the resolve reason.
fn review_resolution(spec: &AccessRequestSpecV3) -> Option<(RequestState, String)> {
    let mut approvals = vec![0u32; spec.thresholds.len()];
    let mut denials = vec![0u32; spec.thresholds.len()];
    for review in &spec.reviews {
        let proposed = RequestState::try_from(review.proposed_state).unwrap_or(RequestState::None);
        for index in &review.threshold_indexes {
            let Some(i) = usize::try_from(*index)
                .ok()
                .filter(|i| *i < spec.thresholds.len())
            else {
                continue;
            };
            match proposed {
                RequestState::Approved => approvals[i] += 1,
                RequestState::Denied => {
                    denials[i] += 1;
                    let deny = spec.thresholds[i].deny;
                    if deny != 0 && denials[i] >= deny {
                        return Some((RequestState::Denied, review.reason.clone()));
                    }
                }
                _ => {}
            }
        }
        if proposed == RequestState::Approved && roles_approved(spec, &approvals) {
            return Some((RequestState::Approved, review.reason.clone()));
        }
    }
    None
}

fn roles_approved(spec: &AccessRequestSpecV3, approvals: &[u32]) -> bool {
    let set_met = |set: &ThresholdIndexSet| {
        set.indexes.iter().any(|index| {
            let Some(i) = usize::try_from(*index).ok() else {
                return false;
            };
            spec.thresholds.get(i).is_some_and(|t| {
                t.approve != 0 && approvals.get(i).is_some_and(|n| *n >= t.approve)
            })
        })
    };
    !spec.role_threshold_mapping.is_empty()
        && spec
            .role_threshold_mapping
            .values()
            .all(|sets| sets.sets.iter().all(set_met))
}

/// Teleport's `AccessRequestFilter.Match`, including the scopes (the server sets `Requester` to the caller).
fn filter_matches(
    filter: &AccessRequestFilter,
    requester: &str,
    request: &AccessRequestV3,
) -> bool {
    let Some(spec) = request.spec.as_ref() else {
        return false;
    };
    let reviewed = spec.reviews.iter().any(|r| r.author == requester);
    let scope_ok = match AccessRequestScope::try_from(filter.scope).unwrap_or_default() {
        AccessRequestScope::Default => true,
        AccessRequestScope::MyRequests => spec.user == requester,
        AccessRequestScope::NeedsReview => {
            spec.user != requester && spec.state == i32::from(RequestState::Pending) && !reviewed
        }
        AccessRequestScope::Reviewed => reviewed,
    };
    scope_ok
        && (filter.id.is_empty() || filter.id == request_id(request))
        && (filter.user.is_empty() || filter.user == spec.user)
        && (filter.state == i32::from(RequestState::None) || filter.state == spec.state)
}

/// The index key of a sort order in Teleport's access-request cache (`NextKey`/`StartKey` values).
fn sort_key(sort: i32) -> Result<fn(&AccessRequestV3) -> String, Status> {
    let sort = AccessRequestSort::try_from(sort).unwrap_or(AccessRequestSort::Default);
    match sort {
        AccessRequestSort::Default => Ok(|r| request_id(r).to_owned()),
        AccessRequestSort::Created => Ok(|r| format!("{}/{}", created_rfc3339(r), request_id(r))),
        AccessRequestSort::State => Ok(|r| format!("{}/{}", state_name(r), request_id(r))),
        AccessRequestSort::User => Err(Status::invalid_argument(format!(
            "unsupported access request sort index '{}'",
            sort.as_str_name()
        ))),
    }
}

/// A new revision for a changed request, as Teleport's backend gives one on every write.
fn touch(request: &mut AccessRequestV3) {
    if let Some(meta) = request.metadata.as_mut() {
        meta.revision = uuid::Uuid::new_v4().to_string();
    }
}

fn state_name(request: &AccessRequestV3) -> &'static str {
    let state = request.spec.as_ref().map_or(0, |s| s.state);
    RequestState::try_from(state)
        .unwrap_or(RequestState::None)
        .as_str_name()
}

/// Creation time at second precision, as the index key of Teleport's access-request cache.
fn created_rfc3339(request: &AccessRequestV3) -> String {
    let created = request
        .spec
        .as_ref()
        .and_then(|s| s.created)
        .unwrap_or(GO_ZERO_TIME);
    OffsetDateTime::from_unix_timestamp(created.seconds)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn label_values(map: HashMap<String, Vec<String>>) -> LabelValues {
    LabelValues {
        values: map
            .into_iter()
            .map(|(k, values)| (k, StringValues { values }))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with_reviews(
        approve: u32,
        deny: u32,
        reviews: &[(RequestState, &str)],
    ) -> AccessRequestSpecV3 {
        let mut spec = new_request(
            "r".into(),
            AccessRequestSpecV3 {
                roles: vec!["editor".into(), "auditor".into()],
                ..AccessRequestSpecV3::default()
            },
            (approve, deny),
        )
        .spec
        .unwrap_or_default();
        spec.reviews = reviews
            .iter()
            .map(|(state, reason)| AccessReview {
                proposed_state: (*state).into(),
                reason: (*reason).into(),
                threshold_indexes: vec![0],
                ..AccessReview::default()
            })
            .collect();
        spec
    }

    #[test]
    fn resolution_waits_for_the_approve_count_and_takes_the_last_reason() {
        let one = spec_with_reviews(2, 2, &[(RequestState::Approved, "first")]);
        assert_eq!(review_resolution(&one), None);
        let two = spec_with_reviews(
            2,
            2,
            &[(RequestState::Approved, "a"), (RequestState::Approved, "b")],
        );
        assert_eq!(
            review_resolution(&two),
            Some((RequestState::Approved, "b".into()))
        );
    }

    #[test]
    fn one_denial_reaching_the_deny_count_denies() {
        let spec = spec_with_reviews(
            2,
            1,
            &[(RequestState::Approved, "ok"), (RequestState::Denied, "no")],
        );
        assert_eq!(
            review_resolution(&spec),
            Some((RequestState::Denied, "no".into()))
        );
    }
}
