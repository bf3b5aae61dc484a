//! One Access Monitoring Rule as this plugin applies it: whether it is ours, and whether it
//! matches a request (its schedules, then its condition). Everything that can be read once is
//! read when the rule arrives; what cannot be read makes the rule fail closed.

use teleport_proto::teleport::accessmonitoringrules::v1::{
    AccessMonitoringRule, AccessMonitoringRuleSpec,
};

use super::expr::{Condition, EvalError, Facts, ParseError};
use super::recipient::{Recipient, RecipientError};
use super::schedule::{Schedule, ScheduleError};

/// The subject of rules about access requests.
pub const SUBJECT_ACCESS_REQUEST: &str = "access_request";

/// Why a rule was skipped for a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("its condition does not parse: {0}")]
    Parse(ParseError),
    #[error("its condition cannot be evaluated: {0}")]
    Evaluate(EvalError),
    #[error("its schedule {name:?} cannot be read: {source}")]
    Schedule { name: String, source: ScheduleError },
}

impl RuleError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Parse(_) => "parse",
            Self::Evaluate(_) => "evaluate",
            Self::Schedule { .. } => "schedule",
        }
    }
}

/// Whether a rule applies to this plugin: it is about access requests and notifies
/// `notification_name` (read without parsing the rule).
pub fn applies(rule: &AccessMonitoringRule, notification_name: &str) -> bool {
    rule.spec.as_ref().is_some_and(|spec| {
        spec.subjects.iter().any(|s| s == SUBJECT_ACCESS_REQUEST)
            && spec
                .notification
                .as_ref()
                .is_some_and(|n| n.name == notification_name)
    })
}

/// The `desired_state` of rules that ask an integration for an automatic review.
pub const DESIRED_STATE_REVIEWED: &str = "reviewed";

/// Whether a rule asks `integration` to approve the requests it matches: it is about access
/// requests, wants them reviewed, names `integration`, and decides `APPROVED` (rules that deny
/// are not the on-call check's to carry out).
pub fn approves_through(rule: &AccessMonitoringRule, integration: &str) -> bool {
    rule.spec.as_ref().is_some_and(|spec| {
        spec.subjects.iter().any(|s| s == SUBJECT_ACCESS_REQUEST)
            && spec.desired_state == DESIRED_STATE_REVIEWED
            && spec.automatic_review.as_ref().is_some_and(|review| {
                review.integration == integration
                    && review.decision.eq_ignore_ascii_case("APPROVED")
            })
    })
}

/// A rule that applies to this plugin.
#[derive(Clone, Debug)]
pub struct Rule {
    name: String,
    condition: Result<Condition, ParseError>,
    schedules: Vec<(String, Result<Schedule, ScheduleError>)>,
    recipients: Vec<Recipient>,
    unreadable: Vec<RecipientError>,
}

impl Rule {
    /// The rule, if it applies to access requests and names `notification_name`.
    pub fn applying(rule: &AccessMonitoringRule, notification_name: &str) -> Option<Self> {
        if !applies(rule, notification_name) {
            return None;
        }
        let spec = rule.spec.as_ref()?;
        let notification = spec.notification.as_ref()?;
        let (recipients, unreadable) = notification
            .recipients
            .iter()
            .map(|text| Recipient::parse(text))
            .partition::<Vec<_>, _>(Result::is_ok);
        Some(Self {
            name: rule.metadata.as_ref().map(|m| m.name.clone())?,
            condition: Condition::parse(&spec.condition),
            schedules: schedules_of(spec),
            recipients: recipients.into_iter().filter_map(Result::ok).collect(),
            unreadable: unreadable.into_iter().filter_map(Result::err).collect(),
        })
    }

    /// The rule, if it asks `integration` to approve what it matches; it names no recipients.
    pub fn approving_through(rule: &AccessMonitoringRule, integration: &str) -> Option<Self> {
        if !approves_through(rule, integration) {
            return None;
        }
        let spec = rule.spec.as_ref()?;
        Some(Self {
            name: rule.metadata.as_ref().map(|m| m.name.clone())?,
            condition: Condition::parse(&spec.condition),
            schedules: schedules_of(spec),
            recipients: Vec::new(),
            unreadable: Vec::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn recipients(&self) -> &[Recipient] {
        &self.recipients
    }

    /// Recipient strings this plugin cannot use; the rule still routes with the others.
    pub fn unreadable_recipients(&self) -> &[RecipientError] {
        &self.unreadable
    }

    /// Whether the request matches: its creation time inside one of the schedules (when there
    /// are any), then the condition true.
    pub fn matches(&self, facts: &Facts) -> Result<bool, RuleError> {
        if !self.schedules.is_empty() {
            let mut inside = false;
            for (name, schedule) in &self.schedules {
                let schedule = schedule.as_ref().map_err(|source| RuleError::Schedule {
                    name: name.clone(),
                    source: source.clone(),
                })?;
                inside |= schedule.contains(facts.creation_time);
            }
            if !inside {
                return Ok(false);
            }
        }
        let condition = self
            .condition
            .as_ref()
            .map_err(|e| RuleError::Parse(e.clone()))?;
        condition.holds(facts).map_err(RuleError::Evaluate)
    }

    /// Whether evaluating the rule needs the requester's traits.
    pub fn reads_traits(&self) -> bool {
        self.condition.as_ref().is_ok_and(Condition::reads_traits)
    }

    /// Whether the rule can never match (its condition or a schedule does not read).
    pub fn broken(&self) -> Option<RuleError> {
        if let Err(e) = &self.condition {
            return Some(RuleError::Parse(e.clone()));
        }
        self.schedules.iter().find_map(|(name, s)| {
            s.as_ref().err().map(|source| RuleError::Schedule {
                name: name.clone(),
                source: source.clone(),
            })
        })
    }
}

/// A rule's schedules, by name, each read once.
fn schedules_of(spec: &AccessMonitoringRuleSpec) -> Vec<(String, Result<Schedule, ScheduleError>)> {
    let mut schedules: Vec<_> = spec
        .schedules
        .iter()
        .map(|(name, schedule)| {
            let time = schedule.time.clone().unwrap_or_default();
            (name.clone(), Schedule::from_proto(&time))
        })
        .collect();
    schedules.sort_by(|a, b| a.0.cmp(&b.0));
    schedules
}
