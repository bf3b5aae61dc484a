//! The two binaries side by side (`--against`): for each figure of the issue, ours, theirs and
//! the ratio ours / theirs, matched by run. A run one binary failed or did not run shows as such
//! in its column and has no ratio.

use std::time::Duration;

use crate::figures::{mib, ms, phase_key, run_key};
use crate::measure;
use crate::plan::Plan;
use crate::report::Report;
use crate::runs::STARTUP_KEY;
use crate::scenario::{Phase, Scenario};

/// One column's figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    Value(f64),
    /// The run failed (its error is in the report's failures).
    Failed,
    /// The run was left out for this binary.
    NotRun,
    /// The run happened but did not yield this figure (e.g. `/status` never answered 200).
    Missing,
}

impl Cell {
    pub fn value(self) -> Option<f64> {
        match self {
            Self::Value(v) => Some(v),
            _ => None,
        }
    }

    /// `12.3`, `FAILED`, `n/a` or `-`.
    pub fn show(self, decimals: usize) -> String {
        match self {
            Self::Value(v) => format!("{v:.decimals$}"),
            Self::Failed => "FAILED".into(),
            Self::NotRun => "n/a".into(),
            Self::Missing => "-".into(),
        }
    }

    pub fn status(self) -> &'static str {
        match self {
            Self::Value(_) => "ok",
            Self::Failed => "failed",
            Self::NotRun => "n/a",
            Self::Missing => "missing",
        }
    }
}

/// One figure in both columns.
#[derive(Clone, Debug)]
pub struct Row {
    pub figure: String,
    pub unit: &'static str,
    pub ours: Cell,
    pub theirs: Cell,
    /// A rate: more is better (otherwise less time, memory or CPU is).
    pub higher_is_better: bool,
}

impl Row {
    /// Ours / theirs, when both were measured and theirs is not zero.
    pub fn ratio(&self) -> Option<f64> {
        let (ours, theirs) = (self.ours.value()?, self.theirs.value()?);
        (theirs != 0.0).then(|| ours / theirs)
    }
}

/// Every figure of the issue the plan measured, start-ups first, then each point's runs.
pub fn rows(plan: &Plan, ours: &Report, theirs: &Report) -> Vec<Row> {
    let mut rows = startup_rows(ours, theirs);
    for &n in &plan.ns {
        for &latency_ms in &plan.latencies_ms {
            let latency = Duration::from_millis(latency_ms);
            for (scenario, wanted) in [
                (Scenario::Burst, plan.burst),
                (Scenario::Decisions, plan.decisions),
                (Scenario::CatchUp, plan.catch_up),
            ] {
                if wanted {
                    rows.extend(phase_rows(scenario, n, latency, ours, theirs));
                }
            }
        }
    }
    rows
}

/// A figure of the dedicated and burst-run starts, or how the start-up run ended.
fn startup_cell(report: &Report, figure: impl Fn(&Report) -> Option<f64>) -> Cell {
    match figure(report) {
        Some(value) => Cell::Value(value),
        None if report.failed_runs.iter().any(|k| k == STARTUP_KEY) => Cell::Failed,
        None => Cell::Missing,
    }
}

fn startup_rows(ours: &Report, theirs: &Report) -> Vec<Row> {
    let status = |r: &Report| measure::median(&r.status_ok_ms());
    let ready = |r: &Report| measure::median(&r.ready_ms());
    let idle = |r: &Report| {
        let rss: Vec<f64> = r.startups.iter().map(|s| mib(s.idle_rss_kib)).collect();
        measure::median(&rss)
    };
    let row = |figure: &str, unit, f: &dyn Fn(&Report) -> Option<f64>| Row {
        figure: figure.to_owned(),
        unit,
        ours: startup_cell(ours, f),
        theirs: startup_cell(theirs, f),
        higher_is_better: false,
    };
    vec![
        row("start -> /status 200 (median of starts)", "ms", &status),
        row("start -> \"Plugin is ready\" (median)", "ms", &ready),
        row("idle RSS (median of starts)", "MiB", &idle),
    ]
}

/// The phase of `key` in `report`, or how its run ended.
fn find<'a>(report: &'a Report, key: &str) -> Result<&'a Phase, Cell> {
    if let Some(phase) = report.phases.iter().find(|p| phase_key(p) == key) {
        return Ok(phase);
    }
    Err(if report.failed_runs.iter().any(|k| k == key) {
        Cell::Failed
    } else if report.not_run.iter().any(|k| k == key) {
        Cell::NotRun
    } else {
        Cell::Missing
    })
}

/// What each scenario contributes: (figure, unit, higher is better, how to read it).
type Figure = (&'static str, &'static str, bool, fn(&Phase) -> Option<f64>);

const BURST: [Figure; 4] = [
    ("time until all mirrored", "s", false, |p| {
        Some(p.elapsed.as_secs_f64())
    }),
    ("created -> issue p50", "ms", false, |p| {
        p.latency_ms.map(|s| s.p50)
    }),
    ("CPU per mirrored request", "ms", false, |p| {
        Some(p.plugin_cpu_ms_per_request())
    }),
    ("peak RSS", "MiB", false, |p| Some(mib(p.peak_rss_kib))),
];
const DECISIONS: [Figure; 4] = [
    ("card moved -> APPROVED p50", "ms", false, |p| {
        p.latency_ms.map(|s| s.p50)
    }),
    ("decisions per second", "/s", true, |p| Some(p.throughput())),
    ("CPU per decision", "ms", false, |p| {
        Some(p.plugin_cpu_ms_per_request())
    }),
    ("time until all approved", "s", false, |p| {
        Some(p.elapsed.as_secs_f64())
    }),
];
const CATCH_UP: [Figure; 3] = [
    ("time until all mirrored", "s", false, |p| {
        Some(p.elapsed.as_secs_f64())
    }),
    ("spawn -> \"Plugin is ready\"", "ms", false, |p| {
        p.ready.map(ms)
    }),
    ("peak RSS", "MiB", false, |p| Some(mib(p.peak_rss_kib))),
];

fn phase_rows(
    scenario: Scenario,
    n: usize,
    latency: Duration,
    ours: &Report,
    theirs: &Report,
) -> Vec<Row> {
    let key = run_key(scenario.name(), n, latency);
    let figures: &[Figure] = match scenario {
        Scenario::Burst => &BURST,
        Scenario::Decisions => &DECISIONS,
        Scenario::CatchUp => &CATCH_UP,
    };
    let (ours, theirs) = (find(ours, &key), find(theirs, &key));
    let in_flight = [&ours, &theirs]
        .into_iter()
        .find_map(|p| p.as_ref().ok().and_then(|p| p.in_flight))
        .map_or_else(String::new, |k| format!(", {k} in flight"));
    let cell = |found: &Result<&Phase, Cell>, read: fn(&Phase) -> Option<f64>| match found {
        Ok(phase) => read(phase).map_or(Cell::Missing, Cell::Value),
        Err(cell) => *cell,
    };
    figures
        .iter()
        .map(|(figure, unit, higher_is_better, read)| Row {
            figure: format!("{key}{in_flight}: {figure}"),
            unit,
            ours: cell(&ours, *read),
            theirs: cell(&theirs, *read),
            higher_is_better: *higher_is_better,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::fixtures::{phase, report};
    use crate::report::Column;
    use crate::sandbox::Tuning;

    fn plan() -> Plan {
        Plan {
            ns: vec![1000],
            latencies_ms: vec![100],
            burst: true,
            decisions: true,
            catch_up: true,
            binary: PathBuf::from("ours"),
            against: Some(PathBuf::from("theirs")),
            tuning: Tuning::default(),
            ticks_per_second: 100.0,
            jira_limit: None,
            replicas: 1,
            in_flight: Some(16),
        }
    }

    #[test]
    fn matches_runs_and_shows_how_the_others_ended() {
        let mut decisions = phase(Scenario::Decisions, 1000, 100, 20.0, 3000);
        decisions.in_flight = Some(16);
        let ours = report(
            vec![phase(Scenario::Burst, 1000, 100, 7.0, 1000), decisions],
            &[10, 12, 14],
        );
        let mut theirs = report(vec![phase(Scenario::Burst, 1000, 100, 14.0, 1000)], &[40]);
        theirs.column = Column::Against;
        theirs.fail("decisions N=1000 100 ms".into(), "timed out".into());
        theirs.not_run.push("catch-up N=1000 100 ms".into());
        let rows = rows(&plan(), &ours, &theirs);
        let find = |figure: &str| rows.iter().find(|r| r.figure == figure);
        let ready = find("start -> \"Plugin is ready\" (median)").and_then(Row::ratio);
        assert!(ready.is_some_and(|r| (r - 0.3).abs() < 1e-9));
        let burst = find("burst N=1000 100 ms: time until all mirrored").and_then(Row::ratio);
        assert!(burst.is_some_and(|r| (r - 0.5).abs() < 1e-9));
        let rate = find("decisions N=1000 100 ms, 16 in flight: decisions per second");
        assert_eq!(
            rate.map(|r| (r.ours, r.theirs, r.higher_is_better)),
            Some((Cell::Value(50.0), Cell::Failed, true))
        );
        let catch_up = find("catch-up N=1000 100 ms: time until all mirrored");
        assert_eq!(
            catch_up.map(|r| (r.ours, r.theirs)),
            Some((Cell::Missing, Cell::NotRun))
        );
        let status = find("start -> /status 200 (median of starts)");
        assert_eq!(status.map(|r| r.ours), Some(Cell::Missing));
    }

    #[test]
    fn a_ratio_needs_both_columns() {
        let row = |ours, theirs| Row {
            figure: "x".into(),
            unit: "ms",
            ours,
            theirs,
            higher_is_better: false,
        };
        let half = row(Cell::Value(5.0), Cell::Value(10.0)).ratio();
        assert!(half.is_some_and(|r| (r - 0.5).abs() < 1e-9));
        assert_eq!(row(Cell::Value(5.0), Cell::Failed).ratio(), None);
        assert_eq!(row(Cell::Value(5.0), Cell::Value(0.0)).ratio(), None);
        assert_eq!(Cell::NotRun.show(1), "n/a");
        assert_eq!(Cell::Value(1.25).show(1), "1.2");
        assert_eq!(Cell::Failed.status(), "failed");
    }
}
