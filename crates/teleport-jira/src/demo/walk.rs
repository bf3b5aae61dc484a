//! The walk-through: one request approved from the board, one denied in Teleport, one expired,
//! each step printed with where to look; then what the plugin counted.

use teleport_proto::types::RequestState;

use super::{DemoError, Sandbox, failed, indent, step};

/// Walks three requests through their lives.
pub(super) async fn walk_through(sandbox: &Sandbox) -> Result<(), DemoError> {
    approve_from_the_board(sandbox).await?;
    deny_in_teleport(sandbox).await?;
    expire_in_teleport(sandbox).await?;
    show_metrics(sandbox).await
}

/// A request is approved by a reviewer who moves its card.
async fn approve_from_the_board(sandbox: &Sandbox) -> Result<(), DemoError> {
    let (teleport, jira) = (&*sandbox.teleport, &*sandbox.jira);
    step("alice@example.com asks Teleport for the editor and auditor roles");
    let approved = teleport.create_access_request(
        "alice@example.com",
        &["editor", "auditor"],
        "Fix the prod outage",
    );
    println!("    access request {approved}: PENDING");
    let issue = sandbox.issue_of(&approved).await?;
    println!(
        "    the plugin opened Jira issue {} in status {}: {}",
        issue.key,
        issue.status,
        sandbox.browse_url(&issue)
    );
    println!("    summary: {}", issue.summary);
    println!(
        "{}",
        indent(issue.description.as_deref().unwrap_or_default())
    );

    step("Carol, a reviewer, comments with a reason and moves the card to Approved");
    let reviewer = &sandbox.reviewer.account_id;
    jira.comment_as(
        &issue.id,
        reviewer,
        "Checked the on-call rota.\nReason: approved for the incident",
    )
    .map_err(failed("commenting as the reviewer"))?;
    jira.transition_as(&issue.id, "Approved", reviewer)
        .map_err(failed("moving the card"))?;
    sandbox
        .request_in(&approved, RequestState::Approved)
        .await?;
    for event in teleport.audit_events() {
        println!(
            "    Teleport: request {} is now {:?}, decided by {}, reason {:?}",
            event.request_id, event.state, event.delegator, event.reason
        );
    }
    let issue = sandbox.issue_in(&issue, "Approved").await?;
    println!(
        "    the card stays in {}; the plugin commented: {:?}",
        issue.status,
        issue.comment_bodies().last().cloned().unwrap_or_default()
    );
    Ok(())
}

/// A request denied in Teleport: its card follows.
async fn deny_in_teleport(sandbox: &Sandbox) -> Result<(), DemoError> {
    let teleport = &*sandbox.teleport;
    step("Another request is denied in Teleport (tctl request deny); the card follows");
    let denied = teleport.create_access_request("alice@example.com", &["editor"], "");
    let issue = sandbox.issue_of(&denied).await?;
    println!("    access request {denied} has issue {}", issue.key);
    teleport
        .set_state_as(
            "admin",
            &denied,
            RequestState::Denied,
            "not during the freeze",
            "",
        )
        .map_err(failed("denying the request in Teleport"))?;
    let issue = sandbox.issue_in(&issue, "Denied").await?;
    println!(
        "    Jira issue {} moved to {}; the plugin commented: {:?}",
        issue.key,
        issue.status,
        issue.comment_bodies().last().cloned().unwrap_or_default()
    );
    Ok(())
}

/// A request that expires: its card moves to Expired.
async fn expire_in_teleport(sandbox: &Sandbox) -> Result<(), DemoError> {
    let teleport = &*sandbox.teleport;
    step("A third request expires in Teleport; its card moves to Expired");
    let expired = teleport.create_access_request("alice@example.com", &["auditor"], "audit");
    let issue = sandbox.issue_of(&expired).await?;
    teleport
        .delete_access_request(&expired)
        .map_err(failed("expiring the request"))?;
    let issue = sandbox.issue_in(&issue, "Expired").await?;
    println!("    Jira issue {} moved to {}", issue.key, issue.status);
    Ok(())
}

/// The plugin's own counters, from its `/metrics`.
async fn show_metrics(sandbox: &Sandbox) -> Result<(), DemoError> {
    step(&format!(
        "What the plugin counted ({}/metrics)",
        sandbox.plugin_http
    ));
    let metrics = reqwest::get(format!("{}/metrics", sandbox.plugin_http))
        .await
        .map_err(failed("reading /metrics"))?
        .text()
        .await
        .map_err(failed("reading /metrics"))?;
    for line in metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            [
                "_issues_created_total",
                "_issue_transitions_total",
                "_webhook_deliveries_total",
                "_ready ",
            ]
            .iter()
            .any(|name| line.contains(name))
        })
    {
        println!("    {line}");
    }
    Ok(())
}
