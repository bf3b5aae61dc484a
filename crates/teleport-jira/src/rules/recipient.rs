//! What a rule's `notification.recipients` mean for Jira: where the issue goes, which labels it
//! gets, or that it is not made at all.

/// One recipient string, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// `OPS` or `OPS/Bug`: a project, and an issue type (`None`: the configured one).
    Project {
        key: String,
        issue_type: Option<String>,
    },
    /// `label:db-access`: a label added wherever the issue goes.
    Label(String),
    /// `none`: no issue for the request.
    Suppress,
}

/// A recipient string that names nothing this plugin knows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("recipient {0:?} is neither a project key (OPS, OPS/Bug), label:NAME nor none")]
pub struct RecipientError(pub String);

impl Recipient {
    pub fn parse(text: &str) -> Result<Self, RecipientError> {
        let bad = || RecipientError(text.to_owned());
        let text = text.trim();
        if text == "none" {
            return Ok(Self::Suppress);
        }
        if let Some(label) = text.strip_prefix("label:") {
            // Jira labels cannot contain spaces.
            if label.is_empty() || label.chars().any(char::is_whitespace) {
                return Err(bad());
            }
            return Ok(Self::Label(label.to_owned()));
        }
        let (key, issue_type) = match text.split_once('/') {
            Some((key, issue_type)) => (key, Some(issue_type.trim())),
            None => (text, None),
        };
        if !is_project_key(key) || issue_type.is_some_and(str::is_empty) {
            return Err(bad());
        }
        Ok(Self::Project {
            key: key.to_owned(),
            issue_type: issue_type.map(str::to_owned),
        })
    }
}

/// Jira's project key shape: an upper-case letter, then upper-case letters, digits or `_`.
fn is_project_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && key.len() >= 2
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(key: &str, issue_type: Option<&str>) -> Recipient {
        Recipient::Project {
            key: key.into(),
            issue_type: issue_type.map(Into::into),
        }
    }

    #[test]
    fn recipients_name_projects_issue_types_labels_or_none() {
        assert_eq!(Recipient::parse("OPS"), Ok(project("OPS", None)));
        assert_eq!(Recipient::parse("OPS/Bug"), Ok(project("OPS", Some("Bug"))));
        assert_eq!(
            Recipient::parse("SEC_2/Service Request"),
            Ok(project("SEC_2", Some("Service Request")))
        );
        assert_eq!(
            Recipient::parse("label:db-access"),
            Ok(Recipient::Label("db-access".into()))
        );
        assert_eq!(Recipient::parse("none"), Ok(Recipient::Suppress));
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "ops",
            "O",
            "OPS/",
            "label:",
            "label:two words",
            "#team-channel",
            "a@b.c",
            "1OPS",
        ] {
            assert!(Recipient::parse(text).is_err(), "{text:?}");
        }
    }
}
