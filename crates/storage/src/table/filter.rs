//! The OData `$filter` subset the table service understands: comparisons
//! (`eq ne gt ge lt le`) joined by `and`, `or`, `not` and parentheses, over
//! property names and typed literals (string, Int32, Int64 `L`, double,
//! boolean, `datetime'..'`, `guid'..'`, `X'..'` / `binary'..'`).
//!
//! Comparisons are typed as the service types them: a value of another
//! type than the literal never matches (an Int32 property never equals
//! `5L`), and a property the entity lacks never matches either.
//!
//! Pure: a string in, an expression tree out; evaluation takes a lookup
//! function. [`Filter::key_bounds`] reads the PartitionKey / RowKey bounds
//! the filter implies, so the store can scan only that key range.

use std::cmp::Ordering;

use super::datetime::parse_datetime;
use super::edm::Value;

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Property(String),
    Literal(Value),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare(Operand, Op, Operand),
    /// A lone operand used as a condition (a boolean property or literal).
    Truth(Operand),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

/// Why a filter did not parse (reported as 400 InvalidInput).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    Word(String),
    Literal(Value),
}

/// Deepest nesting accepted (keeps recursion bounded on hostile input).
const MAX_DEPTH: usize = 100;
/// Longest filter accepted, in bytes.
pub const MAX_LEN: usize = 32 * 1024;

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

fn tokenize(s: &str) -> Result<Vec<Token>, ParseError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'(' {
            out.push(Token::LParen);
            i += 1;
        } else if c == b')' {
            out.push(Token::RParen);
            i += 1;
        } else if c == b'\'' {
            let (text, next) = quoted(s, i)?;
            out.push(Token::Literal(Value::String(text)));
            i = next;
        } else if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' {
            let start = i;
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'.'
                    || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
            out.push(Token::Literal(number(&s[start..i])?));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &s[start..i];
            if i < b.len() && b[i] == b'\'' {
                let (text, next) = quoted(s, i)?;
                i = next;
                out.push(Token::Literal(typed_literal(word, &text)?));
            } else {
                out.push(match word {
                    "true" => Token::Literal(Value::Bool(true)),
                    "false" => Token::Literal(Value::Bool(false)),
                    _ => Token::Word(word.to_string()),
                });
            }
        } else {
            return err(format!(
                "unexpected character {:?} at position {i}",
                s[i..].chars().next().unwrap_or('?')
            ));
        }
    }
    Ok(out)
}

/// A `'...'` literal starting at `i` (`''` is a quote); returns the text
/// and the index after the closing quote.
fn quoted(s: &str, i: usize) -> Result<(String, usize), ParseError> {
    let b = s.as_bytes();
    let mut j = i + 1;
    let mut text = String::new();
    let mut run = j;
    loop {
        if j >= b.len() {
            return err("unterminated string literal");
        }
        if b[j] == b'\'' {
            text.push_str(&s[run..j]);
            if j + 1 < b.len() && b[j + 1] == b'\'' {
                text.push('\'');
                j += 2;
                run = j;
                continue;
            }
            return Ok((text, j + 1));
        }
        j += 1;
    }
}

fn typed_literal(prefix: &str, text: &str) -> Result<Value, ParseError> {
    match prefix {
        "datetime" => parse_datetime(text)
            .map(Value::DateTime)
            .ok_or_else(|| ParseError(format!("invalid datetime literal '{text}'"))),
        "guid" => uuid::Uuid::parse_str(text)
            .map(Value::Guid)
            .map_err(|_| ParseError(format!("invalid guid literal '{text}'"))),
        "X" | "binary" => {
            if !text.len().is_multiple_of(2) {
                return err(format!("invalid binary literal '{text}'"));
            }
            hex::decode(text)
                .map(Value::Binary)
                .map_err(|_| ParseError(format!("invalid binary literal '{text}'")))
        }
        other => err(format!("unknown literal type {other}")),
    }
}

fn number(t: &str) -> Result<Value, ParseError> {
    let bad = || ParseError(format!("invalid number literal {t}"));
    if let Some(digits) = t.strip_suffix('L').or_else(|| t.strip_suffix('l')) {
        return digits.parse().map(Value::Int64).map_err(|_| bad());
    }
    let is_float = t.contains(['.', 'e', 'E']) || t.ends_with(['d', 'D']);
    if is_float {
        let body = t.strip_suffix(['d', 'D']).unwrap_or(t);
        if !body
            .bytes()
            .all(|c| c.is_ascii_digit() || b".eE+-".contains(&c))
        {
            return Err(bad());
        }
        return body.parse().map(Value::Double).map_err(|_| bad());
    }
    if !t
        .trim_start_matches(['-', '+'])
        .bytes()
        .all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    match t.parse::<i64>() {
        Ok(n) => Ok(i32::try_from(n).map_or(Value::Int64(n), Value::Int32)),
        Err(_) => Err(bad()),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<&str> {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) => Some(w),
            _ => None,
        }
    }

    fn deeper(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err("the filter is nested too deeply");
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Filter, ParseError> {
        self.deeper()?;
        let mut left = self.and()?;
        while self.peek_word() == Some("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ParseError> {
        let mut left = self.not()?;
        while self.peek_word() == Some("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Filter, ParseError> {
        if self.peek_word() == Some("not") {
            self.pos += 1;
            self.deeper()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Filter, ParseError> {
        if self.tokens.get(self.pos) == Some(&Token::LParen) {
            self.pos += 1;
            let inner = self.or()?;
            if self.tokens.get(self.pos) != Some(&Token::RParen) {
                return err("missing closing parenthesis");
            }
            self.pos += 1;
            return Ok(inner);
        }
        let left = self.operand()?;
        let op = match self.peek_word() {
            Some("eq") => Op::Eq,
            Some("ne") => Op::Ne,
            Some("gt") => Op::Gt,
            Some("ge") => Op::Ge,
            Some("lt") => Op::Lt,
            Some("le") => Op::Le,
            _ => return Ok(Filter::Truth(left)),
        };
        self.pos += 1;
        let right = self.operand()?;
        Ok(Filter::Compare(left, op, right))
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Literal(v)) => {
                self.pos += 1;
                Ok(Operand::Literal(v))
            }
            Some(Token::Word(w))
                if !matches!(
                    w.as_str(),
                    "and" | "or" | "not" | "eq" | "ne" | "gt" | "ge" | "lt" | "le"
                ) =>
            {
                self.pos += 1;
                Ok(Operand::Property(w))
            }
            Some(t) => err(format!("unexpected {t:?}")),
            None => err("the filter ends too early"),
        }
    }
}

impl Filter {
    /// Parses a `$filter` value.
    pub fn parse(s: &str) -> Result<Filter, ParseError> {
        if s.len() > MAX_LEN {
            return err("the filter is too long");
        }
        let tokens = tokenize(s)?;
        if tokens.is_empty() {
            return err("the filter is empty");
        }
        let mut p = Parser {
            tokens,
            pos: 0,
            depth: 0,
        };
        let f = p.or()?;
        if p.pos != p.tokens.len() {
            return err(format!("unexpected {:?}", p.tokens[p.pos]));
        }
        Ok(f)
    }

    /// Whether an entity matches; `get` looks a property up.
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<Value>) -> bool {
        match self {
            Filter::Compare(a, op, b) => {
                // Literals are compared in place; only properties are looked up.
                let (fa, fb);
                let a = match a {
                    Operand::Literal(v) => v,
                    Operand::Property(n) => match get(n) {
                        Some(v) => {
                            fa = v;
                            &fa
                        }
                        None => return false,
                    },
                };
                let b = match b {
                    Operand::Literal(v) => v,
                    Operand::Property(n) => match get(n) {
                        Some(v) => {
                            fb = v;
                            &fb
                        }
                        None => return false,
                    },
                };
                compare(a, *op, b)
            }
            Filter::Truth(o) => matches!(resolve(o, get), Some(Value::Bool(true))),
            Filter::And(a, b) => a.matches(get) && b.matches(get),
            Filter::Or(a, b) => a.matches(get) || b.matches(get),
            Filter::Not(a) => !a.matches(get),
        }
    }

    /// The key range every match lies in, from comparisons of PartitionKey
    /// and RowKey with strings joined by `and` at the top level.
    pub fn key_bounds(&self) -> KeyBounds {
        let mut k = KeyBounds::default();
        self.collect_bounds(&mut k);
        k
    }

    fn collect_bounds(&self, k: &mut KeyBounds) {
        match self {
            Filter::And(a, b) => {
                a.collect_bounds(k);
                b.collect_bounds(k);
            }
            Filter::Compare(a, op, b) => {
                let (name, op, v) = match (a, b) {
                    (Operand::Property(n), Operand::Literal(Value::String(v))) => (n, *op, v),
                    (Operand::Literal(Value::String(v)), Operand::Property(n)) => (n, flip(*op), v),
                    _ => return,
                };
                let range = match name.as_str() {
                    "PartitionKey" => &mut k.partition,
                    "RowKey" => &mut k.row,
                    _ => return,
                };
                range.narrow(op, v);
            }
            _ => {}
        }
    }
}

fn flip(op: Op) -> Op {
    match op {
        Op::Gt => Op::Lt,
        Op::Ge => Op::Le,
        Op::Lt => Op::Gt,
        Op::Le => Op::Ge,
        o => o,
    }
}

/// A bound on a key: the value and whether it is included.
pub type Bound = (String, bool);

/// The range a key is confined to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    pub lower: Option<Bound>,
    pub upper: Option<Bound>,
}

impl KeyRange {
    fn narrow(&mut self, op: Op, v: &str) {
        let lower = |r: &mut KeyRange, b: Bound| {
            let tighter = match &r.lower {
                None => true,
                Some((cur, inc)) => b.0 > *cur || (b.0 == *cur && *inc && !b.1),
            };
            if tighter {
                r.lower = Some(b);
            }
        };
        let upper = |r: &mut KeyRange, b: Bound| {
            let tighter = match &r.upper {
                None => true,
                Some((cur, inc)) => b.0 < *cur || (b.0 == *cur && *inc && !b.1),
            };
            if tighter {
                r.upper = Some(b);
            }
        };
        match op {
            Op::Eq => {
                lower(self, (v.to_string(), true));
                upper(self, (v.to_string(), true));
            }
            Op::Gt => lower(self, (v.to_string(), false)),
            Op::Ge => lower(self, (v.to_string(), true)),
            Op::Lt => upper(self, (v.to_string(), false)),
            Op::Le => upper(self, (v.to_string(), true)),
            Op::Ne => {}
        }
    }

    /// The single value the key must equal, if the range is one point.
    pub fn exact(&self) -> Option<&str> {
        match (&self.lower, &self.upper) {
            (Some((a, true)), Some((b, true))) if a == b => Some(a),
            _ => None,
        }
    }
}

/// Key ranges implied by a filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyBounds {
    pub partition: KeyRange,
    pub row: KeyRange,
}

fn resolve(o: &Operand, get: &dyn Fn(&str) -> Option<Value>) -> Option<Value> {
    match o {
        Operand::Property(n) => get(n),
        Operand::Literal(v) => Some(v.clone()),
    }
}

/// Compares two values of the same type; values of different types never
/// match (not even `ne`).
pub fn compare(a: &Value, op: Op, b: &Value) -> bool {
    let ord = match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Int32(x), Value::Int32(y)) => Some(x.cmp(y)),
        (Value::Int64(x), Value::Int64(y)) => Some(x.cmp(y)),
        (Value::Double(x), Value::Double(y)) => x.partial_cmp(y),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
        (Value::Guid(x), Value::Guid(y)) => Some(x.cmp(y)),
        (Value::Binary(x), Value::Binary(y)) => Some(x.cmp(y)),
        _ => None,
    };
    let Some(ord) = ord else {
        return false;
    };
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(name: &str) -> Option<Value> {
        Some(match name {
            "PartitionKey" => Value::String("p1".into()),
            "RowKey" => Value::String("r'5".into()),
            "Age" => Value::Int32(30),
            "Big" => Value::Int64(5_000_000_000),
            "Price" => Value::Double(9.5),
            "Active" => Value::Bool(true),
            "Born" => Value::DateTime(parse_datetime("2000-01-02T03:04:05Z").unwrap()),
            "Id" => {
                Value::Guid(uuid::Uuid::parse_str("c9da6455-213d-42c9-9a79-3e9149a57833").unwrap())
            }
            "Blob" => Value::Binary(vec![0xde, 0xad]),
            _ => return None,
        })
    }

    fn check(filter: &str, want: bool) {
        let f = Filter::parse(filter).unwrap_or_else(|e| panic!("{filter}: {e:?}"));
        assert_eq!(f.matches(&entity), want, "{filter}");
    }

    #[test]
    fn typed_comparisons_match_like_the_service() {
        let cases = [
            ("PartitionKey eq 'p1'", true),
            ("RowKey eq 'r''5'", true),
            ("Age eq 30", true),
            ("Age gt 29 and Age lt 31", true),
            ("Age ge 31", false),
            ("Age eq 30L", false),
            ("Age ne 30L", false),
            ("Big eq 5000000000L", true),
            ("Big eq 5000000000", true),
            ("Big gt 4L", true),
            ("Price lt 10.0", true),
            ("Price eq 9.5d", true),
            ("Price eq 9", false),
            ("Active eq true", true),
            ("Active", true),
            ("not Active", false),
            ("Born eq datetime'2000-01-02T03:04:05Z'", true),
            ("Born lt datetime'2000-01-02T03:04:05.0000001Z'", true),
            ("Id eq guid'c9da6455-213d-42c9-9a79-3e9149a57833'", true),
            ("Id eq 'c9da6455-213d-42c9-9a79-3e9149a57833'", false),
            ("Blob eq X'dead'", true),
            ("Blob eq binary'DEAD'", true),
            ("Missing eq 1", false),
            ("Missing ne 1", false),
            ("not (Missing eq 1)", true),
            (
                "(Age eq 1 or Age eq 30) and not (PartitionKey eq 'x')",
                true,
            ),
            ("Age eq 1 or Age eq 2 or PartitionKey ge 'p'", true),
            ("'p1' eq PartitionKey", true),
            ("Age eq -30", false),
        ];
        for (f, want) in cases {
            check(f, want);
        }
    }

    #[test]
    fn malformed_filters_are_errors() {
        for bad in [
            "",
            "Age eq",
            "Age eq 'x",
            "(Age eq 1",
            "Age eq 1)",
            "Age eq 1 and",
            "Age eqq 1",
            "Age eq 1 2",
            "Born eq datetime'yesterday'",
            "Id eq guid'nope'",
            "Blob eq X'abc'",
            "Age eq 99999999999999999999",
            "Age eq 1.2.3",
            "Age # 1",
            "eq eq eq",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}Age eq 1{}", "(".repeat(500), ")".repeat(500));
        assert!(Filter::parse(&deep).is_err());
        let nots = format!("{}Active", "not ".repeat(500));
        assert!(Filter::parse(&nots).is_err());
    }

    #[test]
    fn key_bounds_come_from_top_level_conjunctions_only() {
        let b =
            Filter::parse("PartitionKey eq 'p' and RowKey ge 'a' and RowKey lt 'm' and Age gt 1")
                .unwrap()
                .key_bounds();
        assert_eq!(b.partition.exact(), Some("p"));
        assert_eq!(b.row.lower, Some(("a".into(), true)));
        assert_eq!(b.row.upper, Some(("m".into(), false)));
        let b = Filter::parse("PartitionKey eq 'p' or PartitionKey eq 'q'")
            .unwrap()
            .key_bounds();
        assert_eq!(b, KeyBounds::default());
        let b =
            Filter::parse("'c' gt PartitionKey and PartitionKey gt 'a' and PartitionKey ge 'b'")
                .unwrap()
                .key_bounds();
        assert_eq!(b.partition.upper, Some(("c".into(), false)));
        assert_eq!(b.partition.lower, Some(("b".into(), true)));
        let b = Filter::parse("not (PartitionKey eq 'p')")
            .unwrap()
            .key_bounds();
        assert_eq!(b, KeyBounds::default());
    }
}
