//! Evaluation of an [`Expr`] over the response and the form.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::datetime::{self, Moment};
use super::{Expr, Func, Node, Op};
use crate::date::Date;
use crate::form::{Form, Item, Value};
#[cfg(feature = "launch-context")]
use crate::json::Json;
use crate::response::QuestionnaireResponse;

/// The largest collection an expression may build (`combine` can double).
const MAX_ITEMS: usize = 10_000;
const ORDINAL_VALUE: &str = "http://hl7.org/fhir/StructureDefinition/ordinalValue";
const ITEM_WEIGHT: &str = "http://hl7.org/fhir/StructureDefinition/itemWeight";

/// Most steps one evaluation may take (each node of the expression evaluated
/// once per input, each value produced or compared): far above what a real form's
/// score needs (a PHQ-9 takes a few hundred), low enough that a hostile expression
/// from an uploaded form stops in milliseconds.
pub const MAX_STEPS: u32 = 200_000;

/// Why an expression could not be evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalError {
    /// Several values where one was needed, mismatched types, a collection too
    /// large, a variable that could not itself be evaluated.
    Invalid,
    /// More than [`MAX_STEPS`] steps: the expression does too much work.
    TooMuchWork,
}

type Nodes<'a> = Vec<Node<'a>>;
type R<'a> = Result<Nodes<'a>, EvalError>;

/// What an expression sees: `%resource`, `%questionnaire` (the compiled form,
/// when there is one), today's date (none: `today()` is empty), the instant
/// `now()` gives (none: today's date) and the variables in scope, innermost last.
/// A variable bound to an error (it could not be evaluated) makes any expression
/// that reads it an error, never a silent empty.
#[derive(Clone, Debug)]
pub struct Env<'a> {
    pub form: Option<&'a Form>,
    pub resource: Node<'a>,
    pub today: Option<Date>,
    pub now: Option<&'a str>,
    pub vars: Vec<(&'a str, Result<Nodes<'a>, EvalError>)>,
    /// Whether unit algebra (`2 'cm' * 2 'm'`, with UCUM conversions) is
    /// evaluated: only over FHIR JSON on the server ([`Env::json`]). A form's
    /// expressions run without it everywhere (the browser's bundle cannot
    /// afford the unit tables), so the browser and the server's checks agree:
    /// such an expression is an error, its calculated value uncomputed, never
    /// refused. Date arithmetic runs everywhere.
    pub full: bool,
}

impl<'a> Env<'a> {
    /// An environment over a response to `form`, without variables.
    pub fn new(form: &'a Form, resource: &'a QuestionnaireResponse, today: Option<Date>) -> Self {
        Self {
            form: Some(form),
            resource: Node::Response(resource),
            today,
            now: None,
            vars: Vec::new(),
            full: false,
        }
    }

    #[cfg(feature = "launch-context")]
    /// An environment over a FHIR resource as raw JSON (`%resource`), without a
    /// compiled form: extraction and the conformance suite evaluate this way.
    pub fn json(resource: &'a Json, today: Option<Date>) -> Self {
        Self {
            form: None,
            resource: Node::Json(resource),
            today,
            now: None,
            vars: Vec::new(),
            full: true,
        }
    }

    /// Evaluates `expr` with `context` as `%context` and input, within
    /// [`MAX_STEPS`].
    pub fn eval(&self, expr: &Expr, context: &[Node<'a>]) -> R<'a> {
        let steps = std::cell::Cell::new(MAX_STEPS);
        Run {
            env: self,
            context,
            total: None,
            index: None,
            steps: &steps,
        }
        .eval(expr, context)
    }
}

struct Run<'e, 'a> {
    env: &'e Env<'a>,
    context: &'e [Node<'a>],
    /// `$total` inside `aggregate()`.
    total: Option<&'e [Node<'a>]>,
    /// `$index` inside `where`, `select`, `all`, `exists`, `aggregate`.
    index: Option<i64>,
    steps: &'e std::cell::Cell<u32>,
}

/// The one value of a collection, if any; several are an error.
fn single<'c, 'a>(c: &'c [Node<'a>]) -> Result<Option<&'c Node<'a>>, EvalError> {
    match c {
        [] => Ok(None),
        [n] => Ok(Some(n)),
        _ => Err(EvalError::Invalid),
    }
}

/// A collection as a boolean: empty is unknown, one non-boolean value is true.
pub(crate) fn truth(c: &[Node<'_>]) -> Result<Option<bool>, EvalError> {
    Ok(single(c)?.map(|n| !matches!(n, Node::Bool(false))))
}

pub(crate) fn num(n: &Node<'_>) -> Option<f64> {
    match n {
        Node::Int(i) => Some(*i as f64),
        Node::Dec(d) => Some(*d),
        _ => None,
    }
}

fn dec<'a>(x: f64) -> Option<Node<'a>> {
    x.is_finite().then_some(Node::Dec(x))
}

fn text<'a>(s: impl Into<Cow<'a, str>>) -> Node<'a> {
    Node::Str(s.into())
}

/// A date, date-time or time as a moment, and whether it is a time.
fn moment(n: &Node<'_>) -> Option<(Moment, bool)> {
    match n {
        Node::Date(s) | Node::DateTime(s) => datetime::parse_date_time(s).map(|m| (m, false)),
        Node::Time(s) => datetime::parse_time(s).map(|m| (m, true)),
        _ => None,
    }
}

/// A quantity in its base unit where we know it (`1 week` is `7 'd'`, `4 'g'`
/// is `4000 'mg'`), as milliseconds, grams or metres: the same in the browser
/// and on the server, so `1000 'g' = 1 'kg'` in a form means the same on both.
fn base_unit(v: f64, u: &str) -> (f64, &str) {
    let (factor, base) = match u {
        "millisecond" | "ms" => (1.0, "ms"),
        "second" | "s" => (1e3, "ms"),
        "minute" | "min" => (6e4, "ms"),
        "hour" | "h" => (3.6e6, "ms"),
        "day" | "d" => (8.64e7, "ms"),
        "week" | "wk" => (6.048e8, "ms"),
        "g" => (1.0, "g"),
        "mg" => (1e-3, "g"),
        "ug" => (1e-6, "g"),
        "kg" => (1e3, "g"),
        "m" => (1.0, "m"),
        "cm" => (1e-2, "m"),
        "mm" => (1e-3, "m"),
        "km" => (1e3, "m"),
        _ => (1.0, u),
    };
    (v * factor, base)
}

/// Whether two decimals are equal, within the rounding of binary floating point
/// (`1.8 - 1.2 = 0.6`).
fn same_number(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// FHIRPath `=` of two values: none where it is unknown (dates at different
/// precisions).
fn eq3(x: &Node<'_>, y: &Node<'_>) -> Option<bool> {
    let (x, y) = (&*lift(x), &*lift(y));
    if let (Some(a), Some(b)) = (num(x), num(y)) {
        return Some(same_number(a, b));
    }
    if let (Some((a, ta)), Some((b, tb))) = (moment(x), moment(y)) {
        return if ta == tb {
            datetime::compare(&a, &b).map(Ordering::is_eq)
        } else {
            Some(false)
        };
    }
    Some(match (x, y) {
        // A calendar year or month is not UCUM's 'a' or 'mo': unknown.
        (Node::Qty(_, u), Node::Qty(_, v))
            if matches!(
                (&**u, &**v),
                ("year", "a") | ("a", "year") | ("month", "mo") | ("mo", "month")
            ) =>
        {
            return None;
        }
        (Node::Qty(a, u), Node::Qty(b, v)) => {
            let ((a, u), (b, v)) = (base_unit(*a, u), base_unit(*b, v));
            u == v && same_number(a, b)
        }
        (Node::Coding(a, _), Node::Coding(b, _)) => a == b,
        _ => x == y,
    })
}

fn eq(x: &Node<'_>, y: &Node<'_>) -> bool {
    eq3(x, y) == Some(true)
}

fn equal(x: &[Node<'_>], y: &[Node<'_>]) -> Option<bool> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    if x.len() != y.len() {
        return Some(false);
    }
    let mut unknown = false;
    for (a, b) in x.iter().zip(y) {
        match eq3(a, b) {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    (!unknown).then_some(true)
}

/// Decimal places of a number as we print it.
fn places(x: f64) -> i32 {
    decimal_text(x)
        .split_once('.')
        .map_or(0, |(_, f)| f.len() as i32)
}

fn equivalent(x: &[Node<'_>], y: &[Node<'_>]) -> bool {
    let norm = |n: &Node<'_>| match n {
        Node::Str(s) => Some(crate::case::to_lower(
            &s.split_whitespace().collect::<Vec<_>>().join(" "),
        )),
        _ => None,
    };
    let same = |a: &Node<'_>, b: &Node<'_>| {
        let (a, b) = (&*lift(a), &*lift(b));
        // Numbers (and quantities) to the precision of the less precise one,
        // in the browser as on the server.
        let numbers = match (a, b) {
            (Node::Qty(p, u), Node::Qty(q, v)) => {
                let ((p2, u2), (q2, v2)) = (base_unit(*p, u), base_unit(*q, v));
                (u2 == v2).then(|| (p2, q2, places(*p).min(places(*q)), *p / p2))
            }
            _ => num(a)
                .zip(num(b))
                .map(|(p, q)| (p, q, places(p).min(places(q)), 1.0)),
        };
        if let Some((p, q, digits, scale)) = numbers {
            let r = 10f64.powi(digits) * scale;
            return ((p * r).round() - (q * r).round()).abs() < 0.5 || same_number(p, q);
        }
        match (norm(a), norm(b)) {
            (Some(a), Some(b)) => a == b,
            _ => match (moment(a), moment(b)) {
                (Some((p, _)), Some((q, _))) => datetime::compare(&p, &q) == Some(Ordering::Equal),
                _ => eq(a, b),
            },
        }
    };
    x.len() == y.len() && x.iter().all(|a| y.iter().any(|b| same(a, b)))
}

/// The order of two values: none where their precisions leave it unknown, an
/// error where they cannot be compared at all (a number and a string).
fn compare(x: &Node<'_>, y: &Node<'_>) -> Result<Option<Ordering>, EvalError> {
    let (x, y) = (&*lift(x), &*lift(y));
    if let (Some(a), Some(b)) = (num(x), num(y)) {
        return Ok(a.partial_cmp(&b));
    }
    if let (Some((a, ta)), Some((b, tb))) = (moment(x), moment(y))
        && ta == tb
    {
        return Ok(datetime::compare(&a, &b));
    }
    match (x, y) {
        (Node::Str(a), Node::Str(b)) => Ok(Some(a.cmp(b))),
        (Node::Qty(a, u), Node::Qty(b, v)) => {
            let ((a, u), (b, v)) = (base_unit(*a, u), base_unit(*b, v));
            if u == v {
                Ok(a.partial_cmp(&b))
            } else {
                Ok(None)
            }
        }
        _ => Err(EvalError::Invalid),
    }
}

fn push_distinct<'a>(out: &mut Nodes<'a>, n: Node<'a>) {
    if !out.iter().any(|m| eq(m, &n)) {
        out.push(n);
    }
}

/// A decimal as text without the float formatter: up to eight places.
pub(crate) fn decimal_text(x: f64) -> String {
    let scaled = (x.abs() * 1e8).round();
    if scaled.is_nan() || scaled >= 9e18 {
        return String::new();
    }
    let n = scaled as u64;
    let mut s = String::new();
    if x < 0.0 && n != 0 {
        s.push('-');
    }
    s.push_str(&(n / 100_000_000).to_string());
    let frac = n % 100_000_000;
    if frac != 0 {
        let digits = format!("{frac:08}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s
}

/// A decimal value as FHIRPath writes it: [`decimal_text`], with a decimal
/// point even when it is whole (`1.0`, `0.0`), so it stays a decimal (as FHIR
/// JSON writes one) and never reads back as an integer.
fn decimal_string(x: f64) -> String {
    let mut s = decimal_text(x);
    if !s.contains('.') && !s.is_empty() {
        s.push_str(".0");
    }
    s
}

/// A value as text, for `toString()`, `&` and `join()`.
pub(crate) fn string_of(n: &Node<'_>) -> Option<String> {
    Some(match n {
        Node::Str(s) | Node::Date(s) | Node::DateTime(s) | Node::Time(s) => s.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Dec(d) => decimal_string(*d),
        Node::Bool(b) => b.to_string(),
        Node::Qty(v, u) if super::parse::calendar_unit(u) => format!("{} {u}", decimal_text(*v)),
        Node::Qty(v, u) => format!("{} '{u}'", decimal_text(*v)),
        _ => return None,
    })
}

fn is_type(n: &Node<'_>, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let names: &[&str] = match n {
        Node::Bool(_) => &["boolean"],
        Node::Int(_) => &["integer"],
        Node::Dec(_) => &["decimal"],
        Node::Str(_) => &[
            "string",
            "uri",
            "url",
            "code",
            "id",
            "markdown",
            "canonical",
        ],
        Node::Date(_) => &["date"],
        Node::DateTime(_) => &["datetime"],
        Node::Time(_) => &["time"],
        Node::Qty(..) => &["quantity"],
        Node::Coding(..) => &["coding"],
        Node::Attachment(_) => &["attachment"],
        Node::Response(_) => &["questionnaireresponse", "resource", "domainresource"],
        Node::Form(_) => &["questionnaire", "resource", "domainresource"],
        #[cfg(feature = "launch-context")]
        Node::Json(_) if matches!(*lift(n), Node::Qty(..)) => &["quantity"],
        #[cfg(feature = "launch-context")]
        Node::Json(j) => {
            return j
                .get("resourceType")
                .and_then(Json::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case(&name));
        }
        _ => &[],
    };
    names.contains(&name.as_str())
}

/// The node of an answer value; `link` is the answered item's linkId.
pub(crate) fn value_node<'a>(v: &'a Value, link: Option<&'a str>) -> Option<Node<'a>> {
    let b = |s: &'a String| Cow::Borrowed(s.as_str());
    Some(match v {
        Value::Boolean(x) => Node::Bool(*x),
        Value::Decimal(x) => Node::Dec(*x),
        Value::Integer(x) => Node::Int(*x),
        Value::Date(s) => Node::Date(b(s)),
        Value::DateTime(s) => Node::DateTime(b(s)),
        Value::Time(s) => Node::Time(b(s)),
        Value::String(s) | Value::Uri(s) | Value::Reference(s) => Node::Str(b(s)),
        Value::Coding(c) => Node::Coding(c, link),
        Value::Quantity(q) => Node::Qty(
            q.value?,
            q.code
                .as_ref()
                .or(q.unit.as_ref())
                .map_or(Cow::Borrowed(""), b),
        ),
        Value::Attachment(a) => Node::Attachment(a),
    })
}

/// The `value[x]` suffix of a value's type.
fn value_suffix(v: &Value) -> &'static str {
    match v {
        Value::Boolean(_) => "Boolean",
        Value::Decimal(_) => "Decimal",
        Value::Integer(_) => "Integer",
        Value::Date(_) => "Date",
        Value::DateTime(_) => "DateTime",
        Value::Time(_) => "Time",
        Value::String(_) => "String",
        Value::Uri(_) => "Uri",
        Value::Coding(_) => "Coding",
        Value::Quantity(_) => "Quantity",
        Value::Reference(_) => "Reference",
        Value::Attachment(_) => "Attachment",
    }
}

/// `value` or `valueX` of something holding `v`.
fn value_member<'a>(v: &'a Value, link: Option<&'a str>, name: &str, out: &mut Nodes<'a>) {
    if name == "value" || name.strip_prefix("value") == Some(value_suffix(v)) {
        out.extend(value_node(v, link));
    }
}

/// `name` of one node.
fn member<'a>(n: &Node<'a>, name: &str, out: &mut Nodes<'a>) {
    let s = |v: &'a Option<String>| v.as_deref().map(|v| Node::Str(Cow::Borrowed(v)));
    match n {
        Node::Response(r) => match name {
            "item" => out.extend(r.item.iter().map(Node::ResponseItem)),
            "status" => out.push(text(r.status.as_str())),
            "id" => out.extend(s(&r.id)),
            "questionnaire" => out.extend(s(&r.questionnaire)),
            "authored" => out.extend(r.authored.as_deref().map(|a| Node::DateTime(a.into()))),
            "resourceType" => out.push(text("QuestionnaireResponse")),
            "QuestionnaireResponse" => out.push(n.clone()),
            _ => {}
        },
        Node::ResponseItem(i) => match name {
            "linkId" => out.push(text(i.link_id.as_str())),
            "text" => out.extend(s(&i.text)),
            "answer" => out.extend(i.answer.iter().map(|a| Node::Answer(a, &i.link_id))),
            "item" => out.extend(i.item.iter().map(Node::ResponseItem)),
            _ => {}
        },
        Node::Answer(a, link) => match name {
            "item" => out.extend(a.item.iter().map(Node::ResponseItem)),
            _ => value_member(&a.value, Some(link), name, out),
        },
        Node::Coding(c, _) => out.extend(match name {
            "system" => s(&c.system),
            "code" => s(&c.code),
            "display" => s(&c.display),
            _ => None,
        }),
        Node::Qty(v, u) => match name {
            "value" => out.push(Node::Dec(*v)),
            "unit" | "code" => out.push(Node::Str(u.clone())),
            _ => {}
        },
        Node::Attachment(a) => match name {
            "contentType" => out.extend(s(&a.content_type)),
            "url" => out.extend(s(&a.url)),
            "title" => out.extend(s(&a.title)),
            "size" => out.extend(a.size.and_then(|v| i64::try_from(v).ok()).map(Node::Int)),
            _ => {}
        },
        Node::Form(f) => match name {
            "item" => out.extend(f.items.iter().map(Node::FormItem)),
            "id" => out.push(text(f.id.as_str())),
            "url" => out.extend(s(&f.url)),
            "version" => out.extend(s(&f.version)),
            "title" => out.push(text(f.title.as_str())),
            "resourceType" => out.push(text("Questionnaire")),
            "Questionnaire" => out.push(n.clone()),
            _ => {}
        },
        Node::FormItem(i) => match name {
            "linkId" => out.push(text(i.link_id.as_str())),
            "text" => out.push(text(i.text.as_str())),
            "prefix" => out.extend(s(&i.prefix)),
            "type" => out.push(text(i.kind.code())),
            "required" => out.push(Node::Bool(i.required)),
            "repeats" => out.push(Node::Bool(i.repeats)),
            "readOnly" => out.push(Node::Bool(i.read_only)),
            "definition" => out.extend(s(&i.definition)),
            "item" => out.extend(i.items.iter().map(Node::FormItem)),
            "answerOption" => out.extend(i.options.iter().map(Node::Option)),
            "code" => out.extend(i.codes.iter().map(|c| Node::Coding(c, None))),
            _ => {}
        },
        Node::Option(o) => match name {
            "initialSelected" => out.push(Node::Bool(o.initial_selected)),
            "extension" => out.extend(o.ordinal.map(Node::Ordinal)),
            _ => value_member(&o.value, None, name, out),
        },
        Node::Ordinal(x) => match name {
            "url" => out.push(text(ORDINAL_VALUE)),
            "value" | "valueDecimal" => out.push(Node::Dec(*x)),
            _ => {}
        },
        #[cfg(feature = "launch-context")]
        Node::Json(j) => json_member(j, name, out),
        _ => {}
    }
}

#[cfg(feature = "launch-context")]
/// The child nodes of `n`: every element of a resource as JSON.
fn children<'a>(n: &Node<'a>, out: &mut Nodes<'a>) {
    #[cfg(feature = "launch-context")]
    if let Node::Json(Json::Object(members)) = n {
        for (key, value) in members {
            if key == "resourceType" || key.starts_with('_') {
                continue;
            }
            match value {
                Json::Array(items) => {
                    out.extend(items.iter().filter_map(|v| json_node(v, key_kind(key))));
                }
                v => out.extend(json_node(v, key_kind(key))),
            }
        }
    }
    #[cfg(not(feature = "launch-context"))]
    let _ = (n, out);
}

#[cfg(feature = "launch-context")]
/// FHIR data types, as the suffix of a choice element (`valueQuantity` is
/// `value`), that the JSON evaluation recognises.
#[cfg(feature = "launch-context")]
const CHOICE_TYPES: &[&str] = &[
    "Boolean",
    "Integer",
    "Decimal",
    "String",
    "Date",
    "DateTime",
    "Time",
    "Instant",
    "Uri",
    "Url",
    "Canonical",
    "Code",
    "Id",
    "Oid",
    "Uuid",
    "Markdown",
    "Base64Binary",
    "PositiveInt",
    "UnsignedInt",
    "Quantity",
    "Coding",
    "CodeableConcept",
    "Reference",
    "Period",
    "Range",
    "Ratio",
    "Attachment",
    "Identifier",
    "HumanName",
    "Address",
    "ContactPoint",
    "SampledData",
    "Age",
    "Duration",
    "Money",
    "Count",
    "Distance",
    "Timing",
    "Annotation",
    "Signature",
    "Expression",
];

/// Elements of FHIR resources whose JSON strings are dates or instants.
#[cfg(feature = "launch-context")]
const DATE_ELEMENTS: &[&str] = &[
    "birthDate",
    "date",
    "start",
    "end",
    "issued",
    "authored",
    "lastUpdated",
    "recorded",
    "created",
    "timestamp",
    "instant",
    "dateTime",
];

/// The FHIR type an element's name tells: a choice's suffix, a known date.
#[cfg(feature = "launch-context")]
fn key_kind(key: &str) -> &str {
    if DATE_ELEMENTS.contains(&key) {
        return "DateTime";
    }
    CHOICE_TYPES
        .iter()
        .find(|t| key.len() > t.len() && key.ends_with(*t))
        .copied()
        .unwrap_or("")
}

/// `name` of a FHIR resource (or element) as JSON: the member itself, a choice
/// element by its type suffix, or the resource itself by its type
/// (`Patient.name` on a Patient).
#[cfg(feature = "launch-context")]
fn json_member<'a>(j: &'a Json, name: &str, out: &mut Nodes<'a>) {
    let Json::Object(members) = j else {
        return;
    };
    if name.starts_with(|c: char| c.is_ascii_uppercase()) {
        if j.get("resourceType").and_then(Json::as_str) == Some(name) {
            out.push(Node::Json(j));
        }
        return;
    }
    for (key, value) in members {
        let kind = if key == name {
            if DATE_ELEMENTS.contains(&name) {
                "DateTime"
            } else {
                ""
            }
        } else {
            match key.strip_prefix(name) {
                Some(rest) if CHOICE_TYPES.contains(&rest) => rest,
                _ => continue,
            }
        };
        match value {
            Json::Array(items) => out.extend(items.iter().filter_map(|v| json_node(v, kind))),
            v => out.extend(json_node(v, kind)),
        }
    }
}

#[cfg(feature = "launch-context")]
/// The node of a JSON value in a FHIR resource, `kind` its FHIR type where the
/// element's name tells it (a choice's suffix, a known date element):
/// primitives become FHIRPath values, dates and times by their type, objects
/// stay JSON; `null` is nothing.
fn json_node<'a>(j: &'a Json, kind: &str) -> Option<Node<'a>> {
    Some(match j {
        Json::Null => return None,
        Json::Bool(b) => Node::Bool(*b),
        Json::Number(n) => match n.parse::<i64>() {
            // A decimal written without a point (`"valueDecimal": 100`) reads as
            // the integer it equals, so it is written back as it came.
            Ok(i) => Node::Int(i),
            _ => Node::Dec(crate::float::parse_f64(n)?),
        },
        Json::String(s) => {
            let s = Cow::Borrowed(s.as_str());
            match kind {
                "Date" | "DateTime" | "Instant" if s.contains('T') => Node::DateTime(s),
                "Date" | "DateTime" | "Instant" if super::parse::date_literal(&s).is_ok() => {
                    Node::Date(s)
                }
                "Time" => Node::Time(s),
                _ => Node::Str(s),
            }
        }
        Json::Array(_) | Json::Object(_) => Node::Json(j),
    })
}

/// A FHIR Quantity as JSON (`valueQuantity`) as a quantity value, so that it
/// compares and adds as one; anything else as it is.
fn lift<'n, 'a>(n: &'n Node<'a>) -> Cow<'n, Node<'a>> {
    #[cfg(feature = "launch-context")]
    if let Node::Json(j) = n
        && let Some(Json::Number(v)) = j.get("value")
        && let Some(unit) = j
            .get("code")
            .or_else(|| j.get("unit"))
            .and_then(Json::as_str)
        && let Some(v) = crate::float::parse_f64(v)
    {
        return Cow::Owned(Node::Qty(v, Cow::Borrowed(unit)));
    }
    Cow::Borrowed(n)
}

/// A value as the suite writes it: text for primitives (dates without `@`),
/// `1 'kg'` for a quantity; none for nodes of a resource.
pub fn display(n: &Node<'_>) -> Option<String> {
    string_of(&lift(n))
}

/// A number's value.
pub fn number_of(n: &Node<'_>) -> Option<f64> {
    num(n)
}

fn find_item<'a>(items: &'a [Item], link_id: &str) -> Option<&'a Item> {
    items.iter().find_map(|i| {
        if i.link_id == link_id {
            Some(i)
        } else {
            find_item(&i.items, link_id)
        }
    })
}

fn arith<'a>(op: Op, x: &Node<'a>, y: &Node<'a>) -> Option<Node<'a>> {
    let (x, y) = (&*lift(x), &*lift(y));
    if let (Node::Int(a), Node::Int(b)) = (x, y) {
        return match op {
            Op::Add => a.checked_add(*b).map(Node::Int),
            Op::Sub => a.checked_sub(*b).map(Node::Int),
            Op::Mul => a.checked_mul(*b).map(Node::Int),
            Op::Div => a.checked_div(*b).map(Node::Int),
            Op::Mod => a.checked_rem(*b).map(Node::Int),
            _ => (*b != 0).then(|| Node::Dec(*a as f64 / *b as f64)),
        };
    }
    if let (Some(a), Some(b)) = (num(x), num(y)) {
        return match op {
            Op::Add => dec(a + b),
            Op::Sub => dec(a - b),
            Op::Mul => dec(a * b),
            Op::Divide => dec(a / b),
            Op::Div => {
                let q = (a / b).trunc();
                (q.is_finite() && q.abs() < 9e18).then_some(Node::Int(q as i64))
            }
            _ => dec(a % b),
        };
    }
    match (op, x, y) {
        (Op::Add, Node::Str(a), Node::Str(b)) => Some(text(format!("{a}{b}"))),
        // Date arithmetic: calendar durations (`today() - 18 years`, `+ 1 month`
        // to the month's end) and UCUM time units; `'a'` and `'mo'` are not
        // calendar spans, an error.
        (Op::Add | Op::Sub, Node::Date(_) | Node::DateTime(_) | Node::Time(_), Node::Qty(v, u)) => {
            let (m, time) = moment(x)?;
            let amount = if op == Op::Add { *v } else { -*v };
            let s = Cow::Owned(datetime::format(&datetime::add(&m, amount, u)?, time));
            Some(match x {
                Node::Date(_) => Node::Date(s),
                Node::DateTime(_) => Node::DateTime(s),
                _ => Node::Time(s),
            })
        }
        (Op::Add | Op::Sub, Node::Qty(a, u), Node::Qty(b, v)) if u == v => {
            let r = if op == Op::Add { a + b } else { a - b };
            r.is_finite().then(|| Node::Qty(r, u.clone()))
        }
        // Units multiplied and divided (`2 'cm' * 2 'm'` is `0.04 'm2'`): the
        // server's, over FHIR JSON (see `Env::full`).
        #[cfg(feature = "launch-context")]
        (Op::Mul | Op::Divide, Node::Qty(a, u), Node::Qty(b, v)) => {
            let ((a, u), (b, v)) = if u == v {
                ((*a, &**u), (*b, &**v))
            } else {
                (base_unit(*a, u), base_unit(*b, v))
            };
            let (r, unit) = match (op, u == v) {
                (Op::Mul, true) => (a * b, format!("{u}2")),
                (Op::Mul, false) => (a * b, format!("{u}.{v}")),
                (_, true) => (a / b, "1".to_owned()),
                _ => (a / b, format!("{u}/{v}")),
            };
            r.is_finite().then_some(Node::Qty(r, Cow::Owned(unit)))
        }
        (Op::Mul | Op::Divide, Node::Qty(a, u), n) => {
            let b = num(n)?;
            let r = if op == Op::Mul { a * b } else { a / b };
            r.is_finite().then(|| Node::Qty(r, u.clone()))
        }
        _ => None,
    }
}

/// `toString()`, `toInteger()` and the other conversions of one value; none
/// where it does not convert.
fn convert<'a>(name: Func, n: &Node<'a>) -> Option<Node<'a>> {
    match name {
        Func::ToString => string_of(n).map(text),
        Func::ToInteger => match n {
            Node::Int(_) => Some(n.clone()),
            Node::Bool(b) => Some(Node::Int(i64::from(*b))),
            Node::Str(s) => s.parse().ok().map(Node::Int),
            _ => None,
        },
        Func::ToDecimal => match n {
            Node::Int(i) => Some(Node::Dec(*i as f64)),
            Node::Dec(_) => Some(n.clone()),
            Node::Bool(b) => Some(Node::Dec(if *b { 1.0 } else { 0.0 })),
            Node::Str(s) => {
                let (neg, digits) = s
                    .strip_prefix('-')
                    .map_or((false, s.as_ref()), |d| (true, d));
                super::parse::number(digits)
                    .and_then(|v| num(&v))
                    .map(|v| Node::Dec(if neg { -v } else { v }))
            }
            _ => None,
        },
        Func::ToBoolean => match n {
            Node::Bool(_) => Some(n.clone()),
            Node::Int(0) => Some(Node::Bool(false)),
            Node::Int(1) => Some(Node::Bool(true)),
            Node::Dec(d) if *d == 0.0 => Some(Node::Bool(false)),
            Node::Dec(d) if *d == 1.0 => Some(Node::Bool(true)),
            // ASCII is enough: no other character lower-cases to these words' letters.
            Node::Str(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "1" => Some(Node::Bool(true)),
                "false" | "f" | "no" | "n" | "0" => Some(Node::Bool(false)),
                _ => None,
            },
            _ => None,
        },
        #[cfg(feature = "launch-context")]
        Func::ToQuantity => match n {
            Node::Qty(..) => Some(n.clone()),
            Node::Int(_) | Node::Dec(_) => Some(Node::Qty(num(n)?, Cow::Borrowed("1"))),
            Node::Bool(b) => Some(Node::Qty(if *b { 1.0 } else { 0.0 }, Cow::Borrowed("1"))),
            Node::Str(s) => {
                let (number, unit) = s.split_once(' ').unwrap_or((s, "'1'"));
                let value = match convert(Func::ToDecimal, &text(number.to_owned()))? {
                    Node::Dec(v) => v,
                    _ => return None,
                };
                let unit = match unit.strip_prefix('\'').and_then(|u| u.strip_suffix('\'')) {
                    Some(u) => u.to_owned(),
                    None if super::parse::calendar_unit(unit) => {
                        unit.trim_end_matches('s').to_owned()
                    }
                    None => return None,
                };
                Some(Node::Qty(value, Cow::Owned(unit)))
            }
            _ => None,
        },
        #[cfg(feature = "launch-context")]
        Func::ToDate => match n {
            Node::Date(_) => Some(n.clone()),
            Node::DateTime(s) | Node::Str(s) => {
                let m = datetime::parse_date_time(s)?;
                let date = s.split('T').next()?;
                (m.precision <= 3 || matches!(n, Node::DateTime(_)))
                    .then(|| Node::Date(Cow::Owned(date.to_owned())))
            }
            _ => None,
        },
        #[cfg(feature = "launch-context")]
        Func::ToDateTime => match n {
            Node::DateTime(_) => Some(n.clone()),
            Node::Date(s) | Node::Str(s) => {
                datetime::parse_date_time(s)?;
                Some(Node::DateTime(s.clone()))
            }
            _ => None,
        },
        #[cfg(feature = "launch-context")]
        Func::ToTime => match n {
            Node::Time(_) => Some(n.clone()),
            Node::Str(s) => {
                datetime::parse_time(s)?;
                Some(Node::Time(s.clone()))
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(feature = "launch-context")]
/// `lowBoundary()` / `highBoundary()` of a number, quantity, date or time.
fn boundary<'a>(n: &Node<'a>, high: bool, digits: Option<i64>) -> Option<Node<'a>> {
    let number = |x: f64, exact: i32| {
        let digits = i32::try_from(digits.unwrap_or(8))
            .ok()
            .filter(|d| (0..=28).contains(d))?;
        let half = 0.5 * 10f64.powi(-exact);
        let edge = if high { x + half } else { x - half };
        let scale = 10f64.powi(digits);
        let scaled = if high {
            (edge * scale - 1e-9).ceil()
        } else {
            (edge * scale + 1e-9).floor()
        };
        dec(scaled / scale)
    };
    match n {
        Node::Int(i) => number(*i as f64, 0),
        Node::Dec(d) => number(*d, places(*d)),
        Node::Qty(v, u) => match number(*v, places(*v))? {
            Node::Dec(x) => Some(Node::Qty(x, u.clone())),
            _ => None,
        },
        _ => {
            let (m, time) = moment(n)?;
            let b = datetime::boundary(&m, time, high, digits)?;
            let s = Cow::Owned(datetime::format(&b, time));
            Some(match n {
                Node::Date(_) if b.precision <= 3 => Node::Date(s),
                Node::Time(_) => Node::Time(s),
                _ => Node::DateTime(s),
            })
        }
    }
}

#[cfg(feature = "launch-context")]
/// `precision()`: decimal places of a decimal, digits of a date or time.
fn precision(n: &Node<'_>) -> Option<i64> {
    match n {
        Node::Dec(d) => Some(i64::from(places(*d))),
        Node::Int(_) => Some(0),
        Node::Date(s) | Node::DateTime(s) => {
            let m = datetime::parse_date_time(s)?;
            Some([4, 6, 8, 10, 12, 14, 17][m.precision - 1])
        }
        Node::Time(s) => {
            let m = datetime::parse_time(s)?;
            Some([2, 4, 6, 9][m.precision - 4])
        }
        _ => None,
    }
}

/// `b` to the power `e` without libm's `pow` (2.5 kB of the browser's wasm):
/// a whole exponent by repeated squaring, any other as `exp(e × ln b)`; a
/// negative base has no power with a fractional exponent, zero none below zero.
fn power<'a>(b: f64, e: f64) -> Option<Node<'a>> {
    if e.fract() == 0.0 && e.abs() <= 4096.0 {
        return dec(b.powi(e as i32));
    }
    match b {
        _ if b < 0.0 || !e.is_finite() => None,
        0.0 => (e > 0.0).then_some(Node::Dec(0.0)),
        _ => dec((e * b.ln()).exp()),
    }
}

fn opt<'a>(n: Option<Node<'a>>) -> Nodes<'a> {
    n.into_iter().collect()
}

impl<'a> Run<'_, 'a> {
    /// Takes `n` steps from the budget.
    fn charge(&self, n: usize) -> Result<(), EvalError> {
        let left = self.steps.get();
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n > left {
            self.steps.set(0);
            return Err(EvalError::TooMuchWork);
        }
        self.steps.set(left - n);
        Ok(())
    }

    #[cfg(feature = "launch-context")]
    /// `s` with each match of `pattern` replaced by `by`: the longest match at
    /// each place, leftmost first; an empty pattern matches between characters.
    fn replace_matches(&self, s: &str, pattern: &str, by: &str) -> Result<String, EvalError> {
        let whole = crate::regex::Regex::new(&format!("(?s)^(?:{pattern})$"))
            .map_err(|_| EvalError::Invalid)?;
        let ends: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
        let mut out = String::new();
        let mut at = 0;
        while at < ends.len() {
            self.charge(ends.len() - at)?;
            let start = ends[at];
            let longest = (at..ends.len())
                .rev()
                .find(|&j| whole.is_match(&s[start..ends[j]]));
            match longest {
                Some(j) if j > at => {
                    out.push_str(by);
                    at = j;
                }
                Some(_) => {
                    out.push_str(by);
                    out.push_str(
                        s[start..]
                            .chars()
                            .next()
                            .map_or("", |c| &s[start..start + c.len_utf8()]),
                    );
                    at += 1;
                }
                None => {
                    out.push_str(&s[start..ends.get(at + 1).copied().unwrap_or(start)]);
                    at += 1;
                }
            }
        }
        Ok(out)
    }

    #[cfg(feature = "launch-context")]
    /// `sort(keys…)`: by each key in turn (`-key` descending), or by the values.
    fn sort(&self, c: &[Node<'a>], args: &[Expr]) -> R<'a> {
        self.charge_pairs(c.len())?;
        let mut keyed: Vec<(Vec<(Nodes<'a>, bool)>, Node<'a>)> = Vec::with_capacity(c.len());
        for (i, n) in c.iter().enumerate() {
            let mut keys = vec![];
            if args.is_empty() {
                keys.push((vec![n.clone()], false));
            }
            for a in args {
                let (e, desc) = match a {
                    Expr::Neg(inner) => (&**inner, true),
                    e => (e, false),
                };
                keys.push((self.at(i, None).eval(e, std::slice::from_ref(n))?, desc));
            }
            keyed.push((keys, n.clone()));
        }
        let mut failed = false;
        keyed.sort_by(|(a, _), (b, _)| {
            for ((x, desc), (y, _)) in a.iter().zip(b) {
                // Empty keys first, whichever the direction.
                let o = match (x.first(), y.first()) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some(p), Some(q)) => match compare(p, q) {
                        Ok(o) => o.unwrap_or(Ordering::Equal),
                        Err(_) => {
                            failed = true;
                            Ordering::Equal
                        }
                    },
                };
                let o = if *desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        if failed {
            return Err(EvalError::Invalid);
        }
        Ok(keyed.into_iter().map(|(_, n)| n).collect())
    }

    /// Charges for comparing up to every pair of `n` values (`distinct`, `|`).
    fn charge_pairs(&self, n: usize) -> Result<(), EvalError> {
        self.charge(n.saturating_mul(n) / 16)
    }

    /// This run with `$index` (and `$total`) bound.
    fn at<'f>(&'f self, index: usize, total: Option<&'f [Node<'a>]>) -> Run<'f, 'a> {
        Run {
            env: self.env,
            context: self.context,
            total: total.or(self.total),
            index: i64::try_from(index).ok(),
            steps: self.steps,
        }
    }

    fn eval(&self, e: &Expr, focus: &[Node<'a>]) -> R<'a> {
        self.charge(1 + focus.len())?;
        let out = match e {
            Expr::Empty => vec![],
            Expr::Lit(n) => vec![n.clone()],
            Expr::Var(name) => self.var(name)?,
            Expr::This => focus.to_vec(),
            Expr::Total => {
                let total = self.total.unwrap_or_default();
                self.charge(total.len())?;
                total.to_vec()
            }
            Expr::IndexVar => opt(self.index.map(Node::Int)),
            Expr::Member(target, name) => {
                let base = match target {
                    Some(t) => self.eval(t, focus)?,
                    None => focus.to_vec(),
                };
                let mut out = vec![];
                base.iter().for_each(|n| member(n, name, &mut out));
                out
            }
            Expr::Index(t, i) => {
                let base = self.eval(t, focus)?;
                match single(&self.eval(i, focus)?)? {
                    Some(Node::Int(i)) => {
                        opt(usize::try_from(*i).ok().and_then(|i| base.get(i).cloned()))
                    }
                    None => vec![],
                    Some(_) => return Err(EvalError::Invalid),
                }
            }
            Expr::Neg(x) => match single(&self.eval(x, focus)?)? {
                None => vec![],
                Some(Node::Int(i)) => opt(i.checked_neg().map(Node::Int)),
                Some(Node::Dec(d)) => vec![Node::Dec(-d)],
                Some(Node::Qty(v, u)) => vec![Node::Qty(-v, u.clone())],
                Some(_) => return Err(EvalError::Invalid),
            },
            Expr::Bin(op, a, b) => self.binary(*op, a, b, focus)?,
            Expr::Call(target, name, args) => {
                // Children come in no defined order: taking some by position
                // is an error.
                if matches!(
                    *name,
                    Func::Skip | Func::Take | Func::First | Func::Last | Func::Tail
                ) && matches!(
                    target.as_deref(),
                    Some(Expr::Call(_, Func::Children | Func::Descendants, _))
                ) {
                    return Err(EvalError::Invalid);
                }
                let c = match target {
                    Some(t) => self.eval(t, focus)?,
                    None => focus.to_vec(),
                };
                self.call(&c, *name, args, focus)?
            }
        };
        if out.len() > MAX_ITEMS {
            return Err(EvalError::Invalid);
        }
        Ok(out)
    }

    fn var(&self, name: &str) -> R<'a> {
        Ok(match name {
            "resource" | "rootResource" => vec![self.env.resource.clone()],
            "questionnaire" => opt(self.env.form.map(Node::Form)),
            "context" => self.context.to_vec(),
            "ucum" => vec![text("http://unitsofmeasure.org")],
            "sct" => vec![text("http://snomed.info/sct")],
            "loinc" => vec![text("http://loinc.org")],
            _ if name.starts_with("vs-") => {
                vec![text(format!("http://hl7.org/fhir/ValueSet/{}", &name[3..]))]
            }
            _ if name.starts_with("ext-") => vec![text(format!(
                "http://hl7.org/fhir/StructureDefinition/{}",
                &name[4..]
            ))],
            _ => self
                .env
                .vars
                .iter()
                .rev()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .transpose()?
                .unwrap_or_default(),
        })
    }

    fn binary(&self, op: Op, a: &Expr, b: &Expr, focus: &[Node<'a>]) -> R<'a> {
        let bool_out = |b: Option<bool>| opt(b.map(Node::Bool));
        if matches!(op, Op::And | Op::Or | Op::Xor | Op::Implies) {
            let x = truth(&self.eval(a, focus)?)?;
            match (op, x) {
                (Op::And, Some(false)) => return Ok(vec![Node::Bool(false)]),
                (Op::Or, Some(true)) => return Ok(vec![Node::Bool(true)]),
                (Op::Implies, Some(false)) => return Ok(vec![Node::Bool(true)]),
                _ => {}
            }
            let y = truth(&self.eval(b, focus)?)?;
            return Ok(bool_out(match op {
                Op::And => match (x, y) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                },
                Op::Or => match (x, y) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                },
                Op::Xor => x.zip(y).map(|(x, y)| x != y),
                _ => match (x, y) {
                    (Some(true), y) => y,
                    (None, Some(true)) => Some(true),
                    _ => None,
                },
            }));
        }
        let x = self.eval(a, focus)?;
        if let (Op::Is | Op::As, Expr::Lit(Node::Str(t))) = (op, b) {
            let Some(n) = single(&x)? else {
                return Ok(vec![]);
            };
            let fits = is_type(n, t);
            return Ok(match op {
                Op::Is => vec![Node::Bool(fits)],
                _ => opt(fits.then(|| n.clone())),
            });
        }
        let y = self.eval(b, focus)?;
        let within = |one: &[Node<'a>], many: &[Node<'a>]| -> R<'a> {
            Ok(opt(
                single(one)?.map(|n| Node::Bool(many.iter().any(|m| eq(n, m))))
            ))
        };
        Ok(match op {
            Op::Union => {
                self.charge_pairs(x.len() + y.len())?;
                let mut out = vec![];
                x.into_iter()
                    .chain(y)
                    .for_each(|n| push_distinct(&mut out, n));
                out
            }
            Op::Eq => bool_out(equal(&x, &y)),
            Op::Ne => bool_out(equal(&x, &y).map(|b| !b)),
            Op::Equiv => vec![Node::Bool(equivalent(&x, &y))],
            Op::NotEquiv => vec![Node::Bool(!equivalent(&x, &y))],
            Op::In => within(&x, &y)?,
            Op::Contains => within(&y, &x)?,
            Op::Concat => {
                let s = |c: &[Node<'a>]| -> Result<String, EvalError> {
                    single(c)?.map_or(Ok(String::new()), |n| {
                        string_of(n).ok_or(EvalError::Invalid)
                    })
                };
                vec![text(s(&x)? + &s(&y)?)]
            }
            _ => {
                let (Some(p), Some(q)) = (single(&x)?, single(&y)?) else {
                    return Ok(vec![]);
                };
                match op {
                    Op::Lt | Op::Gt | Op::Le | Op::Ge => {
                        bool_out(compare(p, q)?.map(|o| match op {
                            Op::Lt => o.is_lt(),
                            Op::Gt => o.is_gt(),
                            Op::Le => o.is_le(),
                            _ => o.is_ge(),
                        }))
                    }
                    // Numbers that do not give one (a division by zero, an
                    // overflow) give nothing; other types are an error.
                    // Unit algebra is the server's (its unit tables): in a
                    // form, an error in the browser and on the server alike.
                    Op::Mul | Op::Divide
                        if !self.env.full
                            && matches!((&*lift(p), &*lift(q)), (Node::Qty(..), Node::Qty(..))) =>
                    {
                        return Err(EvalError::Invalid);
                    }
                    _ => match arith(op, p, q) {
                        Some(n) => vec![n],
                        None if num(&lift(p)).is_some() && num(&lift(q)).is_some() => vec![],
                        None => return Err(EvalError::Invalid),
                    },
                }
            }
        })
    }

    /// Nodes of `c` for which `crit` is true.
    fn filter(&self, c: &[Node<'a>], crit: &Expr) -> R<'a> {
        let mut out = vec![];
        for (i, n) in c.iter().enumerate() {
            if truth(&self.at(i, None).eval(crit, std::slice::from_ref(n))?)? == Some(true) {
                out.push(n.clone());
            }
        }
        Ok(out)
    }

    fn each(&self, c: &[Node<'a>], e: &Expr) -> R<'a> {
        let mut out = vec![];
        for (i, n) in c.iter().enumerate() {
            out.extend(self.at(i, None).eval(e, std::slice::from_ref(n))?);
            if out.len() > MAX_ITEMS {
                return Err(EvalError::Invalid);
            }
        }
        Ok(out)
    }

    fn int_arg(&self, e: &Expr, focus: &[Node<'a>]) -> Result<Option<i64>, EvalError> {
        match single(&self.eval(e, focus)?)? {
            None => Ok(None),
            Some(Node::Int(i)) => Ok(Some(*i)),
            Some(_) => Err(EvalError::Invalid),
        }
    }

    fn str_arg(&self, e: &Expr, focus: &[Node<'a>]) -> Result<Option<String>, EvalError> {
        single(&self.eval(e, focus)?)?
            .map(|n| string_of(n).ok_or(EvalError::Invalid))
            .transpose()
    }

    fn ordinal(&self, n: &Node<'a>) -> Option<f64> {
        match n {
            Node::Coding(c, Some(link)) => {
                find_item(&self.env.form?.items, link)?
                    .options
                    .iter()
                    .find(|o| matches!(&o.value, Value::Coding(oc) if oc.same_code(c)))?
                    .ordinal
            }
            Node::Answer(a, link) => self.ordinal(&value_node(&a.value, Some(link))?),
            Node::Option(o) => o.ordinal,
            _ => None,
        }
    }

    #[allow(clippy::too_many_lines)]
    fn call(&self, c: &[Node<'a>], name: Func, args: &[Expr], focus: &[Node<'a>]) -> R<'a> {
        let arg = |i: usize| self.eval(&args[i], focus);
        let all = |pred: &dyn Fn(&Node<'a>) -> bool| vec![Node::Bool(c.iter().all(pred))];
        let any = |pred: &dyn Fn(&Node<'a>) -> bool| vec![Node::Bool(c.iter().any(pred))];
        // Functions over the whole collection.
        match name {
            Func::Empty => return Ok(vec![Node::Bool(c.is_empty())]),
            Func::Exists => {
                let found = match args.first() {
                    Some(crit) => !self.filter(c, crit)?.is_empty(),
                    None => !c.is_empty(),
                };
                return Ok(vec![Node::Bool(found)]);
            }
            Func::Count => return Ok(vec![Node::Int(c.len() as i64)]),
            Func::Sum | Func::Avg => {
                let mut total = Node::Int(0);
                for n in c {
                    total = arith(Op::Add, &total, n).ok_or(EvalError::Invalid)?;
                }
                if name == Func::Avg {
                    if c.is_empty() {
                        return Ok(vec![]);
                    }
                    return Ok(opt(arith(Op::Divide, &total, &Node::Int(c.len() as i64))));
                }
                return Ok(vec![total]);
            }
            Func::Min | Func::Max => {
                let mut best: Option<&Node<'a>> = None;
                for n in c {
                    let better = match best {
                        None => true,
                        Some(b) => {
                            let o = compare(n, b)?.ok_or(EvalError::Invalid)?;
                            if name == Func::Min {
                                o.is_lt()
                            } else {
                                o.is_gt()
                            }
                        }
                    };
                    if better {
                        best = Some(n);
                    }
                }
                return Ok(opt(best.cloned()));
            }
            Func::First => return Ok(opt(c.first().cloned())),
            Func::Last => return Ok(opt(c.last().cloned())),
            Func::Tail => return Ok(c.iter().skip(1).cloned().collect()),
            Func::Skip | Func::Take => {
                let n = usize::try_from(self.int_arg(&args[0], focus)?.unwrap_or(0).max(0))
                    .unwrap_or(usize::MAX);
                let it = c.iter().cloned();
                return Ok(if name == Func::Skip {
                    it.skip(n).collect()
                } else {
                    it.take(n).collect()
                });
            }
            Func::Single => return Ok(opt(single(c)?.cloned())),
            #[cfg(feature = "launch-context")]
            Func::SubsetOf | Func::SupersetOf => {
                let other = arg(0)?;
                self.charge_pairs(c.len() + other.len())?;
                let (small, big) = if name == Func::SubsetOf {
                    (c, &other[..])
                } else {
                    (&other[..], c)
                };
                return Ok(vec![Node::Bool(
                    small.iter().all(|n| big.iter().any(|m| eq(n, m))),
                )]);
            }
            #[cfg(feature = "launch-context")]
            Func::Sort => return self.sort(c, args),
            #[cfg(feature = "launch-context")]
            Func::Children | Func::Descendants => {
                let mut out = vec![];
                let mut next: Nodes<'a> = c.to_vec();
                loop {
                    let mut found = vec![];
                    for n in &next {
                        children(n, &mut found);
                    }
                    self.charge(found.len())?;
                    if found.is_empty() || name == Func::Children {
                        out.extend(found);
                        break;
                    }
                    out.extend(found.iter().cloned());
                    if out.len() > MAX_ITEMS {
                        return Err(EvalError::Invalid);
                    }
                    next = found;
                }
                return Ok(out);
            }
            Func::Aggregate => {
                let mut total = match args.get(1) {
                    Some(init) => self.eval(init, focus)?,
                    None => vec![],
                };
                for (i, n) in c.iter().enumerate() {
                    total = self
                        .at(i, Some(&total))
                        .eval(&args[0], std::slice::from_ref(n))?;
                }
                return Ok(total);
            }
            Func::Where => return self.filter(c, &args[0]),
            Func::Select => return self.each(c, &args[0]),
            Func::Repeat => {
                let mut out: Nodes<'a> = vec![];
                let mut next = self.each(c, &args[0])?;
                while !next.is_empty() {
                    let before = out.len();
                    self.charge(out.len().saturating_mul(next.len()))?;
                    next.into_iter().for_each(|n| push_distinct(&mut out, n));
                    if out.len() == before || out.len() > MAX_ITEMS {
                        break;
                    }
                    next = self.each(&out[before..], &args[0])?;
                }
                return Ok(out);
            }
            Func::All => {
                for (i, n) in c.iter().enumerate() {
                    if truth(&self.at(i, None).eval(&args[0], std::slice::from_ref(n))?)?
                        != Some(true)
                    {
                        return Ok(vec![Node::Bool(false)]);
                    }
                }
                return Ok(vec![Node::Bool(true)]);
            }
            Func::AllTrue | Func::AllFalse | Func::AnyTrue | Func::AnyFalse
                if c.iter().any(|n| !matches!(n, Node::Bool(_))) =>
            {
                return Err(EvalError::Invalid);
            }
            Func::AllTrue => return Ok(all(&|n| *n == Node::Bool(true))),
            Func::AllFalse => return Ok(all(&|n| *n == Node::Bool(false))),
            Func::AnyTrue => return Ok(any(&|n| *n == Node::Bool(true))),
            Func::AnyFalse => return Ok(any(&|n| *n == Node::Bool(false))),
            Func::Distinct | Func::IsDistinct => {
                self.charge_pairs(c.len())?;
                let mut out = vec![];
                c.iter().for_each(|n| push_distinct(&mut out, n.clone()));
                if name == Func::IsDistinct {
                    return Ok(vec![Node::Bool(out.len() == c.len())]);
                }
                return Ok(out);
            }
            Func::Union | Func::Combine | Func::Intersect | Func::Exclude => {
                let other = arg(0)?;
                self.charge_pairs(c.len() + other.len())?;
                let mut out = vec![];
                match name {
                    Func::Union => c
                        .iter()
                        .chain(&other)
                        .for_each(|n| push_distinct(&mut out, n.clone())),
                    Func::Combine => out = c.iter().chain(&other).cloned().collect(),
                    Func::Intersect => c
                        .iter()
                        .filter(|n| other.iter().any(|m| eq(n, m)))
                        .for_each(|n| push_distinct(&mut out, n.clone())),
                    _ => {
                        out = c
                            .iter()
                            .filter(|n| !other.iter().any(|m| eq(n, m)))
                            .cloned()
                            .collect();
                    }
                }
                return Ok(out);
            }
            Func::Iif => {
                single(c)?;
                let cond = match single(&self.eval(&args[0], c)?)? {
                    None => None,
                    Some(Node::Bool(b)) => Some(*b),
                    Some(_) => return Err(EvalError::Invalid),
                };
                return match (cond, args.get(2)) {
                    (Some(true), _) => self.eval(&args[1], c),
                    (_, Some(otherwise)) => self.eval(otherwise, c),
                    _ => Ok(vec![]),
                };
            }
            Func::Not => return Ok(opt(truth(c)?.map(|b| Node::Bool(!b)))),
            Func::HasValue => {
                let primitive = matches!(
                    c,
                    [Node::Bool(_)
                        | Node::Int(_)
                        | Node::Dec(_)
                        | Node::Str(_)
                        | Node::Date(_)
                        | Node::DateTime(_)
                        | Node::Time(_)]
                );
                return Ok(vec![Node::Bool(primitive)]);
            }
            Func::Join => {
                let sep = match args.first() {
                    Some(e) => self.str_arg(e, focus)?.unwrap_or_default(),
                    None => String::new(),
                };
                let parts: Vec<String> = c
                    .iter()
                    .map(|n| string_of(n).ok_or(EvalError::Invalid))
                    .collect::<Result<_, _>>()?;
                return Ok(vec![text(parts.join(&sep))]);
            }
            Func::OfType => {
                let Some(Expr::Lit(Node::Str(t))) = args.first() else {
                    return Err(EvalError::Invalid);
                };
                return Ok(c.iter().filter(|n| is_type(n, t)).cloned().collect());
            }
            Func::Extension => {
                let url = self.str_arg(&args[0], focus)?.unwrap_or_default();
                let wanted = url == ORDINAL_VALUE || url == ITEM_WEIGHT;
                return Ok(c
                    .iter()
                    .filter_map(|n| match n {
                        Node::Option(o) if wanted => o.ordinal.map(Node::Ordinal),
                        _ => None,
                    })
                    .collect());
            }
            Func::Ordinal | Func::Weight => {
                return Ok(c
                    .iter()
                    .filter_map(|n| self.ordinal(n))
                    .map(Node::Dec)
                    .collect());
            }
            Func::Today => {
                return Ok(opt(self
                    .env
                    .today
                    .map(|d| Node::Date(d.to_string().into()))));
            }
            Func::Now => {
                return Ok(opt(match self.env.now {
                    Some(now) => Some(Node::DateTime(Cow::Borrowed(now))),
                    None => self.env.today.map(|d| Node::DateTime(d.to_string().into())),
                }));
            }
            Func::Trace => return Ok(c.to_vec()),
            Func::ToChars => {
                return Ok(match single(c)? {
                    Some(Node::Str(s)) => s.chars().map(|ch| text(ch.to_string())).collect(),
                    _ => vec![],
                });
            }
            Func::Split => {
                let sep = self.str_arg(&args[0], focus)?.unwrap_or_default();
                return Ok(match single(c)? {
                    Some(Node::Str(s)) if !sep.is_empty() => {
                        s.split(sep.as_str()).map(|p| text(p.to_owned())).collect()
                    }
                    Some(Node::Str(s)) => vec![text(s.to_string())],
                    _ => vec![],
                });
            }
            _ => {}
        }
        // Functions of one value: empty in, empty out.
        let Some(n) = single(c)? else {
            return Ok(vec![]);
        };
        if name == Func::Is || name == Func::As {
            let Some(Expr::Lit(Node::Str(t))) = args.first() else {
                return Err(EvalError::Invalid);
            };
            let fits = is_type(n, t);
            return Ok(if name == Func::Is {
                vec![Node::Bool(fits)]
            } else {
                opt(fits.then(|| n.clone()))
            });
        }
        #[cfg(feature = "launch-context")]
        if matches!(n, Node::Json(_))
            && matches!(
                name,
                Func::StartsWith
                    | Func::EndsWith
                    | Func::Contains
                    | Func::Matches
                    | Func::Replace
                    | Func::Length
            )
        {
            return Err(EvalError::Invalid);
        }
        if let Some(s) = match n {
            Node::Str(s) => Some(s),
            _ => None,
        } {
            let chars = || s.chars();
            let sarg = |i: usize| self.str_arg(&args[i], focus);
            let r = match name {
                Func::Length => Some(Node::Int(chars().count() as i64)),
                Func::Substring => {
                    let start = self.int_arg(&args[0], focus)?;
                    let len = match args.get(1) {
                        Some(e) => self.int_arg(e, focus)?,
                        None => Some(i64::MAX),
                    };
                    match (start.and_then(|s| usize::try_from(s).ok()), len) {
                        (Some(start), Some(len)) if start < chars().count() => {
                            let len = usize::try_from(len.max(0)).unwrap_or(usize::MAX);
                            Some(text(chars().skip(start).take(len).collect::<String>()))
                        }
                        _ => None,
                    }
                }
                Func::StartsWith => sarg(0)?.map(|p| Node::Bool(s.starts_with(p.as_str()))),
                Func::EndsWith => sarg(0)?.map(|p| Node::Bool(s.ends_with(p.as_str()))),
                Func::Contains => sarg(0)?.map(|p| Node::Bool(s.contains(p.as_str()))),
                Func::IndexOf => sarg(0)?.map(|p| {
                    Node::Int(
                        s.find(p.as_str())
                            .map_or(-1, |at| s[..at].chars().count() as i64),
                    )
                }),
                Func::Upper => Some(text(crate::case::to_upper(s))),
                Func::Lower => Some(text(crate::case::to_lower(s))),
                Func::Trim => Some(text(s.trim().to_owned())),
                Func::Replace => match (sarg(0)?, sarg(1)?) {
                    (Some(a), Some(b)) if !a.is_empty() => Some(text(s.replace(a.as_str(), &b))),
                    // An empty pattern matches between every two characters.
                    (Some(_), Some(b)) => {
                        let mut out = b.clone();
                        for ch in chars() {
                            out.push(ch);
                            out.push_str(&b);
                        }
                        Some(text(out))
                    }
                    _ => None,
                },
                Func::Matches | Func::MatchesFull => match sarg(0)? {
                    Some(p) => {
                        let p = if name == Func::MatchesFull {
                            format!("(?s)^(?:{p})$")
                        } else {
                            // FHIRPath matches in single-line mode: '.' takes a line break.
                            format!("(?s){p}")
                        };
                        Some(Node::Bool(
                            crate::regex::Regex::new(&p)
                                .map_err(|_| EvalError::Invalid)?
                                .is_match(s),
                        ))
                    }
                    None => None,
                },
                #[cfg(feature = "launch-context")]
                Func::ReplaceMatches => match (sarg(0)?, sarg(1)?) {
                    (Some(p), _) if p.is_empty() => Some(text(s.to_string())),
                    (Some(p), Some(b)) => Some(text(self.replace_matches(s, &p, &b)?)),
                    _ => None,
                },
                #[cfg(feature = "launch-context")]
                Func::Encode | Func::Decode | Func::Escape | Func::Unescape => match sarg(0)? {
                    Some(how) => Some(text(
                        super::codec::apply(name.name(), &how, s).ok_or(EvalError::Invalid)?,
                    )),
                    None => None,
                },
                _ => None,
            };
            if let Some(r) = r {
                return Ok(vec![r]);
            }
        }
        Ok(opt(match name {
            Func::ToString
            | Func::ToInteger
            | Func::ToDecimal
            | Func::ToBoolean
            | Func::ToQuantity
            | Func::ToDate
            | Func::ToDateTime
            | Func::ToTime => convert(name, n),
            #[cfg(feature = "launch-context")]
            Func::ConvertsToString
            | Func::ConvertsToInteger
            | Func::ConvertsToDecimal
            | Func::ConvertsToBoolean
            | Func::ConvertsToQuantity
            | Func::ConvertsToDate
            | Func::ConvertsToDateTime
            | Func::ConvertsToTime => {
                let to = match name {
                    Func::ConvertsToString => Func::ToString,
                    Func::ConvertsToInteger => Func::ToInteger,
                    Func::ConvertsToDecimal => Func::ToDecimal,
                    Func::ConvertsToBoolean => Func::ToBoolean,
                    Func::ConvertsToQuantity => Func::ToQuantity,
                    Func::ConvertsToDate => Func::ToDate,
                    Func::ConvertsToDateTime => Func::ToDateTime,
                    _ => Func::ToTime,
                };
                Some(Node::Bool(convert(to, n).is_some()))
            }
            #[cfg(feature = "launch-context")]
            Func::Precision => precision(n).map(Node::Int),
            #[cfg(feature = "launch-context")]
            Func::LowBoundary | Func::HighBoundary => {
                let digits = match args.first() {
                    Some(e) => Some(self.int_arg(e, focus)?.ok_or(EvalError::Invalid)?),
                    None => None,
                };
                boundary(n, name == Func::HighBoundary, digits)
            }
            Func::Round => {
                let places = match args.first() {
                    Some(e) => self.int_arg(e, focus)?.unwrap_or(0),
                    None => 0,
                };
                match n {
                    Node::Int(_) => Some(n.clone()),
                    Node::Dec(d) if (0..=15).contains(&places) => {
                        let scale = 10f64.powi(places as i32);
                        dec((d * scale).round() / scale)
                    }
                    _ => None,
                }
            }
            Func::Abs => match n {
                Node::Int(i) => i.checked_abs().map(Node::Int),
                Node::Dec(d) => Some(Node::Dec(d.abs())),
                Node::Qty(v, u) => Some(Node::Qty(v.abs(), u.clone())),
                _ => None,
            },
            Func::Power => {
                let exponent = single(&arg(0)?)?.cloned();
                match (n, exponent) {
                    (Node::Int(b), Some(Node::Int(e))) if e >= 0 => u32::try_from(e)
                        .ok()
                        .and_then(|e| b.checked_pow(e))
                        .map(Node::Int),
                    (b, Some(e)) => num(b).zip(num(&e)).and_then(|(b, e)| power(b, e)),
                    _ => None,
                }
            }
            Func::Log => {
                let base = single(&arg(0)?)?.and_then(num);
                num(n).zip(base).and_then(|(x, b)| dec(x.ln() / b.ln()))
            }
            Func::Sqrt | Func::Ln | Func::Exp | Func::Floor | Func::Ceiling | Func::Truncate => {
                let x = num(n).ok_or(EvalError::Invalid)?;
                let to_int = |v: f64| (v.abs() < 9e18).then_some(Node::Int(v as i64));
                match name {
                    Func::Sqrt => dec(x.sqrt()),
                    Func::Ln => dec(x.ln()),
                    Func::Exp => dec(x.exp()),
                    Func::Floor => to_int(x.floor()),
                    Func::Ceiling => to_int(x.ceil()),
                    _ => to_int(x.trunc()),
                }
            }
            _ => None,
        }))
    }
}
