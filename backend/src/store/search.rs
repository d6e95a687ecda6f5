//! Search parameters: which values of a resource are indexed under which name,
//! and how a search request's parameters are read.

use serde_json::Value;

use crate::fhir::outcome::{Issue, IssueType};

/// The kind of a search parameter, which decides how values are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Folded text, matched from the start (`:exact` for equality).
    String,
    /// A code or identifier, with an optional system (`system|value`).
    Token,
    /// A date, `YYYY[-MM[-DD]]`, with prefixes `eq ne gt lt ge le`.
    Date,
    /// A reference, `Type/id`.
    Reference,
    /// A canonical URL, compared whole.
    Uri,
}

/// The search parameters each resource type supports (besides `_id`,
/// `_lastUpdated`, `_count`, `_offset`, `_tag`), as the CapabilityStatement says.
pub const PARAMETERS: &[(&str, &[(&str, Kind)])] = &[
    (
        "Patient",
        &[
            ("family", Kind::String),
            ("given", Kind::String),
            ("name", Kind::String),
            ("birthdate", Kind::Date),
            ("gender", Kind::Token),
            ("identifier", Kind::Token),
            ("phone", Kind::Token),
            ("email", Kind::Token),
            ("address-postalcode", Kind::String),
        ],
    ),
    (
        "QuestionnaireResponse",
        &[
            ("subject", Kind::Reference),
            ("patient", Kind::Reference),
            ("questionnaire", Kind::Uri),
            ("identifier", Kind::Token),
            ("status", Kind::Token),
        ],
    ),
    ("Provenance", &[("target", Kind::Reference)]),
    (
        "RelatedPerson",
        &[("patient", Kind::Reference), ("identifier", Kind::Token)],
    ),
    (
        "Observation",
        &[
            ("subject", Kind::Reference),
            ("patient", Kind::Reference),
            ("identifier", Kind::Token),
        ],
    ),
    (
        "Task",
        &[
            ("status", Kind::Token),
            ("focus", Kind::Reference),
            ("identifier", Kind::Token),
        ],
    ),
];

/// The kind of `name` on `resource_type`, if it is supported.
pub fn kind(resource_type: &str, name: &str) -> Option<Kind> {
    if name == "_tag" {
        return Some(Kind::Token);
    }
    PARAMETERS
        .iter()
        .find(|(t, _)| *t == resource_type)?
        .1
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
}

/// Text as the index keeps it: lower case, accents and punctuation folded away.
pub fn fold(s: &str) -> String {
    matching::normalize::fold(s)
}

/// Only the digits of a phone number (`+1 (617) 555-0100` → `16175550100`).
fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// One indexed value: parameter name, system (tokens) and value.
pub type Term = (&'static str, Option<String>, String);

/// Every indexed value of `resource`.
pub fn terms(resource_type: &str, resource: &Value) -> Vec<Term> {
    let mut out: Vec<Term> = Vec::new();
    let str_of = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let token = |out: &mut Vec<Term>, name: &'static str, identifier: &Value| {
        if let Some(value) = str_of(identifier, "value").or_else(|| str_of(identifier, "code")) {
            out.push((name, str_of(identifier, "system"), value));
        }
    };
    for tag in array(resource.pointer("/meta/tag")) {
        token(&mut out, "_tag", tag);
    }
    match resource_type {
        "Patient" => {
            for name in array(resource.get("name")) {
                let mut words = Vec::new();
                if let Some(family) = str_of(name, "family") {
                    out.push(("family", None, fold(&family)));
                    words.push(family);
                }
                for given in array_of_strings(name.get("given")) {
                    out.push(("given", None, fold(&given)));
                    words.push(given);
                }
                if let Some(text) = str_of(name, "text") {
                    words.push(text);
                }
                for word in words
                    .iter()
                    .flat_map(|w| fold(w).split(' ').map(str::to_owned).collect::<Vec<_>>())
                {
                    if !word.is_empty() {
                        out.push(("name", None, word));
                    }
                }
            }
            if let Some(d) = str_of(resource, "birthDate") {
                out.push(("birthdate", None, d));
            }
            if let Some(g) = str_of(resource, "gender") {
                out.push((
                    "gender",
                    Some("http://hl7.org/fhir/administrative-gender".into()),
                    g,
                ));
            }
            for identifier in array(resource.get("identifier")) {
                token(&mut out, "identifier", identifier);
            }
            for telecom in array(resource.get("telecom")) {
                let Some(value) = str_of(telecom, "value") else {
                    continue;
                };
                match telecom.get("system").and_then(Value::as_str) {
                    Some("phone" | "sms") => {
                        out.push(("phone", None, digits(&value)));
                    }
                    Some("email") => out.push(("email", None, value.trim().to_lowercase())),
                    _ => {}
                }
            }
            for address in array(resource.get("address")) {
                if let Some(p) = str_of(address, "postalCode") {
                    out.push(("address-postalcode", None, fold(&p).replace(' ', "")));
                }
            }
        }
        "QuestionnaireResponse" => {
            if let Some(r) = resource
                .pointer("/subject/reference")
                .and_then(Value::as_str)
            {
                out.push(("subject", None, r.to_owned()));
                if r.starts_with("Patient/") {
                    out.push(("patient", None, r.to_owned()));
                }
            }
            if let Some(q) = str_of(resource, "questionnaire") {
                out.push(("questionnaire", None, q));
            }
            if let Some(identifier) = resource.get("identifier") {
                token(&mut out, "identifier", identifier);
            }
            if let Some(s) = str_of(resource, "status") {
                out.push(("status", None, s));
            }
        }
        "Provenance" => {
            for target in array(resource.get("target")) {
                if let Some(r) = str_of(target, "reference") {
                    out.push(("target", None, r));
                }
            }
        }
        "RelatedPerson" => {
            if let Some(r) = resource
                .pointer("/patient/reference")
                .and_then(Value::as_str)
            {
                out.push(("patient", None, r.to_owned()));
            }
            for identifier in array(resource.get("identifier")) {
                token(&mut out, "identifier", identifier);
            }
        }
        "Observation" => {
            if let Some(r) = resource
                .pointer("/subject/reference")
                .and_then(Value::as_str)
            {
                out.push(("subject", None, r.to_owned()));
                if r.starts_with("Patient/") {
                    out.push(("patient", None, r.to_owned()));
                }
            }
            for identifier in array(resource.get("identifier")) {
                token(&mut out, "identifier", identifier);
            }
        }
        "Task" => {
            if let Some(s) = str_of(resource, "status") {
                out.push(("status", None, s));
            }
            if let Some(r) = resource.pointer("/focus/reference").and_then(Value::as_str) {
                out.push(("focus", None, r.to_owned()));
            }
            for identifier in array(resource.get("identifier")) {
                token(&mut out, "identifier", identifier);
            }
        }
        _ => {}
    }
    out.sort();
    out.dedup();
    out
}

/// An element that may repeat, as a list: its items, itself, or nothing.
fn array(v: Option<&Value>) -> &[Value] {
    match v {
        Some(Value::Array(a)) => a,
        Some(v @ Value::Object(_)) => std::slice::from_ref(v),
        _ => &[],
    }
}

fn array_of_strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A date comparison prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// Within the given precision (the default).
    Eq,
    /// Outside it.
    Ne,
    /// After it.
    Gt,
    /// Before it.
    Lt,
    /// On or after its start.
    Ge,
    /// On or before its end.
    Le,
}

/// One condition of a search: a parameter with one or more values (any may match).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `_id`.
    Id(Vec<String>),
    /// `_lastUpdated` with a prefix.
    LastUpdated(Prefix, String),
    /// A string parameter; `exact` for `:exact`.
    String {
        /// Parameter name.
        name: String,
        /// Folded values.
        values: Vec<String>,
        /// Whole-value equality instead of starts-with.
        exact: bool,
    },
    /// A token parameter: `(system, value)` pairs; a `None` system matches any.
    Token {
        /// Parameter name.
        name: String,
        /// Values.
        values: Vec<(Option<String>, String)>,
    },
    /// A date parameter.
    Date {
        /// Parameter name.
        name: String,
        /// Prefix and date.
        values: Vec<(Prefix, String)>,
    },
    /// A reference or URI parameter, compared whole.
    Exact {
        /// Parameter name.
        name: String,
        /// Values.
        values: Vec<String>,
    },
}

/// A parsed search: conditions (all must hold), page size and offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Every condition.
    pub conditions: Vec<Condition>,
    /// `_count` (default 50, at most 1000).
    pub count: usize,
    /// `_offset`.
    pub offset: usize,
}

/// Default page size.
pub const DEFAULT_COUNT: usize = 50;
/// Largest page size.
pub const MAX_COUNT: usize = 1000;

fn date_prefix(v: &str) -> (Prefix, &str) {
    for (p, prefix) in [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
    ] {
        if let Some(rest) = v.strip_prefix(p) {
            return (prefix, rest);
        }
    }
    (Prefix::Eq, v)
}

fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    match b.len() {
        4 => digits(0..4),
        7 => digits(0..4) && b[4] == b'-' && digits(5..7),
        10 => digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10),
        _ => false,
    }
}

/// The most parameters one search may have.
pub const MAX_PARAMETERS: usize = 64;

/// Reads a search's query parameters (already percent-decoded pairs). Unknown
/// parameters are an error, so a client never gets every patient for a typo.
pub fn parse(resource_type: &str, pairs: &[(String, String)]) -> Result<Query, Vec<Issue>> {
    // 5,000 `name=` conditions made one SQL statement SQLite refused (a 503):
    // a client's mistake, so a 4xx (issue 21).
    if pairs.len() > MAX_PARAMETERS {
        return Err(vec![Issue::error(
            IssueType::TooLong,
            format!("At most {MAX_PARAMETERS} search parameters in one search"),
        )]);
    }
    let mut query = Query {
        count: DEFAULT_COUNT,
        ..Query::default()
    };
    let mut issues = Vec::new();
    for (key, raw) in pairs {
        let (name, modifier) = key
            .split_once(':')
            .map_or((key.as_str(), None), |(n, m)| (n, Some(m)));
        let bad =
            |message: &str| Issue::error(IssueType::Value, message.to_owned()).at(name.to_owned());
        let values: Vec<&str> = raw.split(',').filter(|v| !v.is_empty()).collect();
        match name {
            "_count" | "_offset" => match raw.parse::<usize>() {
                Ok(n) if name == "_count" => query.count = n.min(MAX_COUNT),
                Ok(n) => query.offset = n,
                Err(_) => issues.push(bad("Must be a whole number")),
            },
            "_id" => query.conditions.push(Condition::Id(
                values.iter().map(|v| (*v).to_owned()).collect(),
            )),
            "_lastUpdated" => {
                let (prefix, v) = date_prefix(raw);
                if !v.get(..v.len().min(10)).is_some_and(is_date) {
                    issues.push(bad("Must be a date or instant, with an optional prefix (ge, le, gt, lt, eq, ne)"));
                } else {
                    query
                        .conditions
                        .push(Condition::LastUpdated(prefix, v.to_owned()));
                }
            }
            "_format" | "_pretty" | "_summary" | "_elements" | "_sort" => {}
            _ => match kind(resource_type, name) {
                None => issues.push(
                    Issue::error(
                        IssueType::NotSupported,
                        format!("Unknown search parameter for {resource_type}"),
                    )
                    .at(name.to_owned()),
                ),
                Some(_) if values.is_empty() => issues.push(bad("Needs a value")),
                Some(Kind::String) => match modifier {
                    None | Some("exact" | "contains") => query.conditions.push(Condition::String {
                        name: name.to_owned(),
                        values: values
                            .iter()
                            .map(|v| {
                                let f = fold(v);
                                if name == "address-postalcode" {
                                    f.replace(' ', "")
                                } else {
                                    f
                                }
                            })
                            .collect(),
                        exact: modifier == Some("exact"),
                    }),
                    Some(_) => issues.push(bad("Unsupported modifier")),
                },
                Some(Kind::Token) => query.conditions.push(Condition::Token {
                    name: name.to_owned(),
                    values: values
                        .iter()
                        .map(|v| {
                            let (system, value) = match v.split_once('|') {
                                Some((s, v)) => (Some(s.to_owned()), v.to_owned()),
                                None => (None, (*v).to_owned()),
                            };
                            let value = match name {
                                "phone" => digits(&value),
                                "email" => value.trim().to_lowercase(),
                                _ => value,
                            };
                            (system, value)
                        })
                        .collect(),
                }),
                Some(Kind::Date) => {
                    let mut parsed = Vec::new();
                    for v in &values {
                        let (prefix, d) = date_prefix(v);
                        if is_date(d) {
                            parsed.push((prefix, d.to_owned()));
                        } else {
                            issues.push(bad("Must be a date, YYYY, YYYY-MM or YYYY-MM-DD, with an optional prefix"));
                        }
                    }
                    query.conditions.push(Condition::Date {
                        name: name.to_owned(),
                        values: parsed,
                    });
                }
                Some(Kind::Reference | Kind::Uri) => query.conditions.push(Condition::Exact {
                    name: name.to_owned(),
                    values: values.iter().map(|v| (*v).to_owned()).collect(),
                }),
            },
        }
    }
    if issues.is_empty() {
        Ok(query)
    } else {
        Err(issues)
    }
}

/// Reads a query string (`a=1&b=2`, percent-encoded) into pairs; `None` if it
/// is not a valid query string.
pub fn pairs(query: &str) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_str(query.trim_start_matches('?')).ok()
}
