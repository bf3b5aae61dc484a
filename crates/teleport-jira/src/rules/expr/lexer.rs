//! Splits a condition into tokens. Names keep their dots (`access_request.spec.roles`,
//! `strings.lower`), because Teleport's variables and functions are dotted names; string literals
//! follow Go's syntax (`"…"` with escapes, or `` `…` `` raw), as Teleport parses them with Go's parser.

use super::ParseError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Token {
    Name(String),
    Str(String),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Comma,
    Dot,
    And,
    Or,
    Not,
    Equal,
    NotEqual,
}

pub(super) fn tokens(source: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut chars = source.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        let token = match c {
            c if c.is_whitespace() => {
                chars.next();
                continue;
            }
            '(' => single(&mut chars, Token::Open),
            ')' => single(&mut chars, Token::Close),
            '[' => single(&mut chars, Token::OpenBracket),
            ']' => single(&mut chars, Token::CloseBracket),
            ',' => single(&mut chars, Token::Comma),
            '.' => single(&mut chars, Token::Dot),
            '&' => pair(&mut chars, '&', Token::And, at)?,
            '|' => pair(&mut chars, '|', Token::Or, at)?,
            '=' => pair(&mut chars, '=', Token::Equal, at)?,
            '!' => {
                chars.next();
                if chars.next_if(|&(_, c)| c == '=').is_some() {
                    Token::NotEqual
                } else {
                    Token::Not
                }
            }
            '"' => Token::Str(quoted(&mut chars, at)?),
            '`' => Token::Str(raw(&mut chars, at)?),
            c if c.is_ascii_alphabetic() || c == '_' => Token::Name(name(&mut chars)),
            other => {
                return Err(ParseError(format!(
                    "unexpected character {other:?} at offset {at}"
                )));
            }
        };
        out.push(token);
    }
    Ok(out)
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

fn single(chars: &mut Chars<'_>, token: Token) -> Token {
    chars.next();
    token
}

fn pair(chars: &mut Chars<'_>, second: char, token: Token, at: usize) -> Result<Token, ParseError> {
    chars.next();
    match chars.next() {
        Some((_, c)) if c == second => Ok(token),
        _ => Err(ParseError(format!(
            "expected {second}{second} at offset {at}"
        ))),
    }
}

/// A name with its dots: segments of letters, digits and `_`, each starting with a letter or `_`.
fn name(chars: &mut Chars<'_>) -> String {
    let mut text = String::new();
    while let Some((_, c)) = chars.next_if(|&(_, c)| c.is_ascii_alphanumeric() || c == '_') {
        text.push(c);
        let mut lookahead = chars.clone();
        if lookahead.next().is_some_and(|(_, c)| c == '.')
            && lookahead
                .peek()
                .is_some_and(|&(_, c)| c.is_ascii_alphabetic() || c == '_')
        {
            chars.next();
            text.push('.');
        }
    }
    text
}

fn quoted(chars: &mut Chars<'_>, at: usize) -> Result<String, ParseError> {
    chars.next();
    let mut text = String::new();
    loop {
        match chars.next() {
            None => return Err(ParseError(format!("unterminated string at offset {at}"))),
            Some((_, '"')) => return Ok(text),
            Some((_, '\\')) => match chars.next() {
                Some((_, 'n')) => text.push('\n'),
                Some((_, 't')) => text.push('\t'),
                Some((_, 'r')) => text.push('\r'),
                Some((_, c @ ('\\' | '"' | '\''))) => text.push(c),
                other => {
                    return Err(ParseError(format!(
                        "unknown escape {:?} in the string at offset {at}",
                        other.map(|(_, c)| c)
                    )));
                }
            },
            Some((_, c)) => text.push(c),
        }
    }
}

fn raw(chars: &mut Chars<'_>, at: usize) -> Result<String, ParseError> {
    chars.next();
    let mut text = String::new();
    for (_, c) in chars.by_ref() {
        if c == '`' {
            return Ok(text);
        }
        text.push(c);
    }
    Err(ParseError(format!("unterminated string at offset {at}")))
}
