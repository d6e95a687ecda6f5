//! FHIR Patient ↔ the matching engine: a Patient's JSON to [`PatientRecord`], the
//! `$match` input `Parameters`, and the `searchset` Bundle it answers with.
//! Pure functions over JSON: no fhirbolt needed, the elements read are few.

use matching::{Candidate, MatchOptions, PatientRecord};
use serde_json::{Value, json};

use crate::fhir::outcome::{Issue, IssueType};

/// FHIR's match-grade extension, on `Bundle.entry.search`.
pub const MATCH_GRADE_URL: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";
/// Our own extension on `Bundle.entry.search`: why the candidate scored so.
pub const EXPLANATION_URL: &str = "urn:intake:fhir:StructureDefinition:match-explanation";

/// The default and largest `count` of `$match`.
const DEFAULT_COUNT: usize = 10;
const MAX_COUNT: usize = 100;

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The element of a list with `use` = the first of `preferred` found, else the
/// first element.
fn pick<'a>(list: Option<&'a Value>, preferred: &[&str]) -> Option<&'a Value> {
    let items = list?.as_array()?;
    preferred
        .iter()
        .find_map(|u| {
            items
                .iter()
                .find(|i| i.get("use").and_then(Value::as_str) == Some(u))
        })
        .or_else(|| {
            items
                .iter()
                .find(|i| i.get("use").and_then(Value::as_str) != Some("old"))
        })
}

/// Checks that `resource` is a Patient.
pub fn check_patient(resource: &Value) -> Result<(), Issue> {
    if !resource.is_object() {
        return Err(Issue::error(
            IssueType::Structure,
            "A Patient must be a JSON object",
        ));
    }
    if resource.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return Err(
            Issue::error(IssueType::Invalid, "The resource must be a Patient").at("resourceType"),
        );
    }
    Ok(())
}

/// The matching engine's view of a FHIR R4 Patient: the official (else usual, else
/// first) name, the home (else first) address, phones and e-mails from `telecom`,
/// every identifier with a system.
pub fn to_record(resource: &Value) -> PatientRecord {
    let name = pick(resource.get("name"), &["official", "usual"]);
    let address = pick(resource.get("address"), &["home"]);
    let telecom = resource
        .get("telecom")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let contact = |system: &str| {
        telecom
            .iter()
            .filter(|t| t.get("system").and_then(Value::as_str) == Some(system))
            .filter_map(|t| string(t.get("value")))
            .collect::<Vec<_>>()
    };
    let identifiers = resource
        .get("identifier")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|i| {
            Some(matching::Identifier {
                system: string(i.get("system"))?,
                value: string(i.get("value"))?,
            })
        })
        .collect();
    PatientRecord {
        given: strings(name.and_then(|n| n.get("given"))),
        family: string(name.and_then(|n| n.get("family"))),
        suffix: strings(name.and_then(|n| n.get("suffix"))),
        birth_date: string(resource.get("birthDate")),
        gender: string(resource.get("gender")),
        phones: contact("phone"),
        emails: contact("email"),
        address_lines: strings(address.and_then(|a| a.get("line"))),
        city: string(address.and_then(|a| a.get("city"))),
        state: string(address.and_then(|a| a.get("state"))),
        postal_code: string(address.and_then(|a| a.get("postalCode"))),
        identifiers,
    }
}

/// What `$match` was asked.
#[derive(Debug)]
pub struct MatchRequest {
    /// The Patient to find.
    pub record: PatientRecord,
    /// `onlyCertainMatches` and `count`.
    pub options: MatchOptions,
}

/// Reads `$match`'s input: a `Parameters` with `resource` (a Patient), and
/// optionally `onlyCertainMatches` (boolean) and `count` (positive integer).
pub fn match_request(body: &Value) -> Result<MatchRequest, Vec<Issue>> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(vec![
            Issue::error(IssueType::Invalid, "Send a Parameters resource").at("resourceType"),
        ]);
    }
    let params = body
        .get("parameter")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut issues = Vec::new();
    let mut record = None;
    let mut options = MatchOptions {
        only_certain: false,
        count: DEFAULT_COUNT,
    };
    for (i, p) in params.iter().enumerate() {
        match p.get("name").and_then(Value::as_str) {
            Some("resource") => match p.get("resource") {
                Some(r) => match check_patient(r) {
                    Ok(()) => record = Some(to_record(r)),
                    Err(issue) => issues.push(issue.at(format!("parameter[{i}].resource"))),
                },
                None => issues.push(
                    Issue::error(IssueType::Required, "resource must hold a Patient")
                        .at(format!("parameter[{i}].resource")),
                ),
            },
            Some("onlyCertainMatches") => match p.get("valueBoolean").and_then(Value::as_bool) {
                Some(b) => options.only_certain = b,
                None => issues.push(
                    Issue::error(
                        IssueType::Value,
                        "onlyCertainMatches must be a valueBoolean",
                    )
                    .at(format!("parameter[{i}].valueBoolean")),
                ),
            },
            Some("count") => match p.get("valueInteger").and_then(Value::as_u64) {
                Some(n) if n >= 1 => {
                    options.count = usize::try_from(n).unwrap_or(MAX_COUNT).min(MAX_COUNT);
                }
                _ => issues.push(
                    Issue::error(IssueType::Value, "count must be a positive valueInteger")
                        .at(format!("parameter[{i}].valueInteger")),
                ),
            },
            _ => {}
        }
    }
    match record {
        Some(record) if issues.is_empty() => Ok(MatchRequest { record, options }),
        None if issues.is_empty() => Err(vec![
            Issue::error(
                IssueType::Required,
                "Parameters must have a resource (a Patient)",
            )
            .at("parameter"),
        ]),
        _ => Err(issues),
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The explanation extension of one candidate.
fn explanation(c: &Candidate) -> Value {
    let mut parts = vec![
        json!({"url": "weight", "valueDecimal": round(c.weight)}),
        json!({"url": "prior", "valueDecimal": round(c.explanation.prior)}),
        json!({"url": "logOdds", "valueDecimal": round(c.log_odds)}),
        json!({"url": "model", "valueInteger": c.explanation.model}),
    ];
    for h in &c.explanation.held {
        parts.push(json!({"url": "held", "valueCode": h.code()}));
    }
    for f in &c.explanation.fields {
        let mut field = vec![
            json!({"url": "name", "valueCode": f.field.code()}),
            json!({"url": "level", "valueCode": f.level.code()}),
            json!({"url": "weight", "valueDecimal": round(f.weight)}),
        ];
        if let Some(d) = f.detail {
            field.push(json!({"url": "detail", "valueCode": d.code()}));
        }
        parts.push(json!({"url": "field", "extension": field}));
    }
    json!({"url": EXPLANATION_URL, "extension": parts})
}

/// `$match`'s answer: a `searchset` Bundle, best first, each entry's `search` with
/// `mode` match, `score` (0..1), the match-grade and our explanation extensions.
/// `found` pairs each candidate with its stored Patient JSON.
pub fn match_bundle(base: &str, found: &[(Candidate, Value)]) -> Vec<u8> {
    let entries: Vec<Value> = found
        .iter()
        .map(|(c, resource)| {
            json!({
                "fullUrl": format!("{base}/Patient/{}", c.id),
                "resource": resource,
                "search": {
                    "extension": [
                        {"url": MATCH_GRADE_URL, "valueCode": c.grade.code()},
                        explanation(c),
                    ],
                    "mode": "match",
                    "score": round(c.score),
                }
            })
        })
        .collect();
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries,
    });
    serde_json::to_vec(&bundle).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fhir_patient_becomes_a_record() {
        let patient = json!({
            "resourceType": "Patient",
            "identifier": [{"system": "urn:mrn", "value": "A-1"}, {"value": "no-system"}],
            "name": [
                {"use": "old", "family": "Maiden", "given": ["Jane"]},
                {"use": "official", "family": "Smith", "given": ["Jane", "Ann"], "suffix": ["Jr"]}
            ],
            "telecom": [
                {"system": "phone", "value": "555-0100"},
                {"system": "email", "value": "jane@example.org"}
            ],
            "gender": "female",
            "birthDate": "1980-03-04",
            "address": [
                {"use": "work", "line": ["1 Office Park"], "city": "Elsewhere"},
                {"use": "home", "line": ["12 Main St"], "city": "Springfield", "state": "IL", "postalCode": "62701"}
            ]
        });
        let r = to_record(&patient);
        assert_eq!(r.given, ["Jane", "Ann"]);
        assert_eq!(r.family.as_deref(), Some("Smith"));
        assert_eq!(r.suffix, ["Jr"]);
        assert_eq!(r.phones, ["555-0100"]);
        assert_eq!(r.emails, ["jane@example.org"]);
        assert_eq!(r.address_lines, ["12 Main St"]);
        assert_eq!(r.city.as_deref(), Some("Springfield"));
        assert_eq!(r.identifiers.len(), 1);
        assert_eq!(
            to_record(&json!({"resourceType": "Patient"})),
            PatientRecord::default()
        );
    }

    #[test]
    fn match_parameters_are_read_and_checked() {
        let ok = json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": {"resourceType": "Patient", "birthDate": "1980-01-01"}},
            {"name": "onlyCertainMatches", "valueBoolean": true},
            {"name": "count", "valueInteger": 3}
        ]});
        let req = match_request(&ok).unwrap();
        assert!(req.options.only_certain);
        assert_eq!(req.options.count, 3);
        let cases = [
            (json!({"resourceType": "Patient"}), "resourceType"),
            (json!({"resourceType": "Parameters"}), "parameter"),
            (
                json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Observation"}}]}),
                "parameter[0].resource",
            ),
            (
                json!({"resourceType": "Parameters", "parameter": [
                    {"name": "resource", "resource": {"resourceType": "Patient"}},
                    {"name": "count", "valueInteger": 0}]}),
                "parameter[1].valueInteger",
            ),
        ];
        for (body, at) in cases {
            let issues = match_request(&body).unwrap_err();
            assert_eq!(issues[0].expression.as_deref(), Some(at), "{body}");
        }
    }
}
