//! Sockets of the fake: the Auth listener (mutual TLS, gRPC) and the Proxy listener with TLS routing,
//! plus the switches that cut, refuse and re-bind connections.
//!
//! The Proxy reads each ClientHello without terminating it. A first ALPN protocol
//! `teleport-auth@<hex(cluster)>.teleport.cluster.local` naming this cluster is forwarded byte for byte to
//! the Auth listener (ForwardTLS: mutual TLS stays end to end with Auth); another cluster is refused by
//! closing; anything else is terminated with the web certificate and served the `/webapi` endpoints.
//!
//! Invariant: every accepted socket belongs to the connection generation current at accept time, and
//! cancelling that generation closes the socket whatever its owner is doing.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use teleport_proto::teleport::accessmonitoringrules::v1::access_monitoring_rules_service_server::AccessMonitoringRulesServiceServer;
use teleport_proto::teleport::userloginstate::v1::user_login_state_service_server::UserLoginStateServiceServer;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::{Connected, TcpConnectInfo};

use teleport_proto::proto::auth_service_server::AuthServiceServer;

use super::service::AuthApi;
use super::state::ClusterInfo;

/// Teleport's API domain: SNI and SAN of Auth, and the suffix of the routing ALPN protocol.
pub const API_DOMAIN: &str = "teleport.cluster.local";

/// ALPN prefix the Proxy routes to Auth.
const AUTH_ALPN_PREFIX: &str = "teleport-auth@";

/// Bound on reading a ClientHello or completing a handshake, so a silent client cannot pin a task.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `restart` keeps trying to re-bind a port the kernel has not released yet.
const REBIND_TIMEOUT: Duration = Duration::from_secs(5);

/// The ALPN protocol that routes a TLS connection through a Teleport Proxy to this cluster's Auth.
pub fn auth_alpn_protocol(cluster_name: &str) -> String {
    format!(
        "{AUTH_ALPN_PREFIX}{}.{API_DOMAIN}",
        hex::encode(cluster_name)
    )
}

/// What the listeners need, fixed at start.
pub(crate) struct NetConfig {
    pub(crate) info: ClusterInfo,
    pub(crate) api: AuthApi,
    pub(crate) auth_tls: Arc<rustls::ServerConfig>,
    pub(crate) web_tls: Arc<rustls::ServerConfig>,
}

/// The fake's listeners and connections.
pub(crate) struct Net {
    info: ClusterInfo,
    api: AuthServiceServer<AuthApi>,
    rules_api: AccessMonitoringRulesServiceServer<AuthApi>,
    login_state_api: UserLoginStateServiceServer<AuthApi>,
    auth_tls: TlsAcceptor,
    web_tls: TlsAcceptor,
    auth_addr: SocketAddr,
    proxy_addr: SocketAddr,
    refuse: AtomicBool,
    /// Parent of every live connection's token; replaced each time connections are cut.
    connections: Mutex<CancellationToken>,
    running: Mutex<Option<Generation>>,
}

/// The accept loops of one bind of the two ports.
struct Generation {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Net {
    /// Binds both listeners on `127.0.0.1:0` and starts serving.
    pub(crate) async fn start(config: NetConfig) -> io::Result<Arc<Self>> {
        let auth = TcpListener::bind("127.0.0.1:0").await?;
        let proxy = TcpListener::bind("127.0.0.1:0").await?;
        let net = Arc::new(Self {
            info: config.info,
            rules_api: AccessMonitoringRulesServiceServer::new(config.api.clone()),
            login_state_api: UserLoginStateServiceServer::new(config.api.clone()),
            api: AuthServiceServer::new(config.api),
            auth_tls: TlsAcceptor::from(config.auth_tls),
            web_tls: TlsAcceptor::from(config.web_tls),
            auth_addr: auth.local_addr()?,
            proxy_addr: proxy.local_addr()?,
            refuse: AtomicBool::new(false),
            connections: Mutex::new(CancellationToken::new()),
            running: Mutex::new(None),
        });
        net.spawn(auth, proxy);
        Ok(net)
    }

    pub(crate) fn auth_addr(&self) -> SocketAddr {
        self.auth_addr
    }

    pub(crate) fn proxy_addr(&self) -> SocketAddr {
        self.proxy_addr
    }

    /// Closes every open connection; new ones are accepted as usual (unless refusing).
    pub(crate) fn cut_connections(&self) {
        let mut current = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let old = std::mem::replace(&mut *current, CancellationToken::new());
        old.cancel();
    }

    pub(crate) fn set_refuse(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
        if refuse {
            self.cut_connections();
        }
    }

    /// Closes the listeners and every connection, then binds the same ports again.
    ///
    /// # Panics
    /// If a port cannot be bound again within a few seconds (another process took it).
    pub(crate) async fn restart(self: &Arc<Self>) {
        self.halt().await;
        let auth = rebind(self.auth_addr).await;
        let proxy = rebind(self.proxy_addr).await;
        self.spawn(auth, proxy);
    }

    /// Closes the listeners and every connection, and waits until the accept loops are gone.
    pub(crate) async fn halt(&self) {
        let generation = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.cut_connections();
        let Some(generation) = generation else { return };
        generation.stop.cancel();
        for mut task in generation.tasks {
            if tokio::time::timeout(REBIND_TIMEOUT, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Synchronous teardown for `Drop`: signals everything to stop without waiting.
    pub(crate) fn abort(&self) {
        if let Some(generation) = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            generation.stop.cancel();
            for task in generation.tasks {
                task.abort();
            }
        }
        self.cut_connections();
    }

    fn spawn(self: &Arc<Self>, auth: TcpListener, proxy: TcpListener) {
        let stop = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(Arc::clone(self).serve_auth(auth, stop.clone())),
            tokio::spawn(Arc::clone(self).serve_proxy(proxy, stop.clone())),
        ];
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Generation { stop, tasks });
    }

    fn connection_token(&self) -> CancellationToken {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .child_token()
    }

    /// Accepts TCP, completes mutual TLS and hands the streams to tonic, whose `Connected`
    /// implementation for rustls streams makes the client certificate visible to the service.
    async fn serve_auth(self: Arc<Self>, listener: TcpListener, stop: CancellationToken) {
        let (streams, incoming) = mpsc::channel::<io::Result<AuthStream>>(64);
        let server = tonic::transport::Server::builder()
            .add_service(self.api.clone())
            .add_service(self.rules_api.clone())
            .add_service(self.login_state_api.clone())
            .serve_with_incoming_shutdown(
                ReceiverStream::new(incoming),
                stop.clone().cancelled_owned(),
            );
        let server = tokio::spawn(server);
        while let Some(tcp) = self.accept(&listener, &stop).await {
            let io = Killable::new(tcp, self.connection_token());
            let (acceptor, streams) = (self.auth_tls.clone(), streams.clone());
            tokio::spawn(async move {
                // A failed handshake (foreign CA, no h2) just ends the connection, as in Go.
                if let Ok(Ok(tls)) =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await
                {
                    let _ = streams.send(Ok(tls)).await;
                }
            });
        }
        drop(listener);
        drop(streams);
        let _ = server.await;
    }

    async fn serve_proxy(self: Arc<Self>, listener: TcpListener, stop: CancellationToken) {
        while let Some(tcp) = self.accept(&listener, &stop).await {
            let net = Arc::clone(&self);
            let cut = self.connection_token();
            tokio::spawn(async move {
                tokio::select! {
                    () = cut.cancelled() => {}
                    () = net.route(tcp) => {}
                }
            });
        }
    }

    /// The next connection to serve, or `None` once this generation stops. While refusing,
    /// connections are accepted and closed at once.
    async fn accept(&self, listener: &TcpListener, stop: &CancellationToken) -> Option<TcpStream> {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return None,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((tcp, _)) if self.refuse.load(Ordering::SeqCst) => drop(tcp),
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    return Some(tcp);
                }
                // Transient (for example out of file descriptors): back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    async fn route(&self, mut tcp: TcpStream) {
        let Ok(Ok(Some((first_alpn, hello)))) =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, read_client_hello(&mut tcp)).await
        else {
            return;
        };
        match first_alpn.as_deref().and_then(routed_cluster) {
            Some(cluster) if cluster == self.info.cluster_name => {
                let _ = self.forward_to_auth(tcp, &hello).await;
            }
            // Routing to a cluster this proxy does not know fails by closing the connection.
            Some(_) => {}
            None => self.serve_web(Rewind::new(hello, tcp)).await,
        }
    }

    async fn forward_to_auth(&self, mut client: TcpStream, hello: &[u8]) -> io::Result<()> {
        let mut auth = TcpStream::connect(self.auth_addr).await?;
        auth.set_nodelay(true)?;
        auth.write_all(hello).await?;
        tokio::io::copy_bidirectional(&mut client, &mut auth).await?;
        Ok(())
    }

    async fn serve_web(&self, io: Rewind<TcpStream>) {
        let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.web_tls.accept(io)).await
        else {
            return;
        };
        let body = ping_json(&self.info, self.proxy_addr);
        let service = hyper::service::service_fn(move |request| {
            let body = body.clone();
            async move { Ok::<_, Infallible>(web_response(&request, &body)) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tls), service)
            .await;
    }
}

type AuthStream = tokio_rustls::server::TlsStream<Killable<TcpStream>>;

async fn rebind(addr: SocketAddr) -> TcpListener {
    let deadline = tokio::time::Instant::now() + REBIND_TIMEOUT;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(err) if tokio::time::Instant::now() >= deadline => {
                panic!("FakeTeleport could not re-bind {addr}: {err}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Reads until a whole ClientHello has arrived. Returns the client's first ALPN protocol and every
/// byte read, so the handshake can be replayed to whoever terminates it.
async fn read_client_hello(tcp: &mut TcpStream) -> io::Result<Option<(Option<Vec<u8>>, Vec<u8>)>> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        seen.extend_from_slice(&chunk[..n]);
        let mut fresh = &chunk[..n];
        while !fresh.is_empty() {
            if acceptor.read_tls(&mut fresh)? == 0 {
                break;
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let hello = accepted.client_hello();
                let first = hello
                    .alpn()
                    .and_then(|mut protocols| protocols.next())
                    .map(<[u8]>::to_vec);
                return Ok(Some((first, seen)));
            }
            Ok(None) => {}
            Err(_) => return Ok(None),
        }
    }
}

/// The cluster named by a `teleport-auth@<hex>.teleport.cluster.local` protocol, if it is one.
fn routed_cluster(protocol: &[u8]) -> Option<String> {
    let protocol = std::str::from_utf8(protocol).ok()?;
    let encoded = protocol.strip_prefix(AUTH_ALPN_PREFIX)?;
    let hex_name = encoded.strip_suffix(API_DOMAIN)?.strip_suffix('.')?;
    String::from_utf8(hex::decode(hex_name).ok()?).ok()
}

/// The JSON of `/webapi/find` and `/webapi/ping` (webclient `PingResponse`), with TLS routing on.
fn ping_json(info: &ClusterInfo, proxy_addr: SocketAddr) -> Bytes {
    let addr = proxy_addr.to_string();
    let public_addr = if info.proxy_public_addr.is_empty() {
        format!("localhost:{}", proxy_addr.port())
    } else {
        info.proxy_public_addr.clone()
    };
    let major = info
        .server_version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    let min_client = major.map_or_else(
        || "16.0.0".to_owned(),
        |m| format!("{}.0.0", m.saturating_sub(1)),
    );
    let body = serde_json::json!({
        "auth": {
            "type": "local",
            "second_factor": "on",
            "preferred_local_mfa": "webauthn",
            "local": { "name": "" },
            "private_key_policy": "none",
            "device_trust": {},
            "has_motd": false,
        },
        "proxy": {
            "kube": { "enabled": true, "listen_addr": addr },
            "ssh": {
                "listen_addr": addr,
                "tunnel_listen_addr": addr,
                "web_listen_addr": addr,
                "public_addr": public_addr,
            },
            "db": {},
            "tls_routing_enabled": true,
        },
        "server_version": info.server_version,
        "min_client_version": min_client,
        "cluster_name": info.cluster_name,
        "automatic_upgrades": false,
    });
    Bytes::from(body.to_string())
}

fn web_response(request: &Request<hyper::body::Incoming>, ping: &Bytes) -> Response<Full<Bytes>> {
    let json = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        response
    };
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/webapi/find" | "/webapi/ping") => json(StatusCode::OK, ping.clone()),
        (_, "/webapi/find" | "/webapi/ping") => json(
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(br#"{"error":{"message":"method not allowed"}}"#),
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"error":{"message":"not found"}}"#),
        ),
    }
}

/// A socket that fails every read and write once its token is cancelled, so that connections owned by
/// tonic's server can be cut from outside.
pub(crate) struct Killable<T> {
    inner: T,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    dead: bool,
}

impl<T> Killable<T> {
    fn new(inner: T, token: CancellationToken) -> Self {
        Self {
            inner,
            cancelled: Box::pin(token.cancelled_owned()),
            dead: false,
        }
    }

    /// Whether the token was cancelled; otherwise registers for the wake-up.
    fn killed(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.dead && self.cancelled.as_mut().poll(cx).is_ready() {
            self.dead = true;
        }
        self.dead
    }
}

fn cut() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection cut by FakeTeleport",
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for Killable<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed(cx) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Killable<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.killed(cx) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed(cx) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Connected for Killable<TcpStream> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// A socket whose first reads return bytes already consumed (the ClientHello), then the socket itself.
pub(crate) struct Rewind<T> {
    replay: Vec<u8>,
    offset: usize,
    inner: T,
}

impl<T> Rewind<T> {
    fn new(replay: Vec<u8>, inner: T) -> Self {
        Self {
            replay,
            offset: 0,
            inner,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.offset < self.replay.len() {
            let n = buf.remaining().min(self.replay.len() - self.offset);
            let start = self.offset;
            buf.put_slice(&self.replay[start..start + n]);
            self.offset += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_protocol_round_trips_the_cluster_name() {
        let protocol = auth_alpn_protocol("example.com");
        assert_eq!(
            protocol,
            "teleport-auth@6578616d706c652e636f6d.teleport.cluster.local"
        );
        assert_eq!(
            routed_cluster(protocol.as_bytes()).as_deref(),
            Some("example.com")
        );
        assert_eq!(routed_cluster(b"h2"), None);
        assert_eq!(
            routed_cluster(b"teleport-auth@zz.teleport.cluster.local"),
            None
        );
    }
}
