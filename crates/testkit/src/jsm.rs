//! `FakeJsmOps`: a stand-in for Jira Service Management Operations' REST API
//! (`https://api.atlassian.com/jsm/ops/api/{cloudId}/v1/...`), the schedules and who is on call
//! in them, over HTTPS with its own throwaway CA.
//!
//! What it models, after Atlassian's documentation: Basic `email:api_token` authentication (401
//! without it, or for a token without the ops scope), the site's cloud id in the path (404 for
//! another site), schedules by id (404 for an unknown one) readable only by their readers (403
//! for others), `on-calls` with `flat=true` (the account ids of every user on call) or
//! `flat=false` (participants: users, and teams with their users), and fault knobs: the next
//! calls answered with a status (429 with or without `Retry-After`, 5xx) and a latency.
//!
//! # Layout
//! - `model`: the accounts, schedules and the call log.
//! - `serve`: the HTTP handler.

mod model;
mod serve;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

pub use model::{JsmAccount, JsmCall, JsmSchedule, OnCallTeam};
use serve::{Fault, State};

/// How to start a [`FakeJsmOps`].
#[derive(Clone, Debug)]
pub struct FakeJsmOptions {
    /// The site's cloud id: calls for another id answer 404.
    pub cloud_id: String,
    /// Who may call the API.
    pub accounts: Vec<JsmAccount>,
    pub schedules: Vec<JsmSchedule>,
}

impl Default for FakeJsmOptions {
    fn default() -> Self {
        Self {
            cloud_id: "0f8e5b1c-6b7a-4c0e-9d3b-2a1f4e5d6c7b".into(),
            accounts: Vec::new(),
            schedules: Vec::new(),
        }
    }
}

/// A running fake; dropping it stops the server.
pub struct FakeJsmOps {
    state: Arc<Mutex<State>>,
    url: String,
    ca_pem: String,
    handle: axum_server::Handle<SocketAddr>,
    server: Mutex<Option<JoinHandle<std::io::Result<()>>>>,
}

impl FakeJsmOps {
    /// Binds `127.0.0.1:0` and serves HTTPS for `localhost`. Must run inside a Tokio runtime.
    pub async fn start(options: FakeJsmOptions) -> std::io::Result<Self> {
        crate::pki::install_crypto_provider();
        let web = crate::pki::WebPki::localhost().map_err(std::io::Error::other)?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State::new(options)));
        let app = serve::router(Arc::clone(&state)).into_make_service();
        let config = axum_server::tls_rustls::RustlsConfig::from_pem(
            web.server().cert_pem().into_bytes(),
            web.server().key_pem().into_bytes(),
        )
        .await?;
        let handle = axum_server::Handle::new();
        // TCP_NODELAY, as real front ends set it (see the Jira fake).
        let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
            .acceptor(axum_server::accept::NoDelayAcceptor::new());
        let server = axum_server::from_tcp(listener)?
            .acceptor(acceptor)
            .handle(handle.clone());
        let server = tokio::spawn(server.serve(app));
        Ok(Self {
            state,
            url: format!("https://localhost:{port}"),
            ca_pem: web.ca_pem(),
            handle,
            server: Mutex::new(Some(server)),
        })
    }

    /// Stops accepting and closes connections.
    pub async fn shutdown(&self) {
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

    /// The API's base URL (what `api_url` points at), without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CA that signed the HTTPS certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces who is on call in schedule `id` (users directly).
    pub fn set_on_call(&self, id: &str, users: &[&str]) {
        if let Some(schedule) = self.state().schedule_mut(id) {
            schedule.on_call = users.iter().map(|u| (*u).to_owned()).collect();
            schedule.teams.clear();
        }
    }

    /// The next `times` calls answer `status` (with `Retry-After: retry_after` seconds when set)
    /// before anything else is looked at.
    pub fn fail_next(&self, times: usize, status: u16, retry_after: Option<u64>) {
        self.state().faults.push(Fault {
            times,
            status,
            retry_after,
        });
    }

    /// Every call answers this much later.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<JsmCall> {
        self.state().calls.clone()
    }

    /// How many calls asked who is on call in schedule `id`.
    pub fn on_call_reads(&self, id: &str) -> usize {
        let suffix = format!("/schedules/{id}/on-calls");
        self.state()
            .calls
            .iter()
            .filter(|c| c.path.ends_with(&suffix))
            .count()
    }
}
