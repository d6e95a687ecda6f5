//! FHIRPath text to [`Expr`]: a tokenizer and a precedence-climbing parser.
//!
//! Unknown functions and wrong argument counts fail here, so the import can
//! report them; the tree's depth is bounded so evaluation cannot overflow the stack.

use std::borrow::Cow;

use super::{Expr, Func, Node, Op};

/// Deepest tree accepted (nesting and operator chains both count).
const MAX_DEPTH: usize = 64;
/// Longest expression accepted, in bytes.
const MAX_LEN: usize = 8192;

/// Functions we evaluate, with their least and most argument counts.
pub(super) const FUNCTIONS: &[(&str, Func, u8, u8)] = &[
    ("empty", Func::Empty, 0, 0),
    ("exists", Func::Exists, 0, 1),
    ("count", Func::Count, 0, 0),
    ("sum", Func::Sum, 0, 0),
    ("min", Func::Min, 0, 0),
    ("max", Func::Max, 0, 0),
    ("avg", Func::Avg, 0, 0),
    ("first", Func::First, 0, 0),
    ("last", Func::Last, 0, 0),
    ("tail", Func::Tail, 0, 0),
    ("skip", Func::Skip, 1, 1),
    ("take", Func::Take, 1, 1),
    ("single", Func::Single, 0, 0),
    ("aggregate", Func::Aggregate, 1, 2),
    ("where", Func::Where, 1, 1),
    ("select", Func::Select, 1, 1),
    ("repeat", Func::Repeat, 1, 1),
    ("all", Func::All, 1, 1),
    ("allTrue", Func::AllTrue, 0, 0),
    ("anyTrue", Func::AnyTrue, 0, 0),
    ("allFalse", Func::AllFalse, 0, 0),
    ("anyFalse", Func::AnyFalse, 0, 0),
    ("distinct", Func::Distinct, 0, 0),
    ("isDistinct", Func::IsDistinct, 0, 0),
    ("union", Func::Union, 1, 1),
    ("combine", Func::Combine, 1, 1),
    ("intersect", Func::Intersect, 1, 1),
    ("exclude", Func::Exclude, 1, 1),
    ("iif", Func::Iif, 2, 3),
    ("not", Func::Not, 0, 0),
    ("hasValue", Func::HasValue, 0, 0),
    ("toString", Func::ToString, 0, 0),
    ("toInteger", Func::ToInteger, 0, 0),
    ("toDecimal", Func::ToDecimal, 0, 0),
    ("toBoolean", Func::ToBoolean, 0, 0),
    ("length", Func::Length, 0, 0),
    ("substring", Func::Substring, 1, 2),
    ("startsWith", Func::StartsWith, 1, 1),
    ("endsWith", Func::EndsWith, 1, 1),
    ("contains", Func::Contains, 1, 1),
    ("indexOf", Func::IndexOf, 1, 1),
    ("upper", Func::Upper, 0, 0),
    ("lower", Func::Lower, 0, 0),
    ("trim", Func::Trim, 0, 0),
    ("replace", Func::Replace, 2, 2),
    ("matches", Func::Matches, 1, 1),
    ("toChars", Func::ToChars, 0, 0),
    ("split", Func::Split, 1, 1),
    ("join", Func::Join, 0, 1),
    ("round", Func::Round, 0, 1),
    ("abs", Func::Abs, 0, 0),
    ("sqrt", Func::Sqrt, 0, 0),
    ("power", Func::Power, 1, 1),
    ("ln", Func::Ln, 0, 0),
    ("exp", Func::Exp, 0, 0),
    ("log", Func::Log, 1, 1),
    ("floor", Func::Floor, 0, 0),
    ("ceiling", Func::Ceiling, 0, 0),
    ("truncate", Func::Truncate, 0, 0),
    ("ofType", Func::OfType, 1, 1),
    ("is", Func::Is, 1, 1),
    ("as", Func::As, 1, 1),
    ("extension", Func::Extension, 1, 1),
    ("ordinal", Func::Ordinal, 0, 0),
    ("weight", Func::Weight, 0, 0),
    ("today", Func::Today, 0, 0),
    ("now", Func::Now, 0, 0),
    ("trace", Func::Trace, 1, 2),
];

/// Functions only the server evaluates (with the `launch-context` feature, over
/// raw FHIR JSON: extraction, the conformance suite), with their argument
/// counts: forms do not use them and the browser's bundle cannot afford them.
/// [`parse`] refuses them everywhere, so a form's expressions mean the same in
/// the browser and on the server.
#[cfg(feature = "launch-context")]
pub(super) const SERVER_FUNCTIONS: &[(&str, Func, u8, u8)] = &[
    ("toQuantity", Func::ToQuantity, 0, 1),
    ("toDate", Func::ToDate, 0, 0),
    ("toDateTime", Func::ToDateTime, 0, 0),
    ("toTime", Func::ToTime, 0, 0),
    ("convertsToString", Func::ConvertsToString, 0, 0),
    ("convertsToInteger", Func::ConvertsToInteger, 0, 0),
    ("convertsToDecimal", Func::ConvertsToDecimal, 0, 0),
    ("convertsToBoolean", Func::ConvertsToBoolean, 0, 0),
    ("convertsToQuantity", Func::ConvertsToQuantity, 0, 1),
    ("convertsToDate", Func::ConvertsToDate, 0, 0),
    ("convertsToDateTime", Func::ConvertsToDateTime, 0, 0),
    ("convertsToTime", Func::ConvertsToTime, 0, 0),
    ("precision", Func::Precision, 0, 0),
    ("lowBoundary", Func::LowBoundary, 0, 1),
    ("highBoundary", Func::HighBoundary, 0, 1),
    ("subsetOf", Func::SubsetOf, 1, 1),
    ("supersetOf", Func::SupersetOf, 1, 1),
    ("sort", Func::Sort, 0, 9),
    ("children", Func::Children, 0, 0),
    ("descendants", Func::Descendants, 0, 0),
    ("matchesFull", Func::MatchesFull, 1, 1),
    ("replaceMatches", Func::ReplaceMatches, 2, 2),
    ("encode", Func::Encode, 1, 1),
    ("decode", Func::Decode, 1, 1),
    ("escape", Func::Escape, 1, 1),
    ("unescape", Func::Unescape, 1, 1),
];

/// Why an expression cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Id(String),
    Var(String),
    Str(String),
    Num(String),
    At(String),
    Sym(&'static str),
}

fn tokens(text: &str) -> Result<Vec<Tok>, ParseError> {
    let err = |m: &str| Err(ParseError(m.to_owned()));
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            if i >= chars.len() {
                return err("a comment is not closed");
            }
            i += 2;
        } else if c == '\''
            || c == '`'
            || (c == '%' && matches!(chars.get(i + 1), Some('\'' | '`')))
        {
            let var = c == '%';
            if var {
                i += 1;
            }
            let quote = chars[i];
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&c) = chars.get(i) else {
                    return err("a string is not closed");
                };
                i += 1;
                if c == quote {
                    break;
                }
                if c != '\\' {
                    s.push(c);
                    continue;
                }
                let Some(&e) = chars.get(i) else {
                    return err("a string is not closed");
                };
                i += 1;
                s.push(match e {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'f' => '\u{c}',
                    'u' => {
                        let hex: String = chars.iter().skip(i).take(4).collect();
                        i += 4;
                        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                            Some(c) if hex.len() == 4 => c,
                            _ => return err("a \\u escape is not four hex digits"),
                        }
                    }
                    other => other,
                });
            }
            out.push(if var {
                Tok::Var(s)
            } else if quote == '`' {
                Tok::Id(s)
            } else {
                Tok::Str(s)
            });
        } else if c == '%' {
            i += 1;
            let name = word(&mut i);
            if name.is_empty() {
                return err("% is not followed by a name");
            }
            out.push(Tok::Var(name));
        } else if c == '$' {
            i += 1;
            out.push(Tok::Id(format!("${}", word(&mut i))));
        } else if c == '@' {
            // A date, date-time or time: its characters, a '.' only before
            // the milliseconds' digits (`@2015.is(Date)` is a call on a date).
            let start = i + 1;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || matches!(chars[i], '-' | ':' | '+' | 'T' | 'Z')
                    || (chars[i] == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                i += 1;
            }
            out.push(Tok::At(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            out.push(Tok::Id(word(&mut i)));
        } else {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let sym = ["<=", ">=", "!=", "!~"]
                .into_iter()
                .find(|s| *s == two)
                .or_else(|| {
                    [
                        "+", "-", "*", "/", "&", "|", "=", "~", "<", ">", "(", ")", "[", "]", "{",
                        "}", ",", ".",
                    ]
                    .into_iter()
                    .find(|s| s.starts_with(c))
                });
            let Some(sym) = sym else {
                return err("an unexpected character");
            };
            i += sym.len();
            out.push(Tok::Sym(sym));
        }
    }
    Ok(out)
}

/// Parses a FHIRPath expression of a form: every function but those the
/// server alone evaluates.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    parse_with(text, false)
}

#[cfg(feature = "launch-context")]
/// Parses a FHIRPath expression the server evaluates over FHIR JSON
/// (extraction): every function the engine has.
pub fn parse_full(text: &str) -> Result<Expr, ParseError> {
    parse_with(text, true)
}

fn parse_with(text: &str, full: bool) -> Result<Expr, ParseError> {
    if text.len() > MAX_LEN {
        return Err(ParseError("the expression is too long".into()));
    }
    let mut p = Parser {
        toks: tokens(text)?,
        at: 0,
        depth: 0,
        full,
    };
    let e = p.expr(0)?;
    match p.toks.get(p.at) {
        None => Ok(e),
        Some(_) => Err(ParseError("unexpected text after the expression".into())),
    }
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
    depth: usize,
    /// Whether the server-only functions are accepted.
    #[cfg_attr(not(feature = "launch-context"), allow(dead_code))]
    full: bool,
}

/// Binary operators by precedence level, loosest first.
fn binary(tok: &Tok) -> Option<(u8, Op)> {
    Some(match tok {
        Tok::Id(w) => match w.as_str() {
            "implies" => (1, Op::Implies),
            "or" => (2, Op::Or),
            "xor" => (2, Op::Xor),
            "and" => (3, Op::And),
            "in" => (4, Op::In),
            "contains" => (4, Op::Contains),
            "is" => (8, Op::Is),
            "as" => (8, Op::As),
            "div" => (10, Op::Div),
            "mod" => (10, Op::Mod),
            _ => return None,
        },
        Tok::Sym(s) => match *s {
            "=" => (5, Op::Eq),
            "!=" => (5, Op::Ne),
            "~" => (5, Op::Equiv),
            "!~" => (5, Op::NotEquiv),
            "<" => (6, Op::Lt),
            ">" => (6, Op::Gt),
            "<=" => (6, Op::Le),
            ">=" => (6, Op::Ge),
            "|" => (7, Op::Union),
            "+" => (9, Op::Add),
            "-" => (9, Op::Sub),
            "&" => (9, Op::Concat),
            "*" => (10, Op::Mul),
            "/" => (10, Op::Divide),
            _ => return None,
        },
        _ => return None,
    })
}

impl Parser {
    fn fail<T>(&self, message: &str) -> Result<T, ParseError> {
        Err(ParseError(message.to_owned()))
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail("the expression is nested too deeply");
        }
        Ok(())
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, sym: &str) -> Result<(), ParseError> {
        if self.eat(sym) {
            Ok(())
        } else {
            Err(ParseError(format!("'{sym}' is missing")))
        }
    }

    fn expr(&mut self, min: u8) -> Result<Expr, ParseError> {
        let saved = self.depth;
        self.enter()?;
        let mut left = self.unary()?;
        while let Some((level, op)) = self.peek().and_then(binary) {
            if level < min {
                break;
            }
            self.at += 1;
            self.enter()?;
            left = if matches!(op, Op::Is | Op::As) {
                let name = self.type_name()?;
                Expr::Bin(
                    op,
                    Box::new(left),
                    Box::new(Expr::Lit(Node::Str(Cow::Owned(name)))),
                )
            } else {
                let right = self.expr(level + 1)?;
                Expr::Bin(op, Box::new(left), Box::new(right))
            };
        }
        self.depth = saved;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat("-") {
            self.enter()?;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        if self.eat("+") {
            self.enter()?;
            return self.unary();
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let saved = self.depth;
        let mut e = self.term()?;
        loop {
            if self.eat(".") {
                self.enter()?;
                let Some(Tok::Id(name)) = self.peek().cloned() else {
                    return self.fail("a name must follow '.'");
                };
                self.at += 1;
                e = self.invocation(Some(e), name)?;
            } else if self.eat("[") {
                self.enter()?;
                let index = self.expr(0)?;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(index));
            } else {
                break;
            }
        }
        self.depth = saved;
        Ok(e)
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let Some(tok) = self.peek().cloned() else {
            return self.fail("the expression ends too early");
        };
        self.at += 1;
        Ok(match tok {
            Tok::Str(s) => Expr::Lit(Node::Str(Cow::Owned(s))),
            Tok::Var(name) => Expr::Var(name),
            Tok::Num(n) => {
                let number =
                    number(&n).ok_or_else(|| ParseError("a number is too large".into()))?;
                match self.peek() {
                    Some(Tok::Str(unit)) => {
                        let unit = unit.clone();
                        self.at += 1;
                        Expr::Lit(Node::Qty(to_f64(&number), Cow::Owned(unit)))
                    }
                    Some(Tok::Id(unit)) if calendar_unit(unit) => {
                        let unit = unit.trim_end_matches('s').to_owned();
                        self.at += 1;
                        Expr::Lit(Node::Qty(to_f64(&number), Cow::Owned(unit)))
                    }
                    _ => Expr::Lit(number),
                }
            }
            Tok::At(text) => Expr::Lit(date_literal(&text)?),
            Tok::Sym("(") => {
                self.enter()?;
                let e = self.expr(0)?;
                self.expect(")")?;
                e
            }
            Tok::Sym("{") => {
                self.expect("}")?;
                Expr::Empty
            }
            Tok::Id(name) => match name.as_str() {
                "true" => Expr::Lit(Node::Bool(true)),
                "false" => Expr::Lit(Node::Bool(false)),
                "$this" => Expr::This,
                "$total" => Expr::Total,
                "$index" => Expr::IndexVar,
                n if n.starts_with('$') => {
                    return Err(ParseError(format!("{n} is not supported")));
                }
                _ => self.invocation(None, name)?,
            },
            Tok::Sym(_) => return self.fail("an operator is missing its left side"),
        })
    }

    /// `name` or `name(args)` applied to `target` (or to the input).
    fn invocation(&mut self, target: Option<Expr>, name: String) -> Result<Expr, ParseError> {
        let target = target.map(Box::new);
        if !self.eat("(") {
            return Ok(Expr::Member(target, name));
        }
        let found = FUNCTIONS.iter().find(|f| f.0 == name);
        #[cfg(feature = "launch-context")]
        let found = found.or_else(|| SERVER_FUNCTIONS.iter().find(|f| f.0 == name));
        let Some(&(_, func, min, max)) = found else {
            return Err(ParseError(format!("function {name}() is not supported")));
        };
        #[cfg(feature = "launch-context")]
        if !self.full && SERVER_FUNCTIONS.iter().any(|f| f.1 == func) {
            return Err(ParseError(format!(
                "function {name}() is not supported in forms"
            )));
        }
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                self.enter()?;
                if matches!(func, Func::OfType | Func::Is | Func::As) {
                    args.push(Expr::Lit(Node::Str(Cow::Owned(self.type_name()?))));
                } else {
                    args.push(self.expr(0)?);
                }
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        if args.len() < usize::from(min) || args.len() > usize::from(max) {
            return Err(ParseError(format!(
                "{name}() takes {} argument(s)",
                if min == max {
                    min.to_string()
                } else {
                    format!("{min} to {max}")
                }
            )));
        }
        Ok(Expr::Call(target, func, args))
    }

    /// A type specifier: `Coding`, `FHIR.Coding`, `System.String`.
    fn type_name(&mut self) -> Result<String, ParseError> {
        loop {
            let Some(Tok::Id(part)) = self.peek().cloned() else {
                return self.fail("a type name is missing");
            };
            self.at += 1;
            if !self.eat(".") {
                return Ok(part);
            }
        }
    }
}

pub(crate) fn calendar_unit(word: &str) -> bool {
    let w = word.trim_end_matches('s');
    [
        "year",
        "month",
        "week",
        "day",
        "hour",
        "minute",
        "second",
        "millisecond",
    ]
    .contains(&w)
}

/// An integer or decimal literal, without the float parser: digits scaled by a
/// power of ten, which IEEE division rounds exactly for the lengths written in forms.
pub(crate) fn number(text: &str) -> Option<Node<'static>> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || !(int.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.is_empty() {
        return int.parse().ok().map(Node::Int);
    }
    let all = format!("{int}{frac}");
    let digits: u64 = match all.trim_start_matches('0') {
        "" => 0,
        d => d.parse().ok()?,
    };
    let scale = i32::try_from(frac.len()).ok().filter(|s| *s <= 22)?;
    Some(Node::Dec(digits as f64 / 10f64.powi(scale)))
}

fn to_f64(n: &Node<'_>) -> f64 {
    match n {
        Node::Int(i) => *i as f64,
        Node::Dec(d) => *d,
        _ => 0.0,
    }
}

pub(crate) fn date_literal(text: &str) -> Result<Node<'static>, ParseError> {
    let bad = || ParseError("a date or time literal is malformed".into());
    if let Some(time) = text.strip_prefix('T') {
        super::datetime::parse_time(time).ok_or_else(bad)?;
        return Ok(Node::Time(Cow::Owned(time.to_owned())));
    }
    super::datetime::parse_date_time(text).ok_or_else(bad)?;
    Ok(match text.split_once('T') {
        None => Node::Date(Cow::Owned(text.to_owned())),
        // `@2015T`: a date-time known to the year.
        Some((date, "")) => Node::DateTime(Cow::Owned(date.to_owned())),
        Some(_) => Node::DateTime(Cow::Owned(text.to_owned())),
    })
}
