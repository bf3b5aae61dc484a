//! Users of the fake cluster and the simplified RBAC that decides what each may do.
//!
//! Teleport's roles are reduced to a few capabilities (request, review, the standard plugin role,
//! the builtin Admin role), but refusals keep Teleport's gRPC codes and message texts.

use std::collections::BTreeMap;

use tonic::Status;

use teleport_proto::types::AccessRequestV3;

/// What a user of the fake cluster may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSpec {
    /// Static roles, written into the `O` attribute of the user's certificates.
    pub roles: Vec<String>,
    /// Roles this user may request.
    pub requestable_roles: Vec<String>,
    /// Roles whose requests this user may review; `"*"` means every role.
    pub review_roles: Vec<String>,
    /// The standard plugin role: `access_request` list/read/update and `access_plugin_data` update.
    pub plugin: bool,
    /// Like the builtin Admin role: every verb on every resource, and reviews on behalf of others.
    pub admin: bool,
    /// Approve/deny counts of the `default` threshold on requests this user creates (default 1/1).
    pub thresholds: Option<(u32, u32)>,
    /// `read` and `list` on `access_monitoring_rule` (watch, list and get rules).
    pub read_rules: bool,
    /// `read` on `user` and `user_login_state` (what the preset `access-plugin` role grants).
    pub read_users: bool,
    /// The user's traits, as `GetUser` returns them.
    pub traits: BTreeMap<String, Vec<String>>,
    /// The traits of the user's login state; `None` when the user has none (`GetUserLoginState`
    /// answers NotFound, as for a user who never logged in through SSO or an access list).
    pub login_state_traits: Option<BTreeMap<String, Vec<String>>>,
}

impl UserSpec {
    /// A plugin identity, like the `access-plugin` role Teleport's docs create for `teleport-jira`.
    pub fn plugin() -> Self {
        Self {
            roles: vec!["access-plugin".into()],
            plugin: true,
            ..Self::default()
        }
    }

    /// A user who may request the given roles.
    pub fn requester(roles: &[&str]) -> Self {
        Self {
            roles: vec!["requester".into()],
            requestable_roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            ..Self::default()
        }
    }

    /// A user who may review requests for the given roles (`"*"` for all).
    pub fn reviewer(roles: &[&str]) -> Self {
        Self {
            roles: vec!["reviewer".into()],
            review_roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            ..Self::default()
        }
    }

    /// An administrator: may do anything, including reviews on behalf of other users.
    pub fn admin() -> Self {
        Self {
            roles: vec!["editor".into()],
            review_roles: vec!["*".into()],
            admin: true,
            ..Self::default()
        }
    }

    /// Sets the approve/deny counts of the requests this user creates.
    pub fn with_thresholds(mut self, approve: u32, deny: u32) -> Self {
        self.thresholds = Some((approve, deny));
        self
    }

    /// Adds `read`/`list` on `access_monitoring_rule` and `read` on `user`/`user_login_state`.
    pub fn with_rules_access(mut self) -> Self {
        self.read_rules = true;
        self.read_users = true;
        self
    }

    /// Sets one trait of the user (served by `GetUser`).
    pub fn with_trait(mut self, key: &str, values: &[&str]) -> Self {
        let values = values.iter().map(|v| (*v).to_owned()).collect();
        self.traits.insert(key.to_owned(), values);
        self
    }

    /// Gives the user a login state with these traits (served by `GetUserLoginState`).
    pub fn with_login_state_traits(mut self, traits: &[(&str, &[&str])]) -> Self {
        let traits = traits
            .iter()
            .map(|(k, vs)| {
                (
                    (*k).to_owned(),
                    vs.iter().map(|v| (*v).to_owned()).collect(),
                )
            })
            .collect();
        self.login_state_traits = Some(traits);
        self
    }

    /// `read`/`list` on `access_monitoring_rule`.
    pub(crate) fn reads_rules(&self) -> bool {
        self.read_rules || self.admin
    }

    /// `read` on `user` and `user_login_state`.
    pub(crate) fn reads_users(&self) -> bool {
        self.read_users || self.admin
    }

    /// `list`, `read` and `update` on `access_request` (the plugin role or Admin).
    pub(crate) fn manages_requests(&self) -> bool {
        self.plugin || self.admin
    }

    /// Whether any review rule exists at all (Teleport's "cannot submit reviews" check).
    pub(crate) fn reviews_anything(&self) -> bool {
        self.admin || !self.review_roles.is_empty()
    }

    fn reviews_role(&self, role: &str) -> bool {
        self.admin || self.review_roles.iter().any(|r| r == "*" || r == role)
    }
}

/// The authenticated caller of an RPC: the client certificate's CN and that user's spec.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) name: String,
    pub(crate) spec: UserSpec,
}

impl Caller {
    /// Whether `spec` (belonging to `name`) may review `request`: never one's own, and every
    /// requested role must be reviewable.
    pub(crate) fn can_review(name: &str, spec: &UserSpec, request: &AccessRequestV3) -> bool {
        let Some(req_spec) = request.spec.as_ref() else {
            return false;
        };
        req_spec.user != name && req_spec.roles.iter().all(|role| spec.reviews_role(role))
    }

    /// Whether this caller sees `request` in listings when it lacks `list`/`read`.
    pub(crate) fn sees(&self, request: &AccessRequestV3) -> bool {
        self.spec.manages_requests()
            || request.spec.as_ref().is_some_and(|s| s.user == self.name)
            || Self::can_review(&self.name, &self.spec, request)
    }
}

/// Teleport's RBAC refusal (`services.CheckAccessToRule`).
pub(crate) fn action_denied(verb: &str, resource: &str) -> Status {
    Status::permission_denied(format!(
        "access denied to perform action {verb:?} on {resource:?}"
    ))
}

/// `read`/`list` on `access_monitoring_rule`, or Teleport's refusal.
pub(crate) fn require_rule_read(caller: &Caller, verb: &str) -> Result<(), Status> {
    if caller.spec.reads_rules() {
        Ok(())
    } else {
        Err(action_denied(verb, "access_monitoring_rule"))
    }
}

/// What the authorizer answers for a missing or unknown identity.
pub(crate) fn access_denied() -> Status {
    Status::permission_denied("access denied")
}
