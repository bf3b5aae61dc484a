//! Reviews submitted in Teleport become comments on the issue, once each and in order.

use std::collections::HashSet;

use teleport_proto::types::AccessRequestV3;

use super::Reconciler;
use super::lease::LeaseEnd;
use crate::jira::render;
use crate::jira::types::Issue;
use crate::plugin_data::PluginData;
use crate::sync::error::StepError;

impl Reconciler {
    /// Posts one comment per review not yet commented, in order, then records the count.
    pub(super) async fn comment_reviews(
        &self,
        id: &str,
        request: &AccessRequestV3,
        data: PluginData,
    ) -> Result<PluginData, StepError> {
        let reviews = request
            .spec
            .as_ref()
            .map(|s| s.reviews.clone())
            .unwrap_or_default();
        let count = reviews.len();
        if data.reviews_count >= count || data.issue.is_none() {
            return Ok(data);
        }
        let done = self
            .with_lease(
                id,
                Some(&data),
                LeaseEnd::Release,
                |current| {
                    (current.issue.is_some() && current.reviews_count < count)
                        .then(|| current.clone())
                },
                |leased, _| async move {
                    let Some(issue) = leased.issue.clone() else {
                        return Ok(leased);
                    };
                    // A step that died after commenting must not comment twice.
                    let existing = self.comment_bodies(&issue.id).await?;
                    for review in &reviews[leased.reviews_count..] {
                        let body = render::review_comment(review);
                        if !existing.contains(&body) {
                            self.jira.add_comment(&issue.id, &body).await?;
                        }
                    }
                    self.record_mark(
                        id,
                        leased,
                        |stored| stored.reviews_count >= count,
                        |next| next.reviews_count = count,
                    )
                    .await
                },
            )
            .await?;
        self.after_leased(id, done, data).await
    }

    pub(super) async fn comment_bodies(
        &self,
        issue_id: &str,
    ) -> Result<HashSet<String>, StepError> {
        let mut bodies = HashSet::new();
        self.jira
            .visit_comments_newest_first(issue_id, |comment| {
                bodies.insert(comment.body.clone());
                true
            })
            .await?;
        Ok(bodies)
    }

    /// The comment bodies of an issue just read: those it embeds, unless it has more.
    pub(super) async fn comment_bodies_on(
        &self,
        issue: &Issue,
    ) -> Result<HashSet<String>, StepError> {
        match issue.all_comments() {
            Some(comments) => Ok(comments.iter().map(|c| c.body.clone()).collect()),
            None => self.comment_bodies(&issue.id).await,
        }
    }
}
