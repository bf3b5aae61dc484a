//! The Jira side of `check`: the site and its token, then for each target (the configured
//! project and issue type, and each one a rule routes to) the project, the issue type, the
//! permissions, the workflow's statuses and its transitions out of the pending status.

use super::{Report, Target};
use crate::config::{Config, RequesterAs, ReviewersAs};
use crate::jira::same_name;
use crate::jira::{JiraAuth, JiraClient, JiraClientOptions, JiraError};
use crate::startup::JIRA_PERMISSIONS;

pub(super) async fn check(config: &Config, routed: &[Target], report: &mut Report) {
    let auth = JiraAuth::from_config(&config.jira);
    let options = JiraClientOptions {
        base_url: config.jira.url.clone(),
        auth,
        max_concurrent_calls: 4,
        max_calls_per_second: None,
    };
    let jira = match JiraClient::new(options) {
        Ok(jira) => jira,
        Err(err) => {
            return report.fail("jira", err, "check the system trust store (SSL_CERT_FILE)");
        }
    };
    match jira.myself().await {
        Ok(()) => report.ok(
            "jira",
            format!("{} answers and accepts the credentials", config.jira.url),
        ),
        Err(err) => {
            let fix = match err.status() {
                Some(401 | 403) => {
                    "check jira.username and jira.api_token (Jira Data Center personal access tokens need jira.auth = \"bearer\")"
                }
                _ => {
                    "check jira.url (the site address, with any path prefix) and that this host trusts its certificate"
                }
            };
            return report.fail("jira", err, fix);
        }
    }
    let configured = Target {
        project: config.jira.project.clone(),
        issue_type: config.jira.issue_type.clone(),
        rule: None,
    };
    for target in std::iter::once(&configured).chain(routed) {
        check_target(&jira, config, target, report).await;
    }
    check_approver_groups(&jira, config, report).await;
}

/// The check names of a routed target say which rule routes there, so its lines read apart from
/// the configured project's.
fn named(check: &str, target: &Target) -> String {
    match &target.rule {
        None => check.to_owned(),
        Some(rule) => format!("{check} (rule {rule})"),
    }
}

async fn check_target(jira: &JiraClient, config: &Config, target: &Target, report: &mut Report) {
    let project = &target.project;
    let issue_types = match jira.project(project).await {
        Ok(found) => {
            report.ok(
                &named("jira project", target),
                format!("{} ({})", found.key, found.name),
            );
            found.issue_types
        }
        Err(err) => {
            let fix = match target.rule {
                None => {
                    "set jira.project to the project key (e.g. \"PROJ\"), not its name, and let the Jira user browse it"
                }
                Some(_) => {
                    "correct the project key in the rule's recipients, and let the Jira user browse the project"
                }
            };
            return report.fail(&named("jira project", target), err, fix);
        }
    };
    let issue_type = &target.issue_type;
    if issue_types.is_empty() || issue_types.iter().any(|t| same_name(&t.name, issue_type)) {
        report.ok(&named("jira issue type", target), issue_type);
    } else {
        let names: Vec<&str> = issue_types.iter().map(|t| t.name.as_str()).collect();
        report.fail(
            &named("jira issue type", target),
            format!(
                "{issue_type:?} is not an issue type of {project} (it has {})",
                names.join(", ")
            ),
            match target.rule {
                None => "set jira.issue_type to one of those",
                Some(_) => "name one of those in the rule's recipient (PROJECT/Issue type)",
            },
        );
    }
    match jira.my_permissions(project, &JIRA_PERMISSIONS).await {
        Ok(granted) => {
            for key in JIRA_PERMISSIONS {
                if granted
                    .permissions
                    .get(key)
                    .is_some_and(|p| p.have_permission)
                {
                    report.ok(&named("jira permission", target), key);
                } else {
                    report.fail(
                        &named("jira permission", target),
                        format!("the Jira user lacks {key} in {project}"),
                        "grant it in the project's permission scheme",
                    );
                }
            }
        }
        Err(err) => report.fail(
            &named("jira permission", target),
            err,
            "check that the Jira user may view its own permissions",
        ),
    }
    check_people_permissions(jira, config, target, report).await;
    check_workflow(jira, config, target, report).await;
}

/// The permissions `[jira.people]` needs, each with what needs it: Manage watchers, Modify
/// reporter, Browse users and groups. Missing ones are warnings: the plugin works without
/// them, that part of `[jira.people]` switching itself off.
fn people_permissions(config: &Config) -> Vec<(&'static str, &'static str)> {
    let people = &config.jira.people;
    let mut needed = Vec::new();
    if people.requester == RequesterAs::Watcher
        || people.suggested_reviewers == ReviewersAs::Watcher
    {
        needed.push(("MANAGE_WATCHERS", "watchers in [jira.people]"));
    }
    if people.requester == RequesterAs::Reporter {
        needed.push(("MODIFY_REPORTER", "[jira.people] requester = \"reporter\""));
    }
    if people.email_lookup && people.enabled() {
        needed.push(("USER_PICKER", "[jira.people] email_lookup"));
    }
    needed
}

async fn check_people_permissions(
    jira: &JiraClient,
    config: &Config,
    target: &Target,
    report: &mut Report,
) {
    let needed = people_permissions(config);
    if needed.is_empty() {
        return;
    }
    let keys: Vec<&str> = needed.iter().map(|(key, _)| *key).collect();
    let check = named("jira permission", target);
    let granted = match jira.my_permissions(&target.project, &keys).await {
        Ok(granted) => granted,
        Err(err) => {
            return report.warn(
                &check,
                err,
                "check that the Jira user may view its own permissions",
            );
        }
    };
    for (key, what) in needed {
        if granted
            .permissions
            .get(key)
            .is_some_and(|p| p.have_permission)
        {
            report.ok(&check, format!("{key} (for {what})"));
        } else {
            report.warn(
                &check,
                format!("the Jira user lacks {key} in {}, which {what} needs; that part stays off", target.project),
                "grant it in the project's permission scheme (USER_PICKER: the Browse users and groups global permission)",
            );
        }
    }
}

/// Each `approver_groups` entry names a group whose members the plugin can read.
async fn check_approver_groups(jira: &JiraClient, config: &Config, report: &mut Report) {
    for group in &config.jira.approver_groups {
        match jira.group_exists(group).await {
            Ok(true) => report.ok("jira approver group", format!("{group:?} exists and can be read")),
            Ok(false) => report.fail(
                "jira approver group",
                format!("no Jira group named {group:?}"),
                "correct the name in [jira] approver_groups (Jira group names, as in Jira's user management)",
            ),
            Err(err) => report.fail(
                "jira approver group",
                format!("cannot read group {group:?}: {err}"),
                "give the Jira user the Browse users and groups global permission",
            ),
        }
    }
}

async fn check_workflow(jira: &JiraClient, config: &Config, target: &Target, report: &mut Report) {
    let statuses = &config.jira.statuses;
    let check = named("jira workflow", target);
    let available = match jira
        .project_statuses(&target.project, &target.issue_type)
        .await
    {
        Ok(available) => available,
        Err(err @ JiraError::Status { status: 404, .. }) => {
            return report.ok(
                &check,
                format!("not verified: this Jira cannot list a project's statuses ({err})"),
            );
        }
        Err(err) => {
            return report.fail(
                &check,
                err,
                "check that the Jira user may browse the project",
            );
        }
    };
    let wanted = [
        ("pending", &statuses.pending),
        ("approved", &statuses.approved),
        ("denied", &statuses.denied),
        ("expired", &statuses.expired),
    ];
    for (role, name) in wanted {
        if available.iter().any(|s| same_name(s, name)) {
            report.ok(&check, format!("{role} status {name:?} exists"));
        } else {
            report.fail(
                &check,
                format!("no status named {name:?} for {role} (the workflow has {})", available.join(", ")),
                &format!("add it to the workflow, or map it with [jira.statuses] {role} = \"<your status>\""),
            );
        }
    }
    check_transitions(jira, config, target, report).await;
    // Optional, as in the Go plugin: without it a promoted request gets its comment only.
    let promoted = &statuses.promoted;
    if available.iter().any(|s| same_name(s, promoted)) {
        report.ok(&check, format!("promoted status {promoted:?} exists"));
    } else {
        report.ok(
            &check,
            format!(
                "no status named {promoted:?}: promoted requests get their comment and the card keeps its status (optional; map one with [jira.statuses] promoted)"
            ),
        );
    }
}

/// That the plugin can move a card from the pending status to each status it moves cards to,
/// read from the transitions of an issue that sits in the pending status (Jira offers a
/// workflow's transitions only on an issue, and `check` creates none).
async fn check_transitions(
    jira: &JiraClient,
    config: &Config,
    target: &Target,
    report: &mut Report,
) {
    let statuses = &config.jira.statuses;
    let pending = &statuses.pending;
    let check = named("jira transitions", target);
    let jql = format!(
        "project = \"{}\" AND status = \"{pending}\" ORDER BY created DESC",
        target.project
    );
    let sample = match jira.search(&jql, 1).await {
        Ok(hits) => hits.into_iter().next(),
        Err(err) => {
            return report.ok(
                &check,
                format!("not verified: the search for an issue in {pending:?} failed ({err})"),
            );
        }
    };
    let Some(hit) = sample else {
        return report.ok(&check, format!("not verified: no issue sits in {pending:?} yet to read the workflow's transitions from; run check again once one does"));
    };
    let issue = match jira.issue(&hit.id).await {
        Ok(issue) => issue,
        Err(err) => {
            return report.fail(
                &check,
                err,
                "check that the Jira user may browse the project",
            );
        }
    };
    for (role, name) in [
        ("approved", &statuses.approved),
        ("denied", &statuses.denied),
        ("expired", &statuses.expired),
    ] {
        if issue
            .transitions
            .iter()
            .any(|t| same_name(&t.to.name, name))
        {
            report.ok(
                &check,
                format!("from {pending:?} a transition leads to {name:?} ({role})"),
            );
        } else {
            report.fail(
                &check,
                format!("no transition leads from {pending:?} to {name:?} ({role}) on {}", issue.key),
                &format!("add a transition from {pending} to {name} to the project's workflow (the plugin moves cards there when Teleport decides)"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINIMAL: &str = "[teleport]\naddr = \"teleport.example.com:3025\"\nidentity = \"/var/lib/teleport/plugins/jira/auth_id\"\n\n[jira]\nurl = \"https://example.atlassian.net\"\nusername = \"bot@example.com\"\napi_token = \"tok\"\nproject = \"PROJ\"\n";

    fn needed(people: &str) -> Vec<&'static str> {
        let text = format!("{MINIMAL}\n[jira.people]\n{people}\n");
        let (config, _) = Config::parse(&text, true).unwrap();
        people_permissions(&config)
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    }

    #[test]
    fn each_people_mode_asks_for_the_permission_it_uses() {
        assert!(needed("").is_empty());
        assert!(needed("email_lookup = true").is_empty());
        assert_eq!(needed("requester = \"watcher\""), ["MANAGE_WATCHERS"]);
        assert_eq!(
            needed("suggested_reviewers = \"watcher\""),
            ["MANAGE_WATCHERS"]
        );
        assert_eq!(needed("requester = \"reporter\""), ["MODIFY_REPORTER"]);
        assert_eq!(
            needed("email_lookup = true\nsuggested_reviewers = \"mention\""),
            ["USER_PICKER"]
        );
    }
}
