//! The fake cluster's in-memory state, behind one std mutex.
//!
//! Every rule (requests, plugin data, watch fan-out) runs as a method on [`State`] while the lock is held.
//! Invariant: the lock is never held across an `.await`, so rules are atomic and events reach watchers in
//! the order the changes happened.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tonic::{Code, Status};

use teleport_proto::teleport::accessmonitoringrules::v1::AccessMonitoringRule;
use teleport_proto::types::{AccessRequestV3, PluginDataUpdateParams};

use super::audit::AuditEvent;
use super::plugin_record::PluginRecord;
use super::users::UserSpec;
use super::watch::WatchHub;

/// Fixed facts about the fake cluster, set at start.
#[derive(Debug, Clone)]
pub(crate) struct ClusterInfo {
    pub(crate) cluster_name: String,
    pub(crate) server_version: String,
    pub(crate) advanced_access_workflows: bool,
    pub(crate) proxy_public_addr: String,
    pub(crate) watch_status_in_init: bool,
    pub(crate) watch_buffer: usize,
}

/// Everything the gRPC service and the owner of the fake share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) info: ClusterInfo,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(info: ClusterInfo) -> Self {
        Self {
            info,
            state: Mutex::new(State::default()),
        }
    }

    /// Locks the state. A panic in a test thread must not wedge the fake, so poisoning is ignored:
    /// every rule validates before it mutates, so the state is consistent even after a panic.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The mutable state of the fake cluster.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) users: HashMap<String, UserSpec>,
    /// Keyed by request ID, which is also Teleport's backend order.
    pub(crate) requests: BTreeMap<String, AccessRequestV3>,
    /// Keyed by request ID; outlives the request, as in Teleport.
    pub(crate) plugin_data: BTreeMap<String, PluginRecord>,
    /// Access Monitoring Rules by name (the backend's order).
    pub(crate) rules: BTreeMap<String, AccessMonitoringRule>,
    /// The backend revision, bumped on every rule write.
    pub(crate) revision: u64,
    pub(crate) audit: Vec<AuditEvent>,
    pub(crate) plugin_data_updates: Vec<PluginDataUpdateParams>,
    pub(crate) calls: HashMap<String, usize>,
    pub(crate) faults: Faults,
    pub(crate) watchers: WatchHub,
}

/// Fault injection knobs, checked at the start of every RPC.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub(crate) delay: Duration,
    pub(crate) list_unimplemented: bool,
    /// Answer `ListAccessMonitoringRulesWithFilter` with Unimplemented, as servers before it did.
    pub(crate) rules_filter_unimplemented: bool,
    fail_next: HashMap<String, (Code, usize)>,
}

impl Faults {
    pub(crate) fn fail_next(&mut self, method: &str, code: Code, times: usize) {
        if times == 0 {
            self.fail_next.remove(method);
        } else {
            self.fail_next.insert(method.to_owned(), (code, times));
        }
    }

    /// Consumes one scheduled failure of `method`, if any.
    pub(crate) fn take_failure(&mut self, method: &str) -> Option<Status> {
        let (code, left) = self.fail_next.get_mut(method)?;
        let status = Status::new(*code, format!("injected failure of {method}"));
        *left -= 1;
        if *left == 0 {
            self.fail_next.remove(method);
        }
        Some(status)
    }
}
