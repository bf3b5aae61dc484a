//! What routing by Access Monitoring Rules asks of Teleport: the rules for this plugin, and a
//! requester's traits for conditions on `user.traits`.

use std::collections::BTreeMap;

use teleport_proto::proto::GetUserRequest;
use teleport_proto::teleport::accessmonitoringrules::v1::{
    AccessMonitoringRule, ListAccessMonitoringRulesRequest, ListAccessMonitoringRulesResponse,
    ListAccessMonitoringRulesWithFilterRequest,
};
use teleport_proto::teleport::userloginstate::v1::GetUserLoginStateRequest;

use super::client::TeleportClient;
use super::error::TeleportError;
use crate::rules::{RuleFilter, SUBJECT_ACCESS_REQUEST};

/// Rules per page, as Teleport's own plugins ask.
const RULES_PAGE_SIZE: i64 = 1000;
/// More pages than any cluster has rules for; a server repeating its token cannot loop us.
const MAX_PAGES: usize = 1000;

impl TeleportClient {
    /// Every rule about access requests `filter` keeps, all pages: those notifying this plugin,
    /// and those asking its review integration to approve. Servers without the filtered listing
    /// answer Unimplemented; then every rule is listed and filtered here.
    pub async fn access_monitoring_rules(
        &self,
        filter: &RuleFilter,
    ) -> Result<Vec<AccessMonitoringRule>, TeleportError> {
        let mut rules = match self.filtered_rules(&filter.notification_name, "").await {
            Err(TeleportError::NotImplemented(_)) => {
                tracing::debug!("Teleport cannot filter rules; listing them all");
                let mut rules = self.all_rules().await?;
                rules.retain(|rule| filter.keeps(rule));
                return Ok(rules);
            }
            other => other?,
        };
        if let Some(integration) = &filter.review_integration {
            let approving = self.filtered_rules("", integration).await?;
            let named =
                |rule: &AccessMonitoringRule| rule.metadata.as_ref().map(|m| m.name.clone());
            for rule in approving {
                if !rules.iter().any(|known| named(known) == named(&rule)) {
                    rules.push(rule);
                }
            }
        }
        rules.retain(|rule| filter.keeps(rule));
        Ok(rules)
    }

    /// One filtered listing: by notification name, or by automatic review integration.
    async fn filtered_rules(
        &self,
        notification_name: &str,
        automatic_review_name: &str,
    ) -> Result<Vec<AccessMonitoringRule>, TeleportError> {
        every_page(|page_token| {
            let request = ListAccessMonitoringRulesWithFilterRequest {
                page_size: RULES_PAGE_SIZE,
                page_token,
                subjects: vec![SUBJECT_ACCESS_REQUEST.to_owned()],
                notification_name: notification_name.to_owned(),
                automatic_review_name: automatic_review_name.to_owned(),
            };
            let mut rpc = self.services().rules;
            async move {
                let call = rpc.list_access_monitoring_rules_with_filter(request);
                self.unary("list_access_monitoring_rules_with_filter", call)
                    .await
            }
        })
        .await
    }

    async fn all_rules(&self) -> Result<Vec<AccessMonitoringRule>, TeleportError> {
        every_page(|page_token| {
            let request = ListAccessMonitoringRulesRequest {
                page_size: RULES_PAGE_SIZE,
                page_token,
            };
            let mut rpc = self.services().rules;
            async move {
                let call = rpc.list_access_monitoring_rules(request);
                self.unary("list_access_monitoring_rules", call).await
            }
        })
        .await
    }

    /// The user's traits: from their login state (what they got at their last login, as the
    /// siblings read them), else from the user resource.
    pub async fn user_traits(
        &self,
        user: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, TeleportError> {
        let request = GetUserLoginStateRequest {
            name: user.to_owned(),
        };
        let mut rpc = self.services().login_states;
        match self
            .unary("get_user_login_state", rpc.get_user_login_state(request))
            .await
        {
            Ok(state) => {
                let traits = state.spec.map(|spec| spec.traits).unwrap_or_default();
                return Ok(traits.into_iter().map(|t| (t.key, t.values)).collect());
            }
            Err(err) if err.is_transient() => return Err(err),
            // No login state (or no permission to read it): the user resource may still tell.
            Err(err) => tracing::debug!(error = %err, "No user login state; reading the user"),
        }
        let request = GetUserRequest {
            name: user.to_owned(),
            with_secrets: false,
        };
        let mut rpc = self.services().auth;
        let found = self.unary("get_user", rpc.get_user(request)).await?;
        let traits = found.spec.and_then(|spec| spec.traits).unwrap_or_default();
        Ok(traits
            .values
            .into_iter()
            .map(|(key, values)| (key, values.values))
            .collect())
    }
}

/// Every rule of a listing, following its page tokens (`page` asks for the page at a token).
async fn every_page<F, Fut>(mut page: F) -> Result<Vec<AccessMonitoringRule>, TeleportError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<ListAccessMonitoringRulesResponse, TeleportError>>,
{
    let mut rules = Vec::new();
    let mut page_token = String::new();
    for _ in 0..MAX_PAGES {
        let answer = page(std::mem::take(&mut page_token)).await?;
        rules.extend(answer.rules);
        if answer.next_page_token.is_empty() {
            break;
        }
        page_token = answer.next_page_token;
    }
    Ok(rules)
}
