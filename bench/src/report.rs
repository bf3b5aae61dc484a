//! Everything one invocation measured of one binary. [`crate::table`] shows it to people,
//! [`crate::json_line`] to machines, and [`crate::targets`] judges it; with `--against`, a second
//! report holds the other binary's runs and [`crate::versus`] sets the two side by side.

use std::path::PathBuf;
use std::time::Duration;

use crate::figures::ms;
use crate::sandbox::Tuning;
use crate::scenario::{Phase, Startup};

/// Which binary a report is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// The binary under test (the first argument), with the tuning flags.
    Ours,
    /// The `--against` binary, with the Go plugin's config keys only.
    Against,
}

impl Column {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Against => "against",
        }
    }
}

/// Everything one invocation measured of one binary.
#[derive(Debug)]
pub struct Report {
    pub mode: &'static str,
    pub column: Column,
    pub binary: PathBuf,
    pub binary_bytes: u64,
    pub tuning: Tuning,
    pub ticks_per_second: f64,
    /// Plugin starts on an empty cluster with Jira latency 0.
    pub startups: Vec<Startup>,
    pub phases: Vec<Phase>,
    /// Runs that failed, with their error.
    pub failures: Vec<String>,
    /// The [`run_key`](crate::figures::run_key)s of the runs that failed.
    pub failed_runs: Vec<String>,
    /// The run keys of the runs left out for this binary (a feature only ours has).
    pub not_run: Vec<String>,
    pub wall: Duration,
}

impl Report {
    /// An empty report of `binary`.
    pub fn new(
        mode: &'static str,
        column: Column,
        binary: PathBuf,
        binary_bytes: u64,
        tuning: Tuning,
        ticks_per_second: f64,
    ) -> Self {
        Self {
            mode,
            column,
            binary,
            binary_bytes,
            tuning,
            ticks_per_second,
            startups: Vec::new(),
            phases: Vec::new(),
            failures: Vec::new(),
            failed_runs: Vec::new(),
            not_run: Vec::new(),
            wall: Duration::ZERO,
        }
    }

    /// Spawn to ready of every start, in ms.
    pub fn ready_ms(&self) -> Vec<f64> {
        self.startups.iter().map(|s| ms(s.ready)).collect()
    }

    /// Spawn to the first 200 from `/status` of every start that got one, in ms.
    pub fn status_ok_ms(&self) -> Vec<f64> {
        self.startups
            .iter()
            .filter_map(|s| s.status_ok.map(ms))
            .collect()
    }

    /// Records a failed run: its error for people, its key for the side-by-side table.
    pub fn fail(&mut self, key: String, error: String) {
        self.failures.push(error);
        self.failed_runs.push(key);
    }
}
