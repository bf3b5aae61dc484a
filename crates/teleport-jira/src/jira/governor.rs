//! Jira's pace is the process's pace. Every call of the process goes through one governor, which
//!
//! - pauses every call when Jira pushes back: until `Retry-After` when Jira gives one (429, or a
//!   503 that carries it), else for an exponential back-off with jitter;
//! - paces call starts at a rate learned from the push-back: after a 429, a little under the rate
//!   Jira was answering at, then creeping up again one call per second each second
//!   (additive increase, multiplicative decrease, as TCP does), and slowing before the limit when
//!   Jira says it is near (`X-RateLimit-NearLimit: true`); `max_calls_per_second` caps it;
//! - keeps calls in flight under a limit that grows while Jira answers quickly and shrinks on
//!   push-back and when latency climbs; `max_concurrent_calls` is its ceiling;
//! - lets waiting calls go in order of [`Priority`]: new requests' issues first, then decisions,
//!   then repair look-ups and scans.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::lock::lock;

/// Calls in flight at first. While Jira announces no rate limit and never pushed back, the limit
/// grows by [`SLOW_START_GROWTH`] per answer up to the ceiling (TCP's slow start, faster), so a
/// burst into a healthy Jira reaches full speed within two round trips; a limited one never sees
/// a larger first wave.
const INITIAL_LIMIT: f64 = 16.0;
/// Growth per answer in slow start: the limit quadruples every round trip. Slow start ends at the
/// first answer that announces a rate limit and at the first push-back, so only a Jira that
/// showed no limit sees the larger waves; doubling took two round trips more to reach the ceiling
/// (a 1,000-request burst at 100 ms: 0.85 s).
const SLOW_START_GROWTH: f64 = 3.0;
/// The pace grows by at least this share of itself per second while Jira answers.
const GROWTH_SHARE: f64 = 0.05;
/// The slowest the learned pace goes: Jira always gets a call now and then to say it recovered.
const MIN_RATE: f64 = 1.0;
/// How much under the rate Jira answered at the pace is set after a 429.
const DECREASE: f64 = 0.9;
/// What a wave of calls refused without `Retry-After` leaves of the calls in flight.
const WAVE_DECREASE: f64 = 0.5;
/// The deepest one cut goes: a rate measured over a quiet second (another replica spent the
/// budget) does not send the pace to the floor at once.
const DEEPEST_CUT: f64 = 0.5;
/// The window over which the rate Jira answered at is measured.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// Recent latency this many times the usual means Jira is queueing: the limit shrinks.
const LATENCY_CLIMB: f64 = 3.0;
/// Latency under this never reads as a climb: a local Jira answers in a millisecond or two.
const LATENCY_FLOOR: Duration = Duration::from_millis(20);
/// Answers needed since the last cut before push-back cuts again: a call refused right after a
/// pause (Jira not yet ready again) says nothing about the pace, and must not halve it.
const MIN_EVIDENCE: usize = 4;
/// How long a call waits behind higher priorities before it is promoted one step.
const AGING: Duration = Duration::from_millis(250);
/// The longest pause taken for one push-back, whatever `Retry-After` says.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// Who waits first when Jira is the bottleneck.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Creating the issue of a new request: someone waits for it to appear.
    Create = 0,
    /// Reading and writing the issue of a request being decided or resolved.
    Decision = 1,
    /// Repair look-ups and sweeps: a request may be stuck until they answer.
    Background = 2,
    /// A periodic scan's re-reads of requests nothing announced a change for.
    Scan = 3,
}

impl Priority {
    fn higher(self) -> Option<Self> {
        match self {
            Self::Create => None,
            Self::Decision => Some(Self::Create),
            Self::Background => Some(Self::Decision),
            Self::Scan => Some(Self::Background),
        }
    }
}

/// How Jira answered a call, as far as its pace is concerned.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// Any answer that is not push-back; `near_limit` when Jira said the budget is nearly spent,
    /// `limited` when it announced a rate limit at all (`X-RateLimit-Limit`).
    Answered { near_limit: bool, limited: bool },
    /// 429, or 503 with `Retry-After`: Jira asks everyone to slow down.
    PushedBack { retry_after: Option<Duration> },
    /// No answer (a transport error or a 5xx without `Retry-After`): says nothing of the pace.
    Failed,
}

impl std::fmt::Debug for Governor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governor")
            .field("limit", &self.limit())
            .field("rate", &self.rate())
            .field("paused_for", &self.paused_for())
            .finish()
    }
}

pub struct Governor {
    state: Mutex<State>,
    /// Woken whenever a call ends or a pause is set, so waiters look again.
    changed: Notify,
}

struct State {
    ceiling: usize,
    /// Calls allowed in flight now (fractional so that additive increase is smooth).
    limit: f64,
    /// Until Jira announces a rate limit, pushes back or says it is near its limit, or the ceiling
    /// is reached: the limit grows by [`SLOW_START_GROWTH`] per answer; after, by one per round
    /// trip.
    slow_start: bool,
    in_flight: usize,
    /// Waiting calls per priority.
    waiting: [usize; 4],
    paused_until: Option<Instant>,
    pause_backoff: Backoff,
    /// Call starts per second; `None` until Jira first pushes back (or unless configured).
    rate: Option<f64>,
    /// The configured `max_calls_per_second`, a cap the learned rate never passes.
    rate_cap: Option<f64>,
    next_start: Instant,
    /// When the last decrease happened: decreases come at most once per [`RATE_WINDOW`].
    last_decrease: Option<Instant>,
    /// Answers since the last decrease (see [`MIN_EVIDENCE`]).
    answered_since_decrease: usize,
    /// When calls were answered, for the rate Jira answered at.
    answered_at: VecDeque<Instant>,
    /// Latency: a slow moving average (the usual, which follows a new normal within a few
    /// hundred answers, so a lasting change does not pin the limit down) and a fast one (now).
    usual: Option<Duration>,
    recent: Option<Duration>,
}

/// A call's place in flight; dropping it ends the call.
pub struct Permit<'a> {
    governor: &'a Governor,
    started: Instant,
}

impl Governor {
    pub fn new(ceiling: usize, rate_cap: Option<f64>) -> Self {
        let ceiling = ceiling.max(1);
        Self {
            state: Mutex::new(State {
                ceiling,
                limit: INITIAL_LIMIT.min(ceiling as f64),
                slow_start: true,
                in_flight: 0,
                waiting: [0; 4],
                paused_until: None,
                pause_backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(30)),
                rate: rate_cap,
                rate_cap,
                next_start: Instant::now(),
                last_decrease: None,
                answered_since_decrease: 0,
                answered_at: VecDeque::new(),
                usual: None,
                recent: None,
            }),
            changed: Notify::new(),
        }
    }

    /// Waits until a call of `priority` may start: no pause in force, room in flight, no waiting
    /// call of a higher priority, and its slot in the pace reached. The slot is taken when it
    /// comes, not reserved ahead: a pause set meanwhile holds every call, and a more urgent call
    /// that arrives meanwhile goes first.
    pub async fn acquire(&self, priority: Priority) -> Permit<'_> {
        let mut waiting = Waiting::new(self, priority);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            waiting.age();
            let verdict = lock(&self.state).try_start(waiting.priority, Instant::now());
            match verdict {
                Ok(()) => break,
                Err(look_again) => {
                    // Look again when a pause or the pace allows, or this call is promoted, if
                    // not woken first.
                    let until = [look_again, waiting.next_promotion()]
                        .into_iter()
                        .flatten()
                        .min();
                    match until {
                        Some(until) => tokio::select! {
                            () = tokio::time::sleep_until(until) => {}
                            () = &mut notified => {}
                        },
                        None => notified.await,
                    }
                }
            }
        }
        waiting.started();
        // The others waiting look again: the next slot in the pace may be theirs.
        self.changed.notify_waiters();
        Permit {
            governor: self,
            started: Instant::now(),
        }
    }

    /// The current pause, if one is in force (for logs and tests).
    pub fn paused_for(&self) -> Option<Duration> {
        let until = lock(&self.state).paused_until?;
        until.checked_duration_since(Instant::now())
    }

    /// The pace in force, in calls per second (`None`: unpaced).
    pub fn rate(&self) -> Option<f64> {
        lock(&self.state).rate
    }

    /// The calls allowed in flight now.
    pub fn limit(&self) -> usize {
        lock(&self.state).allowed_in_flight()
    }
}

/// A call counted as waiting; a caller that gives up before its turn is no longer counted.
struct Waiting<'a> {
    governor: &'a Governor,
    /// The priority it waits at now: one step higher for every [`AGING`] waited.
    priority: Priority,
    since: Instant,
    done: bool,
}

impl<'a> Waiting<'a> {
    fn new(governor: &'a Governor, priority: Priority) -> Self {
        lock(&governor.state).waiting[priority as usize] += 1;
        Self {
            governor,
            priority,
            since: Instant::now(),
            done: false,
        }
    }

    /// Moves up one priority for every [`AGING`] waited, so a steady stream of higher-priority
    /// calls never starves a repair for good.
    fn age(&mut self) {
        let Some(promoted) = self.priority.higher() else {
            return;
        };
        if self.next_promotion().is_some_and(|at| Instant::now() < at) {
            return;
        }
        let mut state = lock(&self.governor.state);
        state.waiting[self.priority as usize] -= 1;
        state.waiting[promoted as usize] += 1;
        self.priority = promoted;
        self.since = Instant::now();
    }

    /// When the call moves up a priority; `None` at the top.
    fn next_promotion(&self) -> Option<Instant> {
        self.priority.higher().map(|_| self.since + AGING)
    }

    /// The call took its slot (which counted it out of the waiting).
    fn started(mut self) {
        self.done = true;
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.governor.state).waiting[self.priority as usize] -= 1;
            // A lower priority may go now.
            self.governor.changed.notify_waiters();
        }
    }
}

impl Permit<'_> {
    /// Ends the call with Jira's answer, which adjusts the pace for every later call.
    pub fn answered(self, answer: Answer) {
        let now = Instant::now();
        let latency = now.duration_since(self.started);
        let mut state = lock(&self.governor.state);
        match answer {
            Answer::Answered {
                near_limit,
                limited,
            } => {
                if limited {
                    // A Jira that announces a rate limit gets no slow start: its pace is learned
                    // from a first wave no larger than the initial limit.
                    state.end_slow_start();
                }
                state.on_answer(now, latency, near_limit);
            }
            Answer::PushedBack { retry_after } => state.on_push_back(now, retry_after),
            Answer::Failed => {}
        }
        drop(state);
        // `Drop` releases the slot and wakes the waiters.
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        lock(&self.governor.state).in_flight -= 1;
        self.governor.changed.notify_waiters();
    }
}

impl State {
    fn allowed_in_flight(&self) -> usize {
        (self.limit.floor() as usize).clamp(1, self.ceiling)
    }

    /// `Ok(())` takes a slot now; `Err(Some(t))` asks to look again at `t` (a pause ends or the
    /// pace allows the next start), `Err(None)` when something changes.
    fn try_start(&mut self, priority: Priority, now: Instant) -> Result<(), Option<Instant>> {
        if let Some(until) = self.paused_until {
            if now < until {
                return Err(Some(until));
            }
            self.paused_until = None;
        }
        let higher_waiting = self.waiting[..priority as usize].iter().any(|&n| n > 0);
        if higher_waiting || self.in_flight >= self.allowed_in_flight() {
            return Err(None);
        }
        if self.next_start > now {
            return Err(Some(self.next_start));
        }
        self.waiting[priority as usize] -= 1;
        self.in_flight += 1;
        if let Some(rate) = self.rate {
            // From the slot this start took, so a waiter woken a little late does not slow the
            // pace; but never more than one slot back, so a quiet spell is not paid out as a burst.
            let interval = Duration::from_secs_f64(1.0 / rate);
            let slot = now
                .checked_sub(interval)
                .map_or(now, |one_back| self.next_start.max(one_back));
            self.next_start = slot + interval;
        }
        Ok(())
    }

    fn on_answer(&mut self, now: Instant, latency: Duration, near_limit: bool) {
        self.answered_at.push_back(now);
        while self
            .answered_at
            .front()
            .is_some_and(|t| now.duration_since(*t) > RATE_WINDOW)
        {
            self.answered_at.pop_front();
        }
        self.pause_backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        self.answered_since_decrease += 1;
        if near_limit {
            // The first warning ends slow start, back where it began.
            self.end_slow_start();
        }
        if near_limit && self.may_decrease(now) {
            self.decrease(now, self.answered_rate());
            return;
        }
        // In slow start a climb says little: the first calls set what is usual, and a burst's
        // own latency (a Jira farther away than at start) is not queueing; push-back ends it.
        let climbed = self.latency_climbed(latency) && !self.slow_start;
        if climbed && self.may_decrease(now) {
            self.limit = (self.limit * DECREASE).max(1.0);
            tracing::debug!(
                latency_ms = latency.as_millis() as u64,
                in_flight_limit = self.allowed_in_flight(),
                "Jira is answering slower; fewer calls in flight"
            );
            self.last_decrease = Some(now);
            self.answered_since_decrease = 0;
            return;
        }
        // Additive increase: about one more call in flight per round trip's worth of answers,
        // and, at full pace, one more call per second each second (a twentieth more when that
        // is more, so a pace cut far down comes back within a minute).
        let growth = if self.slow_start {
            SLOW_START_GROWTH
        } else {
            1.0 / self.limit
        };
        self.limit = (self.limit + growth).min(self.ceiling as f64);
        if self.limit >= self.ceiling as f64 {
            self.slow_start = false;
        }
        if let Some(rate) = self.rate {
            let grown = rate + (1.0 / rate).max(GROWTH_SHARE);
            self.rate = Some(self.rate_cap.map_or(grown, |cap| grown.min(cap)));
        }
    }

    fn on_push_back(&mut self, now: Instant, retry_after: Option<Duration>) {
        let paused = self.paused_until.is_some_and(|until| until > now);
        let pause = match retry_after {
            Some(wait) => Some(wait),
            // Without Retry-After, the calls of one wave that were already on the wire when the
            // first refusal set a pause say nothing new: the back-off grows once per pause, not
            // once per refused call (a wave of 16 refusals would otherwise jump to its cap).
            None if paused => None,
            None => {
                // A new wave refused: fewer calls in the next one, so a bucket that admits a
                // few at a time is not met by the whole window again after every pause.
                self.limit = (self.limit * WAVE_DECREASE).max(1.0);
                Some(self.pause_backoff.next_delay())
            }
        };
        if let Some(pause) = pause {
            let until = now + pause.min(MAX_PAUSE);
            self.paused_until = Some(self.paused_until.map_or(until, |t| t.max(until)));
            self.next_start = self.next_start.max(until);
        }
        let pause = self
            .paused_until
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        self.end_slow_start();
        // Calls already on the wire when the pace was cut, and a call refused right after a
        // pause, say nothing new about the pace; nor does a refusal while no call waited for
        // its turn (the plugin asked little, someone else spent the budget): the pause is enough.
        let saturated = self.waiting.iter().any(|&n| n > 0);
        if !saturated || !self.may_decrease(now) || self.answered_since_decrease < MIN_EVIDENCE {
            return;
        }
        self.limit = (self.limit * DECREASE).max(1.0);
        self.decrease(now, self.answered_rate());
        tracing::info!(
            calls_per_second = self.rate.map(|rate| (rate * 10.0).round() / 10.0),
            in_flight_limit = self.allowed_in_flight(),
            pause_ms = pause.as_millis() as u64,
            "Jira is pushing back; slowing every Jira call down"
        );
    }

    /// A Jira that limits its rate is not helped by more calls in flight than at the start: the
    /// pace does the rest.
    fn end_slow_start(&mut self) {
        if self.slow_start {
            self.slow_start = false;
            self.limit = self.limit.min(INITIAL_LIMIT);
        }
    }

    fn may_decrease(&self, now: Instant) -> bool {
        self.last_decrease
            .is_none_or(|at| now.duration_since(at) >= RATE_WINDOW)
    }

    /// Sets the pace a little under `answered` (the rate Jira was answering at), and never above
    /// the pace already in force.
    fn decrease(&mut self, now: Instant, answered: f64) {
        self.last_decrease = Some(now);
        self.answered_since_decrease = 0;
        // Too few answers to tell Jira's rate (the first call after a quiet spell): pause only.
        if self.rate.is_none() && answered < 2.0 * MIN_RATE {
            return;
        }
        let target = (answered * DECREASE).max(MIN_RATE);
        let lowered = self
            .rate
            .map_or(target, |rate| rate.min(target.max(rate * DEEPEST_CUT)));
        self.rate = Some(self.rate_cap.map_or(lowered, |cap| lowered.min(cap)));
    }

    fn answered_rate(&self) -> f64 {
        self.answered_at.len() as f64 / RATE_WINDOW.as_secs_f64()
    }

    fn latency_climbed(&mut self, latency: Duration) -> bool {
        let usual = self.usual.map_or(latency, |u| (u * 127 + latency) / 128);
        self.usual = Some(usual);
        let recent = self.recent.map_or(latency, |r| (r * 7 + latency) / 8);
        self.recent = Some(recent);
        recent.as_secs_f64() > usual.max(LATENCY_FLOOR).as_secs_f64() * LATENCY_CLIMB
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_configured_rate_spaces_call_starts_evenly() {
        let governor = Governor::new(16, Some(10.0));
        let begin = Instant::now();
        for _ in 0..5 {
            governor
                .acquire(Priority::Decision)
                .await
                .answered(Answer::Answered {
                    near_limit: false,
                    limited: false,
                });
        }
        assert_eq!(begin.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_every_call_of_the_process() {
        let governor = Governor::new(16, None);
        governor
            .acquire(Priority::Create)
            .await
            .answered(Answer::PushedBack {
                retry_after: Some(Duration::from_secs(3)),
            });
        let begin = Instant::now();
        let _other = governor.acquire(Priority::Background).await;
        assert_eq!(begin.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn push_back_without_retry_after_backs_off_and_sets_a_pace() {
        let governor = Governor::new(16, None);
        for _ in 0..20 {
            governor
                .acquire(Priority::Decision)
                .await
                .answered(Answer::Answered {
                    near_limit: false,
                    limited: false,
                });
        }
        assert_eq!(governor.rate(), None, "no pace before Jira pushes back");
        let permit = governor.acquire(Priority::Decision).await;
        answer_while_a_call_waits(&governor, permit, Answer::PushedBack { retry_after: None });
        let pause = governor.paused_for().expect("a pause");
        assert!(pause >= Duration::from_millis(250), "{pause:?}");
        let rate = governor.rate().expect("a pace");
        assert!((17.0..=19.0).contains(&rate), "{rate}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wave_of_refusals_without_retry_after_backs_off_once_not_once_per_call() {
        let governor = Governor::new(16, None);
        let wave: Vec<_> = {
            let mut permits = Vec::new();
            for _ in 0..16 {
                permits.push(governor.acquire(Priority::Create).await);
            }
            permits
        };
        for permit in wave {
            permit.answered(Answer::PushedBack { retry_after: None });
        }
        // One step of the back-off (250 ms to 750 ms), not sixteen (which reach its 30 s cap).
        let pause = governor.paused_for().expect("a pause");
        assert!(pause <= Duration::from_millis(750), "{pause:?}");
    }

    /// Ends `permit` with `answer` while a call waits for its turn: the governor is the
    /// bottleneck, so push-back says the pace is too fast.
    fn answer_while_a_call_waits(governor: &Governor, permit: Permit<'_>, answer: Answer) {
        let background = Priority::Background as usize;
        lock(&governor.state).waiting[background] += 1;
        permit.answered(answer);
        lock(&governor.state).waiting[background] -= 1;
    }

    async fn answer_some(governor: &Governor, count: usize) {
        for _ in 0..count {
            governor
                .acquire(Priority::Decision)
                .await
                .answered(Answer::Answered {
                    near_limit: false,
                    limited: false,
                });
        }
    }

    #[tokio::test(start_paused = true)]
    async fn push_back_from_calls_already_in_flight_cuts_the_pace_once() {
        let governor = Governor::new(16, Some(100.0));
        answer_some(&governor, MIN_EVIDENCE).await;
        let first = governor.acquire(Priority::Decision).await;
        let second = governor.acquire(Priority::Decision).await;
        answer_while_a_call_waits(&governor, first, Answer::PushedBack { retry_after: None });
        let after_one = governor.rate();
        assert!(after_one < Some(100.0), "{after_one:?}");
        answer_while_a_call_waits(&governor, second, Answer::PushedBack { retry_after: None });
        assert_eq!(governor.rate(), after_one);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_while_no_call_waits_only_pauses() {
        let governor = Governor::new(16, Some(20.0));
        answer_some(&governor, MIN_EVIDENCE).await;
        governor
            .acquire(Priority::Decision)
            .await
            .answered(Answer::PushedBack { retry_after: None });
        assert!(governor.paused_for().is_some());
        assert_eq!(governor.rate(), Some(20.0));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_creates_go_before_waiting_scans() {
        let governor = std::sync::Arc::new(Governor::new(1, None));
        let busy = governor.acquire(Priority::Decision).await;
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for priority in [Priority::Background, Priority::Create] {
            let (governor, order) = (governor.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let permit = governor.acquire(priority).await;
                lock(&order).push(priority);
                drop(permit);
            }));
            tokio::task::yield_now().await;
        }
        drop(busy);
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(*lock(&order), [Priority::Create, Priority::Background]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_that_comes_while_decisions_wait_for_the_pace_takes_the_next_slot() {
        // Room in flight for all, but a pace of 10 calls a second: the decisions queue for
        // their slots, and a create that comes later must not queue behind them.
        let governor = std::sync::Arc::new(Governor::new(16, Some(10.0)));
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for priority in [Priority::Decision; 5]
            .into_iter()
            .chain([Priority::Create])
        {
            let (governor, order) = (governor.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let permit = governor.acquire(priority).await;
                lock(&order).push(priority);
                permit.answered(Answer::Answered {
                    near_limit: false,
                    limited: false,
                });
            }));
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.expect("task");
        }
        let create_at = lock(&order)
            .iter()
            .position(|p| *p == Priority::Create)
            .expect("the create ran");
        assert!(create_at <= 1, "the create went {create_at}th: {order:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_set_while_calls_wait_for_the_pace_holds_them_all() {
        let governor = std::sync::Arc::new(Governor::new(16, Some(10.0)));
        let first = governor.acquire(Priority::Decision).await;
        let begin = Instant::now();
        let waiter = {
            let governor = governor.clone();
            tokio::spawn(async move { drop(governor.acquire(Priority::Decision).await) })
        };
        tokio::task::yield_now().await;
        first.answered(Answer::PushedBack {
            retry_after: Some(Duration::from_secs(2)),
        });
        waiter.await.expect("task");
        assert!(begin.elapsed() >= Duration::from_secs(2));
    }

    #[test]
    fn a_lasting_rise_in_latency_becomes_the_usual_and_stops_shrinking_the_limit() {
        let governor = Governor::new(16, None);
        let mut state = lock(&governor.state);
        for _ in 0..100 {
            assert!(!state.latency_climbed(Duration::from_millis(5)));
        }
        let climbs: Vec<bool> = (0..2000)
            .map(|_| state.latency_climbed(Duration::from_millis(200)))
            .collect();
        assert!(
            climbs[..10].iter().any(|&climbed| climbed),
            "a sudden climb is seen"
        );
        assert!(
            !climbs[1900..].iter().any(|&climbed| climbed),
            "a new normal is not a climb"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_scan_waiting_behind_a_stream_of_decisions_gets_its_turn() {
        let governor = std::sync::Arc::new(Governor::new(1, Some(10.0)));
        let busy = governor.acquire(Priority::Decision).await;
        // Decisions keep arriving, one always waiting.
        let stream = {
            let governor = governor.clone();
            tokio::spawn(async move {
                loop {
                    drop(governor.acquire(Priority::Decision).await);
                }
            })
        };
        tokio::task::yield_now().await;
        let scan = {
            let governor = governor.clone();
            tokio::spawn(async move { drop(governor.acquire(Priority::Background).await) })
        };
        drop(busy);
        tokio::time::timeout(Duration::from_secs(10), scan)
            .await
            .expect("the scan got its turn")
            .expect("task");
        stream.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_waiting_for_room_sleeps_instead_of_spinning() {
        let governor = std::sync::Arc::new(Governor::new(1, None));
        let busy = governor.acquire(Priority::Decision).await;
        let waiter = {
            let governor = governor.clone();
            tokio::spawn(async move { drop(governor.acquire(Priority::Create).await) })
        };
        // A spinning waiter never lets paused time move on: this sleep would not return.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiter.is_finished());
        drop(busy);
        waiter.await.expect("task");
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_right_after_pauses_do_not_cut_the_pace() {
        let governor = Governor::new(16, Some(20.0));
        answer_some(&governor, MIN_EVIDENCE).await;
        for _ in 0..6 {
            let permit = governor.acquire(Priority::Decision).await;
            let refusal = Answer::PushedBack {
                retry_after: Some(Duration::from_secs(1)),
            };
            answer_while_a_call_waits(&governor, permit, refusal);
        }
        let rate = governor.rate().expect("a pace");
        assert!(rate >= 10.0, "one cut at most, to half at most: {rate}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_in_flight_shrinks_on_push_back_and_grows_back() {
        let governor = Governor::new(16, None);
        answer_some(&governor, MIN_EVIDENCE).await;
        assert_eq!(governor.limit(), 16);
        let permit = governor.acquire(Priority::Decision).await;
        let refusal = Answer::PushedBack {
            retry_after: Some(Duration::ZERO),
        };
        answer_while_a_call_waits(&governor, permit, refusal);
        assert_eq!(governor.limit(), 14);
        for _ in 0..200 {
            governor
                .acquire(Priority::Decision)
                .await
                .answered(Answer::Answered {
                    near_limit: false,
                    limited: false,
                });
        }
        assert_eq!(governor.limit(), 16);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_starts_small_and_quadruples_while_jira_keeps_up() {
        let governor = Governor::new(256, None);
        assert_eq!(governor.limit(), 16);
        answer_some(&governor, 16).await;
        assert_eq!(
            governor.limit(),
            64,
            "one round trip's answers quadruple it"
        );
        answer_some(&governor, 500).await;
        assert_eq!(governor.limit(), 256, "up to the ceiling");
        let permit = governor.acquire(Priority::Decision).await;
        answer_while_a_call_waits(
            &governor,
            permit,
            Answer::PushedBack {
                retry_after: Some(Duration::ZERO),
            },
        );
        let cut = governor.limit();
        answer_some(&governor, 10).await;
        assert!(
            governor.limit() <= cut + 1,
            "after push-back it grows by one per round trip"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_jira_that_announces_a_rate_limit_gets_no_slow_start() {
        let governor = Governor::new(256, None);
        for _ in 0..16 {
            governor
                .acquire(Priority::Create)
                .await
                .answered(Answer::Answered {
                    near_limit: false,
                    limited: true,
                });
        }
        assert_eq!(
            governor.limit(),
            16,
            "one per round trip at most: {governor:?}"
        );
    }
}
