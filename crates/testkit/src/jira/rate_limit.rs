//! Jira Cloud's burst limit, opt-in: a token bucket over every REST call (user-demand.md §5.6).
//! A call that finds the bucket empty is refused with 429 before Jira does anything, with
//! `Retry-After` (unless the knob leaves it out, as Cloud sometimes does: JRACLOUD-82801),
//! `X-RateLimit-Reset`, `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `RateLimit-Reason`.
//! Admitted calls carry the limit and what remains, and `X-RateLimit-NearLimit: true` when under
//! a fifth of the bucket is left.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::errors::json_response;

/// Below this share of the bucket, admitted answers say `X-RateLimit-NearLimit: true`.
const NEAR_LIMIT_SHARE: f64 = 0.2;

/// How FakeJira limits calls: `burst` calls at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second: the sustained rate.
    pub per_second: f64,
    /// The bucket's size: how many calls pass at once after a quiet spell.
    pub burst: u32,
    /// Whether a refusal carries `Retry-After`.
    pub retry_after: bool,
}

impl RateLimit {
    /// A limit whose refusals carry `Retry-After`.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst,
            retry_after: true,
        }
    }

    /// Refusals without `Retry-After`: the client must back off on its own.
    pub fn without_retry_after(mut self) -> Self {
        self.retry_after = false;
        self
    }
}

/// What the bucket decided for one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Admission {
    /// No limit is set.
    Unlimited,
    Admitted {
        limit: u32,
        remaining: u32,
    },
    Refused {
        limit: u32,
        /// Whole seconds until a token is back, rounded up: a client that waits that long
        /// finds one (unless others took it first).
        retry_after_secs: u64,
        send_retry_after: bool,
    },
}

struct Bucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn full(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            refilled: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> Admission {
        let rate = self.limit.per_second.max(0.0);
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(self.limit.burst));
        self.refilled = now;
        let limit = self.limit.burst;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            // Whole tokens only: a partly refilled one cannot be spent yet.
            let remaining = self.tokens.floor() as u32;
            return Admission::Admitted { limit, remaining };
        }
        let wait = if rate > 0.0 {
            Duration::from_secs_f64((1.0 - self.tokens) / rate)
        } else {
            Duration::from_secs(3600)
        };
        let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Admission::Refused {
            limit,
            retry_after_secs: retry_after_secs.max(1),
            send_retry_after: self.limit.retry_after,
        }
    }
}

/// The bucket, changeable at runtime, and the count of refused calls.
#[derive(Default)]
pub(crate) struct Limiter {
    bucket: Mutex<Option<Bucket>>,
    refused: AtomicUsize,
}

impl Limiter {
    fn bucket(&self) -> MutexGuard<'_, Option<Bucket>> {
        self.bucket.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets (with a full bucket) or removes the limit.
    pub(crate) fn set(&self, limit: Option<RateLimit>) {
        *self.bucket() = limit.map(Bucket::full);
    }

    pub(crate) fn limit(&self) -> Option<RateLimit> {
        self.bucket().as_ref().map(|b| b.limit)
    }

    /// Takes a token for a call arriving now.
    pub(crate) fn admit(&self) -> Admission {
        let admission = match self.bucket().as_mut() {
            None => Admission::Unlimited,
            Some(bucket) => bucket.take(Instant::now()),
        };
        if matches!(admission, Admission::Refused { .. }) {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        admission
    }

    pub(crate) fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Jira's 429: the error collection, `Retry-After: <secs>` when `send_retry_after`, a reset
/// `secs` from now, and the rest of the `X-RateLimit-*` set.
pub(crate) fn too_many_requests(limit: u32, secs: u64, send_retry_after: bool) -> Response {
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"errorMessages": ["Rate limit exceeded."], "errors": {}}),
    );
    let headers = response.headers_mut();
    if send_retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
    headers.insert("x-ratelimit-nearlimit", HeaderValue::from_static("true"));
    headers.insert(
        "ratelimit-reason",
        HeaderValue::from_static("jira-burst-based"),
    );
    if let Some(reset) = iso_in(secs) {
        headers.insert("x-ratelimit-reset", reset);
    }
    response
}

/// The limit and what remains, on an admitted call's answer.
pub(crate) fn mark_admitted(headers: &mut HeaderMap, limit: u32, remaining: u32) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    if f64::from(remaining) < f64::from(limit) * NEAR_LIMIT_SHARE {
        headers.insert("x-ratelimit-nearlimit", HeaderValue::from_static("true"));
    }
}

/// `now + secs` as an ISO 8601 timestamp to the second, e.g. `2026-11-25T07:51:18Z`.
fn iso_in(secs: u64) -> Option<HeaderValue> {
    let secs = i64::try_from(secs).ok()?;
    let at = (OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .replace_nanosecond(0)
        .ok()?;
    HeaderValue::from_str(&at.format(&Rfc3339).ok()?).ok()
}
