//! The targets of the benchmark issue, judged against a [`Report`]: reported as PASS, MISS or
//! n/a (not measured by this run), never asserted. Those under Jira's rate limit are in
//! [`push_back`].

mod push_back;

use std::time::Duration;

use crate::figures::{label, mib, over_ideal};
use crate::measure;
use crate::report::Report;
use crate::scenario::{Phase, Scenario};

/// The goals, from the benchmark issue.
const CPU_MS_PER_REQUEST: f64 = 1.0;
const BURST_IDEAL_SLACK: f64 = 0.10;
const IDLE_RSS_MIB: f64 = 15.0;
const PEAK_RSS_MIB: f64 = 64.0;
const READY_MS: f64 = 100.0;

/// One target's verdict.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: &'static str,
    pub goal: String,
    pub measured: String,
    /// `None`: not measured in this mode.
    pub pass: Option<bool>,
    pub value: Option<f64>,
}

/// Every target, in the issues' order.
pub fn evaluate(report: &Report) -> Vec<Target> {
    let mut targets = vec![
        cpu_per_request(report),
        burst_vs_ideal(report),
        idle_rss(report),
        peak_rss(report),
        start_to_ready(report),
    ];
    targets.extend(push_back::evaluate(report));
    targets
}

/// A verdict: what to print, PASS/MISS (`None`: not measured), the figure for the JSON line.
type Verdict = (String, Option<bool>, Option<f64>);

fn cpu_per_request(report: &Report) -> Target {
    // A phase's CPU is read in whole clock ticks (10 ms): judge only phases long enough
    // for that to be within 5%.
    let min_cpu = 20.0 / report.ticks_per_second;
    let worst = |eligible: bool| {
        report
            .phases
            .iter()
            .filter(|p| !eligible || p.plugin_cpu_secs >= min_cpu)
            .max_by(|a, b| {
                a.plugin_cpu_ms_per_request()
                    .total_cmp(&b.plugin_cpu_ms_per_request())
            })
            .map(|p| (p.plugin_cpu_ms_per_request(), label(p)))
    };
    let (measured, pass, value): Verdict = match (worst(true), worst(false)) {
        (Some((v, l)), _) => (
            format!("{v:.3} ms ({l})"),
            Some(v < CPU_MS_PER_REQUEST),
            Some(v),
        ),
        (None, Some((v, l))) => (
            format!("n/a (every phase under 20 CPU ticks; {l}: {v:.3} ms)"),
            None,
            None,
        ),
        (None, None) => ("n/a".into(), None, None),
    };
    Target {
        name: "plugin CPU per request",
        goal: format!("< {CPU_MS_PER_REQUEST} ms (worst phase)"),
        measured,
        pass,
        value,
    }
}

fn burst_vs_ideal(report: &Report) -> Target {
    let bursts = |pred: &dyn Fn(&Phase) -> bool| {
        report
            .phases
            .iter()
            .filter(|p| p.scenario == Scenario::Burst && p.jira_limit.is_none() && pred(p))
            .filter_map(|p| over_ideal(p).map(|o| (o, label(p))))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let exact = bursts(&|p| p.n == 1000 && p.latency == Duration::from_millis(100));
    let (measured, pass, value): Verdict = match (&exact, bursts(&|_| true)) {
        (Some((over, _)), _) => (
            format!("{:+.1}% of ideal", over * 100.0),
            Some(*over <= BURST_IDEAL_SLACK),
            Some(*over),
        ),
        (None, Some((over, l))) => (
            format!("n/a (needs N=1000, 100 ms; {l}: {:+.1}%)", over * 100.0),
            None,
            None,
        ),
        (None, None) => ("n/a (needs N=1000, 100 ms)".into(), None, None),
    };
    Target {
        name: "burst 1,000 @ 100 ms vs ideal",
        goal: format!("within {:.0}%", BURST_IDEAL_SLACK * 100.0),
        measured,
        pass,
        value,
    }
}

fn idle_rss(report: &Report) -> Target {
    let idle = report.startups.iter().map(|s| s.idle_rss_kib).max();
    Target {
        name: "idle RSS",
        goal: format!("< {IDLE_RSS_MIB} MiB (worst start)"),
        measured: idle.map_or_else(|| "n/a".into(), |kib| format!("{:.1} MiB", mib(kib))),
        pass: idle.map(|kib| mib(kib) < IDLE_RSS_MIB),
        value: idle.map(mib),
    }
}

/// Decisions act on an existing backlog, so only bursts and catch-ups count here.
fn counts_for_peak(phase: &Phase, min_n: usize) -> bool {
    phase.n >= min_n && phase.scenario != Scenario::Decisions
}

fn peak_rss(report: &Report) -> Target {
    let peak_at = |min_n: usize| {
        report
            .phases
            .iter()
            .filter(|p| counts_for_peak(p, min_n))
            .max_by_key(|p| p.peak_rss_kib)
    };
    let (measured, pass, value): Verdict = match (peak_at(10_000), peak_at(0)) {
        (Some(p), _) => {
            let others: String = report
                .phases
                .iter()
                .filter(|o| counts_for_peak(o, 10_000) && !std::ptr::eq(*o, p))
                .map(|o| format!("; {}: {:.1} MiB", label(o), mib(o.peak_rss_kib)))
                .collect();
            (
                format!("{:.1} MiB ({}){others}", mib(p.peak_rss_kib), label(p)),
                Some(mib(p.peak_rss_kib) < PEAK_RSS_MIB),
                Some(mib(p.peak_rss_kib)),
            )
        }
        (None, Some(p)) => (
            format!(
                "n/a (needs N=10000; {}: {:.1} MiB)",
                label(p),
                mib(p.peak_rss_kib)
            ),
            None,
            None,
        ),
        (None, None) => ("n/a".into(), None, None),
    };
    Target {
        name: "peak RSS at 10,000 pending",
        goal: format!("< {PEAK_RSS_MIB} MiB"),
        measured,
        pass,
        value,
    }
}

fn start_to_ready(report: &Report) -> Target {
    let ready = report.ready_ms();
    let median = measure::median(&ready);
    let max = ready.iter().copied().reduce(f64::max);
    Target {
        name: "start to ready",
        goal: format!("< {READY_MS} ms (median of starts)"),
        measured: match (median, max) {
            (Some(median), Some(max)) => format!(
                "{median:.1} ms (max {max:.1} ms over {} starts)",
                ready.len()
            ),
            _ => "n/a".into(),
        },
        pass: median.map(|m| m < READY_MS),
        value: median,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{phase, report};
    use crate::jira_limit::JiraLimit;

    fn verdicts(report: &Report) -> Vec<Option<bool>> {
        evaluate(report).into_iter().map(|t| t.pass).collect()
    }

    #[test]
    fn judges_each_target_only_when_measured() {
        // 2,000 calls x 100 ms / 16 = 12.5 s ideal; 13.5 s is 8% over.
        let burst = phase(Scenario::Burst, 1000, 100, 13.5, 2000);
        assert_eq!(
            verdicts(&report(vec![burst], &[40, 90, 120])),
            // CPU 0.5 ms/request, within 10%, 12 MiB idle, no N = 10,000 run, median 90 ms, no
            // rate limit.
            vec![
                Some(true),
                Some(true),
                Some(true),
                None,
                Some(true),
                None,
                None,
                None
            ]
        );

        let slow = phase(Scenario::Burst, 1000, 100, 14.0, 2000);
        let big = phase(Scenario::CatchUp, 10_000, 0, 5.0, 20_000);
        assert_eq!(
            verdicts(&report(vec![slow, big], &[150])),
            vec![
                Some(true),
                Some(false),
                Some(true),
                Some(false),
                Some(false),
                None,
                None,
                None
            ]
        );

        // Too few CPU ticks to judge; no burst at 100 ms.
        let mut tiny = phase(Scenario::Burst, 50, 0, 0.1, 100);
        tiny.plugin_cpu_secs = 0.01;
        assert_eq!(
            verdicts(&report(vec![tiny], &[])),
            vec![None, None, None, None, None, None, None, None]
        );
    }

    fn under_limit(secs: f64, calls: usize, refused: usize, tail: usize) -> Phase {
        let mut burst = phase(Scenario::Burst, 1000, 20, secs, calls);
        burst.calls.rate_limited = refused;
        burst.tail_calls.total = tail;
        burst.jira_limit = Some(JiraLimit {
            per_second: 50.0,
            retry_after: true,
        });
        burst
    }

    fn push_back_verdicts(phases: Vec<Phase>) -> Vec<Option<bool>> {
        verdicts(&report(phases, &[]))[5..].to_vec()
    }

    #[test]
    fn judges_bursts_under_a_rate_limit() {
        // N / R = 20 s: 23 s is 1.15 x; 1,050 + 50 calls is 1.1 per request; 54 of 1,100 is 4.9%.
        assert_eq!(
            push_back_verdicts(vec![under_limit(23.0, 1050, 54, 50)]),
            vec![Some(true), Some(true), Some(true)]
        );
        assert_eq!(
            push_back_verdicts(vec![under_limit(23.5, 1050, 56, 51)]),
            vec![Some(false), Some(false), Some(false)]
        );
        // Decisions are not judged; the worst burst is.
        let mut decisions = under_limit(60.0, 5000, 2000, 0);
        decisions.scenario = Scenario::Decisions;
        let good = under_limit(21.0, 1000, 0, 0);
        assert_eq!(
            push_back_verdicts(vec![good.clone(), decisions]),
            vec![Some(true), Some(true), Some(true)]
        );
        let slow = under_limit(30.0, 1000, 0, 0);
        assert_eq!(
            push_back_verdicts(vec![good, slow]),
            vec![Some(false), Some(true), Some(true)]
        );
    }
}
