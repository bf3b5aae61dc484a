//! The HTTP(S) listeners: bind (a bind failure is a start-up error), serve until shutdown with
//! limits that keep slow clients from holding connections, and drain gracefully.

mod kept_alive;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use kept_alive::CountingAcceptor;

/// A client gets this long to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a listener did not start.
#[derive(Debug, thiserror::Error)]
#[error("{name} server listening on {addr}: {reason}")]
pub struct ListenError {
    name: String,
    addr: SocketAddr,
    reason: String,
}

/// Binds a listener and serves it in a task of `tasks` until shutdown.
pub async fn start(
    name: &str,
    listen_addr: std::net::SocketAddr,
    tls: Option<RustlsConfig>,
    router: Router,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<(), ListenError> {
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let with_tls = tls.is_some();
    let server = tasks.spawn(serve(listen_addr, tls, router, shutdown.clone(), bound_tx));
    match bound_rx.await {
        Ok(addr) => {
            tracing::info!(listen_addr = %addr, tls = with_tls, "{} server listening", capitalized(name));
            Ok(())
        }
        Err(_) => {
            shutdown.cancel();
            let reason = match server.await {
                Ok(Err(err)) => err.to_string(),
                _ => "the server ended".to_owned(),
            };
            Err(ListenError {
                name: name.to_owned(),
                addr: listen_addr,
                reason,
            })
        }
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Serves the router on `addr` (TLS when `tls` is given) until `shutdown`; returns the bound address
/// through `bound` as soon as the socket listens.
pub async fn serve(
    addr: SocketAddr,
    tls: Option<RustlsConfig>,
    app: Router,
    shutdown: tokio_util::sync::CancellationToken,
    bound: tokio::sync::oneshot::Sender<SocketAddr>,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let graceful = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        graceful.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let _ = bound.send(listener.local_addr()?);
    let service = app.into_make_service();
    // Replies are small; without TCP_NODELAY one split across two segments can wait out the
    // peer's delayed ACK (tens of milliseconds per webhook or probe).
    let no_delay = axum_server::accept::NoDelayAcceptor::new();
    match tls {
        Some(tls) => {
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls).acceptor(no_delay);
            let mut server =
                axum_server::from_tcp(listener)?.acceptor(CountingAcceptor::new(acceptor));
            slow_client_limits(server.http_builder());
            server.handle(handle).serve(service).await
        }
        None => {
            let mut server =
                axum_server::from_tcp(listener)?.acceptor(CountingAcceptor::new(no_delay));
            slow_client_limits(server.http_builder());
            server.handle(handle).serve(service).await
        }
    }
}

/// A client that never finishes its headers is disconnected.
fn slow_client_limits(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
}
