//! Access Monitoring Rules: which Jira project, issue type and labels a new request goes to.
//!
//! Rules arrive from Teleport (listed after the watch's INIT, then kept current by watch events)
//! and are held in a [`RuleSet`]. Routing is pure: given a request's facts and the rules, it
//! returns a [`Route`]; nothing here talks to Teleport or Jira.

pub mod expr;
