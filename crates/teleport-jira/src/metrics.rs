//! The process's Prometheus metrics, served at `/metrics`.
//!
//! One [`Metrics`] is made at start-up and shared (by `Arc`) with the Jira and Teleport clients,
//! the engine and the HTTP servers; there is no global registry, so every test process and every
//! client built for `check` has its own. The readiness inputs (watch up, Jira's last answer) are
//! metrics too, so what `/readyz` decides is visible in `/metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// What `/metrics` answers with: OpenMetrics text, which Prometheus scrapes natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabel {
    pub call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallErrorLabel {
    pub call: &'static str,
    pub code: String,
}

/// Every outcome [`Metrics::webhook_delivery`] is called with.
pub const WEBHOOK_OUTCOMES: [&str; 7] = [
    "accepted",
    "ignored",
    "redelivered",
    "unauthorized",
    "malformed",
    "refused",
    "unavailable",
];

type Latencies = Family<CallLabel, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric the plugin keeps, and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    /// Watch events (and listings) by the state the request was in.
    pub requests_seen: Family<StateLabel, Counter>,
    /// Requests currently known, by state (set just before each scrape).
    pub requests: Family<StateLabel, Gauge>,
    pub issues_created: Counter,
    /// Issues moved, by the status they were moved to.
    pub issue_transitions: Family<StatusLabel, Counter>,
    pub webhook_deliveries: Family<OutcomeLabel, Counter>,
    pub jira_call_duration: Latencies,
    pub jira_call_errors: Family<CallErrorLabel, Counter>,
    pub teleport_call_duration: Latencies,
    pub teleport_call_errors: Family<CallErrorLabel, Counter>,
    /// Requests waiting for or in a reconcile step (set just before each scrape).
    pub queue_depth: Gauge,
    /// Reconcile steps that failed and were scheduled again.
    pub retries: Counter,
    /// From the first signal about a request to the end of the step that brought it in line.
    pub reconcile_lag: Histogram,
    pub watch_connected: Gauge,
    /// When Jira last answered a call (any HTTP answer but a 5xx), as Unix seconds.
    pub jira_last_answer: FloatGauge,
    pub ready: Gauge,
}

fn latency_histogram() -> Histogram {
    // 5 ms to about 20 s: Jira Cloud answers in tens to hundreds of milliseconds, and a call that
    // hits the 10 s timeout must still land in a bucket.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("teleport_jira");
        let metrics = Self {
            requests_seen: Family::default(),
            requests: Family::default(),
            issues_created: Counter::default(),
            issue_transitions: Family::default(),
            webhook_deliveries: Family::default(),
            jira_call_duration: Family::new_with_constructor(latency_histogram),
            jira_call_errors: Family::default(),
            teleport_call_duration: Family::new_with_constructor(latency_histogram),
            teleport_call_errors: Family::default(),
            queue_depth: Gauge::default(),
            retries: Counter::default(),
            reconcile_lag: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            watch_connected: Gauge::default(),
            jira_last_answer: FloatGauge::default(),
            ready: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "requests_seen",
            "Access request events seen, by the request's state",
            metrics.requests_seen.clone(),
        );
        registry.register(
            "requests",
            "Access requests currently known, by state",
            metrics.requests.clone(),
        );
        registry.register(
            "issues_created",
            "Jira issues created for access requests",
            metrics.issues_created.clone(),
        );
        registry.register(
            "issue_transitions",
            "Jira issues moved, by the status they were moved to",
            metrics.issue_transitions.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Jira webhook deliveries, by outcome",
            metrics.webhook_deliveries.clone(),
        );
        registry.register(
            "jira_call_duration_seconds",
            "Duration of Jira REST calls (each attempt), by call",
            metrics.jira_call_duration.clone(),
        );
        registry.register(
            "jira_call_errors",
            "Failed Jira REST calls (each attempt), by call and HTTP status or transport error",
            metrics.jira_call_errors.clone(),
        );
        registry.register(
            "teleport_call_duration_seconds",
            "Duration of Teleport Auth Service calls, by call",
            metrics.teleport_call_duration.clone(),
        );
        registry.register(
            "teleport_call_errors",
            "Failed Teleport Auth Service calls, by call and gRPC code",
            metrics.teleport_call_errors.clone(),
        );
        registry.register(
            "queue_depth",
            "Access requests waiting for or in a reconcile step",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "retries",
            "Reconcile steps that failed and were scheduled again",
            metrics.retries.clone(),
        );
        registry.register(
            "reconcile_lag_seconds",
            "Time from the first signal about a request to the end of the step that brought it in line",
            metrics.reconcile_lag.clone(),
        );
        registry.register(
            "watch_connected",
            "1 while the watch on Teleport's access requests is established",
            metrics.watch_connected.clone(),
        );
        registry.register(
            "jira_last_answer_timestamp_seconds",
            "When Jira last answered a call (any answer but a 5xx), in Unix seconds",
            metrics.jira_last_answer.clone(),
        );
        registry.register(
            "ready",
            "1 while /readyz answers 200",
            metrics.ready.clone(),
        );
        // Series an alert rule would watch exist from the start, at zero, instead of appearing
        // with the first event.
        for outcome in WEBHOOK_OUTCOMES {
            drop(
                metrics
                    .webhook_deliveries
                    .get_or_create(&OutcomeLabel { outcome }),
            );
        }
        for state in ["pending", "approved", "denied", "promoted", "deleted"] {
            drop(metrics.requests_seen.get_or_create(&StateLabel { state }));
        }
        Self {
            registry,
            ..metrics
        }
    }

    /// Records one Jira call attempt: its duration, and its error code when it failed.
    pub fn jira_call(&self, call: &'static str, elapsed: Duration, outcome: CallOutcome) {
        self.jira_call_duration
            .get_or_create(&CallLabel { call })
            .observe(elapsed.as_secs_f64());
        if let CallOutcome::Failed { code, answered } = outcome {
            self.jira_call_errors
                .get_or_create(&CallErrorLabel { call, code })
                .inc();
            if !answered {
                return;
            }
        }
        self.jira_last_answer.set(unix_now());
    }

    /// Records one Teleport call: its duration, and its gRPC code when it failed.
    pub fn teleport_call(&self, call: &'static str, elapsed: Duration, failure: Option<String>) {
        self.teleport_call_duration
            .get_or_create(&CallLabel { call })
            .observe(elapsed.as_secs_f64());
        if let Some(code) = failure {
            self.teleport_call_errors
                .get_or_create(&CallErrorLabel { call, code })
                .inc();
        }
    }

    pub fn webhook_delivery(&self, outcome: &'static str) {
        debug_assert!(WEBHOOK_OUTCOMES.contains(&outcome), "{outcome}");
        self.webhook_deliveries
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub fn issue_moved(&self, status: &str) {
        self.issue_transitions
            .get_or_create(&StatusLabel {
                status: status.to_owned(),
            })
            .inc();
    }

    /// Seconds since Jira last answered, or `None` if it never has.
    pub fn jira_silence(&self) -> Option<f64> {
        let last = self.jira_last_answer.get();
        (last > 0.0).then(|| (unix_now() - last).max(0.0))
    }

    /// The registry rendered as OpenMetrics text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// How a Jira call attempt ended, for [`Metrics::jira_call`].
pub enum CallOutcome {
    Succeeded,
    /// `answered` is whether Jira itself replied (a 4xx or 429 is an answer; a 5xx or a lost
    /// connection is not).
    Failed {
        code: String,
        answered: bool,
    },
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or_default()
}

/// Sets a gauge to a count; a count beyond `i64` (never in practice) saturates.
pub fn set_gauge(gauge: &Gauge<i64, AtomicI64>, value: usize) {
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_the_prefix_and_total_suffix() {
        let metrics = Metrics::new();
        metrics.issues_created.inc();
        metrics.webhook_delivery("accepted");
        metrics.jira_call(
            "create_issue",
            Duration::from_millis(20),
            CallOutcome::Failed {
                code: "503".into(),
                answered: false,
            },
        );
        let text = metrics.render();
        assert!(
            text.contains("teleport_jira_issues_created_total 1"),
            "{text}"
        );
        assert!(
            text.contains("teleport_jira_webhook_deliveries_total{outcome=\"accepted\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "teleport_jira_jira_call_errors_total{call=\"create_issue\",code=\"503\"} 1"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains("teleport_jira_webhook_deliveries_total{outcome=\"refused\"} 0"),
            "outcomes exist before they happen: {text}"
        );
    }

    #[test]
    fn only_an_answer_from_jira_counts_as_jira_answering() {
        let metrics = Metrics::new();
        assert_eq!(metrics.jira_silence(), None);
        metrics.jira_call(
            "myself",
            Duration::ZERO,
            CallOutcome::Failed {
                code: "transport".into(),
                answered: false,
            },
        );
        assert_eq!(metrics.jira_silence(), None);
        metrics.jira_call(
            "issue",
            Duration::ZERO,
            CallOutcome::Failed {
                code: "404".into(),
                answered: true,
            },
        );
        assert!(metrics.jira_silence().is_some_and(|s| s < 5.0));
    }
}
