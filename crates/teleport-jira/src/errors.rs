//! Rendering errors for people: one line that keeps the cause a transport error hides in its
//! sources.

/// Renders an error and its sources on one line; transport errors hide the useful part in a source.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
