//! The typed Teleport client: the Auth Service RPCs the plugin uses, with errors mapped to
//! [`TeleportError`], and a connection that can be replaced when the identity is renewed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use teleport_proto::proto::auth_service_client::AuthServiceClient;
use teleport_proto::proto::{
    Event, ListAccessRequestsRequest, PingRequest, PingResponse, RequestStateSetter, Watch,
};
use teleport_proto::teleport::accessmonitoringrules::v1::access_monitoring_rules_service_client::AccessMonitoringRulesServiceClient;
use teleport_proto::teleport::userloginstate::v1::user_login_state_service_client::UserLoginStateServiceClient;
use teleport_proto::types::{
    AccessRequestFilter, AccessRequestV3, AccessReview, AccessReviewSubmission, PluginDataFilter,
    PluginDataUpdateParams, RequestState, WatchKind,
};
use tokio::sync::watch;
use tonic::transport::Channel;

use super::dial::{self, Route};
use super::error::TeleportError;
use super::identity::Credentials;
use crate::metrics::Metrics;

/// The resource kind of access requests, in watches and plugin data.
pub const ACCESS_REQUEST_KIND: &str = "access_request";
/// The resource kind of Access Monitoring Rules, in watches.
pub const ACCESS_MONITORING_RULE_KIND: &str = "access_monitoring_rule";
/// A unary call that takes longer than this is treated as a connection problem.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Lists of requests and plugin data can be large; Teleport's own limit is far above the 4 MiB default.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
const LIST_PAGE_SIZE: i32 = 500;

/// The gRPC services the plugin calls, all on one connection.
#[derive(Clone)]
pub(super) struct Services {
    pub(super) auth: AuthServiceClient<Channel>,
    pub(super) rules: AccessMonitoringRulesServiceClient<Channel>,
    pub(super) login_states: UserLoginStateServiceClient<Channel>,
}

impl Services {
    fn on(channel: Channel) -> Self {
        Self {
            auth: AuthServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            rules: AccessMonitoringRulesServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            login_states: UserLoginStateServiceClient::new(channel),
        }
    }
}

/// A connection to a Teleport Auth Service.
pub struct TeleportClient {
    addr: String,
    route: Route,
    rpc: ArcSwap<Services>,
    /// Bumped each time new credentials replace the connection, so long-lived streams reopen on it.
    generation: watch::Sender<u64>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for TeleportClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeleportClient")
            .field("addr", &self.addr)
            .field("route", &self.route)
            .finish()
    }
}

impl TeleportClient {
    /// Connects to `addr` and checks the connection with `Ping`. When the address could be an Auth
    /// Service or a TLS-routing Proxy, both routes are tried and the first one that answers is kept.
    pub async fn connect(
        addr: &str,
        credentials: &Credentials,
    ) -> Result<(Self, PingResponse), TeleportError> {
        let cluster =
            credentials.info.cluster_name.clone().or_else(|| {
                Some(credentials.info.issuer.clone()).filter(|issuer| !issuer.is_empty())
            });
        let mut candidates = Route::candidates(addr, cluster.as_deref());
        if cluster.is_none() {
            // Without a cluster name the routing ALPN cannot be built; a Proxy can tell us.
            if let Ok(cluster) = dial::discover_cluster_name(addr).await {
                candidates = Route::candidates(addr, Some(&cluster));
            }
        }
        let mut failures = Vec::new();
        for route in candidates {
            match Self::connect_route(addr, credentials, &route).await {
                Ok((rpc, ping)) => {
                    tracing::debug!(%route, cluster = %ping.cluster_name, "connected to Teleport");
                    let client = Self {
                        addr: addr.to_owned(),
                        route,
                        rpc: ArcSwap::from_pointee(rpc),
                        generation: watch::Sender::new(0),
                        metrics: Arc::default(),
                    };
                    return Ok((client, ping));
                }
                Err(err) => failures.push(format!("{route}: {err}")),
            }
        }
        Err(TeleportError::Unavailable(format!(
            "cannot reach Teleport at {addr} ({})",
            failures.join("; ")
        )))
    }

    async fn connect_route(
        addr: &str,
        credentials: &Credentials,
        route: &Route,
    ) -> Result<(Services, PingResponse), TeleportError> {
        let channel = dial::connect(addr, credentials, route).await?;
        let rpc = Services::on(channel);
        let ping =
            tokio::time::timeout(dial::CONNECT_TIMEOUT, rpc.auth.clone().ping(PingRequest {}))
                .await
                .map_err(|_| TeleportError::Unavailable("Ping timed out".into()))??
                .into_inner();
        Ok((rpc, ping))
    }

    /// Replaces the connection with one made from renewed credentials, on the route already in use.
    /// The old connection keeps serving calls until the new one has answered `Ping`.
    pub async fn replace_credentials(
        &self,
        credentials: &Credentials,
    ) -> Result<(), TeleportError> {
        let (rpc, _) = Self::connect_route(&self.addr, credentials, &self.route).await?;
        self.rpc.store(Arc::new(rpc));
        self.generation.send_modify(|generation| *generation += 1);
        Ok(())
    }

    /// Records every call (duration, error codes) in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Changes each time the connection is replaced; streams should reopen when it does.
    pub fn connection_changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub fn route(&self) -> &Route {
        &self.route
    }

    fn rpc(&self) -> AuthServiceClient<Channel> {
        self.rpc.load().auth.clone()
    }

    /// The services of the connection in use.
    pub(super) fn services(&self) -> Services {
        Services::clone(&self.rpc.load())
    }

    pub async fn ping(&self) -> Result<PingResponse, TeleportError> {
        self.unary("ping", self.rpc().ping(PingRequest {})).await
    }

    /// Opens a watch on access requests, and with `rules` on Access Monitoring Rules too (with
    /// partial success: a server that will not stream rules drops that kind and says so in INIT).
    /// The first event is INIT, then PUT and DELETE follow.
    pub async fn watch_access_requests(
        &self,
        rules: bool,
    ) -> Result<tonic::Streaming<Event>, TeleportError> {
        let mut kinds = vec![WatchKind {
            kind: ACCESS_REQUEST_KIND.to_owned(),
            ..Default::default()
        }];
        if rules {
            kinds.push(WatchKind {
                kind: ACCESS_MONITORING_RULE_KIND.to_owned(),
                ..Default::default()
            });
        }
        let watch = Watch {
            kinds,
            allow_partial_success: rules,
        };
        self.unary("watch_events", self.rpc().watch_events(watch))
            .await
    }

    /// Every access request matching `filter`, following pagination.
    pub async fn list_access_requests(
        &self,
        filter: AccessRequestFilter,
    ) -> Result<Vec<AccessRequestV3>, TeleportError> {
        let mut requests = Vec::new();
        self.visit_access_requests(filter, |request| requests.push(request))
            .await?;
        Ok(requests)
    }

    /// Hands every access request matching `filter` to `visit` as its page arrives, so a listing
    /// of thousands is never held whole. Servers older than `ListAccessRequests` answer
    /// Unimplemented; then the streaming `GetAccessRequestsV2` is used.
    pub async fn visit_access_requests(
        &self,
        filter: AccessRequestFilter,
        mut visit: impl FnMut(AccessRequestV3) + Send,
    ) -> Result<(), TeleportError> {
        let mut start_key = String::new();
        let mut visited_any = false;
        loop {
            let page = ListAccessRequestsRequest {
                filter: Some(filter.clone()),
                limit: LIST_PAGE_SIZE,
                start_key: std::mem::take(&mut start_key),
                ..Default::default()
            };
            match self
                .unary(
                    "list_access_requests",
                    self.rpc().list_access_requests(page),
                )
                .await
            {
                Ok(page) => {
                    visited_any |= !page.access_requests.is_empty();
                    page.access_requests.into_iter().for_each(&mut visit);
                    if page.next_key.is_empty() {
                        return Ok(());
                    }
                    start_key = page.next_key;
                }
                Err(TeleportError::NotImplemented(_)) if !visited_any => {
                    return self.stream_access_requests(filter, visit).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn stream_access_requests(
        &self,
        filter: AccessRequestFilter,
        mut visit: impl FnMut(AccessRequestV3) + Send,
    ) -> Result<(), TeleportError> {
        let mut stream = self
            .unary(
                "get_access_requests_v2",
                self.rpc().get_access_requests_v2(filter),
            )
            .await?;
        while let Some(request) = stream.message().await? {
            visit(request);
        }
        Ok(())
    }

    /// The access request with this id, or `None` when Teleport has no such request (deleted or expired).
    pub async fn access_request(&self, id: &str) -> Result<Option<AccessRequestV3>, TeleportError> {
        let filter = AccessRequestFilter {
            id: id.to_owned(),
            ..Default::default()
        };
        let requests = self.list_access_requests(filter).await?;
        Ok(requests
            .into_iter()
            .find(|request| request.metadata.as_ref().is_some_and(|m| m.name == id)))
    }

    /// Approves or denies a request directly; `delegator` names who really decided (e.g. `jira:<email>`).
    pub async fn set_access_request_state(
        &self,
        id: &str,
        state: RequestState,
        reason: &str,
        delegator: &str,
    ) -> Result<(), TeleportError> {
        let setter = RequestStateSetter {
            id: id.to_owned(),
            state: state as i32,
            delegator: delegator.to_owned(),
            reason: reason.to_owned(),
            ..Default::default()
        };
        self.unary(
            "set_access_request_state",
            self.rpc().set_access_request_state(setter),
        )
        .await
    }

    /// Submits a review; Teleport applies its thresholds and answers with the request after the review.
    pub async fn submit_access_review(
        &self,
        id: &str,
        review: AccessReview,
    ) -> Result<AccessRequestV3, TeleportError> {
        let submission = AccessReviewSubmission {
            request_id: id.to_owned(),
            review: Some(review),
        };
        self.unary(
            "submit_access_review",
            self.rpc().submit_access_review(submission),
        )
        .await
    }

    /// The data `plugin` keeps for access request `id`; `None` when there is none.
    pub async fn plugin_data(
        &self,
        id: &str,
        plugin: &str,
    ) -> Result<Option<HashMap<String, String>>, TeleportError> {
        let filter = PluginDataFilter {
            kind: ACCESS_REQUEST_KIND.to_owned(),
            resource: id.to_owned(),
            plugin: plugin.to_owned(),
        };
        let seq = self
            .unary("get_plugin_data", self.rpc().get_plugin_data(filter))
            .await?;
        Ok(seq
            .plugin_data
            .into_iter()
            .filter(|data| data.metadata.as_ref().is_some_and(|m| m.name == id))
            .find_map(|data| data.spec.and_then(|mut spec| spec.entries.remove(plugin)))
            .map(|entry| entry.data))
    }

    /// Compare-and-swap on plugin data: applies `set` only if every key in `expect` holds that value
    /// (`""` = absent). A lost race is [`TeleportError::CompareFailed`]. A `""` in `set` deletes the key.
    pub async fn update_plugin_data(
        &self,
        id: &str,
        plugin: &str,
        set: HashMap<String, String>,
        expect: HashMap<String, String>,
    ) -> Result<(), TeleportError> {
        let params = PluginDataUpdateParams {
            kind: ACCESS_REQUEST_KIND.to_owned(),
            resource: id.to_owned(),
            plugin: plugin.to_owned(),
            set,
            expect,
        };
        self.unary("update_plugin_data", self.rpc().update_plugin_data(params))
            .await
    }

    /// Runs one call with a deadline, records it, and unwraps the response.
    /// Runs one call with its deadline, recording its duration and failure. The call's future
    /// (a tonic call is about 4 KB) is boxed for as long as it runs, instead of adding its room
    /// to every future that makes a call: steps keep a lease renewed beside their work and make
    /// calls three or four levels deep, and hundreds of them are in flight in a burst.
    pub(super) fn unary<'a, T: 'a>(
        &'a self,
        name: &'static str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'a,
    ) -> impl Future<Output = Result<T, TeleportError>> + Send + 'a {
        let call = Box::pin(call);
        async move {
            let started = std::time::Instant::now();
            let (result, failure) = match tokio::time::timeout(CALL_TIMEOUT, call).await {
                Ok(Ok(response)) => (Ok(response.into_inner()), None),
                Ok(Err(status)) => {
                    let code = format!("{:?}", status.code());
                    (Err(status.into()), Some(code))
                }
                Err(_) => (
                    Err(TeleportError::Unavailable(format!(
                        "no answer from Teleport within {CALL_TIMEOUT:?}"
                    ))),
                    Some("DeadlineExceeded".to_owned()),
                ),
            };
            self.metrics.teleport_call(name, started.elapsed(), failure);
            result
        }
    }
}
