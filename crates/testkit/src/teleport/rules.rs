//! Access Monitoring Rules as the Auth Service keeps them: validated on write, listed in name
//! order with the next name as the page token, and every change published to the watchers of
//! the `access_monitoring_rule` kind.
//!
//! Conditions are stored as written, not parsed: plugins must skip a rule they cannot evaluate,
//! whatever the server accepted.

use tonic::Status;

use teleport_proto::teleport::accessmonitoringrules::v1::{
    AccessMonitoringRule, AccessMonitoringRuleSpec, AutomaticReview,
    ListAccessMonitoringRulesResponse, ListAccessMonitoringRulesWithFilterRequest, Notification,
};
use teleport_proto::teleport::header::v1::Metadata;

use super::kinds::{KIND_ACCESS_MONITORING_RULE, rule_name};
use super::state::State;
use super::users::{Caller, action_denied};

/// The page size used when a caller asks for none (or more than the server serves).
const MAX_PAGE_SIZE: usize = 1000;

/// A rule as an administrator writes one for `tctl create`: about access requests, with this
/// condition, notifying the plugin named `notification` with `recipients`.
pub fn access_monitoring_rule(
    name: &str,
    notification: &str,
    condition: &str,
    recipients: &[&str],
) -> AccessMonitoringRule {
    AccessMonitoringRule {
        metadata: Some(Metadata {
            name: name.into(),
            ..Metadata::default()
        }),
        kind: KIND_ACCESS_MONITORING_RULE.into(),
        version: "v1".into(),
        spec: Some(AccessMonitoringRuleSpec {
            subjects: vec!["access_request".into()],
            condition: condition.into(),
            notification: Some(Notification {
                name: notification.into(),
                recipients: recipients.iter().map(|r| (*r).into()).collect(),
            }),
            ..AccessMonitoringRuleSpec::default()
        }),
        ..AccessMonitoringRule::default()
    }
}

/// A rule asking `integration` for an automatic review (`desired_state: reviewed`) with
/// `decision` (`APPROVED` or `DENIED`) of the requests matching `condition`.
pub fn automatic_review_rule(
    name: &str,
    integration: &str,
    decision: &str,
    condition: &str,
) -> AccessMonitoringRule {
    let mut rule = access_monitoring_rule(name, "", condition, &[]);
    if let Some(spec) = rule.spec.as_mut() {
        spec.notification = None;
        spec.desired_state = "reviewed".into();
        spec.automatic_review = Some(AutomaticReview {
            integration: integration.into(),
            decision: decision.into(),
            reason: String::new(),
        });
    }
    rule
}

/// How a write treats an existing rule of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    Create,
    Update,
    Upsert,
}

/// `ValidateAccessMonitoringRule`: the checks Teleport makes before storing a rule.
fn validate(rule: &AccessMonitoringRule) -> Result<(), Status> {
    if rule.kind != KIND_ACCESS_MONITORING_RULE {
        return Err(Status::invalid_argument(format!(
            "invalid kind for access monitoring rule: {:?}",
            rule.kind
        )));
    }
    if rule_name(rule).is_empty() {
        return Err(Status::invalid_argument(
            "accessMonitoringRule name is missing",
        ));
    }
    let Some(spec) = rule.spec.as_ref() else {
        return Err(Status::invalid_argument(
            "accessMonitoringRule spec is missing",
        ));
    };
    if spec.subjects.is_empty() {
        return Err(Status::invalid_argument(
            "accessMonitoringRule subject is missing",
        ));
    }
    if spec.condition.is_empty() {
        return Err(Status::invalid_argument(
            "accessMonitoringRule condition is missing",
        ));
    }
    Ok(())
}

pub(crate) fn require_write(caller: &Caller, verb: &str) -> Result<(), Status> {
    if caller.spec.admin {
        Ok(())
    } else {
        Err(action_denied(verb, KIND_ACCESS_MONITORING_RULE))
    }
}

/// What a filtered listing keeps (`services.MatchAccessMonitoringRule`).
fn matches(
    rule: &AccessMonitoringRule,
    filter: &ListAccessMonitoringRulesWithFilterRequest,
) -> bool {
    let Some(spec) = rule.spec.as_ref() else {
        return false;
    };
    let subject =
        filter.subjects.is_empty() || filter.subjects.iter().any(|s| spec.subjects.contains(s));
    let notification = filter.notification_name.is_empty()
        || spec
            .notification
            .as_ref()
            .is_some_and(|n| n.name == filter.notification_name);
    let review = filter.automatic_review_name.is_empty()
        || spec
            .automatic_review
            .as_ref()
            .is_some_and(|r| r.integration == filter.automatic_review_name);
    subject && notification && review
}

impl State {
    pub(crate) fn write_rule(
        &mut self,
        mut rule: AccessMonitoringRule,
        write: Write,
    ) -> Result<AccessMonitoringRule, Status> {
        validate(&rule)?;
        let name = rule_name(&rule).to_owned();
        let exists = self.rules.contains_key(&name);
        match write {
            Write::Create if exists => {
                return Err(Status::already_exists(format!(
                    "access_monitoring_rule {name:?} already exists"
                )));
            }
            Write::Update if !exists => {
                return Err(Status::not_found(format!(
                    "access_monitoring_rule {name:?} doesn't exist"
                )));
            }
            _ => {}
        }
        self.revision += 1;
        if let Some(metadata) = rule.metadata.as_mut() {
            metadata.revision = self.revision.to_string();
        }
        if rule.version.is_empty() {
            rule.version = "v1".into();
        }
        self.rules.insert(name, rule.clone());
        self.watchers.publish_rule_put(&rule);
        Ok(rule)
    }

    pub(crate) fn get_rule(&self, name: &str) -> Result<AccessMonitoringRule, Status> {
        self.rules.get(name).cloned().ok_or_else(|| {
            Status::not_found(format!("access_monitoring_rule {name:?} doesn't exist"))
        })
    }

    pub(crate) fn delete_rule(&mut self, name: &str) -> Result<(), Status> {
        if self.rules.remove(name).is_none() {
            return Err(Status::not_found(format!(
                "access_monitoring_rule {name:?} doesn't exist"
            )));
        }
        self.watchers.publish_rule_delete(name);
        Ok(())
    }

    /// One page of the rules `filter` keeps, in name order from `page_token`.
    pub(crate) fn list_rules(
        &self,
        filter: &ListAccessMonitoringRulesWithFilterRequest,
    ) -> Result<ListAccessMonitoringRulesResponse, Status> {
        let size = usize::try_from(filter.page_size)
            .map_err(|_| Status::invalid_argument("page size must not be negative"))?;
        let size = if size == 0 {
            MAX_PAGE_SIZE
        } else {
            size.min(MAX_PAGE_SIZE)
        };
        let mut kept = self
            .rules
            .range(filter.page_token.clone()..)
            .map(|(_, rule)| rule)
            .filter(|rule| matches(rule, filter));
        let rules: Vec<_> = kept.by_ref().take(size).cloned().collect();
        let next_page_token = kept
            .next()
            .map(|rule| rule_name(rule).to_owned())
            .unwrap_or_default();
        Ok(ListAccessMonitoringRulesResponse {
            rules,
            next_page_token,
        })
    }
}
