//! Escaping user-supplied text for Jira wiki markup, so that a request reason, a user name or a
//! role cannot inject formatting, links, images, macros or mentions into a ticket.
//!
//! Jira's renderer treats a backslash as "the next character is literal". Characters that always
//! start markup (`[ ] { } | ! \`) are escaped everywhere; characters that only format when they
//! wrap a word (`* _ + ^ ~ - ?`) are escaped where they touch a word boundary, so addresses such
//! as `requester-oss@example.com` stay as they are. Line-start markers (`#`, `h1.` … `h6.`,
//! `bq.`) and the `://` that makes Jira turn a bare URL into a link are broken up too. Plain text
//! comes out unchanged, which keeps the Go plugin's ticket texts for ordinary input.

/// Characters that begin markup wherever they are.
const ALWAYS: &[char] = &['\\', '[', ']', '{', '}', '|', '!'];
/// Characters that format only when they open or close a word.
const AT_BOUNDARY: &[char] = &['*', '_', '+', '^', '~', '-', '?'];

/// `text` with every markup-significant character made literal.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
        }
        escape_line(line, &mut out);
    }
    out
}

fn escape_line(line: &str, out: &mut String) {
    let chars: Vec<char> = line.chars().collect();
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    let starts_block = trimmed.starts_with('#')
        || trimmed.starts_with("bq.")
        || (trimmed.len() >= 3
            && trimmed.as_bytes()[0] == b'h'
            && (b'1'..=b'6').contains(&trimmed.as_bytes()[1])
            && trimmed.as_bytes()[2] == b'.');
    let mut position = 0;
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        let at_block_start = starts_block && position == indent;
        let boundary = before.is_none_or(|b| !b.is_alphanumeric())
            || after.is_none_or(|a| !a.is_alphanumeric());
        let scheme_colon = c == ':' && after == Some('/') && chars.get(i + 2) == Some(&'/');
        if ALWAYS.contains(&c)
            || (AT_BOUNDARY.contains(&c) && boundary)
            || at_block_start
            || scheme_colon
        {
            out.push('\\');
        }
        out.push(c);
        position += c.len_utf8();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        for text in [
            "because of",
            "alice@example.com",
            "requester-oss@example.com",
            "editor",
            "on-call rota",
            "3.5 hours",
        ] {
            assert_eq!(escape(text), text);
        }
    }

    #[test]
    fn links_macros_images_and_tables_are_made_literal() {
        assert_eq!(
            escape("see [runbook|https://evil.example]"),
            "see \\[runbook\\|https\\://evil.example\\]"
        );
        assert_eq!(escape("{code}rm -rf{code}"), "\\{code\\}rm \\-rf\\{code\\}");
        assert_eq!(escape("!http://x/y.png!"), "\\!http\\://x/y.png\\!");
        assert_eq!(escape("[~admin]"), "\\[\\~admin\\]");
    }

    #[test]
    fn word_formatting_is_made_literal() {
        assert_eq!(escape("the *prod* outage"), "the \\*prod\\* outage");
        assert_eq!(
            escape("_quiet_ -gone- +under+ ^up^ ~down~ ??cite??"),
            "\\_quiet\\_ \\-gone\\- \\+under\\+ \\^up\\^ \\~down\\~ \\?\\?cite\\?\\?"
        );
    }

    #[test]
    fn line_start_markers_are_made_literal() {
        assert_eq!(
            escape("h1. Big\n# item\nbq. quote"),
            "\\h1. Big\n\\# item\n\\bq. quote"
        );
    }

    #[test]
    fn bare_urls_do_not_become_links() {
        let escaped = escape("visit https://phish.example/login now");
        assert_eq!(escaped, "visit https\\://phish.example/login now");
    }

    #[test]
    fn any_input_is_escaped_without_panicking() {
        for text in [
            "",
            "\\",
            "ünïcödé *x*",
            "h",
            "h1",
            "#",
            "\n\n",
            "-",
            "a-",
            "日本語[リンク]",
        ] {
            let _ = escape(text);
        }
    }
}
