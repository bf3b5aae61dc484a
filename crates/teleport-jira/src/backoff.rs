//! Decorrelated-jitter backoff, the schedule Teleport's Go plugins use for reconnects and
//! compare-and-swap retries (`sleep = min(cap, base + rand[0, 3 * sleep - base))`), so that many
//! clients retrying at once spread out instead of stampeding.

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    current: Duration,
}

impl Backoff {
    /// Watch reconnects: 20 ms to 5 s, as in the Go plugin's watcher.
    pub fn reconnect() -> Self {
        Self::new(Duration::from_millis(20), Duration::from_secs(5))
    }

    /// Plugin-data compare-and-swap retries: 1 ms to 1 s, as in the Go plugin.
    pub fn compare_and_swap() -> Self {
        Self::new(Duration::from_millis(1), Duration::from_secs(1))
    }

    /// `base` is the first step; `cap` the largest. A `cap` below `base` is raised to `base`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap: cap.max(base),
            current: base,
        }
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let upper = (self.current * 3).max(self.base + Duration::from_micros(1));
        let jittered = rand::rng().random_range(self.base..upper);
        self.current = jittered.min(self.cap);
        self.current
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.current = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_between_base_and_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_secs(5));
        for _ in 0..200 {
            let delay = backoff.next_delay();
            assert!(
                delay >= Duration::from_millis(20) && delay <= Duration::from_secs(5),
                "{delay:?}"
            );
        }
    }

    #[test]
    fn delays_grow_until_reset() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(60));
        // Each step draws from [base, 3 × previous): the log of the delay drifts up slowly, so give
        // it enough steps that reaching 1 s is all but certain.
        let grown = (0..500)
            .map(|_| backoff.next_delay())
            .max()
            .unwrap_or_default();
        assert!(grown > Duration::from_secs(1), "{grown:?}");
        backoff.reset();
        assert!(backoff.next_delay() < Duration::from_millis(30));
    }
}
