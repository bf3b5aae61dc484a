//! What SIGHUP and the file checks reload, gathered while the parts start: the secrets given as
//! files, the webhook's certificate, and the Teleport credentials (renewed by their own task).

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::Signal;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, CredentialSource};
use crate::jira::JiraClient;
use crate::jsm::JsmClient;
use crate::metrics::Metrics;
use crate::reload::{self, SecretFile, WebhookTls};
use crate::startup;
use crate::teleport::{TeleportClient, refresh};

pub struct Reloads {
    secret_files: Vec<SecretFile>,
    webhook_tls: Option<Arc<WebhookTls>>,
    /// How often the webhook's certificate files are compared with what is served.
    tls_check_every: Option<Duration>,
    /// Wakes the credential renewal task.
    credentials: Arc<Notify>,
}

impl Reloads {
    pub fn new(config: &Config, jira: &JiraClient) -> Self {
        let mut reloads = Self {
            secret_files: Vec::new(),
            webhook_tls: None,
            tls_check_every: config.http.tls_files_check_interval,
            credentials: Arc::new(Notify::new()),
        };
        if let Some(path) = &config.jira.api_token_file {
            let jira = jira.clone();
            reloads.secret_files.push(SecretFile {
                key: "jira.api_token",
                path: path.clone(),
                apply: Box::new(move |token| jira.replace_token(token)),
            });
        }
        reloads
    }

    /// The on-call check's JSM token, when it was given as a file (its own, or `[jira]`'s).
    pub fn reload_jsm_token(&mut self, config: &Config, jsm: Option<&JsmClient>) {
        if let (Some(jsm), Some(path)) = (jsm, &config.jsm_oncall.api_token_file) {
            let jsm = jsm.clone();
            self.secret_files.push(SecretFile {
                key: "jsm_oncall.api_token",
                path: path.clone(),
                apply: Box::new(move |token| jsm.replace_token(token)),
            });
        }
    }

    pub fn add_secret_file(&mut self, file: SecretFile) {
        self.secret_files.push(file);
    }

    pub fn serve_webhook_tls(&mut self, tls: WebhookTls) {
        self.webhook_tls = Some(Arc::new(tls));
    }

    /// The renewal of the Teleport credentials in use (whose text is `applied`): on
    /// `refresh_identity`'s interval, and whenever SIGHUP wakes it.
    pub fn credential_renewal(
        &self,
        config: &Config,
        client: &Arc<TeleportClient>,
        applied: String,
        metrics: &Arc<Metrics>,
    ) -> refresh::Renewal {
        let source = config.teleport.credentials.clone();
        let (read_source, parse_source) = (source.clone(), source);
        refresh::Renewal {
            client: client.clone(),
            read: Box::new(move || {
                startup::credentials_text(&read_source).map_err(|err| err.to_string())
            }),
            parse: Box::new(move |text| {
                startup::parse_credentials(&parse_source, text).map_err(|err| err.to_string())
            }),
            interval: match &config.teleport.credentials {
                CredentialSource::IdentityFile { refresh, .. } => *refresh,
                CredentialSource::KeyPair { .. } => None,
            },
            applied,
            reload_now: self.credentials.clone(),
            metrics: metrics.clone(),
        }
    }

    /// Starts following the webhook's certificate files and answering SIGHUP.
    pub fn start(self, sighup: Signal, tasks: &TaskTracker, shutdown: &CancellationToken) {
        if let (Some(tls), Some(every)) = (&self.webhook_tls, self.tls_check_every) {
            tasks.spawn(reload::follow_tls_files(
                tls.clone(),
                every,
                shutdown.clone(),
            ));
        }
        let secret_files = reload::SecretFiles::new(self.secret_files);
        if let Some(every) = self.tls_check_every {
            tasks.spawn(reload::follow_secret_files(
                secret_files.clone(),
                every,
                shutdown.clone(),
            ));
        }
        let targets = reload::Targets {
            webhook_tls: self.webhook_tls,
            credentials: self.credentials,
            secret_files,
        };
        tasks.spawn(reload::on_sighup(sighup, targets, shutdown.clone()));
    }
}
