//! Who moved the card into its current status. The issue's embedded changelog is one page on Jira
//! Cloud: the newest 100 histories. When more edits followed the move (an automation touching
//! fields, a webhook lost and the move found later), the move is not in it; then the paged
//! changelog is read from its end, newest page first, until the move is found.

use super::client::JiraClient;
use super::decision::newest_change_into;
use super::error::JiraError;
use super::types::{Issue, User};

/// Histories per page of the paged changelog (Jira Cloud's most).
const PAGE: usize = 100;
/// Pages read at most, from the end: a move buried under more edits than this is not credited.
const MAX_PAGES: usize = 20;

/// The outcome of looking for who moved the card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mover {
    /// The author of the newest change into the status.
    Found(User),
    /// Nobody can be credited, and why (said on the card when it is sent back).
    Unknown(String),
}

/// The author of the newest change of `issue` into `status`, reading the paged changelog when the
/// embedded page does not hold that change. Errors are the paged reads' (retry the step).
pub async fn find_mover(
    jira: &JiraClient,
    issue: &Issue,
    status: &str,
) -> Result<Mover, JiraError> {
    let embedded = issue.changelog.clone().unwrap_or_default();
    if let Some(change) = newest_change_into(&embedded.histories, status) {
        return Ok(credit(change.author.as_ref()));
    }
    let Some(total) = embedded.total.filter(|_| embedded.is_partial()) else {
        return Ok(Mover::Unknown(format!(
            "the issue's history has no change into {status}"
        )));
    };
    let mut end = total;
    for _ in 0..MAX_PAGES {
        let start = end.saturating_sub(PAGE);
        let page = jira.changelog_page(&issue.id, start, end - start).await?;
        if let Some(change) = newest_change_into(&page.values, status) {
            return Ok(credit(change.author.as_ref()));
        }
        if start == 0 {
            return Ok(Mover::Unknown(format!(
                "the issue's history has no change into {status}"
            )));
        }
        end = start;
    }
    Ok(Mover::Unknown(format!(
        "the change into {status} is older than the newest {} edits of the issue",
        PAGE * MAX_PAGES
    )))
}

/// A change without an author (an anonymous change, an automation without an actor) credits
/// nobody.
fn credit(author: Option<&User>) -> Mover {
    match author.filter(|user| user.identity().is_some()) {
        Some(user) => Mover::Found(user.clone()),
        None => Mover::Unknown("the change has no author Jira would name".into()),
    }
}
