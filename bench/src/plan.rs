//! What one invocation runs, with the defaults of its mode filled in, and the parameters each run
//! gets for each binary: ours with the tuning keys, rate limit and replicas asked for; the
//! `--against` binary with the Go plugin's keys only and a single process.

use std::path::PathBuf;
use std::time::Duration;

use crate::jira_limit::JiraLimit;
use crate::report::Column;
use crate::sandbox::Tuning;
use crate::scenario::Params;

/// What to run.
pub struct Plan {
    pub ns: Vec<usize>,
    pub latencies_ms: Vec<u64>,
    pub burst: bool,
    pub decisions: bool,
    pub catch_up: bool,
    /// Ours.
    pub binary: PathBuf,
    /// The binary to compare with (`--against`).
    pub against: Option<PathBuf>,
    /// Ours only.
    pub tuning: Tuning,
    pub ticks_per_second: f64,
    /// Both binaries meet the same Jira.
    pub jira_limit: Option<JiraLimit>,
    /// Ours only: the other binary runs as one process.
    pub replicas: usize,
    /// Decisions of both binaries.
    pub in_flight: Option<usize>,
}

impl Plan {
    /// The columns this invocation fills: ours, then the `--against` binary if given.
    pub fn columns(&self) -> Vec<Column> {
        let mut columns = vec![Column::Ours];
        if self.against.is_some() {
            columns.push(Column::Against);
        }
        columns
    }

    /// The binary of `column`.
    pub fn binary(&self, column: Column) -> PathBuf {
        match (column, &self.against) {
            (Column::Against, Some(against)) => against.clone(),
            _ => self.binary.clone(),
        }
    }

    /// The parameters of one run of `column`'s binary.
    pub fn params(&self, column: Column, n: usize, latency: Duration) -> Params {
        let ours = column == Column::Ours;
        Params {
            binary: self.binary(column),
            n,
            latency,
            tuning: if ours {
                self.tuning.clone()
            } else {
                Tuning::default()
            },
            ticks_per_second: self.ticks_per_second,
            jira_limit: self.jira_limit,
            replicas: if ours { self.replicas } else { 1 },
            in_flight: self.in_flight,
        }
    }

    /// Whether `column` runs the burst and decisions: the other binary does not when ours runs
    /// replicas (a feature only ours has).
    pub fn runs_burst(&self, column: Column) -> bool {
        self.burst && (column == Column::Ours || self.replicas == 1)
    }

    /// `, Jira 50/s, 2 replicas, decisions 16 in flight`: the conditions of `column`'s burst run
    /// beyond N and latency.
    pub fn conditions(&self, column: Column) -> String {
        let mut out = String::new();
        if let Some(limit) = &self.jira_limit {
            out.push_str(&format!(", Jira {}", limit.describe()));
        }
        if self.replicas > 1 && column == Column::Ours {
            out.push_str(&format!(", {} replicas", self.replicas));
        }
        if let (true, Some(window)) = (self.decisions, self.in_flight) {
            out.push_str(&format!(", decisions {window} in flight"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(replicas: usize) -> Plan {
        Plan {
            ns: vec![1000],
            latencies_ms: vec![100],
            burst: true,
            decisions: true,
            catch_up: true,
            binary: PathBuf::from("ours"),
            against: Some(PathBuf::from("theirs")),
            tuning: Tuning {
                workers: Some(8),
                ..Tuning::default()
            },
            ticks_per_second: 100.0,
            jira_limit: None,
            replicas,
            in_flight: Some(16),
        }
    }

    #[test]
    fn the_other_binary_gets_the_go_keys_and_one_process() {
        let plan = plan(2);
        assert_eq!(plan.columns(), vec![Column::Ours, Column::Against]);
        let ours = plan.params(Column::Ours, 10, Duration::ZERO);
        let theirs = plan.params(Column::Against, 10, Duration::ZERO);
        assert_eq!((ours.binary, ours.replicas), (PathBuf::from("ours"), 2));
        assert_eq!(ours.tuning.workers, Some(8));
        assert_eq!(
            (theirs.binary, theirs.replicas),
            (PathBuf::from("theirs"), 1)
        );
        assert_eq!(theirs.tuning.workers, None);
        assert_eq!(theirs.in_flight, Some(16));
        assert!(plan.runs_burst(Column::Ours));
        assert!(!plan.runs_burst(Column::Against));
        assert!(self::plan(1).runs_burst(Column::Against));
        assert_eq!(
            plan.conditions(Column::Ours),
            ", 2 replicas, decisions 16 in flight"
        );
        assert_eq!(plan.conditions(Column::Against), ", decisions 16 in flight");
    }
}
