//! Compare-and-swap on a request's plugin data, and the lease built on it.
//!
//! Teleport's `UpdatePluginData` applies `Set` only if every key of `Expect` holds the expected
//! value (`""` = absent). Both maps always carry every key either side has, so a key that one side
//! lacks is compared (or deleted) explicitly.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::error::StepError;
use super::lease_clock::LeaseSightings;
use crate::backoff::Backoff;
use crate::plugin_data::{LEASE_KEY, Lease, PLUGIN_NAME, PluginData};
use crate::teleport::{TeleportClient, TeleportError};

/// Compare-and-swap rounds lost in a row before the step gives up and is retried later.
const MAX_ROUNDS: usize = 32;

/// What a compare-and-swap loop saw and left.
pub struct Change {
    /// The data as read in the round that ended the loop.
    pub before: Option<PluginData>,
    /// The data stored when the loop ended (what was written, or `before` when nothing was).
    pub after: Option<PluginData>,
    pub wrote: bool,
}

pub struct PluginDataStore {
    teleport: Arc<TeleportClient>,
    /// This process's lease owner id.
    pub owner: String,
    pub lease_ttl: Duration,
    sightings: LeaseSightings,
}

impl PluginDataStore {
    pub fn new(teleport: Arc<TeleportClient>, lease_ttl: Duration) -> Self {
        Self {
            teleport,
            owner: hex::encode(rand::random::<[u8; 8]>()),
            lease_ttl,
            sightings: LeaseSightings::default(),
        }
    }

    pub async fn load(&self, id: &str) -> Result<Option<PluginData>, StepError> {
        Ok(self
            .teleport
            .plugin_data(id, PLUGIN_NAME)
            .await?
            .map(|data| PluginData::decode(&data)))
    }

    /// `change` sees the stored data and returns what to store, or `None` to leave it; it may run
    /// several times, so it must not have side effects.
    pub async fn modify(
        &self,
        id: &str,
        change: impl Fn(Option<&PluginData>) -> Option<PluginData>,
    ) -> Result<Change, StepError> {
        self.modify_from(id, None, change).await
    }

    /// [`Self::modify`], starting from `guess` (what the caller last saw stored) instead of a read:
    /// compare-and-swap checks the guess, so a right one saves a round trip and a stale one only
    /// costs the read that would have happened anyway. A guess is never trusted to mean "nothing
    /// to do"; that is confirmed by a read.
    ///
    /// Boxed: a compare-and-swap takes a Teleport round trip, but its room (2.7 KB) would
    /// otherwise stay inlined in every phase that calls it, through that phase's Jira calls too.
    pub fn modify_from(
        &self,
        id: &str,
        guess: Option<Option<PluginData>>,
        change: impl Fn(Option<&PluginData>) -> Option<PluginData>,
    ) -> Pin<Box<impl Future<Output = Result<Change, StepError>>>> {
        Box::pin(self.compare_and_swap(id, guess, change))
    }

    async fn compare_and_swap(
        &self,
        id: &str,
        guess: Option<Option<PluginData>>,
        change: impl Fn(Option<&PluginData>) -> Option<PluginData>,
    ) -> Result<Change, StepError> {
        let mut guess = guess;
        let mut backoff = Backoff::compare_and_swap();
        for _ in 0..MAX_ROUNDS {
            let (before, guessed) = match guess.take() {
                Some(guessed) => (guessed, true),
                None => (self.load(id).await?, false),
            };
            let Some(next) = change(before.as_ref()) else {
                if guessed {
                    continue;
                }
                let after = before.clone();
                return Ok(Change {
                    before,
                    after,
                    wrote: false,
                });
            };
            let mut expect = before
                .as_ref()
                .map_or_else(PluginData::absent, PluginData::encode);
            // The lease is always compared, so a lease another process took since the data was
            // seen (or guessed) is never written over.
            expect.entry(LEASE_KEY.to_owned()).or_default();
            let mut set = next.encode();
            pad_with_absent(&mut expect, &set);
            pad_with_absent(&mut set, &expect);
            match self
                .teleport
                .update_plugin_data(id, PLUGIN_NAME, set, expect)
                .await
            {
                Ok(()) => {
                    return Ok(Change {
                        before,
                        after: Some(next),
                        wrote: true,
                    });
                }
                // A stale guess is not contention: read and try again at once.
                Err(TeleportError::CompareFailed(_)) if guessed => {}
                Err(TeleportError::CompareFailed(_)) => {
                    tokio::time::sleep(backoff.next_delay()).await
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(TeleportError::CompareFailed(format!("plugin data of {id} kept changing")).into())
    }

    /// A lease for this process, noting the highest issue number known now.
    pub fn new_lease(&self, after_issue: Option<u64>) -> Lease {
        Lease {
            owner: self.owner.clone(),
            since: now(),
            after_issue,
        }
    }

    /// Whether request `id`'s `data` is leased by another process that may still be working: its
    /// holder has not given it up (`since` 0), and this process has not yet seen it unchanged for
    /// a full time-to-live on its own clock (see [`LeaseSightings`]).
    pub fn leased_by_other(&self, id: &str, data: Option<&PluginData>) -> bool {
        let foreign = data
            .and_then(|d| d.lease.as_ref())
            .filter(|lease| lease.owner != self.owner && lease.since != 0);
        match foreign {
            Some(lease) => !self.sightings.unchanged_for(id, lease, self.lease_ttl),
            None => {
                self.sightings.forget(id);
                false
            }
        }
    }

    /// Whether `data` holds this process's lease.
    pub fn holds_lease(&self, data: Option<&PluginData>) -> bool {
        data.and_then(|d| d.lease.as_ref())
            .is_some_and(|lease| lease.owner == self.owner)
    }

    /// Renews this process's lease every third of its time-to-live, for as long as it is polled.
    /// `written` is the data as this process stored it with the lease: each renewal starts from
    /// what was last stored instead of reading it (work that wrote meanwhile only costs the read).
    pub async fn keep_renewed(
        &self,
        id: &str,
        written: Box<PluginData>,
    ) -> std::convert::Infallible {
        // In a box, not inline: this future sleeps beside every step's work while it runs.
        let mut last_stored = Some(written);
        loop {
            tokio::time::sleep(self.lease_ttl / 3).await;
            let guess = last_stored.take().map(|data| Some(*data));
            let renewed = self
                .modify_from(id, guess, |current| {
                    let current = current.filter(|c| self.holds_lease(Some(c)))?;
                    let lease = current.lease.clone().map(|lease| Lease {
                        since: now(),
                        ..lease
                    });
                    Some(PluginData {
                        lease,
                        ..current.clone()
                    })
                })
                .await;
            match renewed {
                Ok(change) if change.wrote => last_stored = change.after.map(Box::new),
                Ok(_) => tracing::warn!(
                    "Lost the request's lease to another process while working on it"
                ),
                Err(err) => tracing::warn!(error = %err, "Failed to renew the request's lease"),
            }
        }
    }

    /// Makes this process's lease expired at once but keeps it (and its issue-number mark), for
    /// work that may have had an effect Jira did not confirm. Best effort.
    pub async fn expire(&self, id: &str) {
        let expired = self
            .modify(id, |current| {
                let current = current.filter(|c| self.holds_lease(Some(c)))?;
                let lease = current
                    .lease
                    .clone()
                    .map(|lease| Lease { since: 0, ..lease });
                Some(PluginData {
                    lease,
                    ..current.clone()
                })
            })
            .await;
        if let Err(err) = expired {
            tracing::warn!(error = %err, "Failed to mark the request's lease expired; it will expire");
        }
    }

    /// Clears the request's record while this process holds its lease, as if the plugin had
    /// never seen the request: for a creation Jira surely refused, so that the next step creates
    /// again at once instead of first looking for an issue that cannot exist.
    pub async fn forget(&self, id: &str) -> Result<(), StepError> {
        self.modify(id, |current| {
            let current = current.filter(|c| self.holds_lease(Some(c)) && c.issue.is_none())?;
            // Every key empty: Teleport deletes them, and with them the plugin's entry.
            (current != &PluginData::default()).then(PluginData::default)
        })
        .await
        .map(drop)
    }

    /// Gives the lease back, if this process still holds it; `last_written` is the data as this
    /// process last stored it, if known. Best effort: an unreleased lease simply expires.
    pub async fn release(&self, id: &str, last_written: Option<PluginData>) {
        let released = self
            .modify_from(id, last_written.map(Some), |current| {
                let current = current.filter(|c| self.holds_lease(Some(c)))?;
                Some(PluginData {
                    lease: None,
                    ..current.clone()
                })
            })
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %err, "Failed to release the request's lease; it will expire");
        }
    }
}

fn pad_with_absent(map: &mut HashMap<String, String>, other: &HashMap<String, String>) {
    for key in other.keys() {
        map.entry(key.clone()).or_default();
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
