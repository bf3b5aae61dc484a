//! The condition language of Access Monitoring Rules: the part of Teleport's predicate language
//! the access plugins evaluate (`lib/expression` over an access request and its user's traits).
//!
//! A condition is parsed once, when its rule arrives; an unknown name or a syntax error is a
//! [`ParseError`] and the rule never applies. Evaluation returns `true` only for a boolean `true`;
//! a type mismatch is an [`EvalError`] and the rule is skipped for that request (fail closed).

mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use jiff::Timestamp;

/// A condition that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

/// A condition that cannot be evaluated for one request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(String);

/// What a condition can read about a request and its user.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub roles: Vec<String>,
    pub suggested_reviewers: Vec<String>,
    pub system_annotations: BTreeMap<String, Vec<String>>,
    pub user: String,
    pub request_reason: String,
    pub creation_time: Timestamp,
    pub expiry: Timestamp,
    /// The user's traits; empty when Teleport would not tell.
    pub traits: BTreeMap<String, Vec<String>>,
}

/// A parsed condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    root: parser::Expr,
}

impl Condition {
    pub fn parse(source: &str) -> Result<Self, ParseError> {
        let tokens = lexer::tokens(source)?;
        if tokens.is_empty() {
            return Err(ParseError("the condition is empty".into()));
        }
        Ok(Self {
            root: parser::parse(tokens)?,
        })
    }

    /// Whether the condition reads `user.traits` (which cost Teleport calls to learn).
    pub fn reads_traits(&self) -> bool {
        self.root.reads(parser::Variable::Traits)
    }

    /// Whether the condition holds: only a boolean `true` does.
    pub fn holds(&self, facts: &Facts) -> Result<bool, EvalError> {
        Ok(matches!(
            eval::evaluate(&self.root, facts)?,
            eval::Value::Bool(true)
        ))
    }
}
