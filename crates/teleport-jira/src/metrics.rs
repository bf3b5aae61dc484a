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
use prometheus_client::registry::Metric;
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
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// Why Jira may refuse the plugin, for [`Metrics::jira_refusing`]: by the error code a call got.
const JIRA_REFUSALS: [(&str, &str); 3] = [
    ("401", "unauthorized"),
    ("403", "forbidden"),
    ("certificate", "certificate"),
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoutingLabel {
    /// The rule that decided; empty when none matched.
    pub rule: String,
    /// `PROJECT/Issue type`, or `none` for a request kept off the board.
    pub target: String,
}

/// Why an Access Monitoring Rule was skipped or a recipient ignored, for [`Metrics::rule_errors`].
pub const RULE_ERROR_REASONS: [&str; 5] = ["parse", "evaluate", "schedule", "recipient", "target"];

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

/// Every series: its name after the `teleport_jira_` prefix (counters gain `_total` when
/// rendered) and its help text. One table, so the list an operator reads is in one place.
const SERIES: &[(&str, &str)] = &[
    (
        "requests_seen",
        "Access request events seen, by the request's state",
    ),
    ("requests", "Access requests currently known, by state"),
    ("issues_created", "Jira issues created for access requests"),
    (
        "issue_transitions",
        "Jira issues moved, by the status they were moved to",
    ),
    ("webhook_deliveries", "Jira webhook deliveries, by outcome"),
    (
        "jira_call_duration_seconds",
        "Duration of Jira REST calls (each attempt), by call",
    ),
    (
        "jira_call_errors",
        "Failed Jira REST calls (each attempt), by call and HTTP status or transport error",
    ),
    (
        "teleport_call_duration_seconds",
        "Duration of Teleport Auth Service calls, by call",
    ),
    (
        "teleport_call_errors",
        "Failed Teleport Auth Service calls, by call and gRPC code",
    ),
    (
        "queue_depth",
        "Access requests waiting for or in a reconcile step",
    ),
    (
        "retries",
        "Reconcile steps that failed and were scheduled again",
    ),
    (
        "reconcile_lag_seconds",
        "Time from the first signal about a request to the end of the step that brought it in line",
    ),
    (
        "watch_connected",
        "1 while the watch on Teleport's access requests is established",
    ),
    (
        "jira_last_answer_timestamp_seconds",
        "When Jira last answered a call (any answer but a 5xx), in Unix seconds",
    ),
    (
        "jira_refusing",
        "1 while Jira's latest answers refuse the plugin, by reason: unauthorized (a revoked or wrong token), forbidden (a lost permission), certificate (Jira's certificate is not trusted)",
    ),
    ("ready", "1 while /readyz answers 200"),
    (
        "step_panics",
        "Reconcile steps that panicked; the request is retried",
    ),
    (
        "oldest_unreconciled_seconds",
        "Age of the oldest signal about a request not yet brought in line (0 when none)",
    ),
    (
        "identity_expiry_timestamp_seconds",
        "When the Teleport credentials in use expire, in Unix seconds",
    ),
    (
        "routing_decisions",
        "Where new requests were sent, by the Access Monitoring Rule that decided (empty: none matched) and target (PROJECT/Issue type, or none)",
    ),
    (
        "rule_errors",
        "Access Monitoring Rules skipped for a request or recipients ignored, by reason (parse, evaluate, schedule, recipient, target: a project or issue type Jira refused); the log names the rule",
    ),
    (
        "access_monitoring_rules",
        "Access Monitoring Rules in force for this plugin",
    ),
    (
        "oncall_checks",
        "On-call checks of new pending requests (JSM Operations), by outcome: approved, not_on_call, not_eligible (no approving rule matched), unresolved (no Atlassian account id for the requester), failed",
    ),
    (
        "oncall_failures",
        "Failures of on-call checks, by cause: unauthorized, forbidden, not_found, rate_limited, server_error, timeout, unreachable, bad_answer, unexpected, review_refused",
    ),
    (
        "people",
        "Teleport users [jira.people] put on issues, by outcome (added: as watcher, reporter or mention; unresolved: no Jira user found for them; refused: Jira refused them or their part)",
    ),
    ("reminders", "Reminders posted on requests left pending"),
    ("audit_lines", "Lines appended to the audit file"),
];

/// The outcomes of an on-call check, for [`Metrics::oncall_checks`].
pub const ONCALL_OUTCOMES: [&str; 5] = [
    "approved",
    "not_on_call",
    "not_eligible",
    "unresolved",
    "failed",
];

/// Why an on-call check failed, for [`Metrics::oncall_failures`].
pub const ONCALL_FAILURES: [&str; 10] = [
    "unauthorized",
    "forbidden",
    "not_found",
    "rate_limited",
    "server_error",
    "timeout",
    "unreachable",
    "bad_answer",
    "unexpected",
    "review_refused",
];

/// What became of a person [`Metrics::people`] counts.
pub const PEOPLE_OUTCOMES: [&str; 3] = ["added", "unresolved", "refused"];

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
    /// 1 for the reason Jira refuses the plugin, while it does (see [`Metrics::jira_refusal`]).
    pub jira_refusing: Family<ReasonLabel, Gauge>,
    pub ready: Gauge,
    /// Reconcile steps that panicked (each is retried like a failed one).
    pub step_panics: Counter,
    /// Seconds since the oldest signal not yet brought in line; see
    /// [`Metrics::set_oldest_unreconciled`].
    pub oldest_unreconciled: FloatGauge,
    /// When the Teleport credentials in use expire, as Unix seconds; see
    /// [`Metrics::set_identity_expiry`].
    pub identity_expiry: FloatGauge,
    /// New requests by the rule that routed them and where.
    pub routing_decisions: Family<RoutingLabel, Counter>,
    /// Rules skipped for a request, or recipients ignored, by reason (see [`RULE_ERROR_REASONS`]).
    pub rule_errors: Family<ReasonLabel, Counter>,
    pub access_monitoring_rules: Gauge,
    /// On-call checks by outcome (see [`ONCALL_OUTCOMES`]).
    pub oncall_checks: Family<OutcomeLabel, Counter>,
    /// On-call check failures by cause (see [`ONCALL_FAILURES`]).
    pub oncall_failures: Family<ReasonLabel, Counter>,
    /// People `[jira.people]` put on issues, by outcome (see [`PEOPLE_OUTCOMES`]).
    pub people: Family<OutcomeLabel, Counter>,
    pub reminders: Counter,
    pub audit_lines: Counter,
}

fn latency_histogram() -> Histogram {
    // 5 ms to about 20 s: Jira Cloud answers in tens to hundreds of milliseconds, and a call that
    // hits the 10 s timeout must still land in a bucket.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

/// Registers each metric under its name with the help text [`SERIES`] gives it.
struct Registrar(Registry);

impl Registrar {
    fn add<M: Metric + Clone>(&mut self, name: &'static str, metric: M) -> M {
        let help = SERIES
            .iter()
            .find(|(series, _)| *series == name)
            .map_or("", |(_, help)| help);
        // A name missing from the table is a defect the unit tests catch (every series has help).
        debug_assert!(!help.is_empty(), "no help text for {name}");
        self.0.register(name, help, metric.clone());
        metric
    }
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
        let mut r = Registrar(Registry::with_prefix("teleport_jira"));
        let latencies = || Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let metrics = Self {
            requests_seen: r.add("requests_seen", Family::default()),
            requests: r.add("requests", Family::default()),
            issues_created: r.add("issues_created", Counter::default()),
            issue_transitions: r.add("issue_transitions", Family::default()),
            webhook_deliveries: r.add("webhook_deliveries", Family::default()),
            jira_call_duration: r.add("jira_call_duration_seconds", latencies()),
            jira_call_errors: r.add("jira_call_errors", Family::default()),
            teleport_call_duration: r.add("teleport_call_duration_seconds", latencies()),
            teleport_call_errors: r.add("teleport_call_errors", Family::default()),
            queue_depth: r.add("queue_depth", Gauge::default()),
            retries: r.add("retries", Counter::default()),
            reconcile_lag: r.add(
                "reconcile_lag_seconds",
                Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            ),
            watch_connected: r.add("watch_connected", Gauge::default()),
            jira_last_answer: r.add("jira_last_answer_timestamp_seconds", FloatGauge::default()),
            jira_refusing: r.add("jira_refusing", Family::default()),
            ready: r.add("ready", Gauge::default()),
            step_panics: r.add("step_panics", Counter::default()),
            oldest_unreconciled: r.add("oldest_unreconciled_seconds", FloatGauge::default()),
            identity_expiry: r.add("identity_expiry_timestamp_seconds", FloatGauge::default()),
            routing_decisions: r.add("routing_decisions", Family::default()),
            rule_errors: r.add("rule_errors", Family::default()),
            access_monitoring_rules: r.add("access_monitoring_rules", Gauge::default()),
            oncall_checks: r.add("oncall_checks", Family::default()),
            oncall_failures: r.add("oncall_failures", Family::default()),
            people: r.add("people", Family::default()),
            reminders: r.add("reminders", Counter::default()),
            audit_lines: r.add("audit_lines", Counter::default()),
            registry: r.0,
        };
        // Series an alert rule would watch exist from the start, at zero, instead of appearing
        // with the first event.
        for outcome in WEBHOOK_OUTCOMES {
            drop(
                metrics
                    .webhook_deliveries
                    .get_or_create(&OutcomeLabel { outcome }),
            );
        }
        for (_, reason) in JIRA_REFUSALS {
            drop(metrics.jira_refusing.get_or_create(&ReasonLabel { reason }));
        }
        for outcome in PEOPLE_OUTCOMES {
            drop(metrics.people.get_or_create(&OutcomeLabel { outcome }));
        }
        for reason in RULE_ERROR_REASONS {
            drop(metrics.rule_errors.get_or_create(&ReasonLabel { reason }));
        }
        for outcome in ONCALL_OUTCOMES {
            drop(
                metrics
                    .oncall_checks
                    .get_or_create(&OutcomeLabel { outcome }),
            );
        }
        for reason in ONCALL_FAILURES {
            drop(
                metrics
                    .oncall_failures
                    .get_or_create(&ReasonLabel { reason }),
            );
        }
        for state in ["pending", "approved", "denied", "promoted", "deleted"] {
            drop(metrics.requests_seen.get_or_create(&StateLabel { state }));
        }
        metrics
    }

    /// Sets [`Metrics::oldest_unreconciled`] from the age of the oldest signal not yet brought in
    /// line, `None` when every request is in line.
    pub fn set_oldest_unreconciled(&self, age: Option<Duration>) {
        self.oldest_unreconciled
            .set(age.map_or(0.0, |age| age.as_secs_f64()));
    }

    /// Sets [`Metrics::identity_expiry`] from the `not_after` of the credentials in use.
    pub fn set_identity_expiry(&self, not_after: SystemTime) {
        let seconds = not_after
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_secs_f64())
            .unwrap_or_default();
        self.identity_expiry.set(seconds);
    }

    /// Records one Jira call attempt: its duration, and its error code when it failed.
    pub fn jira_call(&self, call: &'static str, elapsed: Duration, outcome: CallOutcome) {
        self.jira_call_duration
            .get_or_create(&CallLabel { call })
            .observe(elapsed.as_secs_f64());
        if let CallOutcome::Failed { code, answered } = outcome {
            let refusal = JIRA_REFUSALS.iter().find(|(of, _)| *of == code);
            if let Some((_, reason)) = refusal {
                self.set_jira_refusing(Some(reason));
            }
            self.jira_call_errors
                .get_or_create(&CallErrorLabel { call, code })
                .inc();
            if !answered {
                return;
            }
        } else {
            self.set_jira_refusing(None);
        }
        self.jira_last_answer.set(unix_now());
    }

    /// Why Jira refuses the plugin now (its latest refusal, until a call succeeds).
    pub fn jira_refusal(&self) -> Option<&'static str> {
        JIRA_REFUSALS
            .iter()
            .map(|(_, reason)| *reason)
            .find(|reason| {
                self.jira_refusing
                    .get_or_create(&ReasonLabel { reason })
                    .get()
                    == 1
            })
    }

    /// Sets (or with `None` clears) the reason Jira refuses the plugin.
    pub fn set_jira_refusing(&self, refusing: Option<&'static str>) {
        for (_, reason) in JIRA_REFUSALS {
            let gauge = self.jira_refusing.get_or_create(&ReasonLabel { reason });
            gauge.set(i64::from(refusing == Some(reason)));
        }
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

    /// A person `[jira.people]` tried to put on an issue, by outcome (one of [`PEOPLE_OUTCOMES`]).
    pub fn person(&self, outcome: &'static str) {
        self.people.get_or_create(&OutcomeLabel { outcome }).inc();
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
    fn every_series_is_registered_once_with_its_help_text() {
        let metrics = Metrics::new();
        // A family renders only once it has a member.
        drop(
            metrics
                .requests
                .get_or_create(&StateLabel { state: "pending" }),
        );
        metrics.issue_moved("Approved");
        drop(metrics.routing_decisions.get_or_create(&RoutingLabel {
            rule: String::new(),
            target: "PROJ/Task".into(),
        }));
        let failed = CallOutcome::Failed {
            code: "503".into(),
            answered: false,
        };
        metrics.jira_call("issue", Duration::ZERO, failed);
        metrics.teleport_call("Ping", Duration::ZERO, Some("Unavailable".into()));
        let text = metrics.render();
        for (name, help) in SERIES {
            let line = format!("# HELP teleport_jira_{name} {help}.\n");
            assert_eq!(text.matches(&line).count(), 1, "{line}in:\n{text}");
        }
        assert_eq!(text.matches("# HELP ").count(), SERIES.len(), "{text}");
    }

    #[test]
    fn the_alerted_series_render_under_their_names() {
        let metrics = Metrics::new();
        metrics.step_panics.inc();
        metrics.set_oldest_unreconciled(Some(Duration::from_millis(1500)));
        metrics.set_identity_expiry(UNIX_EPOCH + Duration::from_secs(1_900_000_000));
        let text = metrics.render();
        for series in [
            "# TYPE teleport_jira_step_panics counter\n",
            "teleport_jira_step_panics_total 1\n",
            "# TYPE teleport_jira_oldest_unreconciled_seconds gauge\n",
            "teleport_jira_oldest_unreconciled_seconds 1.5\n",
            "# TYPE teleport_jira_identity_expiry_timestamp_seconds gauge\n",
            "teleport_jira_identity_expiry_timestamp_seconds 1900000000.0\n",
        ] {
            assert!(text.contains(series), "no {series:?} in:\n{text}");
        }
        metrics.set_oldest_unreconciled(None);
        assert_eq!(metrics.oldest_unreconciled.get(), 0.0);
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
