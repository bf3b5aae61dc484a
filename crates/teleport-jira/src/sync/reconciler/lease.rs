//! The request's lease around Jira writes: taken with compare-and-swap together with the change
//! that starts the work, renewed while the work runs, released (or expired) after it.

use std::future::Future;

use super::Reconciler;
use crate::plugin_data::PluginData;
use crate::sync::error::StepError;

/// What happens to the lease when the work under it fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LeaseEnd {
    Release,
    /// Keep its record of the newest issue number, but let anyone take it over at once.
    ExpireOnFailure,
}

impl Reconciler {
    /// Runs `work` under the request's lease, taken together with `change`, and releases it after.
    /// `change` returns `None` when there is nothing to do; then `work` does not run. `seen` is the
    /// data as the step last read it, tried first instead of reading it again.
    pub(super) async fn with_lease<T, Fut>(
        &self,
        id: &str,
        seen: Option<&PluginData>,
        end: LeaseEnd,
        change: impl Fn(&PluginData) -> Option<PluginData>,
        work: impl FnOnce(PluginData, Option<PluginData>) -> Fut,
    ) -> Result<Option<T>, StepError>
    where
        Fut: Future<Output = Result<T, StepError>>,
    {
        self.with_lease_tracked(id, seen, end, change, |leased, before| {
            let written = leased.clone();
            async move { work(leased, before).await.map(|done| (done, written)) }
        })
        .await
    }

    /// [`Self::with_lease`] for work that writes the data again while it holds the lease: it
    /// returns what it wrote last, so the release compares against that instead of failing on a
    /// stale guess and reading again.
    pub(super) async fn with_lease_tracked<T, Fut>(
        &self,
        id: &str,
        seen: Option<&PluginData>,
        end: LeaseEnd,
        change: impl Fn(&PluginData) -> Option<PluginData>,
        work: impl FnOnce(PluginData, Option<PluginData>) -> Fut,
    ) -> Result<Option<T>, StepError>
    where
        Fut: Future<Output = Result<(T, PluginData), StepError>>,
    {
        let taken = self
            .data
            .modify_from(id, seen.cloned().map(Some), |current| {
                if self.data.leased_by_other(id, current) {
                    return None;
                }
                let current = current?;
                let latest = self.latest_issue(&self.placement(Some(current)).project);
                // An earlier holder's mark must survive a takeover, or an issue it created could
                // fall below the next holder's mark.
                let after_issue = match &current.lease {
                    Some(earlier) => earlier.after_issue.zip(latest).map(|(a, b)| a.min(b)),
                    None => latest,
                };
                let mut next = change(current)?;
                next.lease = Some(self.data.new_lease(after_issue));
                Some(next)
            })
            .await?;
        if !taken.wrote {
            return match taken.after {
                Some(current) if self.data.leased_by_other(id, Some(&current)) => {
                    Err(StepError::Busy)
                }
                _ => Ok(None),
            };
        }
        let Some(leased) = taken.after else {
            return Ok(None);
        };
        // A slow step keeps its lease alive; only a dead (or cut-off) holder lets it lapse.
        let taken_as = leased.clone();
        let result = tokio::select! {
            result = work(leased, taken.before) => result,
            never = self.data.keep_renewed(id, Box::new(taken_as.clone())) => match never {},
        };
        match result {
            Err(err) if end == LeaseEnd::ExpireOnFailure => {
                self.data.expire(id).await;
                Err(err)
            }
            Err(err) => {
                self.data.release(id, Some(taken_as)).await;
                Err(err)
            }
            Ok((done, written)) => {
                self.data.release(id, Some(written)).await;
                Ok(Some(done))
            }
        }
    }
}

impl Reconciler {
    /// Ends work done under the lease by recording `mark` on the stored data, unless `marked`
    /// says another process already did; returns the data stored then (`leased` when unchanged).
    pub(super) async fn record_mark(
        &self,
        id: &str,
        leased: PluginData,
        marked: impl Fn(&PluginData) -> bool,
        mark: impl Fn(&mut PluginData),
    ) -> Result<PluginData, StepError> {
        let recorded = self
            .data
            .modify(id, |stored| {
                let stored = stored.filter(|stored| !marked(stored))?;
                let mut next = stored.clone();
                mark(&mut next);
                Some(next)
            })
            .await?;
        Ok(recorded.after.unwrap_or(leased))
    }

    /// What a step goes on with after work under the lease: what the work left, or, when the
    /// lease was not to be had, what is stored now.
    pub(super) async fn after_leased(
        &self,
        id: &str,
        done: Option<PluginData>,
        data: PluginData,
    ) -> Result<PluginData, StepError> {
        match done {
            Some(data) => Ok(data),
            None => Ok(self.data.load(id).await?.unwrap_or(data)),
        }
    }
}
