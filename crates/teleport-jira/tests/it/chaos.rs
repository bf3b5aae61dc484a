//! The chaos suite: a few hundred requests while webhooks are dropped and duplicated, Jira limits
//! the rate of calls and answers 5xx and 429 in bursts, Teleport restarts, and the plugin is
//! killed with SIGKILL and restarted. At the end every request has exactly one issue and both sides agree; the counts are printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use teleport_proto::types::RequestState;

use crate::support::*;

const REQUESTS: usize = 200;
/// Convergence must happen within this; a passing run takes a fraction of it.
const DEADLINE: Duration = Duration::from_secs(240);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    ApproveInJira,
    DenyInJira,
    ApproveInTeleport,
    DenyInTeleport,
    Expire,
}

impl Fate {
    fn of(index: usize) -> Self {
        match index % 5 {
            0 => Self::ApproveInJira,
            1 => Self::DenyInJira,
            2 => Self::ApproveInTeleport,
            3 => Self::DenyInTeleport,
            _ => Self::Expire,
        }
    }

    fn final_status(self) -> &'static str {
        match self {
            Self::ApproveInJira | Self::ApproveInTeleport => "Approved",
            Self::DenyInJira | Self::DenyInTeleport => "Denied",
            Self::Expire => "Expired",
        }
    }

    fn final_state(self) -> Option<RequestState> {
        match self {
            Self::ApproveInJira | Self::ApproveInTeleport => Some(RequestState::Approved),
            Self::DenyInJira | Self::DenyInTeleport => Some(RequestState::Denied),
            Self::Expire => None,
        }
    }
}

fn chaos_options() -> SandboxOptions {
    SandboxOptions {
        extra_config: "\n[reconcile]\nscan_interval = \"2s\"\nlease_ttl = \"5s\"\nshutdown_grace_period = \"2s\"\n".into(),
        ..Default::default()
    }
}

/// Kills a plugin process without warning and starts it again.
async fn kill_and_restart(sandbox: &mut Sandbox, replica: &mut Option<Plugin>, which: usize) {
    if which % 2 == 1
        && let Some(plugin) = replica.as_mut()
    {
        plugin.kill().await;
        *replica = Some(sandbox.start_replica().await);
    } else {
        sandbox.plugin().kill().await;
        sandbox.start_plugin().await;
    }
}

async fn run_chaos(replicas: usize) {
    let mut sandbox = Sandbox::with(chaos_options()).await;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    sandbox.jira.faults().set_webhook_drop_rate(0.10);
    sandbox.jira.faults().set_webhook_duplicate_rate(0.05);
    sandbox.start_plugin().await;
    // Jira Cloud's burst limit all along, on top of the bursts of 429 below.
    sandbox
        .jira
        .set_rate_limit(Some(testkit::jira::RateLimit::new(40.0, 20)));
    let mut replica = if replicas > 1 {
        Some(sandbox.start_replica().await)
    } else {
        None
    };
    let started = tokio::time::Instant::now();

    // Phase 1: requests arrive while Jira has bursts of errors and the plugin dies once.
    let kill_at = rng.random_range(REQUESTS / 4..REQUESTS / 2);
    let mut ids = Vec::with_capacity(REQUESTS);
    for index in 0..REQUESTS {
        ids.push(sandbox.create_request(REASON));
        if index % 40 == 10 {
            sandbox.jira.faults().fail_next(8, 503);
        }
        if index % 40 == 30 {
            sandbox.jira.faults().rate_limit_next(6, 1);
        }
        if index == kill_at {
            kill_and_restart(&mut sandbox, &mut replica, 0).await;
        }
        if index == REQUESTS * 3 / 4 {
            sandbox.teleport.restart().await;
        }
    }
    let mut issues = HashMap::new();
    for id in &ids {
        // Phase 1 shares the suite's deadline: under load a look-up after an ambiguous failure
        // may take longer than one request's usual wait, and nothing is lost meanwhile.
        let phase_deadline = started + DEADLINE;
        while sandbox.recorded_issue_id(id).is_none()
            && tokio::time::Instant::now() < phase_deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let found = sandbox.recorded_issue_id(id).is_some();
        assert!(
            found,
            "no issue recorded for {id}; plugin log about it:\n{}\nreplica log about it:\n{}\nplugin log tail:\n{}",
            lines_about(&sandbox.log(), id),
            replica
                .as_ref()
                .map(|r| lines_about(&r.log(), id))
                .unwrap_or_default(),
            tail(&sandbox.log()),
        );
        issues.insert(id.clone(), sandbox.recorded_issue_id(id).unwrap());
    }

    // Phase 2: every request is decided, in Jira or in Teleport, and the plugin dies again.
    let kill_at = rng.random_range(0..REQUESTS);
    for (index, id) in ids.iter().enumerate() {
        let issue = &issues[id];
        match Fate::of(index) {
            Fate::ApproveInJira => sandbox
                .jira
                .transition_as(issue, "Approved", JIRA_REVIEWER)
                .unwrap(),
            Fate::DenyInJira => sandbox
                .jira
                .transition_as(issue, "Denied", JIRA_REVIEWER)
                .unwrap(),
            Fate::ApproveInTeleport => sandbox
                .teleport
                .set_state_as("admin", id, RequestState::Approved, "ok", "")
                .unwrap(),
            Fate::DenyInTeleport => sandbox
                .teleport
                .set_state_as("admin", id, RequestState::Denied, "no", "")
                .unwrap(),
            Fate::Expire => sandbox.teleport.delete_access_request(id).unwrap(),
        }
        if index % 50 == 25 {
            sandbox.jira.faults().fail_next(8, 502);
        }
        if index == kill_at {
            kill_and_restart(&mut sandbox, &mut replica, 1).await;
        }
    }

    // Convergence.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut pending: Vec<usize> = (0..REQUESTS).collect();
    while !pending.is_empty() && tokio::time::Instant::now() < deadline {
        pending.retain(|&index| {
            !converged(&sandbox, &ids[index], &issues[&ids[index]], Fate::of(index))
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stragglers: Vec<String> = pending
        .iter()
        .take(5)
        .map(|&i| describe(&sandbox, &ids[i], &issues[&ids[i]], Fate::of(i)))
        .collect();
    assert!(
        pending.is_empty(),
        "{} requests never converged, e.g. {stragglers:#?}\nplugin log tail:\n{}",
        pending.len(),
        tail(&sandbox.log())
    );

    // Exactly one issue per request, and every decision applied once.
    let issues_per_request: Vec<usize> = ids
        .iter()
        .map(|id| {
            sandbox
                .jira
                .issues_with_property("teleportAccessRequestId", &serde_json::json!(id))
                .len()
        })
        .collect();
    let audit = sandbox.teleport.audit_events();
    let count = |fates: &[Fate]| {
        (0..REQUESTS)
            .filter(|i| fates.contains(&Fate::of(*i)))
            .count()
    };
    let jira_decisions = count(&[Fate::ApproveInJira, Fate::DenyInJira]);
    let from_jira = audit
        .iter()
        .filter(|e| e.delegator.starts_with("jira:"))
        .count();
    println!(
        "chaos ({replicas} process{}): {REQUESTS} requests, {} issues ({} requests with exactly one), \
         {from_jira} of {jira_decisions} Jira decisions reached Teleport, {} of {} Teleport resolutions reached Jira, \
         {} of {} expiries reached Jira; {} webhooks dropped, {} deliveries; 2 SIGKILLs, 1 Teleport restart; {:.1} s",
        if replicas > 1 { "es" } else { "" },
        sandbox.jira.created_issue_count(),
        issues_per_request.iter().filter(|n| **n == 1).count(),
        count(&[Fate::ApproveInTeleport, Fate::DenyInTeleport]),
        count(&[Fate::ApproveInTeleport, Fate::DenyInTeleport]),
        count(&[Fate::Expire]),
        count(&[Fate::Expire]),
        sandbox.jira.dropped_webhook_count(),
        sandbox.jira.deliveries().len(),
        started.elapsed().as_secs_f64(),
    );
    assert!(
        issues_per_request.iter().all(|n| *n == 1),
        "a request with no or several issues: {issues_per_request:?}"
    );
    assert_eq!(
        sandbox.jira.created_issue_count(),
        REQUESTS,
        "no duplicate issue"
    );
    assert_eq!(
        from_jira, jira_decisions,
        "each Jira decision applied exactly once: {audit:?}"
    );
    assert_eq!(
        audit.len(),
        jira_decisions + count(&[Fate::ApproveInTeleport, Fate::DenyInTeleport])
    );
}

fn converged(sandbox: &Sandbox, id: &str, issue_id: &str, fate: Fate) -> bool {
    let Some(issue) = sandbox.jira.issue(issue_id) else {
        return false;
    };
    let state_ok = match fate.final_state() {
        Some(state) => sandbox.state_of(id) == Some(state),
        None => sandbox.teleport.access_request(id).is_none(),
    };
    let resolutions = issue
        .comment_bodies()
        .iter()
        .filter(|b| b.starts_with("Access request has been"))
        .count();
    state_ok && issue.status == fate.final_status() && resolutions == 1
}

fn describe(sandbox: &Sandbox, id: &str, issue_id: &str, fate: Fate) -> String {
    let issue = sandbox.jira.issue(issue_id);
    format!(
        "{id} {fate:?}: state {:?}, issue {:?}, comments {:?}, plugin data {:?}",
        sandbox.state_of(id),
        issue.as_ref().map(|i| (&i.key, &i.status)),
        issue.as_ref().map(|i| i
            .comment_bodies()
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()),
        sandbox.plugin_data(id)
    )
}

/// Every line of `log` about request `id`.
fn lines_about(log: &str, id: &str) -> String {
    log.lines()
        .filter(|l| l.contains(id))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_with_one_process_loses_nothing_and_duplicates_nothing() {
    run_chaos(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_with_two_processes_loses_nothing_and_duplicates_nothing() {
    run_chaos(2).await;
}
