//! The Teleport side of `check`: the credentials and their expiry, the connection, and the
//! permissions of the plugin's role.

use time::OffsetDateTime;

use super::Report;
use crate::config::Config;
use crate::teleport::{TeleportClient, TeleportError};

/// Credentials that expire sooner than this, and are not renewed in place, fail the check.
const MIN_CREDENTIAL_LIFETIME: time::Duration = time::Duration::minutes(15);
/// A request id that cannot exist, for permission probes that must not change anything.
const PROBE_REQUEST_ID: &str = "00000000-0000-4000-8000-000000000000";
/// A user name no cluster has (Teleport refuses user names with spaces), for the traits probe.
const PROBE_USER: &str = "teleport-jira check probe";

/// The client, when Teleport answered.
pub(super) async fn check(config: &Config, report: &mut Report) -> Option<TeleportClient> {
    let credentials = match crate::startup::load_credentials(&config.teleport.credentials) {
        Ok((credentials, _)) => credentials,
        Err(err) => {
            report.fail("credentials", err, "sign new credentials with `tctl auth sign` (or let tbot renew them) and check the path in [teleport]");
            return None;
        }
    };
    let left = credentials.info.not_after - OffsetDateTime::now_utc();
    let until = credentials.info.valid_until();
    let expiry = format!(
        "{} valid until {until} (in {} min)",
        credentials.info.user,
        left.whole_minutes()
    );
    let renewed = matches!(
        config.teleport.credentials,
        crate::config::CredentialSource::IdentityFile {
            refresh: Some(_),
            ..
        }
    );
    if left < MIN_CREDENTIAL_LIFETIME && !renewed {
        report.fail(
            "credentials",
            format!("{expiry}: about to expire"),
            "sign credentials with a longer TTL, or use tbot with refresh_identity = true",
        );
    } else {
        report.ok("credentials", expiry);
    }
    let client = match TeleportClient::connect(&config.teleport.addr, &credentials).await {
        Ok((client, ping)) => {
            report.ok(
                "teleport",
                format!(
                    "{} answers ({}, cluster {}, version {})",
                    config.teleport.addr,
                    client.route(),
                    ping.cluster_name,
                    ping.server_version
                ),
            );
            client
        }
        Err(err) => {
            report.fail("teleport", err, "check teleport.addr (Auth Service host:3025 or Proxy host:443) and that this host can reach it");
            return None;
        }
    };
    check_permissions(&client, report).await;
    if config.jira.people.enabled() {
        check_trait_reading(&client, &config.jira.people.account_id_trait, report).await;
    }
    Some(client)
}

/// `[jira.people]` reads users' traits: probed with a user that cannot exist ("not found" means
/// "allowed"). Without the right the plugin works on, finding people by e-mail only: a warning.
async fn check_trait_reading(client: &TeleportClient, trait_name: &str, report: &mut Report) {
    match client.user_traits(PROBE_USER).await {
        Ok(_) | Err(TeleportError::NotFound(_)) => report.ok(
            "teleport role",
            format!("may read users' traits (the {trait_name} trait of [jira.people])"),
        ),
        Err(err @ TeleportError::AccessDenied(_)) => report.warn(
            "teleport role",
            format!("may not read users' traits ({err}); [jira.people] finds people by e-mail only, if email_lookup allows"),
            "give the plugin's role user and user_login_state: [read]",
        ),
        Err(err) => report.warn(
            "teleport role",
            format!("cannot tell whether it may read users' traits: {err}"),
            "check that Teleport is healthy and retry",
        ),
    }
}

/// Probes each RPC the plugin needs with a request id that cannot exist: Teleport checks the
/// caller's permissions before looking the request up, so "not found" means "allowed".
async fn check_permissions(client: &TeleportClient, report: &mut Report) {
    let role_fix =
        "give the plugin's role access_request list, read, update and access_plugin_data update";
    let probes: [(&str, Result<(), TeleportError>); 4] = [
        (
            "list access requests",
            client.access_request(PROBE_REQUEST_ID).await.map(drop),
        ),
        (
            "read plugin data",
            client
                .plugin_data(PROBE_REQUEST_ID, crate::plugin_data::PLUGIN_NAME)
                .await
                .map(drop),
        ),
        (
            "update plugin data",
            client
                .update_plugin_data(
                    PROBE_REQUEST_ID,
                    crate::plugin_data::PLUGIN_NAME,
                    Default::default(),
                    crate::plugin_data::PluginData::absent(),
                )
                .await,
        ),
        (
            "update access requests",
            client
                .set_access_request_state(
                    PROBE_REQUEST_ID,
                    teleport_proto::types::RequestState::Approved,
                    "",
                    "jira:check",
                )
                .await,
        ),
    ];
    for (what, outcome) in probes {
        match outcome {
            Ok(()) | Err(TeleportError::NotFound(_)) => {
                report.ok("teleport role", format!("may {what}"))
            }
            Err(err @ TeleportError::AccessDenied(_)) => {
                report.fail("teleport role", format!("may not {what}: {err}"), role_fix)
            }
            Err(err) => report.fail(
                "teleport role",
                format!("cannot tell whether it may {what}: {err}"),
                "check that Teleport is healthy and retry",
            ),
        }
    }
}
