//! `FakeTeleport`: a Teleport Auth Service over mutual TLS, with a TLS-routing Proxy in front, that
//! answers the RPCs an access-request plugin uses exactly as teleport-wire.md describes them.
//!
//! # Layout
//! - `users`: users and the simplified RBAC (who may list, update, review, administer).
//! - `requests`: access requests, reviews and threshold resolution, direct state changes, listing.
//! - `plugin_data`: the plugin-data rules (get, compare-and-set update, seeding).
//! - `plugin_record`: one request's plugin data and its compare-and-set update.
//! - `rules`: Access Monitoring Rules (validation, paged and filtered listing, change events).
//! - `rule_service`: the tonic AccessMonitoringRulesService and UserLoginStateService.
//! - `watch`: WatchEvents authorization and the fan-out of PUT/DELETE events.
//! - `service`: the tonic `AuthService` (authentication, fault injection, call counting).
//! - `net`: the Auth and Proxy listeners, TLS routing, `/webapi`, cutting and re-binding connections.
//! - `identity`: identity files as `tctl auth sign` writes them.
//! - `ssh`: the SSH user certificate and SSH Host CA line inside identity files.
//! - `state`: the state behind one mutex.
//! - `clock`, `kinds`, `audit`: time helpers, the resource kind and request naming, audit events.
//!
//! This module is the only public face; tests drive the cluster through [`FakeTeleport`] methods and
//! through real gRPC clients.

mod audit;
mod clock;
mod identity;
mod kinds;
mod net;
mod plugin_data;
mod plugin_record;
mod requests;
mod rule_service;
mod rules;
mod service;
mod ssh;
mod state;
mod users;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tonic::{Code, Status};

use teleport_proto::proto::RequestStateSetter;
use teleport_proto::teleport::accessmonitoringrules::v1::AccessMonitoringRule;
use teleport_proto::types::{
    AccessRequestV3, AccessReview, AccessReviewSubmission, PluginDataUpdateParams, RequestState,
};

use crate::pki::{self, CertAuthority, KeyKind, PkiError, WebPki};

pub use audit::AuditEvent;
pub use identity::{Identity, IdentityOptions, TlsFiles};
pub use kinds::{KIND_ACCESS_MONITORING_RULE, KIND_ACCESS_REQUEST};
pub use net::{API_DOMAIN, auth_alpn_protocol};
pub use requests::{CreateRequest, LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT};
pub use rules::{access_monitoring_rule, automatic_review_rule};
pub use users::UserSpec;

use net::{Net, NetConfig};
use service::AuthApi;
use ssh::SshCa;
use state::{ClusterInfo, Shared};
use users::{Caller, access_denied};

/// How to start a [`FakeTeleport`].
#[derive(Debug, Clone)]
pub struct FakeTeleportOptions {
    /// Cluster name (Ping, CA subjects, routing ALPN). Default `teleport.example.com`.
    pub cluster_name: String,
    /// Server version in Ping and `/webapi/ping`. Default `17.0.2`.
    pub server_version: String,
    /// `Features.AdvancedAccessWorkflows` in Ping. Default `false`.
    pub advanced_access_workflows: bool,
    /// `ProxyPublicAddr` in Ping. Default empty.
    pub proxy_public_addr: String,
    /// Whether the INIT event carries a `WatchStatus` (v15+ servers do). Default `true`.
    pub watch_status_in_init: bool,
    /// Events a watcher may fall behind before it is closed (Teleport's fan-out holds 1024).
    pub watch_buffer: usize,
}

impl Default for FakeTeleportOptions {
    fn default() -> Self {
        Self {
            cluster_name: "teleport.example.com".into(),
            server_version: "17.0.2".into(),
            advanced_access_workflows: false,
            proxy_public_addr: String::new(),
            watch_status_in_init: true,
            watch_buffer: 1024,
        }
    }
}

/// Failures of the helpers that issue and write identities.
#[derive(Debug, thiserror::Error)]
pub enum FakeTeleportError {
    /// The user was never added to the cluster.
    #[error("user {0:?} is not known to the fake cluster")]
    UnknownUser(String),
    /// Certificates could not be issued.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// Files could not be written.
    #[error("writing identity: {0}")]
    Io(#[from] std::io::Error),
}

/// A running fake Teleport cluster. Dropping it stops every listener and connection.
pub struct FakeTeleport {
    shared: Arc<Shared>,
    net: Arc<Net>,
    host_ca: CertAuthority,
    user_ca: CertAuthority,
    ssh_user_ca: SshCa,
    web: WebPki,
}

impl std::fmt::Debug for FakeTeleport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTeleport")
            .field("cluster_name", &self.shared.info.cluster_name)
            .field("auth_addr", &self.net.auth_addr())
            .field("proxy_addr", &self.net.proxy_addr())
            .finish_non_exhaustive()
    }
}

impl FakeTeleport {
    /// Generates the cluster's CAs and certificates and starts both listeners on `127.0.0.1`.
    ///
    /// # Panics
    /// If certificates cannot be generated or a loopback port cannot be bound: the test cannot go on.
    pub async fn start(options: FakeTeleportOptions) -> Self {
        pki::install_crypto_provider();
        let info = ClusterInfo {
            cluster_name: options.cluster_name,
            server_version: options.server_version,
            advanced_access_workflows: options.advanced_access_workflows,
            proxy_public_addr: options.proxy_public_addr,
            watch_status_in_init: options.watch_status_in_init,
            watch_buffer: options.watch_buffer,
        };
        let cluster = info.cluster_name.clone();
        let host_ca = CertAuthority::teleport(&cluster).expect("FakeTeleport: Host CA");
        let user_ca = CertAuthority::teleport(&cluster).expect("FakeTeleport: User CA");
        let ssh_user_ca = SshCa::generate().expect("FakeTeleport: SSH User CA");
        let web = WebPki::localhost().expect("FakeTeleport: web PKI");
        let auth_tls = auth_tls_config(&host_ca, &user_ca).expect("FakeTeleport: Auth TLS config");
        let web_tls = web
            .server_config(&[b"http/1.1"])
            .expect("FakeTeleport: web TLS config");
        let shared = Arc::new(Shared::new(info.clone()));
        let net = Net::start(NetConfig {
            info,
            api: AuthApi::new(Arc::clone(&shared)),
            auth_tls,
            web_tls,
        })
        .await
        .expect("FakeTeleport: binding 127.0.0.1:0");
        Self {
            shared,
            net,
            host_ca,
            user_ca,
            ssh_user_ca,
            web,
        }
    }

    /// The cluster name.
    pub fn cluster_name(&self) -> &str {
        &self.shared.info.cluster_name
    }

    /// Address of the Auth Service (mutual TLS gRPC; SNI `teleport.cluster.local`, ALPN `h2`).
    pub fn auth_addr(&self) -> SocketAddr {
        self.net.auth_addr()
    }

    /// Address of the Proxy (TLS routing: `teleport-auth@…` goes to Auth, the rest to `/webapi`).
    pub fn proxy_addr(&self) -> SocketAddr {
        self.net.proxy_addr()
    }

    /// PEM of the Host CA, which signs the Auth server certificate.
    pub fn host_ca_pem(&self) -> String {
        self.host_ca.cert_pem()
    }

    /// PEM of the web CA, which signs the Proxy's `localhost` certificate (for `SSL_CERT_FILE`).
    pub fn web_ca_pem(&self) -> String {
        self.web.ca_pem()
    }

    /// The User CA, for tests that need hand-made client certificates.
    pub fn user_ca(&self) -> &CertAuthority {
        &self.user_ca
    }

    /// Adds (or replaces) a user.
    pub fn add_user(&self, name: &str, spec: UserSpec) {
        self.shared.lock().users.insert(name.to_owned(), spec);
    }

    /// Replaces a user's traits (what `GetUser` answers).
    pub fn set_user_traits(&self, name: &str, traits: &[(&str, &[&str])]) {
        if let Some(user) = self.shared.lock().users.get_mut(name) {
            user.traits = traits
                .iter()
                .map(|(k, vs)| {
                    (
                        (*k).to_owned(),
                        vs.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect();
        }
    }

    /// Removes a user; certificates issued to them stop working (`access denied`).
    pub fn remove_user(&self, name: &str) -> bool {
        self.shared.lock().users.remove(name).is_some()
    }

    // === Identities ===

    /// Issues an identity for a known user.
    ///
    /// # Errors
    /// [`FakeTeleportError::UnknownUser`], or [`FakeTeleportError::Pki`] if issuing fails.
    pub fn issue_identity(
        &self,
        user: &str,
        options: &IdentityOptions,
    ) -> Result<Identity, FakeTeleportError> {
        let roles = self
            .shared
            .lock()
            .users
            .get(user)
            .map(|spec| spec.roles.clone())
            .ok_or_else(|| FakeTeleportError::UnknownUser(user.to_owned()))?;
        let authorities = identity::Authorities {
            user_ca: &self.user_ca,
            host_ca: &self.host_ca,
            ssh_user_ca: &self.ssh_user_ca,
        };
        Ok(identity::issue(
            self.cluster_name(),
            &authorities,
            user,
            &roles,
            options,
        )?)
    }

    /// Writes an identity file (`tctl auth sign --format=file`), replacing `path` atomically.
    ///
    /// # Errors
    /// As [`issue_identity`](Self::issue_identity), or [`FakeTeleportError::Io`].
    pub fn write_identity_file(
        &self,
        user: &str,
        path: &Path,
        options: IdentityOptions,
    ) -> Result<(), FakeTeleportError> {
        let identity = self.issue_identity(user, &options)?;
        identity::write_atomically(path, &identity.to_identity_file())?;
        Ok(())
    }

    /// Writes `<dir>/<user>.key`, `.crt` and `.cas` (`tctl auth sign --format=tls`) with default options.
    ///
    /// # Errors
    /// As [`write_tls_files_with`](Self::write_tls_files_with).
    pub fn write_tls_files(&self, user: &str, dir: &Path) -> Result<TlsFiles, FakeTeleportError> {
        self.write_tls_files_with(user, dir, &IdentityOptions::default())
    }

    /// Writes `<dir>/<user>.key`, `.crt` and `.cas`, each replaced atomically.
    ///
    /// # Errors
    /// As [`issue_identity`](Self::issue_identity), or [`FakeTeleportError::Io`].
    pub fn write_tls_files_with(
        &self,
        user: &str,
        dir: &Path,
        options: &IdentityOptions,
    ) -> Result<TlsFiles, FakeTeleportError> {
        let identity = self.issue_identity(user, options)?;
        let files = TlsFiles {
            key: dir.join(format!("{user}.key")),
            crt: dir.join(format!("{user}.crt")),
            cas: dir.join(format!("{user}.cas")),
        };
        identity::write_atomically(&files.key, &identity.key_pem)?;
        identity::write_atomically(&files.crt, &identity.cert_pem)?;
        identity::write_atomically(&files.cas, &identity.ca_bundle())?;
        Ok(files)
    }

    // === Access requests ===

    /// Creates a pending request as `user` would (the roles must be requestable by them).
    ///
    /// # Panics
    /// If Teleport would refuse the request; use [`try_create_access_request`](Self::try_create_access_request)
    /// to see the error instead.
    pub fn create_access_request(&self, user: &str, roles: &[&str], reason: &str) -> String {
        self.create_access_request_with(CreateRequest {
            user: user.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            reason: reason.to_owned(),
            ..CreateRequest::default()
        })
    }

    /// Creates a request with more fields set; returns its ID.
    ///
    /// # Panics
    /// If Teleport would refuse the request.
    pub fn create_access_request_with(&self, request: CreateRequest) -> String {
        let created = self
            .try_create_access_request(request)
            .unwrap_or_else(|status| panic!("create_access_request refused: {status}"));
        kinds::request_id(&created).to_owned()
    }

    /// Creates a request as its user would through `CreateAccessRequestV2`.
    ///
    /// # Errors
    /// The status Teleport would answer (unknown user, role not requestable, duplicate ID).
    pub fn try_create_access_request(
        &self,
        request: CreateRequest,
    ) -> Result<AccessRequestV3, Status> {
        let mut state = self.shared.lock();
        let caller = Caller {
            name: request.user.clone(),
            spec: state.users.get(&request.user).cloned().ok_or_else(|| {
                Status::not_found(format!("user {:?} is not found", request.user))
            })?,
        };
        state.create_request(&caller, request.into_wire())
    }

    /// Deletes a request (as on expiry); watchers get a DELETE. Plugin data stays.
    ///
    /// # Errors
    /// NotFound `cannot delete access request "<id>" (not found)`.
    pub fn delete_access_request(&self, id: &str) -> Result<(), Status> {
        self.shared.lock().delete_request(id)
    }

    /// Submits a review as `author` (the caller is the author itself), like `SubmitAccessReview`.
    ///
    /// # Errors
    /// The status Teleport would answer (see teleport-wire.md §6).
    pub fn submit_review_as(
        &self,
        author: &str,
        id: &str,
        state: RequestState,
        reason: &str,
    ) -> Result<AccessRequestV3, Status> {
        let caller = self.caller(author)?;
        let submission = AccessReviewSubmission {
            request_id: id.to_owned(),
            review: Some(AccessReview {
                author: author.to_owned(),
                proposed_state: state.into(),
                reason: reason.to_owned(),
                ..AccessReview::default()
            }),
        };
        self.shared.lock().submit_review(&caller, submission)
    }

    /// Sets a request's state as `caller`, like `SetAccessRequestState`.
    ///
    /// # Errors
    /// The status Teleport would answer (see teleport-wire.md §6).
    pub fn set_state_as(
        &self,
        caller: &str,
        id: &str,
        state: RequestState,
        reason: &str,
        delegator: &str,
    ) -> Result<(), Status> {
        let caller = self.caller(caller)?;
        let setter = RequestStateSetter {
            id: id.to_owned(),
            state: state.into(),
            delegator: delegator.to_owned(),
            reason: reason.to_owned(),
            ..RequestStateSetter::default()
        };
        self.shared.lock().set_state(&caller, setter)
    }

    /// Promotes a pending request to an access list, as Teleport's access-list service does.
    ///
    /// # Errors
    /// NotFound for an unknown request; InvalidArgument unless it is pending.
    pub fn promote_access_request(&self, id: &str, reason: &str) -> Result<(), Status> {
        self.shared.lock().promote(id, reason)
    }

    fn caller(&self, name: &str) -> Result<Caller, Status> {
        let spec = self
            .shared
            .lock()
            .users
            .get(name)
            .cloned()
            .ok_or_else(access_denied)?;
        Ok(Caller {
            name: name.to_owned(),
            spec,
        })
    }

    /// One request, as stored.
    pub fn access_request(&self, id: &str) -> Option<AccessRequestV3> {
        self.shared.lock().requests.get(id).cloned()
    }

    /// Every request, in ID order.
    pub fn access_requests(&self) -> Vec<AccessRequestV3> {
        self.shared.lock().requests.values().cloned().collect()
    }

    /// Every accepted `SetAccessRequestState`, in order.
    pub fn audit_events(&self) -> Vec<AuditEvent> {
        self.shared.lock().audit.clone()
    }

    // === Plugin data ===

    /// One plugin's data for one request.
    pub fn plugin_data(&self, id: &str, plugin: &str) -> Option<HashMap<String, String>> {
        self.shared.lock().plugin_entry(id, plugin)
    }

    /// Replaces one plugin's data without any check (to seed a cluster another plugin already served).
    /// Empty values are dropped; an empty map removes the entry.
    pub fn set_plugin_data(&self, id: &str, plugin: &str, data: HashMap<String, String>) {
        self.shared.lock().seed_plugin_data(id, plugin, data);
    }

    /// Every `UpdatePluginData` received from an authenticated caller, in order, refused ones included.
    pub fn plugin_data_updates(&self) -> Vec<PluginDataUpdateParams> {
        self.shared.lock().plugin_data_updates.clone()
    }

    // === Observation ===

    /// How many times an RPC was called (method name as in the gRPC path, e.g. `"WatchEvents"`).
    pub fn calls(&self, method: &str) -> usize {
        self.shared.lock().calls.get(method).copied().unwrap_or(0)
    }

    /// Open WatchEvents streams.
    pub fn watcher_count(&self) -> usize {
        self.shared.lock().watchers.open()
    }

    /// Waits until at least `count` watch streams are open; `false` on timeout.
    pub async fn wait_for_watchers(&self, count: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.watcher_count() < count {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    // === Access Monitoring Rules ===

    /// Creates or replaces a rule as an administrator would (`tctl create -f`), publishing the
    /// change to watchers.
    ///
    /// # Errors
    /// Teleport's validation errors (missing name, subjects or condition, wrong kind).
    pub fn upsert_access_monitoring_rule(
        &self,
        rule: AccessMonitoringRule,
    ) -> Result<AccessMonitoringRule, Status> {
        self.shared.lock().write_rule(rule, rules::Write::Upsert)
    }

    /// Deletes a rule, publishing the deletion to watchers.
    ///
    /// # Errors
    /// NotFound when no rule has that name.
    pub fn delete_access_monitoring_rule(&self, name: &str) -> Result<(), Status> {
        self.shared.lock().delete_rule(name)
    }

    /// The stored rules, in name order.
    pub fn access_monitoring_rules(&self) -> Vec<AccessMonitoringRule> {
        self.shared.lock().rules.values().cloned().collect()
    }

    // === Faults ===

    /// Makes ListAccessMonitoringRulesWithFilter answer Unimplemented, as servers before it did.
    pub fn set_rules_filter_unimplemented(&self, unimplemented: bool) {
        self.shared.lock().faults.rules_filter_unimplemented = unimplemented;
    }

    /// Makes ListAccessRequests answer Unimplemented, as servers older than the RPC do.
    pub fn set_list_unimplemented(&self, unimplemented: bool) {
        self.shared.lock().faults.list_unimplemented = unimplemented;
    }

    /// Ends every open WatchEvents stream with Unavailable.
    pub fn drop_watch_streams(&self) {
        self.shared
            .lock()
            .watchers
            .close_all(&Status::unavailable("watcher closed by the server"));
    }

    /// While on, new connections are closed at once; switching on also cuts existing connections.
    pub fn set_refuse_connections(&self, refuse: bool) {
        if refuse {
            self.drop_watch_streams();
        }
        self.net.set_refuse(refuse);
    }

    /// Delays every RPC by `delay` before it is handled.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().faults.delay = delay;
    }

    /// The next `times` calls of `method` fail with `code` (0 clears).
    pub fn fail_next(&self, method: &str, code: Code, times: usize) {
        self.shared.lock().faults.fail_next(method, code, times);
    }

    /// Closes the listeners and every connection and stream, then binds the same ports again.
    /// State survives; clients must reconnect and watchers re-subscribe.
    ///
    /// # Panics
    /// If a port cannot be bound again within a few seconds.
    pub async fn restart(&self) {
        self.drop_watch_streams();
        self.net.restart().await;
    }

    /// Closes the listeners and every connection for good.
    pub async fn stop(&self) {
        self.drop_watch_streams();
        self.net.halt().await;
    }
}

impl Drop for FakeTeleport {
    fn drop(&mut self) {
        self.net.abort();
    }
}

/// Auth's TLS: the Host-CA-signed server certificate, client certificates verified against the User
/// CA when given (Go's `VerifyClientCertIfGiven`), ALPN `h2` only.
fn auth_tls_config(
    host_ca: &CertAuthority,
    user_ca: &CertAuthority,
) -> Result<Arc<rustls::ServerConfig>, PkiError> {
    let sans = [API_DOMAIN, &format!("*.{API_DOMAIN}"), "localhost"];
    let server = host_ca.issue_server(&sans, KeyKind::EcdsaP256)?;
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(user_ca.root_store()))
        .allow_unauthenticated()
        .build()?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.cert_der()], server.key().private_key_der())?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
