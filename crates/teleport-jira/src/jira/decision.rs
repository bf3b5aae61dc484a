//! Who moved an issue to Approved or Denied, and the reason they wrote.
//!
//! The author is the one of the newest status change to that status (by its `created` time, which
//! is right whatever order the changelog is listed in); [`super::mover`] finds it, paging the
//! changelog when the embedded page leaves it out. The reason is taken from that same user's
//! newest comment containing a `reason:` or `resolution:` line, as with the Go plugin.

use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use super::same_name;
use super::types::{Comment, History, User};

/// Jira's timestamp format, e.g. `2026-11-25T07:51:17.069+0000`.
const JIRA_TIME: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory][offset_minute]"
);

/// The newest change of the issue's status to `status` (case-insensitive) among `histories`.
pub fn newest_change_into<'a>(histories: &'a [History], status: &str) -> Option<&'a History> {
    let changes = histories.iter().enumerate().filter(|(_, history)| {
        history.items.iter().any(|item| {
            item.fieldtype == "jira"
                && item.field == "status"
                && item
                    .to_string
                    .as_deref()
                    .is_some_and(|to| same_name(to, status))
        })
    });
    // Newest by time; among equal or unreadable times, the earlier entry (Jira lists newest first).
    changes
        .max_by(|(ia, a), (ib, b)| {
            let (ta, tb) = (parse_time(&a.created), parse_time(&b.created));
            ta.cmp(&tb).then(ib.cmp(ia))
        })
        .map(|(_, history)| history)
}

/// Whether `comment` was written by `user` (by account id on Cloud, by key or name on Data Center).
pub fn written_by(comment: &Comment, user: &User) -> bool {
    match (
        comment.author.as_ref().and_then(User::identity),
        user.identity(),
    ) {
        (Some(author), Some(user)) => author == user,
        _ => false,
    }
}

/// The reason in a comment: an inline `reason: text` line, or the text after a lone `reason:` line.
/// `resolution:` works the same; case and spaces around the colon do not matter.
pub fn reason_in_comment(body: &str) -> Option<String> {
    for line in body.split('\n') {
        if let Some(rest) = after_keyword(line).filter(|rest| !rest.is_empty()) {
            return Some(rest.trim_matches([' ', '\n']).to_owned());
        }
    }
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        offset += line.len();
        if after_keyword(line.trim_end_matches('\n')).is_some_and(str::is_empty) {
            return Some(body[offset..].trim_start_matches('\n').to_owned());
        }
    }
    None
}

/// For a line ` *(reason|resolution) *: *(rest)`, the rest (which may be empty).
fn after_keyword(line: &str) -> Option<&str> {
    let line = line.trim_start_matches(' ');
    let lower = line
        .get(..10)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower.starts_with("resolution") {
        &line[10..]
    } else if line
        .get(..6)
        .is_some_and(|word| word.eq_ignore_ascii_case("reason"))
    {
        &line[6..]
    } else {
        return None;
    };
    let rest = rest.trim_start_matches(' ').strip_prefix(':')?;
    // ` *: *(.+)$`: leading spaces are absorbed, but a line of only spaces still has content.
    let trimmed = rest.trim_start_matches(' ');
    Some(if trimmed.is_empty() && !rest.is_empty() {
        " "
    } else {
        trimmed
    })
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, JIRA_TIME).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::jira::types::Issue;

    #[test]
    fn block_reason_takes_the_following_lines() {
        let body = "hi! i'm going to approve this request.\nReason:\n\nfoo\nbar\nbaz";
        assert_eq!(reason_in_comment(body).unwrap(), "foo\nbar\nbaz");
    }

    #[test]
    fn inline_reason_is_trimmed() {
        assert_eq!(
            reason_in_comment("…\nreason: foo bar baz").unwrap(),
            "foo bar baz"
        );
        assert_eq!(reason_in_comment("  Resolution :  ok  ").unwrap(), "ok");
    }

    #[test]
    fn inline_form_wins_over_an_earlier_block_form() {
        assert_eq!(
            reason_in_comment("reason:\nsomething\nreason: inline").unwrap(),
            "inline"
        );
    }

    #[test]
    fn reason_line_of_spaces_is_an_empty_reason() {
        assert_eq!(reason_in_comment("reason:    ").unwrap(), "");
    }

    #[test]
    fn comments_without_the_keyword_have_no_reason() {
        assert_eq!(reason_in_comment("comment 1"), None);
        assert_eq!(reason_in_comment("the reasons are many"), None);
        assert_eq!(reason_in_comment(""), None);
    }

    #[test]
    fn non_ascii_text_never_panics() {
        assert_eq!(reason_in_comment("résolution: é"), None);
        assert_eq!(reason_in_comment("reasoné: x"), None);
        assert_eq!(reason_in_comment("Réason"), None);
    }

    #[test]
    fn newest_status_change_wins_whatever_the_order() {
        let issue: Issue = serde_json::from_value(serde_json::json!({
            "id": "1",
            "changelog": {"histories": [
                {"author": {"accountId": "old"}, "created": "2026-11-25T07:00:00.000+0000",
                 "items": [{"field": "status", "fieldtype": "jira", "toString": "Approved"}]},
                {"author": {"accountId": "new"}, "created": "2026-11-25T08:00:00.000+0000",
                 "items": [{"field": "status", "fieldtype": "jira", "toString": "approved"}]},
                {"author": {"accountId": "other"}, "created": "2026-11-25T09:00:00.000+0000",
                 "items": [{"field": "status", "fieldtype": "jira", "toString": "Denied"}]}
            ]}
        }))
        .unwrap();
        let histories = issue.changelog.unwrap().histories;
        let author = |status| {
            newest_change_into(&histories, status)
                .and_then(|history| history.author.clone())
                .and_then(|author| author.account_id)
        };
        assert_eq!(author("Approved").as_deref(), Some("new"));
        assert_eq!(author("Expired"), None);
    }
}
