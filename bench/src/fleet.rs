//! The plugin processes of one run: the first, which Jira's webhook reaches and whose CPU and
//! memory the phases measure, and its replicas (`--replicas`), which share the fakes and take
//! their part of the work through the plugin's own leases. Replicas' log lines are kept apart.

use anyhow::{Context, Result};

use crate::plugin::Plugin;
use crate::plugin_log::LogCounts;

pub struct Fleet {
    pub first: Plugin,
    pub replicas: Vec<Plugin>,
}

impl Fleet {
    pub fn single(first: Plugin) -> Self {
        Self {
            first,
            replicas: Vec::new(),
        }
    }

    /// How many processes run.
    pub fn size(&self) -> usize {
        1 + self.replicas.len()
    }

    /// Each replica's log counts now, to diff against later.
    pub fn replica_marks(&self) -> Vec<LogCounts> {
        self.replicas.iter().map(Plugin::log_counts).collect()
    }

    /// The replicas' log lines since `marks`, summed.
    pub fn replica_log_since(&self, marks: &[LogCounts]) -> LogCounts {
        self.replicas
            .iter()
            .zip(marks)
            .map(|(replica, mark)| replica.log_counts().since(*mark))
            .fold(LogCounts::default(), LogCounts::plus)
    }

    /// Up to `limit` warning and error lines per replica since `marks`, each naming its replica.
    pub fn replica_notable_since(&self, marks: &[LogCounts], limit: usize) -> Vec<String> {
        let mut lines = Vec::new();
        for (index, (replica, mark)) in self.replicas.iter().zip(marks).enumerate() {
            let replica_no = index + 1;
            lines.extend(
                replica
                    .notable_since(*mark, limit)
                    .into_iter()
                    .map(|line| format!("[replica {replica_no}] {line}")),
            );
        }
        lines
    }

    /// Stops every process; fails if a replica had exited on its own before.
    pub async fn stop(mut self) -> Result<()> {
        let mut exited = None;
        for (index, replica) in self.replicas.iter_mut().enumerate() {
            if let Err(err) = replica.ensure_running() {
                exited.get_or_insert(err.context(format!("replica {}", index + 1)));
            }
        }
        for replica in self.replicas {
            replica.stop().await.context("stopping a replica")?;
        }
        self.first.stop().await?;
        exited.map_or(Ok(()), Err)
    }
}
