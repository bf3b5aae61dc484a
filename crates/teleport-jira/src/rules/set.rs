//! The rules that apply to this plugin, and the routing decision for a new request: the union of
//! the matching rules' recipients decides; `none` wins; with several projects, the first by rule
//! name; no match, the static project.

use std::collections::{BTreeMap, BTreeSet};

use teleport_proto::teleport::accessmonitoringrules::v1::AccessMonitoringRule;

use super::expr::Facts;
use super::recipient::Recipient;
use super::rule::{Rule, RuleError};

/// The rules in force, by name (the order that breaks ties between projects).
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    notification_name: String,
    rules: BTreeMap<String, Rule>,
    /// The integration whose approving rules are kept, when the on-call check is on.
    review_integration: Option<String>,
    /// Rules asking that integration to approve what they match, by name.
    approving: BTreeMap<String, Rule>,
    /// Whether the approving rules were listed (false until then, and while Teleport will not
    /// show them).
    approving_known: bool,
}

/// Whether the approving rules let a request be approved by the on-call check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Eligibility {
    /// No approving rule is in force: every request with schedules may be.
    NoRules,
    /// This approving rule matches the request.
    Matched(String),
    /// Approving rules are in force and none matches.
    NoMatch,
    /// The rules could not be read: which requests are eligible is unknown.
    Unknown,
}

/// Where a new request's issue goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// No rule matched: the configured project and issue type.
    Static,
    /// A matching rule said `none`: no issue.
    Suppressed { rule: String },
    /// Matching rules chose a target.
    To(Target),
}

/// What matching rules chose. `None` parts fall back to the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The rule that chose the project (or, with labels only, the first that matched).
    pub rule: String,
    pub project: Option<String>,
    pub issue_type: Option<String>,
    pub labels: Vec<String>,
}

/// A routing decision and the rules skipped on the way.
#[derive(Debug)]
pub struct Routing {
    pub route: Route,
    pub skipped: Vec<(String, RuleError)>,
}

impl RuleSet {
    pub fn new(notification_name: &str) -> Self {
        Self {
            notification_name: notification_name.to_owned(),
            rules: BTreeMap::new(),
            review_integration: None,
            approving: BTreeMap::new(),
            approving_known: false,
        }
    }

    /// Also keeps the rules that ask `integration` to approve what they match.
    pub fn with_review_integration(mut self, integration: &str) -> Self {
        self.review_integration = Some(integration.to_owned());
        self
    }

    /// Replaces every rule with those of a fresh listing.
    pub fn replace_all<'a>(&mut self, rules: impl IntoIterator<Item = &'a AccessMonitoringRule>) {
        self.rules.clear();
        self.approving.clear();
        self.approving_known = true;
        for rule in rules {
            self.put(rule);
        }
    }

    /// A rule was created or changed: kept if it applies, dropped if it no longer does.
    pub fn put(&mut self, rule: &AccessMonitoringRule) {
        let name = rule
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        match Rule::applying(rule, &self.notification_name) {
            Some(rule) => {
                self.rules.insert(name.clone(), rule);
            }
            None => {
                self.rules.remove(&name);
            }
        }
        let approving = self
            .review_integration
            .as_deref()
            .and_then(|integration| Rule::approving_through(rule, integration));
        match approving {
            Some(rule) => {
                self.approving.insert(name, rule);
            }
            None => {
                self.approving.remove(&name);
            }
        }
    }

    pub fn delete(&mut self, name: &str) {
        self.rules.remove(name);
        self.approving.remove(name);
    }

    /// Teleport will not show the rules: none are in force, and the approving ones are unknown.
    pub fn forget_all(&mut self) {
        self.rules.clear();
        self.approving.clear();
        self.approving_known = false;
    }

    /// The rules asking the review integration to approve, by name.
    pub fn approving_rules(&self) -> impl Iterator<Item = &Rule> {
        self.approving.values()
    }

    /// Whether the approving rules let a request with these facts be approved; a rule that
    /// cannot be evaluated is skipped (and returned, for the log). Without a review integration
    /// no rule is consulted; with one, rules never listed make it unknown.
    pub fn eligibility(&self, facts: &Facts) -> (Eligibility, Vec<(String, RuleError)>) {
        if self.review_integration.is_none() {
            return (Eligibility::NoRules, Vec::new());
        }
        if !self.approving_known {
            return (Eligibility::Unknown, Vec::new());
        }
        if self.approving.is_empty() {
            return (Eligibility::NoRules, Vec::new());
        }
        let mut skipped = Vec::new();
        for rule in self.approving.values() {
            match rule.matches(facts) {
                Ok(true) => return (Eligibility::Matched(rule.name().to_owned()), skipped),
                Ok(false) => {}
                Err(err) => skipped.push((rule.name().to_owned(), err)),
            }
        }
        (Eligibility::NoMatch, skipped)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, by name.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.values()
    }

    /// Whether any rule needs the requester's traits.
    pub fn reads_traits(&self) -> bool {
        self.rules().any(Rule::reads_traits)
    }

    /// Every project a rule may send issues to.
    pub fn projects(&self) -> BTreeSet<String> {
        self.rules()
            .flat_map(Rule::recipients)
            .filter_map(|r| match r {
                Recipient::Project { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect()
    }

    /// Where a new request with these facts goes.
    pub fn route(&self, facts: &Facts) -> Routing {
        let mut skipped = Vec::new();
        let mut matched = Vec::new();
        for rule in self.rules.values() {
            match rule.matches(facts) {
                Ok(true) => matched.push(rule),
                Ok(false) => {}
                Err(err) => skipped.push((rule.name().to_owned(), err)),
            }
        }
        Routing {
            route: decide(&matched),
            skipped,
        }
    }
}

fn decide(matched: &[&Rule]) -> Route {
    let Some(first) = matched.first() else {
        return Route::Static;
    };
    let recipients = || {
        matched
            .iter()
            .flat_map(|rule| rule.recipients().iter().map(move |r| (rule, r)))
    };
    if let Some((rule, _)) = recipients().find(|(_, r)| matches!(r, Recipient::Suppress)) {
        return Route::Suppressed {
            rule: rule.name().to_owned(),
        };
    }
    let project = recipients().find_map(|(rule, r)| match r {
        Recipient::Project { key, issue_type } => Some((rule, key.clone(), issue_type.clone())),
        _ => None,
    });
    let mut labels = Vec::new();
    for (_, recipient) in recipients() {
        if let Recipient::Label(label) = recipient
            && !labels.contains(label)
        {
            labels.push(label.clone());
        }
    }
    match project {
        Some((rule, key, issue_type)) => Route::To(Target {
            rule: rule.name().to_owned(),
            project: Some(key),
            issue_type,
            labels,
        }),
        // Matching rules with no usable recipient decide nothing.
        None if labels.is_empty() => Route::Static,
        None => Route::To(Target {
            rule: first.name().to_owned(),
            project: None,
            issue_type: None,
            labels,
        }),
    }
}
