//! Demographics for forms that carry no extraction metadata.
//!
//! A real intake form often asks for name, birth date and phone without a single
//! SDC definition. For such a form (no definitionExtract, itemExtractionContext,
//! definitionExtractValue or extractAllocateId anywhere), this module lends its
//! items the definitions they would have had, and the extractor runs as for any
//! SDC form, with one Patient at the root:
//!
//! 1. [`FORMS`]: a table keyed by the Questionnaire's canonical URL, from linkId to
//!    element (and fixed values: a phone number's `system`). Add a form here.
//! 2. Otherwise, by LOINC code ([`BY_LOINC`]): name, first and last name, birth
//!    date, sex and gender. Items inside repeating groups are skipped (those are
//!    family members, not the patient).
//! 3. Otherwise, a form whose items have `definition`s but no extraction context
//!    gets the one resource type they all name as its root.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Datum, Meta, Source, ValueSpec};

/// Definitions lent to a form without extraction metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overlay {
    /// The resource made at the root.
    pub root: Option<String>,
    /// By linkId.
    pub items: HashMap<String, Meta>,
}

/// One item of a per-form mapping: linkId, element, fixed values beside it.
pub type ItemMapping = (&'static str, &'static str, &'static [FixedValue]);

/// A fixed value: element path, FHIR type, value as JSON text.
pub type FixedValue = (&'static str, &'static str, &'static str);

const PHONE: &[FixedValue] = &[("Patient.telecom.system", "code", "\"phone\"")];
const CONTACT_PHONE: &[FixedValue] = &[("Patient.contact.telecom.system", "code", "\"phone\"")];
const SSN: &[FixedValue] = &[(
    "Patient.identifier.system",
    "uri",
    "\"http://hl7.org/fhir/sid/us-ssn\"",
)];
const EMERGENCY_CONTACT: &[FixedValue] = &[(
    "Patient.contact.relationship",
    "CodeableConcept",
    r#"{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C", "display": "Emergency Contact"}]}"#,
)];
const PREFERRED: &[FixedValue] = &[("Patient.communication.preferred", "boolean", "true")];

/// Per-form mappings, by canonical URL.
pub const FORMS: &[(&str, &[ItemMapping])] = &[(
    "https://medplum.com/Questionnaire/patient-intake-questionnaire-example",
    &[
        ("first-name", "Patient.name.given", &[]),
        ("middle-name", "Patient.name.given", &[]),
        ("last-name", "Patient.name.family", &[]),
        ("dob", "Patient.birthDate", &[]),
        ("street", "Patient.address.line", &[]),
        ("city", "Patient.address.city", &[]),
        ("state", "Patient.address.state", &[]),
        ("zip", "Patient.address.postalCode", &[]),
        ("phone", "Patient.telecom.value", PHONE),
        ("ssn", "Patient.identifier.value", SSN),
        ("emergency-contact", "Patient.contact", EMERGENCY_CONTACT),
        (
            "emergency-contact-first-name",
            "Patient.contact.name.given",
            &[],
        ),
        (
            "emergency-contact-middle-name",
            "Patient.contact.name.given",
            &[],
        ),
        (
            "emergency-contact-last-name",
            "Patient.contact.name.family",
            &[],
        ),
        (
            "emergency-contact-phone",
            "Patient.contact.telecom.value",
            CONTACT_PHONE,
        ),
        ("languages-spoken", "Patient.communication.language", &[]),
        (
            "preferred-language",
            "Patient.communication.language",
            PREFERRED,
        ),
    ],
)];

/// LOINC codes of the patient's own demographics, and where they go.
pub const BY_LOINC: &[(&str, &str)] = &[
    ("54125-0", "Patient.name.text"),
    ("45392-8", "Patient.name.given"),
    ("45394-4", "Patient.name.family"),
    ("21112-8", "Patient.birthDate"),
    ("46098-0", "Patient.gender"),
    ("54131-8", "Patient.gender"),
    ("76689-9", "Patient.gender"),
];

/// What to lend `questionnaire`, if it has no extraction metadata of its own.
pub fn overlay_for(questionnaire: &Value) -> Option<Overlay> {
    if super::has_extraction_metadata(questionnaire) {
        return None;
    }
    let url = questionnaire.get("url").and_then(Value::as_str);
    if let Some((_, items)) = FORMS.iter().find(|(u, _)| Some(*u) == url) {
        let items = items
            .iter()
            .map(|(link_id, path, fixed)| ((*link_id).to_owned(), meta(path, fixed)))
            .collect();
        return Some(Overlay {
            root: Some("Patient".into()),
            items,
        });
    }
    let mut definitions = Vec::new();
    collect_definitions(questionnaire, &mut definitions);
    if !definitions.is_empty() {
        let mut types: Vec<&str> = definitions
            .iter()
            .filter_map(|d| d.split_once('#'))
            .filter_map(|(_, path)| path.split('.').next())
            .collect();
        types.sort_unstable();
        types.dedup();
        return match types.as_slice() {
            [one] if super::schema::RESOURCES.contains(one) => Some(Overlay {
                root: Some((*one).to_owned()),
                items: HashMap::new(),
            }),
            _ => None,
        };
    }
    let mut items = HashMap::new();
    by_loinc(questionnaire, &mut items);
    (!items.is_empty()).then(|| Overlay {
        root: Some("Patient".into()),
        items,
    })
}

fn meta(path: &str, fixed: &[FixedValue]) -> Meta {
    Meta {
        definition: Some(path.to_owned()),
        values: fixed
            .iter()
            .filter_map(|(path, ty, json)| {
                let value = serde_json::from_str(json).ok()?;
                Some(ValueSpec {
                    path: (*path).to_owned(),
                    source: Source::Fixed(Datum::new(ty, value)),
                })
            })
            .collect(),
        ..Meta::default()
    }
}

fn collect_definitions(node: &Value, out: &mut Vec<String>) {
    for item in node
        .get("item")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(d) = item.get("definition").and_then(Value::as_str) {
            out.push(d.to_owned());
        }
        collect_definitions(item, out);
    }
}

fn by_loinc(node: &Value, out: &mut HashMap<String, Meta>) {
    for item in node
        .get("item")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let repeating_group =
            item.get("type") == Some(&json!("group")) && item.get("repeats") == Some(&json!(true));
        if repeating_group {
            continue;
        }
        let codes = item
            .get("code")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let target = codes
            .filter(|c| c.get("system").and_then(Value::as_str) == Some("http://loinc.org"))
            .filter_map(|c| c.get("code").and_then(Value::as_str))
            .find_map(|code| BY_LOINC.iter().find(|(c, _)| *c == code).map(|(_, p)| *p));
        if let (Some(path), Some(link_id)) = (target, item.get("linkId").and_then(Value::as_str)) {
            out.insert(link_id.to_owned(), meta(path, &[]));
        }
        by_loinc(item, out);
    }
}
