//! The webhook receiver: forged, malformed, oversized, unauthenticated and repeated deliveries
//! change nothing they should not; a lost delivery is still noticed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use teleport_proto::types::RequestState;

use crate::support::*;

fn payload(issue_id: &str, status: &str) -> String {
    serde_json::json!({
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "issue": {"id": issue_id, "fields": {"status": {"name": status}}}
    })
    .to_string()
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn webhook_for_an_unknown_issue_is_refused_and_changes_nothing() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    sandbox.issue_of(&id).await;
    let status = sandbox
        .jira
        .deliver_raw_webhook(payload("999999", "Approved"), &[JSON])
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));
    assert!(sandbox.teleport.audit_events().is_empty());
}

#[tokio::test]
async fn property_pointing_at_another_request_cannot_approve_it() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let victim = sandbox.create_request(REASON);
    let victim_issue = sandbox.issue_of(&victim).await;
    let other = sandbox.create_request(REASON);
    let other_issue = sandbox.issue_of(&other).await;

    // Someone who can edit issues points the other issue at the victim's request and approves it.
    sandbox
        .jira
        .set_property(
            &other_issue.id,
            "teleportAccessRequestId",
            serde_json::json!(victim),
        )
        .unwrap();
    sandbox
        .jira
        .transition_as(&other_issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    assert!(sandbox.jira.wait_webhooks_idle(WAIT).await);
    let status = sandbox
        .jira
        .deliver_raw_webhook(payload(&other_issue.id, "Approved"), &[JSON])
        .await
        .unwrap();
    assert_eq!(status, 400);

    // Both deliveries were refused as they came (a refused delivery queues no step).
    let refused =
        eventually(|| async { sandbox.log().matches("Refused webhook").count() >= 2 }).await;
    assert!(refused, "{}", sandbox.log());
    assert_eq!(sandbox.state_of(&victim), Some(RequestState::Pending));
    assert_eq!(
        sandbox.state_of(&other),
        Some(RequestState::Pending),
        "a tampered issue decides nothing"
    );
    assert!(sandbox.teleport.audit_events().is_empty());
    assert_eq!(
        sandbox.jira.issue(&victim_issue.id).unwrap().status,
        "Pending"
    );
}

#[tokio::test]
async fn webhook_naming_a_pending_issue_changes_nothing() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    // The payload claims Approved; Jira itself says Pending, and Jira is what counts.
    let status = sandbox
        .jira
        .deliver_raw_webhook(payload(&issue.id, "Approved"), &[JSON])
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(sandbox.state_of(&id), Some(RequestState::Pending));
    assert!(sandbox.teleport.audit_events().is_empty());
}

#[tokio::test]
async fn malformed_and_incomplete_payloads_get_400() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    assert_eq!(
        sandbox
            .jira
            .deliver_raw_webhook("{not json", &[JSON])
            .await
            .unwrap(),
        400
    );
    let no_issue =
        r#"{"webhookEvent":"jira:issue_updated","issue_event_type_name":"issue_generic"}"#;
    assert_eq!(
        sandbox
            .jira
            .deliver_raw_webhook(no_issue, &[JSON])
            .await
            .unwrap(),
        400
    );
    let other_event = r#"{"webhookEvent":"jira:issue_deleted","issue":{"id":"1"}}"#;
    assert_eq!(
        sandbox
            .jira
            .deliver_raw_webhook(other_event, &[JSON])
            .await
            .unwrap(),
        200
    );
    // Still serving afterwards.
    let status = reqwest::get(format!("{}status", sandbox.webhook_url))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn oversized_payload_gets_413() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let huge = format!(
        r#"{{"webhookEvent":"jira:issue_updated","pad":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    assert_eq!(
        sandbox
            .jira
            .deliver_raw_webhook(huge, &[JSON])
            .await
            .unwrap(),
        413
    );
}

#[tokio::test]
async fn basic_auth_guards_every_route() {
    let mut sandbox = Sandbox::with(SandboxOptions {
        extra_config: "\n[http.basic_auth]\nuser = \"jira\"\npassword = \"s3cret\"\n".into(),
        ..Default::default()
    })
    .await;
    sandbox.start_plugin().await;
    let client = reqwest::Client::new();
    let status = client
        .get(format!("{}status", sandbox.webhook_url))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 401);
    assert_eq!(
        status.headers()["www-authenticate"],
        "Basic realm=Restricted"
    );
    assert_eq!(status.text().await.unwrap(), "Unauthorized\n");
    let wrong = client
        .get(format!("{}status", sandbox.webhook_url))
        .basic_auth("jira", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client
        .get(format!("{}status", sandbox.webhook_url))
        .basic_auth("jira", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let post = client
        .post(sandbox.webhook_url.clone())
        .body(payload("1", "Approved"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 401);
}

#[tokio::test]
async fn duplicated_deliveries_resolve_the_request_once() {
    let mut sandbox = Sandbox::new().await;
    sandbox.jira.faults().set_webhook_duplicate_rate(1.0);
    sandbox.start_plugin().await;
    let id = sandbox.create_request(REASON);
    let issue = sandbox.issue_of(&id).await;
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox.wait_for_state(&id, RequestState::Approved).await;
    let issue = sandbox
        .wait_for_comment(&issue.id, "Access request has been approved")
        .await;
    assert!(sandbox.jira.wait_webhooks_idle(WAIT).await);
    // The plugin answers a delivery once the step it caused has ended: every one was answered.
    let deliveries = sandbox.jira.deliveries();
    assert!(
        deliveries.iter().all(|d| d.status_code == Some(200)),
        "{deliveries:#?}"
    );
    assert_eq!(sandbox.teleport.audit_events().len(), 1);
    let resolutions = issue
        .comment_bodies()
        .iter()
        .filter(|b| b.starts_with("Access request has been"))
        .count();
    assert_eq!(resolutions, 1, "{:?}", issue.comment_bodies());
}

#[tokio::test]
async fn wrong_method_and_path_get_405_and_404() {
    let mut sandbox = Sandbox::new().await;
    sandbox.start_plugin().await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(sandbox.webhook_url.clone())
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(
        client
            .get(format!("{}nope", sandbox.webhook_url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn verify_client_cert_requires_a_certificate_from_the_system_trust_store() {
    use testkit::pki::{CertAuthority, KeyKind, Validity};
    let mut sandbox = Sandbox::with(SandboxOptions {
        webhook_tls: true,
        extra_config: "\n[http.tls]\nverify_client_cert = true\n".into(),
        ..Default::default()
    })
    .await;
    // The operator's client CA joins the trust store the plugin sees through SSL_CERT_FILE.
    let client_ca = CertAuthority::new("webhook clients", "example").unwrap();
    let bundle = sandbox.path("jira-ca.pem");
    let mut trusted = std::fs::read_to_string(&bundle).unwrap();
    trusted.push_str(&client_ca.cert_pem());
    std::fs::write(&bundle, trusted).unwrap();
    sandbox.start_plugin().await;

    let server_ca = std::fs::read_to_string(sandbox.path("webhook-ca.pem")).unwrap();
    let server_ca = reqwest::Certificate::from_pem(server_ca.as_bytes()).unwrap();
    let anonymous = reqwest::Client::builder()
        .tls_certs_only([server_ca.clone()])
        .build()
        .unwrap();
    let refused = anonymous
        .get(format!("{}status", sandbox.webhook_url))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a client without a certificate is refused: {refused:?}"
    );

    let cert = client_ca
        .issue_client(
            "jira",
            &[],
            KeyKind::EcdsaP256,
            Validity::for_ttl(Duration::from_secs(600)),
        )
        .unwrap();
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", cert.cert_pem(), cert.key_pem()).as_bytes())
            .unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([server_ca])
        .identity(identity)
        .build()
        .unwrap();
    let status = client
        .get(format!("{}status", sandbox.webhook_url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}
