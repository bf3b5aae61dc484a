//! When a wait for milestones gives up: at its timeout, or once no request reached its milestone
//! for [`STALL`]. A plugin that leaves requests behind for good (the Go plugin does with requests
//! created while it was down) then fails its run in a minute instead of the whole timeout.

use std::time::{Duration, Instant};

/// A wait gives up once no request reached its milestone for this long.
pub const STALL: Duration = Duration::from_secs(60);

/// One wait's deadline and the last time it saw progress.
pub struct Patience {
    timeout: Duration,
    stall: Duration,
    deadline: Instant,
    progress_at: Instant,
}

impl Patience {
    pub fn new(timeout: Duration) -> Self {
        Self::with_stall(timeout, STALL)
    }

    fn with_stall(timeout: Duration, stall: Duration) -> Self {
        let now = Instant::now();
        Self {
            timeout,
            stall,
            deadline: now + timeout,
            progress_at: now,
        }
    }

    /// A request reached its milestone.
    pub fn progressed(&mut self) {
        self.progress_at = Instant::now();
    }

    /// `after 60s` or `for 60s with no progress`, once the wait should give up.
    pub fn exhausted(&self) -> Option<String> {
        let now = Instant::now();
        if now >= self.deadline {
            Some(format!("after {:?}", self.timeout))
        } else if now.duration_since(self.progress_at) >= self.stall {
            Some(format!("after {:?} with none reaching it", self.stall))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_at_the_timeout_or_after_a_stall() {
        let stall = Duration::from_millis(300);
        let mut patience = Patience::with_stall(Duration::from_secs(60), stall);
        assert_eq!(patience.exhausted(), None);
        std::thread::sleep(Duration::from_millis(200));
        patience.progressed();
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(patience.exhausted(), None);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            patience
                .exhausted()
                .is_some_and(|why| why.contains("with none"))
        );
        let over = Patience::with_stall(Duration::ZERO, Duration::from_secs(60));
        assert!(
            over.exhausted()
                .is_some_and(|why| why.starts_with("after 0ns"))
        );
    }
}
