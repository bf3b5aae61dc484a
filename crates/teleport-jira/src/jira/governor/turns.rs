//! Whose turn it is. A call waits on the [`Notify`] of its priority; whatever opens room (a call
//! ends, a waiter gives up) wakes as many waiters as may start, from the highest priority down,
//! and one waiter (the timekeeper) sleeps until a pause ends or the pace allows the next start.
//! Waking every waiter at each change instead made a burst of a thousand calls cost a quarter
//! of a million wake-ups, and under a pace every waiter woke at every slot to find it taken.

use tokio::time::Instant;

use super::{Governor, Permit, Priority, State};
use crate::lock::lock;

/// How many waiters of each priority to wake.
pub(super) type Wakes = [usize; 4];

impl Governor {
    /// Waits until a call of `priority` may start: no pause in force, room in flight (room kept
    /// for the calls of higher priority that wait), and its slot in the pace reached, which goes
    /// to the highest priority waiting. The slot is taken when it comes, not reserved ahead: a
    /// pause set meanwhile holds every call, and a more urgent call that arrives meanwhile goes
    /// first.
    pub async fn acquire(&self, priority: Priority) -> Permit<'_> {
        let mut waiting = Waiting::new(self, priority);
        loop {
            waiting.age();
            let notified = self.turns[waiting.priority as usize].notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let Err(look_again) = self.try_start(&waiting) else {
                break;
            };
            // Look again when this waiter keeps the time or is promoted, if not woken first.
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
        waiting.started();
        Permit {
            governor: self,
            started: Instant::now(),
        }
    }

    /// One look at the state for `waiting`; wakes whoever the outcome concerns.
    fn try_start(&self, waiting: &Waiting<'_>) -> Result<(), Option<Instant>> {
        let now = Instant::now();
        let mut state = lock(&self.state);
        let kept_time = state.timekeeper == Some(waiting.id);
        let verdict = state.try_start(waiting.id, waiting.priority, now);
        let hand_on = match verdict {
            // The next slot in the pace needs its timekeeper; after a pause, the room the
            // timekeeper found is everyone's.
            Ok(()) => kept_time || state.blocked_until(now).is_some(),
            // The timekeeper found no room (or a higher priority waiting): it hands the watch on.
            Err(None) => kept_time,
            Err(Some(_)) => false,
        };
        let wakes = if hand_on {
            state.timekeeper = None;
            state.whom_to_wake(now)
        } else {
            Wakes::default()
        };
        drop(state);
        self.wake(wakes);
        verdict
    }

    pub(super) fn wake(&self, wakes: Wakes) {
        for (turn, count) in self.turns.iter().zip(wakes) {
            for _ in 0..count {
                turn.notify_one();
            }
        }
    }
}

impl State {
    /// Who to wake now: a timekeeper if time holds every call and nobody keeps it, else one
    /// waiter per call that may start, highest priority first (one at a time under a pace).
    pub(super) fn whom_to_wake(&mut self, now: Instant) -> Wakes {
        let mut wakes = Wakes::default();
        let Some(top) = self.waiting.iter().position(|&count| count > 0) else {
            return wakes;
        };
        if self.blocked_until(now).is_some() {
            if self.timekeeper.is_none() {
                wakes[top] = 1;
            }
            return wakes;
        }
        let mut room = self.allowed_in_flight().saturating_sub(self.in_flight);
        if self.rate.is_some() {
            room = room.min(1);
        }
        for (wake, &count) in wakes.iter_mut().zip(&self.waiting).skip(top) {
            *wake = room.min(count);
            room -= *wake;
        }
        wakes
    }

    /// When a pause or the pace allows the next start, if not now.
    pub(super) fn blocked_until(&mut self, now: Instant) -> Option<Instant> {
        if let Some(until) = self.paused_until {
            if now < until {
                return Some(until.max(self.next_start));
            }
            self.paused_until = None;
        }
        (self.next_start > now).then_some(self.next_start)
    }
}

/// A call counted as waiting; a caller that gives up before its turn is no longer counted.
pub(super) struct Waiting<'a> {
    governor: &'a Governor,
    id: u64,
    /// The priority it waits at now: one step higher for every [`super::AGING`] waited.
    priority: Priority,
    since: Instant,
    done: bool,
}

impl<'a> Waiting<'a> {
    fn new(governor: &'a Governor, priority: Priority) -> Self {
        let mut state = lock(&governor.state);
        state.waiting[priority as usize] += 1;
        state.waiters_seen += 1;
        let id = state.waiters_seen;
        drop(state);
        Self {
            governor,
            id,
            priority,
            since: Instant::now(),
            done: false,
        }
    }

    /// Moves up one priority for every [`super::AGING`] waited, so a steady stream of
    /// higher-priority calls never starves a repair for good.
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
        self.priority.higher().map(|_| self.since + super::AGING)
    }

    /// The call took its slot (which counted it out of the waiting).
    fn started(mut self) {
        self.done = true;
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = lock(&self.governor.state);
        state.waiting[self.priority as usize] -= 1;
        if state.timekeeper == Some(self.id) {
            state.timekeeper = None;
        }
        // The room it was kept, or the time it kept, goes to another.
        let wakes = state.whom_to_wake(Instant::now());
        drop(state);
        self.governor.wake(wakes);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.governor.state);
        state.in_flight -= 1;
        let wakes = state.whom_to_wake(Instant::now());
        drop(state);
        self.governor.wake(wakes);
    }
}
