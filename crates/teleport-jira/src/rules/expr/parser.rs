//! Tokens to a tree. Precedence is Go's: `||` below `&&` below `==`/`!=` below `!`, then calls,
//! methods and indexing. Every name is resolved here, so an unknown variable, function or method
//! fails the parse (and the rule is skipped) rather than evaluating to something surprising.

use super::ParseError;
use super::lexer::Token;

/// The request and user facts a condition can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Variable {
    Roles,
    SuggestedReviewers,
    SystemAnnotations,
    User,
    RequestReason,
    CreationTime,
    Expiry,
    Traits,
}

impl Variable {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "access_request.spec.roles" => Self::Roles,
            "access_request.spec.suggested_reviewers" => Self::SuggestedReviewers,
            "access_request.spec.system_annotations" => Self::SystemAnnotations,
            "access_request.spec.user" => Self::User,
            "access_request.spec.request_reason" => Self::RequestReason,
            "access_request.spec.creation_time" => Self::CreationTime,
            "access_request.spec.expiry" => Self::Expiry,
            "user.traits" => Self::Traits,
            _ => return None,
        })
    }
}

/// Functions, called by their (dotted) name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Function {
    Set,
    Union,
    ContainsAny,
    ContainsAll,
    IsEmpty,
    RegexpMatch,
    RegexpReplace,
    Upper,
    Lower,
    ReplaceAll,
    Split,
    EmailLocal,
    IfElse,
    Before,
    After,
    Between,
    Rfc3339,
}

impl Function {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "set" => Self::Set,
            "union" => Self::Union,
            "contains_any" => Self::ContainsAny,
            "contains_all" => Self::ContainsAll,
            "is_empty" => Self::IsEmpty,
            "regexp.match" => Self::RegexpMatch,
            "regexp.replace" => Self::RegexpReplace,
            "strings.upper" => Self::Upper,
            "strings.lower" => Self::Lower,
            "strings.replaceall" => Self::ReplaceAll,
            "strings.split" => Self::Split,
            "email.local" => Self::EmailLocal,
            "ifelse" => Self::IfElse,
            "before" => Self::Before,
            "after" => Self::After,
            "between" => Self::Between,
            "time.RFC3339" => Self::Rfc3339,
            _ => return None,
        })
    }
}

/// Methods, called on a value (`roles.contains("dev")`); each is its function with the receiver
/// as the first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Method {
    Contains,
    ContainsAny,
    ContainsAll,
    IsEmpty,
    Add,
    Remove,
    Before,
    After,
    Between,
}

impl Method {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "contains" => Self::Contains,
            "contains_any" => Self::ContainsAny,
            "contains_all" => Self::ContainsAll,
            "isempty" | "is_empty" => Self::IsEmpty,
            "add" => Self::Add,
            "remove" => Self::Remove,
            "before" => Self::Before,
            "after" => Self::After,
            "between" => Self::Between,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Expr {
    Str(String),
    Bool(bool),
    Var(Variable),
    Call(Function, Vec<Expr>),
    Method(Box<Expr>, Method, Vec<Expr>),
    Index(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Equal(Box<Expr>, Box<Expr>),
    NotEqual(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Whether `variable` is read anywhere in the expression.
    pub(super) fn reads(&self, variable: Variable) -> bool {
        match self {
            Self::Str(_) | Self::Bool(_) => false,
            Self::Var(v) => *v == variable,
            Self::Call(_, args) => args.iter().any(|a| a.reads(variable)),
            Self::Method(receiver, _, args) => {
                receiver.reads(variable) || args.iter().any(|a| a.reads(variable))
            }
            Self::Not(inner) => inner.reads(variable),
            Self::Index(a, b)
            | Self::And(a, b)
            | Self::Or(a, b)
            | Self::Equal(a, b)
            | Self::NotEqual(a, b) => a.reads(variable) || b.reads(variable),
        }
    }
}

/// Nesting deeper than this is refused, so a hostile rule cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

pub(super) fn parse(tokens: Vec<Token>) -> Result<Expr, ParseError> {
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some(extra) => Err(ParseError(format!(
            "unexpected {extra:?} after the expression"
        ))),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn eat(&mut self, token: &Token) -> bool {
        let found = self.peek() == Some(token);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, token: &Token) -> Result<(), ParseError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(ParseError(format!(
                "expected {token:?}, found {:?}",
                self.peek()
            )))
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.eat(&Token::Or) {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.comparison()?;
        while self.eat(&Token::And) {
            left = Expr::And(Box::new(left), Box::new(self.comparison()?));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        loop {
            if self.eat(&Token::Equal) {
                left = Expr::Equal(Box::new(left), Box::new(self.unary()?));
            } else if self.eat(&Token::NotEqual) {
                left = Expr::NotEqual(Box::new(left), Box::new(self.unary()?));
            } else {
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError("the expression is nested too deeply".into()));
        }
        let expr = if self.eat(&Token::Not) {
            self.unary().map(|inner| Expr::Not(Box::new(inner)))
        } else {
            self.postfix()
        };
        self.depth -= 1;
        expr
    }

    /// A primary followed by any number of `.method(…)` and `[key]`.
    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut expr = self.primary()?;
        loop {
            if self.eat(&Token::OpenBracket) {
                let key = self.or()?;
                self.expect(&Token::CloseBracket)?;
                expr = Expr::Index(Box::new(expr), Box::new(key));
            } else if self.eat(&Token::Dot) {
                let Some(Token::Name(name)) = self.next() else {
                    return Err(ParseError("expected a method name after '.'".into()));
                };
                expr = self.after_name_on(expr, &name)?;
            } else {
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.next() {
            Some(Token::Str(text)) => Ok(Expr::Str(text)),
            Some(Token::Open) => {
                let inner = self.or()?;
                self.expect(&Token::Close)?;
                Ok(inner)
            }
            Some(Token::Name(name)) => self.named(&name),
            other => Err(ParseError(format!("unexpected {other:?}"))),
        }
    }

    /// A dotted name: a literal, a function call, a variable (with dict keys after it) or a
    /// method call on one.
    fn named(&mut self, name: &str) -> Result<Expr, ParseError> {
        match name {
            "true" => return Ok(Expr::Bool(true)),
            "false" => return Ok(Expr::Bool(false)),
            _ => {}
        }
        if self.peek() == Some(&Token::Open) {
            if let Some(function) = Function::named(name) {
                let args = self.arguments()?;
                return Ok(Expr::Call(function, args));
            }
            let Some((receiver, method)) = name.rsplit_once('.') else {
                return Err(ParseError(format!("unknown function {name:?}")));
            };
            let receiver = value_path(receiver)
                .ok_or_else(|| ParseError(format!("unknown function {name:?}")))?;
            return self.after_name_on(receiver, method);
        }
        value_path(name).ok_or_else(|| ParseError(format!("unknown variable {name:?}")))
    }

    /// `receiver.name…`: a method call when `(` follows, else a dict key (`traits.team`).
    fn after_name_on(&mut self, receiver: Expr, name: &str) -> Result<Expr, ParseError> {
        if self.peek() != Some(&Token::Open) {
            return Ok(name.split('.').fold(receiver, |target, key| {
                Expr::Index(Box::new(target), Box::new(Expr::Str(key.to_owned())))
            }));
        }
        let (keys, method_name) = match name.rsplit_once('.') {
            Some((keys, method)) => (Some(keys), method),
            None => (None, name),
        };
        let method = Method::named(method_name)
            .ok_or_else(|| ParseError(format!("unknown method {method_name:?}")))?;
        let receiver = keys
            .into_iter()
            .flat_map(|k| k.split('.'))
            .fold(receiver, |target, key| {
                Expr::Index(Box::new(target), Box::new(Expr::Str(key.to_owned())))
            });
        let args = self.arguments()?;
        Ok(Expr::Method(Box::new(receiver), method, args))
    }

    fn arguments(&mut self) -> Result<Vec<Expr>, ParseError> {
        self.expect(&Token::Open)?;
        let mut args = Vec::new();
        if self.eat(&Token::Close) {
            return Ok(args);
        }
        loop {
            args.push(self.or()?);
            if self.eat(&Token::Close) {
                return Ok(args);
            }
            self.expect(&Token::Comma)?;
        }
    }
}

/// The longest known variable a dotted name starts with; the segments after it are dict keys.
fn value_path(name: &str) -> Option<Expr> {
    let segments: Vec<&str> = name.split('.').collect();
    (1..=segments.len()).rev().find_map(|cut| {
        let variable = Variable::named(&segments[..cut].join("."))?;
        Some(
            segments[cut..]
                .iter()
                .fold(Expr::Var(variable), |target, key| {
                    Expr::Index(Box::new(target), Box::new(Expr::Str((*key).to_owned())))
                }),
        )
    })
}
