//! Faithful fakes of the two services `teleport-jira` talks to, for tests, the demo and the benchmark.
//!
//! # Layout
//! - [`pki`]: certificate authorities and certificates made with rcgen (cluster CAs, web CAs, identities).
//! - [`teleport`]: `FakeTeleport`, a gRPC Auth Service over mutual TLS with a TLS-routing proxy front.
//! - [`jira`]: `FakeJira`, a Jira Cloud REST API v2 over HTTP or HTTPS, with webhooks and fault knobs.
//! - [`jsm`]: `FakeJsmOps`, Jira Service Management Operations' schedules and on-calls over HTTPS.
//!
//! The fakes speak only the wire protocols (protobuf messages, JSON over HTTP). This crate never
//! depends on the product crate, so a misunderstanding in the product cannot hide in the fakes.

pub mod jira;
pub mod jsm;
pub mod pki;
pub mod teleport;
