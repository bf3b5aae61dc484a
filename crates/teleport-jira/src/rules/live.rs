//! The rule set in force, read by every step and changed by the watch: readers take a snapshot
//! without locking, the single writer swaps in a changed copy (rules are few and change rarely).

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::RuleFilter;
use super::set::RuleSet;

/// The rules as of the latest watch event.
#[derive(Debug)]
pub struct LiveRules {
    current: ArcSwap<RuleSet>,
}

impl LiveRules {
    pub fn new(filter: &RuleFilter) -> Self {
        let mut set = RuleSet::new(&filter.notification_name);
        if let Some(integration) = &filter.review_integration {
            set = set.with_review_integration(integration);
        }
        Self {
            current: ArcSwap::from_pointee(set),
        }
    }

    pub fn snapshot(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    /// Applies `change` to a copy and makes it current.
    pub fn update(&self, change: impl Fn(&mut RuleSet)) {
        self.current.rcu(|current| {
            let mut next = RuleSet::clone(current);
            change(&mut next);
            next
        });
    }
}
