//! The evaluator's behaviour, case by case, as Teleport documents its Access Monitoring Rule
//! conditions (the Access Monitoring Rules guide and the `lib/expression` functions).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::{Condition, Facts};

fn facts() -> Facts {
    Facts {
        roles: vec!["db-admin".into(), "dev".into()],
        suggested_reviewers: vec!["carol@example.com".into()],
        system_annotations: BTreeMap::from([
            ("env".into(), vec!["prod".into()]),
            ("/jira-project".into(), vec!["OPS".into()]),
        ]),
        user: "alice@example.com".into(),
        request_reason: "Incident INC-42".into(),
        creation_time: "2026-12-04T15:30:00Z".parse().unwrap(),
        expiry: "2026-12-05T15:30:00Z".parse().unwrap(),
        traits: BTreeMap::from([
            ("team".into(), vec!["payments".into(), "sre".into()]),
            ("level".into(), vec!["L2".into()]),
        ]),
    }
}

/// Conditions that hold (true) or not (false) for [`facts`].
const CASES: &[(&str, bool)] = &[
    // Sets and their methods.
    (r#"access_request.spec.roles.contains("db-admin")"#, true),
    (r#"access_request.spec.roles.contains("db")"#, false),
    (
        r#"contains_any(access_request.spec.roles, set("dev", "qa"))"#,
        true,
    ),
    (
        r#"contains_any(access_request.spec.roles, set("qa"))"#,
        false,
    ),
    (
        r#"access_request.spec.roles.contains_any(set("qa", "dev"))"#,
        true,
    ),
    (
        r#"contains_all(access_request.spec.roles, set("dev", "db-admin"))"#,
        true,
    ),
    (
        r#"contains_all(access_request.spec.roles, set("dev", "qa"))"#,
        false,
    ),
    // An empty set of wanted roles must not grant everything.
    ("contains_all(access_request.spec.roles, set())", false),
    ("is_empty(access_request.spec.roles)", false),
    ("is_empty(set())", true),
    ("access_request.spec.roles.isempty()", false),
    (
        r#"union(access_request.spec.roles, set("qa")).contains("qa")"#,
        true,
    ),
    (
        r#"access_request.spec.roles.add("qa").contains("qa")"#,
        true,
    ),
    (
        r#"access_request.spec.roles.remove("dev").contains("dev")"#,
        false,
    ),
    (
        r#"access_request.spec.suggested_reviewers.contains("carol@example.com")"#,
        true,
    ),
    // Dicts: traits and system annotations, indexed or by name; a missing key is an empty set.
    (r#"user.traits["team"].contains("sre")"#, true),
    (r#"user.traits.team.contains("payments")"#, true),
    (r#"user.traits["missing"].contains("x")"#, false),
    (r#"is_empty(user.traits["missing"])"#, true),
    (
        r#"access_request.spec.system_annotations["env"].contains("prod")"#,
        true,
    ),
    (
        r#"access_request.spec.system_annotations["/jira-project"].contains("OPS")"#,
        true,
    ),
    // Strings.
    (r#"access_request.spec.user == "alice@example.com""#, true),
    (r#"access_request.spec.user != "alice@example.com""#, false),
    (r#"strings.lower("ABC") == "abc""#, true),
    (
        r#"strings.upper(access_request.spec.roles).contains("DEV")"#,
        true,
    ),
    (
        r#"strings.replaceall(access_request.spec.user, "@example.com", "") == "alice""#,
        true,
    ),
    (
        r#"strings.split(access_request.spec.user, "@").contains("example.com")"#,
        true,
    ),
    (
        r#"email.local(set(access_request.spec.user)).contains("alice")"#,
        true,
    ),
    (r#"regexp.match(access_request.spec.roles, "^db-")"#, true),
    (
        r#"regexp.match(access_request.spec.request_reason, "INC-[0-9]+")"#,
        true,
    ),
    (
        r#"regexp.match(access_request.spec.roles, "^prod-")"#,
        false,
    ),
    (
        r#"regexp.replace(access_request.spec.roles, "^db-(.*)$", "$1").contains("admin")"#,
        true,
    ),
    // As in Go's RE2, the Perl classes are ASCII: a letter outside ASCII is no word character.
    (r#"regexp.match("jörg", "^\\w+$")"#, false),
    (r#"regexp.match("jorg", "^\\w+$")"#, true),
    // Logic and precedence: && binds tighter than ||, ! tighter than ==.
    (r#"true || false && false"#, true),
    (r#"(true || false) && false"#, false),
    (r#"!access_request.spec.roles.contains("dev")"#, false),
    (r#"!false == true"#, true),
    (
        r#"ifelse(access_request.spec.roles.contains("dev"), "a", "b") == "a""#,
        true,
    ),
    // Times.
    (
        r#"access_request.spec.creation_time.before(access_request.spec.expiry)"#,
        true,
    ),
    (
        r#"access_request.spec.creation_time.after(time.RFC3339("2026-12-05T00:00:00Z"))"#,
        false,
    ),
    (
        r#"between(access_request.spec.creation_time, time.RFC3339("2026-12-04T00:00:00Z"), time.RFC3339("2026-12-05T00:00:00Z"))"#,
        true,
    ),
    // Raw strings, as Go writes them.
    ("regexp.match(access_request.spec.roles, `^db-`)", true),
    // Only a boolean true holds; any other value does not.
    (r#"access_request.spec.user"#, false),
    (r#"set("a")"#, false),
];

#[test]
fn conditions_hold_as_teleport_documents() {
    let facts = facts();
    for (source, want) in CASES {
        let condition = Condition::parse(source).unwrap_or_else(|err| panic!("{source}: {err}"));
        let got = condition
            .holds(&facts)
            .unwrap_or_else(|err| panic!("{source}: {err}"));
        assert_eq!(got, *want, "{source}");
    }
}

/// Conditions that do not parse: the rule is skipped, never evaluated.
const UNPARSABLE: &[&str] = &[
    "",
    "access_request.spec.nonsense",
    r#"unknown_function("a")"#,
    r#"access_request.spec.roles.frobnicate("a")"#,
    r#"access_request.spec.roles.contains("a""#,
    r#"access_request.spec.roles.contains("a") &&"#,
    r#"access_request.spec.roles.contains("a") & true"#,
    r#""unterminated"#,
    "user.traits[",
    "true false",
];

#[test]
fn malformed_conditions_are_refused_at_parse() {
    for source in UNPARSABLE {
        assert!(Condition::parse(source).is_err(), "{source:?} parsed");
    }
}

/// Conditions that parse but fail for this request (type errors, bad patterns): skipped.
const FAILING: &[&str] = &[
    r#"access_request.spec.roles == "dev""#,
    r#"contains_any(access_request.spec.user, set("a"))"#,
    r#"regexp.match(access_request.spec.roles, "(")"#,
    r#"regexp.match(access_request.spec.roles, "\\p{Greek}")"#,
    r#"access_request.spec.user["x"].contains("a")"#,
    r#"access_request.spec.roles.contains("a", "b")"#,
    r#"time.RFC3339("yesterday").before(access_request.spec.expiry)"#,
    r#"!access_request.spec.user"#,
];

#[test]
fn type_errors_fail_evaluation_instead_of_matching() {
    let facts = facts();
    for source in FAILING {
        let condition = Condition::parse(source).unwrap_or_else(|err| panic!("{source}: {err}"));
        assert!(condition.holds(&facts).is_err(), "{source:?} evaluated");
    }
}

#[test]
fn deeply_nested_conditions_are_refused() {
    let source = format!("{}true{}", "(".repeat(500), ")".repeat(500));
    assert!(Condition::parse(&source).is_err());
    let source = format!("{}true", "!".repeat(500));
    assert!(Condition::parse(&source).is_err());
}

#[test]
fn false_left_of_and_skips_the_right_side() {
    // Go short-circuits; a type error on the right must not matter.
    let condition = Condition::parse(r#"false && access_request.spec.roles == "x""#).unwrap();
    assert_eq!(condition.holds(&facts()), Ok(false));
}

#[test]
fn only_conditions_naming_user_traits_read_them() {
    let reads = |source: &str| Condition::parse(source).unwrap().reads_traits();
    assert!(reads(r#"contains_any(user.traits["team"], set("dba"))"#));
    assert!(reads(r#"true && !is_empty(user.traits["groups"])"#));
    assert!(!reads(r#"access_request.spec.user == "alice""#));
    assert!(!reads("true"));
}
