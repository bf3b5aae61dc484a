//! Access Monitoring Rules: which Jira project, issue type and labels a new request goes to.
//!
//! Rules arrive from Teleport (listed after the watch's INIT, then kept current by watch events)
//! and are held in a [`RuleSet`]. Routing is pure: given a request's [`Facts`] and the rules, it
//! returns a [`Route`]; nothing here talks to Teleport or Jira.
//!
//! - [`expr`]: the condition language.
//! - `schedule`: shifts in a time zone.
//! - `recipient`: the recipient grammar (`OPS`, `OPS/Bug`, `label:x`, `none`).
//! - `rule`: whether a rule is ours and whether it matches.
//! - `set`: the rules in force and the routing decision.
//! - `facts`: a request's facts for conditions.
//! - `live`: the set in force, swapped as the watch changes it.

pub mod expr;
mod facts;
mod live;
mod recipient;
mod rule;
mod schedule;
mod set;
#[cfg(test)]
mod tests;

pub use expr::Facts;
pub use live::LiveRules;
pub use recipient::{Recipient, RecipientError};
pub use rule::{Rule, RuleError, SUBJECT_ACCESS_REQUEST, applies, approves_through};
pub use schedule::ScheduleError;
pub use set::{Eligibility, Route, Routing, RuleSet, Target};

/// Which rules this plugin reads: those notifying it, and (with the on-call check on) those
/// asking its review integration to approve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFilter {
    pub notification_name: String,
    pub review_integration: Option<String>,
}

impl RuleFilter {
    /// Whether `rule` is one of them.
    pub fn keeps(
        &self,
        rule: &teleport_proto::teleport::accessmonitoringrules::v1::AccessMonitoringRule,
    ) -> bool {
        applies(rule, &self.notification_name)
            || self
                .review_integration
                .as_deref()
                .is_some_and(|integration| approves_through(rule, integration))
    }
}
