//! How the fake answers: successful replies and Jira's error shapes, turned into HTTP responses.
//!
//! Jira's REST errors are an "error collection": `{"errorMessages":[...],"errors":{field: msg}}`,
//! with the HTTP status carrying the category. A few answers come from other layers of the real
//! service and look different on purpose (the 401 of the auth filter, Jersey's 404 for unknown
//! resources), because clients must cope with those too.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Jira labels JSON this way, and the Go plugin checks the prefix `application/json`.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// A successful answer.
#[derive(Debug)]
pub(crate) enum Reply {
    Json(StatusCode, Value),
    NoContent,
}

impl Reply {
    pub(crate) fn ok(body: Value) -> Self {
        Reply::Json(StatusCode::OK, body)
    }

    pub(crate) fn created(body: Value) -> Self {
        Reply::Json(StatusCode::CREATED, body)
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Reply::Json(status, _) => *status,
            Reply::NoContent => StatusCode::NO_CONTENT,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Json(status, body) => json_response(status, &body),
            Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// A failed answer, in the shape the real service would use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ApiError {
    /// The standard error collection.
    Jira {
        status: StatusCode,
        messages: Vec<String>,
        errors: BTreeMap<String, String>,
    },
    /// The auth filter's 401, before any REST resource runs. `presented` tells whether
    /// credentials were sent (and rejected) or missing.
    Unauthenticated {
        presented: bool,
    },
    /// Jersey's answer for a path no resource serves.
    NoResource {
        uri: String,
    },
    MethodNotAllowed,
    UnsupportedMediaType,
}

impl ApiError {
    pub(crate) fn messages(status: StatusCode, messages: impl IntoIterator<Item = String>) -> Self {
        ApiError::Jira {
            status,
            messages: messages.into_iter().collect(),
            errors: BTreeMap::new(),
        }
    }

    pub(crate) fn message(status: StatusCode, message: impl Into<String>) -> Self {
        Self::messages(status, [message.into()])
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::message(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn fields(status: StatusCode, errors: BTreeMap<String, String>) -> Self {
        ApiError::Jira {
            status,
            messages: Vec::new(),
            errors,
        }
    }

    pub(crate) fn field(status: StatusCode, field: &str, message: impl Into<String>) -> Self {
        Self::fields(
            status,
            BTreeMap::from([(field.to_string(), message.into())]),
        )
    }

    pub(crate) fn issue_not_found() -> Self {
        Self::message(
            StatusCode::NOT_FOUND,
            "Issue does not exist or you do not have permission to see it.",
        )
    }

    pub(crate) fn project_not_found(key: &str) -> Self {
        Self::message(
            StatusCode::NOT_FOUND,
            format!("No project could be found with key '{key}'."),
        )
    }

    /// The messages of the error, one line, for test-side errors.
    pub(crate) fn describe(&self) -> String {
        match self {
            ApiError::Jira {
                status,
                messages,
                errors,
            } => {
                let fields = errors.iter().map(|(k, v)| format!("{k}: {v}"));
                let all: Vec<String> = messages.iter().cloned().chain(fields).collect();
                format!("{status}: {}", all.join("; "))
            }
            other => other.status().to_string(),
        }
    }

    /// The error collection a bulk answer carries for one failed element.
    pub(crate) fn collection(&self) -> Value {
        match self {
            ApiError::Jira {
                messages, errors, ..
            } => json!({"errorMessages": messages, "errors": errors}),
            other => json!({"errorMessages": [other.status().to_string()], "errors": {}}),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::Jira { status, .. } => *status,
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::NoResource { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Jira {
                status,
                messages,
                errors,
            } => json_response(
                status,
                &json!({"errorMessages": messages, "errors": errors}),
            ),
            ApiError::Unauthenticated { presented } => {
                // Cloud's auth filter answers in plain text, not with an error collection.
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
                    "Client must be authenticated to access this resource.",
                )
                    .into_response();
                let headers = response.headers_mut();
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"protected-area\""),
                );
                if presented {
                    headers.insert(
                        "x-seraph-loginreason",
                        HeaderValue::from_static("AUTHENTICATED_FAILED"),
                    );
                }
                response
            }
            ApiError::NoResource { uri } => json_response(
                StatusCode::NOT_FOUND,
                &json!({"message": format!("null for uri: {uri}"), "status-code": 404}),
            ),
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response(),
        }
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}
