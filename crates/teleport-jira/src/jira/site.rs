//! Which Jira the plugin talks to, as far as naming people goes: Jira Cloud names users by
//! account id, Data Center by username, in watchers, the reporter field and wiki-markup mentions.

use serde_json::{Value, json};

use super::types::User;

/// How the site names users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    Cloud,
    DataCenter,
}

impl Site {
    /// The site of the plugin's own user (`GET myself`): only Jira Cloud gives users an account
    /// id.
    pub fn of(myself: &User) -> Self {
        match &myself.account_id {
            Some(id) if !id.is_empty() => Self::Cloud,
            _ => Self::DataCenter,
        }
    }

    /// A wiki-markup mention of `identity`: `[~accountid:<id>]` on Cloud, `[~<username>]` on
    /// Data Center.
    pub fn mention(self, identity: &str) -> String {
        match self {
            Self::Cloud => format!("[~accountid:{identity}]"),
            Self::DataCenter => format!("[~{identity}]"),
        }
    }

    /// The value of a user field (such as `reporter`) naming `identity`.
    pub fn user_field(self, identity: &str) -> Value {
        match self {
            Self::Cloud => json!({ "accountId": identity }),
            Self::DataCenter => json!({ "name": identity }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_whose_users_have_account_ids_is_cloud() {
        let cloud = User {
            account_id: Some("557058:abc".into()),
            ..User::default()
        };
        let data_center = User {
            name: Some("plugin".into()),
            key: Some("JIRAUSER10000".into()),
            ..User::default()
        };
        assert_eq!(Site::of(&cloud), Site::Cloud);
        assert_eq!(Site::of(&data_center), Site::DataCenter);
    }

    #[test]
    fn mentions_and_user_fields_follow_the_site() {
        assert_eq!(Site::Cloud.mention("557058:abc"), "[~accountid:557058:abc]");
        assert_eq!(Site::DataCenter.mention("alice"), "[~alice]");
        assert_eq!(
            Site::Cloud.user_field("557058:abc"),
            json!({"accountId": "557058:abc"})
        );
        assert_eq!(
            Site::DataCenter.user_field("alice"),
            json!({"name": "alice"})
        );
    }
}
