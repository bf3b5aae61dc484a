//! Measuring a process from outside: resident memory and CPU time read from `/proc/<pid>`, the
//! kernel clock tick, and latency percentiles.
//!
//! The plugin runs as a child process, so `/proc/<child pid>` counts the plugin alone; the fakes
//! live in the harness process and are read from `/proc/self`.

use anyhow::{Context, Result, bail};

/// Which process to read.
#[derive(Clone, Copy, Debug)]
pub enum Proc {
    /// The harness itself (the fakes run here).
    SelfProcess,
    Pid(u32),
}

impl Proc {
    fn dir(self) -> String {
        match self {
            Self::SelfProcess => "/proc/self".to_owned(),
            Self::Pid(pid) => format!("/proc/{pid}"),
        }
    }
}

/// One reading of a process's memory and CPU counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// `VmRSS`: resident set now, in KiB.
    pub rss_kib: u64,
    /// `VmHWM`: the highest resident set since the process started, in KiB.
    pub hwm_kib: u64,
    /// `utime + stime` in clock ticks.
    pub cpu_ticks: u64,
}

/// Reads `/proc/<pid>/status` and `/proc/<pid>/stat`.
pub fn sample(proc: Proc) -> Result<Sample> {
    let dir = proc.dir();
    let status = std::fs::read_to_string(format!("{dir}/status"))
        .with_context(|| format!("reading {dir}/status"))?;
    let stat = std::fs::read_to_string(format!("{dir}/stat"))
        .with_context(|| format!("reading {dir}/stat"))?;
    Ok(Sample {
        rss_kib: status_kib(&status, "VmRSS").unwrap_or(0),
        hwm_kib: status_kib(&status, "VmHWM").unwrap_or(0),
        cpu_ticks: cpu_ticks(&stat)?,
    })
}

/// A `Key:   1234 kB` line of `/proc/<pid>/status`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// `utime + stime` (fields 14 and 15) of `/proc/<pid>/stat`. The command name (field 2) is in
/// parentheses and may contain spaces, so fields are counted after the last `)`.
fn cpu_ticks(stat: &str) -> Result<u64> {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("unexpected /proc stat format: {stat:?}");
    };
    // After ")" come field 3 (state) onwards: utime is field 14, i.e. index 11 here.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |index: usize| -> Result<u64> {
        fields
            .get(index)
            .and_then(|value| value.parse().ok())
            .with_context(|| format!("no numeric field {} in /proc stat", index + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), asked of `getconf` to stay free of `libc`;
/// 100, the value on every mainstream Linux build, if that fails.
pub fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Nearest-rank percentiles; `None` for an empty set.
pub fn summarize(mut values: Vec<f64>) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let count = values.len();
    let mean = values.iter().sum::<f64>() / count as f64;
    Some(Summary {
        count,
        p50: percentile(&values, 50.0),
        p99: percentile(&values, 99.0),
        max: values[count - 1],
        mean,
    })
}

/// Nearest-rank percentile of sorted, non-empty `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (upper median for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    summarize(values.to_vec()).map(|s| s.p50)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counters_from_proc_text() {
        let stat = "4242 (tele port) S 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 9 0 100 1000 200";
        assert_eq!(cpu_ticks(stat).ok(), Some(281));
        let status = "Name:\tteleport-jira\nVmHWM:\t   10240 kB\nVmRSS:\t    8192 kB\n";
        assert_eq!(status_kib(status, "VmRSS"), Some(8192));
        assert_eq!(status_kib(status, "VmHWM"), Some(10240));
        assert_eq!(status_kib(status, "VmSwap"), None);
        assert!(cpu_ticks("garbage").is_err());
    }

    #[test]
    fn this_process_can_be_sampled() {
        let sample = sample(Proc::SelfProcess).ok();
        assert!(sample.is_some_and(|s| s.rss_kib > 0 && s.hwm_kib >= s.rss_kib));
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let summary = summarize(values);
        assert_eq!(
            summary.map(|s| (s.p50, s.p99, s.max)),
            Some((50.0, 99.0, 100.0))
        );
        assert_eq!(
            summarize(vec![7.0]).map(|s| (s.p50, s.p99)),
            Some((7.0, 7.0))
        );
        assert_eq!(summarize(Vec::new()), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    }
}
