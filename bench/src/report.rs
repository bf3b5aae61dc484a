//! Everything one invocation measured. [`crate::table`] shows it to people, [`crate::json_line`]
//! to machines, and [`crate::targets`] judges it.

use std::path::PathBuf;
use std::time::Duration;

use crate::figures::ms;
use crate::sandbox::Tuning;
use crate::scenario::{Phase, Startup};

/// Everything one invocation measured.
#[derive(Debug)]
pub struct Report {
    pub mode: &'static str,
    pub binary: PathBuf,
    pub binary_bytes: u64,
    pub tuning: Tuning,
    pub ticks_per_second: f64,
    /// Plugin starts on an empty cluster with Jira latency 0.
    pub startups: Vec<Startup>,
    pub phases: Vec<Phase>,
    /// Runs that failed, with their error.
    pub failures: Vec<String>,
    pub wall: Duration,
}

impl Report {
    /// Spawn to ready of every start, in ms.
    pub fn ready_ms(&self) -> Vec<f64> {
        self.startups.iter().map(|s| ms(s.ready)).collect()
    }
}
