//! Jira Cloud's rate limit as a run applies it to FakeJira: R calls per second from a bucket that
//! holds one second's worth, its refusals (429) with or without `Retry-After`.

use testkit::jira::RateLimit;

/// The limit asked for on the command line (`--jira-rate-limit`, `--no-retry-after`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JiraLimit {
    /// Calls per second Jira admits, sustained.
    pub per_second: f64,
    /// Whether a refusal says when to come back.
    pub retry_after: bool,
}

impl JiraLimit {
    /// The bucket holds one second's worth of calls (at least one).
    pub fn burst(&self) -> u32 {
        self.per_second.round().clamp(1.0, f64::from(u32::MAX)) as u32
    }

    /// FakeJira's token bucket for this limit.
    pub fn rate_limit(&self) -> RateLimit {
        let limit = RateLimit::new(self.per_second, self.burst());
        if self.retry_after {
            limit
        } else {
            limit.without_retry_after()
        }
    }

    /// `50/s` or `50/s, no Retry-After`.
    pub fn describe(&self) -> String {
        let without = if self.retry_after {
            ""
        } else {
            ", no Retry-After"
        };
        format!("{}/s{without}", self.per_second)
    }

    /// The fewest seconds `calls` Jira calls can take under this limit, a full bucket aside.
    pub fn floor_secs(&self, calls: usize) -> f64 {
        calls as f64 / self.per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_one_second() {
        let limit = JiraLimit {
            per_second: 49.6,
            retry_after: false,
        };
        assert_eq!(limit.burst(), 50);
        let bucket = limit.rate_limit();
        assert_eq!((bucket.burst, bucket.retry_after), (50, false));
        assert_eq!(limit.describe(), "49.6/s, no Retry-After");
        let tiny = JiraLimit {
            per_second: 0.2,
            retry_after: true,
        };
        assert_eq!(tiny.burst(), 1);
        assert!(tiny.rate_limit().retry_after);
        assert!((tiny.floor_secs(1) - 5.0).abs() < 1e-9);
    }
}
