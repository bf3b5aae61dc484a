//! The text the plugin writes into Jira: issue summary and description, review comments and
//! resolution comments, in the Go plugin's formats (Jira wiki markup), byte for byte for plain
//! input. User-supplied text is escaped ([`markup::escape`]); a description adds, after the Go
//! plugin's text, what an approver also needs: requested resources, the access expiry and the
//! suggested reviewers.

use std::fmt::Write;

use teleport_proto::types::{AccessRequestV3, AccessReview, RequestState, ResourceId};
use time::OffsetDateTime;

use super::markup::escape;

/// The Go plugin cuts the request reason in the description to this many bytes.
pub const REASON_LIMIT_BYTES: usize = 3000;
/// Jira refuses summaries of 255 characters or more.
const SUMMARY_LIMIT_BYTES: usize = 254;

/// What a ticket shows about an access request.
#[derive(Clone, Debug)]
pub struct RequestView<'a> {
    pub id: &'a str,
    pub user: &'a str,
    pub roles: &'a [String],
    pub reason: &'a str,
    pub created: Option<OffsetDateTime>,
    /// `https://<proxy>/web/requests/<id>`, when the proxy's public address is known.
    pub link: Option<String>,
    /// Resources of a resource access request.
    pub resources: &'a [ResourceId],
    /// When the access would end if granted.
    pub access_expires: Option<OffsetDateTime>,
    pub suggested_reviewers: &'a [String],
}

impl<'a> RequestView<'a> {
    pub fn of(request: &'a AccessRequestV3, link: Option<String>) -> Self {
        let id = request
            .metadata
            .as_ref()
            .map(|m| m.name.as_str())
            .unwrap_or_default();
        let spec = request.spec.as_ref();
        Self {
            id,
            user: spec.map(|s| s.user.as_str()).unwrap_or_default(),
            roles: spec.map(|s| s.roles.as_slice()).unwrap_or_default(),
            reason: spec.map(|s| s.request_reason.as_str()).unwrap_or_default(),
            created: spec.and_then(|s| s.created.as_ref()).and_then(timestamp),
            link,
            resources: spec
                .map(|s| s.requested_resource_i_ds.as_slice())
                .unwrap_or_default(),
            access_expires: spec.and_then(|s| s.expires.as_ref()).and_then(timestamp),
            suggested_reviewers: spec
                .map(|s| s.suggested_reviewers.as_slice())
                .unwrap_or_default(),
        }
    }
}

/// `<user> requested <role1>, <role2>`, or `<user> requested access to <N> roles` when that would
/// not fit Jira's summary limit.
pub fn summary(view: &RequestView<'_>) -> String {
    let full = format!("{} requested {}", view.user, view.roles.join(", "));
    if full.len() <= SUMMARY_LIMIT_BYTES {
        return full;
    }
    let short = format!(
        "{} requested access to {} roles",
        view.user,
        view.roles.len()
    );
    truncate_bytes(&short, SUMMARY_LIMIT_BYTES).to_owned()
}

/// The issue description, in the Go plugin's layout.
pub fn description(view: &RequestView<'_>) -> String {
    let mut text = String::new();
    let created = view.created.map(rfc822).unwrap_or_default();
    let _ = writeln!(
        text,
        "User *{}* requested an access on *{created}* with the following roles:",
        escape(view.user)
    );
    for role in view.roles {
        let _ = writeln!(text, "\n* {}", escape(role));
    }
    text.push('\n');
    if !view.reason.is_empty() {
        let _ = writeln!(
            text,
            "\nReason: *{}*",
            escape(truncate_bytes(view.reason, REASON_LIMIT_BYTES))
        );
    }
    text.push('\n');
    let _ = writeln!(text, "Request ID: *{}*", escape(view.id));
    let details = details(view);
    if let Some(link) = &view.link {
        let _ = write!(text, "To approve or deny the request, proceed to {link}");
        if !details.is_empty() {
            text.push('\n');
        }
    }
    text.push_str(&details);
    text
}

/// What the Go plugin's text leaves out, after it, so readers of that text still find it first.
fn details(view: &RequestView<'_>) -> String {
    let mut text = String::new();
    if !view.resources.is_empty() {
        text.push_str("\nRequested resources:\n");
        for resource in view.resources {
            let mut name = escape(&resource.name);
            if !resource.sub_resource_name.is_empty() {
                let _ = write!(name, "/{}", escape(&resource.sub_resource_name));
            }
            let _ = writeln!(
                text,
                "* {}: {name} (cluster {})",
                escape(&resource.kind),
                escape(&resource.cluster_name)
            );
        }
    }
    if let Some(expires) = view.access_expires {
        let _ = writeln!(text, "\nAccess until: *{}*", rfc822(expires));
    }
    if !view.suggested_reviewers.is_empty() {
        let reviewers: Vec<String> = view.suggested_reviewers.iter().map(|r| escape(r)).collect();
        let _ = writeln!(text, "\nSuggested reviewers: {}", reviewers.join(", "));
    }
    text
}

/// The comment posted for one review.
pub fn review_comment(review: &AccessReview) -> String {
    let created = review
        .created
        .as_ref()
        .and_then(timestamp)
        .map(rfc822)
        .unwrap_or_default();
    let state = RequestState::try_from(review.proposed_state)
        .unwrap_or(RequestState::None)
        .as_str_name();
    let mut text = format!(
        "*{}* reviewed the request at *{created}*.\nResolution: *{state}*.\n",
        escape(&review.author)
    );
    if !review.reason.is_empty() {
        let _ = write!(text, "Reason: {}.", escape(&review.reason));
    }
    text
}

/// The comment posted when the request is resolved; `tag` is `approved`, `denied`, `expired` or `promoted`.
pub fn resolution_comment(tag: &str, reason: &str) -> String {
    let mut text = format!("Access request has been {tag}\n");
    if !reason.is_empty() {
        let _ = write!(text, "Reason: {}", escape(reason));
    }
    text
}

/// The reviews of a request, one line each (author, decision, time, reason), for the resolution
/// comment of `[audit] trail_in_ticket`; starts on a line of its own after `comment`.
pub fn review_trail(reviews: &[AccessReview]) -> String {
    let mut text = String::from("\nReviews:");
    if reviews.is_empty() {
        text.push_str(" none.");
    }
    for review in reviews {
        let created = review
            .created
            .as_ref()
            .and_then(timestamp)
            .map(rfc822)
            .unwrap_or_default();
        let state = RequestState::try_from(review.proposed_state)
            .unwrap_or(RequestState::None)
            .as_str_name();
        let _ = write!(
            text,
            "\n* *{}*: *{state}* at *{created}*",
            escape(&review.author)
        );
        if !review.reason.is_empty() {
            let _ = write!(text, ". Reason: {}", escape(&review.reason));
        }
    }
    text
}

/// `https://<proxy public address>/web/requests/<id>`, as the Go plugin builds it.
pub fn request_link(proxy_public_addr: &str, id: &str) -> Option<String> {
    let addr = proxy_public_addr.trim();
    if addr.is_empty() {
        return None;
    }
    let base = if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_owned()
    } else {
        format!("https://{addr}")
    };
    let base = match base
        .strip_prefix("https://")
        .and_then(|rest| rest.strip_suffix(":443"))
    {
        Some(host) => format!("https://{host}"),
        None => base,
    };
    Some(format!("{}/web/requests/{id}", base.trim_end_matches('/')))
}

/// Go's `RFC822` layout `02 Jan 06 15:04 MST`; Teleport timestamps are UTC.
pub fn rfc822(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let month = &at.month().to_string()[..3];
    format!(
        "{:02} {month} {:02} {:02}:{:02} UTC",
        at.day(),
        at.year().rem_euclid(100),
        at.hour(),
        at.minute()
    )
}

/// A protobuf timestamp, or `None` for Teleport's "unset" (year 1) and out-of-range values.
pub fn timestamp(ts: &prost_types::Timestamp) -> Option<OffsetDateTime> {
    const UNSET_SECONDS: i64 = -62_135_596_800;
    if ts.seconds <= UNSET_SECONDS {
        return None;
    }
    OffsetDateTime::from_unix_timestamp(ts.seconds)
        .ok()
        .map(|at| at + time::Duration::nanoseconds(i64::from(ts.nanos)))
}

/// The longest prefix of `text` of at most `limit` bytes that ends on a character boundary.
fn truncate_bytes(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
