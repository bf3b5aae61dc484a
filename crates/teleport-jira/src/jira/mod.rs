//! Everything that talks to Jira: the REST client, its wire types and errors, the text the plugin
//! writes, and how a decision made in Jira is read back (who, and why).

pub mod bulk_create;
pub mod client;
pub mod connections;
pub mod decision;
pub mod error;
pub mod governor;
pub mod markup;
pub mod mover;
pub mod render;
pub mod site;
pub mod types;

pub use client::{JiraAuth, JiraClient, JiraClientOptions};
pub use error::JiraError;

/// Whether two Jira names (statuses, issue types) are the same, ignoring case as Jira users expect
/// and as the Go plugin does (Unicode-aware: `ACCEPTÉ` is `accepté`).
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || a.to_lowercase() == b.to_lowercase()
}
