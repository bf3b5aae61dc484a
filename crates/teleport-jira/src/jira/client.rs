//! The Jira REST API v2 client: the handful of endpoints the plugin needs, with authentication,
//! and every call paced by one [`Governor`] for the process, so that Jira's push-back (429,
//! `Retry-After`) slows every call down rather than only the one that got it.
//!
//! TLS is verified against the system trust store, which honours `SSL_CERT_FILE`/`SSL_CERT_DIR`
//! as Go programs do, and `HTTPS_PROXY`/`NO_PROXY` are followed; so a private CA or a proxy needs
//! no configuration of ours.

use std::sync::Arc;
use std::time::Duration;

mod bulk;

use super::bulk_create::Creations;
use super::connections::{Connections, MakeClient};
use super::error::JiraError;
use super::governor::{Answer, Governor, Permit, Priority};
use super::same_name;
use super::types::{
    ChangelogPage, Comment, CommentPage, CreatedIssue, GroupRef, Issue, IssueInput,
    IssueTypeStatuses, Permissions, Project, REQUEST_ID_PROPERTY, SearchHit, SearchPage, User,
    UserWithGroups,
};
use crate::http_common::{BodyError, escape_path};
use crate::metrics::{CallOutcome, Metrics};
use crate::secret::Secret;
use rand::Rng;
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;

/// Per-request timeout, as in the Go plugin.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per call before the error goes back to the caller (which retries later as a whole).
const MAX_ATTEMPTS: u32 = 4;
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
/// The longest `Retry-After` waited inside one call; longer waits are left to the caller's schedule.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// The largest answer read: far above any page the plugin asks for (100 issues, histories or
/// comments), far below what would hurt the process.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// The most of an error answer kept for the log.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Jira Cloud's header saying the rate-limit budget is nearly spent.
const NEAR_LIMIT_HEADER: &str = "x-ratelimit-nearlimit";
const LIMIT_HEADER: &str = "x-ratelimit-limit";

/// Which failures a call may be repeated after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Reads and other idempotent calls: any transient failure.
    Always,
    /// Creating issues and comments, moving issues: repeating a call Jira may have carried out
    /// would do it twice, so only failures it surely did not act on are retried here; the rest go
    /// back to the reconcile step, which checks Jira before trying again.
    IfNotProcessed,
}

/// How the plugin authenticates to Jira.
#[derive(Clone, Debug)]
pub enum JiraAuth {
    /// Jira Cloud e-mail + API token, or a Data Center login + password.
    Basic { username: String, token: Secret },
    /// A Data Center personal access token.
    Bearer { token: Secret },
}

impl JiraAuth {
    /// The authentication `[jira]` asks for.
    pub fn from_config(jira: &crate::config::JiraConfig) -> Self {
        match jira.auth {
            crate::config::JiraAuthMethod::Basic => Self::Basic {
                username: jira.username.clone(),
                token: jira.api_token.clone(),
            },
            crate::config::JiraAuthMethod::Bearer => Self::Bearer {
                token: jira.api_token.clone(),
            },
        }
    }
}

#[derive(Clone, Debug)]
pub struct JiraClientOptions {
    pub base_url: String,
    pub auth: JiraAuth,
    /// The most calls in flight at once, across all requests (the governor may allow fewer).
    pub max_concurrent_calls: usize,
    /// The most calls started per second, across all requests; `None`: paced only by Jira's
    /// push-back.
    pub max_calls_per_second: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct JiraClient {
    connections: Arc<Connections>,
    base_url: String,
    /// Shared by every clone, so a rotated token reaches them all.
    auth: Arc<arc_swap::ArcSwap<JiraAuth>>,
    governor: Arc<Governor>,
    /// Set for look-ups nobody waits on; otherwise each call's own priority.
    priority: Option<Priority>,
    metrics: Arc<Metrics>,
    /// Creations waiting for a call to carry them (see [`super::bulk_create`]).
    creations: Arc<Creations>,
}

tokio::task_local! {
    /// Set while a periodic scan's step runs (see [`as_scan`]).
    static SCANNING: ();
}

/// Runs `work` (a step a periodic scan asked for) with its Jira calls at [`Priority::Scan`]. A
/// task-local rather than a parameter: the step reaches Jira through many layers, and only the
/// governor cares who asked. Not an `async fn`: one would keep a copy of `work`'s room beside the
/// scope that runs it, doubling every step task's size (4.4 KB more per step in flight).
pub fn as_scan<F: std::future::Future>(work: F) -> impl std::future::Future<Output = F::Output> {
    SCANNING.scope((), work)
}

impl JiraClient {
    pub fn new(options: JiraClientOptions) -> Result<Self, JiraError> {
        let make: MakeClient = Arc::new(|| {
            crate::http_common::client_builder()
                .timeout(REQUEST_TIMEOUT)
                .pool_max_idle_per_host(100)
                .user_agent(concat!("teleport-jira/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|err| JiraError::Other(format!("building the Jira HTTP client: {err}")))
        });
        Ok(Self {
            connections: Arc::new(Connections::new(options.max_concurrent_calls, make)?),
            base_url: options.base_url.trim_end_matches('/').to_owned(),
            auth: Arc::new(arc_swap::ArcSwap::from_pointee(options.auth)),
            governor: Arc::new(Governor::new(
                options.max_concurrent_calls,
                options.max_calls_per_second,
            )),
            priority: None,
            metrics: Arc::default(),
            creations: Arc::default(),
        })
    }

    /// The same client (same governor) whose calls wait behind creates and decisions: for
    /// repair look-ups and scans.
    pub fn in_background(&self) -> Self {
        Self {
            priority: Some(Priority::Background),
            ..self.clone()
        }
    }

    /// The governor every clone shares (for tests and status).
    pub fn governor(&self) -> &Governor {
        &self.governor
    }

    fn priority_of(&self, call: &'static str) -> Priority {
        let priority = self.priority.unwrap_or(match call {
            "create_issue" | "create_issues" => Priority::Create,
            "search" => Priority::Background,
            _ => Priority::Decision,
        });
        // A scan's step waits behind everything but the creation of a missing issue.
        match SCANNING.try_with(|_| ()) {
            Ok(()) if priority != Priority::Create => Priority::Scan,
            _ => priority,
        }
    }

    /// Uses `token` from now on (a rotated API token or personal access token).
    pub fn replace_token(&self, token: Secret) {
        let next = match &**self.auth.load() {
            JiraAuth::Basic { username, .. } => JiraAuth::Basic {
                username: username.clone(),
                token,
            },
            JiraAuth::Bearer { .. } => JiraAuth::Bearer { token },
        };
        self.auth.store(Arc::new(next));
    }

    /// Records every call attempt (duration, errors, Jira's last answer) in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self
            .connections
            .first()
            .request(method, format!("{}/rest/api/2/{path}", self.base_url))
            .header(reqwest::header::ACCEPT, "application/json");
        match &**self.auth.load() {
            JiraAuth::Basic { username, token } => {
                builder.basic_auth(username, Some(token.expose()))
            }
            JiraAuth::Bearer { token } => builder.bearer_auth(token.expose()),
        }
    }

    /// Sends the request `build` makes, retrying transient failures (for non-idempotent calls,
    /// only those Jira surely did not act on); returns the successful response.
    async fn send(
        &self,
        call: &'static str,
        retry: Retry,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<reqwest::Response, JiraError> {
        self.send_from(None, call, retry, None, build).await
    }

    /// [`JiraClient::send`], whose first attempt goes out on `first` when given (a slot already
    /// granted), and which returns an answer with status `accepted` as a success.
    async fn send_from(
        &self,
        mut first: Option<Permit<'_>>,
        call: &'static str,
        retry: Retry,
        accepted: Option<u16>,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<reqwest::Response, JiraError> {
        let priority = self.priority_of(call);
        let mut delay = FIRST_RETRY_DELAY;
        let mut attempt = 1;
        loop {
            // The slot is held only while the call is on the wire, never while waiting to retry.
            let permit = match first.take() {
                Some(permit) => permit,
                None => self.governor.acquire(priority).await,
            };
            // Boxed while on the wire: a request in flight is over a kilobyte, and every future
            // that calls Jira would otherwise keep that room for its whole life.
            let (result, answer) = Box::pin(self.send_once(call, build(), accepted)).await;
            permit.answered(answer);
            let err = match result {
                Err(err)
                    if err.is_transient()
                        && attempt < MAX_ATTEMPTS
                        && (retry == Retry::Always || err.surely_not_processed()) =>
                {
                    err
                }
                other => return other,
            };
            let wait = match (answer, err.retry_after()) {
                (_, Some(wait)) if wait > MAX_RETRY_AFTER => return Err(err),
                // The governor holds every call back until Jira is ready again.
                (Answer::PushedBack { .. }, _) => Duration::ZERO,
                (_, Some(wait)) => wait,
                (_, None) => jittered(delay),
            };
            tracing::debug!(error = %err, attempt, wait_ms = wait.as_millis() as u64, "Retrying Jira call");
            tokio::time::sleep(wait).await;
            delay *= 2;
            attempt += 1;
        }
    }

    async fn send_once(
        &self,
        call: &'static str,
        request: RequestBuilder,
        accepted: Option<u16>,
    ) -> (Result<reqwest::Response, JiraError>, Answer) {
        let started = std::time::Instant::now();
        let result = self.attempt(request, accepted).await;
        let outcome = match &result {
            Ok(response) if response.status().is_success() => CallOutcome::Succeeded,
            // An accepted error status (a bulk create that created nothing) still failed.
            Ok(response) => CallOutcome::Failed {
                code: response.status().as_u16().to_string(),
                answered: true,
            },
            Err(err) => CallOutcome::Failed {
                code: match (err, err.status()) {
                    (_, Some(status)) => status.to_string(),
                    (JiraError::Certificate { .. }, None) => "certificate".to_owned(),
                    (_, None) => "transport".to_owned(),
                },
                answered: err.status().is_some_and(|status| status < 500),
            },
        };
        self.metrics.jira_call(call, started.elapsed(), outcome);
        let answer = answer_of(&result);
        (result, answer)
    }

    async fn attempt(
        &self,
        request: RequestBuilder,
        accepted: Option<u16>,
    ) -> Result<reqwest::Response, JiraError> {
        let request = request.build().map_err(|err| send_error(&err))?;
        let connection = self.connections.pick();
        let response = connection
            .client
            .execute(request)
            .await
            .map_err(|err| send_error(&err))?;
        let status = response.status();
        if status.is_success() || accepted == Some(status.as_u16()) {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(crate::http_common::parse_retry_after);
        // An error body is only ever shown in a log line: what fits is enough.
        let body = read_capped(response, MAX_ERROR_BODY)
            .await
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        Err(JiraError::from_body(status.as_u16(), &body, retry_after))
    }

    async fn json<T: DeserializeOwned>(
        &self,
        call: &'static str,
        retry: Retry,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<T, JiraError> {
        self.json_from(None, call, retry, build).await
    }

    /// [`JiraClient::json`], whose first attempt goes out on `first` when given.
    async fn json_from<T: DeserializeOwned>(
        &self,
        first: Option<Permit<'_>>,
        call: &'static str,
        retry: Retry,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<T, JiraError> {
        let response = self.send_from(first, call, retry, None, build).await?;
        let bytes = read_capped(response, MAX_BODY).await?;
        serde_json::from_slice(&bytes).map_err(|err| JiraError::Decode(err.to_string()))
    }

    /// `GET myself`: proves the URL points at Jira and the credentials work. Like the Go plugin it
    /// only requires a JSON answer, not any particular body.
    pub async fn myself(&self) -> Result<(), JiraError> {
        // The Go plugin's hints, kept inside the status error so callers can still tell 401 from 404.
        let response = self
            .send("myself", Retry::Always, || {
                self.request(Method::GET, "myself")
            })
            .await
            .map_err(|err| match err {
                JiraError::Status {
                    status,
                    details,
                    retry_after,
                } => {
                    let hint = match status {
                        404 => "perhaps Jira URL is not configured well; ",
                        401 | 403 => "perhaps Jira credentials are not configured well; ",
                        _ => "",
                    };
                    JiraError::Status {
                        status,
                        details: format!("got {status} from API endpoint, {hint}{details}"),
                        retry_after,
                    }
                }
                other => other,
            })?;
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        if !is_json {
            return Err(JiraError::Other(
                "got non-json response from API endpoint, perhaps Jira URL is not configured well"
                    .into(),
            ));
        }
        Ok(())
    }

    /// `GET myself` as a user: whose account id (Cloud) or name (Data Center) tells which Jira
    /// this is.
    pub async fn myself_user(&self) -> Result<User, JiraError> {
        self.json("myself", Retry::Always, || {
            self.request(Method::GET, "myself")
        })
        .await
    }

    /// Adds `identity` (the Cloud account id, or the Data Center username) to the issue's
    /// watchers; adding a watcher twice changes nothing, so the call is repeated freely.
    pub async fn add_watcher(&self, issue_id: &str, identity: &str) -> Result<(), JiraError> {
        let path = format!("issue/{}/watchers", escape_path(issue_id));
        let body = serde_json::Value::String(identity.to_owned());
        self.send("add_watcher", Retry::Always, || {
            self.request(Method::POST, &path).json(&body)
        })
        .await
        .map(drop)
    }

    /// Sets the issue's reporter by an edit (`reporter` is `{"accountId"}` or `{"name"}`): the
    /// same value twice changes nothing, so the call is repeated freely.
    pub async fn set_reporter(
        &self,
        issue_id: &str,
        reporter: serde_json::Value,
    ) -> Result<(), JiraError> {
        let path = format!("issue/{}", escape_path(issue_id));
        let body = serde_json::json!({ "fields": { "reporter": reporter } });
        self.send("set_reporter", Retry::Always, || {
            self.request(Method::PUT, &path).json(&body)
        })
        .await
        .map(drop)
    }

    pub async fn project(&self, key: &str) -> Result<Project, JiraError> {
        let path = format!("project/{}", escape_path(key));
        self.json("project", Retry::Always, || {
            self.request(Method::GET, &path)
        })
        .await
    }

    /// The status names of the workflow that issues of `issue_type` follow in `project` (of
    /// every issue type when that one is not listed).
    pub async fn project_statuses(
        &self,
        project: &str,
        issue_type: &str,
    ) -> Result<Vec<String>, JiraError> {
        let path = format!("project/{}/statuses", escape_path(project));
        let types: Vec<IssueTypeStatuses> = self
            .json("project_statuses", Retry::Always, || {
                self.request(Method::GET, &path)
            })
            .await?;
        let matching: Vec<&IssueTypeStatuses> = types
            .iter()
            .filter(|t| same_name(&t.name, issue_type))
            .collect();
        let chosen = if matching.is_empty() {
            types.iter().collect()
        } else {
            matching
        };
        let mut names: Vec<String> = chosen
            .iter()
            .flat_map(|t| t.statuses.iter().map(|s| s.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub async fn my_permissions(
        &self,
        project: &str,
        permissions: &[&str],
    ) -> Result<Permissions, JiraError> {
        let permissions = permissions.join(",");
        self.json("my_permissions", Retry::Always, || {
            self.request(Method::GET, "mypermissions").query(&[
                ("permissions", permissions.as_str()),
                ("projectKey", project),
            ])
        })
        .await
    }

    pub async fn create_issue(&self, input: &IssueInput) -> Result<CreatedIssue, JiraError> {
        let body = serde_json::to_vec(input)
            .map_err(|err| JiraError::Other(format!("encoding the issue: {err}")))?;
        if self.priority_of("create_issue") == Priority::Create && self.creations.bulk_served() {
            self.create_in_turn(body).await
        } else {
            self.create_one(None, body).await
        }
    }

    /// `POST issue` with `body`, on `permit` when one was granted already.
    async fn create_one(
        &self,
        permit: Option<Permit<'_>>,
        body: Vec<u8>,
    ) -> Result<CreatedIssue, JiraError> {
        self.json_from(permit, "create_issue", Retry::IfNotProcessed, || {
            self.json_request(Method::POST, "issue", body.clone())
        })
        .await
    }

    /// A request with a JSON body already encoded.
    fn json_request(&self, method: Method, path: &str, body: Vec<u8>) -> RequestBuilder {
        self.request(method, path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    }

    /// The issue with its status, changelog, comments, available transitions and the request-id
    /// property: everything a decision needs, in one round trip. Reads the issue itself, not the
    /// search index, so it sees a fresh write at once.
    pub async fn issue(&self, id: &str) -> Result<Issue, JiraError> {
        let path = format!("issue/{}", escape_path(id));
        self.json("get_issue", Retry::Always, || {
            self.request(Method::GET, &path).query(&[
                ("expand", "changelog,transitions"),
                ("fields", "status,labels,comment"),
                ("properties", REQUEST_ID_PROPERTY),
            ])
        })
        .await
    }

    /// The names of the Jira groups `user` belongs to: `GET user/groups?accountId=` on Cloud,
    /// `GET user?username=&expand=groups` on Data Center (where users have no account id).
    pub async fn user_groups(&self, user: &User) -> Result<Vec<String>, JiraError> {
        if let Some(account_id) = user.account_id.as_deref().filter(|id| !id.is_empty()) {
            let groups: Vec<GroupRef> = self
                .json("user_groups", Retry::Always, || {
                    self.request(Method::GET, "user/groups")
                        .query(&[("accountId", account_id)])
                })
                .await?;
            return Ok(groups.into_iter().map(|group| group.name).collect());
        }
        let (param, value) = match (&user.name, &user.key) {
            (Some(name), _) if !name.is_empty() => ("username", name.as_str()),
            (_, Some(key)) if !key.is_empty() => ("key", key.as_str()),
            _ => {
                return Err(JiraError::Other(
                    "the Jira user has no identity to look up".into(),
                ));
            }
        };
        let expanded: UserWithGroups = self
            .json("user_groups", Retry::Always, || {
                self.request(Method::GET, "user")
                    .query(&[(param, value), ("expand", "groups")])
            })
            .await?;
        Ok(expanded
            .groups
            .items
            .into_iter()
            .map(|group| group.name)
            .collect())
    }

    /// Users whose display name or visible e-mail starts with `query` (case-insensitive), as
    /// Jira's user search finds them: every user the plugin may see (`GET user/search`), or with
    /// `project` only those who can browse it (`GET user/viewissue/search`). Without the "Browse
    /// users and groups" global permission Jira answers with no users rather than an error.
    /// Cloud names the query `query` (and refuses `username`); Data Center names it `username`.
    /// A personal access token (bearer) is only ever Data Center's, so it asks by `username` at
    /// once; basic auth asks by `query`, then by `username` when Jira refuses that (400).
    pub async fn users_matching(
        &self,
        query: &str,
        project: Option<&str>,
    ) -> Result<Vec<User>, JiraError> {
        if matches!(&**self.auth.load(), JiraAuth::Bearer { .. }) {
            return self.user_search("username", query, project).await;
        }
        match self.user_search("query", query, project).await {
            Err(err) if err.status() == Some(400) => {
                self.user_search("username", query, project).await
            }
            other => other,
        }
    }

    async fn user_search(
        &self,
        param: &str,
        query: &str,
        project: Option<&str>,
    ) -> Result<Vec<User>, JiraError> {
        let path = match project {
            Some(_) => "user/viewissue/search",
            None => "user/search",
        };
        self.json("user_search", Retry::Always, || {
            let request = self.request(Method::GET, path).query(&[(param, query)]);
            match project {
                Some(key) => request.query(&[("projectKey", key)]),
                None => request,
            }
        })
        .await
    }

    /// Whether the Jira group `name` exists and its members can be read (`GET group/member`).
    pub async fn group_exists(&self, name: &str) -> Result<bool, JiraError> {
        let answer = self
            .send("group_members", Retry::Always, || {
                self.request(Method::GET, "group/member")
                    .query(&[("groupname", name), ("maxResults", "1")])
            })
            .await;
        match answer {
            Ok(_) => Ok(true),
            Err(err) if err.status() == Some(404) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Up to `max_results` histories of the issue from `start_at`, oldest first (Jira Cloud's
    /// paged changelog; Data Center embeds every history instead).
    pub async fn changelog_page(
        &self,
        issue_id: &str,
        start_at: usize,
        max_results: usize,
    ) -> Result<ChangelogPage, JiraError> {
        let path = format!("issue/{}/changelog", escape_path(issue_id));
        self.json("get_changelog", Retry::Always, || {
            self.request(Method::GET, &path)
                .query(&[("startAt", start_at), ("maxResults", max_results)])
        })
        .await
    }

    pub async fn add_comment(&self, issue_id: &str, body: &str) -> Result<(), JiraError> {
        let path = format!("issue/{}/comment", escape_path(issue_id));
        let payload = serde_json::json!({ "body": body });
        self.send("add_comment", Retry::IfNotProcessed, || {
            self.request(Method::POST, &path).json(&payload)
        })
        .await
        .map(drop)
    }

    /// Visits comments newest first, page by page, until `visit` returns `false` or none are left.
    pub async fn visit_comments_newest_first(
        &self,
        issue_id: &str,
        mut visit: impl FnMut(&Comment) -> bool,
    ) -> Result<(), JiraError> {
        let path = format!("issue/{}/comment", escape_path(issue_id));
        let mut start_at = 0usize;
        loop {
            let page: CommentPage = self
                .json("get_comments", Retry::Always, || {
                    let request = self
                        .request(Method::GET, &path)
                        .query(&[("orderBy", "-created")]);
                    if start_at > 0 {
                        request.query(&[("startAt", start_at)])
                    } else {
                        request
                    }
                })
                .await?;
            for comment in &page.comments {
                if !visit(comment) {
                    return Ok(());
                }
            }
            let seen = page.comments.len();
            let last_page = seen == 0
                || seen < page.max_results
                || (page.total > 0 && start_at + seen >= page.total);
            if last_page {
                return Ok(());
            }
            start_at += seen;
        }
    }

    /// Visits the comments of `issue` newest first, from those it embeds when they are all there,
    /// else page by page, until `visit` returns `false` or none are left.
    pub async fn visit_issue_comments_newest_first(
        &self,
        issue: &Issue,
        mut visit: impl FnMut(&Comment) -> bool,
    ) -> Result<(), JiraError> {
        match issue.all_comments() {
            Some(comments) => {
                for comment in comments.iter().rev() {
                    if !visit(comment) {
                        break;
                    }
                }
                Ok(())
            }
            None => self.visit_comments_newest_first(&issue.id, visit).await,
        }
    }

    /// Moves the issue along transition `transition_id`.
    pub async fn transition(&self, issue_id: &str, transition_id: &str) -> Result<(), JiraError> {
        let path = format!("issue/{}/transitions", escape_path(issue_id));
        let payload = serde_json::json!({ "transition": { "id": transition_id } });
        self.send("transition", Retry::IfNotProcessed, || {
            self.request(Method::POST, &path).json(&payload)
        })
        .await
        .map(drop)
    }

    /// Up to `limit` issues matching `jql`. Jira Cloud's `search/jql` pages with `nextPageToken`
    /// and may lag behind writes; Data Center keeps the classic `search`, used when `search/jql`
    /// does not exist.
    pub async fn search(&self, jql: &str, limit: usize) -> Result<Vec<SearchHit>, JiraError> {
        match self.search_jql(jql, limit).await {
            Err(err) if matches!(err.status(), Some(404 | 405)) => {
                self.search_classic(jql, limit).await
            }
            other => other,
        }
    }

    async fn search_jql(&self, jql: &str, limit: usize) -> Result<Vec<SearchHit>, JiraError> {
        let mut hits = Vec::new();
        let mut token: Option<String> = None;
        while hits.len() < limit {
            let mut body = serde_json::json!({ "jql": jql, "fields": ["status", "labels"], "maxResults": limit.min(100) });
            if let Some(token) = &token {
                body["nextPageToken"] = serde_json::Value::String(token.clone());
            }
            let page: SearchPage = self
                .json("search", Retry::Always, || {
                    self.request(Method::POST, "search/jql").json(&body)
                })
                .await?;
            hits.extend(page.issues);
            match page.next_page_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => break,
            }
        }
        hits.truncate(limit);
        Ok(hits)
    }

    async fn search_classic(&self, jql: &str, limit: usize) -> Result<Vec<SearchHit>, JiraError> {
        let mut hits = Vec::new();
        while hits.len() < limit {
            let body = serde_json::json!({
                "jql": jql, "fields": ["status", "labels"], "startAt": hits.len(), "maxResults": limit.min(100)
            });
            let page: SearchPage = self
                .json("search", Retry::Always, || {
                    self.request(Method::POST, "search").json(&body)
                })
                .await?;
            if page.issues.is_empty() {
                break;
            }
            hits.extend(page.issues);
        }
        hits.truncate(limit);
        Ok(hits)
    }

    /// [`Self::issue_if_exists`] for a key made on the spot (several read at once).
    pub async fn issue_if_exists_owned(
        &self,
        id_or_key: String,
    ) -> Result<Option<Issue>, JiraError> {
        self.issue_if_exists(&id_or_key).await
    }

    /// The issue, or `None` when Jira says it does not exist (or is not visible to the plugin).
    pub async fn issue_if_exists(&self, id_or_key: &str) -> Result<Option<Issue>, JiraError> {
        match self.issue(id_or_key).await {
            Ok(issue) => Ok(Some(issue)),
            Err(err) if err.status() == Some(404) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// The body of `response`, refused past `limit` bytes.
async fn read_capped(response: reqwest::Response, limit: usize) -> Result<Vec<u8>, JiraError> {
    crate::http_common::read_capped(response, limit)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge { limit } => JiraError::Other(format!(
                "Jira's answer is larger than {limit} bytes; refusing to read it"
            )),
            BodyError::Transport(err) => JiraError::Transport(crate::errors::error_chain(&err)),
        })
}

/// A request that got no answer: a refused certificate, a connection never made (Jira cannot
/// have acted), or one lost on the way (it may have).
fn send_error(err: &reqwest::Error) -> JiraError {
    if let Some(problem) = crate::errors::certificate_problem(err) {
        let host = err
            .url()
            .and_then(|url| url.host_str())
            .unwrap_or("Jira")
            .to_owned();
        return JiraError::Certificate { host, problem };
    }
    let text = crate::errors::error_chain(err);
    if err.is_connect() {
        JiraError::Unreachable(text)
    } else {
        JiraError::Transport(text)
    }
}

/// What an attempt says about Jira's pace: 429, and 503 with `Retry-After`, are push-back.
fn answer_of(result: &Result<reqwest::Response, JiraError>) -> Answer {
    match result {
        Ok(response) => {
            let headers = response.headers();
            Answer::Answered {
                near_limit: headers
                    .get(NEAR_LIMIT_HEADER)
                    .and_then(|value| value.to_str().ok())
                    .is_some_and(|value| value.trim().eq_ignore_ascii_case("true")),
                limited: headers.contains_key(LIMIT_HEADER),
            }
        }
        Err(err) => match (err.status(), err.retry_after()) {
            (Some(429), retry_after) | (Some(503), retry_after @ Some(_)) => {
                Answer::PushedBack { retry_after }
            }
            (Some(status), _) if status < 500 => Answer::Answered {
                near_limit: false,
                limited: false,
            },
            _ => Answer::Failed,
        },
    }
}

/// Full jitter on top of the exponential step, so retries from many requests spread out.
fn jittered(step: Duration) -> Duration {
    let millis = step.as_millis().max(1) as u64;
    Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A server on loopback that answers every connection with `head` and then `body_chunks`
    /// chunks of 1 MiB (chunked encoding when `head` has no length).
    async fn oversized_server(head: &'static str, body_chunks: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let _ = socket.write_all(head.as_bytes()).await;
                    let chunk = vec![b' '; 1024 * 1024];
                    for _ in 0..body_chunks {
                        let framed =
                            [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                        if socket.write_all(&framed).await.is_err() {
                            return;
                        }
                    }
                    let _ = socket.write_all(b"0\r\n\r\n").await;
                });
            }
        });
        format!("http://{addr}")
    }

    fn client_of(base_url: String) -> JiraClient {
        JiraClient::new(JiraClientOptions {
            base_url,
            auth: JiraAuth::Bearer {
                token: Secret::new("t".to_owned()),
            },
            max_concurrent_calls: 1,
            max_calls_per_second: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn an_answer_claiming_a_huge_length_is_refused_before_reading() {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n";
        let client = client_of(oversized_server(head, 0).await);
        let err = client.project("PROJ").await.unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_off_at_the_cap() {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        let client = client_of(oversized_server(head, 40).await);
        let err = client.project("PROJ").await.unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[tokio::test]
    async fn a_scans_calls_wait_behind_every_other_call_except_creating_a_missing_issue() {
        let client = client_of("http://127.0.0.1:9".to_owned());
        assert_eq!(client.priority_of("get_issue"), Priority::Decision);
        let in_scan = as_scan(async {
            [
                client.priority_of("get_issue"),
                client.in_background().priority_of("get_issue"),
                client.priority_of("create_issue"),
            ]
        })
        .await;
        assert_eq!(in_scan, [Priority::Scan, Priority::Scan, Priority::Create]);
    }
}
