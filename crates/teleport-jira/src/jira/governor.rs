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

mod turns;

/// Calls in flight at first. While Jira announces no rate limit and never pushed back, the limit
/// grows by [`SLOW_START_GROWTH`] per answer up to the ceiling (TCP's slow start, faster), so a
/// burst into a healthy Jira runs at full speed from the second round trip; a limited one never
/// sees a larger first wave.
const INITIAL_LIMIT: f64 = 16.0;
/// Growth per answer in slow start: the limit grows sixteenfold every round trip, so the first
/// wave's answers take a default ceiling of 256 at once. Slow start ends at the first answer that
/// announces a rate limit and at the first push-back, so only a Jira that showed no limit sees the
/// larger waves. Quadrupling took two round trips more to reach 256, yet a 1,000-request burst at
/// 100 ms gained little (0.63 to 0.65 s instead of 0.66 s): what holds it is the work around each
/// creation (on two cores, plugin and fakes take 0.30 s for the same burst at no latency, and
/// 0.49 s at 100 ms with no limit in flight at all), not the ramp.
const SLOW_START_GROWTH: f64 = 15.0;
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
    /// Where the calls of each priority wait for their turn (see [`turns`]).
    turns: [Notify; 4],
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
    /// The waiter that sleeps until a pause ends or the pace allows the next start; the others
    /// wait to be woken.
    timekeeper: Option<u64>,
    /// Waiters counted so far, which numbers them.
    waiters_seen: u64,
    /// How often a waiter looked at the state (tests count wake-ups with it).
    #[cfg(test)]
    looks: usize,
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
                timekeeper: None,
                waiters_seen: 0,
                #[cfg(test)]
                looks: 0,
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
            turns: Default::default(),
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

impl State {
    fn allowed_in_flight(&self) -> usize {
        (self.limit.floor() as usize).clamp(1, self.ceiling)
    }

    /// `Ok(())` takes a slot now for waiter `id`; `Err(Some(t))` asks it to look again at `t`
    /// (it keeps the time until a pause ends or the pace allows the next start), `Err(None)` to
    /// wait until woken.
    fn try_start(
        &mut self,
        id: u64,
        priority: Priority,
        now: Instant,
    ) -> Result<(), Option<Instant>> {
        #[cfg(test)]
        {
            self.looks += 1;
        }
        if let Some(until) = self.blocked_until(now) {
            let keeper = *self.timekeeper.get_or_insert(id);
            return Err((keeper == id).then_some(until));
        }
        let higher_waiting: usize = self.waiting[..priority as usize].iter().sum();
        // Under a pace the next slot goes to the highest priority; otherwise room is kept for
        // every waiting call of a higher one.
        let paced_behind = higher_waiting > 0 && self.rate.is_some();
        if paced_behind || self.in_flight + higher_waiting >= self.allowed_in_flight() {
            return Err(None);
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
        // is more, so a pace cut far down comes back within a minute). Slow start grows only
        // while calls in flight and waiting would fill at least half the limit (as TCP validates
        // its window): a few calls of a quiet spell (the start-up checks) say nothing of the wave
        // Jira takes, and must not make the first wave of a burst larger.
        let asked = self.in_flight + self.waiting.iter().sum::<usize>();
        let growth = match self.slow_start {
            true if asked * 2 >= self.allowed_in_flight() => SLOW_START_GROWTH,
            true => 0.0,
            false => 1.0 / self.limit,
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
mod tests;
