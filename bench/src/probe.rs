//! Cheap polling of the fakes for the moment each request reaches a milestone.
//!
//! The fakes share the machine's cores with the plugin, so the harness must not spend them on
//! polling. A poll first reads one FakeTeleport RPC counter and looks further only when it moved
//! (it is bumped when the RPC arrives, just before it is applied, hence two follow-up looks), or
//! every [`FORCED_SCAN_EVERY`] polls regardless. Plugin data is then read for at most
//! [`SCAN_BUDGET`] waiting requests per poll, round robin; the audit log (which can only be read
//! whole) at most every [`POLL`] plus 5 µs per entry. A milestone is timestamped when a look
//! sees it: the resolution is [`POLL`] near the end of a phase, and coarser early on at large N.
//! A wait gives up as [`Patience`] says.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use teleport_proto::types::RequestState;

use crate::calls::TeleportRpcs;
use crate::measure::{self, Proc};
pub use crate::patience::Patience;
use crate::plugin::Plugin;
use crate::sandbox::Sandbox;

/// Time between polls.
pub const POLL: Duration = Duration::from_millis(5);
/// A look happens at least this often (in polls), whatever the counter says.
const FORCED_SCAN_EVERY: u32 = 20;
/// Plugin-data reads per poll.
const SCAN_BUDGET: usize = 256;
/// Extra wait between audit-log reads per entry already in the log.
const AUDIT_COST: Duration = Duration::from_micros(5);

/// Decides from an RPC counter whether a look is due.
struct Gate {
    method: &'static str,
    last: Option<usize>,
    /// Looks still owed since the counter last moved.
    owed: u32,
    idle_polls: u32,
}

impl Gate {
    fn new(method: &'static str) -> Self {
        Self {
            method,
            last: None,
            owed: 0,
            idle_polls: 0,
        }
    }

    fn due(&mut self, sandbox: &Sandbox) -> bool {
        let count = sandbox.teleport.calls(self.method);
        if self.last != Some(count) {
            self.last = Some(count);
            self.owed = 3;
        }
        self.idle_polls += 1;
        self.owed > 0 || self.idle_polls >= FORCED_SCAN_EVERY
    }

    fn looked(&mut self) {
        self.owed = self.owed.saturating_sub(1);
        self.idle_polls = 0;
    }
}

/// When each request got its issue (`issue_id` in its plugin data), and which issue.
pub struct IssueRecorded {
    pub issue_id: String,
    pub seen_at: Instant,
}

/// Waits until every request in `ids` has an `issue_id` in its plugin data; returns them in
/// the order of `ids`.
pub async fn wait_for_issues(
    sandbox: &Sandbox,
    plugin: &mut Plugin,
    ids: &[String],
    timeout: Duration,
) -> Result<Vec<IssueRecorded>> {
    let mut patience = Patience::new(timeout);
    let mut found: Vec<Option<IssueRecorded>> = ids.iter().map(|_| None).collect();
    let mut pending: VecDeque<usize> = (0..ids.len()).collect();
    let mut gate = Gate::new("UpdatePluginData");
    while !pending.is_empty() {
        if gate.due(sandbox) {
            let before = pending.len();
            look_for_issues(sandbox, ids, &mut pending, &mut found);
            gate.looked();
            if pending.len() < before {
                patience.progressed();
            }
            if pending.is_empty() {
                break;
            }
        }
        plugin.ensure_running()?;
        if let Some(why) = patience.exhausted() {
            bail!(
                "{} of {} requests still had no issue {why}; the plugin's log: {}",
                pending.len(),
                ids.len(),
                plugin.log_excerpt()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(found.into_iter().flatten().collect())
}

/// Reads the plugin data of up to [`SCAN_BUDGET`] pending requests, round robin.
fn look_for_issues(
    sandbox: &Sandbox,
    ids: &[String],
    pending: &mut VecDeque<usize>,
    found: &mut [Option<IssueRecorded>],
) {
    let now = Instant::now();
    for _ in 0..SCAN_BUDGET.min(pending.len()) {
        let Some(index) = pending.pop_front() else {
            break;
        };
        match sandbox.recorded_issue_id(&ids[index]) {
            Some(issue_id) => {
                found[index] = Some(IssueRecorded {
                    issue_id,
                    seen_at: now,
                })
            }
            None => pending.push_back(index),
        }
    }
}

/// Watches FakeTeleport's audit log for requests set to a state, cheaply (see the module doc).
pub struct StateWatch<'a> {
    index: HashMap<&'a str, usize>,
    state: RequestState,
    seen_at: Vec<Option<Instant>>,
    remaining: usize,
    audit_read: usize,
    next_read: Instant,
    unexpected: usize,
    gate: Gate,
}

impl<'a> StateWatch<'a> {
    /// Watches `ids` from the audit log's current end.
    pub fn new(sandbox: &Sandbox, ids: &'a [String], state: RequestState) -> Self {
        Self {
            index: ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect(),
            state,
            seen_at: vec![None; ids.len()],
            remaining: ids.len(),
            audit_read: sandbox.teleport.audit_events().len(),
            next_read: Instant::now(),
            unexpected: 0,
            gate: Gate::new("SetAccessRequestState"),
        }
    }

    /// Reads the audit log if a look is due; returns how many requests were newly seen.
    pub fn poll(&mut self, sandbox: &Sandbox) -> usize {
        if !(self.gate.due(sandbox) && Instant::now() >= self.next_read) {
            return 0;
        }
        let now = Instant::now();
        let before = self.remaining;
        let events = sandbox.teleport.audit_events();
        for event in events.get(self.audit_read..).unwrap_or_default() {
            let Some(&i) = self.index.get(event.request_id.as_str()) else {
                continue;
            };
            if event.state != self.state {
                self.unexpected += 1;
            } else if self.seen_at[i].is_none() {
                self.seen_at[i] = Some(now);
                self.remaining -= 1;
            }
        }
        self.audit_read = events.len();
        self.gate.looked();
        self.next_read =
            now + POLL + AUDIT_COST * u32::try_from(self.audit_read).unwrap_or(u32::MAX);
        before - self.remaining
    }

    /// Requests not seen in the state yet.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Fails if the plugin exited or `patience` ran out.
    pub fn check(&self, plugin: &mut Plugin, patience: &Patience) -> Result<()> {
        plugin.ensure_running()?;
        if let Some(why) = patience.exhausted() {
            bail!(
                "{} of {} requests were not set to {:?} {why} ({} set to another state); the plugin's log: {}",
                self.remaining,
                self.seen_at.len(),
                self.state,
                self.unexpected,
                plugin.log_excerpt()
            );
        }
        Ok(())
    }

    /// When each request was seen, in the order of the IDs; fails if any was set to another state.
    pub fn finish(self) -> Result<Vec<Instant>> {
        if self.unexpected > 0 {
            bail!(
                "the plugin set {} requests to a state other than {:?}",
                self.unexpected,
                self.state
            );
        }
        Ok(self.seen_at.into_iter().flatten().collect())
    }
}

/// Waits until the plugin has been idle for `quiet`: no new CPU tick, no Teleport RPC and no
/// call refused by Jira's rate limit (every reconcile step reads plugin data, so a step cannot
/// hide between two samples for longer than its run of Jira calls or a push-back pause; `quiet`
/// must exceed that, i.e. a few Jira latencies). False if `timeout` passed first.
pub async fn settle(
    sandbox: &Sandbox,
    plugin: &Plugin,
    quiet: Duration,
    timeout: Duration,
) -> Result<bool> {
    let activity = || -> Result<(u64, usize, usize)> {
        Ok((
            measure::sample(Proc::Pid(plugin.pid()))?.cpu_ticks,
            TeleportRpcs::now(&sandbox.teleport).total(),
            sandbox.jira.rate_limited_calls(),
        ))
    };
    let deadline = Instant::now() + timeout;
    let mut last = activity()?;
    let mut quiet_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = activity()?;
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= quiet {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
    }
}
