//! Keep-alive within a bound. An idle kept-alive connection holds its state and buffers, and a
//! sender that opens a connection per delivery can leave thousands open: 10,000 decisions'
//! webhooks at once peaked at 67.6 MiB with keep-alive and 53.9 MiB without. So once more than
//! [`MAX_KEPT_ALIVE`] connections are open, each reply asks for its connection to be closed
//! (`Connection: close`, which hyper honours), and the count falls back. A sender that keeps
//! few connections, as Jira does, keeps them alive.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::http::{HeaderValue, Request, Response, Version, header};
use axum_server::accept::Accept;
use futures_util::future::BoxFuture;

/// Open connections past which a reply closes its connection.
pub const MAX_KEPT_ALIVE: usize = 256;

/// Counts the connections `inner` accepts, each for as long as its service lives (hyper drops
/// it when the connection ends).
#[derive(Clone)]
pub struct CountingAcceptor<A> {
    inner: A,
    open: Arc<AtomicUsize>,
}

impl<A> CountingAcceptor<A> {
    pub fn new(inner: A) -> Self {
        Self {
            inner,
            open: Arc::default(),
        }
    }
}

impl<I, S, A> Accept<I, S> for CountingAcceptor<A>
where
    A: Accept<I, Counted<S>>,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = A::Future;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let open = Arc::new(OpenConnection::new(Arc::clone(&self.open)));
        self.inner.accept(
            stream,
            Counted {
                inner: service,
                open,
            },
        )
    }
}

/// One open connection, counted until dropped.
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn new(open: Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(open)
    }

    fn crowded(&self) -> bool {
        self.0.load(Ordering::Relaxed) > MAX_KEPT_ALIVE
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's service, which closes the connection after its reply while too many are open.
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    open: Arc<OpenConnection>,
}

impl<S, In, B> tower::Service<Request<In>> for Counted<S>
where
    S: tower::Service<Request<In>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<B>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<In>) -> Self::Future {
        let open = Arc::clone(&self.open);
        // HTTP/2 has no `Connection` header: its connections carry many calls at once.
        let one_at_a_time = request.version() < Version::HTTP_2;
        let reply = self.inner.call(request);
        Box::pin(async move {
            let mut reply = reply.await?;
            if one_at_a_time && open.crowded() {
                reply
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(reply)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Serves a one-route router on a free port until the token is cancelled.
    async fn serve_ok() -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let addr = "127.0.0.1:0".parse().expect("address");
        tokio::spawn(super::super::serve(
            addr,
            None,
            app,
            shutdown.clone(),
            bound_tx,
        ));
        (bound_rx.await.expect("bound"), shutdown)
    }

    /// Sends one request on a new connection and reads its reply (headers and the body "ok").
    async fn ask(addr: std::net::SocketAddr) -> (TcpStream, String) {
        let mut connection = TcpStream::connect(addr).await.expect("connect");
        connection
            .write_all(b"GET / HTTP/1.1\r\nHost: plugin\r\n\r\n")
            .await
            .expect("write");
        let mut reply = Vec::new();
        while !reply.ends_with(b"ok") {
            let mut chunk = [0u8; 512];
            let read = connection.read(&mut chunk).await.expect("read");
            assert!(read > 0, "closed before the reply: {reply:?}");
            reply.extend_from_slice(&chunk[..read]);
        }
        let reply = String::from_utf8_lossy(&reply).to_ascii_lowercase();
        (connection, reply)
    }

    #[tokio::test]
    async fn past_the_bound_a_reply_closes_its_connection_and_below_it_keeps_it_alive() {
        let (addr, shutdown) = serve_ok().await;
        let mut kept = Vec::new();
        for _ in 0..MAX_KEPT_ALIVE {
            let (connection, reply) = ask(addr).await;
            assert!(!reply.contains("connection: close"), "{reply}");
            kept.push(connection);
        }
        let (mut crowded, reply) = ask(addr).await;
        assert!(reply.contains("connection: close"), "{reply}");
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            crowded.read_to_end(&mut rest),
        )
        .await;
        assert!(
            matches!(closed, Ok(Ok(0))),
            "the server closed it: {closed:?}"
        );

        // Once some close, the count falls back and replies keep their connections again.
        drop(kept.drain(..10));
        let mut reply = String::new();
        for _ in 0..100 {
            reply = ask(addr).await.1;
            if !reply.contains("connection: close") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(!reply.contains("connection: close"), "{reply}");
        shutdown.cancel();
    }
}
