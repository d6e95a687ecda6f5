//! Any resource the embedded store keeps: checked against FHIR R4 with fhirbolt.

use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};
use serde_json::Value;

use super::outcome::{Issue, IssueType};

/// The resource types the embedded store accepts.
pub const STORED_TYPES: &[&str] = &[
    "Patient",
    "QuestionnaireResponse",
    "Provenance",
    "Task",
    "Questionnaire",
    "RelatedPerson",
    "Observation",
];

/// What the embedded store keeps of what a form extracts besides the Patient
/// (SDC extraction writes these: see `extract/schema.rs`).
pub const EXTRACTED_TYPES: &[&str] = &["RelatedPerson", "Observation"];

/// Checks that `resource` is a valid FHIR R4 `resource_type` (unknown elements
/// and wrong value types refused). The message names the problem, never a value.
pub fn check(resource_type: &str, resource: &Value) -> Result<(), Issue> {
    if !resource.is_object() {
        return Err(Issue::error(
            IssueType::Structure,
            "A resource must be a JSON object",
        ));
    }
    if resource.get("resourceType").and_then(Value::as_str) != Some(resource_type) {
        return Err(Issue::error(
            IssueType::Invalid,
            format!("The resource must be a {resource_type}"),
        )
        .at("resourceType"));
    }
    required_bindings(resource_type, resource)?;
    // What fhirbolt reads laxly, or panics on (issue 21): empty arrays and
    // nulls, a list where one value belongs and one value where a list does,
    // dates, decimals and codes that are not.
    if resource_type != "Questionnaire" {
        shape(resource_type, resource, "", None)?;
    }
    let text = resource.to_string();
    let config = DeserializationConfig {
        mode: DeserializationMode::Strict,
    };
    // fhirbolt 0.4 panics on some shapes instead of failing; a parser's panic
    // must not take a request down with it.
    match std::panic::catch_unwind(|| fhirbolt::json::from_str::<Resource>(&text, Some(config))) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Issue::error(
            IssueType::Structure,
            format!(
                "Not a valid FHIR R4 {resource_type}: {}",
                without_quoted(&e.to_string())
            ),
        )),
        Err(_) => Err(Issue::error(
            IssueType::Structure,
            format!("Not a valid FHIR R4 {resource_type}: the FHIR parser gave up"),
        )),
    }
}

/// Codes from required bindings, cardinalities and date formats that the parser
/// leaves to us (it reads every `code` as any string).
/// FHIR R4's `ObservationStatus` codes.
pub const OBSERVATION_STATUSES: &[&str] = &[
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
];

fn required_bindings(resource_type: &str, resource: &Value) -> Result<(), Issue> {
    let code = |path: &str, allowed: &[&str], required: bool| -> Result<(), Issue> {
        match resource.get(path) {
            None if required => Err(Issue::error(
                IssueType::Required,
                format!("{resource_type}.{path} is required"),
            )
            .at(path.to_owned())),
            None => Ok(()),
            Some(Value::String(v)) if allowed.contains(&v.as_str()) => Ok(()),
            Some(_) => Err(Issue::error(
                IssueType::Value,
                format!(
                    "{resource_type}.{path} must be one of: {}",
                    allowed.join(", ")
                ),
            )
            .at(path.to_owned())),
        }
    };
    let present = |path: &str| -> Result<(), Issue> {
        match resource.get(path) {
            Some(Value::Array(a)) if !a.is_empty() => Ok(()),
            Some(Value::String(s)) if !s.is_empty() => Ok(()),
            _ => Err(Issue::error(
                IssueType::Required,
                format!("{resource_type}.{path} is required"),
            )
            .at(path.to_owned())),
        }
    };
    match resource_type {
        "Patient" => {
            code("gender", &["male", "female", "other", "unknown"], false)?;
            if let Some(d) = resource.get("birthDate")
                && !d.as_str().is_some_and(is_fhir_date)
            {
                return Err(Issue::error(
                    IssueType::Value,
                    "Patient.birthDate must be a date: YYYY, YYYY-MM or YYYY-MM-DD",
                )
                .at("birthDate"));
            }
            Ok(())
        }
        "QuestionnaireResponse" => code(
            "status",
            &[
                "in-progress",
                "completed",
                "amended",
                "entered-in-error",
                "stopped",
            ],
            true,
        ),
        "Provenance" => {
            present("target")?;
            present("recorded")?;
            present("agent")
        }
        "Task" => {
            code(
                "status",
                &[
                    "draft",
                    "requested",
                    "received",
                    "accepted",
                    "rejected",
                    "ready",
                    "cancelled",
                    "in-progress",
                    "on-hold",
                    "failed",
                    "completed",
                    "entered-in-error",
                ],
                true,
            )?;
            code(
                "intent",
                &[
                    "unknown",
                    "proposal",
                    "plan",
                    "order",
                    "original-order",
                    "reflex-order",
                    "filler-order",
                    "instance-order",
                    "option",
                ],
                true,
            )
        }
        "Observation" => code("status", OBSERVATION_STATUSES, true),
        "RelatedPerson" => match resource.pointer("/patient/reference") {
            Some(Value::String(r)) if !r.is_empty() => Ok(()),
            _ => Err(
                Issue::error(IssueType::Required, "RelatedPerson.patient is required")
                    .at("patient"),
            ),
        },
        _ => Ok(()),
    }
}

/// Elements that repeat wherever they appear in the stored types (a single
/// value there is refused).
const REPEATING: &[&str] = &[
    "given",
    "prefix",
    "suffix",
    "line",
    "telecom",
    "coding",
    "extension",
    "modifierExtension",
    "tag",
    "security",
    "profile",
    "item",
    "answer",
    "target",
    "agent",
    "entity",
    "contact",
    "communication",
    "input",
    "output",
    "basedOn",
    "partOf",
    "category",
    "performer",
    "interpretation",
    "component",
    "referenceRange",
    "relationship",
    "note",
];

/// Elements that never repeat in the stored types (a list there is refused).
const SINGLE: &[&str] = &[
    "family",
    "gender",
    "birthDate",
    "status",
    "intent",
    "authored",
    "recorded",
    "subject",
    "for",
    "use",
    "system",
    "value",
    "display",
    "reference",
    "start",
    "end",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
    "active",
    "linkId",
    "url",
    "issued",
    "lastUpdated",
    "versionId",
];

/// The kind of primitive an element's name says it holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Primitive {
    Date,
    DateTime,
    Instant,
    Time,
    Decimal,
    Integer,
    Boolean,
    Gender,
}

/// The primitive `key` holds, given its parent's key.
fn primitive(key: &str, parent: Option<&str>) -> Option<Primitive> {
    let in_period = parent.is_some_and(|p| p == "period" || p.ends_with("Period"));
    let in_quantity = parent.is_some_and(|p| {
        matches!(
            p,
            "valueQuantity" | "quantity" | "low" | "high" | "valueAge"
        )
    });
    Some(match key {
        "birthDate" | "valueDate" => Primitive::Date,
        "authored" | "authoredOn" | "lastModified" | "effectiveDateTime" | "valueDateTime"
        | "deceasedDateTime" | "occurredDateTime" | "occurrenceDateTime" => Primitive::DateTime,
        "start" | "end" if in_period => Primitive::DateTime,
        "recorded" | "issued" | "lastUpdated" | "valueInstant" | "effectiveInstant" => {
            Primitive::Instant
        }
        "valueTime" => Primitive::Time,
        "valueDecimal" => Primitive::Decimal,
        "value" if in_quantity => Primitive::Decimal,
        "valueInteger" => Primitive::Integer,
        "valueBoolean" | "active" | "deceasedBoolean" => Primitive::Boolean,
        "gender" => Primitive::Gender,
        _ => return None,
    })
}

fn primitive_ok(kind: Primitive, value: &Value) -> bool {
    match kind {
        Primitive::Date => value.as_str().is_some_and(is_fhir_date),
        Primitive::DateTime => value.as_str().is_some_and(|s| is_date_time(s, false)),
        Primitive::Instant => value.as_str().is_some_and(|s| is_date_time(s, true)),
        Primitive::Time => value.as_str().is_some_and(is_time),
        Primitive::Decimal => value.is_number(),
        Primitive::Integer => value.is_i64() || value.is_u64(),
        Primitive::Boolean => value.is_boolean(),
        Primitive::Gender => value
            .as_str()
            .is_some_and(|g| ["male", "female", "other", "unknown"].contains(&g)),
    }
}

fn what(kind: Primitive) -> &'static str {
    match kind {
        Primitive::Date => "must be a date: YYYY, YYYY-MM or YYYY-MM-DD",
        Primitive::DateTime => "must be a dateTime: a date, or YYYY-MM-DDThh:mm:ss with a zone",
        Primitive::Instant => "must be an instant: YYYY-MM-DDThh:mm:ss(.sss) with a zone",
        Primitive::Time => "must be a time: hh:mm:ss",
        Primitive::Decimal => "must be a JSON number",
        Primitive::Integer => "must be a whole JSON number",
        Primitive::Boolean => "must be true or false",
        Primitive::Gender => "must be one of: male, female, other, unknown",
    }
}

/// Walks `value` (at FHIRPath-like `path`, under the element `parent`) for the
/// shapes [`REPEATING`], [`SINGLE`] and [`primitive`] describe. The first
/// problem, at its path; never a value.
fn shape(
    resource_type: &str,
    value: &Value,
    path: &str,
    parent: Option<&str>,
) -> Result<(), Issue> {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    let bad = |where_: String, message: &str| {
        Err(Issue::error(
            IssueType::Structure,
            format!("{resource_type}.{where_} {message}"),
        )
        .at(where_))
    };
    let Value::Object(map) = value else {
        return Ok(());
    };
    for (key, child) in map {
        let here = at(key);
        if key.starts_with('_') || key == "contained" || key == "resource" {
            // Primitive extensions and nested resources: their own rules.
            continue;
        }
        match child {
            Value::Null => return bad(here, "must not be null (leave it out)"),
            Value::Array(items) if items.is_empty() => {
                return bad(here, "must not be an empty list (leave it out)");
            }
            Value::Array(_) if SINGLE.contains(&key.as_str()) => {
                return bad(here, "takes one value, not a list");
            }
            Value::Array(_) => {}
            _ if REPEATING.contains(&key.as_str()) => {
                return bad(here, "must be a list");
            }
            _ => {}
        }
        // Patient's and RelatedPerson's own `name` and `address` repeat (a
        // contact's do not); a resource's own `identifier` repeats but for a
        // QuestionnaireResponse's (a Reference's never does).
        if path.is_empty() {
            let repeats = match key.as_str() {
                "name" | "address" | "photo" => {
                    matches!(resource_type, "Patient" | "RelatedPerson").then_some(true)
                }
                "identifier" => Some(resource_type != "QuestionnaireResponse"),
                _ => None,
            };
            match repeats {
                Some(true) if !child.is_array() => return bad(here, "must be a list"),
                Some(false) if child.is_array() => {
                    return bad(here, "takes one value, not a list");
                }
                _ => {}
            }
        }
        let items: Vec<(String, &Value)> = match child {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{here}[{i}]"), v))
                .collect(),
            one => vec![(here.clone(), one)],
        };
        for (item_path, item) in items {
            if item.is_null() {
                return bad(item_path, "must not be null");
            }
            if let Some(kind) = primitive(key, parent)
                && !primitive_ok(kind, item)
            {
                return bad(item_path, what(kind));
            }
            shape(resource_type, item, &item_path, Some(key))?;
        }
    }
    Ok(())
}

/// A FHIR dateTime (`instant`: with a time and a zone, always).
fn is_date_time(s: &str, instant: bool) -> bool {
    let Some((date, time)) = s.split_once('T') else {
        return !instant && is_fhir_date(s);
    };
    if date.len() != 10 || !is_fhir_date(date) {
        return false;
    }
    let (clock, zone) = match time.find(['Z', '+', '-']) {
        Some(at) => time.split_at(at),
        None => return false,
    };
    let zone_ok = zone == "Z"
        || (zone.len() == 6
            && zone
                .get(1..)
                .is_some_and(|z| is_time(&format!("{z}:00")) && z.len() == 5));
    zone_ok && is_time(clock)
}

/// `hh:mm:ss` with an optional fraction.
fn is_time(s: &str) -> bool {
    let (clock, fraction) = s.split_once('.').unwrap_or((s, "0"));
    let parts: Vec<&str> = clock.split(':').collect();
    let ranged = |p: &str, max: u32| {
        p.len() == 2
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|v| v <= max)
    };
    parts.len() == 3
        && ranged(parts[0], 23)
        && ranged(parts[1], 59)
        && ranged(parts[2], 60)
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, a real month and day.
fn is_fhir_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let number = |p: &str, len: usize| {
        (p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
    };
    match parts.as_slice() {
        [y] => number(y, 4).is_some(),
        [y, m] => number(y, 4).is_some() && number(m, 2).is_some_and(|m| (1..=12).contains(&m)),
        [y, m, d] => {
            let (Some(y), Some(m), Some(d)) = (number(y, 4), number(m, 2), number(d, 2)) else {
                return false;
            };
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let days = match m {
                1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
                4 | 6 | 9 | 11 => 30,
                2 if leap => 29,
                2 => 28,
                _ => return false,
            };
            (1..=days).contains(&d)
        }
        _ => false,
    }
}

/// The parser's message with quoted values replaced by `…`: a value may be a
/// patient's name, and error bodies carry no patient data.
fn without_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if !quoted {
                out.push('…');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_reach_the_message() {
        let patient = serde_json::json!({"resourceType": "Patient", "name": [{"family": 1, "given": ["Linacre"]}]});
        let issue = check("Patient", &patient).unwrap_err();
        let json = String::from_utf8(crate::fhir::outcome::to_json(&[issue])).unwrap();
        assert!(!json.contains("Linacre"), "{json}");
    }

    #[test]
    fn a_valid_response_passes_and_an_unknown_element_does_not() {
        let ok =
            serde_json::json!({"resourceType": "QuestionnaireResponse", "status": "completed"});
        assert!(check("QuestionnaireResponse", &ok).is_ok());
        let bad = serde_json::json!({"resourceType": "QuestionnaireResponse", "status": "completed", "colour": 1});
        assert!(check("QuestionnaireResponse", &bad).is_err());
        assert!(check("Patient", &ok).is_err());
    }

    #[test]
    fn codes_of_required_bindings_and_dates_are_checked() {
        use serde_json::json;
        let cases = [
            (
                json!({"resourceType": "Patient", "gender": "female", "birthDate": "2024-02-29"}),
                true,
            ),
            (
                json!({"resourceType": "Patient", "gender": "sometimes"}),
                false,
            ),
            (
                json!({"resourceType": "Patient", "birthDate": "2023-02-29"}),
                false,
            ),
            (
                json!({"resourceType": "Patient", "birthDate": "1980-13"}),
                false,
            ),
            (
                json!({"resourceType": "Patient", "birthDate": "1980"}),
                true,
            ),
            (json!({"resourceType": "QuestionnaireResponse"}), false),
            (
                json!({"resourceType": "QuestionnaireResponse", "status": "done"}),
                false,
            ),
            (
                json!({"resourceType": "Task", "status": "requested", "intent": "order"}),
                true,
            ),
            (
                json!({"resourceType": "Task", "status": "requested"}),
                false,
            ),
            (
                json!({"resourceType": "Provenance", "recorded": "2026-11-30T10:00:00Z", "target": [{"reference": "Patient/1"}]}),
                false,
            ),
        ];
        for (resource, ok) in cases {
            let t = resource["resourceType"].as_str().unwrap().to_owned();
            assert_eq!(check(&t, &resource).is_ok(), ok, "{resource}");
        }
    }
}
