//! Proves FakeTeleport through real sockets: mutual TLS, TLS routing, `/webapi`, watch events,
//! plugin-data CAS, reviews, state changes, fault knobs and restarts, as a Teleport client sees them.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncReadExt;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Status};

use teleport_proto::proto::auth_service_client::AuthServiceClient;
use teleport_proto::proto::{
    AccessRequestSort, Event, GetUserRequest, ListAccessRequestsRequest, Operation, PingRequest,
    RequestId, RequestStateSetter, Watch, event,
};
use teleport_proto::teleport::accessmonitoringrules::v1::access_monitoring_rules_service_client::AccessMonitoringRulesServiceClient;
use teleport_proto::teleport::accessmonitoringrules::v1::{
    AccessMonitoringRule, CreateAccessMonitoringRuleRequest, DeleteAccessMonitoringRuleRequest,
    ListAccessMonitoringRulesRequest, ListAccessMonitoringRulesWithFilterRequest,
    UpdateAccessMonitoringRuleRequest, UpsertAccessMonitoringRuleRequest,
};
use teleport_proto::teleport::userloginstate::v1::GetUserLoginStateRequest;
use teleport_proto::teleport::userloginstate::v1::user_login_state_service_client::UserLoginStateServiceClient;
use teleport_proto::types::{
    AccessRequestFilter, AccessRequestSpecV3, AccessRequestV3, AccessReview,
    AccessReviewSubmission, Metadata, PluginDataFilter, PluginDataUpdateParams, RequestState,
    WatchKind,
};
use testkit::pki::{self, CertAuthority, KeyFlavour, KeyKind, Validity};
use testkit::teleport::{
    API_DOMAIN, CreateRequest, FakeTeleport, FakeTeleportOptions, Identity, IdentityOptions,
    KIND_ACCESS_MONITORING_RULE, UserSpec, access_monitoring_rule, auth_alpn_protocol,
};

const STEP: Duration = Duration::from_secs(5);

// === Client support: what a Teleport client builds from an identity ===

fn tls_config(
    identity: Option<&Identity>,
    roots_pem: &str,
    alpn: Vec<Vec<u8>>,
) -> Arc<rustls::ClientConfig> {
    pki::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => {
            let chain = vec![CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).unwrap()];
            builder
                .with_client_auth_cert(chain, parse_key(id.key_pem.as_bytes()))
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn;
    Arc::new(config)
}

/// Like Teleport's Go reader: whatever the label says, try PKCS#8, then PKCS#1, then SEC1.
fn parse_key(pem: &[u8]) -> PrivateKeyDer<'static> {
    let (_, der) = <(SectionKind, Vec<u8>)>::from_pem_slice(pem).unwrap();
    let provider = rustls::crypto::ring::default_provider();
    let candidates = [
        PrivateKeyDer::Pkcs8(der.clone().into()),
        PrivateKeyDer::Pkcs1(der.clone().into()),
        PrivateKeyDer::Sec1(der.into()),
    ];
    candidates
        .into_iter()
        .find(|key| {
            provider
                .key_provider
                .load_private_key(key.clone_key())
                .is_ok()
        })
        .expect("no key format matched")
}

/// PEM blocks in file order, as Teleport's identity-file reader collects them.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END") {
                blocks.extend(current.take());
            }
        } else if line.starts_with("-----BEGIN") {
            current = Some(format!("{line}\n"));
        }
    }
    blocks
}

fn direct_alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec()]
}

fn routed_alpn(cluster: &str) -> Vec<Vec<u8>> {
    vec![auth_alpn_protocol(cluster).into_bytes(), b"h2".to_vec()]
}

/// A gRPC client over a hand-made rustls connector (tonic cannot set ALPN itself).
fn grpc(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> AuthServiceClient<Channel> {
    AuthServiceClient::new(channel(addr, config))
}

/// A channel over a hand-made rustls connector, for any of the services on the Auth connection.
fn channel(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Channel {
    let connector = tokio_rustls::TlsConnector::from(config);
    let sni = ServerName::try_from(API_DOMAIN).unwrap().to_owned();
    let service = tower::service_fn(move |_: Uri| {
        let (connector, sni) = (connector.clone(), sni.clone());
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let tls = connector.connect(sni, tcp).await?;
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(std::io::Error::other("h2 not negotiated"));
            }
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    Endpoint::from_static("http://teleport.cluster.local")
        .connect_timeout(STEP)
        .connect_with_connector_lazy(service)
}

/// A channel for `user` connected straight to Auth.
fn channel_for(fake: &FakeTeleport, user: &str) -> Channel {
    let identity = fake
        .issue_identity(user, &IdentityOptions::default())
        .unwrap();
    channel(
        fake.auth_addr(),
        tls_config(Some(&identity), &fake.host_ca_pem(), direct_alpn()),
    )
}

/// A client for `user` connected straight to Auth.
fn client_for(fake: &FakeTeleport, user: &str) -> AuthServiceClient<Channel> {
    AuthServiceClient::new(channel_for(fake, user))
}

async fn started() -> FakeTeleport {
    let fake = FakeTeleport::start(FakeTeleportOptions::default()).await;
    fake.add_user("jira", UserSpec::plugin());
    fake.add_user("alice", UserSpec::requester(&["editor"]));
    fake.add_user("bob", UserSpec::reviewer(&["editor"]));
    fake.add_user("carol", UserSpec::reviewer(&["*"]));
    fake.add_user("admin", UserSpec::admin());
    fake
}

async fn next_event(stream: &mut tonic::Streaming<Event>) -> Event {
    tokio::time::timeout(STEP, stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

fn access_request_watch() -> Watch {
    Watch {
        kinds: vec![WatchKind {
            kind: "access_request".into(),
            ..WatchKind::default()
        }],
        allow_partial_success: false,
    }
}

fn assert_status(result: Result<impl std::fmt::Debug, Status>, code: Code, message: &str) {
    let status = result.unwrap_err();
    assert_eq!((status.code(), status.message()), (code, message));
}

// === Transport ===

#[tokio::test]
async fn ping_over_mutual_tls_reports_cluster_and_version() {
    let fake = started().await;
    let ping = client_for(&fake, "jira")
        .ping(PingRequest {})
        .await
        .unwrap();
    assert_eq!(ping.metadata().get("version").unwrap(), "17.0.2");
    let ping = ping.into_inner();
    assert_eq!(ping.cluster_name, "teleport.example.com");
    assert_eq!(ping.server_version, "17.0.2");
    assert!(!ping.server_features.unwrap().advanced_access_workflows);
    assert_eq!(fake.calls("Ping"), 1);
}

#[tokio::test]
async fn proxy_forwards_teleport_auth_alpn_to_auth_unterminated() {
    let fake = started().await;
    let identity = fake
        .issue_identity("jira", &IdentityOptions::default())
        .unwrap();
    // Verified against the Host CA and answered by Auth: the proxy did not terminate TLS.
    let config = tls_config(
        Some(&identity),
        &fake.host_ca_pem(),
        routed_alpn(fake.cluster_name()),
    );
    let ping = grpc(fake.proxy_addr(), config)
        .ping(PingRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ping.cluster_name, fake.cluster_name());
}

#[tokio::test]
async fn proxy_closes_routes_to_an_unknown_cluster() {
    let fake = started().await;
    let identity = fake
        .issue_identity("jira", &IdentityOptions::default())
        .unwrap();
    let config = tls_config(
        Some(&identity),
        &fake.host_ca_pem(),
        routed_alpn("other.example.com"),
    );
    let err = grpc(fake.proxy_addr(), config)
        .ping(PingRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

#[tokio::test]
async fn proxy_serves_webapi_find_and_ping_over_web_pki() {
    let fake = started().await;
    let web_ca = reqwest::Certificate::from_pem(fake.web_ca_pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([web_ca])
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", fake.proxy_addr().port());
    for path in ["/webapi/find", "/webapi/ping"] {
        let body: serde_json::Value = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["cluster_name"], "teleport.example.com", "{path}");
        assert_eq!(body["server_version"], "17.0.2");
        assert_eq!(body["min_client_version"], "16.0.0");
        assert_eq!(body["proxy"]["tls_routing_enabled"], true);
        assert_eq!(
            body["proxy"]["ssh"]["web_listen_addr"],
            fake.proxy_addr().to_string()
        );
    }
    let missing = http
        .get(format!("{base}/webapi/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn client_without_certificate_is_denied_every_rpc() {
    let fake = started().await;
    let mut client = grpc(
        fake.auth_addr(),
        tls_config(None, &fake.host_ca_pem(), direct_alpn()),
    );
    assert_status(
        client.ping(PingRequest {}).await,
        Code::PermissionDenied,
        "access denied",
    );
    let watch = client.watch_events(access_request_watch()).await;
    assert_status(watch, Code::PermissionDenied, "access denied");
}

#[tokio::test]
async fn client_certificate_from_a_foreign_ca_fails_the_handshake() {
    let fake = started().await;
    let foreign = CertAuthority::teleport("teleport.example.com").unwrap();
    let cert = foreign
        .issue_client(
            "jira",
            &[],
            KeyKind::EcdsaP256,
            Validity::for_ttl(Duration::from_secs(600)),
        )
        .unwrap();
    let identity = Identity {
        key_pem: cert.key_pem(),
        ssh_cert_line: String::new(),
        cert_pem: cert.cert_pem(),
        ssh_ca_lines: Vec::new(),
        ca_pems: Vec::new(),
    };
    let config = tls_config(Some(&identity), &fake.host_ca_pem(), direct_alpn());
    let tcp = tokio::net::TcpStream::connect(fake.auth_addr())
        .await
        .unwrap();
    let sni = ServerName::try_from(API_DOMAIN).unwrap().to_owned();
    // With TLS 1.3 the client learns of the rejection on its first read: a fatal alert.
    let outcome = match tokio_rustls::TlsConnector::from(config)
        .connect(sni, tcp)
        .await
    {
        Err(err) => Err(err),
        Ok(mut tls) => tls.read(&mut [0u8; 16]).await,
    };
    let err = outcome.unwrap_err().to_string();
    assert!(err.contains("alert"), "{err}");
}

#[tokio::test]
async fn expired_identity_fails_the_handshake() {
    let fake = started().await;
    let identity = fake
        .issue_identity("jira", &IdentityOptions::expired())
        .unwrap();
    let config = tls_config(Some(&identity), &fake.host_ca_pem(), direct_alpn());
    let err = grpc(fake.auth_addr(), config)
        .ping(PingRequest {})
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("CertificateExpired"), "{err:?}");
}

#[tokio::test]
async fn removed_user_is_denied_with_a_still_valid_certificate() {
    let fake = started().await;
    let mut client = client_for(&fake, "alice");
    fake.remove_user("alice");
    assert_status(
        client.ping(PingRequest {}).await,
        Code::PermissionDenied,
        "access denied",
    );
}

#[tokio::test]
async fn identity_file_in_every_key_flavour_authenticates() {
    let fake = started().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("identity");
    for flavour in [
        KeyFlavour::RsaPkcs1,
        KeyFlavour::Pkcs8Ecdsa,
        KeyFlavour::Sec1Ecdsa,
        KeyFlavour::Pkcs8Ed25519,
        KeyFlavour::RsaPkcs8UnderRsaLabel,
    ] {
        // Written twice to the same path, like a renewal.
        for _ in 0..2 {
            let options = IdentityOptions {
                extra_ca_count: 1,
                ..IdentityOptions::default()
            };
            fake.write_identity_file("jira", &path, options.with_key(flavour))
                .unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.iter().any(|l| l.contains("-cert-v01@openssh.com ")),
            "{flavour:?}"
        );
        let ca_line = format!("@cert-authority {0},*.{0} ssh-rsa ", fake.cluster_name());
        assert_eq!(lines.iter().filter(|l| l.starts_with(&ca_line)).count(), 2);
        // Placement is by order only: key, client certificate, then CAs.
        let blocks = pem_blocks(&text);
        assert_eq!(blocks.len(), 4, "{flavour:?}");
        let identity = Identity {
            key_pem: blocks[0].clone(),
            ssh_cert_line: String::new(),
            cert_pem: blocks[1].clone(),
            ssh_ca_lines: Vec::new(),
            ca_pems: Vec::new(),
        };
        let roots = blocks[2..].concat();
        let config = tls_config(Some(&identity), &roots, direct_alpn());
        let ping = grpc(fake.auth_addr(), config).ping(PingRequest {}).await;
        assert!(ping.is_ok(), "{flavour:?}: {ping:?}");
    }
}

#[tokio::test]
async fn tls_files_authenticate() {
    let fake = started().await;
    let dir = tempfile::tempdir().unwrap();
    let files = fake.write_tls_files("jira", dir.path()).unwrap();
    let identity = Identity {
        key_pem: std::fs::read_to_string(&files.key).unwrap(),
        ssh_cert_line: String::new(),
        cert_pem: std::fs::read_to_string(&files.crt).unwrap(),
        ssh_ca_lines: Vec::new(),
        ca_pems: Vec::new(),
    };
    let roots = std::fs::read_to_string(&files.cas).unwrap();
    let config = tls_config(Some(&identity), &roots, direct_alpn());
    assert!(
        grpc(fake.auth_addr(), config)
            .ping(PingRequest {})
            .await
            .is_ok()
    );
}

// === Watch ===

#[tokio::test]
async fn watch_gets_init_then_put_then_delete() {
    let fake = started().await;
    let mut events = client_for(&fake, "jira")
        .watch_events(access_request_watch())
        .await
        .unwrap()
        .into_inner();
    let init = next_event(&mut events).await;
    assert_eq!(init.r#type, i32::from(Operation::Init));
    let Some(event::Resource::WatchStatus(status)) = init.resource else {
        panic!("{init:?}")
    };
    assert_eq!(status.spec.unwrap().kinds[0].kind, "access_request");

    let id = fake.create_access_request("alice", &["editor"], "need it");
    let put = next_event(&mut events).await;
    assert_eq!(put.r#type, i32::from(Operation::Put));
    let Some(event::Resource::AccessRequest(request)) = put.resource else {
        panic!("{put:?}")
    };
    let spec = request.spec.unwrap();
    assert_eq!(
        (request.kind.as_str(), request.version.as_str()),
        ("access_request", "v3")
    );
    assert_eq!(request.metadata.unwrap().name, id);
    assert_eq!(
        (spec.user.as_str(), spec.state),
        ("alice", i32::from(RequestState::Pending))
    );
    assert_eq!(spec.request_reason, "need it");

    fake.delete_access_request(&id).unwrap();
    let delete = next_event(&mut events).await;
    assert_eq!(delete.r#type, i32::from(Operation::Delete));
    let Some(event::Resource::ResourceHeader(header)) = delete.resource else {
        panic!("{delete:?}")
    };
    let meta = header.metadata.unwrap();
    assert_eq!(
        (header.kind.as_str(), header.version.as_str()),
        ("access_request", "v3")
    );
    assert_eq!(
        (meta.name.as_str(), meta.namespace.as_str()),
        (id.as_str(), "default")
    );
}

#[tokio::test]
async fn watch_filters_apply_to_put_but_not_to_delete() {
    let fake = started().await;
    fake.add_user("dave", UserSpec::requester(&["editor"]));
    let mut watch = access_request_watch();
    watch.kinds[0].filter = HashMap::from([("user".into(), "dave".into())]);
    let mut events = client_for(&fake, "jira")
        .watch_events(watch)
        .await
        .unwrap()
        .into_inner();
    next_event(&mut events).await;
    let alices = fake.create_access_request("alice", &["editor"], "");
    let daves = fake.create_access_request("dave", &["editor"], "");
    let put = next_event(&mut events).await;
    let Some(event::Resource::AccessRequest(request)) = put.resource else {
        panic!("{put:?}")
    };
    assert_eq!(request.metadata.unwrap().name, daves);
    fake.delete_access_request(&alices).unwrap();
    let delete = next_event(&mut events).await;
    assert_eq!(delete.r#type, i32::from(Operation::Delete));
}

#[tokio::test]
async fn watch_refuses_unknown_filters_and_unwatchable_kinds() {
    let fake = started().await;
    let mut client = client_for(&fake, "jira");
    let mut watch = access_request_watch();
    watch.kinds[0].filter = HashMap::from([("requester".into(), "x".into())]);
    assert_status(
        client.watch_events(watch).await,
        Code::InvalidArgument,
        "unknown filter key requester",
    );

    let mut watch = access_request_watch();
    watch.kinds.push(WatchKind {
        kind: "node".into(),
        ..WatchKind::default()
    });
    let denied = client.watch_events(watch.clone()).await;
    assert_status(
        denied,
        Code::PermissionDenied,
        "access denied to perform action \"read\" on \"node\"",
    );
    watch.allow_partial_success = true;
    let mut events = client.watch_events(watch).await.unwrap().into_inner();
    let Some(event::Resource::WatchStatus(status)) = next_event(&mut events).await.resource else {
        panic!("INIT without status")
    };
    assert_eq!(status.spec.unwrap().kinds.len(), 1);

    let mut admin = client_for(&fake, "admin");
    let watch = Watch {
        kinds: vec![WatchKind {
            kind: "node".into(),
            ..WatchKind::default()
        }],
        ..Watch::default()
    };
    let refused = admin.watch_events(watch).await;
    assert_status(
        refused,
        Code::InvalidArgument,
        "resource type \"node\" is not supported by this event stream",
    );
}

#[tokio::test]
async fn dropped_watch_streams_end_with_unavailable() {
    let fake = started().await;
    let mut events = client_for(&fake, "jira")
        .watch_events(access_request_watch())
        .await
        .unwrap()
        .into_inner();
    next_event(&mut events).await;
    assert!(fake.wait_for_watchers(1, STEP).await);
    fake.drop_watch_streams();
    let end = tokio::time::timeout(STEP, events.message()).await.unwrap();
    assert_eq!(end.unwrap_err().code(), Code::Unavailable);
}

// === Plugin data ===

#[tokio::test]
async fn plugin_data_compare_and_set_conflict_is_failed_precondition() {
    let fake = started().await;
    let id = fake.create_access_request("alice", &["editor"], "");
    let mut client = client_for(&fake, "jira");
    let update = |set: &[(&str, &str)], expect: &[(&str, &str)]| PluginDataUpdateParams {
        kind: "access_request".into(),
        resource: id.clone(),
        plugin: "jira".into(),
        set: set
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        expect: expect
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
    };
    client
        .update_plugin_data(update(&[("issue_id", "10001")], &[("issue_id", "")]))
        .await
        .unwrap();
    let stale = client
        .update_plugin_data(update(&[("issue_id", "10002")], &[("issue_id", "")]))
        .await;
    assert_status(
        stale,
        Code::FailedPrecondition,
        "expectations not met for field \"issue_id\"",
    );
    client
        .update_plugin_data(update(&[("issue_id", "")], &[("issue_id", "10001")]))
        .await
        .unwrap();
    assert_eq!(
        fake.plugin_data(&id, "jira"),
        None,
        "an emptied entry is removed"
    );
    assert_eq!(fake.plugin_data_updates().len(), 3);

    let filter = PluginDataFilter {
        kind: "access_request".into(),
        resource: id.clone(),
        plugin: "jira".into(),
    };
    let seq = client
        .get_plugin_data(filter.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(seq.plugin_data.is_empty());
    let wrong_kind = client
        .get_plugin_data(PluginDataFilter {
            kind: "user".into(),
            ..filter
        })
        .await;
    assert_status(
        wrong_kind,
        Code::InvalidArgument,
        "unsupported resource kind \"user\"",
    );
}

#[tokio::test]
async fn plugin_data_survives_deletion_but_needs_a_request_to_start() {
    let fake = started().await;
    let mut client = client_for(&fake, "jira");
    let id = fake.create_access_request("alice", &["editor"], "");
    let params = |resource: &str| PluginDataUpdateParams {
        kind: "access_request".into(),
        resource: resource.into(),
        plugin: "jira".into(),
        set: HashMap::from([("issue_key".into(), "OPS-1".into())]),
        expect: HashMap::new(),
    };
    client.update_plugin_data(params(&id)).await.unwrap();
    fake.delete_access_request(&id).unwrap();
    let filter = PluginDataFilter {
        kind: "access_request".into(),
        resource: id.clone(),
        plugin: "jira".into(),
    };
    let seq = client.get_plugin_data(filter).await.unwrap().into_inner();
    let record = &seq.plugin_data[0];
    assert_eq!(
        (record.kind.as_str(), record.sub_kind.as_str()),
        ("plugin_data", "access_request")
    );
    assert_eq!(
        record.spec.as_ref().unwrap().entries["jira"].data["issue_key"],
        "OPS-1"
    );

    let missing = client.update_plugin_data(params("no-such-request")).await;
    assert_status(
        missing,
        Code::NotFound,
        "access request \"no-such-request\" not found",
    );
}

// === Reviews and state ===

#[tokio::test]
async fn create_access_request_v2_applies_requester_rules() {
    let fake = started().await;
    let request = |user: &str, role: &str| AccessRequestV3 {
        kind: "access_request".into(),
        version: "v3".into(),
        metadata: Some(Metadata {
            name: "req-1".into(),
            ..Metadata::default()
        }),
        spec: Some(AccessRequestSpecV3 {
            user: user.into(),
            roles: vec![role.into()],
            state: RequestState::Pending.into(),
            request_reason: "deploy".into(),
            ..AccessRequestSpecV3::default()
        }),
        ..AccessRequestV3::default()
    };
    let mut alice = client_for(&fake, "alice");
    let created = alice
        .create_access_request_v2(request("alice", "editor"))
        .await
        .unwrap()
        .into_inner();
    let meta = created.metadata.unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(
        (meta.name.as_str(), meta.namespace.as_str()),
        ("req-1", "default")
    );
    assert_eq!(meta.expires, spec.expires);
    assert!(spec.created.unwrap().seconds < spec.expires.unwrap().seconds);
    assert_eq!(spec.state, i32::from(RequestState::Pending));
    let threshold = &spec.thresholds[0];
    assert_eq!(
        (threshold.name.as_str(), threshold.approve, threshold.deny),
        ("default", 1, 1)
    );
    assert_eq!(
        spec.role_threshold_mapping["editor"].sets[0].indexes,
        vec![0]
    );

    assert_status(
        alice
            .create_access_request_v2(request("alice", "editor"))
            .await,
        Code::AlreadyExists,
        "access request \"req-1\" already exists",
    );
    assert_status(
        alice
            .create_access_request_v2(request("alice", "admin"))
            .await,
        Code::InvalidArgument,
        "user \"alice\" can not request role \"admin\"",
    );
    assert_status(
        alice
            .create_access_request_v2(request("bob", "editor"))
            .await,
        Code::PermissionDenied,
        "access denied to perform action \"create\" on \"access_request\"",
    );
}

#[tokio::test]
async fn two_of_two_thresholds_resolve_only_on_the_second_approval() {
    let fake = started().await;
    fake.add_user(
        "erin",
        UserSpec::requester(&["editor"]).with_thresholds(2, 2),
    );
    let id = fake.create_access_request("erin", &["editor"], "");
    let mut bob = client_for(&fake, "bob");
    let review = |reason: &str| AccessReviewSubmission {
        request_id: id.clone(),
        review: Some(AccessReview {
            proposed_state: RequestState::Approved.into(),
            reason: reason.into(),
            ..AccessReview::default()
        }),
    };
    let after_first = bob
        .submit_access_review(review("fine by me"))
        .await
        .unwrap()
        .into_inner();
    let spec = after_first.spec.unwrap();
    assert_eq!(spec.state, i32::from(RequestState::Pending));
    assert_eq!(spec.reviews[0].author, "bob");
    assert_eq!(spec.reviews[0].threshold_indexes, vec![0]);

    let after_second = client_for(&fake, "carol")
        .submit_access_review(review("ok"))
        .await
        .unwrap()
        .into_inner();
    let spec = after_second.spec.unwrap();
    assert_eq!(spec.state, i32::from(RequestState::Approved));
    assert_eq!(spec.resolve_reason, "ok");
}

#[tokio::test]
async fn reviews_are_refused_with_teleport_messages() {
    let fake = started().await;
    let id = fake.create_access_request("alice", &["editor"], "");
    fake.add_user("frank", UserSpec::reviewer(&["editor"]));
    fake.add_user(
        "gina",
        UserSpec::reviewer(&["editor"]).with_thresholds(3, 3),
    );
    let id2 = fake.create_access_request_with(CreateRequest {
        user: "alice".into(),
        roles: vec!["editor".into()],
        ..CreateRequest::default()
    });

    let mut bob = client_for(&fake, "bob");
    let on_behalf = AccessReviewSubmission {
        request_id: id.clone(),
        review: Some(AccessReview {
            author: "carol".into(),
            proposed_state: RequestState::Approved.into(),
            ..AccessReview::default()
        }),
    };
    assert_status(
        bob.submit_access_review(on_behalf).await,
        Code::PermissionDenied,
        "user \"bob\" cannot submit reviews on behalf of \"carol\"",
    );
    assert_status(
        fake.submit_review_as("alice", &id, RequestState::Approved, ""),
        Code::PermissionDenied,
        "user \"alice\" cannot submit reviews",
    );
    assert_status(
        fake.submit_review_as("bob", "nope", RequestState::Approved, ""),
        Code::NotFound,
        "cannot apply review to access request \"nope\" (not found)",
    );
    assert_status(
        fake.submit_review_as("bob", &id, RequestState::Pending, ""),
        Code::InvalidArgument,
        "invalid state proposal: PENDING (expected approval/denial)",
    );
    assert_status(
        fake.submit_review_as("bob", &id, RequestState::Promoted, ""),
        Code::InvalidArgument,
        "state promoted can be only set when promoting to access list",
    );
    fake.submit_review_as("bob", &id, RequestState::Approved, "")
        .unwrap();
    assert_status(
        fake.submit_review_as("bob", &id, RequestState::Approved, ""),
        Code::PermissionDenied,
        "user \"bob\" has already reviewed this request",
    );
    assert_status(
        fake.submit_review_as("frank", &id, RequestState::Denied, ""),
        Code::PermissionDenied,
        "the access request has been already approved",
    );
    // The admin may review on behalf of others.
    let on_behalf = AccessReviewSubmission {
        request_id: id2.clone(),
        review: Some(AccessReview {
            author: "frank".into(),
            proposed_state: RequestState::Denied.into(),
            ..AccessReview::default()
        }),
    };
    let denied = client_for(&fake, "admin")
        .submit_access_review(on_behalf)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(denied.spec.unwrap().state, i32::from(RequestState::Denied));
}

#[tokio::test]
async fn set_state_cannot_undo_a_denial_and_audits_what_it_accepts() {
    let fake = started().await;
    let id = fake.create_access_request("alice", &["editor"], "");
    let mut jira = client_for(&fake, "jira");
    let setter = |state: RequestState| RequestStateSetter {
        id: id.clone(),
        state: state.into(),
        delegator: "jira:bob@example.com".into(),
        reason: "per ticket".into(),
        ..RequestStateSetter::default()
    };
    jira.set_access_request_state(setter(RequestState::Denied))
        .await
        .unwrap();
    let refused = jira
        .set_access_request_state(setter(RequestState::Approved))
        .await;
    assert_status(
        refused,
        Code::InvalidArgument,
        "cannot set request-state \"APPROVED\" (already denied)",
    );
    jira.set_access_request_state(setter(RequestState::Denied))
        .await
        .unwrap();
    assert_status(
        jira.set_access_request_state(setter(RequestState::None))
            .await,
        Code::InvalidArgument,
        "missing request state",
    );
    let audit = fake.audit_events();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].delegator, "jira:bob@example.com");
    assert_eq!(audit[0].caller, "jira");
    let spec = fake.access_request(&id).unwrap().spec.unwrap();
    assert_eq!(
        (spec.state, spec.resolve_reason.as_str()),
        (i32::from(RequestState::Denied), "per ticket")
    );

    assert_status(
        fake.set_state_as("jira", "nope", RequestState::Approved, "", ""),
        Code::NotFound,
        "cannot set state of access request \"nope\" (not found)",
    );
    assert_status(
        fake.set_state_as("bob", &id, RequestState::Approved, "", ""),
        Code::PermissionDenied,
        "access denied to perform action \"update\" on \"access_request\"",
    );
    fake.add_user(
        "pat",
        UserSpec {
            plugin: true,
            ..UserSpec::requester(&["editor"])
        },
    );
    let own = fake.create_access_request("pat", &["editor"], "");
    assert_status(
        fake.set_state_as("pat", &own, RequestState::Approved, "", ""),
        Code::PermissionDenied,
        "directly updating the state of your own access requests is not permitted",
    );
}

// === Listing ===

#[tokio::test]
async fn list_access_requests_paginates_then_falls_back_when_unimplemented() {
    let fake = started().await;
    let ids: Vec<String> = (0..5)
        .map(|_| fake.create_access_request("alice", &["editor"], ""))
        .collect();
    let mut client = client_for(&fake, "jira");
    let mut seen = Vec::new();
    let mut start_key = String::new();
    loop {
        let page = client
            .list_access_requests(ListAccessRequestsRequest {
                limit: 2,
                start_key: start_key.clone(),
                sort: AccessRequestSort::Default.into(),
                ..ListAccessRequestsRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.access_requests.len() <= 2);
        seen.extend(
            page.access_requests
                .into_iter()
                .map(|r| r.metadata.unwrap().name),
        );
        if page.next_key.is_empty() {
            break;
        }
        start_key = page.next_key;
    }
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);

    fake.set_list_unimplemented(true);
    let listed = client
        .list_access_requests(ListAccessRequestsRequest::default())
        .await;
    assert_eq!(listed.unwrap_err().code(), Code::Unimplemented);
    let mut stream = client
        .get_access_requests_v2(AccessRequestFilter::default())
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(request) = stream.message().await.unwrap() {
        streamed.push(request.metadata.unwrap().name);
    }
    assert_eq!(streamed, expected);
}

// === Faults ===

#[tokio::test]
async fn fail_next_fails_that_many_calls_then_recovers() {
    let fake = started().await;
    let mut client = client_for(&fake, "jira");
    fake.fail_next("Ping", Code::Unavailable, 2);
    for _ in 0..2 {
        assert_eq!(
            client.ping(PingRequest {}).await.unwrap_err().code(),
            Code::Unavailable
        );
    }
    assert!(client.ping(PingRequest {}).await.is_ok());
    assert_eq!(fake.calls("Ping"), 3);
}

#[tokio::test]
async fn refusing_connections_cuts_open_streams_until_switched_off() {
    let fake = started().await;
    let mut events = client_for(&fake, "jira")
        .watch_events(access_request_watch())
        .await
        .unwrap()
        .into_inner();
    next_event(&mut events).await;
    fake.set_refuse_connections(true);
    let end = tokio::time::timeout(STEP, events.message()).await.unwrap();
    assert!(end.is_err());
    assert!(
        client_for(&fake, "jira")
            .ping(PingRequest {})
            .await
            .is_err()
    );
    fake.set_refuse_connections(false);
    assert!(client_for(&fake, "jira").ping(PingRequest {}).await.is_ok());
}

#[tokio::test]
async fn restart_keeps_state_and_ports_but_ends_streams() {
    let fake = started().await;
    let id = fake.create_access_request("alice", &["editor"], "");
    let (auth, proxy) = (fake.auth_addr(), fake.proxy_addr());
    let mut events = client_for(&fake, "jira")
        .watch_events(access_request_watch())
        .await
        .unwrap()
        .into_inner();
    next_event(&mut events).await;

    fake.restart().await;

    assert!(
        tokio::time::timeout(STEP, events.message())
            .await
            .unwrap()
            .is_err()
    );
    assert_eq!((fake.auth_addr(), fake.proxy_addr()), (auth, proxy));
    let mut client = client_for(&fake, "jira");
    let page = client
        .list_access_requests(ListAccessRequestsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.access_requests[0].metadata.as_ref().unwrap().name, id);
    let mut admin = client_for(&fake, "admin");
    admin
        .delete_access_request(RequestId { id: id.clone() })
        .await
        .unwrap();
    assert!(fake.access_request(&id).is_none());
}

// === Access Monitoring Rules and user traits ===

fn rule(name: &str, notification: &str) -> AccessMonitoringRule {
    access_monitoring_rule(name, notification, "true", &["OPS"])
}

fn names(rules: &[AccessMonitoringRule]) -> Vec<String> {
    rules
        .iter()
        .map(|r| r.metadata.as_ref().unwrap().name.clone())
        .collect()
}

#[tokio::test]
async fn rules_list_in_pages_filtered_by_notification_name() {
    let fake = started().await;
    fake.add_user("reader", UserSpec::plugin().with_rules_access());
    for (name, notification) in [("a", "jira"), ("b", "slack"), ("c", "jira"), ("d", "jira")] {
        fake.upsert_access_monitoring_rule(rule(name, notification))
            .unwrap();
    }
    let mut client = AccessMonitoringRulesServiceClient::new(channel_for(&fake, "reader"));
    let filter = ListAccessMonitoringRulesWithFilterRequest {
        page_size: 2,
        subjects: vec!["access_request".into()],
        notification_name: "jira".into(),
        ..ListAccessMonitoringRulesWithFilterRequest::default()
    };
    let first = client
        .list_access_monitoring_rules_with_filter(filter.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&first.rules), ["a", "c"]);
    let second = client
        .list_access_monitoring_rules_with_filter(ListAccessMonitoringRulesWithFilterRequest {
            page_token: first.next_page_token,
            ..filter
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&second.rules), ["d"]);
    assert!(second.next_page_token.is_empty());

    let all = client
        .list_access_monitoring_rules(ListAccessMonitoringRulesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&all.rules), ["a", "b", "c", "d"]);

    fake.set_rules_filter_unimplemented(true);
    let status = client
        .list_access_monitoring_rules_with_filter(
            ListAccessMonitoringRulesWithFilterRequest::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
}

#[tokio::test]
async fn rules_need_read_to_list_and_admin_to_write() {
    let fake = started().await;
    let mut plugin = AccessMonitoringRulesServiceClient::new(channel_for(&fake, "jira"));
    assert_status(
        plugin
            .list_access_monitoring_rules(ListAccessMonitoringRulesRequest::default())
            .await,
        Code::PermissionDenied,
        "access denied to perform action \"list\" on \"access_monitoring_rule\"",
    );
    let create = CreateAccessMonitoringRuleRequest {
        rule: Some(rule("r", "jira")),
    };
    assert_status(
        plugin.create_access_monitoring_rule(create.clone()).await,
        Code::PermissionDenied,
        "access denied to perform action \"create\" on \"access_monitoring_rule\"",
    );
    let mut admin = AccessMonitoringRulesServiceClient::new(channel_for(&fake, "admin"));
    admin
        .create_access_monitoring_rule(create.clone())
        .await
        .unwrap();
    assert_eq!(
        admin
            .create_access_monitoring_rule(create)
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    let mut nameless = rule("", "jira");
    nameless.metadata = None;
    assert_status(
        admin
            .upsert_access_monitoring_rule(UpsertAccessMonitoringRuleRequest {
                rule: Some(nameless),
            })
            .await,
        Code::InvalidArgument,
        "accessMonitoringRule name is missing",
    );
    let update = UpdateAccessMonitoringRuleRequest {
        rule: Some(rule("missing", "jira")),
    };
    assert_eq!(
        admin
            .update_access_monitoring_rule(update)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    admin
        .delete_access_monitoring_rule(DeleteAccessMonitoringRuleRequest { name: "r".into() })
        .await
        .unwrap();
    assert!(fake.access_monitoring_rules().is_empty());
}

#[tokio::test]
async fn rule_kind_is_dropped_from_a_partial_watch_without_read_and_streamed_with_it() {
    let fake = started().await;
    fake.add_user("reader", UserSpec::plugin().with_rules_access());
    let mut watch = access_request_watch();
    watch.kinds.push(WatchKind {
        kind: KIND_ACCESS_MONITORING_RULE.into(),
        ..WatchKind::default()
    });
    watch.allow_partial_success = true;

    let mut plain = client_for(&fake, "jira");
    let mut events = plain
        .watch_events(watch.clone())
        .await
        .unwrap()
        .into_inner();
    let Some(event::Resource::WatchStatus(status)) = next_event(&mut events).await.resource else {
        panic!("INIT without status")
    };
    let kinds: Vec<_> = status
        .spec
        .unwrap()
        .kinds
        .into_iter()
        .map(|k| k.kind)
        .collect();
    assert_eq!(kinds, ["access_request"]);

    let mut reader = client_for(&fake, "reader");
    let mut events = reader.watch_events(watch).await.unwrap().into_inner();
    let Some(event::Resource::WatchStatus(status)) = next_event(&mut events).await.resource else {
        panic!("INIT without status")
    };
    assert_eq!(status.spec.unwrap().kinds.len(), 2);
    fake.upsert_access_monitoring_rule(rule("r", "jira"))
        .unwrap();
    let put = next_event(&mut events).await;
    assert_eq!(put.r#type, Operation::Put as i32);
    let Some(event::Resource::AccessMonitoringRule(stored)) = put.resource else {
        panic!("expected the rule")
    };
    assert_eq!(names(&[stored]), ["r"]);
    fake.delete_access_monitoring_rule("r").unwrap();
    let delete = next_event(&mut events).await;
    let Some(event::Resource::ResourceHeader(header)) = delete.resource else {
        panic!("expected a header")
    };
    assert_eq!(header.kind, KIND_ACCESS_MONITORING_RULE);
    assert_eq!(header.metadata.unwrap().name, "r");
}

#[tokio::test]
async fn traits_come_from_login_state_or_user_with_read_permission() {
    let fake = started().await;
    fake.add_user("reader", UserSpec::plugin().with_rules_access());
    fake.add_user(
        "dana",
        UserSpec::requester(&["editor"])
            .with_trait("team", &["db"])
            .with_login_state_traits(&[("team", &["sso-db"])]),
    );
    let mut states = UserLoginStateServiceClient::new(channel_for(&fake, "reader"));
    let state = states
        .get_user_login_state(GetUserLoginStateRequest {
            name: "dana".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let traits = state.spec.unwrap().traits;
    assert_eq!(
        (traits[0].key.as_str(), traits[0].values.clone()),
        ("team", vec!["sso-db".to_owned()])
    );
    let missing = states
        .get_user_login_state(GetUserLoginStateRequest {
            name: "alice".into(),
        })
        .await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);

    let mut reader = client_for(&fake, "reader");
    let user = reader
        .get_user(GetUserRequest {
            name: "dana".into(),
            with_secrets: false,
        })
        .await
        .unwrap()
        .into_inner();
    let values = &user.spec.unwrap().traits.unwrap().values["team"].values;
    assert_eq!(values, &["db"]);

    let mut plain = client_for(&fake, "jira");
    assert_status(
        plain
            .get_user(GetUserRequest {
                name: "dana".into(),
                with_secrets: false,
            })
            .await,
        Code::PermissionDenied,
        "access denied to perform action \"read\" on \"user\"",
    );
    let mut plain_states = UserLoginStateServiceClient::new(channel_for(&fake, "jira"));
    assert_eq!(
        plain_states
            .get_user_login_state(GetUserLoginStateRequest {
                name: "dana".into()
            })
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
}
