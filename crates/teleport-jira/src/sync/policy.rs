//! Who may decide a request from Jira: never its requester, and only allowlisted approvers when an
//! allowlist is configured. Jira users are identified by account id (Cloud) or key and name (Data
//! Center), with the e-mail when Jira shows it; a mapping names the Teleport user behind each.

use std::collections::BTreeMap;

use crate::jira::types::User;

/// The approver rules from the config.
#[derive(Clone, Debug, Default)]
pub struct ApproverPolicy {
    /// Account ids, keys, names or e-mails allowed to decide; with `groups` empty too, anyone but
    /// the requester may.
    pub approvers: Vec<String>,
    /// Jira groups whose members may decide, besides `approvers`.
    pub groups: Vec<String>,
    /// Jira user (account id, key, name or e-mail) to Teleport user.
    pub users: BTreeMap<String, String>,
}

/// The outcome for one decision seen in Jira.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow {
        /// `jira:<email>`, or `jira:<account id>` when Jira hides the e-mail; never just `jira:`
        /// when anything identifies the user.
        delegator: String,
        /// The Teleport user the Jira user maps to, if any.
        teleport_user: Option<String>,
    },
    Refuse(String),
}

impl ApproverPolicy {
    /// Judges a decision by `author` (the one who moved the card) on a request by `requester`;
    /// `in_a_group` is whether the author belongs to one of [`ApproverPolicy::groups`].
    pub fn judge(&self, author: &User, requester: &str, in_a_group: bool) -> Verdict {
        let names = identities(author);
        let Some(who) = author
            .display_name
            .clone()
            .or_else(|| names.first().cloned())
        else {
            return Verdict::Refuse(
                "the Jira user who moved the card could not be identified".into(),
            );
        };
        let teleport_user = names.iter().find_map(|name| self.lookup(name));
        let is_requester = names
            .iter()
            .any(|name| name.eq_ignore_ascii_case(requester))
            || teleport_user
                .as_deref()
                .is_some_and(|user| user.eq_ignore_ascii_case(requester));
        if is_requester {
            return Verdict::Refuse(format!(
                "{who} requested this access and cannot decide their own request"
            ));
        }
        let listed = names
            .iter()
            .any(|name| self.approvers.iter().any(|a| a.eq_ignore_ascii_case(name)));
        if self.restricts() && !listed && !in_a_group {
            return Verdict::Refuse(format!("{who} is not among the configured approvers"));
        }
        let email = author.email_address.clone().filter(|e| !e.is_empty());
        let Some(delegator) = email.or_else(|| author.identity().map(str::to_owned)) else {
            return Verdict::Refuse(format!(
                "{who} has no Jira identity the decision could name"
            ));
        };
        let delegator = format!("jira:{delegator}");
        Verdict::Allow {
            delegator,
            teleport_user,
        }
    }

    /// Whether only some Jira users may decide.
    pub fn restricts(&self) -> bool {
        !self.approvers.is_empty() || !self.groups.is_empty()
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.users
            .iter()
            .find(|(jira, _)| jira.eq_ignore_ascii_case(name))
            .map(|(_, teleport)| teleport.clone())
    }
}

/// Everything that names a Jira user: e-mail first (what operators write), then ids.
fn identities(user: &User) -> Vec<String> {
    [&user.email_address, &user.account_id, &user.key, &user.name]
        .into_iter()
        .flatten()
        .filter(|value| !value.is_empty())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(account: &str, email: Option<&str>) -> User {
        User {
            account_id: Some(account.into()),
            email_address: email.map(str::to_owned),
            display_name: Some(format!("User {account}")),
            ..User::default()
        }
    }

    #[test]
    fn requester_cannot_decide_their_own_request_by_email() {
        let verdict = ApproverPolicy::default().judge(
            &user("a1", Some("alice@example.com")),
            "Alice@Example.com",
            false,
        );
        assert!(
            matches!(verdict, Verdict::Refuse(reason) if reason.contains("cannot decide their own request"))
        );
    }

    #[test]
    fn requester_cannot_decide_through_a_hidden_email_when_mapped() {
        let policy = ApproverPolicy {
            users: [("a1".to_owned(), "alice".to_owned())].into(),
            ..Default::default()
        };
        assert!(matches!(
            policy.judge(&user("a1", None), "alice", false),
            Verdict::Refuse(_)
        ));
    }

    #[test]
    fn allowlist_admits_only_listed_users() {
        let policy = ApproverPolicy {
            approvers: vec!["bob@example.com".into(), "c3".into()],
            ..Default::default()
        };
        assert!(matches!(
            policy.judge(&user("b2", Some("bob@example.com")), "alice", false),
            Verdict::Allow { .. }
        ));
        assert!(matches!(
            policy.judge(&user("c3", None), "alice", false),
            Verdict::Allow { .. }
        ));
        assert!(matches!(
            policy.judge(&user("d4", Some("dan@example.com")), "alice", false),
            Verdict::Refuse(_)
        ));
        assert!(matches!(
            policy.judge(&User::default(), "alice", false),
            Verdict::Refuse(_)
        ));
    }

    #[test]
    fn delegator_is_the_email_or_else_the_account_id() {
        let policy = ApproverPolicy::default();
        let Verdict::Allow { delegator, .. } =
            policy.judge(&user("b2", Some("bob@example.com")), "alice", false)
        else {
            panic!()
        };
        assert_eq!(delegator, "jira:bob@example.com");
        let Verdict::Allow { delegator, .. } = policy.judge(&user("b2", None), "alice", false)
        else {
            panic!()
        };
        assert_eq!(delegator, "jira:b2");
    }

    #[test]
    fn mapping_names_the_teleport_user() {
        let policy = ApproverPolicy {
            users: [("bob@example.com".to_owned(), "bob".to_owned())].into(),
            ..Default::default()
        };
        let Verdict::Allow { teleport_user, .. } =
            policy.judge(&user("b2", Some("bob@example.com")), "alice", false)
        else {
            panic!()
        };
        assert_eq!(teleport_user.as_deref(), Some("bob"));
    }
}
