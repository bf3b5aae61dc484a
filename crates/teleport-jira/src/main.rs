//! The `teleport-jira` command: `configure`, `version` and `start`, as in the Go plugin; `check`
//! before going live, and `demo`, a sandbox with a fake Teleport and a fake Jira.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use teleport_jira::config::{Config, DEFAULT_CONFIG_PATH, EXAMPLE_CONFIG};
use teleport_jira::{app, logging, version};
use tokio_util::sync::CancellationToken;

/// Teleport plugin for access requests approval via Jira.
#[derive(Debug, Parser)]
#[command(name = "teleport-jira", disable_version_flag = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints an example .toml configuration file.
    Configure,
    /// Prints the version.
    Version,
    /// Verifies the config, credentials, Teleport and Jira without changing anything.
    Check {
        /// TOML config file path.
        #[arg(short, long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// The webhook will be served without TLS (its certificate is then not checked).
        #[arg(long)]
        insecure_no_tls: bool,
    },
    /// Runs the plugin against a fake Teleport cluster and a fake Jira site on this machine and
    /// walks a request through its life (binaries built with the `demo` feature, as `make demo`
    /// does).
    Demo {
        /// Stay up after the walk-through, with a board page to create requests and move cards.
        #[arg(long)]
        keep_running: bool,
    },
    /// Starts the plugin.
    Start {
        /// TOML config file path.
        #[arg(short, long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Enable verbose logging to stderr.
        #[arg(short, long)]
        debug: bool,
        /// Disable TLS for the webhook receiver.
        #[arg(long)]
        insecure_no_tls: bool,
    },
}

/// Keeps glibc's allocator to one arena. By default each thread that meets a locked arena gets
/// another, and memory freed in one is never reused by the others: in a burst of 10,000 requests
/// the plugin peaked at 34.5 MiB with the default and at 28.9 MiB with one arena, at the same CPU
/// per request (each thread keeps its own small cache in front of the arena).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn one_malloc_arena() {
    // SAFETY: mallopt only sets a tuning parameter of glibc's allocator, takes no pointers, and
    // runs first thing in main, before this process starts any other thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

fn main() -> ExitCode {
    one_malloc_arena();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and friends.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let message = err.to_string();
            let first_line = message
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            return fail(&format!("{first_line} (see teleport-jira --help)"));
        }
    };
    match cli.command {
        Command::Configure => {
            print!("{EXAMPLE_CONFIG}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("{}", version::version_line());
            ExitCode::SUCCESS
        }
        Command::Start {
            config,
            debug,
            insecure_no_tls,
        } => start(&config, debug, insecure_no_tls),
        Command::Check {
            config,
            insecure_no_tls,
        } => check(&config, insecure_no_tls),
        Command::Demo { keep_running } => demo(keep_running),
    }
}

#[cfg(feature = "demo")]
fn demo(keep_running: bool) -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&format!("starting the async runtime: {err}")),
    };
    let options = teleport_jira::demo::DemoOptions { keep_running };
    match runtime.block_on(teleport_jira::demo::run(options)) {
        Ok(()) => {
            println!("\nThe demo finished: every step above went through the real plugin.");
            ExitCode::SUCCESS
        }
        Err(err) => fail(&format!("demo: {err}")),
    }
}

/// The daemon as shipped leaves the fakes out: they would add a sixth to the binary, and about as
/// much to the memory it keeps mapped at idle.
#[cfg(not(feature = "demo"))]
fn demo(_keep_running: bool) -> ExitCode {
    fail(
        "demo: this binary was built without the demo (the fake Teleport and Jira it runs). \
         Fix: run `make demo` in a source checkout, or build with `cargo build --release --features demo`",
    )
}

fn start(path: &std::path::Path, debug: bool, insecure_no_tls: bool) -> ExitCode {
    // A process-wide TLS provider must be chosen before any TLS configuration is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (config, warnings) = match Config::load(path, insecure_no_tls) {
        Ok(loaded) => loaded,
        Err(err) => return fail(&err.to_string()),
    };
    if let Err(err) = logging::init(&config.log, debug) {
        return fail(&err);
    }
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let fail_fast = match teleport_jira::teleport::watch::fail_fast_from_env(
        std::env::var("TELEPORT_PLUGIN_FAIL_FAST").ok().as_deref(),
    ) {
        Ok(fail_fast) => fail_fast,
        Err(err) => return fail(&err),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&format!("starting the async runtime: {err}")),
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(forward_signals(shutdown.clone()));
        // Boxed: on the main thread's stack, the whole daemon's future would take room that
        // stays resident for the process's life.
        Box::pin(app::run(config, app::RunOptions { fail_fast }, shutdown)).await
    });
    match result {
        Ok(()) => {
            tracing::info!("Successfully shut down");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %err, "Terminating with fatal error");
            fail(&err.to_string())
        }
    }
}

fn check(path: &std::path::Path, insecure_no_tls: bool) -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&format!("starting the async runtime: {err}")),
    };
    if runtime.block_on(teleport_jira::check::run(path, insecure_no_tls)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// SIGTERM or SIGINT starts a graceful shutdown; a second SIGINT exits at once.
async fn forward_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the process with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("Received SIGTERM, shutting down"),
        _ = int.recv() => tracing::info!("Received SIGINT, shutting down"),
    }
    shutdown.cancel();
    int.recv().await;
    std::process::exit(1);
}

fn fail(message: &str) -> ExitCode {
    eprintln!("teleport-jira: error: {}", message.replace('\n', " "));
    ExitCode::FAILURE
}
