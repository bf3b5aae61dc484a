//! The scenarios. Each run gets fresh fakes and a fresh plugin process, so figures of one run
//! never include another's backlog or memory.
//!
//! - [`burst_then_decisions`]: start the plugin on an empty cluster (ready time, idle RSS), set
//!   FakeJira's latency and rate limit, start the replicas, create N pending requests at once and
//!   wait for every `issue_id` (**burst**); then move all N cards to Approved (at once, or keeping
//!   K moves in flight) and wait for every request to be approved in Teleport (**decisions**).
//!   After each, once settled, the fakes must hold one issue and one resolution per request
//!   ([`exactly_once`](crate::exactly_once)).
//! - [`catch_up`]: create N pending requests, then start the plugin and wait for every
//!   `issue_id` (**startup catch-up**).
//!
//! A phase ends when the last milestone is seen; its CPU and call tallies include the follow-up
//! work the phase caused (read once the plugin has made no Teleport RPC and used no CPU tick for
//! [`QUIET`] plus four Jira latencies).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::calls::{JiraCalls, JiraMark, TeleportRpcs};
use crate::exactly_once::{self, ExactlyOnce, Ticket};
use crate::fleet::Fleet;
use crate::jira_limit::JiraLimit;
use crate::measure::{self, Proc, Sample, Summary};
use crate::moves;
use crate::plugin::Plugin;
use crate::plugin_log::LogCounts;
use crate::probe;
use crate::sandbox::{Sandbox, Tuning};
use crate::webhooks::Webhooks;

/// How long the plugin must stay idle to count as settled, on top of [`Params::quiet`]'s
/// allowance for Jira latency.
const QUIET: Duration = Duration::from_millis(300);
/// Longest wait for the plugin to settle after a phase.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long past idle a start-up waits for `/status` to answer 200.
const STATUS_WAIT: Duration = Duration::from_secs(5);
/// Under a rate limit the plugin may sit out a `Retry-After` (or its own back-off) without a
/// CPU tick or an RPC: extra idle time before a phase counts as settled.
const PUSH_BACK_QUIET: Duration = Duration::from_secs(3);

/// What every run shares.
#[derive(Clone, Debug)]
pub struct Params {
    pub binary: PathBuf,
    pub n: usize,
    pub latency: Duration,
    pub tuning: Tuning,
    pub ticks_per_second: f64,
    /// Jira's rate limit during the burst and decisions (start-up runs without).
    pub jira_limit: Option<JiraLimit>,
    /// Plugin processes in the burst and decisions run (1: no replica).
    pub replicas: usize,
    /// Decisions: card moves kept awaiting approval (`None`: all N at once).
    pub in_flight: Option<usize>,
}

impl Params {
    /// Idle time that ends a phase: a step may make a few Jira calls in a row without touching
    /// Teleport or accruing a CPU tick.
    fn quiet(&self) -> Duration {
        let push_back = if self.jira_limit.is_some() {
            PUSH_BACK_QUIET
        } else {
            Duration::ZERO
        };
        QUIET + self.latency * 4 + push_back
    }

    /// Generous: the ideal time at a pessimistic 8 Jira calls per request (plus, under a rate
    /// limit, 16 calls per request at its pace: a decision reads the issue and its comments
    /// several times), plus a minute.
    fn timeout(&self) -> Duration {
        let per_request =
            self.latency * 8 / self.tuning.effective_jira_concurrency() as u32 + POLL_ALLOWANCE;
        let paced = self.jira_limit.map_or(Duration::ZERO, |limit| {
            Duration::from_secs_f64(limit.floor_secs(self.n * 16))
        });
        Duration::from_secs(60) + per_request * self.n as u32 + paced
    }
}

/// Per-request slack in the timeout for everything that is not Jira latency.
const POLL_ALLOWANCE: Duration = Duration::from_millis(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Burst,
    Decisions,
    CatchUp,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::Burst => "burst",
            Self::Decisions => "decisions",
            Self::CatchUp => "catch-up",
        }
    }
}

/// The plugin on an empty cluster (Jira latency 0), from spawn until it went quiet.
#[derive(Clone, Debug)]
pub struct Startup {
    /// Spawn to "Plugin is ready" on stderr.
    pub ready: Duration,
    /// Spawn to the first 200 from `GET /status` on the webhook listener (`None`: none came).
    pub status_ok: Option<Duration>,
    /// Spawn to the first line on stderr.
    pub first_log: Option<Duration>,
    pub idle_rss_kib: u64,
    pub cpu_secs: f64,
    pub jira: JiraCalls,
    pub teleport: TeleportRpcs,
}

/// How many warning and error lines of a phase are kept for the report.
const NOTABLE_PER_PHASE: usize = 3;

/// The figures of one phase.
#[derive(Clone, Debug)]
pub struct Phase {
    pub scenario: Scenario,
    pub n: usize,
    pub latency: Duration,
    pub concurrency: usize,
    /// First request (or card move, or process start) to the last milestone.
    pub elapsed: Duration,
    /// Per-request latency to the milestone, in ms (see the README for each scenario's clock).
    pub latency_ms: Option<Summary>,
    /// Jira calls until the last milestone: the ones that bound the phase's time.
    pub calls: JiraCalls,
    /// Jira calls after the last milestone, until the plugin settled.
    pub tail_calls: JiraCalls,
    pub teleport: TeleportRpcs,
    pub plugin_cpu_secs: f64,
    /// The harness's CPU in the same window: the fakes, the polling and the request creation.
    pub bench_cpu_secs: f64,
    pub peak_rss_kib: u64,
    pub rss_after_kib: u64,
    pub log: LogCounts,
    /// The phase's first warning and error lines.
    pub notable: Vec<String>,
    /// Whether the plugin went quiet after the phase (else CPU figures are cut off).
    pub settled: bool,
    /// Catch-up only: spawn to "Plugin is ready" with N requests pending.
    pub ready: Option<Duration>,
    /// Burst and decisions: how long the harness took to create the N requests (move the N cards).
    pub issued_in: Option<Duration>,
    pub webhooks: Option<Webhooks>,
    /// The rate limit FakeJira applied during the phase.
    pub jira_limit: Option<JiraLimit>,
    /// Plugin processes that ran the phase.
    pub replicas: usize,
    /// Decisions with `--decisions-in-flight`: the moves kept awaiting approval.
    pub in_flight: Option<usize>,
    /// The replicas' log lines (the first process's are in `log`).
    pub replica_log: LogCounts,
    /// One issue and one resolution per request, as the fakes tell it once the phase settled.
    pub exactly_once: ExactlyOnce,
}

impl Phase {
    /// N × (Jira calls per request before the last milestone) × latency / concurrency: the time
    /// the fake's latency alone forces at the configured concurrency, and at least one latency
    /// when there were calls (creations sharing bulk calls make few calls, each a round trip);
    /// under a rate limit R, at least the admitted calls / R.
    pub fn ideal(&self) -> Duration {
        let waves = self.calls.total as f64 / self.concurrency.max(1) as f64;
        let by_latency = if self.calls.total > 0 {
            self.latency.mul_f64(waves.max(1.0))
        } else {
            Duration::ZERO
        };
        let admitted = self.calls.total - self.calls.rate_limited;
        let by_limit = self.jira_limit.map_or(Duration::ZERO, |limit| {
            Duration::from_secs_f64(limit.floor_secs(admitted))
        });
        by_latency.max(by_limit)
    }

    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.n as f64 / secs
        } else {
            0.0
        }
    }

    pub fn plugin_cpu_ms_per_request(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.plugin_cpu_secs * 1000.0 / self.n as f64
        }
    }
}

/// Counters read at the start of a phase.
struct Before {
    jira: JiraMark,
    teleport: TeleportRpcs,
    plugin: Sample,
    bench: Sample,
    log: LogCounts,
    replica_logs: Vec<LogCounts>,
    deliveries: usize,
}

impl Before {
    fn read(sandbox: &Sandbox, fleet: Option<&Fleet>) -> Result<Self> {
        Ok(Self {
            jira: JiraMark::now(&sandbox.jira),
            teleport: TeleportRpcs::now(&sandbox.teleport),
            plugin: match fleet {
                Some(fleet) => measure::sample(Proc::Pid(fleet.first.pid()))?,
                None => Sample::default(),
            },
            bench: measure::sample(Proc::SelfProcess)?,
            log: fleet.map(|f| f.first.log_counts()).unwrap_or_default(),
            replica_logs: fleet.map(Fleet::replica_marks).unwrap_or_default(),
            deliveries: sandbox.jira.deliveries().len(),
        })
    }
}

/// Closes a phase: the calls until the last milestone, then settling, then everything else.
async fn finish(
    scenario: Scenario,
    params: &Params,
    sandbox: &Sandbox,
    fleet: &Fleet,
    before: Before,
    elapsed: Duration,
    latency_ms: Option<Summary>,
) -> Result<Phase> {
    let plugin = &fleet.first;
    let (calls, at_milestone) = before.jira.since(&sandbox.jira);
    let pid = Proc::Pid(plugin.pid());
    let settled = probe::settle(sandbox, plugin, params.quiet(), SETTLE_TIMEOUT).await?;
    let (tail_calls, _) = at_milestone.since(&sandbox.jira);
    let after = measure::sample(pid)?;
    let bench = measure::sample(Proc::SelfProcess)?;
    let ticks = |from: u64, to: u64| to.saturating_sub(from) as f64 / params.ticks_per_second;
    let deliveries = sandbox.jira.deliveries();
    let window = deliveries.get(before.deliveries..).unwrap_or_default();
    let webhooks = (scenario == Scenario::Decisions).then(|| Webhooks::tally(window));
    Ok(Phase {
        scenario,
        n: params.n,
        latency: params.latency,
        concurrency: params.tuning.effective_jira_concurrency(),
        elapsed,
        latency_ms,
        calls,
        tail_calls,
        teleport: TeleportRpcs::now(&sandbox.teleport).since(&before.teleport),
        plugin_cpu_secs: ticks(before.plugin.cpu_ticks, after.cpu_ticks),
        bench_cpu_secs: ticks(before.bench.cpu_ticks, bench.cpu_ticks),
        peak_rss_kib: after.hwm_kib,
        rss_after_kib: after.rss_kib,
        log: plugin.log_counts().since(before.log),
        notable: [
            plugin.notable_since(before.log, NOTABLE_PER_PHASE),
            fleet.replica_notable_since(&before.replica_logs, NOTABLE_PER_PHASE),
        ]
        .concat(),
        settled,
        ready: None,
        issued_in: None,
        webhooks,
        jira_limit: params
            .jira_limit
            .filter(|_| sandbox.jira.rate_limit().is_some()),
        replicas: fleet.size(),
        in_flight: None,
        replica_log: fleet.replica_log_since(&before.replica_logs),
        exactly_once: ExactlyOnce::default(),
    })
}

/// `Jira calls so far: 5210 (312 answered 429): 2100x GET /rest/api/2/issue/{id}, ...`, for an
/// error that cuts a phase short.
fn calls_so_far(sandbox: &Sandbox, since: JiraMark) -> String {
    let (calls, _) = since.since(&sandbox.jira);
    let mut busiest: Vec<(&String, &usize)> = calls.by_endpoint.iter().collect();
    busiest.sort_by(|a, b| b.1.cmp(a.1));
    let endpoints: Vec<String> = busiest
        .iter()
        .map(|(endpoint, count)| format!("{count}x {endpoint}"))
        .collect();
    format!(
        "Jira calls so far in the phase: {} ({} answered 429): {}",
        calls.total,
        calls.rate_limited,
        endpoints.join(", ")
    )
}

/// Wall-clock now, in Unix nanoseconds (the clock of FakeJira's `created`).
fn unix_nanos() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos()
}

/// Per-request latency in ms from `start_ns[i]` to the `created` time FakeJira stored for
/// `issues[i]` (millisecond precision, as Jira's).
fn issue_latencies(
    sandbox: &Sandbox,
    issues: &[probe::IssueRecorded],
    start_ns: &[i128],
) -> Result<Summary> {
    let created: HashMap<String, i128> = sandbox
        .jira
        .issues()
        .into_iter()
        .map(|issue| (issue.id, issue.created.unix_timestamp_nanos()))
        .collect();
    let mut latencies = Vec::with_capacity(issues.len());
    for (issue, start) in issues.iter().zip(start_ns) {
        let created = created.get(&issue.issue_id).with_context(|| {
            format!(
                "plugin data names issue {} which FakeJira does not have",
                issue.issue_id
            )
        })?;
        latencies.push((created - start) as f64 / 1e6);
    }
    measure::summarize(latencies).context("no latencies measured")
}

/// Starts the plugin on an empty cluster, runs the burst, then (if asked) the decisions, whose
/// failure leaves the burst's figures standing.
pub async fn burst_then_decisions(
    params: &Params,
    with_decisions: bool,
) -> Result<(Startup, Phase, Option<Result<Phase>>)> {
    let sandbox = Sandbox::start(&params.tuning).await?;
    let (plugin, startup) = start_idle(params, &sandbox).await?;
    sandbox.jira.faults().set_latency(params.latency);
    arm_limit(params, &sandbox);
    let mut fleet = Fleet::single(plugin);
    for index in 1..params.replicas {
        fleet
            .replicas
            .push(start_replica(params, &sandbox, index).await?);
    }
    if fleet.size() > 1 {
        // The replicas' start-up drew on the bucket: the burst starts on a full one, as with one.
        arm_limit(params, &sandbox);
    }

    let (burst, tickets) = burst(params, &sandbox, &mut fleet).await?;
    let decisions = if with_decisions {
        Some(decisions(params, &sandbox, &mut fleet, &tickets).await)
    } else {
        None
    };
    fleet.stop().await?;
    Ok((startup, burst, decisions))
}

/// Sets the run's rate limit on FakeJira, with a full bucket (nothing when there is none).
fn arm_limit(params: &Params, sandbox: &Sandbox) {
    if let Some(limit) = params.jira_limit {
        sandbox.jira.set_rate_limit(Some(limit.rate_limit()));
    }
}

/// Starts replica `index` (1 for the second process) and waits until it is ready and idle: under
/// the run's rate limit, as a replica joining a live deployment would.
async fn start_replica(params: &Params, sandbox: &Sandbox, index: usize) -> Result<Plugin> {
    let mut replica = sandbox.spawn_replica(&params.binary, index)?;
    replica
        .wait_ready(READY_TIMEOUT)
        .await
        .with_context(|| format!("starting replica {index}"))?;
    probe::settle(sandbox, &replica, params.quiet(), SETTLE_TIMEOUT).await?;
    Ok(replica)
}

/// Starts the plugin `count` times in a row on one empty cluster (Jira latency 0), stopping it
/// after each start has settled: a steadier figure for the start-up time than single starts.
pub async fn startups(params: &Params, count: usize) -> Result<Vec<Startup>> {
    let sandbox = Sandbox::start(&params.tuning).await?;
    let mut startups = Vec::with_capacity(count);
    for _ in 0..count {
        let (plugin, startup) = start_idle(params, &sandbox).await?;
        plugin.stop().await?;
        startups.push(startup);
    }
    Ok(startups)
}

/// Spawns the plugin, waits for "Plugin is ready" and for it to go idle.
async fn start_idle(params: &Params, sandbox: &Sandbox) -> Result<(Plugin, Startup)> {
    let jira = JiraMark::now(&sandbox.jira);
    let rpcs = TeleportRpcs::now(&sandbox.teleport);
    let mut plugin = sandbox.spawn_plugin(&params.binary)?;
    let ready = plugin.wait_ready(READY_TIMEOUT).await?;
    probe::settle(sandbox, &plugin, QUIET, SETTLE_TIMEOUT).await?;
    let idle = measure::sample(Proc::Pid(plugin.pid()))?;
    let startup = Startup {
        ready,
        status_ok: plugin.status_ok_after(STATUS_WAIT).await,
        first_log: plugin.first_line_after(),
        idle_rss_kib: idle.rss_kib,
        cpu_secs: idle.cpu_ticks as f64 / params.ticks_per_second,
        jira: jira.since(&sandbox.jira).0,
        teleport: TeleportRpcs::now(&sandbox.teleport).since(&rpcs),
    };
    Ok((plugin, startup))
}

/// Creates N pending requests at once and waits for all their issues; then, once settled,
/// checks there is one issue per request.
async fn burst(
    params: &Params,
    sandbox: &Sandbox,
    fleet: &mut Fleet,
) -> Result<(Phase, Vec<Ticket>)> {
    let before = Before::read(sandbox, Some(fleet))?;
    let issues_before = sandbox.jira.created_issue_count();
    let start = Instant::now();
    let mut ids = Vec::with_capacity(params.n);
    let mut created_ns = Vec::with_capacity(params.n);
    for index in 0..params.n {
        created_ns.push(unix_nanos());
        ids.push(sandbox.create_request(index)?);
    }
    let issued_in = start.elapsed();
    let issues = probe::wait_for_issues(sandbox, &mut fleet.first, &ids, params.timeout()).await?;
    let last = issues.iter().map(|i| i.seen_at).max().unwrap_or(start);
    let latencies = issue_latencies(sandbox, &issues, &created_ns)?;
    let mut phase = finish(
        Scenario::Burst,
        params,
        sandbox,
        fleet,
        before,
        last.duration_since(start),
        Some(latencies),
    )
    .await?;
    phase.issued_in = Some(issued_in);
    let tickets: Vec<Ticket> = ids
        .into_iter()
        .zip(issues)
        .map(|(request_id, issue)| Ticket {
            request_id,
            issue_id: issue.issue_id,
        })
        .collect();
    phase.exactly_once = exactly_once::check_issues(sandbox, &tickets, issues_before);
    Ok((phase, tickets))
}

/// Moves every card to Approved as a Jira user (all at once, or keeping `in_flight` moves
/// awaiting approval; see [`moves`]) and waits until every request is approved in Teleport;
/// then, once settled, checks each was resolved once.
async fn decisions(
    params: &Params,
    sandbox: &Sandbox,
    fleet: &mut Fleet,
    tickets: &[Ticket],
) -> Result<Phase> {
    let before = Before::read(sandbox, Some(fleet))?;
    let start = Instant::now();
    let moves = moves::approve_all(
        sandbox,
        &mut fleet.first,
        tickets,
        params.in_flight,
        params.timeout(),
    )
    .await
    .with_context(|| calls_so_far(sandbox, before.jira))?;
    let last = moves.seen_at.iter().copied().max().unwrap_or(start);
    let latencies = moves
        .seen_at
        .iter()
        .zip(&moves.moved_at)
        .map(|(seen, moved)| seen.saturating_duration_since(*moved).as_secs_f64() * 1000.0)
        .collect();
    let mut phase = finish(
        Scenario::Decisions,
        params,
        sandbox,
        fleet,
        before,
        last.duration_since(start),
        measure::summarize(latencies),
    )
    .await?;
    phase.issued_in = Some(moves.issued_in);
    phase.in_flight = params.in_flight;
    let ids: Vec<String> = tickets.iter().map(|t| t.request_id.clone()).collect();
    phase.exactly_once = exactly_once::check_resolutions(sandbox, &ids);
    Ok(phase)
}

/// Creates N pending requests, then starts the plugin and waits for all their issues.
pub async fn catch_up(params: &Params) -> Result<Phase> {
    let sandbox = Sandbox::start(&params.tuning).await?;
    sandbox.jira.faults().set_latency(params.latency);
    let ids = (0..params.n)
        .map(|index| sandbox.create_request(index))
        .collect::<Result<Vec<_>>>()?;
    let before = Before::read(&sandbox, None)?;
    let spawned_ns = unix_nanos();
    let mut plugin = sandbox.spawn_plugin(&params.binary)?;
    let ready = plugin.wait_ready(params.timeout()).await?;
    let issues = probe::wait_for_issues(&sandbox, &mut plugin, &ids, params.timeout()).await?;
    let spawned_at = plugin.spawned_at();
    let last = issues.iter().map(|i| i.seen_at).max().unwrap_or(spawned_at);
    let latencies = issue_latencies(&sandbox, &issues, &vec![spawned_ns; issues.len()])?;
    let fleet = Fleet::single(plugin);
    let mut phase = finish(
        Scenario::CatchUp,
        params,
        &sandbox,
        &fleet,
        before,
        last.duration_since(spawned_at),
        Some(latencies),
    )
    .await?;
    phase.ready = Some(ready);
    fleet.stop().await?;
    Ok(phase)
}
