//! `[audit] jsonl_path`: one JSON line per resolved request, appended to a file. Each line goes out
//! in a single `write` on a file opened for appending, so lines from several processes sharing the
//! file never interleave. Whether a request already has its line is told by the line's start,
//! `{"request_id":"<id>"`, which the serialisation always puts first.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

/// The file could not be read or appended to.
#[derive(Debug, Error)]
#[error("audit file {path}: {source}")]
pub struct AuditFileError {
    path: String,
    source: std::io::Error,
}

/// One resolved request, as its line holds it. Times are RFC 3339, in UTC.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuditLine {
    /// First, so a line is found by its start (see [`AuditLog::has_line_for`]).
    pub request_id: String,
    pub user: String,
    pub roles: Vec<String>,
    pub reason: String,
    pub created: String,
    pub reviews: Vec<AuditReview>,
    /// `approved`, `denied`, `expired` or `promoted`.
    pub resolution: String,
    pub resolve_reason: String,
    /// Who decided: the Jira user on whose behalf the plugin resolved the request, else the author
    /// of the newest review proposing the resolution; empty when nobody did (it expired).
    pub delegator: String,
    pub issue_key: String,
    /// When the line was written, the resolution being recorded by then.
    pub resolved_at: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuditReview {
    pub author: String,
    /// `APPROVED` or `DENIED`.
    pub state: String,
    pub reason: String,
    pub created: String,
}

/// The audit file.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Whether the file already holds a line for `request_id` (no file: none).
    pub async fn has_line_for(&self, request_id: &str) -> Result<bool, AuditFileError> {
        let path = self.path.clone();
        let start = line_start(request_id);
        run_blocking(&self.path, move || contains_line_starting(&path, &start)).await
    }

    /// Appends `line` and a newline with one `write`.
    pub async fn append(&self, line: &AuditLine) -> Result<(), AuditFileError> {
        let mut bytes = serde_json::to_vec(line).map_err(|err| self.error(err.into()))?;
        bytes.push(b'\n');
        let path = self.path.clone();
        run_blocking(&self.path, move || {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            // One write: O_APPEND places it whole at the end, whoever else appends.
            let written = file.write(&bytes)?;
            if written != bytes.len() {
                return Err(std::io::Error::other(format!(
                    "wrote {written} of {} bytes",
                    bytes.len()
                )));
            }
            file.sync_data()
        })
        .await
    }

    fn error(&self, source: std::io::Error) -> AuditFileError {
        AuditFileError {
            path: self.path.display().to_string(),
            source,
        }
    }
}

/// How every line of `request_id` starts.
fn line_start(request_id: &str) -> String {
    let id = serde_json::Value::String(request_id.to_owned());
    format!("{{\"request_id\":{id}")
}

fn contains_line_starting(path: &Path, start: &str) -> std::io::Result<bool> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    for line in BufReader::new(file).split(b'\n') {
        if line?.starts_with(start.as_bytes()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// File work off the async workers; its error names the file.
async fn run_blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, AuditFileError> {
    let name = path.display().to_string();
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|source| AuditFileError { path: name, source }),
        Err(join) => Err(AuditFileError {
            path: name,
            source: std::io::Error::other(join.to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn line(id: &str) -> AuditLine {
        AuditLine {
            request_id: id.to_owned(),
            user: "alice".into(),
            resolution: "approved".into(),
            ..AuditLine::default()
        }
    }

    #[tokio::test]
    async fn appended_lines_are_found_by_request_id_and_only_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.jsonl"));
        assert!(!log.has_line_for("req-1").await.unwrap());
        log.append(&line("req-1")).await.unwrap();
        log.append(&line("req-10")).await.unwrap();
        assert!(log.has_line_for("req-1").await.unwrap());
        assert!(log.has_line_for("req-10").await.unwrap());
        assert!(!log.has_line_for("req-2").await.unwrap());
        let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with("{\"request_id\":\"req-1\",\"user\":\"alice\""));
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_opened_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("missing-dir").join("audit.jsonl"));
        let err = log.append(&line("req-1")).await.unwrap_err();
        assert!(err.to_string().contains("missing-dir"), "{err}");
    }
}
