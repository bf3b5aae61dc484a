//! Everything that talks to Teleport: credentials, TLS, the two connection routes, the typed
//! client, the access-request watch and identity renewal.

pub mod client;
pub mod dial;
pub mod error;
pub mod identity;
pub mod refresh;
mod rules;
pub mod tls;
pub mod watch;

pub use client::{ACCESS_MONITORING_RULE_KIND, ACCESS_REQUEST_KIND, TeleportClient};
pub use error::TeleportError;
pub use identity::{CertificateInfo, Credentials};
