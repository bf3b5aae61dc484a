//! Teleport user → Jira identity: the Cloud account id, or the Data Center username, that
//! watchers, the reporter and mentions need. The user's trait is asked first; then, when allowed,
//! Jira's user search by the user's e-mail, which counts only when it answers exactly one user
//! whose visible e-mail is that address (a prefix search must never pick `johnson@` for `john@`).
//! Answers, negative ones too, are kept for an hour, so a busy requester costs one look-up.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::StepError;
use crate::jira::JiraClient;
use crate::jira::types::User;
use crate::lock::lock;
use crate::teleport::{TeleportClient, TeleportError};

/// How long an answer (found or not) is trusted before it is looked up again.
const ANSWER_TTL: Duration = Duration::from_secs(3600);
/// Answers remembered; past this the stale ones go, then all (forgetting only costs a look-up).
const MAX_REMEMBERED: usize = 10_000;

/// How to find a user's Jira identity.
#[derive(Clone, Copy, Debug)]
pub struct Lookup<'a> {
    /// The Teleport trait holding the Jira identity, e.g. `jira_account_id`.
    pub trait_name: &'a str,
    /// Whether Jira's user search by e-mail may be used when the trait is missing.
    pub email_lookup: bool,
    /// `Some`: only users who can browse this project count (`user/viewissue/search`).
    pub project: Option<&'a str>,
}

/// A Jira identity, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The Cloud account id, or the Data Center username.
    Found(String),
    Unresolved(Unresolved),
}

/// Why a Teleport user has no Jira identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// No trait, and no e-mail search allowed.
    NoTrait,
    /// No trait, and the Teleport user name is not an e-mail to search with.
    NotAnEmail,
    /// Jira's search found nobody with that e-mail (or the plugin may not browse users).
    NoMatch,
    /// Jira's search found this many users: never guessed between.
    Ambiguous(usize),
    /// Jira found one user but hides their e-mail, so it cannot be confirmed as theirs.
    EmailHidden,
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoTrait => f.write_str("no Jira identity trait"),
            Self::NotAnEmail => f.write_str("no Jira identity trait, and the name is no e-mail"),
            Self::NoMatch => f.write_str("no Jira user has this e-mail"),
            Self::Ambiguous(count) => write!(f, "{count} Jira users match this e-mail"),
            Self::EmailHidden => f.write_str("the Jira user found hides their e-mail"),
        }
    }
}

/// Who asked, by what means: answers for one lookup say nothing about another.
type CacheKey = (String, String, bool, Option<String>);

/// Resolves Teleport users to Jira identities, with a bounded one-hour memory.
pub struct People {
    teleport: Arc<TeleportClient>,
    jira: JiraClient,
    answers: Answers,
    /// Teleport refused to tell traits: said once, not on every request.
    traits_warned: AtomicBool,
}

impl People {
    pub fn new(teleport: Arc<TeleportClient>, jira: JiraClient) -> Self {
        Self {
            teleport,
            jira,
            answers: Answers::default(),
            traits_warned: AtomicBool::new(false),
        }
    }

    /// The Jira identity of `teleport_user`. Err only for passing failures (Teleport or Jira
    /// unavailable, 429, 5xx): the caller retries later, and nothing is remembered.
    pub async fn jira_identity(
        &self,
        teleport_user: &str,
        how: &Lookup<'_>,
    ) -> Result<Resolved, StepError> {
        let key = (
            teleport_user.to_owned(),
            how.trait_name.to_owned(),
            how.email_lookup,
            how.project.map(str::to_owned),
        );
        if let Some(known) = self.answers.fresh(&key, Instant::now()) {
            return Ok(known);
        }
        let resolved = self.look_up(teleport_user, how).await?;
        tracing::debug!(user = %teleport_user, resolved = ?resolved, "Looked up a Jira identity");
        self.answers.remember(key, resolved.clone(), Instant::now());
        Ok(resolved)
    }

    async fn look_up(&self, user: &str, how: &Lookup<'_>) -> Result<Resolved, StepError> {
        let traits = self.traits_of(user).await?;
        if let Some(identity) = trait_value(&traits, how.trait_name) {
            return Ok(Resolved::Found(identity.to_owned()));
        }
        if !how.email_lookup {
            return Ok(Resolved::Unresolved(Unresolved::NoTrait));
        }
        if !looks_like_email(user) {
            return Ok(Resolved::Unresolved(Unresolved::NotAnEmail));
        }
        match self.jira.users_matching(user, how.project).await {
            Ok(users) => Ok(the_one_with_email(user, &users)),
            Err(err) if err.is_transient() => Err(err.into()),
            // A refused search (no such project, an old Jira without the resource) finds nobody.
            Err(err) => {
                tracing::debug!(error = %err, "Jira refused the user search");
                Ok(Resolved::Unresolved(Unresolved::NoMatch))
            }
        }
    }

    /// The user's traits; none for a user Teleport does not have, or (warned once) when Teleport
    /// will not tell the plugin. Shared by every reader of traits (Jira identities, and the
    /// conditions of Access Monitoring Rules), so the warning is given once per process.
    pub async fn traits_of(&self, user: &str) -> Result<BTreeMap<String, Vec<String>>, StepError> {
        match self.teleport.user_traits(user).await {
            Ok(traits) => Ok(traits),
            Err(err) if err.is_transient() => Err(err.into()),
            Err(TeleportError::NotFound(_)) => Ok(BTreeMap::new()),
            Err(err) => {
                if !self.traits_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %err, "Cannot read requesters' traits; rules on user.traits will not match, and Jira identities come only from the e-mail search, if enabled (grant the plugin's role user: [read] and user_login_state: [read], as the preset access-plugin role does)");
                }
                Ok(BTreeMap::new())
            }
        }
    }
}

/// Answers by lookup, each with when it was made: at most [`MAX_REMEMBERED`], for
/// [`ANSWER_TTL`].
#[derive(Default)]
struct Answers(Mutex<HashMap<CacheKey, (Instant, Resolved)>>);

impl Answers {
    fn fresh(&self, key: &CacheKey, now: Instant) -> Option<Resolved> {
        lock(&self.0)
            .get(key)
            .filter(|(at, _)| now.saturating_duration_since(*at) < ANSWER_TTL)
            .map(|(_, resolved)| resolved.clone())
    }

    fn remember(&self, key: CacheKey, resolved: Resolved, now: Instant) {
        let mut answers = lock(&self.0);
        if answers.len() >= MAX_REMEMBERED {
            answers.retain(|_, (at, _)| now.saturating_duration_since(*at) < ANSWER_TTL);
        }
        if answers.len() >= MAX_REMEMBERED {
            answers.clear();
        }
        answers.insert(key, (now, resolved));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.0).len()
    }
}

/// The trait's first non-empty value.
fn trait_value<'t>(traits: &'t BTreeMap<String, Vec<String>>, name: &str) -> Option<&'t str> {
    traits
        .get(name)?
        .iter()
        .map(|value| value.trim())
        .find(|value| !value.is_empty())
}

/// `local@domain`, as Teleport's sibling plugins accept a user name as an e-mail: one `@`, both
/// sides non-empty, no spaces or angle brackets (a display-name form is not a user name).
pub fn looks_like_email(name: &str) -> bool {
    let Some((local, domain)) = name.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';'))
}

/// The search's answer for `email`: exactly one user, whose visible e-mail is `email`.
fn the_one_with_email(email: &str, users: &[User]) -> Resolved {
    let [user] = users else {
        return Resolved::Unresolved(match users.len() {
            0 => Unresolved::NoMatch,
            count => Unresolved::Ambiguous(count),
        });
    };
    let visible = user.email_address.as_deref().filter(|e| !e.is_empty());
    match (visible, identity_of(user)) {
        (None, _) => Resolved::Unresolved(Unresolved::EmailHidden),
        (Some(found), Some(identity)) if found.eq_ignore_ascii_case(email) => {
            Resolved::Found(identity.to_owned())
        }
        _ => Resolved::Unresolved(Unresolved::NoMatch),
    }
}

/// What watchers, reporter and mentions take: the account id on Cloud, the username on Data
/// Center (whose users have no account id).
fn identity_of(user: &User) -> Option<&str> {
    [&user.account_id, &user.name]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .find(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(account_id: Option<&str>, name: Option<&str>, email: Option<&str>) -> User {
        User {
            account_id: account_id.map(str::to_owned),
            name: name.map(str::to_owned),
            email_address: email.map(str::to_owned),
            ..User::default()
        }
    }

    fn unresolved(why: Unresolved) -> Resolved {
        Resolved::Unresolved(why)
    }

    #[test]
    fn the_first_non_empty_trait_value_is_the_identity() {
        let traits = BTreeMap::from([(
            "jira_account_id".to_owned(),
            vec![" ".to_owned(), "acc-1".to_owned(), "acc-2".to_owned()],
        )]);
        assert_eq!(trait_value(&traits, "jira_account_id"), Some("acc-1"));
        assert_eq!(trait_value(&traits, "other"), None);
        let empty = BTreeMap::from([("jira_account_id".to_owned(), vec![String::new()])]);
        assert_eq!(trait_value(&empty, "jira_account_id"), None);
    }

    #[test]
    fn only_plain_addresses_look_like_emails() {
        assert!(looks_like_email("alice@example.com"));
        assert!(looks_like_email("a.b+c@sub.example.org"));
        for not in [
            "alice",
            "@example.com",
            "alice@",
            "a@b@c",
            "Alice <alice@example.com>",
            "al ice@example.com",
        ] {
            assert!(!looks_like_email(not), "{not}");
        }
    }

    #[test]
    fn one_user_with_the_same_visible_email_is_found_by_account_id() {
        let users = [user(Some("acc-1"), None, Some("Alice@Example.com"))];
        assert_eq!(
            the_one_with_email("alice@example.com", &users),
            Resolved::Found("acc-1".into())
        );
    }

    #[test]
    fn data_center_users_are_found_by_username() {
        let users = [user(None, Some("alice"), Some("alice@example.com"))];
        assert_eq!(
            the_one_with_email("alice@example.com", &users),
            Resolved::Found("alice".into())
        );
    }

    #[test]
    fn no_user_is_no_match() {
        assert_eq!(
            the_one_with_email("alice@example.com", &[]),
            unresolved(Unresolved::NoMatch)
        );
    }

    #[test]
    fn two_users_are_ambiguous_even_when_one_has_the_email() {
        let users = [
            user(Some("acc-1"), None, Some("john@example.com")),
            user(Some("acc-2"), None, Some("john@example.com.au")),
        ];
        assert_eq!(
            the_one_with_email("john@example.com", &users),
            unresolved(Unresolved::Ambiguous(2))
        );
    }

    #[test]
    fn a_prefix_match_with_another_email_is_no_match() {
        let users = [user(Some("acc-1"), None, Some("johnson@example.com"))];
        assert_eq!(
            the_one_with_email("john@example.com", &users),
            unresolved(Unresolved::NoMatch)
        );
    }

    #[test]
    fn a_user_hiding_their_email_is_not_guessed() {
        let users = [user(Some("acc-1"), None, None)];
        assert_eq!(
            the_one_with_email("alice@example.com", &users),
            unresolved(Unresolved::EmailHidden)
        );
    }

    fn key(user: &str) -> CacheKey {
        (user.to_owned(), "jira_account_id".to_owned(), true, None)
    }

    #[test]
    fn answers_negative_ones_too_are_kept_for_an_hour() {
        let answers = Answers::default();
        let at = Instant::now();
        answers.remember(key("bob"), unresolved(Unresolved::NoMatch), at);
        let later = at + ANSWER_TTL - Duration::from_secs(1);
        assert_eq!(
            answers.fresh(&key("bob"), later),
            Some(unresolved(Unresolved::NoMatch))
        );
        assert_eq!(answers.fresh(&key("bob"), at + ANSWER_TTL), None);
        assert_eq!(answers.fresh(&key("alice"), at), None);
    }

    #[test]
    fn answers_stay_bounded() {
        let answers = Answers::default();
        let at = Instant::now();
        for n in 0..=MAX_REMEMBERED {
            answers.remember(key(&n.to_string()), Resolved::Found(n.to_string()), at);
        }
        assert!(answers.len() <= MAX_REMEMBERED);
        assert!(
            answers
                .fresh(&key(&MAX_REMEMBERED.to_string()), at)
                .is_some()
        );
    }

    #[test]
    fn reasons_read_as_short_sentences() {
        assert_eq!(
            Unresolved::Ambiguous(3).to_string(),
            "3 Jira users match this e-mail"
        );
        assert_eq!(Unresolved::NoTrait.to_string(), "no Jira identity trait");
    }
}
