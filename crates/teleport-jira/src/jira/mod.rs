//! Everything that talks to Jira: the REST client, its wire types and errors, the text the plugin
//! writes, and how a decision made in Jira is read back (who, and why).

pub mod client;
pub mod decision;
pub mod error;
pub mod render;
pub mod types;

pub use client::{JiraAuth, JiraClient, JiraClientOptions};
pub use error::JiraError;
