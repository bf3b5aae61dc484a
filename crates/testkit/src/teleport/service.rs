//! The gRPC face of the fake: `proto.AuthService`, as served by a Teleport Auth Service.
//!
//! Every RPC is counted, then delayed and failed as the fault knobs say, then authenticated by the
//! client certificate's CN (no certificate, or a user the cluster does not know: `access denied`), and
//! only then handed to the rules in [`State`](super::state::State). Responses carry the `version`
//! header Teleport servers send.

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use teleport_proto::proto::auth_service_server::AuthService;
use teleport_proto::proto::{
    Features, GetUserRequest, ListAccessRequestsRequest, ListAccessRequestsResponse, PingRequest,
    PingResponse, PluginDataSeq, RequestId, RequestStateSetter, Watch,
};
use teleport_proto::types::{
    AccessRequestFilter, AccessRequestV3, AccessReviewSubmission, Metadata, PluginDataFilter,
    PluginDataUpdateParams, UserSpecV2, UserV2,
};
use teleport_proto::wrappers::{LabelValues, StringValues};

use super::kinds::KIND_ACCESS_REQUEST;
use super::state::Shared;
use super::users::{Caller, access_denied, action_denied};
use super::watch::{self, WatchStream};

/// Resource name Teleport checks plugin-data permissions against.
const KIND_ACCESS_PLUGIN_DATA: &str = "access_plugin_data";

/// The `AuthService` implementation handed to tonic.
#[derive(Debug, Clone)]
pub(crate) struct AuthApi {
    pub(crate) shared: Arc<Shared>,
}

impl AuthApi {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Bookkeeping and faults common to every RPC, then authentication.
    pub(crate) async fn enter<T>(
        &self,
        method: &str,
        request: &Request<T>,
    ) -> Result<Caller, Status> {
        let delay = {
            let mut state = self.shared.lock();
            *state.calls.entry(method.to_owned()).or_default() += 1;
            state.faults.delay
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(failure) = self.shared.lock().faults.take_failure(method) {
            return Err(failure);
        }
        self.authenticate(request)
    }

    fn authenticate<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let certs = request.peer_certs().ok_or_else(access_denied)?;
        let leaf = certs.first().ok_or_else(access_denied)?;
        let name = common_name(leaf).ok_or_else(access_denied)?;
        let spec = self
            .shared
            .lock()
            .users
            .get(&name)
            .cloned()
            .ok_or_else(access_denied)?;
        Ok(Caller { name, spec })
    }

    pub(crate) fn reply<T>(&self, message: T) -> Response<T> {
        let mut response = Response::new(message);
        if let Ok(version) = MetadataValue::try_from(self.shared.info.server_version.as_str()) {
            response.metadata_mut().insert("version", version);
        }
        response
    }
}

fn user_resource(name: &str, traits: BTreeMap<String, Vec<String>>) -> UserV2 {
    let values = traits
        .into_iter()
        .map(|(key, values)| (key, StringValues { values }))
        .collect();
    UserV2 {
        kind: "user".into(),
        sub_kind: String::new(),
        version: "v2".into(),
        metadata: Some(Metadata {
            name: name.to_owned(),
            namespace: "default".into(),
            ..Metadata::default()
        }),
        spec: Some(UserSpecV2 {
            traits: Some(LabelValues { values }),
        }),
    }
}

fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(cn.to_owned())
}

type AccessRequestStream = tokio_stream::Iter<std::vec::IntoIter<Result<AccessRequestV3, Status>>>;

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn ping(&self, request: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        self.enter("Ping", &request).await?;
        let info = &self.shared.info;
        Ok(self.reply(PingResponse {
            cluster_name: info.cluster_name.clone(),
            server_version: info.server_version.clone(),
            server_features: Some(Features {
                advanced_access_workflows: info.advanced_access_workflows,
            }),
            proxy_public_addr: info.proxy_public_addr.clone(),
            is_boring: false,
            remote_addr: request
                .remote_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            load_all_c_as: false,
            license_expiry: None,
        }))
    }

    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<UserV2>, Status> {
        let caller = self.enter("GetUser", &request).await?;
        let name = request.into_inner().name;
        // Users may always read themselves.
        if name != caller.name && !caller.spec.reads_users() {
            return Err(action_denied("read", "user"));
        }
        let traits = self
            .shared
            .lock()
            .users
            .get(&name)
            .map(|spec| spec.traits.clone())
            .ok_or_else(|| Status::not_found(format!("user {name:?} is not found")))?;
        Ok(self.reply(user_resource(&name, traits)))
    }

    type WatchEventsStream = WatchStream;

    async fn watch_events(
        &self,
        request: Request<Watch>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let caller = self.enter("WatchEvents", &request).await?;
        let watch = request.into_inner();
        let partial = watch.allow_partial_success;
        let kinds = watch::authorize(&caller, watch.kinds, partial)?;
        let kinds = watch::supported(kinds, partial)?;
        let init = watch::init_event(&kinds, self.shared.info.watch_status_in_init);
        let stream =
            self.shared
                .lock()
                .watchers
                .subscribe(&kinds, init, self.shared.info.watch_buffer);
        Ok(self.reply(stream))
    }

    async fn list_access_requests(
        &self,
        request: Request<ListAccessRequestsRequest>,
    ) -> Result<Response<ListAccessRequestsResponse>, Status> {
        let caller = self.enter("ListAccessRequests", &request).await?;
        let page = self
            .shared
            .lock()
            .list_requests(&caller, request.into_inner())?;
        Ok(self.reply(page))
    }

    type GetAccessRequestsV2Stream = AccessRequestStream;

    async fn get_access_requests_v2(
        &self,
        request: Request<AccessRequestFilter>,
    ) -> Result<Response<Self::GetAccessRequestsV2Stream>, Status> {
        let caller = self.enter("GetAccessRequestsV2", &request).await?;
        let found = self
            .shared
            .lock()
            .matching_requests(&caller, request.get_ref());
        Ok(self.reply(tokio_stream::iter(
            found.into_iter().map(Ok).collect::<Vec<_>>(),
        )))
    }

    async fn create_access_request_v2(
        &self,
        request: Request<AccessRequestV3>,
    ) -> Result<Response<AccessRequestV3>, Status> {
        let caller = self.enter("CreateAccessRequestV2", &request).await?;
        let created = self
            .shared
            .lock()
            .create_request(&caller, request.into_inner())?;
        Ok(self.reply(created))
    }

    async fn delete_access_request(
        &self,
        request: Request<RequestId>,
    ) -> Result<Response<()>, Status> {
        let caller = self.enter("DeleteAccessRequest", &request).await?;
        if !caller.spec.admin {
            return Err(action_denied("delete", KIND_ACCESS_REQUEST));
        }
        self.shared.lock().delete_request(&request.get_ref().id)?;
        Ok(self.reply(()))
    }

    async fn set_access_request_state(
        &self,
        request: Request<RequestStateSetter>,
    ) -> Result<Response<()>, Status> {
        let caller = self.enter("SetAccessRequestState", &request).await?;
        self.shared
            .lock()
            .set_state(&caller, request.into_inner())?;
        Ok(self.reply(()))
    }

    async fn submit_access_review(
        &self,
        request: Request<AccessReviewSubmission>,
    ) -> Result<Response<AccessRequestV3>, Status> {
        let caller = self.enter("SubmitAccessReview", &request).await?;
        let updated = self
            .shared
            .lock()
            .submit_review(&caller, request.into_inner())?;
        Ok(self.reply(updated))
    }

    async fn get_plugin_data(
        &self,
        request: Request<PluginDataFilter>,
    ) -> Result<Response<PluginDataSeq>, Status> {
        let caller = self.enter("GetPluginData", &request).await?;
        let filter = request.into_inner();
        // Teleport checks the kind before the permissions, which exist for access requests only.
        if filter.kind == KIND_ACCESS_REQUEST && !caller.spec.manages_requests() {
            return Err(action_denied("list", KIND_ACCESS_PLUGIN_DATA));
        }
        let plugin_data = self.shared.lock().plugin_data_matching(&filter)?;
        Ok(self.reply(PluginDataSeq { plugin_data }))
    }

    async fn update_plugin_data(
        &self,
        request: Request<PluginDataUpdateParams>,
    ) -> Result<Response<()>, Status> {
        let caller = self.enter("UpdatePluginData", &request).await?;
        let params = request.into_inner();
        let mut state = self.shared.lock();
        state.plugin_data_updates.push(params.clone());
        if params.kind == KIND_ACCESS_REQUEST && !caller.spec.manages_requests() {
            return Err(action_denied("update", KIND_ACCESS_PLUGIN_DATA));
        }
        state.update_plugin_data(&params)?;
        drop(state);
        Ok(self.reply(()))
    }
}
