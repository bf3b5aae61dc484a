//! A reminder on a request left pending: once it is older than `[jira.people] remind_after`, one
//! comment mentions its suggested reviewers. That it was posted is recorded in plugin data
//! (`reminded`), so it comes once across restarts and replicas; only pending requests get here, so
//! none comes after the resolution.

use std::time::Duration;

use teleport_proto::types::AccessRequestV3;
use time::OffsetDateTime;

use super::Reconciler;
use super::lease::LeaseEnd;
use super::people_on_ticket::suggested_reviewers;
use crate::jira::render::timestamp;
use crate::plugin_data::PluginData;
use crate::sync::error::StepError;

impl Reconciler {
    /// Posts the reminder when the request has waited long enough and has had none.
    pub(super) async fn remind(
        &self,
        id: &str,
        request: &AccessRequestV3,
        data: PluginData,
    ) -> Result<PluginData, StepError> {
        let Some(after) = self.settings.people.remind_after else {
            return Ok(data);
        };
        if data.reminded
            || data.issue.is_none()
            || !waited(request, after, OffsetDateTime::now_utc())
        {
            return Ok(data);
        }
        let done = self
            .with_lease(
                id,
                Some(&data),
                LeaseEnd::Release,
                |current| {
                    let due = current.issue.is_some()
                        && current.resolution.is_none()
                        && !current.reminded;
                    due.then(|| current.clone())
                },
                |leased, _| async move {
                    let Some(issue) = leased.issue.clone() else {
                        return Ok(leased);
                    };
                    let project = self.placement(Some(&leased)).project;
                    let mentions = self
                        .mentions_of(suggested_reviewers(request), &project)
                        .await?;
                    let body = reminder_text(after, &mentions);
                    // Posted by an earlier holder that stopped before recording it (perhaps
                    // mentioning other people then): not posted again.
                    let posted = self.comment_bodies(&issue.id).await?;
                    if !posted.iter().any(|b| b.starts_with(REMINDER_START)) {
                        self.jira.add_comment(&issue.id, &body).await?;
                        self.metrics.reminders.inc();
                        tracing::info!("Reminded the reviewers of the pending request");
                    }
                    self.record_mark(
                        id,
                        leased,
                        |stored| stored.reminded,
                        |next| next.reminded = true,
                    )
                    .await
                },
            )
            .await?;
        self.after_leased(id, done, data).await
    }
}

/// Whether the request was created at least `after` before `now` (a request without a creation
/// time is never reminded: its wait is unknown).
fn waited(request: &AccessRequestV3, after: Duration, now: OffsetDateTime) -> bool {
    let Some(created) = request
        .spec
        .as_ref()
        .and_then(|spec| spec.created.as_ref())
        .and_then(timestamp)
    else {
        return false;
    };
    now - created >= after
}

/// The reminder's text: how long the request has waited, and who is asked to look.
fn reminder_text(after: Duration, mentions: &[String]) -> String {
    let waited = humantime::format_duration(after);
    match mentions {
        [] => format!("{REMINDER_START} for more than {waited}."),
        _ => format!(
            "{REMINDER_START} for more than {waited}: {}",
            mentions.join(", ")
        ),
    }
}

/// How every reminder starts.
const REMINDER_START: &str = "This request has been waiting for a review";

#[cfg(test)]
mod tests {
    use teleport_proto::types::AccessRequestSpecV3;

    use super::*;

    fn created_at(seconds: i64) -> AccessRequestV3 {
        AccessRequestV3 {
            spec: Some(AccessRequestSpecV3 {
                created: Some(prost_types::Timestamp { seconds, nanos: 0 }),
                ..AccessRequestSpecV3::default()
            }),
            ..AccessRequestV3::default()
        }
    }

    #[test]
    fn a_request_is_due_once_it_has_waited_remind_after() {
        let now = OffsetDateTime::from_unix_timestamp(10_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let four_hours = Duration::from_secs(4 * 3600);
        assert!(waited(&created_at(10_000 - 4 * 3600), four_hours, now));
        assert!(!waited(&created_at(10_000 - 4 * 3600 + 1), four_hours, now));
        assert!(!waited(&AccessRequestV3::default(), four_hours, now));
    }

    #[test]
    fn the_reminder_names_the_wait_and_mentions_the_reviewers() {
        let after = Duration::from_secs(4 * 3600);
        assert_eq!(
            reminder_text(after, &["[~accountid:a]".into(), "[~bob]".into()]),
            "This request has been waiting for a review for more than 4h: [~accountid:a], [~bob]"
        );
        assert_eq!(
            reminder_text(after, &[]),
            "This request has been waiting for a review for more than 4h."
        );
    }
}
