//! Start-up and the long-running tasks: load credentials, connect to Teleport and check it, then
//! keep the watch (and identity renewal) running until shutdown.
//!
//! Start-up failures are returned as [`StartError`], one line each, which the CLI prints before
//! exiting with status 1. After start-up, nothing short of a shutdown signal ends the process:
//! connection problems are retried.

use std::sync::Arc;

use futures_util::FutureExt;

use thiserror::Error;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, CredentialSource};
use crate::health::{self, HealthState};
use crate::jira::{JiraAuth, JiraClient, JiraClientOptions, JiraError};
use crate::metrics::Metrics;
use crate::reload;
use crate::sync::Engine;
use crate::sync::policy::ApproverPolicy;
use crate::sync::reconcile::{IssueSettings, Reconciler};
use crate::sync::store::RequestStore;
use crate::teleport::identity::{self, IdentityError};
use crate::teleport::watch::{self as teleport_watch, WatchOptions};
use crate::teleport::{Credentials, TeleportClient, TeleportError, refresh};
use crate::version::check_server_version;
use crate::webhook::{self, WebhookState};

#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Credentials(String),
    #[error(
        "No valid credentials found, this likely means credentials are expired. In this case, please sign new credentials and increase their TTL if needed."
    )]
    Expired,
    #[error("{0}")]
    Teleport(#[from] TeleportError),
    #[error("{0}")]
    Version(String),
    #[error("webhook TLS: {0}")]
    WebhookTls(String),
    #[error("{0}")]
    Jira(String),
    /// A listener (the webhook's or the metrics one) could not start.
    #[error("{0}")]
    Listener(String),
    #[error("installing the SIGHUP handler: {0}")]
    Signals(String),
}

/// What the process needs besides the config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub fail_fast: bool,
}

/// The text of the credential files the config names, so a reload can tell whether anything
/// changed before parsing them.
fn credentials_text(source: &CredentialSource) -> Result<String, StartError> {
    match source {
        CredentialSource::IdentityFile { path, .. } => {
            std::fs::read_to_string(path).map_err(|err| {
                StartError::Credentials(format!("reading identity file {}: {err}", path.display()))
            })
        }
        CredentialSource::KeyPair {
            key,
            cert,
            root_cas,
        } => Ok([key, cert, root_cas]
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap_or_default())
            .collect()),
    }
}

/// The credentials in `text` (read by [`credentials_text`]), with the file name in every error.
fn parse_credentials(source: &CredentialSource, text: &str) -> Result<Credentials, StartError> {
    match source {
        CredentialSource::IdentityFile { path, .. } => identity::parse_identity_file(text)
            .map_err(|err: IdentityError| StartError::Credentials(err.in_file(path).to_string())),
        // Three files: read again by path, which names the one at fault.
        CredentialSource::KeyPair {
            key,
            cert,
            root_cas,
        } => identity::read_key_pair(key, cert, root_cas)
            .map_err(|err| StartError::Credentials(format!("teleport client credentials: {err}"))),
    }
}

/// Loads the credentials the config names and refuses expired ones; also returns the text they
/// were read from.
pub fn load_credentials(source: &CredentialSource) -> Result<(Credentials, String), StartError> {
    let text = credentials_text(source)?;
    let loaded = (parse_credentials(source, &text)?, text);
    let info = &loaded.0.info;
    if info.is_expired_at(OffsetDateTime::now_utc()) {
        tracing::warn!(
            "expired credential found: the certificate for '{}', issued by '{}' is not valid after '{}'",
            info.user,
            info.issuer,
            info.not_after
        );
        return Err(StartError::Expired);
    }
    Ok(loaded)
}

/// Files holding secrets must not be open to every user on the machine; say so when they are. A
/// group may read them: tbot and the plugin often share one, and Kubernetes mounts Secrets
/// group-readable under `fsGroup`.
fn warn_about_open_secret_files(config: &Config) {
    use std::os::unix::fs::PermissionsExt;
    let mut files: Vec<(&str, &std::path::Path)> = Vec::new();
    match &config.teleport.credentials {
        CredentialSource::IdentityFile { path, .. } => files.push(("teleport.identity", path)),
        CredentialSource::KeyPair { key, .. } => files.push(("teleport.client_key", key)),
    }
    if let Some(tls) = &config.http.tls {
        files.push(("http.https_key_file", &tls.key));
    }
    for source in [
        &config.jira.api_token_file,
        &config.http.webhook_secret_file,
    ]
    .into_iter()
    .flatten()
    {
        files.push(("secret file", source));
    }
    for (key, path) in files {
        if let Ok(metadata) = std::fs::metadata(path)
            && metadata.permissions().mode() & 0o006 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", metadata.permissions().mode() & 0o777),
                "{key} is open to every user on this machine; restrict it to the service user and its group (chmod 600 or 640)"
            );
        }
    }
}

/// Checks that the webhook's certificate and key can be loaded, as the Go plugin does at start.
fn check_webhook_tls(config: &Config) -> Result<(), StartError> {
    let Some(files) = &config.http.tls else {
        return Ok(());
    };
    for (path, what) in [
        (&files.cert, "https_cert_file"),
        (&files.key, "https_key_file"),
    ] {
        std::fs::metadata(path).map_err(|err| {
            StartError::WebhookTls(format!("http.{what} {}: {err}", path.display()))
        })?;
    }
    Ok(())
}

/// The permissions the Go plugin checks before it starts.
pub const JIRA_PERMISSIONS: [&str; 4] = [
    "BROWSE_PROJECTS",
    "CREATE_ISSUES",
    "TRANSITION_ISSUES",
    "ADD_COMMENTS",
];

/// The Go plugin's start-up check of Jira: the API answers, the project exists, permissions are there.
async fn check_jira(jira: &JiraClient, project: &str) -> Result<(), JiraError> {
    tracing::debug!("Starting Jira API health check");
    jira.myself().await?;
    tracing::debug!("Checking out Jira project");
    let found = jira.project(project).await?;
    tracing::debug!(project = %found.key, project_name = %found.name, "Found Jira project");
    tracing::debug!("Checking out Jira project permissions");
    let permissions = jira.my_permissions(project, &JIRA_PERMISSIONS).await?;
    for key in JIRA_PERMISSIONS {
        if !permissions
            .permissions
            .get(key)
            .is_some_and(|p| p.have_permission)
        {
            return Err(JiraError::Other(format!(
                "plugin jira user does not have {key} permission"
            )));
        }
    }
    tracing::debug!("Jira API health check finished ok");
    Ok(())
}

/// How long start-up waits out a Jira outage (5xx, 429, lost connections) before giving up; a
/// wrong URL, credential, project or permission fails at once.
const JIRA_STARTUP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

async fn check_jira_patiently(jira: &JiraClient, project: &str) -> Result<(), StartError> {
    let deadline = tokio::time::Instant::now() + JIRA_STARTUP_PATIENCE;
    let mut backoff = crate::backoff::Backoff::new(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(5),
    );
    loop {
        match check_jira(jira, project).await {
            Ok(()) => return Ok(()),
            Err(err) if err.is_transient() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %err, "Jira is not answering yet; retrying the health check");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(err) => return Err(StartError::Jira(format!("api health check failed: {err}"))),
        }
    }
}

fn webhook_tls(
    config: &Config,
) -> Result<Option<axum_server::tls_rustls::RustlsConfig>, StartError> {
    let Some(files) = &config.http.tls else {
        return Ok(None);
    };
    webhook::tls_config(&files.cert, &files.key, config.http.verify_client_cert)
        .map(Some)
        .map_err(StartError::WebhookTls)
}

/// Runs the plugin until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    tracing::info!(version = %crate::version::version_line(), "Starting Teleport Jira Plugin");
    // Installed first: until then SIGHUP's default action would end the process.
    let sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|err| StartError::Signals(err.to_string()))?;
    let (credentials, credentials_in_use) = load_credentials(&config.teleport.credentials)?;
    check_webhook_tls(&config)?;
    warn_about_open_secret_files(&config);
    tracing::info!(
        user = %credentials.info.user,
        valid_until = %credentials.info.valid_until(),
        "Loaded Teleport credentials"
    );

    tracing::debug!("Checking Teleport server version");
    let (client, ping) = TeleportClient::connect(&config.teleport.addr, &credentials)
        .await
        .map_err(|err| match err {
            TeleportError::NotImplemented(message) => {
                StartError::Version(format!("server version must be at least 6.1.0: {message}"))
            }
            other => other.into(),
        })?;
    check_server_version(&ping.server_version).map_err(StartError::Version)?;
    tracing::info!(
        cluster = %ping.cluster_name,
        server_version = %ping.server_version,
        route = %client.route(),
        "Connected to Teleport"
    );
    let metrics = Arc::new(Metrics::new());
    let client = Arc::new(client.with_metrics(metrics.clone()));

    let jira = JiraClient::new(JiraClientOptions {
        base_url: config.jira.url.clone(),
        auth: JiraAuth::from_config(&config.jira),
        max_concurrent_calls: config.jira.max_concurrent_calls,
        max_calls_per_second: config.jira.max_calls_per_second,
    })
    .map_err(|err| StartError::Jira(err.to_string()))?
    .with_metrics(metrics.clone());
    check_jira_patiently(&jira, &config.jira.project).await?;
    let tls = webhook_tls(&config)?;

    let settings = IssueSettings {
        project: config.jira.project.clone(),
        issue_type: config.jira.issue_type.clone(),
        statuses: config.jira.statuses.clone(),
        proxy_public_addr: Some(ping.proxy_public_addr.clone()).filter(|addr| !addr.is_empty()),
        labels: config.jira.labels.clone(),
        fields: config.jira.fields.clone(),
        policy: ApproverPolicy {
            approvers: config.jira.approvers.clone(),
            users: config.jira.users.clone(),
        },
        resolve_with: config.jira.resolve_with,
    };
    let store = Arc::new(RequestStore::default());
    let reconciler = Reconciler::new(
        client.clone(),
        jira.clone(),
        store,
        settings,
        config.reconcile.lease_ttl,
        metrics.clone(),
    );
    reconciler.learn_latest_issue().await;
    let mut secret_files = Vec::new();
    if let Some(path) = &config.jira.api_token_file {
        let jira = jira.clone();
        secret_files.push(reload::SecretFile {
            key: "jira.api_token",
            path: path.clone(),
            apply: Box::new(move |token| jira.replace_token(token)),
        });
    }
    let (engine, driver) = Engine::start(reconciler, config.reconcile.workers, shutdown.clone());

    let tasks = TaskTracker::new();
    let reload_credentials = Arc::new(tokio::sync::Notify::new());
    let (read_source, parse_source) = (
        config.teleport.credentials.clone(),
        config.teleport.credentials.clone(),
    );
    tasks.spawn(refresh::run(
        refresh::Renewal {
            client: client.clone(),
            read: Box::new(move || credentials_text(&read_source).map_err(|err| err.to_string())),
            parse: Box::new(move |text| {
                parse_credentials(&parse_source, text).map_err(|err| err.to_string())
            }),
            interval: match &config.teleport.credentials {
                CredentialSource::IdentityFile { refresh, .. } => *refresh,
                CredentialSource::KeyPair { .. } => None,
            },
            applied: credentials_in_use,
            reload_now: reload_credentials.clone(),
        },
        shutdown.clone(),
    ));
    tasks.spawn(health::keep_jira_checked(
        jira,
        metrics.clone(),
        shutdown.clone(),
    ));
    let health = {
        let engine = engine.clone();
        HealthState::new(
            metrics.clone(),
            Arc::new(move |metrics: &Metrics| engine.publish_gauges(metrics)),
        )
    };
    if let Some(addr) = config.metrics.listen_addr {
        start_listener(
            "metrics",
            addr,
            None,
            health::routes(health.clone()),
            &tasks,
            &shutdown,
        )
        .await?;
    }

    if config.http.disable_webhook {
        tracing::info!(
            scan_interval = ?config.reconcile.scan_interval,
            "Webhook disabled: decisions made in Jira are found by the periodic scan"
        );
    } else {
        warn_if_unauthenticated(&config);
        let state = WebhookState::new(
            engine.clone(),
            config.http.basic_auth.clone(),
            config.http.webhook_secret.clone(),
            metrics.clone(),
        );
        if let Some(path) = &config.http.webhook_secret_file {
            let secret = state.secret();
            secret_files.push(reload::SecretFile {
                key: "http.webhook_secret",
                path: path.clone(),
                apply: Box::new(move |value| secret.store(Some(Arc::new(value)))),
            });
        }
        let router = webhook::router(state, config.http.max_body_bytes, health);
        start_listener(
            "webhook",
            config.http.listen_addr,
            tls.clone(),
            router,
            &tasks,
            &shutdown,
        )
        .await?;
    }
    let served_tls = tls.filter(|_| !config.http.disable_webhook);
    let webhook_tls = served_tls
        .zip(config.http.tls.clone())
        .map(|(live, files)| {
            Arc::new(reload::WebhookTls::new(
                live,
                files,
                config.http.verify_client_cert,
            ))
        });
    if let (Some(tls), Some(every)) = (&webhook_tls, config.http.tls_files_check_interval) {
        tasks.spawn(reload::follow_tls_files(
            tls.clone(),
            every,
            shutdown.clone(),
        ));
    }
    tasks.spawn(reload::on_sighup(
        sighup,
        reload::Targets {
            webhook_tls,
            credentials: reload_credentials,
            secret_files,
        },
        shutdown.clone(),
    ));

    let (events_tx, mut events) = mpsc::channel(1024);
    let (connected_tx, mut connected) = watch::channel(false);
    let watcher = tasks.spawn(teleport_watch::run(
        client.clone(),
        events_tx,
        connected_tx,
        shutdown.clone(),
        WatchOptions {
            fail_fast: options.fail_fast,
        },
    ));
    tasks.close();

    let scan_interval = config.reconcile.scan_interval;
    let mut scan =
        tokio::time::interval_at(tokio::time::Instant::now() + scan_interval, scan_interval);
    let mut ready_logged = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = connected.changed() => {
                if changed.is_err() { break; }
                let up = *connected.borrow();
                metrics.watch_connected.set(i64::from(up));
                if up && !ready_logged {
                    tracing::info!("Plugin is ready");
                    ready_logged = true;
                }
            }
            event = events.recv() => match event {
                Some(event) => engine.on_watch_event(event).await,
                None => break,
            },
            _ = scan.tick() => engine.scan(),
        }
    }
    // Intake stops first (webhook, watch, scan); steps already running get the grace period.
    shutdown.cancel();
    let grace = config.reconcile.shutdown_grace_period;
    let drained = tokio::time::timeout(grace, async {
        tasks.wait().await;
        let _ = driver.await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            backlog = engine.backlog(),
            ?grace,
            "Shutdown grace period over; abandoning steps in flight (the next start redoes them)"
        );
    }
    match watcher.now_or_never() {
        Some(Ok(Err(err))) => Err(err.into()),
        _ => Ok(()),
    }
}

/// Anyone who can reach an unauthenticated webhook can make the plugin look at any issue; the
/// anti-forgery checks hold, but an operator should know.
fn warn_if_unauthenticated(config: &Config) {
    let http = &config.http;
    let authenticated =
        http.webhook_secret.is_some() || http.basic_auth.is_some() || http.verify_client_cert;
    if !authenticated && !http.listen_addr.ip().is_loopback() {
        tracing::warn!(
            listen_addr = %http.listen_addr,
            "THE WEBHOOK ACCEPTS UNAUTHENTICATED REQUESTS: set http.webhook_secret to Jira's webhook secret \
             (or http.basic_auth, or http.tls.verify_client_cert)"
        );
    }
}

/// Binds a listener (a bind failure is a start-up error) and serves it until shutdown.
async fn start_listener(
    name: &str,
    listen_addr: std::net::SocketAddr,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    router: axum::Router,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<(), StartError> {
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let with_tls = tls.is_some();
    let server = tasks.spawn(webhook::serve(
        listen_addr,
        tls,
        router,
        shutdown.clone(),
        bound_tx,
    ));
    match bound_rx.await {
        Ok(addr) => {
            tracing::info!(listen_addr = %addr, tls = with_tls, "{} server listening", capitalized(name));
            Ok(())
        }
        Err(_) => {
            shutdown.cancel();
            let reason = match server.await {
                Ok(Err(err)) => err.to_string(),
                _ => "the server ended".to_owned(),
            };
            Err(StartError::Listener(format!(
                "{name} server listening on {listen_addr}: {reason}"
            )))
        }
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
