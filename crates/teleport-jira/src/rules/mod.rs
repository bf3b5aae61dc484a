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
pub use rule::{Rule, RuleError, SUBJECT_ACCESS_REQUEST, applies};
pub use schedule::ScheduleError;
pub use set::{Route, Routing, RuleSet, Target};
