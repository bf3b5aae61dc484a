//! Evaluating a parsed condition over one request's facts. Types are checked as Teleport checks
//! them: a set where a set is expected (string functions take a string or a set), and a type
//! mismatch is an error, which skips the rule rather than guessing.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::parser::{Expr, Function, Method, Variable};
use super::{EvalError, Facts};

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value {
    Bool(bool),
    Str(String),
    Set(BTreeSet<String>),
    Dict(BTreeMap<String, BTreeSet<String>>),
    Time(Timestamp),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Self::Bool(_) => "bool",
            Self::Str(_) => "string",
            Self::Set(_) => "set",
            Self::Dict(_) => "dict",
            Self::Time(_) => "time",
        }
    }
}

fn mismatch(wanted: &str, got: &Value) -> EvalError {
    EvalError(format!("expected a {wanted}, got a {}", got.kind()))
}

pub(super) fn evaluate(expr: &Expr, facts: &Facts) -> Result<Value, EvalError> {
    Ok(match expr {
        Expr::Str(text) => Value::Str(text.clone()),
        Expr::Bool(b) => Value::Bool(*b),
        Expr::Var(variable) => variable_value(*variable, facts),
        Expr::Not(inner) => Value::Bool(!boolean(inner, facts)?),
        // Both sides short-circuit, as in Go.
        Expr::And(left, right) => Value::Bool(boolean(left, facts)? && boolean(right, facts)?),
        Expr::Or(left, right) => Value::Bool(boolean(left, facts)? || boolean(right, facts)?),
        Expr::Equal(left, right) => Value::Bool(equal(left, right, facts)?),
        Expr::NotEqual(left, right) => Value::Bool(!equal(left, right, facts)?),
        Expr::Index(target, key) => {
            let Value::Dict(dict) = evaluate(target, facts)? else {
                return Err(EvalError("only a dict can be indexed".into()));
            };
            let key = string(key, facts)?;
            Value::Set(dict.get(&key).cloned().unwrap_or_default())
        }
        Expr::Call(function, args) => call(*function, args, facts)?,
        Expr::Method(receiver, method, args) => method_call(receiver, *method, args, facts)?,
    })
}

fn variable_value(variable: Variable, facts: &Facts) -> Value {
    let set = |items: &[String]| Value::Set(items.iter().cloned().collect());
    let dict = |map: &BTreeMap<String, Vec<String>>| {
        Value::Dict(
            map.iter()
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                .collect(),
        )
    };
    match variable {
        Variable::Roles => set(&facts.roles),
        Variable::SuggestedReviewers => set(&facts.suggested_reviewers),
        Variable::SystemAnnotations => dict(&facts.system_annotations),
        Variable::User => Value::Str(facts.user.clone()),
        Variable::RequestReason => Value::Str(facts.request_reason.clone()),
        Variable::CreationTime => Value::Time(facts.creation_time),
        Variable::Expiry => Value::Time(facts.expiry),
        Variable::Traits => dict(&facts.traits),
    }
}

fn boolean(expr: &Expr, facts: &Facts) -> Result<bool, EvalError> {
    match evaluate(expr, facts)? {
        Value::Bool(b) => Ok(b),
        other => Err(mismatch("bool", &other)),
    }
}

fn string(expr: &Expr, facts: &Facts) -> Result<String, EvalError> {
    match evaluate(expr, facts)? {
        Value::Str(s) => Ok(s),
        other => Err(mismatch("string", &other)),
    }
}

fn set(expr: &Expr, facts: &Facts) -> Result<BTreeSet<String>, EvalError> {
    match evaluate(expr, facts)? {
        Value::Set(s) => Ok(s),
        other => Err(mismatch("set", &other)),
    }
}

fn time(expr: &Expr, facts: &Facts) -> Result<Timestamp, EvalError> {
    match evaluate(expr, facts)? {
        Value::Time(t) => Ok(t),
        other => Err(mismatch("time", &other)),
    }
}

/// A string or a set, as a set (the string functions take either).
fn strings(expr: &Expr, facts: &Facts) -> Result<(BTreeSet<String>, bool), EvalError> {
    match evaluate(expr, facts)? {
        Value::Str(s) => Ok((BTreeSet::from([s]), true)),
        Value::Set(s) => Ok((s, false)),
        other => Err(mismatch("string or set", &other)),
    }
}

fn equal(left: &Expr, right: &Expr, facts: &Facts) -> Result<bool, EvalError> {
    let (left, right) = (evaluate(left, facts)?, evaluate(right, facts)?);
    if left.kind() != right.kind() {
        return Err(EvalError(format!(
            "cannot compare a {} with a {}",
            left.kind(),
            right.kind()
        )));
    }
    Ok(left == right)
}

fn arity(args: &[Expr], wanted: usize, name: &str) -> Result<(), EvalError> {
    if args.len() == wanted {
        Ok(())
    } else {
        Err(EvalError(format!(
            "{name} takes {wanted} argument(s), got {}",
            args.len()
        )))
    }
}

fn call(function: Function, args: &[Expr], facts: &Facts) -> Result<Value, EvalError> {
    let name = format!("{function:?}");
    Ok(match function {
        Function::Set => Value::Set(
            args.iter()
                .map(|arg| string(arg, facts))
                .collect::<Result<_, _>>()?,
        ),
        Function::Union => {
            let mut all = BTreeSet::new();
            for arg in args {
                all.extend(set(arg, facts)?);
            }
            Value::Set(all)
        }
        Function::ContainsAny => {
            arity(args, 2, &name)?;
            Value::Bool(contains_any(&set(&args[0], facts)?, &set(&args[1], facts)?))
        }
        Function::ContainsAll => {
            arity(args, 2, &name)?;
            Value::Bool(contains_all(&set(&args[0], facts)?, &set(&args[1], facts)?))
        }
        Function::IsEmpty => {
            arity(args, 1, &name)?;
            Value::Bool(set(&args[0], facts)?.is_empty())
        }
        Function::RegexpMatch => {
            arity(args, 2, &name)?;
            let (inputs, _) = strings(&args[0], facts)?;
            let pattern = regex(&string(&args[1], facts)?)?;
            Value::Bool(inputs.iter().any(|input| pattern.is_match(input)))
        }
        Function::RegexpReplace => {
            arity(args, 3, &name)?;
            let (inputs, _) = strings(&args[0], facts)?;
            let pattern = regex(&string(&args[1], facts)?)?;
            let replacement = go_replacement(&string(&args[2], facts)?);
            // Like Teleport's: values the pattern does not match are dropped.
            Value::Set(
                inputs
                    .iter()
                    .filter(|input| pattern.is_match(input))
                    .map(|input| {
                        pattern
                            .replace_all(input, replacement.as_str())
                            .into_owned()
                    })
                    .collect(),
            )
        }
        Function::Upper => transform(args, facts, &name, |s| s.to_uppercase())?,
        Function::Lower => transform(args, facts, &name, |s| s.to_lowercase())?,
        Function::ReplaceAll => {
            arity(args, 3, &name)?;
            let (from, to) = (string(&args[1], facts)?, string(&args[2], facts)?);
            transform(&args[..1], facts, &name, |s| s.replace(&from, &to))?
        }
        Function::Split => {
            arity(args, 2, &name)?;
            let (inputs, _) = strings(&args[0], facts)?;
            let separator = string(&args[1], facts)?;
            Value::Set(
                inputs
                    .iter()
                    .flat_map(|input| input.split(separator.as_str()).map(str::to_owned))
                    .collect(),
            )
        }
        Function::EmailLocal => {
            arity(args, 1, &name)?;
            let (inputs, _) = strings(&args[0], facts)?;
            let locals = inputs.iter().map(|address| match address.split_once('@') {
                Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                    Ok(local.to_owned())
                }
                _ => Err(EvalError(format!("{address:?} is not an e-mail address"))),
            });
            Value::Set(locals.collect::<Result<_, _>>()?)
        }
        Function::IfElse => {
            arity(args, 3, &name)?;
            let chosen = if boolean(&args[0], facts)? {
                &args[1]
            } else {
                &args[2]
            };
            evaluate(chosen, facts)?
        }
        Function::Before | Function::After | Function::Between => {
            let (first, rest) = args
                .split_first()
                .ok_or_else(|| EvalError(format!("{name} takes a time first")))?;
            compare_times(function_as_method(function), first, rest, facts)?
        }
        Function::Rfc3339 => {
            arity(args, 1, &name)?;
            let text = string(&args[0], facts)?;
            Value::Time(
                text.parse()
                    .map_err(|err| EvalError(format!("{text:?} is not an RFC 3339 time: {err}")))?,
            )
        }
    })
}

fn function_as_method(function: Function) -> Method {
    match function {
        Function::Before => Method::Before,
        Function::After => Method::After,
        _ => Method::Between,
    }
}

fn method_call(
    receiver: &Expr,
    method: Method,
    args: &[Expr],
    facts: &Facts,
) -> Result<Value, EvalError> {
    let name = format!("{method:?}");
    Ok(match method {
        Method::Contains => {
            arity(args, 1, &name)?;
            Value::Bool(set(receiver, facts)?.contains(&string(&args[0], facts)?))
        }
        Method::ContainsAny => {
            arity(args, 1, &name)?;
            Value::Bool(contains_any(&set(receiver, facts)?, &set(&args[0], facts)?))
        }
        Method::ContainsAll => {
            arity(args, 1, &name)?;
            Value::Bool(contains_all(&set(receiver, facts)?, &set(&args[0], facts)?))
        }
        Method::IsEmpty => {
            arity(args, 0, &name)?;
            Value::Bool(set(receiver, facts)?.is_empty())
        }
        Method::Add | Method::Remove => {
            let mut items = set(receiver, facts)?;
            for arg in args {
                let item = string(arg, facts)?;
                if method == Method::Add {
                    items.insert(item);
                } else {
                    items.remove(&item);
                }
            }
            Value::Set(items)
        }
        Method::Before | Method::After | Method::Between => {
            compare_times(method, receiver, args, facts)?
        }
    })
}

fn compare_times(
    method: Method,
    subject: &Expr,
    bounds: &[Expr],
    facts: &Facts,
) -> Result<Value, EvalError> {
    let subject = time(subject, facts)?;
    let bounds: Vec<Timestamp> = bounds
        .iter()
        .map(|bound| time(bound, facts))
        .collect::<Result<_, _>>()?;
    Ok(Value::Bool(match (method, bounds.as_slice()) {
        (Method::Before, [bound]) => subject < *bound,
        (Method::After, [bound]) => subject > *bound,
        (Method::Between, [start, end]) => *start <= subject && subject < *end,
        _ => return Err(EvalError(format!("wrong number of times for {method:?}"))),
    }))
}

fn transform(
    args: &[Expr],
    facts: &Facts,
    name: &str,
    change: impl Fn(&str) -> String,
) -> Result<Value, EvalError> {
    arity(args, 1, name)?;
    let (inputs, was_string) = strings(&args[0], facts)?;
    let mut changed = inputs.iter().map(|s| change(s));
    Ok(if was_string {
        Value::Str(changed.next().unwrap_or_default())
    } else {
        Value::Set(changed.collect())
    })
}

fn contains_any(items: &BTreeSet<String>, wanted: &BTreeSet<String>) -> bool {
    wanted.iter().any(|item| items.contains(item))
}

/// False when nothing is wanted, as in Teleport: an empty list must not match everything.
fn contains_all(items: &BTreeSet<String>, wanted: &BTreeSet<String>) -> bool {
    !wanted.is_empty() && wanted.iter().all(|item| items.contains(item))
}

fn regex(pattern: &str) -> Result<regex_lite::Regex, EvalError> {
    regex_lite::Regex::new(pattern)
        .map_err(|err| EvalError(format!("bad regular expression {pattern:?}: {err}")))
}

/// Go writes capture references as `$1` or `${name}`; the regex crate reads `$1a` as a group
/// named `1a`, so numbered references are braced.
fn go_replacement(replacement: &str) -> String {
    let mut out = String::with_capacity(replacement.len());
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('{');
            while let Some(digit) = chars.next_if(char::is_ascii_digit) {
                out.push(digit);
            }
            out.push('}');
        }
    }
    out
}
