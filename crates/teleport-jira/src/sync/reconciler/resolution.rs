//! The last phase: Teleport's resolution, recorded once across replicas, then mirrored on the issue
//! (the resolution comment, then the transition). Teleport's state wins over what the card shows.

use std::collections::HashSet;

use super::Reconciler;
use super::lease::LeaseEnd;
use crate::config::StatusNames;
use crate::jira::render;
use crate::jira::same_name;
use crate::jira::types::Issue;
use crate::plugin_data::{PluginData, Resolution};
use crate::sync::error::StepError;

/// The status an issue takes for a resolution.
pub(super) fn status_for(statuses: &StatusNames, resolution: &Resolution) -> String {
    match resolution {
        Resolution::Approved => statuses.approved.clone(),
        Resolution::Denied => statuses.denied.clone(),
        Resolution::Expired => statuses.expired.clone(),
        Resolution::Promoted => statuses.promoted.clone(),
        Resolution::Other(tag) => tag.clone(),
    }
}

/// The resolution comment to post, and the Go plugin's text it starts with.
#[derive(Debug)]
pub(super) struct ResolutionComment {
    go_text: String,
    body: String,
}

impl ResolutionComment {
    /// Whether `bodies` hold it already: its exact body, or, when it adds to the Go plugin's text
    /// (the review trail, a mention), any comment starting with that text. A mention that reads
    /// differently now (a trait changed, a lookup failed or now succeeds) must not post the
    /// resolution twice. The Go plugin's text alone counts only as itself, as it always has.
    fn is_among(&self, bodies: &HashSet<String>) -> bool {
        bodies.contains(&self.body)
            || (self.body != self.go_text && bodies.iter().any(|b| b.starts_with(&self.go_text)))
    }
}

impl Reconciler {
    /// Records the resolution (once, across replicas) and brings the issue to it: the resolution
    /// comment, then the transition. Teleport's state wins over what the card shows.
    pub(super) async fn resolve(
        &self,
        id: &str,
        data: PluginData,
        resolution: Resolution,
        reason: &str,
    ) -> Result<(), StepError> {
        if let (Some(issue_ref), Some(recorded)) = (&data.issue, &data.resolution) {
            // Already recorded: nothing to write if the issue shows it.
            let issue = self.jira.issue(&issue_ref.id).await?;
            let comment = self.resolution_comment(id, &data, recorded).await?;
            let target = status_for(&self.settings.statuses, recorded);
            if same_name(issue.status_name(), &target)
                && comment.is_among(&self.comment_bodies_on(&issue).await?)
            {
                self.write_audit_line(id, &data).await?;
                self.settle(id);
                return Ok(());
            }
        }
        let finished = self
            .with_lease(
                id,
                Some(&data),
                LeaseEnd::Release,
                |current| {
                    current.issue.as_ref()?;
                    let mut next = current.clone();
                    if next.resolution.is_none() {
                        next.resolution = Some(resolution.clone());
                        next.resolve_reason = reason.to_owned();
                    }
                    Some(next)
                },
                |leased, _| self.mirror_resolution(id, leased, None),
            )
            .await?;
        if finished.is_some() {
            self.audit_just_resolved(id, &data).await?;
            self.settle(id);
        }
        Ok(())
    }

    /// Under the lease: the resolution comment unless present, then the transition unless done.
    /// `read` is the issue as this step read it since its last write to it, if it did.
    pub(super) async fn mirror_resolution(
        &self,
        id: &str,
        leased: PluginData,
        read: Option<&Issue>,
    ) -> Result<(), StepError> {
        let (Some(issue_ref), Some(recorded)) = (leased.issue.clone(), leased.resolution.clone())
        else {
            return Ok(());
        };
        let target = status_for(&self.settings.statuses, &recorded);
        let fetched;
        let issue = match read.filter(|issue| issue.id == issue_ref.id) {
            Some(issue) => issue,
            None => {
                fetched = self.jira.issue(&issue_ref.id).await?;
                &fetched
            }
        };
        let comment = self.resolution_comment(id, &leased, &recorded).await?;
        if !comment.is_among(&self.comment_bodies_on(issue).await?) {
            self.jira.add_comment(&issue.id, &comment.body).await?;
        }
        if !same_name(issue.status_name(), &target) {
            match self.move_issue(issue, &target).await {
                Ok(()) => {
                    tracing::debug!(target_status = %target, "Successfully moved the issue to the target status");
                }
                // Many workflows have no Promoted status (the Go plugin's setup guide names only
                // four); retrying could never succeed, and the comment already tells the story.
                Err(StepError::Workflow(why)) if recorded == Resolution::Promoted => {
                    tracing::warn!(
                        reason = %why,
                        "The workflow has no status for promoted requests; the card keeps its status (map one with [jira.statuses] promoted)"
                    );
                }
                Err(err) => return Err(err),
            }
        }
        tracing::info!(
            resolution = recorded.tag(),
            "Successfully resolved the issue"
        );
        Ok(())
    }

    /// The resolution comment: the Go plugin's text, then every review with `[audit]
    /// trail_in_ticket`, then a mention of the requester with `[jira.people]
    /// mention_on_resolution` (when they have a Jira identity). With neither, exactly the Go
    /// plugin's text, at no extra call.
    async fn resolution_comment(
        &self,
        id: &str,
        data: &PluginData,
        recorded: &Resolution,
    ) -> Result<ResolutionComment, StepError> {
        let go_text = render::resolution_comment(recorded.tag(), &data.resolve_reason);
        let mut comment = go_text.clone();
        // A request Teleport no longer has (it expired) has no reviews to list: the trail is
        // left out rather than claiming there were none.
        if self.settings.audit.trail_in_ticket
            && let Some(spec) = self.request(id).await?.and_then(|request| request.spec)
        {
            comment.push_str(&render::review_trail(&spec.reviews));
        }
        if self.settings.people.mention_on_resolution {
            // The mention is a courtesy: a look-up that fails now never holds up the resolution.
            match self.requester_mention(data).await {
                Ok(Some(mention)) => {
                    comment.push('\n');
                    comment.push_str(&mention);
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "Cannot name the requester in the resolution comment now; posting it without the mention")
                }
            }
        }
        Ok(ResolutionComment {
            go_text,
            body: comment,
        })
    }

    /// The requester's mention in wiki markup, when they have a Jira identity.
    async fn requester_mention(&self, data: &PluginData) -> Result<Option<String>, StepError> {
        let project = self.placement(Some(data)).project;
        let Some(identity) = self.jira_identity(&data.user, &project).await? else {
            return Ok(None);
        };
        Ok(Some(self.site().await?.mention(&identity)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(go_text: &str, body: &str) -> ResolutionComment {
        ResolutionComment {
            go_text: go_text.into(),
            body: body.into(),
        }
    }

    fn bodies(texts: &[&str]) -> HashSet<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn the_go_plugins_text_alone_counts_only_as_itself() {
        let go = "Access request has been expired\n";
        let plain = comment(go, go);
        assert!(plain.is_among(&bodies(&[go])));
        assert!(!plain.is_among(&bodies(&["Access request has been expired\nReason: x"])));
    }

    #[test]
    fn a_mention_that_changed_since_the_post_does_not_post_again() {
        let go = "Access request has been approved\nReason: ok";
        let now = comment(
            go,
            "Access request has been approved\nReason: ok\n[~accountid:new]",
        );
        let posted = "Access request has been approved\nReason: ok\n[~accountid:old]";
        assert!(now.is_among(&bodies(&[posted])));
        // Posted while the requester had no Jira account: no mention then, none added now.
        assert!(now.is_among(&bodies(&[go])));
        let denied = "Access request has been denied\nReason: ok\n[~x]";
        assert!(!now.is_among(&bodies(&[denied])));
    }
}
