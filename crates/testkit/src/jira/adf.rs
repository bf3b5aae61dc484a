//! REST v3's one difference in what the fake serves on v3: rich text (an issue's description, its
//! comments' bodies) is an Atlassian Document Format document instead of a wiki-markup string.
//! The text is kept as plain paragraphs, one per line, which is how Jira shows markup it does
//! not convert.

use serde_json::{Value, json};

/// `text` as an ADF document: one paragraph per line (an empty line is an empty paragraph).
pub(crate) fn document(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .split('\n')
        .map(|line| {
            if line.is_empty() {
                json!({"type": "paragraph", "content": []})
            } else {
                json!({"type": "paragraph", "content": [{"type": "text", "text": line}]})
            }
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

/// Rewrites a v2 issue rendering into v3's: the description and the embedded comment bodies.
pub(crate) fn issue_to_v3(issue: &mut Value) {
    let Some(fields) = issue.get_mut("fields").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(description) = fields.get_mut("description") {
        text_to_document(description);
    }
    let comments = fields
        .get_mut("comment")
        .and_then(|c| c.get_mut("comments"))
        .and_then(Value::as_array_mut);
    for comment in comments.into_iter().flatten() {
        if let Some(body) = comment.get_mut("body") {
            text_to_document(body);
        }
    }
}

/// A string becomes a document; `null` (no description) stays `null`.
fn text_to_document(value: &mut Value) {
    if let Value::String(text) = value {
        *value = document(text);
    }
}
