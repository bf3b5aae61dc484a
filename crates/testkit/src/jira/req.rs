//! One decoded REST call as the resources see it: method, path parameters, query (repeated keys
//! joined with commas), headers and body, with Jira's answers for bodies and numbers it refuses.
//! Also the decoding of paths and queries, done by hand so that every refusal has Jira's shape.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri, header};
use serde_json::Value;

use super::errors::ApiError;

/// One decoded request.
pub(crate) struct Req<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub query: &'a BTreeMap<String, String>,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
}

impl Req<'_> {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    pub(crate) fn list(&self, name: &str) -> Vec<&str> {
        self.param(name)
            .map(|v| v.split(',').collect())
            .unwrap_or_default()
    }

    /// Jira rejects non-JSON bodies at the Jersey layer with 415, and unparsable JSON with 400.
    pub(crate) fn json(&self) -> Result<Value, ApiError> {
        let is_json = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "No content to map to Object due to end of input",
            ));
        }
        serde_json::from_slice(self.body).map_err(|e| {
            ApiError::bad_request(format!("Unexpected character in the request body: {e}"))
        })
    }
}

/// A non-negative integer query parameter; negative values count as 0, as in Jira.
pub(crate) fn non_negative(req: &Req<'_>, name: &str) -> Result<Option<usize>, ApiError> {
    match req.param(name) {
        None | Some("") => Ok(None),
        Some(raw) => raw
            .parse::<i64>()
            .map(|n| Some(usize::try_from(n.max(0)).unwrap_or(0)))
            .map_err(|_| {
                ApiError::bad_request(format!("Invalid value '{raw}' for parameter '{name}'."))
            }),
    }
}

pub(crate) fn strip_base<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    if base.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(base)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Repeated keys are joined with commas, which is how Jira reads list parameters either way.
pub(crate) fn parse_query(query: Option<&str>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k, true).unwrap_or_else(|| k.to_string());
        let v = percent_decode(v, true).unwrap_or_else(|| v.to_string());
        out.entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

pub(crate) fn decode_segments(path: &str) -> Option<Vec<String>> {
    path.strip_prefix("/rest/")?
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect()
}
