//! After the issue exists: the requester and the suggested reviewers go on the ticket as
//! `[jira.people]` asks (watchers, the reporter, one comment mentioning the reviewers), so that
//! Jira's own notifications reach them. Each is a call of its own after creation, so no refusal
//! stops or repeats the creation; that they were added is recorded in plugin data (`people`), so
//! neither a restart nor another replica adds them again. A refusal of a whole part (watching
//! turned off on the site, no Manage watchers or Modify reporter permission) is warned about once
//! and switches that part off until restart; a person Jira will not take is left out.

use std::sync::atomic::{AtomicBool, Ordering};

use teleport_proto::types::AccessRequestV3;
use tokio::sync::OnceCell;

use super::Reconciler;
use super::lease::LeaseEnd;
use crate::config::{RequesterAs, ReviewersAs};
use crate::jira::JiraError;
use crate::jira::site::Site;
use crate::plugin_data::{IssueRef, PluginData};
use crate::sync::error::StepError;
use crate::sync::people::{Lookup, Resolved};

/// How the site names people (asked once), and the parts of `[jira.people]` Jira refused.
#[derive(Default)]
pub(super) struct PeopleOnTicket {
    site: OnceCell<Site>,
    watching_off: AtomicBool,
    reporter_off: AtomicBool,
}

/// How the comment mentioning the suggested reviewers starts.
const SUGGESTED_REVIEWERS: &str = "Suggested reviewers:";

/// A part of `[jira.people]` Jira may refuse as a whole.
#[derive(Clone, Copy, Debug)]
enum Part {
    Watchers,
    Reporter,
}

impl PeopleOnTicket {
    fn is_off(&self, part: Part) -> bool {
        self.flag(part).load(Ordering::Relaxed)
    }

    fn flag(&self, part: Part) -> &AtomicBool {
        match part {
            Part::Watchers => &self.watching_off,
            Part::Reporter => &self.reporter_off,
        }
    }
}

impl Reconciler {
    /// Puts the request's people on its issue once, under its lease, and records that it did.
    pub(super) async fn put_people_on(
        &self,
        id: &str,
        request: &AccessRequestV3,
        data: PluginData,
    ) -> Result<PluginData, StepError> {
        let people = &self.settings.people;
        let wanted = people.requester != RequesterAs::None
            || people.suggested_reviewers != ReviewersAs::None;
        if !wanted || data.people_added || data.issue.is_none() {
            return Ok(data);
        }
        let done = self
            .with_lease(
                id,
                Some(&data),
                LeaseEnd::Release,
                |current| {
                    (current.issue.is_some() && !current.people_added).then(|| current.clone())
                },
                |leased, _| async move {
                    let Some(issue) = leased.issue.clone() else {
                        return Ok(leased);
                    };
                    let project = self.placement(Some(&leased)).project;
                    self.add_requester(&issue, &project, request).await?;
                    self.add_suggested_reviewers(&issue, &project, request)
                        .await?;
                    self.record_mark(
                        id,
                        leased,
                        |stored| stored.people_added,
                        |next| next.people_added = true,
                    )
                    .await
                },
            )
            .await?;
        self.after_leased(id, done, data).await
    }

    async fn add_requester(
        &self,
        issue: &IssueRef,
        project: &str,
        request: &AccessRequestV3,
    ) -> Result<(), StepError> {
        let part = match self.settings.people.requester {
            RequesterAs::None => return Ok(()),
            RequesterAs::Watcher => Part::Watchers,
            RequesterAs::Reporter => Part::Reporter,
        };
        if self.on_ticket.is_off(part) {
            return Ok(());
        }
        let user = request.spec.as_ref().map_or("", |s| s.user.as_str());
        let Some(identity) = self.jira_identity(user, project).await? else {
            return Ok(());
        };
        let added = match part {
            Part::Watchers => self.jira.add_watcher(&issue.id, &identity).await,
            Part::Reporter => {
                let reporter = self.site().await?.user_field(&identity);
                self.jira.set_reporter(&issue.id, reporter).await
            }
        };
        match added {
            Ok(()) => {
                tracing::info!(user, part = ?part, "Put the requester on the issue");
                self.metrics.person("added");
                Ok(())
            }
            Err(err) => self.refused(err, part, user),
        }
    }

    async fn add_suggested_reviewers(
        &self,
        issue: &IssueRef,
        project: &str,
        request: &AccessRequestV3,
    ) -> Result<(), StepError> {
        let reviewers = suggested_reviewers(request);
        match self.settings.people.suggested_reviewers {
            ReviewersAs::None => Ok(()),
            ReviewersAs::Watcher => {
                for reviewer in reviewers {
                    if self.on_ticket.is_off(Part::Watchers) {
                        break;
                    }
                    let Some(identity) = self.jira_identity(reviewer, project).await? else {
                        continue;
                    };
                    match self.jira.add_watcher(&issue.id, &identity).await {
                        Ok(()) => self.metrics.person("added"),
                        Err(err) => self.refused(err, Part::Watchers, reviewer)?,
                    }
                }
                Ok(())
            }
            ReviewersAs::Mention => {
                let mentions = self.mentions_of(reviewers, project).await?;
                if mentions.is_empty() {
                    return Ok(());
                }
                let body = format!("{SUGGESTED_REVIEWERS} {}", mentions.join(", "));
                // Posted by an earlier holder that stopped before recording it (perhaps finding
                // other people then): not posted again.
                let posted = self.comment_bodies(&issue.id).await?;
                if !posted.iter().any(|b| b.starts_with(SUGGESTED_REVIEWERS)) {
                    self.jira.add_comment(&issue.id, &body).await?;
                    for _ in &mentions {
                        self.metrics.person("added");
                    }
                }
                Ok(())
            }
        }
    }

    /// Mentions of those of `users` who have a Jira identity, in order.
    pub(super) async fn mentions_of(
        &self,
        users: &[String],
        project: &str,
    ) -> Result<Vec<String>, StepError> {
        let mut mentions = Vec::new();
        for user in users {
            if let Some(identity) = self.jira_identity(user, project).await? {
                mentions.push(self.site().await?.mention(&identity));
            }
        }
        Ok(mentions)
    }

    /// The Jira identity of Teleport user `user`, `None` (with the reason at debug) when it has
    /// none.
    pub(super) async fn jira_identity(
        &self,
        user: &str,
        project: &str,
    ) -> Result<Option<String>, StepError> {
        if user.is_empty() {
            return Ok(None);
        }
        let people = &self.settings.people;
        let how = Lookup {
            trait_name: &people.account_id_trait,
            email_lookup: people.email_lookup,
            project: Some(project),
        };
        match self.people.jira_identity(user, &how).await? {
            Resolved::Found(identity) => Ok(Some(identity)),
            Resolved::Unresolved(why) => {
                self.metrics.person("unresolved");
                tracing::debug!(user, reason = %why, "No Jira user for this Teleport user; left off the issue");
                Ok(None)
            }
        }
    }

    /// How this Jira names people: asked once (`GET myself`), when first needed.
    pub(super) async fn site(&self) -> Result<Site, StepError> {
        let site = self
            .on_ticket
            .site
            .get_or_try_init(|| async {
                let myself = self.jira.myself_user().await?;
                Ok::<_, StepError>(Site::of(&myself))
            })
            .await?;
        Ok(*site)
    }

    /// A refused call for `who`: a passing failure fails the step (tried again later); a refusal
    /// of the whole part switches it off, with one warning; any other leaves that person out.
    fn refused(&self, err: JiraError, part: Part, who: &str) -> Result<(), StepError> {
        if err.is_transient() {
            return Err(err.into());
        }
        self.metrics.person("refused");
        if refuses_the_part(&err) {
            if !self.on_ticket.flag(part).swap(true, Ordering::Relaxed) {
                tracing::warn!(error = %err, part = ?part, "Jira refused to put people on issues; this part of [jira.people] is off until restart (check that watching is allowed and the plugin's Jira user has the Manage watchers and Modify reporter permissions: teleport-jira check)");
            }
        } else {
            tracing::warn!(error = %err, user = who, part = ?part, "Jira refused this person on the issue; left out");
        }
        Ok(())
    }
}

/// Whether Jira's refusal is about the part rather than one person: no permission (401, 403),
/// watching turned off on the site, or a reporter field the plugin may not set.
fn refuses_the_part(err: &JiraError) -> bool {
    match err {
        JiraError::Status {
            status: 401 | 403, ..
        } => true,
        JiraError::Status { details, .. } => {
            let details = details.to_lowercase();
            details.contains("watching") || details.contains("cannot be set")
        }
        _ => false,
    }
}

/// The request's suggested reviewers, as Teleport lists them.
pub(super) fn suggested_reviewers(request: &AccessRequestV3) -> &[String] {
    request
        .spec
        .as_ref()
        .map_or(&[], |spec| spec.suggested_reviewers.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, details: &str) -> JiraError {
        JiraError::Status {
            status,
            details: details.to_owned(),
            retry_after: None,
        }
    }

    #[test]
    fn permission_and_disabled_watching_refuse_the_whole_part() {
        assert!(refuses_the_part(&status(403, "no permission")));
        assert!(refuses_the_part(&status(404, "Watching is disabled.")));
        assert!(refuses_the_part(&status(
            400,
            "reporter: Field 'reporter' cannot be set. It is not on the appropriate screen, or unknown."
        )));
    }

    #[test]
    fn an_unknown_user_refuses_only_that_person() {
        assert!(!refuses_the_part(&status(
            400,
            "The user \"x\" does not exist or cannot be added."
        )));
        assert!(!refuses_the_part(&status(
            400,
            "reporter: Specified user does not exist or you do not have required permissions"
        )));
    }
}
