//! How the decisions scenario moves cards to Approved as a Jira user (each move delivers a
//! webhook to the first process) and sees each request approved in Teleport: all N moves at once
//! (the default), or `--decisions-in-flight K`: K moves at first, then one more each time a moved
//! card's request is seen approved, so K decisions are in flight at any time, as K reviewers
//! working through a board would keep them.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use teleport_proto::types::RequestState;

use crate::exactly_once::Ticket;
use crate::plugin::Plugin;
use crate::probe::{POLL, Patience, StateWatch};
use crate::sandbox::{REVIEWER_ACCOUNT, Sandbox};

/// When each card was moved and its request seen approved, in the order of the tickets.
pub struct Moves {
    pub moved_at: Vec<Instant>,
    pub seen_at: Vec<Instant>,
    /// First move to the last.
    pub issued_in: Duration,
}

/// Moves every ticket's card (`in_flight`: at most that many awaiting their approval) and waits
/// until every request is approved.
pub async fn approve_all(
    sandbox: &Sandbox,
    plugin: &mut Plugin,
    tickets: &[Ticket],
    in_flight: Option<usize>,
    timeout: Duration,
) -> Result<Moves> {
    let ids: Vec<String> = tickets.iter().map(|t| t.request_id.clone()).collect();
    // All at once is a window as wide as the board. Either way the audit log is watched from
    // before the first move: approvals that land while later cards are still being moved count.
    let window = in_flight.unwrap_or(tickets.len());
    keep_in_flight(sandbox, plugin, tickets, &ids, window, timeout).await
}

/// Keeps `window` moves awaiting their approval until every card was moved and approved.
async fn keep_in_flight(
    sandbox: &Sandbox,
    plugin: &mut Plugin,
    tickets: &[Ticket],
    ids: &[String],
    window: usize,
    timeout: Duration,
) -> Result<Moves> {
    let start = Instant::now();
    let mut patience = Patience::new(timeout);
    let mut watch = StateWatch::new(sandbox, ids, RequestState::Approved);
    let mut moved_at: Vec<Instant> = Vec::with_capacity(tickets.len());
    let mut issued_in = None;
    loop {
        let approved = ids.len() - watch.remaining();
        while moved_at.len() < tickets.len() && moved_at.len().saturating_sub(approved) < window {
            move_card(sandbox, &tickets[moved_at.len()])?;
            moved_at.push(Instant::now());
        }
        if moved_at.len() == tickets.len() && issued_in.is_none() {
            issued_in = Some(start.elapsed());
        }
        if watch.poll(sandbox) > 0 {
            patience.progressed();
            continue;
        }
        if watch.remaining() == 0 {
            break;
        }
        watch.check(plugin, &patience)?;
        tokio::time::sleep(POLL).await;
    }
    Ok(Moves {
        moved_at,
        seen_at: watch.finish()?,
        issued_in: issued_in.unwrap_or_else(|| start.elapsed()),
    })
}

fn move_card(sandbox: &Sandbox, ticket: &Ticket) -> Result<()> {
    sandbox
        .jira
        .transition_as(&ticket.issue_id, "Approved", REVIEWER_ACCOUNT)
        .with_context(|| format!("moving issue {} to Approved", ticket.issue_id))
}
