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

/// How a string parameter's value is compared with the folded text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringMatch {
    /// The text starts with the value (FHIR's default).
    Start,
    /// `:exact`: the whole text.
    Exact,
    /// `:contains`: anywhere in the text.
    Contains,
}

/// One condition of a search: a parameter with one or more values (any may match).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `_id` (`not` for `_id:not`: none of them).
    Id {
        /// The ids.
        ids: Vec<String>,
        /// `:not`.
        not: bool,
    },
    /// `_lastUpdated` with a prefix.
    LastUpdated(Prefix, String),
    /// A string parameter.
    String {
        /// Parameter name.
        name: String,
        /// Folded values.
        values: Vec<String>,
        /// How they are compared.
        how: StringMatch,
    },
    /// A token parameter: `(system, value)` pairs; a `None` system matches any.
    Token {
        /// Parameter name.
        name: String,
        /// Values.
        values: Vec<(Option<String>, String)>,
        /// `:not`: the resources with none of these values (or no value at all).
        not: bool,
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
    /// `:missing=true` (no value indexed under `name`) or `:missing=false`.
    Missing {
        /// Parameter name.
        name: String,
        /// `true`: the resources without a value.
        missing: bool,
    },
}

/// `_summary`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Summary {
    /// The whole resources (`_summary=false`, or no `_summary`).
    #[default]
    Full,
    /// `_summary=count`: the total only.
    Count,
    /// `_summary=true`: the elements FHIR marks as summary.
    True,
}

/// What a search is sorted by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// `_lastUpdated`.
    LastUpdated,
    /// A string or date parameter, by its indexed value.
    Parameter(String),
}

/// A parsed search: conditions (all must hold), page size and offset, and what
/// each entry shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Every condition.
    pub conditions: Vec<Condition>,
    /// `_count` (default 50, at most 1000; 0 asks for the total only).
    pub count: usize,
    /// `_offset`.
    pub offset: usize,
    /// `_summary`.
    pub summary: Summary,
    /// `_elements`: the top-level elements each resource keeps.
    pub elements: Option<Vec<String>>,
    /// `_sort`, in order: the key and whether descending.
    pub sort: Vec<(SortKey, bool)>,
}

impl Query {
    /// Whether the answer is the total only (`_count=0` or `_summary=count`).
    pub fn total_only(&self) -> bool {
        self.count == 0 || self.summary == Summary::Count
    }
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

/// A date, or an instant's date followed by its time (`T…`, ASCII only). Never
/// slices inside a character: any text may arrive here.
fn is_date_or_instant(v: &str) -> bool {
    match v.get(..10) {
        Some(day) if v.len() > 10 => {
            is_date(day)
                && v[10..].starts_with('T')
                && v[10..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b":.+-".contains(&b))
        }
        _ => is_date(v),
    }
}

/// Sortable besides `_lastUpdated`: the string and date parameters.
fn sortable(resource_type: &str, name: &str) -> bool {
    matches!(kind(resource_type, name), Some(Kind::String | Kind::Date)) && name != "_tag"
}

/// A top-level element name (`birthDate`, `name`).
fn is_element_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}
/// The most parameters one search may have.
pub const MAX_PARAMETERS: usize = 64;

/// Reads a search's query parameters (already percent-decoded pairs). Unknown
/// parameters and modifiers are an error (422 `not-supported`), so a client never
/// gets every patient for a typo, nor the women for `gender:not=female`.
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
            |message: &str| Issue::error(IssueType::Value, message.to_owned()).at(key.clone());
        let unsupported = |m: &str| {
            Issue::error(
                IssueType::NotSupported,
                format!("The modifier :{m} is not supported on this parameter"),
            )
            .at(key.clone())
        };
        let values: Vec<&str> = raw.split(',').filter(|v| !v.is_empty()).collect();
        let is_result = matches!(
            name,
            "_count"
                | "_offset"
                | "_lastUpdated"
                | "_format"
                | "_pretty"
                | "_summary"
                | "_elements"
                | "_sort"
                | "_total"
                | "_totalMethod"
        );
        if is_result && let Some(m) = modifier {
            issues.push(unsupported(m));
            continue;
        }
        match name {
            "_count" | "_offset" => match raw.parse::<usize>() {
                Ok(n) if name == "_count" => query.count = n.min(MAX_COUNT),
                Ok(n) => query.offset = n,
                Err(_) => issues.push(bad("Must be a whole number")),
            },
            "_id" => match modifier {
                None | Some("not") if !values.is_empty() => query.conditions.push(Condition::Id {
                    ids: values.iter().map(|v| (*v).to_owned()).collect(),
                    not: modifier.is_some(),
                }),
                None | Some("not") => issues.push(bad("Needs a value")),
                Some(m) => issues.push(unsupported(m)),
            },
            "_lastUpdated" => {
                let (prefix, v) = date_prefix(raw);
                if is_date_or_instant(v) {
                    query
                        .conditions
                        .push(Condition::LastUpdated(prefix, v.to_owned()));
                } else {
                    issues.push(bad("Must be a date or instant, with an optional prefix (ge, le, gt, lt, eq, ne)"));
                }
            }
            // The format is checked before any handler (406 for anything but JSON).
            "_format" | "_pretty" => {}
            // Totals are always counted exactly here: every way of asking is honoured.
            "_total" | "_totalMethod" => {
                if !matches!(raw.as_str(), "none" | "estimate" | "accurate" | "count") {
                    issues.push(bad("Must be none, estimate, accurate or count"));
                }
            }
            "_summary" => match raw.as_str() {
                "count" => query.summary = Summary::Count,
                "true" => query.summary = Summary::True,
                "false" => query.summary = Summary::Full,
                _ => issues.push(
                    Issue::error(
                        IssueType::NotSupported,
                        "Only _summary=count, true or false is supported",
                    )
                    .at(key.clone()),
                ),
            },
            "_elements" => {
                if values.is_empty() || !values.iter().all(|v| is_element_name(v)) {
                    issues.push(bad(
                        "Must be a list of top-level element names, such as name,birthDate",
                    ));
                } else {
                    query.elements = Some(values.iter().map(|v| (*v).to_owned()).collect());
                }
            }
            "_sort" => {
                for v in &values {
                    let (descending, key_name) = match v.strip_prefix('-') {
                        Some(k) => (true, k),
                        None => (false, *v),
                    };
                    if key_name == "_lastUpdated" {
                        query.sort.push((SortKey::LastUpdated, descending));
                    } else if sortable(resource_type, key_name) {
                        query
                            .sort
                            .push((SortKey::Parameter(key_name.to_owned()), descending));
                    } else {
                        issues.push(
                            Issue::error(
                                IssueType::NotSupported,
                                format!("{resource_type} cannot be sorted by this parameter: sort by _lastUpdated or a string or date parameter"),
                            )
                            .at(key.clone()),
                        );
                    }
                }
                if values.is_empty() {
                    issues.push(bad("Needs a value"));
                }
            }
            _ => match (kind(resource_type, name), modifier) {
                (None, _) => issues.push(
                    Issue::error(
                        IssueType::NotSupported,
                        format!("Unknown search parameter for {resource_type}"),
                    )
                    .at(key.clone()),
                ),
                (Some(_), Some("missing")) => match raw.as_str() {
                    "true" | "false" => query.conditions.push(Condition::Missing {
                        name: name.to_owned(),
                        missing: raw == "true",
                    }),
                    _ => issues.push(bad(":missing takes true or false")),
                },
                (Some(_), _) if values.is_empty() => issues.push(bad("Needs a value")),
                (Some(Kind::String), None | Some("exact" | "contains")) => {
                    query.conditions.push(Condition::String {
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
                        how: match modifier {
                            Some("exact") => StringMatch::Exact,
                            Some(_) => StringMatch::Contains,
                            None => StringMatch::Start,
                        },
                    });
                }
                (Some(Kind::Token), None | Some("not")) => {
                    query.conditions.push(Condition::Token {
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
                        not: modifier.is_some(),
                    });
                }
                (Some(Kind::Date), None) => {
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
                (Some(Kind::Uri), None) => {
                    query.conditions.push(Condition::Exact {
                        name: name.to_owned(),
                        values: values.iter().map(|v| (*v).to_owned()).collect(),
                    });
                }
                (Some(Kind::Reference), None) => {
                    // A bare id names a Patient where the parameter can only
                    // point at one (`patient=123`, as SDC's `{{%patient.id}}`
                    // queries write it); elsewhere it is ambiguous, and compared
                    // whole it would silently find nothing.
                    let mut exact = Vec::new();
                    for v in &values {
                        if v.contains('/') {
                            exact.push((*v).to_owned());
                        } else if name == "patient" {
                            exact.push(format!("Patient/{v}"));
                        } else {
                            issues.push(
                                Issue::error(
                                    IssueType::NotSupported,
                                    "Name the type with the id (Patient/123): this parameter may point at several types",
                                )
                                .at(key.clone()),
                            );
                        }
                    }
                    query.conditions.push(Condition::Exact {
                        name: name.to_owned(),
                        values: exact,
                    });
                }
                (Some(_), Some(m)) => issues.push(unsupported(m)),
            },
        }
    }
    if query.summary != Summary::Full && query.elements.is_some() {
        issues.push(
            Issue::error(
                IssueType::NotSupported,
                "Use _summary or _elements, not both",
            )
            .at("_elements"),
        );
    }
    if issues.is_empty() {
        Ok(query)
    } else {
        Err(issues)
    }
}

/// The elements FHIR R4 marks as summary (Σ) for each served type, with the
/// mandatory ones, as JSON keys (a choice element under each of its names).
fn summary_elements(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "Patient" => &[
            "identifier",
            "active",
            "name",
            "telecom",
            "gender",
            "birthDate",
            "deceasedBoolean",
            "deceasedDateTime",
            "address",
            "managingOrganization",
            "link",
        ],
        "QuestionnaireResponse" => &[
            "identifier",
            "basedOn",
            "partOf",
            "questionnaire",
            "status",
            "subject",
            "encounter",
            "authored",
            "author",
            "source",
        ],
        "Provenance" => &["target", "recorded", "agent"],
        "RelatedPerson" => &[
            "identifier",
            "active",
            "patient",
            "relationship",
            "name",
            "telecom",
            "gender",
            "birthDate",
            "address",
        ],
        "Observation" => &[
            "identifier",
            "basedOn",
            "partOf",
            "status",
            "code",
            "subject",
            "focus",
            "encounter",
            "effectiveDateTime",
            "effectivePeriod",
            "effectiveTiming",
            "effectiveInstant",
            "issued",
            "performer",
            "valueQuantity",
            "valueCodeableConcept",
            "valueString",
            "valueBoolean",
            "valueInteger",
            "valueRange",
            "valueRatio",
            "valueSampledData",
            "valueTime",
            "valueDateTime",
            "valuePeriod",
            "hasMember",
            "derivedFrom",
            "component",
        ],
        "Task" => &[
            "identifier",
            "instantiatesCanonical",
            "instantiatesUri",
            "basedOn",
            "groupIdentifier",
            "partOf",
            "status",
            "statusReason",
            "businessStatus",
            "intent",
            "priority",
            "code",
            "description",
            "focus",
            "for",
            "encounter",
            "executionPeriod",
            "authoredOn",
            "lastModified",
            "requester",
            "performerType",
            "owner",
        ],
        _ => &[],
    }
}

/// `resource` as a search entry shows it under `query`: whole, or only its
/// summary or the asked-for elements (and `resourceType`, `id`, `meta`,
/// `implicitRules`, `modifierExtension`), tagged `SUBSETTED` as FHIR asks.
pub fn shown(resource_type: &str, resource: &Value, query: &Query) -> Value {
    let keep = |key: &str| {
        matches!(
            key,
            "resourceType" | "id" | "meta" | "implicitRules" | "modifierExtension"
        ) || match (&query.summary, &query.elements) {
            (Summary::True, _) => summary_elements(resource_type).contains(&key),
            (_, Some(elements)) => elements.iter().any(|e| e == key),
            _ => true,
        }
    };
    if query.summary != Summary::True && query.elements.is_none() {
        return resource.clone();
    }
    let Some(object) = resource.as_object() else {
        return resource.clone();
    };
    let mut out: serde_json::Map<String, Value> = object
        .iter()
        // A primitive's extensions (`_birthDate`) go with it.
        .filter(|(k, _)| keep(k.strip_prefix('_').unwrap_or(k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let meta = out
        .entry("meta")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        let tags = meta
            .entry("tag")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(tags) = tags.as_array_mut() {
            tags.push(serde_json::json!({
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "SUBSETTED",
                "display": "subsetted"
            }));
        }
    }
    Value::Object(out)
}

/// Reads a query string (`a=1&b=2`, percent-encoded) into pairs; `None` if it
/// is not a valid query string.
pub fn pairs(query: &str) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_str(query.trim_start_matches('?')).ok()
}
