//! Whether the mover of a card belongs to one of `[jira] approver_groups`. Memberships are read
//! from Jira and kept for a minute, so a burst of decisions by the same approvers costs one
//! lookup each; a lookup that fails refuses the decision (fail closed) rather than guessing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Reconciler;
use crate::jira::JiraError;
use crate::jira::types::User;
use crate::lock::lock;

/// How long a user's groups are trusted before they are read again.
const MEMBERSHIP_TTL: Duration = Duration::from_secs(60);
/// Users remembered; past this the memory is cleared (forgetting only costs a lookup).
const MAX_REMEMBERED: usize = 10_000;

/// Why membership is not known.
pub(super) enum Unknown {
    /// Jira did not answer (an outage, a rate limit): try the step again later.
    Retry(JiraError),
    /// Jira refused the lookup (no permission to browse users and groups, no such user): the
    /// decision is refused, with this said on the card.
    Refuse(String),
}

/// The groups of recent movers, by their Jira identity.
#[derive(Default)]
pub(super) struct Memberships(Mutex<HashMap<String, (Instant, Vec<String>)>>);

impl Memberships {
    fn fresh(&self, identity: &str) -> Option<Vec<String>> {
        lock(&self.0)
            .get(identity)
            .filter(|(read_at, _)| read_at.elapsed() < MEMBERSHIP_TTL)
            .map(|(_, groups)| groups.clone())
    }

    fn remember(&self, identity: &str, groups: Vec<String>) {
        let mut remembered = lock(&self.0);
        if remembered.len() >= MAX_REMEMBERED {
            remembered.clear();
        }
        remembered.insert(identity.to_owned(), (Instant::now(), groups));
    }
}

impl Reconciler {
    /// Whether `author` belongs to one of the approver groups.
    pub(super) async fn in_approver_group(&self, author: &User) -> Result<bool, Unknown> {
        let wanted = &self.settings.policy.groups;
        if wanted.is_empty() {
            return Ok(false);
        }
        let identity = author.identity().ok_or_else(|| {
            Unknown::Refuse("the Jira user who moved the card has no identity to look up".into())
        })?;
        let groups = match self.memberships.fresh(identity) {
            Some(groups) => groups,
            None => {
                let groups = self.jira.user_groups(author).await.map_err(|err| {
                    if err.is_transient() {
                        Unknown::Retry(err)
                    } else {
                        Unknown::Refuse(format!(
                            "the Jira groups of the user who moved the card could not be read ({err})"
                        ))
                    }
                })?;
                self.memberships.remember(identity, groups.clone());
                groups
            }
        };
        Ok(groups
            .iter()
            .any(|group| wanted.iter().any(|w| w.eq_ignore_ascii_case(group))))
    }
}
