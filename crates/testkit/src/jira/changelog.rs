//! `GET issue/{id}/changelog` (Cloud): every history of an issue, OLDEST first, in pages of at most
//! 100 with `startAt`, `maxResults`, `total`, `isLast`, `values`, and `self`/`nextPage` links.
//! The changelog embedded by `expand=changelog` is the other way round (`render`): only the
//! newest 100, newest first.

use serde_json::{Value, json};

use super::errors::{ApiError, Reply};
use super::req::{Req, non_negative};
use super::store::Store;

/// Largest page Jira Cloud serves, and the size of a page when none is asked for. A page holds
/// at least one history, so a client that follows `nextPage` always gets further.
const PAGE_MAX: usize = 100;

pub(crate) fn list_changelog(
    store: &Store,
    user: usize,
    id: &str,
    version: &str,
    req: &Req<'_>,
) -> Result<Reply, ApiError> {
    let idx = store.visible_issue(user, id)?;
    let start_at = non_negative(req, "startAt")?.unwrap_or(0);
    let max_results = non_negative(req, "maxResults")?.map_or(PAGE_MAX, |m| m.clamp(1, PAGE_MAX));
    let histories = &store.issues[idx].histories;
    let values: Vec<Value> = histories
        .iter()
        .skip(start_at)
        .take(max_results)
        .map(|h| store.history_json(h))
        .collect();
    let total = histories.len();
    let is_last = start_at.saturating_add(max_results) >= total;
    let page = |start: usize| {
        format!(
            "{}/rest/api/{version}/issue/{id}/changelog?maxResults={max_results}&startAt={start}",
            store.base_url
        )
    };
    let mut body = json!({
        "self": page(start_at),
        "maxResults": max_results,
        "startAt": start_at,
        "total": total,
        "isLast": is_last,
        "values": values,
    });
    if !is_last && let Some(obj) = body.as_object_mut() {
        obj.insert("nextPage".into(), json!(page(start_at + max_results)));
    }
    Ok(Reply::ok(body))
}
