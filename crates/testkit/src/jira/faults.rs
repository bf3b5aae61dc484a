//! Fault knobs, changeable at runtime from any thread: latency before every API call, queued
//! failures (5xx with Jira-like bodies, 429 with or without `Retry-After`), webhook drop and
//! duplicate probabilities, and the search index lag. Random choices use one seeded RNG so a
//! chaos run can be replayed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::sync::Notify;

use super::errors::json_response;
use super::rate_limit::too_many_requests;

/// What an injected fault answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Status(u16),
    RateLimited {
        retry_after_secs: Option<u64>,
    },
    /// The call is carried out, then the reply is lost to an edge error (a gateway timeout after
    /// the write): the caller cannot tell whether it happened.
    AfterProcessing(u16),
}

#[derive(Debug)]
struct Queued {
    remaining: u32,
    fault: Fault,
    /// Only calls whose path contains this are hit; all calls when `None`.
    path_filter: Option<String>,
}

#[derive(Debug, Default)]
struct Knobs {
    latency: Duration,
    queue: VecDeque<Queued>,
    webhook_drop_rate: f64,
    webhook_duplicate_rate: f64,
    search_lag: Duration,
    holds: Vec<Hold>,
    /// `POST issue/bulk` answers 405 as on a Jira that has no such resource.
    no_bulk_create: bool,
}

#[derive(Debug)]
struct Hold {
    method: String,
    path_suffix: String,
    reply: Arc<HeldReply>,
}

/// One reply held back: the call was carried out (its answer is what Jira held at that moment),
/// and the answer leaves only when the test releases it. For races a test must order exactly,
/// such as a card moved while a caller is reading it.
#[derive(Debug, Default)]
pub struct HeldReply {
    reached: Notify,
    released: Notify,
}

impl HeldReply {
    /// Resolves once a call was caught and is being held.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the held answer go (or the next call caught, when none is held yet).
    pub fn release(&self) {
        self.released.notify_one();
    }
}

/// Runtime fault injection. Obtain it with `FakeJira::faults()`.
#[derive(Debug)]
pub struct Faults {
    knobs: Mutex<Knobs>,
    rng: Mutex<StdRng>,
}

impl Faults {
    pub(crate) fn new(seed: u64, search_lag: Duration) -> Self {
        let knobs = Knobs {
            search_lag,
            ..Knobs::default()
        };
        Self {
            knobs: Mutex::new(knobs),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    fn knobs(&self) -> MutexGuard<'_, Knobs> {
        self.knobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every API call waits this long before anything else happens.
    pub fn set_latency(&self, latency: Duration) {
        self.knobs().latency = latency;
    }

    /// The next `n` API calls answer `status` (e.g. 500, 502, 503) without being processed.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.push(n, Fault::Status(status), None);
    }

    /// Like [`Faults::fail_next`], but only for calls whose path contains `path_part`.
    pub fn fail_next_matching(&self, path_part: &str, n: u32, status: u16) {
        self.push(n, Fault::Status(status), Some(path_part.to_string()));
    }

    /// The next `n` calls whose path contains `path_part` are carried out, but answer `status`
    /// (e.g. 504) as an edge proxy does when Jira replied too late.
    pub fn fail_after_processing_next(&self, path_part: &str, n: u32, status: u16) {
        self.push(
            n,
            Fault::AfterProcessing(status),
            Some(path_part.to_string()),
        );
    }

    /// The next `n` API calls answer 429 with `Retry-After: <secs>` and the `X-RateLimit-*` set.
    pub fn rate_limit_next(&self, n: u32, retry_after_secs: u64) {
        self.push(
            n,
            Fault::RateLimited {
                retry_after_secs: Some(retry_after_secs),
            },
            None,
        );
    }

    /// 429 without `Retry-After`, which Cloud sometimes sends (JRACLOUD-82801).
    pub fn rate_limit_next_without_retry_after(&self, n: u32) {
        self.push(
            n,
            Fault::RateLimited {
                retry_after_secs: None,
            },
            None,
        );
    }

    /// The probability (0..=1) that a webhook that should be delivered silently is not.
    pub fn set_webhook_drop_rate(&self, rate: f64) {
        self.knobs().webhook_drop_rate = rate.clamp(0.0, 1.0);
    }

    /// The probability (0..=1) that a webhook is delivered twice with the same identifier.
    pub fn set_webhook_duplicate_rate(&self, rate: f64) {
        self.knobs().webhook_duplicate_rate = rate.clamp(0.0, 1.0);
    }

    /// How long a write takes to become visible to JQL search.
    pub fn set_search_lag(&self, lag: Duration) {
        self.knobs().search_lag = lag;
    }

    /// Holds the answer of the next `method` call whose path ends with `path_suffix` (the query
    /// aside) until [`HeldReply::release`].
    pub fn hold_next_reply(&self, method: &str, path_suffix: &str) -> Arc<HeldReply> {
        let reply = Arc::new(HeldReply::default());
        self.knobs().holds.push(Hold {
            method: method.to_owned(),
            path_suffix: path_suffix.to_owned(),
            reply: Arc::clone(&reply),
        });
        reply
    }

    /// Removes queued failures and held replies (letting any held answer go), and resets latency
    /// and webhook rates (not the search lag).
    pub fn clear(&self) {
        let mut knobs = self.knobs();
        knobs.latency = Duration::ZERO;
        knobs.queue.clear();
        for hold in knobs.holds.drain(..) {
            hold.reply.release();
        }
        knobs.webhook_drop_rate = 0.0;
        knobs.webhook_duplicate_rate = 0.0;
    }

    fn push(&self, n: u32, fault: Fault, path_filter: Option<String>) {
        if n > 0 {
            self.knobs().queue.push_back(Queued {
                remaining: n,
                fault,
                path_filter,
            });
        }
    }

    pub(crate) fn latency(&self) -> Duration {
        self.knobs().latency
    }

    pub(crate) fn search_lag(&self) -> Duration {
        self.knobs().search_lag
    }

    /// Without bulk creation, `POST issue/bulk` finds only `issue/{id}`, which has no POST: 405,
    /// as an older Jira (or a proxy that lets only some paths through) answers.
    pub fn set_bulk_create(&self, served: bool) {
        self.knobs().no_bulk_create = !served;
    }

    pub(crate) fn bulk_create_served(&self) -> bool {
        !self.knobs().no_bulk_create
    }

    /// Consumes the first queued fault that applies to `path`.
    pub(crate) fn next_fault(&self, path: &str) -> Option<Fault> {
        let mut knobs = self.knobs();
        let pos = knobs.queue.iter().position(|q| {
            q.path_filter
                .as_deref()
                .is_none_or(|part| path.contains(part))
        })?;
        let entry = knobs.queue.get_mut(pos)?;
        entry.remaining -= 1;
        let fault = entry.fault.clone();
        if entry.remaining == 0 {
            knobs.queue.remove(pos);
        }
        Some(fault)
    }

    /// Waits out the hold armed for this call, if any, after it was served.
    pub(crate) async fn hold_reply(&self, method: &str, path: &str) {
        let reply = {
            let mut knobs = self.knobs();
            let Some(pos) = knobs
                .holds
                .iter()
                .position(|hold| hold.method == method && path.ends_with(&hold.path_suffix))
            else {
                return;
            };
            knobs.holds.remove(pos).reply
        };
        reply.reached.notify_one();
        reply.released.notified().await;
    }

    /// Rolls the dice for one webhook: (dropped, duplicated).
    pub(crate) fn webhook_fate(&self) -> (bool, bool) {
        let (drop_rate, dup_rate) = {
            let knobs = self.knobs();
            (knobs.webhook_drop_rate, knobs.webhook_duplicate_rate)
        };
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        let dropped = drop_rate > 0.0 && rng.random_bool(drop_rate);
        let duplicated = dup_rate > 0.0 && rng.random_bool(dup_rate);
        (dropped, duplicated)
    }

    /// Random bytes from the seeded generator (for webhook identifiers).
    pub(crate) fn random_bytes(&self) -> [u8; 16] {
        self.rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .random()
    }
}

impl Fault {
    pub(crate) fn status(&self) -> u16 {
        match self {
            Fault::Status(status) | Fault::AfterProcessing(status) => *status,
            Fault::RateLimited { .. } => 429,
        }
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        match self {
            Fault::Status(code) | Fault::AfterProcessing(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                if (502..=504).contains(&code) {
                    // Gateway errors come from the edge proxy, as HTML, not from Jira.
                    let reason = status.canonical_reason().unwrap_or("Error");
                    let body = format!(
                        "<html><head><title>{code} {reason}</title></head><body><h1>{code} {reason}</h1></body></html>"
                    );
                    let mut response =
                        (status, [(header::CONTENT_TYPE, "text/html")], body).into_response();
                    if code == 503 {
                        response
                            .headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    }
                    response
                } else {
                    json_response(
                        status,
                        &json!({"errorMessages": ["Internal server error"], "errors": {}}),
                    )
                }
            }
            Fault::RateLimited { retry_after_secs } => too_many_requests(
                100,
                retry_after_secs.unwrap_or(1),
                retry_after_secs.is_some(),
            ),
        }
    }
}
