//! The Teleport client library against FakeTeleport over mutual TLS: credentials in every form,
//! both routes, refusals, the watch, compare-and-swap and identity renewal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use teleport_jira::teleport::dial::Route;
use teleport_jira::teleport::identity::{self, IdentityError};
use teleport_jira::teleport::watch::{self, WatchEvent, WatchOptions};
use teleport_jira::teleport::{TeleportClient, TeleportError, refresh};
use testkit::pki::KeyFlavour;
use testkit::teleport::{FakeTeleport, FakeTeleportOptions, IdentityOptions, UserSpec};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::support::{PLUGIN_USER, REQUESTER, WAIT};

async fn cluster() -> FakeTeleport {
    testkit::pki::install_crypto_provider();
    let teleport = FakeTeleport::start(FakeTeleportOptions::default()).await;
    teleport.add_user(PLUGIN_USER, UserSpec::plugin());
    teleport.add_user(REQUESTER, UserSpec::requester(&["editor"]));
    teleport
}

fn credentials(teleport: &FakeTeleport, options: IdentityOptions) -> identity::Credentials {
    let text = teleport
        .issue_identity(PLUGIN_USER, &options)
        .unwrap()
        .to_identity_file();
    identity::parse_identity_file(&text).unwrap()
}

#[tokio::test]
async fn identity_files_in_every_key_flavour_connect_directly() {
    let teleport = cluster().await;
    for flavour in [
        KeyFlavour::RsaPkcs1,
        KeyFlavour::Pkcs8Rsa,
        KeyFlavour::RsaPkcs8UnderRsaLabel,
        KeyFlavour::Pkcs8Ecdsa,
        KeyFlavour::Sec1Ecdsa,
        KeyFlavour::Pkcs8Ed25519,
    ] {
        let creds = credentials(&teleport, IdentityOptions::default().with_key(flavour));
        assert_eq!(creds.info.user, PLUGIN_USER);
        assert_eq!(
            creds.info.cluster_name.as_deref(),
            Some(teleport.cluster_name())
        );
        let (client, ping) = TeleportClient::connect(&teleport.auth_addr().to_string(), &creds)
            .await
            .unwrap_or_else(|err| panic!("{flavour:?}: {err}"));
        assert_eq!(ping.cluster_name, teleport.cluster_name(), "{flavour:?}");
        assert_eq!(client.route(), &Route::Direct);
    }
}

#[tokio::test]
async fn tls_trio_from_tctl_format_tls_connects() {
    let teleport = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let files = teleport.write_tls_files(PLUGIN_USER, dir.path()).unwrap();
    let creds = identity::read_key_pair(&files.key, &files.crt, &files.cas).unwrap();
    let (_, ping) = TeleportClient::connect(&teleport.auth_addr().to_string(), &creds)
        .await
        .unwrap();
    assert_eq!(ping.server_version, "17.0.2");
}

#[tokio::test]
async fn proxy_with_tls_routing_is_reached_through_the_teleport_auth_alpn() {
    let teleport = cluster().await;
    let creds = credentials(&teleport, IdentityOptions::default());
    let (client, ping) = TeleportClient::connect(&teleport.proxy_addr().to_string(), &creds)
        .await
        .unwrap();
    assert_eq!(ping.cluster_name, teleport.cluster_name());
    assert_eq!(
        client.route(),
        &Route::TlsRouting {
            cluster: teleport.cluster_name().to_owned()
        }
    );
    // The connection really is usable for the plugin's calls, not just Ping.
    let id = teleport.create_access_request(REQUESTER, &["editor"], "r");
    assert!(client.access_request(&id).await.unwrap().is_some());
}

#[tokio::test]
async fn malformed_identity_files_give_clear_errors() {
    let teleport = cluster().await;
    let good = teleport
        .issue_identity(PLUGIN_USER, &IdentityOptions::default())
        .unwrap()
        .to_identity_file();
    let cut = good.find("-----BEGIN CERTIFICATE-----").unwrap() + 80;
    let truncated = &good[..cut];
    assert!(matches!(
        identity::parse_identity_file(truncated),
        Err(IdentityError::PemFragment)
    ));
    assert!(matches!(
        identity::parse_identity_file("not an identity"),
        Err(IdentityError::MissingKey)
    ));

    // The key of one identity with the certificate of another.
    let other = teleport
        .issue_identity(PLUGIN_USER, &IdentityOptions::default())
        .unwrap();
    let mine = teleport
        .issue_identity(PLUGIN_USER, &IdentityOptions::default())
        .unwrap();
    let mixed = format!(
        "{}{}{}",
        other.key_pem,
        mine.cert_pem,
        mine.ca_pems.join("")
    );
    let err = identity::parse_identity_file(&mixed).unwrap_err();
    assert!(matches!(err, IdentityError::KeyMismatch), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let message = identity::read_identity_file(&missing)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn a_certificate_from_another_cluster_is_refused() {
    let teleport = cluster().await;
    let stranger = cluster().await;
    let foreign = credentials(&stranger, IdentityOptions::default());
    let err = TeleportClient::connect(&teleport.auth_addr().to_string(), &foreign)
        .await
        .unwrap_err();
    assert!(matches!(err, TeleportError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_user_unknown_to_the_cluster_is_refused_per_call() {
    let teleport = cluster().await;
    let creds = credentials(&teleport, IdentityOptions::default());
    assert!(teleport.remove_user(PLUGIN_USER));
    let err = TeleportClient::connect(&teleport.auth_addr().to_string(), &creds)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("access denied"), "{message}");
}

#[tokio::test]
async fn expired_credentials_stop_start_up_with_teleports_message() {
    let teleport = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth_id");
    teleport
        .write_identity_file(PLUGIN_USER, &path, IdentityOptions::expired())
        .unwrap();
    let source = teleport_jira::config::CredentialSource::IdentityFile {
        path,
        refresh: None,
    };
    let err = teleport_jira::startup::load_credentials(&source)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("No valid credentials found"), "{err}");
}

async fn next(events: &mut mpsc::Receiver<WatchEvent>) -> WatchEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event")
        .expect("open")
}

#[tokio::test]
async fn watch_delivers_init_put_delete_and_reconnects_after_a_drop() {
    let teleport = cluster().await;
    let creds = credentials(&teleport, IdentityOptions::default());
    let (client, _) = TeleportClient::connect(&teleport.auth_addr().to_string(), &creds)
        .await
        .unwrap();
    let (events_tx, mut events) = mpsc::channel(64);
    let (connected, _) = tokio::sync::watch::channel(false);
    let shutdown = CancellationToken::new();
    let watcher = tokio::spawn(watch::run(
        Arc::new(client),
        events_tx,
        connected,
        shutdown.clone(),
        WatchOptions::default(),
    ));

    assert!(matches!(next(&mut events).await, WatchEvent::Init));
    let id = teleport.create_access_request(REQUESTER, &["editor"], "r");
    match next(&mut events).await {
        WatchEvent::Put(request) => assert_eq!(request.metadata.unwrap().name, id),
        other => panic!("expected PUT, got {other:?}"),
    }
    teleport.delete_access_request(&id).unwrap();
    match next(&mut events).await {
        WatchEvent::Delete { id: deleted } => assert_eq!(deleted, id),
        other => panic!("expected DELETE, got {other:?}"),
    }

    teleport.drop_watch_streams();
    assert!(
        matches!(next(&mut events).await, WatchEvent::Init),
        "the watch is reopened"
    );
    let again = teleport.create_access_request(REQUESTER, &["editor"], "r");
    match next(&mut events).await {
        WatchEvent::Put(request) => assert_eq!(request.metadata.unwrap().name, again),
        other => panic!("expected PUT, got {other:?}"),
    }

    teleport.restart().await;
    assert!(
        matches!(next(&mut events).await, WatchEvent::Init),
        "the watch survives a server restart"
    );
    shutdown.cancel();
    watcher.await.unwrap().unwrap();
}

#[tokio::test]
async fn plugin_data_compare_and_swap_reports_conflicts() {
    let teleport = cluster().await;
    let creds = credentials(&teleport, IdentityOptions::default());
    let (client, _) = TeleportClient::connect(&teleport.auth_addr().to_string(), &creds)
        .await
        .unwrap();
    let id = teleport.create_access_request(REQUESTER, &["editor"], "r");
    let map = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    client
        .update_plugin_data(
            &id,
            "jira",
            map(&[("issue_id", "1")]),
            map(&[("issue_id", "")]),
        )
        .await
        .unwrap();
    let err = client
        .update_plugin_data(
            &id,
            "jira",
            map(&[("issue_id", "2")]),
            map(&[("issue_id", "")]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TeleportError::CompareFailed(_)), "{err:?}");
    assert_eq!(
        client.plugin_data(&id, "jira").await.unwrap().unwrap()["issue_id"],
        "1"
    );
    assert_eq!(
        client.plugin_data("no-such-request", "jira").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn renewed_identity_file_replaces_the_credentials_in_use() {
    let teleport = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth_id");
    teleport
        .write_identity_file(PLUGIN_USER, &path, IdentityOptions::default())
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let creds = identity::parse_identity_file(&text).unwrap();
    let (client, _) = TeleportClient::connect(&teleport.auth_addr().to_string(), &creds)
        .await
        .unwrap();
    let client = Arc::new(client);
    let mut changes = client.connection_changes();
    let shutdown = CancellationToken::new();
    let reread = path.clone();
    let metrics: Arc<teleport_jira::metrics::Metrics> = Arc::default();
    let task = tokio::spawn(refresh::run(
        refresh::Renewal {
            client: client.clone(),
            read: Box::new(move || std::fs::read_to_string(&reread).map_err(|err| err.to_string())),
            parse: Box::new(|text| {
                identity::parse_identity_file(text).map_err(|err| err.to_string())
            }),
            interval: Some(Duration::from_millis(50)),
            applied: text,
            reload_now: Arc::default(),
            metrics: metrics.clone(),
        },
        shutdown.clone(),
    ));

    // A half-written file is not applied.
    std::fs::write(&path, "-----BEGIN RSA PRIVATE KEY-----\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !changes.has_changed().unwrap(),
        "a broken file must not replace working credentials"
    );

    teleport
        .write_identity_file(
            PLUGIN_USER,
            &path,
            IdentityOptions::default().with_key(KeyFlavour::Pkcs8Ecdsa),
        )
        .unwrap();
    tokio::time::timeout(WAIT, changes.changed())
        .await
        .expect("credentials replaced")
        .unwrap();
    client.ping().await.expect("the renewed connection works");
    tokio::time::timeout(WAIT, async {
        while metrics.identity_expiry.get() <= 0.0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the expiry of the renewed credentials is shown");
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn listing_falls_back_to_the_stream_on_servers_without_list_access_requests() {
    let teleport = cluster().await;
    let creds = credentials(&teleport, IdentityOptions::default());
    let (client, _) = TeleportClient::connect(&teleport.auth_addr().to_string(), &creds)
        .await
        .unwrap();
    let ids: Vec<String> = (0..3)
        .map(|_| teleport.create_access_request(REQUESTER, &["editor"], "r"))
        .collect();
    teleport.set_list_unimplemented(true);
    let listed = client
        .list_access_requests(Default::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert!(teleport.calls("GetAccessRequestsV2") >= 1);
    assert!(client.access_request(&ids[1]).await.unwrap().is_some());
}
