//! The targets of "Nothing lost when Jira pushes back", judged on the bursts that ran under a
//! rate limit (R calls/s): done within 1.15 x N / R, at most 1.1 Jira calls per request and under
//! 5% of them answered 429 (both windows of the phase, refused calls included). n/a when no burst
//! ran under a limit. No duplicate is judged apart, as a run failure.

use super::{Target, Verdict};
use crate::figures::{all_calls, label, over_limit_floor};
use crate::report::Report;
use crate::scenario::{Phase, Scenario};

const TIME_OVER_FLOOR: f64 = 1.15;
const CALLS_PER_REQUEST: f64 = 1.1;
const RATE_LIMITED_SHARE: f64 = 0.05;

/// The three targets, in the order.
pub fn evaluate(report: &Report) -> Vec<Target> {
    vec![
        time(report),
        calls_per_request(report),
        rate_limited(report),
    ]
}

/// The worst of `figure` over the bursts run under a limit, with that burst's label.
fn worst(report: &Report, figure: impl Fn(&Phase) -> Option<f64>) -> Option<(f64, String)> {
    report
        .phases
        .iter()
        .filter(|p| p.scenario == Scenario::Burst && p.jira_limit.is_some())
        .filter_map(|p| figure(p).map(|value| (value, label(p))))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// PASS when `pass(value)`; n/a when no burst ran under a limit.
fn verdict(
    worst: Option<(f64, String)>,
    show: impl Fn(f64) -> String,
    pass: impl Fn(f64) -> bool,
) -> Verdict {
    match worst {
        Some((value, label)) => (
            format!("{} ({label})", show(value)),
            Some(pass(value)),
            Some(value),
        ),
        None => ("n/a (needs --jira-rate-limit)".into(), None, None),
    }
}

fn time(report: &Report) -> Target {
    let (measured, pass, value) = verdict(
        worst(report, over_limit_floor),
        |ratio| format!("{ratio:.2} x N/R"),
        |ratio| ratio <= TIME_OVER_FLOOR,
    );
    Target {
        name: "burst under rate limit R",
        goal: format!("<= {TIME_OVER_FLOOR} x N/R"),
        measured,
        pass,
        value,
    }
}

fn calls_per_request(report: &Report) -> Target {
    let (measured, pass, value) = verdict(
        worst(report, |p| Some(all_calls(p).per_request(p.n))),
        |per| format!("{per:.3}"),
        |per| per <= CALLS_PER_REQUEST,
    );
    Target {
        name: "Jira calls/request under R",
        goal: format!("<= {CALLS_PER_REQUEST} (burst)"),
        measured,
        pass,
        value,
    }
}

fn rate_limited(report: &Report) -> Target {
    let (measured, pass, value) = verdict(
        worst(report, |p| Some(all_calls(p).rate_limited_share())),
        |share| format!("{:.1}%", share * 100.0),
        |share| share < RATE_LIMITED_SHARE,
    );
    Target {
        name: "calls answered 429 under R",
        goal: format!("< {:.0}% (burst)", RATE_LIMITED_SHARE * 100.0),
        measured,
        pass,
        value,
    }
}
