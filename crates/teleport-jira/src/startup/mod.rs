//! What start-up checks before the plugin goes live, shared by `start` and `check`: the Teleport
//! credentials, the connection and server version, Jira's API, project and permissions, and the
//! webhook's TLS files.

mod credentials;
mod error;
mod jira;
mod rules;
mod teleport;
mod webhook;

pub use credentials::{
    credentials_text, load_credentials, parse_credentials, warn_about_open_secret_files,
};
pub use error::StartError;
pub use jira::{JIRA_PERMISSIONS, check_jira, connect_jira};
pub use rules::rule_filter;
pub use teleport::connect_teleport;
pub use webhook::{check_webhook_tls, warn_if_unauthenticated, webhook_is_open, webhook_tls};
