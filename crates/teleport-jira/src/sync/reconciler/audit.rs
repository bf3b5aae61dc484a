//! `[audit] jsonl_path`: a resolved request's line, once across restarts and replicas. Under the
//! request's lease, `audit = writing` is recorded, the line appended, then `audit = written`
//! recorded. A holder that finds `writing` (a process stopped between the append and the second
//! record, or failed to append) looks for the request's line in the file first, so a replay
//! appends no second one.

use teleport_proto::types::{AccessReview, RequestState};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Reconciler;
use super::lease::LeaseEnd;
use crate::jira::render::timestamp;
use crate::plugin_data::{AuditMark, PluginData, Resolution};
use crate::sync::audit_log::{AuditLine, AuditReview};
use crate::sync::error::StepError;

impl Reconciler {
    /// [`Self::write_audit_line`] right after this step recorded the resolution: the data is
    /// read again (only when there is an audit file) to see what the step wrote.
    pub(super) async fn audit_just_resolved(
        &self,
        id: &str,
        seen: &PluginData,
    ) -> Result<(), StepError> {
        if self.audit_log.is_none() {
            return Ok(());
        }
        let data = self.data.load(id).await?.unwrap_or_else(|| seen.clone());
        self.write_audit_line(id, &data).await
    }

    /// Appends the resolved request's line to the audit file unless its data says it is there.
    pub(super) async fn write_audit_line(
        &self,
        id: &str,
        data: &PluginData,
    ) -> Result<(), StepError> {
        let Some(log) = &self.audit_log else {
            return Ok(());
        };
        if data.audit == Some(AuditMark::Written) {
            return Ok(());
        }
        self.with_lease_tracked(
            id,
            Some(data),
            LeaseEnd::Release,
            |current| {
                let due = current.resolution.is_some() && current.audit != Some(AuditMark::Written);
                due.then(|| PluginData {
                    audit: Some(AuditMark::Writing),
                    ..current.clone()
                })
            },
            |leased, before| async move {
                let replay = before.is_some_and(|b| b.audit == Some(AuditMark::Writing));
                if replay && log.has_line_for(id).await? {
                    tracing::info!("The audit file already has this request's line");
                } else {
                    log.append(&self.audit_line(id, &leased).await?).await?;
                    self.metrics.audit_lines.inc();
                    tracing::info!("Wrote the request's line to the audit file");
                }
                let recorded = self
                    .data
                    .modify(id, |current| {
                        let current = current?;
                        (current.audit != Some(AuditMark::Written)).then(|| PluginData {
                            audit: Some(AuditMark::Written),
                            ..current.clone()
                        })
                    })
                    .await?;
                Ok(((), recorded.after.unwrap_or(leased)))
            },
        )
        .await?;
        Ok(())
    }

    /// The line: the request as recorded in its data, with its reviews when Teleport still has it.
    async fn audit_line(&self, id: &str, data: &PluginData) -> Result<AuditLine, StepError> {
        let reviews = self
            .request(id)
            .await?
            .and_then(|request| request.spec)
            .map(|spec| spec.reviews)
            .unwrap_or_default();
        let resolution = data.resolution.clone().unwrap_or(Resolution::Expired);
        let delegator = if data.decided_by.is_empty() {
            newest_author_proposing(&reviews, &resolution)
        } else {
            data.decided_by.clone()
        };
        Ok(AuditLine {
            request_id: id.to_owned(),
            user: data.user.clone(),
            roles: data.roles.clone(),
            reason: data.request_reason.clone(),
            created: data.created.map(rfc3339).unwrap_or_default(),
            reviews: reviews.iter().map(audit_review).collect(),
            resolution: resolution.tag().to_owned(),
            resolve_reason: data.resolve_reason.clone(),
            delegator,
            issue_key: data
                .issue
                .as_ref()
                .map(|i| i.key.clone())
                .unwrap_or_default(),
            resolved_at: rfc3339(OffsetDateTime::now_utc()),
        })
    }
}

/// The author of the newest review that proposed `resolution` (none for an expiry).
fn newest_author_proposing(reviews: &[AccessReview], resolution: &Resolution) -> String {
    let state = match resolution {
        Resolution::Approved => RequestState::Approved,
        Resolution::Denied => RequestState::Denied,
        _ => return String::new(),
    };
    reviews
        .iter()
        .rev()
        .find(|review| review.proposed_state == state as i32)
        .map(|review| review.author.clone())
        .unwrap_or_default()
}

fn audit_review(review: &AccessReview) -> AuditReview {
    AuditReview {
        author: review.author.clone(),
        state: RequestState::try_from(review.proposed_state)
            .unwrap_or(RequestState::None)
            .as_str_name()
            .to_owned(),
        reason: review.reason.clone(),
        created: review
            .created
            .as_ref()
            .and_then(timestamp)
            .map(rfc3339)
            .unwrap_or_default(),
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(author: &str, state: RequestState) -> AccessReview {
        AccessReview {
            author: author.into(),
            proposed_state: state as i32,
            ..AccessReview::default()
        }
    }

    #[test]
    fn the_delegator_is_the_newest_reviewer_proposing_the_resolution() {
        let reviews = [
            review("ann", RequestState::Approved),
            review("bob", RequestState::Denied),
            review("cid", RequestState::Approved),
        ];
        assert_eq!(
            newest_author_proposing(&reviews, &Resolution::Approved),
            "cid"
        );
        assert_eq!(
            newest_author_proposing(&reviews, &Resolution::Denied),
            "bob"
        );
        assert_eq!(newest_author_proposing(&reviews, &Resolution::Expired), "");
    }

    #[test]
    fn times_are_rfc3339_in_utc_to_the_second() {
        let at = OffsetDateTime::from_unix_timestamp(1_795_593_060)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            + time::Duration::milliseconds(250);
        assert_eq!(rfc3339(at), "2026-11-25T07:51:00Z");
    }
}
