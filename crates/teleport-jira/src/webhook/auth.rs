//! Who may call the webhook: Jira's signature (`X-Hub-Signature`) over the body, and the basic
//! auth the Go plugin puts in front of every route.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebhookState;
use crate::config::BasicAuth;
use crate::secret::Secret;

/// Checks Jira's `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, in constant time.
pub(super) fn signature_valid(secret: &Secret, headers: &HeaderMap, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let presented = headers
        .get("x-hub-signature")
        .or_else(|| headers.get("x-hub-signature-256"))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().strip_prefix("sha256=").map(str::to_owned))
        .and_then(|hex_digest| hex::decode(hex_digest).ok());
    let (Some(presented), Ok(mut mac)) = (
        presented,
        Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()),
    ) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&presented).is_ok()
}

pub(super) async fn require_basic_auth(
    State(state): State<WebhookState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(expected) = state.basic_auth.load_full() {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !basic_auth_matches(presented, &expected) {
            if request.method() == axum::http::Method::POST {
                state.metrics.webhook_delivery("unauthorized");
            }
            return (
                StatusCode::UNAUTHORIZED,
                [
                    (header::WWW_AUTHENTICATE, "Basic realm=Restricted"),
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                ],
                "Unauthorized\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

fn basic_auth_matches(presented: Option<&str>, expected: &BasicAuth) -> bool {
    use base64::Engine as _;
    let Some(encoded) = presented.and_then(|value| value.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let wanted = format!("{}:{}", expected.user, expected.password.expose());
    constant_time_eq(&decoded, wanted.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_compares_user_and_password() {
        let expected = BasicAuth {
            user: "jira".into(),
            password: Secret::new("pw"),
        };
        assert!(basic_auth_matches(Some("Basic amlyYTpwdw=="), &expected));
        assert!(!basic_auth_matches(Some("Basic amlyYTpwdXg="), &expected));
        assert!(!basic_auth_matches(Some("Bearer x"), &expected));
        assert!(!basic_auth_matches(None, &expected));
    }
}
