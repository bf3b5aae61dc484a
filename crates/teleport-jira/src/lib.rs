//! teleport-jira keeps Teleport Access Requests and a Jira board in step, as a drop-in replacement
//! for Teleport's Go plugin of the same name.
//!
//! # Layout
//! - [`config`]: the TOML file, defaults, validation, and the example `configure` prints.
//! - [`teleport`]: credentials, mutual TLS, the connection routes, the typed client and the watch.
//! - [`plugin_data`]: the per-request state kept in Teleport, in the Go plugin's encoding.
//! - [`app`]: start-up checks and the long-running tasks, wired together until shutdown.
//! - [`logging`], [`secret`], [`backoff`], [`version`]: small shared pieces.

pub mod app;
pub mod backoff;
pub mod check;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod errors;
pub mod health;
pub mod http_common;
pub mod jira;
pub mod jsm;
pub mod listener;
mod lock;
pub mod logging;
pub mod metrics;
pub mod plugin_data;
pub mod reload;
pub mod rules;
pub mod secret;
pub mod startup;
pub mod sync;
pub mod teleport;
pub mod version;
pub mod webhook;
