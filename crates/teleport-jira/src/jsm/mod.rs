//! The client of Jira Service Management Operations' REST API: which Atlassian accounts are on
//! call in a schedule, and the site's cloud id that API's paths need. Basic `email:api_token`,
//! as for Jira Cloud; every answer read with a cap.

mod error;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Deserialize;

use crate::http_common::{BodyError, escape_path, parse_retry_after, read_capped};
use crate::secret::Secret;
pub use error::JsmError;

/// One call's limit: the on-call check runs beside the ticket, never in front of it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// On-call lists and tenant info are small.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct JsmClient {
    http: reqwest::Client,
    api_url: String,
    email: String,
    /// Shared by every clone, so a token re-read from its file reaches them all.
    token: Arc<ArcSwap<Secret>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TenantInfo {
    cloud_id: String,
}

#[derive(Deserialize)]
struct Schedules {
    #[serde(default)]
    values: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OnCalls {
    #[serde(default)]
    on_call_users: Vec<String>,
}

impl JsmClient {
    pub fn new(api_url: &str, email: &str, token: Secret) -> Result<Self, JsmError> {
        let http = crate::http_common::client_builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("teleport-jira/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| JsmError::Transport(format!("building the HTTP client: {err}")))?;
        Ok(Self {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            email: email.to_owned(),
            token: Arc::new(ArcSwap::from_pointee(token)),
        })
    }

    /// Uses `token` from the next call on (a rotated token file, re-read).
    pub fn replace_token(&self, token: Secret) {
        self.token.store(Arc::new(token));
    }

    /// The cloud id of the Jira Cloud site at `site_url` (`GET /_edge/tenant_info`, public).
    pub async fn cloud_id_of(&self, site_url: &str) -> Result<String, JsmError> {
        let url = format!("{}/_edge/tenant_info", site_url.trim_end_matches('/'));
        let what = format!("{site_url}'s tenant info");
        let info: TenantInfo = self.get_json(self.http.get(url), &what).await?;
        if info.cloud_id.trim().is_empty() {
            return Err(JsmError::Decode {
                what,
                problem: "empty cloudId".into(),
            });
        }
        Ok(info.cloud_id)
    }

    /// The account ids on call in schedule `schedule` now (`flat=true`: teams and escalations
    /// resolved to their users).
    pub async fn on_call(&self, cloud_id: &str, schedule: &str) -> Result<Vec<String>, JsmError> {
        let url = format!(
            "{}/jsm/ops/api/{}/v1/schedules/{}/on-calls",
            self.api_url,
            escape_path(cloud_id),
            escape_path(schedule)
        );
        let request = self
            .http
            .get(url)
            .query(&[("flat", "true")])
            .basic_auth(&self.email, Some(self.token.load().expose()));
        let answer: OnCalls = self
            .get_json(request, &format!("schedule {schedule:?}"))
            .await?;
        Ok(answer.on_call_users)
    }

    /// How many schedules the first page of the listing shows: proves the credentials and the
    /// cloud id without naming a schedule.
    pub async fn readable_schedules(&self, cloud_id: &str) -> Result<usize, JsmError> {
        let url = format!(
            "{}/jsm/ops/api/{}/v1/schedules",
            self.api_url,
            escape_path(cloud_id)
        );
        let request = self
            .http
            .get(url)
            .basic_auth(&self.email, Some(self.token.load().expose()));
        let listed: Schedules = self.get_json(request, "the schedule list").await?;
        Ok(listed.values.len())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, JsmError> {
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| sent_nothing(&err))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = read_capped(response, MAX_BODY)
            .await
            .map_err(|err| match err {
                BodyError::TooLarge { .. } => JsmError::Decode {
                    what: what.to_owned(),
                    problem: err.to_string(),
                },
                BodyError::Transport(err) if err.is_timeout() => JsmError::Timeout,
                BodyError::Transport(err) => JsmError::Transport(crate::errors::error_chain(&err)),
            })?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body).map_err(|err| JsmError::Decode {
                what: what.to_owned(),
                problem: err.to_string(),
            });
        }
        Err(refusal(status, retry_after, what, &body))
    }
}

/// The error a non-2xx answer stands for.
fn refusal(status: u16, retry_after: Option<Duration>, what: &str, body: &[u8]) -> JsmError {
    let body: String = String::from_utf8_lossy(body).chars().take(300).collect();
    let what = what.to_owned();
    match status {
        401 => JsmError::Unauthorized,
        403 => JsmError::Forbidden { what },
        404 => JsmError::NotFound { what },
        429 => JsmError::RateLimited { retry_after },
        500..=599 => JsmError::Server { status, body },
        _ => JsmError::Unexpected { what, status, body },
    }
}

fn sent_nothing(err: &reqwest::Error) -> JsmError {
    if err.is_timeout() {
        JsmError::Timeout
    } else {
        JsmError::Transport(crate::errors::error_chain(err))
    }
}
