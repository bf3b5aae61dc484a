//! The JQL subset the fake understands, with Jira's error messages for what it rejects.
//!
//! Supported: clauses joined by `AND` on `project`, `labels`, `status`, `statusCategory`,
//! `issuetype`, `created`, `updated` (relative periods like `-5m`, `"-1w 2d"`, or dates),
//! `key`/`issuekey`/`id` (including ranges such as `key > PROJ-12`), and `summary`,
//! `description`, `text` with `~`; then `ORDER BY created|updated|key|id [ASC|DESC]`.
//! `OR`, `NOT`, parentheses and functions are refused with a 400 rather than misread, and an
//! `issue.property[...]` clause is refused because token integrations cannot index properties.

use std::cmp::Ordering;

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::model::StatusCategory;
use super::store::{IndexedDoc, Store};

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Word(w) | Tok::Str(w) => w.clone(),
            Tok::Op(op) => (*op).to_string(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Comma => ",".into(),
        }
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

fn syntax(detail: impl AsRef<str>) -> String {
    format!("Error in the JQL Query: {}", detail.as_ref())
}

fn tokenize(jql: &str) -> Result<Vec<Tok>, String> {
    let mut tokens = Vec::new();
    let mut chars = jql.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Tok::LParen);
            }
            ')' => {
                chars.next();
                tokens.push(Tok::RParen);
            }
            ',' => {
                chars.next();
                tokens.push(Tok::Comma);
            }
            '"' | '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(syntax("The quoted string has not been completed.")),
                        Some('\\') => match chars.next() {
                            Some(escaped) => s.push(escaped),
                            None => {
                                return Err(syntax("The quoted string has not been completed."));
                            }
                        },
                        Some(q) if q == c => break,
                        Some(other) => s.push(other),
                    }
                }
                tokens.push(Tok::Str(s));
            }
            '=' => {
                chars.next();
                tokens.push(Tok::Op("="));
            }
            '!' | '<' | '>' => {
                chars.next();
                let eq = chars.peek() == Some(&'=');
                let tilde = chars.peek() == Some(&'~');
                let op = match (c, eq, tilde) {
                    ('!', true, _) => "!=",
                    ('!', _, true) => "!~",
                    ('<', true, _) => "<=",
                    ('>', true, _) => ">=",
                    ('<', ..) => "<",
                    ('>', ..) => ">",
                    _ => return Err(syntax("The character '!' is a reserved JQL character.")),
                };
                if op.len() == 2 {
                    chars.next();
                }
                tokens.push(Tok::Op(op));
            }
            '~' => {
                chars.next();
                tokens.push(Tok::Op("~"));
            }
            _ => {
                let mut word = String::new();
                while let Some(&w) = chars.peek() {
                    if w.is_whitespace() || "()=,!<>~\"'".contains(w) {
                        break;
                    }
                    word.push(w);
                    chars.next();
                }
                tokens.push(Tok::Word(word));
            }
        }
    }
    Ok(tokens)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Cmp::Eq => ordering == Ordering::Equal,
            Cmp::Ne => ordering != Ordering::Equal,
            Cmp::Gt => ordering == Ordering::Greater,
            Cmp::Ge => ordering != Ordering::Less,
            Cmp::Lt => ordering == Ordering::Less,
            Cmp::Le => ordering != Ordering::Greater,
        }
    }
}

/// The operator of a raw clause.
#[derive(Clone, Debug, PartialEq)]
enum RawOp {
    Compare(&'static str),
    In { negate: bool },
    Is { negate: bool },
}

#[derive(Clone, Debug)]
struct RawClause {
    field: String,
    op: RawOp,
    values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SortField {
    Created,
    Updated,
    Key,
    Id,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DateField {
    Created,
    Updated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextField {
    Summary,
    Description,
    Text,
}

#[derive(Clone, Debug)]
enum Clause {
    Project {
        ids: Vec<usize>,
        negate: bool,
    },
    Status {
        ids: Vec<usize>,
        negate: bool,
    },
    IssueType {
        ids: Vec<usize>,
        negate: bool,
    },
    LabelsAny {
        labels: Vec<String>,
        negate: bool,
    },
    LabelsEmpty {
        negate: bool,
    },
    Date {
        field: DateField,
        cmp: Cmp,
        at: OffsetDateTime,
    },
    Key {
        cmp: Cmp,
        project: usize,
        number: u64,
    },
    KeyIn {
        keys: Vec<(usize, u64)>,
        negate: bool,
    },
    Id {
        cmp: Cmp,
        id: u64,
    },
    Text {
        field: TextField,
        needle: String,
        negate: bool,
    },
}

/// A parsed, validated query.
#[derive(Clone, Debug)]
pub(crate) struct Query {
    clauses: Vec<Clause>,
    pub order: Vec<(SortField, bool)>,
}

/// The facts one issue offers to a query: immutable ones from the issue, the rest from the
/// (possibly stale) index document.
pub(crate) struct DocView<'a> {
    pub id: u64,
    pub project: usize,
    pub number: u64,
    pub issue_type: usize,
    pub created: OffsetDateTime,
    pub doc: &'a IndexedDoc,
}

impl Query {
    /// A query without restrictions: Cloud's `search/jql` refuses those.
    pub(crate) fn is_unbounded(&self) -> bool {
        self.clauses.is_empty()
    }

    pub(crate) fn matches(&self, view: &DocView<'_>) -> bool {
        self.clauses
            .iter()
            .all(|clause| clause_matches(clause, view))
    }

    /// Orders by the ORDER BY fields; ties (same millisecond) fall back to the issue id in the
    /// direction of the first sort field, newest first without ORDER BY.
    pub(crate) fn compare(&self, a: &DocView<'_>, b: &DocView<'_>) -> Ordering {
        for &(field, desc) in &self.order {
            let ordering = match field {
                SortField::Created => a.created.cmp(&b.created),
                SortField::Updated => a.doc.updated.cmp(&b.doc.updated),
                SortField::Key => (a.project, a.number).cmp(&(b.project, b.number)),
                SortField::Id => a.id.cmp(&b.id),
            };
            let ordering = if desc { ordering.reverse() } else { ordering };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        match self.order.first() {
            Some((_, false)) => a.id.cmp(&b.id),
            _ => b.id.cmp(&a.id),
        }
    }
}

fn clause_matches(clause: &Clause, v: &DocView<'_>) -> bool {
    match clause {
        Clause::Project { ids, negate } => ids.contains(&v.project) != *negate,
        Clause::Status { ids, negate } => ids.contains(&v.doc.status) != *negate,
        Clause::IssueType { ids, negate } => ids.contains(&v.issue_type) != *negate,
        Clause::LabelsAny { labels, negate } => {
            let hit = v
                .doc
                .labels
                .iter()
                .any(|l| labels.iter().any(|x| x.eq_ignore_ascii_case(l)));
            // `labels != x` and `labels not in (…)` never match an issue without labels.
            if *negate {
                !hit && !v.doc.labels.is_empty()
            } else {
                hit
            }
        }
        Clause::LabelsEmpty { negate } => v.doc.labels.is_empty() != *negate,
        Clause::Date { field, cmp, at } => {
            let t = match field {
                DateField::Created => v.created,
                DateField::Updated => v.doc.updated,
            };
            cmp.holds(t.cmp(at))
        }
        Clause::Key {
            cmp,
            project,
            number,
        } => v.project == *project && cmp.holds(v.number.cmp(number)),
        Clause::KeyIn { keys, negate } => keys.contains(&(v.project, v.number)) != *negate,
        Clause::Id { cmp, id } => cmp.holds(v.id.cmp(id)),
        Clause::Text {
            field,
            needle,
            negate,
        } => {
            let needle = needle.to_lowercase();
            let in_summary = v.doc.summary.to_lowercase().contains(&needle);
            let in_description = v
                .doc
                .description
                .as_deref()
                .is_some_and(|d| d.to_lowercase().contains(&needle));
            let hit = match field {
                TextField::Summary => in_summary,
                TextField::Description => in_description,
                TextField::Text => in_summary || in_description,
            };
            hit != *negate
        }
    }
}

/// Parses and validates `jql` against the store's projects, statuses and issues.
pub(crate) fn parse(jql: &str, store: &Store, now: OffsetDateTime) -> Result<Query, Vec<String>> {
    let tokens = tokenize(jql).map_err(|e| vec![e])?;
    let (raw, order) = parse_tokens(&tokens).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut clauses = Vec::new();
    for clause in raw {
        match compile(&clause, store, now) {
            Ok(c) => clauses.push(c),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(Query { clauses, order })
    } else {
        Err(errors)
    }
}

type Parsed = (Vec<RawClause>, Vec<(SortField, bool)>);

fn parse_tokens(tokens: &[Tok]) -> Result<Parsed, String> {
    let mut pos = 0;
    let mut clauses = Vec::new();
    let mut order = Vec::new();
    let at = |pos: usize| tokens.get(pos);
    while pos < tokens.len() {
        if tokens[pos].is_keyword("order") {
            pos += 1;
            if !at(pos).is_some_and(|t| t.is_keyword("by")) {
                return Err(syntax("Expecting 'BY' after 'ORDER'."));
            }
            pos += 1;
            loop {
                let Some(Tok::Word(field) | Tok::Str(field)) = at(pos) else {
                    return Err(syntax("Expecting a field name after 'ORDER BY'."));
                };
                let sort = match field.to_ascii_lowercase().as_str() {
                    "created" | "createddate" => SortField::Created,
                    "updated" | "updateddate" => SortField::Updated,
                    "key" | "issuekey" => SortField::Key,
                    "id" => SortField::Id,
                    _ => return Err(format!("Not able to sort using field '{field}'.")),
                };
                pos += 1;
                let desc = match at(pos) {
                    Some(t) if t.is_keyword("desc") => {
                        pos += 1;
                        true
                    }
                    Some(t) if t.is_keyword("asc") => {
                        pos += 1;
                        false
                    }
                    _ => false,
                };
                order.push((sort, desc));
                match at(pos) {
                    Some(Tok::Comma) => pos += 1,
                    None => return Ok((clauses, order)),
                    Some(t) => {
                        return Err(syntax(format!(
                            "Expecting ',' or the end of the query but got '{}'.",
                            t.text()
                        )));
                    }
                }
            }
        }
        let (clause, next) = parse_clause(tokens, pos)?;
        clauses.push(clause);
        pos = next;
        match at(pos) {
            None => break,
            Some(t) if t.is_keyword("and") => {
                pos += 1;
                if at(pos).is_none() {
                    return Err(syntax("Expecting a field name at the end of the query."));
                }
            }
            Some(t) if t.is_keyword("order") => {}
            Some(t) if t.is_keyword("or") => {
                return Err(syntax(
                    "FakeJira supports only clauses joined by 'AND'; 'OR' is not supported.",
                ));
            }
            Some(t) => {
                return Err(syntax(format!(
                    "Expecting either 'OR' or 'AND' but got '{}'.",
                    t.text()
                )));
            }
        }
    }
    Ok((clauses, order))
}

fn parse_clause(tokens: &[Tok], pos: usize) -> Result<(RawClause, usize), String> {
    let field = match tokens.get(pos) {
        Some(Tok::LParen) => {
            return Err(syntax("FakeJira does not support parentheses in JQL."));
        }
        Some(t) if t.is_keyword("not") => {
            return Err(syntax("FakeJira does not support 'NOT' before a clause."));
        }
        Some(Tok::Word(w) | Tok::Str(w)) => w.clone(),
        Some(t) => {
            return Err(syntax(format!(
                "Expecting a field name but got '{}'.",
                t.text()
            )));
        }
        None => return Err(syntax("Expecting a field name.")),
    };
    let (op, pos) = parse_operator(tokens, pos + 1)?;
    let (values, pos) = match op {
        RawOp::In { .. } => parse_list(tokens, pos)?,
        RawOp::Is { .. } => match tokens.get(pos) {
            Some(t) if t.is_keyword("empty") || t.is_keyword("null") => (Vec::new(), pos + 1),
            _ => return Err(syntax("Expecting 'EMPTY' or 'NULL' after 'IS'.")),
        },
        RawOp::Compare(_) => parse_single_value(tokens, pos)?,
    };
    Ok((RawClause { field, op, values }, pos))
}

/// The operator at `pos` and the position after it.
fn parse_operator(tokens: &[Tok], pos: usize) -> Result<(RawOp, usize), String> {
    let next_is = |keyword: &str| tokens.get(pos + 1).is_some_and(|t| t.is_keyword(keyword));
    match tokens.get(pos) {
        Some(Tok::Op(op)) => Ok((RawOp::Compare(op), pos + 1)),
        Some(t) if t.is_keyword("in") => Ok((RawOp::In { negate: false }, pos + 1)),
        Some(t) if t.is_keyword("is") && next_is("not") => {
            Ok((RawOp::Is { negate: true }, pos + 2))
        }
        Some(t) if t.is_keyword("is") => Ok((RawOp::Is { negate: false }, pos + 1)),
        Some(t) if t.is_keyword("not") && next_is("in") => {
            Ok((RawOp::In { negate: true }, pos + 2))
        }
        other => {
            let got = other.map(Tok::text).unwrap_or_default();
            Err(syntax(format!(
                "Expecting operator but got '{got}'. The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'."
            )))
        }
    }
}

/// `( value, value, … )` after `IN`.
fn parse_list(tokens: &[Tok], mut pos: usize) -> Result<(Vec<String>, usize), String> {
    if tokens.get(pos) != Some(&Tok::LParen) {
        return Err(syntax("Expecting '(' after 'IN'."));
    }
    pos += 1;
    let mut values = Vec::new();
    loop {
        match tokens.get(pos) {
            Some(Tok::Word(w) | Tok::Str(w)) => values.push(w.clone()),
            _ => return Err(syntax("Expecting a value in the list.")),
        }
        pos += 1;
        match tokens.get(pos) {
            Some(Tok::Comma) => pos += 1,
            Some(Tok::RParen) => return Ok((values, pos + 1)),
            _ => return Err(syntax("Expecting ',' or ')' in the list.")),
        }
    }
}

/// The value after a comparison operator; a function call is refused.
fn parse_single_value(tokens: &[Tok], pos: usize) -> Result<(Vec<String>, usize), String> {
    let value = match tokens.get(pos) {
        Some(Tok::Word(w) | Tok::Str(w)) => w.clone(),
        _ => return Err(syntax("Expecting a value after the operator.")),
    };
    if tokens.get(pos + 1) == Some(&Tok::LParen) {
        return Err(syntax(format!(
            "FakeJira does not support JQL functions such as '{value}()'."
        )));
    }
    Ok((vec![value], pos + 1))
}

fn unknown_field(field: &str) -> String {
    format!("Field '{field}' does not exist or you do not have permission to view it.")
}

fn unsupported_operator(op: &RawOp, field: &str) -> String {
    let op = match op {
        RawOp::Compare(op) => (*op).to_string(),
        RawOp::In { negate: false } => "in".into(),
        RawOp::In { negate: true } => "not in".into(),
        RawOp::Is { negate: false } => "is".into(),
        RawOp::Is { negate: true } => "is not".into(),
    };
    format!("The operator '{op}' is not supported by the '{field}' field.")
}

/// `=`/`!=`/`in`/`not in` as a set membership test.
fn membership(op: &RawOp, field: &str) -> Result<bool, String> {
    match op {
        RawOp::Compare("=") => Ok(false),
        RawOp::Compare("!=") => Ok(true),
        RawOp::In { negate } => Ok(*negate),
        _ => Err(unsupported_operator(op, field)),
    }
}

fn compare_op(op: &RawOp, field: &str) -> Result<Cmp, String> {
    match op {
        RawOp::Compare("=") => Ok(Cmp::Eq),
        RawOp::Compare("!=") => Ok(Cmp::Ne),
        RawOp::Compare(">") => Ok(Cmp::Gt),
        RawOp::Compare(">=") => Ok(Cmp::Ge),
        RawOp::Compare("<") => Ok(Cmp::Lt),
        RawOp::Compare("<=") => Ok(Cmp::Le),
        _ => Err(unsupported_operator(op, field)),
    }
}

fn resolve_all(
    values: &[String],
    field: &str,
    find: impl Fn(&str) -> Option<usize>,
) -> Result<Vec<usize>, String> {
    values
        .iter()
        .map(|v| {
            find(v)
                .ok_or_else(|| format!("The value '{v}' does not exist for the field '{field}'."))
        })
        .collect()
}

fn compile(clause: &RawClause, store: &Store, now: OffsetDateTime) -> Result<Clause, String> {
    let field = clause.field.as_str();
    let lower = field.to_ascii_lowercase();
    if lower.starts_with("issue.property") {
        // Only app-declared (Connect/Forge) properties are indexed; a token integration's are not.
        return Err(unknown_field(field));
    }
    let op = &clause.op;
    let values = &clause.values;
    match lower.as_str() {
        "project" => {
            let negate = membership(op, field)?;
            let ids = resolve_all(values, field, |v| {
                store.project_index(v).or_else(|| {
                    store
                        .projects
                        .iter()
                        .position(|p| p.name.eq_ignore_ascii_case(v))
                })
            })?;
            Ok(Clause::Project { ids, negate })
        }
        "status" => {
            let negate = membership(op, field)?;
            let ids = resolve_all(values, field, |v| store.status_index(v))?;
            Ok(Clause::Status { ids, negate })
        }
        "statuscategory" => compile_status_category(op, field, values, store),
        "issuetype" | "type" => {
            let negate = membership(op, field)?;
            let ids = resolve_all(values, field, |v| {
                store
                    .issue_types
                    .iter()
                    .position(|t| t.name.eq_ignore_ascii_case(v) || t.id == v)
            })?;
            Ok(Clause::IssueType { ids, negate })
        }
        "labels" => match op {
            RawOp::Is { negate } => Ok(Clause::LabelsEmpty { negate: *negate }),
            _ => Ok(Clause::LabelsAny {
                labels: values.clone(),
                negate: membership(op, field)?,
            }),
        },
        "created" | "createddate" => compile_date(DateField::Created, op, field, values, now),
        "updated" | "updateddate" => compile_date(DateField::Updated, op, field, values, now),
        "key" | "issuekey" | "id" => compile_key(op, field, values, store),
        "summary" => compile_text(TextField::Summary, op, field, values),
        "description" => compile_text(TextField::Description, op, field, values),
        "text" => compile_text(TextField::Text, op, field, values),
        _ => Err(unknown_field(field)),
    }
}

/// `statusCategory`: by name, key or id; matches every status of those categories.
fn compile_status_category(
    op: &RawOp,
    field: &str,
    values: &[String],
    store: &Store,
) -> Result<Clause, String> {
    let negate = membership(op, field)?;
    let mut categories = Vec::new();
    for v in values {
        let category = [
            StatusCategory::ToDo,
            StatusCategory::InProgress,
            StatusCategory::Done,
        ]
        .into_iter()
        .find(|c| {
            c.name().eq_ignore_ascii_case(v)
                || c.key().eq_ignore_ascii_case(v)
                || c.id().to_string() == *v
        })
        .ok_or_else(|| format!("The value '{v}' does not exist for the field '{field}'."))?;
        categories.push(category);
    }
    let ids = (0..store.statuses.len())
        .filter(|&s| categories.contains(&store.statuses[s].category))
        .collect();
    Ok(Clause::Status { ids, negate })
}

fn compile_date(
    date_field: DateField,
    op: &RawOp,
    field: &str,
    values: &[String],
    now: OffsetDateTime,
) -> Result<Clause, String> {
    let cmp = compare_op(op, field)?;
    let at = values
        .first()
        .map(|v| parse_date(v, now).ok_or_else(|| invalid_date(v, field)))
        .transpose()?
        .unwrap_or(now);
    Ok(Clause::Date {
        field: date_field,
        cmp,
        at,
    })
}

/// `~` and `!~` only.
fn compile_text(
    text_field: TextField,
    op: &RawOp,
    field: &str,
    values: &[String],
) -> Result<Clause, String> {
    let negate = match op {
        RawOp::Compare("~") => false,
        RawOp::Compare("!~") => true,
        _ => return Err(unsupported_operator(op, field)),
    };
    Ok(Clause::Text {
        field: text_field,
        needle: values.first().cloned().unwrap_or_default(),
        negate,
    })
}

/// Keys and numeric ids are interchangeable in Jira's `key`/`issuekey`/`id` clauses.
enum IssueRef {
    Id(u64),
    Key(usize, u64),
}

fn parse_issue_ref(value: &str, field: &str, store: &Store) -> Result<IssueRef, String> {
    if let Ok(id) = value.parse::<u64>() {
        return Ok(IssueRef::Id(id));
    }
    let invalid = || format!("The issue key '{value}' for field '{field}' is invalid.");
    let (project, number) = value.rsplit_once('-').ok_or_else(invalid)?;
    let number = number.parse::<u64>().map_err(|_| invalid())?;
    let project = store
        .projects
        .iter()
        .position(|p| p.key.eq_ignore_ascii_case(project))
        .ok_or_else(invalid)?;
    Ok(IssueRef::Key(project, number))
}

fn compile_key(
    op: &RawOp,
    field: &str,
    values: &[String],
    store: &Store,
) -> Result<Clause, String> {
    let refs = values
        .iter()
        .map(|v| parse_issue_ref(v, field, store))
        .collect::<Result<Vec<_>, _>>()?;
    let exists = |r: &IssueRef| match r {
        IssueRef::Id(id) => store.issues.iter().any(|i| !i.deleted && i.id == *id),
        IssueRef::Key(p, n) => store
            .issues
            .iter()
            .any(|i| !i.deleted && i.project == *p && i.number == *n),
    };
    let equality = matches!(op, RawOp::Compare("=") | RawOp::In { .. });
    if equality && let Some((value, _)) = values.iter().zip(&refs).find(|(_, r)| !exists(r)) {
        return Err(format!(
            "An issue with key '{value}' does not exist for field '{field}'."
        ));
    }
    if let RawOp::In { negate } = op {
        let mut ids = Vec::new();
        let mut keys = Vec::new();
        for r in refs {
            match r {
                IssueRef::Id(id) => ids.push(id),
                IssueRef::Key(p, n) => keys.push((p, n)),
            }
        }
        // Normalise to keys so one clause covers both spellings.
        for id in ids {
            if let Some(i) = store.issues.iter().find(|i| i.id == id) {
                keys.push((i.project, i.number));
            }
        }
        return Ok(Clause::KeyIn {
            keys,
            negate: *negate,
        });
    }
    let cmp = compare_op(op, field)?;
    match refs.first() {
        Some(IssueRef::Id(id)) => Ok(Clause::Id { cmp, id: *id }),
        Some(IssueRef::Key(project, number)) => Ok(Clause::Key {
            cmp,
            project: *project,
            number: *number,
        }),
        None => Err(syntax("Expecting a value after the operator.")),
    }
}

fn invalid_date(value: &str, field: &str) -> String {
    format!(
        "Date value '{value}' for field '{field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
    )
}

/// A relative period (`-5m`, `"-1w 2d"`, `4h`) from now, or a date in the user's zone (UTC).
fn parse_date(value: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    parse_period(value)
        .map(|d| now + d)
        .or_else(|| parse_absolute(value))
}

fn parse_period(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (negative, rest) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let mut total = Duration::ZERO;
    let mut parts = 0;
    for part in rest.split_whitespace() {
        let unit = part.chars().last()?;
        let amount: i64 = part[..part.len() - unit.len_utf8()].parse().ok()?;
        total += match unit.to_ascii_lowercase() {
            'w' => Duration::weeks(amount),
            'd' => Duration::days(amount),
            'h' => Duration::hours(amount),
            'm' => Duration::minutes(amount),
            _ => return None,
        };
        parts += 1;
    }
    (parts > 0).then_some(if negative { -total } else { total })
}

fn parse_absolute(value: &str) -> Option<OffsetDateTime> {
    let value = value.trim();
    let (date, time) = match value.split_once(' ') {
        Some((d, t)) => (d, Some(t.trim())),
        None => (value, None),
    };
    let sep = if date.contains('/') { '/' } else { '-' };
    let mut parts = date.split(sep);
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let time = match time {
        None => Time::MIDNIGHT,
        Some(t) => {
            let (h, m) = t.split_once(':')?;
            Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()?
        }
    };
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}
