//! One plugin process: `binary start --insecure-no-tls --config <file>` (the Go plugin takes the
//! same command line), its stderr read in the background ([`plugin_log`](crate::plugin_log)),
//! `/status` on its webhook listener polled from spawn ([`status_probe`](crate::status_probe)),
//! and its shutdown. Killed if dropped while running.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use crate::plugin_log::{self, LogCounts, LogState, READY_LINE};
use crate::status_probe::{self, StatusProbe};

/// Warning and error lines quoted in an error message.
const EXCERPT_NOTABLE: usize = 5;

/// The plugin process.
pub struct Plugin {
    child: Child,
    pid: u32,
    spawned_at: Instant,
    log: Arc<Mutex<LogState>>,
    status: StatusProbe,
}

impl Plugin {
    /// Spawns the plugin with `config`, trusting `ca_file` for Jira; its webhook listener is on
    /// `port`.
    pub fn spawn(binary: &Path, config: &Path, ca_file: &Path, port: u16) -> Result<Self> {
        let mut command = Command::new(binary);
        command
            .arg("start")
            .arg("--insecure-no-tls")
            .arg("--config")
            .arg(config)
            .env("SSL_CERT_FILE", ca_file)
            .env_remove("SSL_CERT_DIR")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned_at = Instant::now();
        let mut child = command.spawn().with_context(|| {
            format!(
                "cannot run {} (build it with `cargo build --release -p teleport-jira`)",
                binary.display()
            )
        })?;
        let status = status_probe::spawn(port);
        let pid = child.id().context("the plugin exited at once")?;
        let stderr = child.stderr.take().context("the plugin's stderr")?;
        let log = Arc::new(Mutex::new(LogState::default()));
        plugin_log::spawn_reader(stderr, Arc::clone(&log));
        Ok(Self {
            child,
            pid,
            spawned_at,
            log,
            status,
        })
    }

    fn log(&self) -> MutexGuard<'_, LogState> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// Spawn to the first line on stderr: process start-up and config loading.
    pub fn first_line_after(&self) -> Option<Duration> {
        self.log()
            .first_line_at
            .map(|at| at.duration_since(self.spawned_at))
    }

    /// Spawn to the first 200 from `GET /status`, waiting up to `wait` for it; `None` if none
    /// came.
    pub async fn status_ok_after(&self, wait: Duration) -> Option<Duration> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(at) = self.status.ok_at() {
                return Some(at.duration_since(self.spawned_at));
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub fn log_counts(&self) -> LogCounts {
        self.log().counts()
    }

    /// Up to `limit` warning and error lines logged after `mark` was taken.
    pub fn notable_since(&self, mark: LogCounts, limit: usize) -> Vec<String> {
        self.log()
            .notable
            .iter()
            .skip(mark.notable)
            .take(limit)
            .cloned()
            .collect()
    }

    /// For error messages: the plugin's first warning and error lines (up to
    /// [`EXCERPT_NOTABLE`]; the last lines alone may not say why it stopped making progress),
    /// then the last lines it logged.
    pub fn log_excerpt(&self) -> String {
        let log = self.log();
        let indent = |line: &String| format!("    {line}\n");
        let last: String = log.tail.iter().map(indent).collect();
        if log.notable.is_empty() {
            return format!("its last log lines:\n{last}");
        }
        let first: String = log
            .notable
            .iter()
            .take(EXCERPT_NOTABLE)
            .map(indent)
            .collect();
        format!("its first warning and error lines:\n{first}  its last log lines:\n{last}")
    }

    /// Fails if the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!("the plugin exited ({status}); {}", self.log_excerpt()),
            Err(err) => Err(err).context("checking the plugin process"),
        }
    }

    /// Waits for "Plugin is ready" on stderr; returns the time from spawn to that line.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self.log().ready_at {
                return Ok(at.duration_since(self.spawned_at));
            }
            self.ensure_running()?;
            if Instant::now() >= deadline {
                bail!(
                    "the plugin did not log {READY_LINE:?} within {timeout:?}; {}",
                    self.log_excerpt()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// SIGTERM (through `kill`, to stay free of `libc`), then SIGKILL after 10 s.
    pub async fn stop(mut self) -> Result<()> {
        if self.child.try_wait().ok().flatten().is_some() {
            return Ok(());
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => status.map(drop).context("waiting for the plugin to exit"),
            Err(_) => self.child.kill().await.context("killing the plugin"),
        }
    }
}
