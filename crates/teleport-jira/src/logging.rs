//! Log set-up from the `[log]` section: destination, severity and text or JSON lines.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::{LogConfig, LogFormat, LogOutput, Severity};

/// Installs the global subscriber. `debug` is the `--debug` flag, which overrides the severity.
pub fn init(config: &LogConfig, debug: bool) -> Result<(), String> {
    let severity = if debug {
        Severity::Debug
    } else {
        config.severity
    };
    let level = match severity {
        Severity::Trace => "trace",
        Severity::Debug => "debug",
        Severity::Info => "info",
        Severity::Warn => "warn",
        Severity::Error => "error",
    };
    // Library chatter (HTTP/2 frames, TLS handshakes) stays out unless tracing everything.
    let directives = if severity == Severity::Trace {
        "trace".to_owned()
    } else {
        format!("warn,teleport_jira={level}")
    };
    let (writer, ansi) = match &config.output {
        LogOutput::Stderr => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ),
        LogOutput::Stdout => (
            BoxMakeWriter::new(std::io::stdout),
            std::io::IsTerminal::is_terminal(&std::io::stdout()),
        ),
        LogOutput::File(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|err| format!("opening log.output file {}: {err}", path.display()))?;
            (BoxMakeWriter::new(Mutex::new(file)), false)
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(directives))
        .with_writer(writer)
        .with_ansi(ansi);
    let installed = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    installed.map_err(|err| format!("setting up logging: {err}"))?;
    if debug {
        tracing::debug!("DEBUG logging enabled");
    }
    Ok(())
}
