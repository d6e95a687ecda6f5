//! An answer as the FHIR element its definition names: converted to the
//! element's type, checked (dates, codes of required bindings), or refused.

use serde_json::{Map, Value, json};

use super::paths::{Refused, Step, lower_first};
use super::schema::Kind;
use super::{Datum, schema};

/// Puts `value` at `steps` under `object`. Repeating elements on the way reuse
/// their last instance when the value fits there (a `family` beside the `given`
/// already in the last name), else start a new one; `fresh` always starts one.
/// False when a single element is already set.
pub(crate) fn put(
    object: &mut Map<String, Value>,
    steps: &[Step],
    value: Value,
    fresh: bool,
) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return false;
    };
    let field = step.field.trim_end_matches("[x]").to_owned();
    if rest.is_empty() {
        if step.many {
            let list = object
                .entry(field)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = list {
                items.push(value);
                return true;
            }
            return false;
        }
        if object.contains_key(&field) {
            return false;
        }
        object.insert(field, value);
        return true;
    }
    if step.many {
        let list = object
            .entry(field)
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(items) = list else {
            return false;
        };
        if !fresh
            && let Some(Value::Object(last)) = items.last_mut()
            && put(last, rest, value.clone(), fresh)
        {
            return true;
        }
        let mut new = Map::new();
        let ok = put(&mut new, rest, value, fresh);
        if ok {
            items.push(Value::Object(new));
        }
        return ok;
    }
    match object
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(inner) => put(inner, rest, value, fresh),
        _ => false,
    }
}

/// An answer's value with its FHIR type.
pub(crate) fn answer_datum(answer: &Value) -> Option<Datum> {
    typed_value(answer)
}

/// The `value[x]` of an object (an answer, an extension) with its type.
pub(crate) fn typed_value(object: &Value) -> Option<Datum> {
    let (key, json) = object
        .as_object()?
        .iter()
        .find(|(k, _)| k.len() > 5 && k.starts_with("value"))?;
    let suffix = key.strip_prefix("value")?;
    let lower = lower_first(suffix);
    let ty = if schema::PRIMITIVES.contains(&lower.as_str()) {
        lower
    } else {
        suffix.to_owned()
    };
    Some(Datum {
        ty,
        json: json.clone(),
    })
}

/// `value` as the kind of element it goes to: the JSON and the type chosen.
pub(crate) fn convert(
    datum: &Datum,
    kind: Kind,
    chosen: Option<String>,
) -> Result<(Value, String), Refused> {
    match kind {
        Kind::Primitive(target) => Ok((to_type(datum, target)?, target.to_owned())),
        Kind::Complex(target) => {
            let target = chosen.as_deref().unwrap_or(target);
            Ok((to_type(datum, target)?, target.to_owned()))
        }
        Kind::Choice(types) => {
            if let Some(t) = chosen {
                return Ok((to_type(datum, &t)?, t));
            }
            // The value's own type first, then the first type it converts to.
            let exact = types.iter().find(|t| **t == datum.ty);
            for t in exact.into_iter().chain(types.iter()) {
                if let Ok(json) = to_type(datum, t) {
                    return Ok((json, (*t).to_owned()));
                }
            }
            Err(Refused::Unfit("no type of this element takes such a value"))
        }
    }
}

pub(crate) const TEXTUAL: &[&str] = &[
    "string",
    "code",
    "uri",
    "url",
    "canonical",
    "id",
    "markdown",
    "oid",
    "uuid",
];

pub(crate) fn to_type(datum: &Datum, target: &str) -> Result<Value, Refused> {
    let from = datum.ty.as_str();
    let json = &datum.json;
    let text = json.as_str();
    let unfit = Refused::Unfit;
    let value = match target {
        _ if from == target && !schema::PRIMITIVES.contains(&target) => json.clone(),
        "string" | "markdown" => match from {
            "Coding" => json
                .get("display")
                .or_else(|| json.get("code"))
                .cloned()
                .ok_or(unfit("a code without text"))?,
            "CodeableConcept" => json
                .get("text")
                .cloned()
                .or_else(|| first_coding(json).and_then(|c| c.get("display").cloned()))
                .ok_or(unfit("a concept without text"))?,
            "integer" | "decimal" | "boolean" => Value::String(number_text(json)),
            _ => Value::String(text.ok_or(unfit("not text"))?.to_owned()),
        },
        "code" => {
            let code = match from {
                "Coding" => json.get("code").and_then(Value::as_str),
                "CodeableConcept" => first_coding(json)
                    .and_then(|c| c.get("code"))
                    .and_then(Value::as_str),
                _ if TEXTUAL.contains(&from) => text,
                _ => None,
            }
            .ok_or(unfit("not a code"))?;
            let code = code.trim();
            if code.is_empty() || code.contains("  ") {
                return Err(unfit("not a code"));
            }
            Value::String(code.to_owned())
        }
        "uri" | "url" | "canonical" => {
            let t = text
                .filter(|_| TEXTUAL.contains(&from))
                .ok_or(unfit("not a URI"))?;
            if t.is_empty() || t.chars().any(char::is_whitespace) {
                return Err(unfit("not a URI"));
            }
            Value::String(t.to_owned())
        }
        "id" => {
            let t = text.ok_or(unfit("not an id"))?;
            if !crate::questionnaires::is_valid_id(t) {
                return Err(unfit("not an id (1-64 letters, digits, '-' or '.')"));
            }
            Value::String(t.to_owned())
        }
        "boolean" => match (from, json) {
            ("boolean", Value::Bool(_)) => json.clone(),
            _ => return Err(unfit("not yes or no")),
        },
        "integer" | "positiveInt" | "unsignedInt" => {
            let n = match from {
                "integer" | "positiveInt" | "unsignedInt" => json.as_i64(),
                "decimal" => json.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64),
                _ => None,
            }
            .ok_or(unfit("not a whole number"))?;
            let min = match target {
                "positiveInt" => 1,
                "unsignedInt" => 0,
                _ => i64::from(i32::MIN),
            };
            if n < min || n > i64::from(i32::MAX) {
                return Err(unfit("out of range"));
            }
            Value::from(n)
        }
        "decimal" => match from {
            "decimal" | "integer" => json.clone(),
            _ => return Err(unfit("not a number")),
        },
        "date" => {
            let t = text.ok_or(unfit("not a date"))?;
            let date = if matches!(from, "dateTime" | "instant") {
                t.get(..10).unwrap_or(t)
            } else {
                t
            };
            if !matches!(from, "date" | "dateTime" | "instant" | "string") || !is_date(date) {
                return Err(unfit("not a date"));
            }
            Value::String(date.to_owned())
        }
        "dateTime" => {
            let t = text.ok_or(unfit("not a date and time"))?;
            if !matches!(from, "date" | "dateTime" | "instant" | "string") || !is_date_time(t) {
                return Err(unfit("not a date and time"));
            }
            Value::String(t.to_owned())
        }
        "instant" => {
            let t = text.ok_or(unfit("not an instant"))?;
            if !matches!(from, "dateTime" | "instant" | "string") || !is_instant(t) {
                return Err(unfit("not an instant (a date and time with a time zone)"));
            }
            Value::String(t.to_owned())
        }
        "time" => {
            let t = text.ok_or(unfit("not a time"))?;
            if !matches!(from, "time" | "string") || !is_time(t) {
                return Err(unfit("not a time"));
            }
            Value::String(t.to_owned())
        }
        "base64Binary" => return Err(unfit("not a file")),
        "CodeableConcept" => match from {
            "Coding" => json!({"coding": [json]}),
            _ if TEXTUAL.contains(&from) => json!({"text": text.ok_or(unfit("not text"))?}),
            _ => return Err(unfit("not a code")),
        },
        "Coding" => match from {
            "CodeableConcept" => first_coding(json)
                .cloned()
                .ok_or(unfit("a concept without a code"))?,
            "code" => json!({"code": json}),
            "string" => json!({"display": json}),
            _ => return Err(unfit("not a code")),
        },
        "Quantity" => match from {
            "decimal" | "integer" => json!({"value": json}),
            _ => return Err(unfit("not an amount")),
        },
        "Reference" => match from {
            "string" | "uri" => {
                let t = text.ok_or(unfit("not a reference"))?;
                if t.starts_with("urn:uuid:") || t.contains('/') {
                    json!({"reference": t})
                } else {
                    json!({"display": t})
                }
            }
            _ => return Err(unfit("not a reference")),
        },
        "HumanName" if TEXTUAL.contains(&from) => json!({"text": json}),
        "Address" if TEXTUAL.contains(&from) => json!({"text": json}),
        "ContactPoint" | "Identifier" if TEXTUAL.contains(&from) => json!({"value": json}),
        "Annotation" if TEXTUAL.contains(&from) => json!({"text": json}),
        "Period" if matches!(from, "date" | "dateTime") => json!({"start": json}),
        _ => return Err(unfit("a value of another type")),
    };
    if let Value::String(s) = &value
        && s.trim().is_empty()
    {
        return Err(unfit("empty"));
    }
    Ok(value)
}

pub(crate) fn first_coding(concept: &Value) -> Option<&Value> {
    concept.get("coding")?.as_array()?.first()
}

pub(crate) fn number_text(json: &Value) -> String {
    match json {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [y] => digits(y, 4),
        [y, m] => digits(y, 4) && digits(m, 2) && ("01"..="12").contains(m),
        [y, m, d] => {
            digits(y, 4)
                && digits(m, 2)
                && digits(d, 2)
                && ("01"..="12").contains(m)
                && ("01"..="31").contains(d)
        }
        _ => false,
    }
}

pub(crate) fn is_time(s: &str) -> bool {
    let (main, fraction) = s.split_once('.').unwrap_or((s, "0"));
    let parts: Vec<&str> = main.split(':').collect();
    matches!(parts.as_slice(), [h, m, sec] if digits(h, 2) && digits(m, 2) && digits(sec, 2)
        && *h < "24" && *m < "60" && *sec < "61")
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn is_instant(s: &str) -> bool {
    let Some((date, time)) = s.split_once('T') else {
        return false;
    };
    let zone_at = time.find(['Z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    digits(&date.replace('-', ""), 8)
        && is_date(date)
        && is_time(clock)
        && (zone == "Z" || (zone.len() == 6 && is_time(&format!("{}:00", &zone[1..]))))
}

pub(crate) fn is_date_time(s: &str) -> bool {
    is_date(s) || is_instant(s)
}

/// A code for `type_name.field` checked against R4's required value set. Well-known
/// spellings are normalised (`F`, `LA3-6` and `Female` are `female`); a
/// ContactPoint `use` that is a `system` code (and the other way round), as in the
/// SDC's own extract-complex example, goes where it belongs.
pub(crate) fn bound_code(
    type_name: &str,
    field: &str,
    code: &str,
) -> Result<(String, String), Refused> {
    let Some(allowed) = schema::required_codes(type_name, field) else {
        return Ok((field.to_owned(), code.to_owned()));
    };
    let lower = code.to_ascii_lowercase();
    let normalised = match (field, lower.as_str()) {
        ("gender", "m" | "la2-8") => "male".to_owned(),
        ("gender", "f" | "la3-6") => "female".to_owned(),
        ("gender", "u" | "unk" | "la4489-6") => "unknown".to_owned(),
        ("gender", "o" | "oth") => "other".to_owned(),
        _ => lower,
    };
    if allowed.contains(&normalised.as_str()) {
        return Ok((field.to_owned(), normalised));
    }
    if type_name == "ContactPoint" {
        let other = if field == "use" { "system" } else { "use" };
        if schema::required_codes(type_name, other)
            .is_some_and(|codes| codes.contains(&normalised.as_str()))
        {
            return Ok((other.to_owned(), normalised));
        }
    }
    Err(Refused::Unfit("a code outside the element's value set"))
}
