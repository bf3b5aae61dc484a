//! Keeping each access request and its Jira issue in step.
//!
//! Every signal (a watch event, a webhook, the periodic scan, a (re)connected watch) only names a
//! request and puts it on the [`queue::WorkQueue`]. The step that runs then
//! ([`reconciler::Reconciler::step`]) reads the truth (the request, its plugin data, its issue) and
//! does the next idempotent thing. A failed step is retried with backoff, so a Jira or Teleport
//! outage delays work but never drops it.

pub mod audit_log;
pub mod cas;
mod engine;
pub mod error;
mod faults;
mod lease_clock;
pub mod people;
pub mod policy;
pub mod queue;
pub mod reconciler;
pub mod recovery;
pub mod store;

pub use engine::Engine;
pub use error::StepError;
pub use people::{Lookup, People, Resolved, Unresolved};
pub use reconciler::{IssueSettings, OnCallSettings, OwnerError, Reconciler, run_on_call_checks};
