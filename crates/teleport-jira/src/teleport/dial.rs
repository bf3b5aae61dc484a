//! Reaching the Auth Service: directly (`host:3025`) or through a Proxy with TLS routing (`host:443`).
//!
//! Both routes end in the same mutual-TLS gRPC connection with Auth. Through a Proxy, the ALPN list
//! starts with `teleport-auth@<hex(cluster)>.teleport.cluster.local`, which tells the Proxy to pass
//! the TLS stream through unterminated. Which route an address needs is not always visible from the
//! address, so [`Route::candidates`] orders the guesses and the caller keeps the first that answers
//! `Ping`.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

use super::error::TeleportError;
use super::identity::Credentials;
use super::tls::{TELEPORT_SERVER_NAME, auth_routing_protocol, client_config};
use crate::errors::error_chain;

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Teleport's server refuses HTTP/2 pings more often than once a minute ("too_many_pings").
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(90);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// How the TCP connection reaches the Auth Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The address is an Auth Service.
    Direct,
    /// The address is a Proxy with TLS routing; `cluster` selects the Auth Service behind it.
    TlsRouting { cluster: String },
}

impl Route {
    /// The routes worth trying for `addr`, most likely first. `cluster` is the cluster name when it
    /// is known (from the certificate or the Proxy's web API).
    pub(crate) fn candidates(addr: &str, cluster: Option<&str>) -> Vec<Self> {
        let routing = cluster.map(|cluster| Self::TlsRouting {
            cluster: cluster.to_owned(),
        });
        let looks_like_proxy = matches!(port_of(addr), Some(443 | 3080));
        match routing {
            Some(routing) if looks_like_proxy => vec![routing, Self::Direct],
            Some(routing) => vec![Self::Direct, routing],
            None => vec![Self::Direct],
        }
    }

    pub(crate) fn alpn(&self) -> Vec<Vec<u8>> {
        match self {
            Self::Direct => vec![b"h2".to_vec()],
            Self::TlsRouting { cluster } => {
                vec![auth_routing_protocol(cluster).into_bytes(), b"h2".to_vec()]
            }
        }
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Direct => f.write_str("direct to the Auth Service"),
            Self::TlsRouting { cluster } => {
                write!(f, "through a Proxy with TLS routing to cluster {cluster:?}")
            }
        }
    }
}

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
}

/// Opens a gRPC channel to `addr` over `route`. The channel reconnects by itself after a failure.
pub(crate) async fn connect(
    addr: &str,
    credentials: &Credentials,
    route: &Route,
) -> Result<Channel, TeleportError> {
    if port_of(addr).is_none() {
        return Err(TeleportError::BadParameter(format!(
            "teleport.addr {addr:?} must be host:port, e.g. \"teleport.example.com:3025\" or \"example.teleport.sh:443\""
        )));
    }
    let config = client_config(credentials, route.alpn())
        .map_err(|err| TeleportError::BadParameter(format!("building TLS configuration: {err}")))?;
    let connector = TlsConnector::from(Arc::new(config));
    let server_name = ServerName::try_from(TELEPORT_SERVER_NAME)
        .map_err(|err| TeleportError::BadParameter(err.to_string()))?;
    let addr_for_errors = addr.to_owned();
    let addr = addr.to_owned();
    let dial = tower::service_fn(move |_: Uri| {
        let (connector, server_name, addr) = (connector.clone(), server_name.clone(), addr.clone());
        async move {
            let tcp = TcpStream::connect(&addr).await?;
            tcp.set_nodelay(true)?;
            let tls = connector.connect(server_name, tcp).await?;
            if tls.get_ref().1.alpn_protocol() != Some(b"h2".as_slice()) {
                return Err(std::io::Error::other(format!(
                    "{addr} did not negotiate HTTP/2 (ALPN h2): it is not a Teleport Auth Service on this route"
                )));
            }
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    // The authority is never checked by Teleport; the TLS name above is what matters.
    Endpoint::from_static("http://teleport.cluster.local")
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect_with_connector(dial)
        .await
        .map_err(|err| match crate::errors::certificate_problem(&err) {
            Some(problem) => TeleportError::Unavailable(format!(
                "Teleport's certificate at {addr_for_errors} is not trusted: {problem}; check that teleport.addr is right and that the identity (or root_cas) comes from this cluster"
            )),
            None => TeleportError::Unavailable(error_chain(&err)),
        })
}

/// The cluster name as the Proxy's web API reports it (`GET /webapi/find`), for when the
/// certificate does not carry it. The Proxy's web certificate is checked against the system roots.
pub(crate) async fn discover_cluster_name(addr: &str) -> Result<String, TeleportError> {
    #[derive(serde::Deserialize)]
    struct Find {
        cluster_name: String,
    }
    let unavailable = |err: reqwest::Error| {
        TeleportError::Unavailable(format!(
            "GET https://{addr}/webapi/find: {}",
            error_chain(&err)
        ))
    };
    let client = crate::http_common::client_builder()
        .timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(unavailable)?;
    let find: Find = client
        .get(format!("https://{addr}/webapi/find"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(unavailable)?
        .json()
        .await
        .map_err(unavailable)?;
    Ok(find.cluster_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_ports_try_tls_routing_first() {
        let cluster = Some("example.com");
        let routing = Route::TlsRouting {
            cluster: "example.com".into(),
        };
        assert_eq!(
            Route::candidates("tenant.teleport.sh:443", cluster),
            vec![routing.clone(), Route::Direct]
        );
        assert_eq!(
            Route::candidates("auth:3025", cluster),
            vec![Route::Direct, routing]
        );
        assert_eq!(Route::candidates("auth:3025", None), vec![Route::Direct]);
    }

    #[test]
    fn routing_alpn_encodes_the_cluster_in_hex_before_h2() {
        let alpn = Route::TlsRouting {
            cluster: "example.com".into(),
        }
        .alpn();
        assert_eq!(
            alpn[0],
            b"teleport-auth@6578616d706c652e636f6d.teleport.cluster.local".to_vec()
        );
        assert_eq!(alpn[1], b"h2".to_vec());
    }
}
