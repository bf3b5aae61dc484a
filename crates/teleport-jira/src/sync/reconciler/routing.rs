//! Where a new request's issue goes, decided once by the Access Monitoring Rules in force and
//! recorded in its plugin data before anything is written to Jira; and, for every later step,
//! where its issue is, read back from that record.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use teleport_proto::teleport::accessmonitoringrules::v1::AccessMonitoringRule;
use teleport_proto::types::AccessRequestV3;

use super::Reconciler;
use crate::metrics::{ReasonLabel, RoutingLabel, set_gauge};
use crate::plugin_data::{PluginData, Routed};
use crate::rules::{Facts, Route, Rule, RuleSet};
use crate::sync::error::StepError;

/// Where an issue is made: project, issue type and the labels it gets besides the request label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Placement {
    pub(super) project: String,
    pub(super) issue_type: String,
    pub(super) labels: Vec<String>,
}

/// How long a target Jira refused to create issues in is avoided before it is tried again (an
/// administrator may create the project or the issue type meanwhile).
const REFUSED_TARGET_AVOIDED_FOR: Duration = Duration::from_secs(600);

/// Rule targets whose creations Jira refused for the target itself (no such project or issue
/// type, or no permission there): new requests go to the configured target instead, for a while.
#[derive(Default)]
pub(super) struct RefusedTargets {
    since: Mutex<HashMap<(String, String), Instant>>,
}

impl RefusedTargets {
    fn refused(&self, project: &str, issue_type: &str) -> bool {
        let mut since = crate::lock::lock(&self.since);
        since.retain(|_, at| at.elapsed() < REFUSED_TARGET_AVOIDED_FOR);
        since.contains_key(&(project.to_owned(), issue_type.to_owned()))
    }

    fn insert(&self, project: &str, issue_type: &str) {
        let key = (project.to_owned(), issue_type.to_owned());
        crate::lock::lock(&self.since).insert(key, Instant::now());
    }
}

impl Reconciler {
    /// The rules' decision for a request not yet recorded: `None` when no rule decided.
    pub(super) async fn route_new_request(
        &self,
        request: &AccessRequestV3,
    ) -> Result<Option<Routed>, StepError> {
        let rules = self.rules.snapshot();
        if rules.is_empty() {
            self.count_routing(None);
            return Ok(None);
        }
        let user = request.spec.as_ref().map_or("", |s| s.user.as_str());
        // Traits cost one or two Teleport calls: asked for only when a rule reads them.
        let traits = if rules.reads_traits() {
            self.traits_of(user).await?
        } else {
            BTreeMap::new()
        };
        let routing = rules.route(&Facts::of_request(request, traits));
        for (rule, err) in &routing.skipped {
            tracing::warn!(rule = %rule, error = %err, "Skipping an Access Monitoring Rule for this request");
            self.count_rule_error(err.reason());
        }
        let routed = match routing.route {
            Route::Static => None,
            Route::Suppressed { rule } => Some(Routed::Suppressed { rule }),
            Route::To(target) => Some(
                self.avoiding_refused(
                    target.rule,
                    target
                        .project
                        .unwrap_or_else(|| self.settings.project.clone()),
                    target
                        .issue_type
                        .unwrap_or_else(|| self.settings.issue_type.clone()),
                    target.labels,
                ),
            ),
        };
        self.count_routing(routed.as_ref());
        Ok(routed)
    }

    /// A rule's target, or the configured one while Jira refuses that target.
    fn avoiding_refused(
        &self,
        rule: String,
        project: String,
        issue_type: String,
        labels: Vec<String>,
    ) -> Routed {
        if !self.refused_targets.refused(&project, &issue_type) {
            return Routed::Project {
                rule,
                project,
                issue_type,
                labels,
            };
        }
        tracing::warn!(rule = %rule, %project, %issue_type, "Jira refused issues for this rule's target lately; this one goes to the configured project");
        self.count_rule_error("target");
        Routed::Project {
            rule,
            project: self.settings.project.clone(),
            issue_type: self.settings.issue_type.clone(),
            labels,
        }
    }

    /// The requester's traits; empty (with a warning, once) when Teleport will not tell, so a
    /// rule that needs them does not match. A passing failure fails the step, to route later on
    /// complete facts.
    pub(super) async fn traits_of(
        &self,
        user: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, StepError> {
        self.people.traits_of(user).await
    }

    /// Jira refused to create the request's issue where its record says: when that is a rule's
    /// target and the refusal is about the target (project or issue type), new requests avoid it
    /// for a while. The request itself starts over as new, so it is routed again.
    pub(super) fn note_refused_creation(&self, data: &PluginData, details: &str) {
        let Some(Routed::Project { rule, .. }) = &data.route else {
            return;
        };
        let placement = self.placement(Some(data));
        let configured = placement.project == self.settings.project
            && placement.issue_type == self.settings.issue_type;
        let about_target = details.contains("project") || details.contains("issuetype");
        if !configured && about_target {
            tracing::warn!(rule = %rule, project = %placement.project, issue_type = %placement.issue_type, %details, "Jira refuses issues where an Access Monitoring Rule sends them; using the configured project for a while");
            self.refused_targets
                .insert(&placement.project, &placement.issue_type);
        }
    }

    /// Where the request's issue is or goes, from its record.
    pub(super) fn placement(&self, data: Option<&PluginData>) -> Placement {
        match data.and_then(|d| d.route.as_ref()) {
            Some(Routed::Project {
                project,
                issue_type,
                labels,
                ..
            }) => Placement {
                project: project.clone(),
                issue_type: issue_type.clone(),
                labels: labels.clone(),
            },
            _ => Placement {
                project: self.settings.project.clone(),
                issue_type: self.settings.issue_type.clone(),
                labels: Vec::new(),
            },
        }
    }

    /// The rules listed after the watch (re)connected replace those in force.
    pub fn replace_rules(&self, listed: &[AccessMonitoringRule]) {
        self.rules.update(|set| set.replace_all(listed));
        let rules = self.rules.snapshot();
        tracing::debug!(rules = rules.len(), "Access Monitoring Rules in force");
        rules.rules().for_each(|rule| self.report_rule(rule));
        set_gauge(&self.metrics.access_monitoring_rules, rules.len());
    }

    /// A rule was created or changed: it applies from the next new request on.
    pub fn put_rule(&self, changed: &AccessMonitoringRule) {
        self.rules.update(|set| set.put(changed));
        let rules = self.rules.snapshot();
        let name = changed.metadata.as_ref().map_or("", |m| m.name.as_str());
        match rules.rules().find(|rule| rule.name() == name) {
            Some(rule) => {
                tracing::info!(rule = %name, "Access Monitoring Rule applies");
                self.report_rule(rule);
            }
            None => {
                tracing::debug!(rule = %name, "Access Monitoring Rule does not apply to this plugin")
            }
        }
        set_gauge(&self.metrics.access_monitoring_rules, rules.len());
    }

    /// Teleport will not show the rules: none route, and the approving rules are unknown (the
    /// on-call check then fails closed).
    pub fn rules_unreadable(&self) {
        self.rules.update(RuleSet::forget_all);
        set_gauge(&self.metrics.access_monitoring_rules, 0);
    }

    pub fn delete_rule(&self, name: &str) {
        self.rules.update(|set| set.delete(name));
        tracing::info!(rule = %name, "Access Monitoring Rule deleted");
        set_gauge(
            &self.metrics.access_monitoring_rules,
            self.rules.snapshot().len(),
        );
    }

    /// Tells what in a rule cannot be used, once per change of the rule.
    fn report_rule(&self, rule: &Rule) {
        for unreadable in rule.unreadable_recipients() {
            tracing::warn!(rule = %rule.name(), error = %unreadable, "Ignoring a recipient of an Access Monitoring Rule");
            self.count_rule_error("recipient");
        }
        if let Some(err) = rule.broken() {
            tracing::warn!(rule = %rule.name(), error = %err, "An Access Monitoring Rule can never match");
        }
    }

    /// Every project that issues may be in: the configured one, the rules' targets, and any seen.
    pub(super) fn projects(&self) -> Vec<String> {
        let mut projects = self.rules.snapshot().projects();
        projects.extend(self.projects_seen());
        projects.insert(self.settings.project.clone());
        projects.into_iter().collect()
    }

    /// The series of requests sent to the configured target, so it exists from the start.
    pub(super) fn static_routing_label(&self) -> RoutingLabel {
        RoutingLabel {
            rule: String::new(),
            target: format!("{}/{}", self.settings.project, self.settings.issue_type),
        }
    }

    fn count_routing(&self, routed: Option<&Routed>) {
        let label = match routed {
            None => self.static_routing_label(),
            Some(Routed::Suppressed { rule }) => RoutingLabel {
                rule: rule.clone(),
                target: "none".to_owned(),
            },
            Some(Routed::Project {
                rule,
                project,
                issue_type,
                ..
            }) => RoutingLabel {
                rule: rule.clone(),
                target: format!("{project}/{issue_type}"),
            },
        };
        if routed.is_some() {
            tracing::info!(rule = %label.rule, target = %label.target, "Routed by Access Monitoring Rules");
        }
        self.metrics.routing_decisions.get_or_create(&label).inc();
    }

    fn count_rule_error(&self, reason: &'static str) {
        let label = ReasonLabel { reason };
        self.metrics.rule_errors.get_or_create(&label).inc();
    }
}
