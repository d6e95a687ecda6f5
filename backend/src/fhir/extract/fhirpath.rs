//! The small part of FHIRPath that extraction expressions use: paths over the
//! response (`item.where(linkId='given').answer.value`), `%variables` (allocated
//! ids, `%resource`), string literals, `+` on strings, `|`, `=`/`!=`, `and`/`or`,
//! and the functions `where`, `first`, `join`, `exists`, `now`, `today`.
//!
//! Anything else is [`Unsupported`]: the caller reports it with the item's linkId
//! and leaves the element out, rather than guessing.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use serde_json::Value;

/// An expression this evaluator does not handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported;

/// What an expression can see.
pub(crate) struct Env<'a> {
    /// `%resource`: the QuestionnaireResponse.
    pub(crate) resource: &'a Value,
    /// `%name` variables: allocated ids and the like.
    pub(crate) variables: &'a HashMap<String, String>,
    /// `now()`, as a FHIR instant.
    pub(crate) now: &'a str,
}

/// Most tokens in one expression.
const MAX_TOKENS: usize = 256;

/// Evaluates `expression` with `focus` (the current response item) as `$this`.
pub(crate) fn evaluate(
    expression: &str,
    focus: &Value,
    env: &Env<'_>,
) -> Result<Vec<Value>, Unsupported> {
    let ast = parsed(expression)?;
    eval(&ast, std::slice::from_ref(focus), env)
}

/// Most parsed expressions kept: a form has a few dozen, a server a few dozen forms.
const MAX_CACHED: usize = 4096;

/// `expression` parsed, from a cache: a form's expressions are the same for every
/// response it extracts, so each is parsed once rather than once per submission.
fn parsed(expression: &str) -> Result<Arc<Ast>, Unsupported> {
    type Cache = RwLock<HashMap<String, Result<Arc<Ast>, Unsupported>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    if let Some(found) = cache
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(expression)
    {
        return found.clone();
    }
    let result = parse(expression).map(Arc::new);
    let mut cache = cache.write().unwrap_or_else(PoisonError::into_inner);
    if cache.len() < MAX_CACHED {
        cache.insert(expression.to_owned(), result.clone());
    }
    result
}

fn parse(expression: &str) -> Result<Ast, Unsupported> {
    let tokens = tokenize(expression)?;
    // The parser and evaluator recurse once or a few times per token: a cap keeps a
    // pathological expression in a stored form (`((((…` thousands deep) from
    // overflowing the stack. Real extraction expressions are a few dozen tokens.
    if tokens.len() > MAX_TOKENS {
        return Err(Unsupported);
    }
    let mut parser = Parser { tokens, at: 0 };
    let ast = parser.or()?;
    if parser.at != parser.tokens.len() {
        return Err(Unsupported);
    }
    Ok(ast)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Str(String),
    Num(String),
    Ident(String),
    Var(String),
    Sym(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Token>, Unsupported> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(Unsupported),
                        Some('\'') => break,
                        Some('\\') => {
                            s.push(*chars.get(i + 1).ok_or(Unsupported)?);
                            i += 2;
                        }
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                i += 1;
                tokens.push(Token::Str(s));
            }
            '%' => {
                let start = i + 1;
                i = start;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    i += 1;
                }
                if i == start {
                    return Err(Unsupported);
                }
                tokens.push(Token::Var(chars[start..i].iter().collect()));
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_digit() || *c == '.')
                {
                    i += 1;
                }
                tokens.push(Token::Num(chars[start..i].iter().collect()));
            }
            '*' | '/' => {
                tokens.push(Token::Sym(if c == '*' { "*" } else { "/" }));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Sym("!="));
                i += 2;
            }
            '.' | '(' | ')' | ',' | '|' | '+' | '=' => {
                tokens.push(Token::Sym(match c {
                    '.' => ".",
                    '(' => "(",
                    ')' => ")",
                    ',' => ",",
                    '|' => "|",
                    '+' => "+",
                    _ => "=",
                }));
                i += 1;
            }
            _ => return Err(Unsupported),
        }
    }
    Ok(tokens)
}

#[derive(Debug, Clone, PartialEq)]
enum Ast {
    Str(String),
    Num(String),
    Var(String),
    This,
    /// Navigation or a function call on the focus of the left side.
    Member(Box<Ast>, String),
    Call(Box<Ast>, String, Vec<Ast>),
    Binary(&'static str, Box<Ast>, Box<Ast>),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }
    fn eat_sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Token::Sym(s)) if *s == sym) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn eat_word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(w)) if w == word) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Ast, Unsupported> {
        let mut left = self.and()?;
        while self.eat_word("or") {
            left = Ast::Binary("or", Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Ast, Unsupported> {
        let mut left = self.equality()?;
        while self.eat_word("and") {
            left = Ast::Binary("and", Box::new(left), Box::new(self.equality()?));
        }
        Ok(left)
    }
    fn equality(&mut self) -> Result<Ast, Unsupported> {
        let left = self.union()?;
        for op in ["=", "!="] {
            if self.eat_sym(op) {
                let op = if op == "=" { "=" } else { "!=" };
                return Ok(Ast::Binary(op, Box::new(left), Box::new(self.union()?)));
            }
        }
        Ok(left)
    }
    fn union(&mut self) -> Result<Ast, Unsupported> {
        let mut left = self.additive()?;
        while self.eat_sym("|") {
            left = Ast::Binary("|", Box::new(left), Box::new(self.additive()?));
        }
        Ok(left)
    }
    fn additive(&mut self) -> Result<Ast, Unsupported> {
        let mut left = self.multiplicative()?;
        while self.eat_sym("+") {
            left = Ast::Binary("+", Box::new(left), Box::new(self.multiplicative()?));
        }
        Ok(left)
    }
    fn multiplicative(&mut self) -> Result<Ast, Unsupported> {
        let mut left = self.postfix()?;
        loop {
            let op = if self.eat_sym("*") {
                "*"
            } else if self.eat_sym("/") {
                "/"
            } else {
                return Ok(left);
            };
            left = Ast::Binary(op, Box::new(left), Box::new(self.postfix()?));
        }
    }
    fn postfix(&mut self) -> Result<Ast, Unsupported> {
        let mut node = self.primary()?;
        while self.eat_sym(".") {
            node = self.member(node)?;
        }
        Ok(node)
    }
    /// A name after a dot or at the start of a path (on `$this`).
    fn member(&mut self, on: Ast) -> Result<Ast, Unsupported> {
        let Some(Token::Ident(name)) = self.peek().cloned() else {
            return Err(Unsupported);
        };
        self.at += 1;
        if self.eat_sym("(") {
            let mut args = Vec::new();
            if !self.eat_sym(")") {
                loop {
                    args.push(self.or()?);
                    if self.eat_sym(")") {
                        break;
                    }
                    if !self.eat_sym(",") {
                        return Err(Unsupported);
                    }
                }
            }
            Ok(Ast::Call(Box::new(on), name, args))
        } else {
            Ok(Ast::Member(Box::new(on), name))
        }
    }
    fn primary(&mut self) -> Result<Ast, Unsupported> {
        match self.peek().cloned() {
            Some(Token::Str(s)) => {
                self.at += 1;
                Ok(Ast::Str(s))
            }
            Some(Token::Var(v)) => {
                self.at += 1;
                Ok(Ast::Var(v))
            }
            Some(Token::Num(n)) => {
                self.at += 1;
                Ok(Ast::Num(n))
            }
            Some(Token::Sym("(")) => {
                self.at += 1;
                let inner = self.or()?;
                if !self.eat_sym(")") {
                    return Err(Unsupported);
                }
                Ok(inner)
            }
            Some(Token::Ident(w)) if w == "$this" => {
                self.at += 1;
                Ok(Ast::This)
            }
            Some(Token::Ident(_)) => self.member(Ast::This),
            _ => Err(Unsupported),
        }
    }
}

fn eval(ast: &Ast, focus: &[Value], env: &Env<'_>) -> Result<Vec<Value>, Unsupported> {
    Ok(match ast {
        Ast::Str(s) => vec![Value::String(s.clone())],
        Ast::Num(n) => vec![number(n.parse().map_err(|_| Unsupported)?, places(n))?],
        Ast::This => focus.to_vec(),
        Ast::Var(name) => match name.as_str() {
            "resource" => vec![env.resource.clone()],
            "context" => focus.to_vec(),
            other => env
                .variables
                .get(other)
                .map(|v| vec![Value::String(v.clone())])
                .ok_or(Unsupported)?,
        },
        Ast::Member(on, name) => {
            let base = eval(on, focus, env)?;
            base.iter().flat_map(|v| child(v, name)).collect()
        }
        Ast::Call(on, name, args) => {
            // now() and today() stand alone: their "focus" is ignored.
            match (name.as_str(), args.as_slice()) {
                ("now", []) => return Ok(vec![Value::String(env.now.to_owned())]),
                ("today", []) => {
                    return Ok(vec![Value::String(env.now.chars().take(10).collect())]);
                }
                _ => {}
            }
            let base = eval(on, focus, env)?;
            match (name.as_str(), args.as_slice()) {
                ("first", []) => base.into_iter().take(1).collect(),
                ("exists", []) => vec![Value::Bool(!base.is_empty())],
                ("empty", []) => vec![Value::Bool(base.is_empty())],
                ("where", [condition]) => {
                    let mut kept = Vec::new();
                    for v in base {
                        if truthy(&eval(condition, std::slice::from_ref(&v), env)?) {
                            kept.push(v);
                        }
                    }
                    kept
                }
                ("join", [separator]) => {
                    let separator = single_string(&eval(separator, focus, env)?)?;
                    let parts: Vec<String> = base.iter().filter_map(as_text).collect();
                    vec![Value::String(parts.join(&separator))]
                }
                _ => return Err(Unsupported),
            }
        }
        Ast::Binary(op, left, right) => {
            let l = eval(left, focus, env)?;
            let r = eval(right, focus, env)?;
            match *op {
                "|" => {
                    let mut all = l;
                    for v in r {
                        if !all.contains(&v) {
                            all.push(v);
                        }
                    }
                    all
                }
                "*" | "/" => match (l.as_slice(), r.as_slice()) {
                    ([a], [b]) => {
                        let (Some(x), Some(y)) = (as_f64(a), as_f64(b)) else {
                            return Err(Unsupported);
                        };
                        if *op == "*" {
                            vec![number(
                                x * y,
                                places(&a.to_string()) + places(&b.to_string()),
                            )?]
                        } else if y == 0.0 {
                            vec![]
                        } else {
                            vec![number(x / y, 8)?]
                        }
                    }
                    _ => vec![],
                },
                "+" => match (l.as_slice(), r.as_slice()) {
                    ([a], [b]) => match (as_text(a), as_text(b)) {
                        (Some(a), Some(b)) => vec![Value::String(a + &b)],
                        _ => return Err(Unsupported),
                    },
                    _ => vec![],
                },
                "=" | "!=" => match (l.as_slice(), r.as_slice()) {
                    ([a], [b]) => vec![Value::Bool((a == b) == (*op == "="))],
                    _ => vec![],
                },
                "and" => vec![Value::Bool(truthy(&l) && truthy(&r))],
                _ => vec![Value::Bool(truthy(&l) || truthy(&r))],
            }
        }
    })
}

/// `name` of a JSON object; `value` also finds FHIR's `valueString`, `valueCoding`…
fn child(value: &Value, name: &str) -> Vec<Value> {
    let Some(object) = value.as_object() else {
        return vec![];
    };
    let found: Vec<&Value> = match object.get(name) {
        Some(v) => vec![v],
        None => object
            .iter()
            .filter(|(key, _)| {
                key.strip_prefix(name)
                    .and_then(|rest| rest.chars().next())
                    .is_some_and(char::is_uppercase)
            })
            .map(|(_, v)| v)
            .collect(),
    };
    found
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        })
        .collect()
}

/// Decimal places written in a number's text.
fn places(text: &str) -> usize {
    text.split_once('.').map_or(0, |(_, f)| f.len())
}

fn as_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `x` rounded to `places` decimals (FHIRPath decimals are exact: 1.72 * 100 is
/// 172.00, not 171.99999999999997), as a JSON number.
fn number(x: f64, places: usize) -> Result<Value, Unsupported> {
    let scale = 10f64.powi(i32::try_from(places.min(12)).unwrap_or(12));
    let rounded = (x * scale).round() / scale;
    if rounded.fract() == 0.0 && rounded.abs() < 9e15 {
        return Ok(Value::from(rounded as i64));
    }
    serde_json::Number::from_f64(rounded)
        .map(Value::Number)
        .ok_or(Unsupported)
}

fn truthy(values: &[Value]) -> bool {
    matches!(values, [Value::Bool(true)])
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn single_string(values: &[Value]) -> Result<String, Unsupported> {
    match values {
        [v] => as_text(v).ok_or(Unsupported),
        _ => Err(Unsupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(expression: &str, focus: &Value) -> Result<Vec<Value>, Unsupported> {
        let resource = json!({"resourceType": "QuestionnaireResponse", "id": "qr1", "authored": "2026-01-02T03:04:05Z"});
        let variables = HashMap::from([("NewPatientId".to_owned(), "urn:uuid:1".to_owned())]);
        let env = Env {
            resource: &resource,
            variables: &variables,
            now: "2026-11-29T10:00:00.000Z",
        };
        evaluate(expression, focus, &env)
    }

    #[test]
    fn the_sdc_examples_expressions_evaluate() {
        let name = json!({"linkId": "name", "item": [
            {"linkId": "given", "answer": [{"valueString": "Jane"}, {"valueString": "Mary"}]},
            {"linkId": "family", "answer": [{"valueString": "Doe"}]},
            {"linkId": "other", "answer": [{"valueString": "x"}]}
        ]});
        assert_eq!(
            run(
                "item.where(linkId='given' or linkId='family').answer.value.join(' ')",
                &name
            ),
            Ok(vec![json!("Jane Mary Doe")])
        );
        assert_eq!(run("%NewPatientId", &name), Ok(vec![json!("urn:uuid:1")]));
        assert_eq!(
            run("'QuestionnaireResponse/' + %resource.id", &name),
            Ok(vec![json!("QuestionnaireResponse/qr1")])
        );
        assert_eq!(
            run(
                "(%resource.authored | %resource.meta.lastUpdated | now()).first()",
                &name
            ),
            Ok(vec![json!("2026-01-02T03:04:05Z")])
        );
        assert_eq!(run("%resource.author", &name), Ok(vec![]));
        let height = json!({"linkId": "height", "answer": [{"valueDecimal": 1.72}]});
        assert_eq!(run("answer.value * 100", &height), Ok(vec![json!(172)]));
    }

    #[test]
    fn what_is_not_understood_is_unsupported_not_guessed() {
        for expression in [
            "%unknown",
            "item.count() > 1",
            "iif(true, 'a', 'b')",
            "'open",
            "",
            &"(".repeat(100_000),
            &["1"; 5_000].join(" | "),
        ] {
            assert_eq!(
                run(expression, &json!({})),
                Err(Unsupported),
                "{expression}"
            );
        }
    }
}
