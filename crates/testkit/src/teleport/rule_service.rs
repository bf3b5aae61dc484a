//! The gRPC faces beside `proto.AuthService` on the same Auth connection: the Access Monitoring
//! Rules service and the user-login-state service. Same authentication, fault knobs and call
//! counting as [`AuthApi`]; RBAC as Teleport checks it for these kinds.

use tonic::{Request, Response, Status};

use teleport_proto::teleport::accessmonitoringrules::v1::access_monitoring_rules_service_server::AccessMonitoringRulesService;
use teleport_proto::teleport::accessmonitoringrules::v1::{
    AccessMonitoringRule, CreateAccessMonitoringRuleRequest, DeleteAccessMonitoringRuleRequest,
    GetAccessMonitoringRuleRequest, ListAccessMonitoringRulesRequest,
    ListAccessMonitoringRulesResponse, ListAccessMonitoringRulesWithFilterRequest,
    UpdateAccessMonitoringRuleRequest, UpsertAccessMonitoringRuleRequest,
};
use teleport_proto::teleport::header::v1::{Metadata, ResourceHeader};
use teleport_proto::teleport::r#trait::v1::Trait;
use teleport_proto::teleport::userloginstate::v1::user_login_state_service_server::UserLoginStateService;
use teleport_proto::teleport::userloginstate::v1::{
    GetUserLoginStateRequest, Spec, UpsertUserLoginStateRequest, UserLoginState,
};

use super::rules::{Write, require_write};
use super::service::AuthApi;
use super::users::{action_denied, require_rule_read};

impl AuthApi {
    async fn write_rule(
        &self,
        method: &str,
        request: Request<Option<AccessMonitoringRule>>,
        write: Write,
    ) -> Result<Response<AccessMonitoringRule>, Status> {
        let caller = self.enter(method, &request).await?;
        let verb = if write == Write::Create {
            "create"
        } else {
            "update"
        };
        require_write(&caller, verb)?;
        let rule = request
            .into_inner()
            .ok_or_else(|| Status::invalid_argument("access monitoring rule is missing"))?;
        let stored = self.shared.lock().write_rule(rule, write)?;
        Ok(self.reply(stored))
    }
}

#[tonic::async_trait]
impl AccessMonitoringRulesService for AuthApi {
    async fn create_access_monitoring_rule(
        &self,
        request: Request<CreateAccessMonitoringRuleRequest>,
    ) -> Result<Response<AccessMonitoringRule>, Status> {
        let request = request.map(|r| r.rule);
        self.write_rule("CreateAccessMonitoringRule", request, Write::Create)
            .await
    }

    async fn update_access_monitoring_rule(
        &self,
        request: Request<UpdateAccessMonitoringRuleRequest>,
    ) -> Result<Response<AccessMonitoringRule>, Status> {
        let request = request.map(|r| r.rule);
        self.write_rule("UpdateAccessMonitoringRule", request, Write::Update)
            .await
    }

    async fn upsert_access_monitoring_rule(
        &self,
        request: Request<UpsertAccessMonitoringRuleRequest>,
    ) -> Result<Response<AccessMonitoringRule>, Status> {
        let request = request.map(|r| r.rule);
        self.write_rule("UpsertAccessMonitoringRule", request, Write::Upsert)
            .await
    }

    async fn get_access_monitoring_rule(
        &self,
        request: Request<GetAccessMonitoringRuleRequest>,
    ) -> Result<Response<AccessMonitoringRule>, Status> {
        let caller = self.enter("GetAccessMonitoringRule", &request).await?;
        require_rule_read(&caller, "read")?;
        let rule = self.shared.lock().get_rule(&request.get_ref().name)?;
        Ok(self.reply(rule))
    }

    async fn delete_access_monitoring_rule(
        &self,
        request: Request<DeleteAccessMonitoringRuleRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = self.enter("DeleteAccessMonitoringRule", &request).await?;
        require_write(&caller, "delete")?;
        self.shared.lock().delete_rule(&request.get_ref().name)?;
        Ok(self.reply(()))
    }

    async fn list_access_monitoring_rules(
        &self,
        request: Request<ListAccessMonitoringRulesRequest>,
    ) -> Result<Response<ListAccessMonitoringRulesResponse>, Status> {
        let caller = self.enter("ListAccessMonitoringRules", &request).await?;
        require_rule_read(&caller, "list")?;
        let request = request.into_inner();
        let everything = ListAccessMonitoringRulesWithFilterRequest {
            page_size: request.page_size,
            page_token: request.page_token,
            ..ListAccessMonitoringRulesWithFilterRequest::default()
        };
        let page = self.shared.lock().list_rules(&everything)?;
        Ok(self.reply(page))
    }

    async fn list_access_monitoring_rules_with_filter(
        &self,
        request: Request<ListAccessMonitoringRulesWithFilterRequest>,
    ) -> Result<Response<ListAccessMonitoringRulesResponse>, Status> {
        if self.shared.lock().faults.rules_filter_unimplemented {
            // What tonic answers for a method the server does not have.
            return Err(Status::unimplemented(""));
        }
        let caller = self
            .enter("ListAccessMonitoringRulesWithFilter", &request)
            .await?;
        require_rule_read(&caller, "list")?;
        let page = self.shared.lock().list_rules(request.get_ref())?;
        Ok(self.reply(page))
    }
}

#[tonic::async_trait]
impl UserLoginStateService for AuthApi {
    async fn get_user_login_state(
        &self,
        request: Request<GetUserLoginStateRequest>,
    ) -> Result<Response<UserLoginState>, Status> {
        let caller = self.enter("GetUserLoginState", &request).await?;
        if !caller.spec.reads_users() {
            return Err(action_denied("read", "user_login_state"));
        }
        let name = request.into_inner().name;
        let traits = self
            .shared
            .lock()
            .users
            .get(&name)
            .and_then(|spec| spec.login_state_traits.clone())
            .ok_or_else(|| Status::not_found(format!("user_login_state {name:?} doesn't exist")))?;
        let state = UserLoginState {
            header: Some(ResourceHeader {
                kind: "user_login_state".into(),
                sub_kind: String::new(),
                version: "v1".into(),
                metadata: Some(Metadata {
                    name,
                    ..Metadata::default()
                }),
            }),
            spec: Some(Spec {
                traits: traits
                    .into_iter()
                    .map(|(key, values)| Trait { key, values })
                    .collect(),
                ..Spec::default()
            }),
        };
        Ok(self.reply(state))
    }

    async fn upsert_user_login_state(
        &self,
        request: Request<UpsertUserLoginStateRequest>,
    ) -> Result<Response<UserLoginState>, Status> {
        let caller = self.enter("UpsertUserLoginState", &request).await?;
        if !caller.spec.admin {
            return Err(action_denied("update", "user_login_state"));
        }
        let state = request
            .into_inner()
            .user_login_state
            .ok_or_else(|| Status::invalid_argument("user login state is missing"))?;
        let name = state
            .header
            .as_ref()
            .and_then(|h| h.metadata.as_ref())
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let traits = state
            .spec
            .as_ref()
            .map(|spec| {
                spec.traits
                    .iter()
                    .map(|t| (t.key.clone(), t.values.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut shared = self.shared.lock();
        let user = shared
            .users
            .get_mut(&name)
            .ok_or_else(|| Status::not_found(format!("user {name:?} is not found")))?;
        user.login_state_traits = Some(traits);
        drop(shared);
        Ok(self.reply(state))
    }
}
