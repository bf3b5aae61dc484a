//! The Access Monitoring Rules side of `check`: whether the plugin may read rules and its
//! requesters' traits, each rule it would apply and what it names, and the targets the Jira side
//! must then check besides the configured one.

use super::{Report, Target};
use crate::config::Config;
use crate::rules::{Recipient, RuleSet};
use crate::teleport::{TeleportClient, TeleportError};

/// A user name that cannot exist: Teleport checks read permission before looking it up.
const PROBE_USER: &str = "teleport-jira-check-00000000-0000-4000-8000-000000000000";
const CHECK: &str = "access monitoring rules";

/// The targets the rules route to (none when routing is off or the rules cannot be read).
pub(super) async fn check(
    config: &Config,
    client: &TeleportClient,
    report: &mut Report,
) -> Vec<Target> {
    let settings = &config.access_monitoring_rules;
    if !settings.enabled {
        return Vec::new();
    }
    let name = &settings.notification_name;
    let filter = crate::startup::rule_filter(config);
    let listed = match client.access_monitoring_rules(&filter).await {
        Ok(listed) => listed,
        Err(err @ TeleportError::AccessDenied(_)) => {
            report.fail(
                CHECK,
                format!("may not read them ({err}); every request would go to [jira] project"),
                "give the plugin's role access_monitoring_rule: [read, list]",
            );
            return Vec::new();
        }
        Err(err) => {
            report.fail(CHECK, format!("cannot list them: {err}"), "check that Teleport is healthy and has Access Monitoring Rules (Teleport 16 or newer)");
            return Vec::new();
        }
    };
    let mut rules = RuleSet::new(name);
    if let Some(integration) = &filter.review_integration {
        rules = rules.with_review_integration(integration);
    }
    rules.replace_all(&listed);
    report.ok(
        CHECK,
        format!(
            "may read them; {} apply (notification name {name:?})",
            rules.len()
        ),
    );
    check_traits(client, report).await;
    let mut targets: Vec<Target> = Vec::new();
    for rule in rules.rules() {
        let recipients: Vec<String> = rule.recipients().iter().map(describe).collect();
        report.ok(
            "access monitoring rule",
            format!("{} -> {}", rule.name(), recipients.join(", ")),
        );
        if let Some(err) = rule.broken() {
            report.warn(
                "access monitoring rule",
                format!("{} never matches: {err}", rule.name()),
                "correct the rule (tctl edit access_monitoring_rule/<name>)",
            );
        }
        for unreadable in rule.unreadable_recipients() {
            report.warn(
                "access monitoring rule",
                format!("{}: {unreadable}", rule.name()),
                "use OPS, OPS/Issue type, label:NAME or none",
            );
        }
        for recipient in rule.recipients() {
            let Recipient::Project { key, issue_type } = recipient else {
                continue;
            };
            let issue_type = issue_type
                .clone()
                .unwrap_or_else(|| config.jira.issue_type.clone());
            let configured = *key == config.jira.project && issue_type == config.jira.issue_type;
            let known = targets
                .iter()
                .any(|t| t.project == *key && t.issue_type == issue_type);
            if !configured && !known {
                targets.push(Target {
                    project: key.clone(),
                    issue_type,
                    rule: Some(rule.name().to_owned()),
                });
            }
        }
    }
    targets
}

/// Conditions on `user.traits` need the requesters' traits.
async fn check_traits(client: &TeleportClient, report: &mut Report) {
    match client.user_traits(PROBE_USER).await {
        Ok(_) | Err(TeleportError::NotFound(_)) => report.ok(CHECK, "may read requesters' traits"),
        Err(err @ TeleportError::AccessDenied(_)) => report.warn(
            CHECK,
            format!(
                "may not read requesters' traits ({err}): conditions on user.traits will not match"
            ),
            "give the plugin's role user: [read] and user_login_state: [read]",
        ),
        Err(err) => report.warn(
            CHECK,
            format!("cannot tell whether it may read requesters' traits: {err}"),
            "check that Teleport is healthy and retry",
        ),
    }
}

fn describe(recipient: &Recipient) -> String {
    match recipient {
        Recipient::Project {
            key,
            issue_type: Some(issue_type),
        } => format!("{key}/{issue_type}"),
        Recipient::Project {
            key,
            issue_type: None,
        } => key.clone(),
        Recipient::Label(label) => format!("label:{label}"),
        Recipient::Suppress => "none".to_owned(),
    }
}
