//! Property tests over the parsers that read what others send: webhook bodies, identity files,
//! Jira comments, and the escaping of user text. None may panic, whatever the input; each keeps
//! its promise on inputs built to stress it. (`teleport-jira-fuzz` runs the same targets as a
//! time-bounded mutation fuzzer.)

use proptest::prelude::*;
use teleport_jira::jira::decision::reason_in_comment;
use teleport_jira::jira::markup::escape;
use teleport_jira::teleport::identity::parse_identity_file;
use teleport_jira::webhook::{BadDelivery, Delivery, parse_delivery};

/// Removes Jira's escapes: a backslash makes the next character literal.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Text mixing wiki markup, URLs, newlines and arbitrary characters.
fn markupish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("*".to_owned()),
        Just("[link|https://evil.example]".to_owned()),
        Just("{code}".to_owned()),
        Just("\nh1. ".to_owned()),
        Just("\n# ".to_owned()),
        Just("!img.png!".to_owned()),
        Just("\\".to_owned()),
        Just("-".to_owned()),
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn webhook_parser_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_delivery(&body);
    }

    #[test]
    fn webhook_parser_reads_the_issue_id_of_any_update(id in "[0-9]{1,12}", extra in any::<String>()) {
        let body = serde_json::json!({
            "webhookEvent": "jira:issue_updated",
            "issue": {"id": id, "fields": {"summary": extra}},
        });
        prop_assert_eq!(parse_delivery(body.to_string().as_bytes()), Ok(Delivery::Issue(id)));
    }

    #[test]
    fn webhook_parser_refuses_updates_without_an_issue(junk in any::<String>()) {
        let body = serde_json::json!({"webhookEvent": "jira:issue_updated", "junk": junk});
        prop_assert_eq!(parse_delivery(body.to_string().as_bytes()), Err(BadDelivery::NoIssue));
    }

    #[test]
    fn identity_parser_never_panics(text in markupish(), pem in "(-----(BEGIN|END) [A-Z ]{0,20}-----\n|[A-Za-z0-9+/=]{0,80}\n|ssh-rsa-cert-v01@openssh.com AAAA\n){0,12}") {
        let _ = parse_identity_file(&text);
        let _ = parse_identity_file(&pem);
    }

    #[test]
    fn reason_parser_never_panics(comment in markupish()) {
        let _ = reason_in_comment(&comment);
    }

    #[test]
    fn inline_reason_is_read_back_trimmed(before in "[a-z .]{0,30}", reason in "[A-Za-z0-9][A-Za-z0-9 ,.]{0,40}") {
        let comment = format!("{before}\nReason: {reason}  ");
        prop_assert_eq!(reason_in_comment(&comment), Some(reason.trim().to_owned()));
    }

    #[test]
    fn escaping_loses_nothing_and_stays_bounded(text in markupish()) {
        let escaped = escape(&text);
        prop_assert_eq!(unescape(&escaped), text.clone());
        prop_assert!(escaped.len() <= text.len() * 2);
    }

    #[test]
    fn escaped_text_has_no_live_link_macro_or_image(text in markupish()) {
        let escaped = escape(&text);
        let mut previous = ' ';
        for c in escaped.chars() {
            if ['[', ']', '{', '}', '|', '!'].contains(&c) {
                prop_assert_eq!(previous, '\\', "unescaped {:?} in {:?}", c, escaped);
            }
            previous = if previous == '\\' { ' ' } else { c };
        }
        prop_assert!(!escaped.contains("https://"));
    }
}
