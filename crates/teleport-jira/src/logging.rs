//! Log set-up from the `[log]` section: destination, severity and text or JSON lines.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogConfig, LogFormat, LogOutput, Severity};

/// Installs the global subscriber. `debug` is the `--debug` flag, which overrides the severity.
pub fn init(config: &LogConfig, debug: bool) -> Result<(), String> {
    let severity = if debug {
        Severity::Debug
    } else {
        config.severity
    };
    let level = match severity {
        Severity::Trace => LevelFilter::TRACE,
        Severity::Debug => LevelFilter::DEBUG,
        Severity::Info => LevelFilter::INFO,
        Severity::Warn => LevelFilter::WARN,
        Severity::Error => LevelFilter::ERROR,
    };
    // Library chatter (HTTP/2 frames, TLS handshakes) stays out unless tracing everything. A
    // fixed filter by target, not a directive parser: no regular expressions in the binary for it.
    let libraries = if severity == Severity::Trace {
        LevelFilter::TRACE
    } else {
        LevelFilter::WARN
    };
    let filter = Targets::new()
        .with_default(libraries)
        .with_target("teleport_jira", level);
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
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match config.format {
        LogFormat::Json => registry.with(lines.json().flatten_event(true)).try_init(),
        LogFormat::Text => registry.with(lines).try_init(),
    };
    installed.map_err(|err| format!("setting up logging: {err}"))?;
    if debug {
        tracing::debug!("DEBUG logging enabled");
    }
    Ok(())
}
