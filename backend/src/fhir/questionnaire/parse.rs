//! Reading a Questionnaire: fhirbolt's lax mode over JSON that is cleaned first
//! (empty arrays, objects and nulls dropped; mistyped values repaired).

use fhirbolt::model::r4::Resource;
use fhirbolt::model::r4::resources::Questionnaire;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};

use crate::fhir::outcome::{Issue, IssueType};

/// Parses a Questionnaire. Unknown elements are tolerated and empty arrays,
/// objects and nulls (invalid in FHIR, common in real files) are dropped first;
/// anything else wrong is an issue at the resource. Never panics, whatever the input.
pub fn parse(json: &str) -> Result<Parsed, Issue> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        Issue::error(
            IssueType::Structure,
            format!("Not valid JSON (line {}, column {})", e.line(), e.column()),
        )
    })?;
    parse_value(value)
}

/// [`parse`], for JSON already read.
pub fn parse_value(mut value: serde_json::Value) -> Result<Parsed, Issue> {
    if value
        .get("resourceType")
        .and_then(serde_json::Value::as_str)
        != Some("Questionnaire")
    {
        return Err(
            Issue::error(IssueType::Invalid, "The resource is not a Questionnaire")
                .at("resourceType"),
        );
    }
    drop_empty(&mut value);
    let mut repairs = Vec::new();
    repair_mistyped_values(&mut value, "Questionnaire", &mut repairs);
    let cleaned = value.to_string();
    let config = DeserializationConfig {
        mode: DeserializationMode::Lax,
    };
    // fhirbolt 0.4 panics on some shapes instead of failing (an empty array, for
    // one); a parser's panic must not take a request down with it.
    let parsed =
        std::panic::catch_unwind(|| fhirbolt::json::from_str::<Resource>(&cleaned, Some(config)));
    match parsed {
        Ok(Ok(Resource::Questionnaire(q))) => Ok(Parsed {
            questionnaire: *q,
            repairs,
        }),
        Ok(Ok(_)) => Err(
            Issue::error(IssueType::Invalid, "The resource is not a Questionnaire")
                .at("resourceType"),
        ),
        Ok(Err(e)) => Err(Issue::error(
            IssueType::Structure,
            format!("Not a valid FHIR R4 Questionnaire: {e}"),
        )),
        Err(_) => Err(Issue::error(
            IssueType::Structure,
            "Not a valid FHIR R4 Questionnaire: the FHIR parser gave up",
        )),
    }
}

/// A parsed Questionnaire and what had to be repaired to read it.
#[derive(Debug)]
pub struct Parsed {
    /// The resource.
    pub questionnaire: Questionnaire,
    /// Each value read as another type than the file said, with where and why.
    pub repairs: Vec<String>,
}

/// Real files carry values whose type suffix is wrong, like `"answerInteger":
/// "2022-09"` in a condition on a date question. Such a value is read as the type
/// its text has (date, time, dateTime or number) and the repair is reported, rather
/// than the whole form refused.
pub(crate) fn repair_mistyped_values(
    value: &mut serde_json::Value,
    path: &str,
    repairs: &mut Vec<String>,
) {
    use serde_json::Value as J;
    match value {
        J::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                repair_mistyped_values(item, &format!("{path}[{i}]"), repairs);
            }
        }
        J::Object(fields) => {
            let mistyped: Vec<(String, String)> = fields
                .iter()
                .filter_map(|(key, v)| {
                    let prefix = key
                        .strip_suffix("Integer")
                        .or_else(|| key.strip_suffix("Decimal"))?;
                    let text = v.as_str()?;
                    let retyped = if text.parse::<f64>().is_ok() {
                        key.clone()
                    } else {
                        format!("{prefix}{}", text_type(text)?)
                    };
                    Some((key.clone(), retyped))
                })
                .collect();
            for (key, retyped) in mistyped {
                let Some(J::String(text)) = fields.remove(&key) else {
                    continue;
                };
                let new_value = match text.parse::<serde_json::Number>() {
                    Ok(number) if retyped == key => J::Number(number),
                    _ => J::String(text.clone()),
                };
                repairs.push(format!("{path}.{key} {text:?} was read as {retyped}"));
                fields.insert(retyped, new_value);
            }
            for (key, v) in fields.iter_mut() {
                repair_mistyped_values(v, &format!("{path}.{key}"), repairs);
            }
        }
        _ => {}
    }
}

/// The FHIR type a text has the shape of, among date, dateTime and time.
pub(crate) fn text_type(text: &str) -> Option<&'static str> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = text.split(['-', ':', 'T']).collect();
    if !parts
        .iter()
        .all(|p| digits(p.split(['.', '+', 'Z']).next().unwrap_or("")))
    {
        return None;
    }
    if text.contains('T') {
        Some("DateTime")
    } else if text.contains(':') {
        Some("Time")
    } else if text.contains('-') || text.len() == 4 {
        Some("Date")
    } else {
        None
    }
}

/// Removes nulls, `[]` and `{}` everywhere (FHIR JSON must not contain them).
pub(crate) fn drop_empty(value: &mut serde_json::Value) {
    use serde_json::Value as J;
    let is_empty = |v: &J| match v {
        J::Null => true,
        J::Array(a) => a.is_empty(),
        J::Object(o) => o.is_empty(),
        _ => false,
    };
    match value {
        J::Array(items) => {
            items.iter_mut().for_each(drop_empty);
            items.retain(|v| !is_empty(v));
        }
        J::Object(fields) => {
            fields.values_mut().for_each(drop_empty);
            fields.retain(|_, v| !is_empty(v));
        }
        _ => {}
    }
}
