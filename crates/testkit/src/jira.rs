//! `FakeJira`: a faithful stand-in for Jira Cloud's REST API v2 (and, on request, Jira Data
//! Center), served over real sockets, plain HTTP or HTTPS with its own throwaway CA.
//!
//! It models what the plugin depends on and what tends to break it: Basic/Bearer auth and
//! per-user permissions, projects, a configurable workflow with Jira-numbered global transitions,
//! issues with entity properties, comments, labels and a changelog (embedded: the newest 100,
//! newest first; paged: oldest first), the site's field, status and issue-type lists, Jira's
//! validation messages, the removed `/search` (410) and the eventually consistent
//! `/search/jql`, signed at-least-once webhooks, fault knobs (latency, 5xx, 429, dropped and
//! duplicated webhooks, search lag) driven by a seeded RNG, and an opt-in rate limit.
//!
//! # Layout
//! - [`model`]: public vocabulary (options parts, users, snapshots, logs, errors).
//! - `store`: the in-memory state, writes and the lagging search index.
//! - `fields`: Jira's rules and messages for single fields, and the validated writes.
//! - `validate_create`, `validate_edit`: whole `POST issue` and `PUT issue` bodies.
//! - `render`: REST v2 JSON shapes.
//! - `api`: the HTTP handler: base path, faults, call log, webhook hand-off.
//! - `auth`: Basic and Bearer authentication.
//! - `req`: one decoded call (query, body, path parameters) and the decoding helpers.
//! - `routes`: the table of REST resources and the dispatch by method and path.
//! - `endpoints`: the REST resources (identity, projects, issues, comments, transitions, properties).
//! - `catalog`: the site's fields, statuses and issue types.
//! - `changelog`: the paged changelog of an issue (oldest first).
//! - `groups`: a user's groups and a group's members.
//! - `watchers`: an issue's watchers (the site may turn watching off).
//! - `users`: user search (by display-name or visible e-mail prefix; empty without "Browse users
//!   and groups").
//! - `adf`: rich text as v3 documents.
//! - `search`: `search/jql` and the classic `search`.
//! - `jql`: the JQL subset.
//! - `webhook`: payloads and delivery.
//! - [`faults`]: runtime fault knobs.
//! - `rate_limit`: the opt-in token bucket of Jira Cloud's burst limit.
//! - `tls`: the CA and server certificate.

mod adf;
mod api;
mod auth;
mod catalog;
mod changelog;
mod endpoints;
mod errors;
pub mod faults;
mod fields;
mod groups;
mod jql;
pub mod model;
mod rate_limit;
mod render;
mod req;
mod routes;
mod search;
mod store;
mod tls;
mod users;
mod validate_create;
mod validate_edit;
mod watchers;
mod webhook;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum_server::accept::NoDelayAcceptor;
use serde_json::Value;
use tokio::task::JoinHandle;

pub use faults::{Faults, HeldReply};
pub use model::{
    ChangeItemSnapshot, CommentSnapshot, Delivery, Deployment, FakeJiraError, HistorySnapshot,
    IssueSnapshot, JiraUser, Permission, ProjectSpec, RecordedCall, StatusCategory, StatusSpec,
    WebhookTarget,
};
pub use rate_limit::RateLimit;
pub use webhook::sign_webhook_body;

use api::Shared;
use fields::FieldEdit;
use rate_limit::Limiter;
use store::{Limits, Store, StoreConfig};
use webhook::{Dispatcher, OutgoingEvent, RetryPolicy};

/// Streams one HTTP/2 connection carries at once, as a front end caps them: the least RFC 9113
/// asks servers to allow (hyper's own default, 200, is kinder than a front end need be). Calls
/// past it queue in the connection until a client opens another.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 100;

/// How to start a [`FakeJira`]. `Default` gives a Cloud site with project `PROJ`, issue types
/// Task/Story/Bug, the Pending/Approved/Denied/Expired workflow and the plugin user
/// `plugin@example.com` with token `xyz`.
#[derive(Clone, Debug)]
pub struct FakeJiraOptions {
    /// HTTPS with a fresh CA (`https://localhost:<port>`), else plain `http://127.0.0.1:<port>`.
    pub tls: bool,
    pub deployment: Deployment,
    /// A path prefix such as `/jira`, for sites served below the host root.
    pub base_path: String,
    pub projects: Vec<ProjectSpec>,
    pub issue_types: Vec<String>,
    pub statuses: Vec<StatusSpec>,
    /// The status of new issues (by name); the first status when `None`.
    pub initial_status: Option<String>,
    /// The plugin's own user. Always present, first in the user list.
    pub plugin_user: JiraUser,
    /// Further users (reviewers, attackers, …).
    pub users: Vec<JiraUser>,
    /// Custom field ids (e.g. `customfield_10050`) on the create and edit screens.
    pub custom_fields: Vec<String>,
    /// Page size cap of `GET issue/{id}/comment` (Cloud: 50 by default, 5000 at most).
    pub comment_page_size: usize,
    /// Histories returned by `expand=changelog` (Cloud: 100).
    pub changelog_cap: usize,
    /// Longest accepted summary in UTF-16 units. 254 refuses 255+ like the plugin assumes;
    /// set 255 for what Jira's `SummarySystemField` probably enforces.
    pub summary_max_chars: usize,
    /// Delay before a write shows up in JQL search.
    pub search_lag: Duration,
    /// Seed of the RNG behind webhook identifiers and the drop/duplicate knobs.
    pub rng_seed: u64,
    pub webhook_max_attempts: u32,
    /// First retry delay; doubles on each further retry.
    pub webhook_retry_backoff: Duration,
    pub webhook_timeout: Duration,
    /// Jira Cloud's burst limit over every REST call; none when `None` (see
    /// [`FakeJira::set_rate_limit`]).
    pub rate_limit: Option<RateLimit>,
    /// The site's cloud id, served at `/_edge/tenant_info` (Cloud only).
    pub cloud_id: String,
}

impl Default for FakeJiraOptions {
    fn default() -> Self {
        Self {
            tls: false,
            deployment: Deployment::Cloud,
            base_path: String::new(),
            projects: vec![ProjectSpec::new("PROJ", "The Project")],
            issue_types: vec!["Task".into(), "Story".into(), "Bug".into()],
            statuses: StatusSpec::defaults(),
            initial_status: None,
            plugin_user: JiraUser::new("557058:plugin-0001", "Teleport Access Plugin")
                .with_email("plugin@example.com")
                .with_token("xyz"),
            users: Vec::new(),
            custom_fields: Vec::new(),
            comment_page_size: 50,
            changelog_cap: 100,
            summary_max_chars: 254,
            search_lag: Duration::ZERO,
            rng_seed: 1,
            webhook_max_attempts: 5,
            webhook_retry_backoff: Duration::from_millis(50),
            webhook_timeout: Duration::from_secs(10),
            rate_limit: None,
            cloud_id: "0f8e5b1c-6b7a-4c0e-9d3b-2a1f4e5d6c7b".into(),
        }
    }
}

/// A running fake Jira. Dropping it stops the server and the webhook deliveries.
pub struct FakeJira {
    shared: Arc<Shared>,
    addr: SocketAddr,
    url: String,
    ca_pem: Option<String>,
    handle: axum_server::Handle<SocketAddr>,
    server: Mutex<Option<JoinHandle<std::io::Result<()>>>>,
}

fn normalize_base_path(path: &str) -> String {
    let trimmed = path.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// The plugin's user first, then the others; account ids must be unique.
fn site_users(
    plugin_user: JiraUser,
    others: Vec<JiraUser>,
) -> Result<Vec<JiraUser>, FakeJiraError> {
    let mut users = vec![plugin_user];
    for user in others {
        if users.iter().any(|u| u.account_id == user.account_id) {
            return Err(FakeJiraError::Options(format!(
                "duplicate account id {}",
                user.account_id
            )));
        }
        users.push(user);
    }
    Ok(users)
}

/// The store, the fault knobs and the webhook dispatcher the handler and the test side share.
fn shared_state(
    options: FakeJiraOptions,
    url: String,
    base_path: String,
) -> Result<Shared, FakeJiraError> {
    let users = site_users(options.plugin_user, options.users)?;
    let faults = Arc::new(Faults::new(options.rng_seed, options.search_lag));
    let store = Store::new(StoreConfig {
        deployment: options.deployment,
        base_url: url,
        projects: options.projects,
        issue_types: options.issue_types,
        statuses: options.statuses,
        initial_status: options.initial_status,
        users,
        custom_fields: options.custom_fields,
        limits: Limits {
            comment_page_size: options.comment_page_size.max(1),
            changelog_cap: options.changelog_cap,
            summary_max_chars: options.summary_max_chars,
        },
        faults: Arc::clone(&faults),
    })
    .map_err(FakeJiraError::Options)?;
    let webhooks = Arc::new(Dispatcher::new(
        tokio::runtime::Handle::current(),
        RetryPolicy {
            max_attempts: options.webhook_max_attempts.max(1),
            backoff: options.webhook_retry_backoff,
            timeout: options.webhook_timeout,
        },
        Arc::clone(&faults),
    ));
    let limiter = Limiter::default();
    limiter.set(options.rate_limit);
    Ok(Shared {
        store: Mutex::new(store),
        faults,
        webhooks,
        limiter,
        base_path,
        deployment: options.deployment,
        cloud_id: options.cloud_id,
    })
}

impl FakeJira {
    /// Binds `127.0.0.1:0` and starts serving. Must run inside a Tokio runtime.
    pub async fn start(options: FakeJiraOptions) -> Result<Self, FakeJiraError> {
        // Only ring is compiled in; another test may have installed it already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base_path = normalize_base_path(&options.base_path);
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let pki = if options.tls {
            Some(tls::generate().map_err(|e| FakeJiraError::Tls(e.to_string()))?)
        } else {
            None
        };
        // `localhost` for TLS so the certificate name matches what clients verify. Accepted
        // connections get TCP_NODELAY, as Jira's front ends (and Go's servers) set it: without
        // it, an HTTP/2 answer written after a small frame waits out the client's delayed ACK.
        let origin = match pki {
            Some(_) => format!("https://localhost:{}", addr.port()),
            None => format!("http://127.0.0.1:{}", addr.port()),
        };
        let url = format!("{origin}{base_path}");
        let shared = Arc::new(shared_state(options, url.clone(), base_path)?);
        let app = api::router(Arc::clone(&shared)).into_make_service();
        let handle = axum_server::Handle::new();
        let ca_pem = pki.as_ref().map(|p| p.ca_pem.clone());
        let server = match pki {
            Some(pki) => {
                let config = axum_server::tls_rustls::RustlsConfig::from_pem(
                    pki.cert_pem.into_bytes(),
                    pki.key_pem.into_bytes(),
                )
                .await?;
                let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
                    .acceptor(NoDelayAcceptor::new());
                let mut server = axum_server::from_tcp(listener)?
                    .acceptor(acceptor)
                    .handle(handle.clone());
                server
                    .http_builder()
                    .http2()
                    .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
                tokio::spawn(server.serve(app))
            }
            None => {
                let server = axum_server::from_tcp(listener)?
                    .acceptor(NoDelayAcceptor::new())
                    .handle(handle.clone());
                tokio::spawn(server.serve(app))
            }
        };
        Ok(Self {
            shared,
            addr,
            url,
            ca_pem,
            handle,
            server: Mutex::new(Some(server)),
        })
    }

    /// Stops accepting, closes connections and cancels pending webhook deliveries.
    pub async fn shutdown(&self) {
        self.shared.webhooks.shutdown();
        self.handle.shutdown();
        let server = self
            .server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(server) = server {
            let _ = server.await;
        }
    }

    // ----- where it is ---------------------------------------------------------------------

    /// Base URL including the base path, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn deployment(&self) -> Deployment {
        self.shared.deployment
    }

    /// The CA that signed the HTTPS certificate (PEM), when started with `tls: true`.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Writes the CA to a file, e.g. for `SSL_CERT_FILE` in a child process.
    pub fn write_ca_file(&self, path: impl AsRef<Path>) -> Result<(), FakeJiraError> {
        let pem = self
            .ca_pem
            .as_deref()
            .ok_or_else(|| FakeJiraError::Options("FakeJira was started without TLS".into()))?;
        std::fs::write(path, pem)?;
        Ok(())
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    // ----- rate limit ------------------------------------------------------------------------

    /// Limits every REST call from now on (`None` lifts the limit). The bucket starts full.
    /// A refused call is answered 429 and not carried out; it is in the call log with status 429.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.shared.limiter.set(limit);
    }

    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.shared.limiter.limit()
    }

    /// Calls the rate limit refused so far (the fault knob's 429s are not counted).
    pub fn rate_limited_calls(&self) -> usize {
        self.shared.limiter.refused()
    }

    // ----- users ---------------------------------------------------------------------------

    pub fn plugin_user(&self) -> JiraUser {
        self.shared.store().users[0].clone()
    }

    /// Turns the site's "Allow users to watch issues" option on or off.
    pub fn set_watching_enabled(&self, enabled: bool) {
        self.shared.store().watching_enabled = enabled;
    }

    /// Adds a user, or replaces the one with the same account id.
    pub fn add_user(&self, user: JiraUser) {
        let mut store = self.shared.store();
        match store
            .users
            .iter()
            .position(|u| u.account_id == user.account_id)
        {
            Some(idx) => store.users[idx] = user,
            None => store.users.push(user),
        }
    }

    pub fn user(&self, account_id: &str) -> Option<JiraUser> {
        self.shared.store().user(account_id).cloned()
    }

    pub fn set_user_permissions(
        &self,
        account_id: &str,
        permissions: impl IntoIterator<Item = Permission>,
    ) -> Result<(), FakeJiraError> {
        let mut store = self.shared.store();
        let idx = store
            .user_index(account_id)
            .ok_or_else(|| FakeJiraError::UnknownUser(account_id.into()))?;
        store.users[idx].permissions = permissions.into_iter().collect();
        Ok(())
    }

    // ----- acting as Jira users --------------------------------------------------------------

    fn resolve(
        store: &Store,
        issue: &str,
        account_id: Option<&str>,
    ) -> Result<usize, FakeJiraError> {
        if let Some(id) = account_id
            && store.user(id).is_none()
        {
            return Err(FakeJiraError::UnknownUser(id.into()));
        }
        store
            .issue_index(issue)
            .ok_or_else(|| FakeJiraError::UnknownIssue(issue.into()))
    }

    fn transition_inner(
        &self,
        issue: &str,
        status: &str,
        account_id: &str,
        webhook: bool,
    ) -> Result<(), FakeJiraError> {
        let event = {
            let mut store = self.shared.store();
            let idx = Self::resolve(&store, issue, Some(account_id))?;
            let to = store
                .status_index(status)
                .ok_or_else(|| FakeJiraError::UnknownStatus(status.into()))?;
            if store.issues[idx].status == to {
                return Err(FakeJiraError::SameStatus {
                    issue: issue.into(),
                    status: status.into(),
                });
            }
            let change = store.change_status(idx, to, account_id, false);
            store.updated_event(
                idx,
                account_id,
                "issue_generic",
                change.history.as_ref(),
                None,
            )
        };
        if webhook {
            self.shared.webhooks.dispatch(event);
        }
        Ok(())
    }

    /// A user moves the card: status change, changelog history by that user, webhook.
    pub fn transition_as(
        &self,
        issue: &str,
        status: &str,
        account_id: &str,
    ) -> Result<(), FakeJiraError> {
        self.transition_inner(issue, status, account_id, true)
    }

    /// Like [`FakeJira::transition_as`], but the webhook is lost.
    pub fn transition_as_without_webhook(
        &self,
        issue: &str,
        status: &str,
        account_id: &str,
    ) -> Result<(), FakeJiraError> {
        self.transition_inner(issue, status, account_id, false)
    }

    /// An anonymous change of status (an automation rule acting as nobody): a changelog history
    /// without an author, and the webhook is lost.
    pub fn transition_anonymously_without_webhook(
        &self,
        issue: &str,
        status: &str,
    ) -> Result<(), FakeJiraError> {
        let mut store = self.shared.store();
        let idx = Self::resolve(&store, issue, None)?;
        let to = store
            .status_index(status)
            .ok_or_else(|| FakeJiraError::UnknownStatus(status.into()))?;
        store.change_status(idx, to, "", false);
        Ok(())
    }

    /// Changes the status behind everyone's back: no changelog, no webhook.
    pub fn set_status_silently(&self, issue: &str, status: &str) -> Result<(), FakeJiraError> {
        let mut store = self.shared.store();
        let idx = Self::resolve(&store, issue, None)?;
        let to = store
            .status_index(status)
            .ok_or_else(|| FakeJiraError::UnknownStatus(status.into()))?;
        let plugin = store.users[0].account_id.clone();
        store.change_status(idx, to, &plugin, true);
        Ok(())
    }

    /// A user comments; delivers `jira:issue_updated`/`issue_commented`. Returns the comment id.
    pub fn comment_as(
        &self,
        issue: &str,
        account_id: &str,
        body: &str,
    ) -> Result<String, FakeJiraError> {
        let (id, event) = {
            let mut store = self.shared.store();
            let idx = Self::resolve(&store, issue, Some(account_id))?;
            let comment = store
                .add_comment(idx, account_id, body)
                .map_err(|e| FakeJiraError::Refused(e.describe()))?;
            let id = store.issues[idx].comments[comment].id.to_string();
            (
                id,
                store.updated_event(idx, account_id, "issue_commented", None, Some(comment)),
            )
        };
        self.shared.webhooks.dispatch(event);
        Ok(id)
    }

    /// A user replaces the labels (anyone who can edit can do this: labels are hints, not proof).
    pub fn set_labels_as(
        &self,
        issue: &str,
        account_id: &str,
        labels: &[&str],
    ) -> Result<(), FakeJiraError> {
        let event = {
            let mut store = self.shared.store();
            let idx = Self::resolve(&store, issue, Some(account_id))?;
            let mut labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
            labels.sort();
            labels.dedup();
            store
                .edit_fields(idx, account_id, vec![FieldEdit::Labels(labels)])
                .map(|h| store.updated_event(idx, account_id, "issue_updated", Some(&h), None))
        };
        if let Some(event) = event {
            self.shared.webhooks.dispatch(event);
        }
        Ok(())
    }

    /// `account_id` drags the card up the board `n` times: `n` changelog histories (each a `Rank`
    /// change, `fieldtype: custom`, as Jira Software records them) that change nothing else. No
    /// webhooks. Enough of them push older histories, such as a status change, out of the newest
    /// 100 that `expand=changelog` embeds; `GET issue/{key}/changelog` still pages through all.
    pub fn edit_fields_n_times(
        &self,
        issue: &str,
        account_id: &str,
        n: usize,
    ) -> Result<(), FakeJiraError> {
        let mut store = self.shared.store();
        let idx = Self::resolve(&store, issue, Some(account_id))?;
        for _ in 0..n {
            store.rank_higher(idx, account_id);
        }
        Ok(())
    }

    /// Sets an entity property directly (e.g. to forge `teleportAccessRequestId`).
    pub fn set_property(&self, issue: &str, key: &str, value: Value) -> Result<(), FakeJiraError> {
        let mut store = self.shared.store();
        let idx = Self::resolve(&store, issue, None)?;
        store.issues[idx].properties.insert(key.into(), value);
        Ok(())
    }

    /// Deletes an issue: later reads answer 404 and searches stop finding it.
    pub fn delete_issue(&self, issue: &str) -> Result<(), FakeJiraError> {
        let mut store = self.shared.store();
        let idx = Self::resolve(&store, issue, None)?;
        store.issues[idx].deleted = true;
        Ok(())
    }

    // ----- reading back ----------------------------------------------------------------------

    pub fn issue(&self, id_or_key: &str) -> Option<IssueSnapshot> {
        let store = self.shared.store();
        store.issue_index(id_or_key).map(|idx| store.snapshot(idx))
    }

    /// Every live issue, in creation order.
    pub fn issues(&self) -> Vec<IssueSnapshot> {
        let store = self.shared.store();
        (0..store.issues.len())
            .filter(|&idx| !store.issues[idx].deleted)
            .map(|idx| store.snapshot(idx))
            .collect()
    }

    pub fn issues_with_property(&self, key: &str, value: &Value) -> Vec<IssueSnapshot> {
        self.issues()
            .into_iter()
            .filter(|i| i.properties.get(key) == Some(value))
            .collect()
    }

    /// Issues created through the API (deleted ones included).
    pub fn created_issue_count(&self) -> usize {
        self.shared.store().issues.len()
    }

    /// Writes (POST, PUT, DELETE) in arrival order, faulted and refused ones included.
    pub fn call_log(&self) -> Vec<RecordedCall> {
        self.all_calls()
            .into_iter()
            .filter(|c| c.method != "GET")
            .collect()
    }

    /// Every API call in arrival order.
    pub fn all_calls(&self) -> Vec<RecordedCall> {
        self.shared.store().calls.clone()
    }

    // ----- webhooks --------------------------------------------------------------------------

    pub fn register_webhook(&self, target: WebhookTarget) -> Result<(), FakeJiraError> {
        self.shared.webhooks.register(target)
    }

    pub fn clear_webhooks(&self) {
        self.shared.webhooks.clear();
    }

    /// Every delivery attempt so far, in completion order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.webhooks.deliveries()
    }

    /// Webhooks the drop knob swallowed.
    pub fn dropped_webhook_count(&self) -> usize {
        self.shared.webhooks.dropped()
    }

    /// Waits until no delivery (or retry) is pending. False if `timeout` passed first.
    pub async fn wait_webhooks_idle(&self, timeout: Duration) -> bool {
        self.shared.webhooks.wait_idle(timeout).await
    }

    /// Sends exactly `body` with exactly `headers` (nothing added: no signature, no identifier)
    /// to the most recently registered webhook, once. Returns the receiver's status.
    pub async fn deliver_raw_webhook(
        &self,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<u16, FakeJiraError> {
        let headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        self.shared.webhooks.send_raw(body.into(), headers).await
    }

    /// The `issue_generic` payload a status change of `issue` by `account_id` would carry now,
    /// with the latest status history as its changelog: a genuine body for tests to tamper with.
    pub fn status_webhook_payload(
        &self,
        issue: &str,
        account_id: &str,
    ) -> Result<Value, FakeJiraError> {
        let store = self.shared.store();
        let idx = Self::resolve(&store, issue, Some(account_id))?;
        let history = store.issues[idx]
            .histories
            .iter()
            .rev()
            .find(|h| h.items.iter().any(|i| i.field == "status"))
            .cloned();
        let event: OutgoingEvent =
            store.updated_event(idx, account_id, "issue_generic", history.as_ref(), None);
        serde_json::from_slice(&event.body).map_err(|e| FakeJiraError::Delivery(e.to_string()))
    }
}

impl Drop for FakeJira {
    fn drop(&mut self) {
        self.shared.webhooks.shutdown();
        self.handle.shutdown();
    }
}
