//! What a plugin process writes to stderr, as the harness keeps it: line counts by level, the
//! first warning and error lines, the last lines for error messages, and when the readiness line
//! appeared. Both binaries log text: ours `<timestamp>  LEVEL target: message`, the Go plugin
//! (logrus, four-letter levels) `ERRO   message file:line`, whose error reports continue on
//! lines of their own (`ERROR REPORT:`, a stack), which count as no level.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::ChildStderr;

/// The line both binaries log once they serve (ours, and the Go plugin's `jira/app.go`).
pub const READY_LINE: &str = "Plugin is ready";
/// How many stderr lines of the plugin are kept for error messages.
const LOG_TAIL: usize = 40;
/// How many warning and error lines are kept as evidence for the report.
const NOTABLE_KEPT: usize = 200;

/// What the stderr reader has seen.
#[derive(Debug, Default)]
pub struct LogState {
    pub first_line_at: Option<Instant>,
    pub ready_at: Option<Instant>,
    lines: usize,
    warnings: usize,
    errors: usize,
    pub tail: VecDeque<String>,
    /// The first warning and error lines.
    pub notable: Vec<String>,
}

impl LogState {
    pub fn counts(&self) -> LogCounts {
        LogCounts {
            lines: self.lines,
            warnings: self.warnings,
            errors: self.errors,
            notable: self.notable.len(),
        }
    }

    fn take(&mut self, line: String, now: Instant) {
        self.lines += 1;
        self.first_line_at.get_or_insert(now);
        let level = level(&line);
        match level {
            Some(Level::Warning) => self.warnings += 1,
            Some(Level::Error) => self.errors += 1,
            None => {}
        }
        if level.is_some() && self.notable.len() < NOTABLE_KEPT {
            self.notable.push(line.clone());
        }
        if self.ready_at.is_none() && line.contains(READY_LINE) {
            self.ready_at = Some(now);
        }
        if self.tail.len() == LOG_TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }
}

/// Reads `stderr` line by line into `state` until the process closes it.
pub fn spawn_reader(stderr: ChildStderr, state: Arc<Mutex<LogState>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let now = Instant::now();
            state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(line, now);
        }
    });
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Warning,
    Error,
}

/// A warning or error line of either binary; `None` for any other line.
fn level(line: &str) -> Option<Level> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    // The Go plugin: the level first, in four letters.
    match first {
        "WARN" => return Some(Level::Warning),
        "ERRO" | "FATA" | "PANI" => return Some(Level::Error),
        _ => {}
    }
    // Ours: a timestamp, then the level.
    if !first.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    match words.next()? {
        "WARN" => Some(Level::Warning),
        "ERROR" => Some(Level::Error),
        _ => None,
    }
}

/// Counts of the plugin's log lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogCounts {
    pub lines: usize,
    pub warnings: usize,
    pub errors: usize,
    /// Warning and error lines kept so far (see [`crate::plugin::Plugin::notable_since`]).
    pub notable: usize,
}

impl LogCounts {
    pub fn since(self, earlier: Self) -> Self {
        Self {
            lines: self.lines.saturating_sub(earlier.lines),
            warnings: self.warnings.saturating_sub(earlier.warnings),
            errors: self.errors.saturating_sub(earlier.errors),
            notable: self.notable.saturating_sub(earlier.notable),
        }
    }

    /// Two processes' counts together.
    pub fn plus(self, other: Self) -> Self {
        Self {
            lines: self.lines + other.lines,
            warnings: self.warnings + other.warnings,
            errors: self.errors + other.errors,
            notable: self.notable + other.notable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_level_of_either_binary() {
        let ours = "2025-01-01T00:00:00.000Z  WARN teleport_jira::jira: Jira pushed back";
        let go = "WARN   Cannot expire unknown request jira/app.go:301";
        assert_eq!(level(ours), Some(Level::Warning));
        assert_eq!(level(go), Some(Level::Warning));
        assert_eq!(
            level("ERRO   Failed to connect to Teleport Auth server. Reconnecting... error:["),
            Some(Level::Error)
        );
        assert_eq!(level("ERROR REPORT:"), None);
        assert_eq!(level("INFO   ERROR in the message"), None);
        assert_eq!(
            level("2025-01-01T00:00:00Z ERROR teleport_jira: gave up"),
            Some(Level::Error)
        );
        assert_eq!(
            level("2025-01-01T00:00:00Z  INFO teleport_jira: ready"),
            None
        );
        assert_eq!(level(""), None);
    }

    #[test]
    fn keeps_counts_tail_and_the_ready_line() {
        let mut state = LogState::default();
        let now = Instant::now();
        state.take("INFO   Starting Teleport Jira Plugin".into(), now);
        state.take("INFO   Plugin is ready jira/app.go:142".into(), now);
        state.take("ERRO   Failed to process pending request".into(), now);
        let counts = state.counts();
        assert_eq!((counts.lines, counts.warnings, counts.errors), (3, 0, 1));
        assert_eq!(state.ready_at, Some(now));
        assert_eq!(state.notable.len(), 1);
        assert_eq!(state.tail.len(), 3);
    }
}
