//! Authentication like Jira's auth filter: Basic with an email and API token on Cloud, Basic with
//! a username or a Bearer personal access token on Data Center; inactive users are refused.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::model::Deployment;
use super::store::Store;

/// Who is calling.
pub(crate) enum Auth {
    Anonymous,
    User(usize),
    Rejected,
}

/// Reads `Authorization`: Basic `email:token` (Data Center also `username:password`), or a
/// Bearer personal access token on Data Center.
pub(crate) fn authenticate(store: &Store, headers: &HeaderMap) -> Auth {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Auth::Anonymous;
    };
    let Some((scheme, credentials)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
        return Auth::Rejected;
    };
    let credentials = credentials.trim();
    let found = match scheme.to_ascii_lowercase().as_str() {
        "basic" => STANDARD
            .decode(credentials)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| {
                let (login, secret) = pair.split_once(':')?;
                store.users.iter().position(|u| {
                    let login_matches = u
                        .email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(login))
                        || (store.deployment == Deployment::DataCenter && u.username() == login);
                    login_matches && u.token.as_deref() == Some(secret)
                })
            }),
        // Personal access tokens exist on Data Center only; Cloud's Bearer is for OAuth apps.
        "bearer" if store.deployment == Deployment::DataCenter => store
            .users
            .iter()
            .position(|u| u.token.as_deref() == Some(credentials)),
        _ => None,
    };
    match found {
        Some(idx) if store.users[idx].active => Auth::User(idx),
        _ => Auth::Rejected,
    }
}
