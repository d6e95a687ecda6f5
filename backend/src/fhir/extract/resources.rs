//! The extracted resources made whole: linked to the one Patient, R4's required
//! elements completed (or the resource left out with a warning).

use serde_json::{Value, json};

use super::schema;
use crate::fhir::outcome::{Issue, IssueType, Severity};

/// R4 requires `RelatedPerson.patient`; an Observation without a subject is of
/// little use. Both point at the Patient extracted from the same response, when
/// there is exactly one.
pub(crate) fn link_to_the_patient(entries: &mut [Value]) {
    let patients: Vec<String> = entries
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Patient")
        .filter_map(|e| e["fullUrl"].as_str().map(str::to_owned))
        .collect();
    let [patient] = patients.as_slice() else {
        return;
    };
    for entry in entries {
        let Some(resource) = entry.get_mut("resource").and_then(Value::as_object_mut) else {
            continue;
        };
        let field = match resource.get("resourceType").and_then(Value::as_str) {
            Some("RelatedPerson") => "patient",
            Some("Observation") => "subject",
            _ => continue,
        };
        if !resource.contains_key(field) {
            resource.insert(field.to_owned(), json!({"reference": patient}));
        }
    }
}

/// R4 requires `Observation.status` and `.code`, and `RelatedPerson.patient`.
/// An Observation from a completed response is `final` (`preliminary` while the
/// response is in progress) unless the form says otherwise; a resource still
/// missing a required element cannot be sent and is left out, with a warning.
pub(crate) fn complete_required_elements(
    entries: Vec<Value>,
    completed: bool,
    warnings: &mut Vec<Issue>,
) -> Vec<Value> {
    let mut kept = Vec::new();
    for mut entry in entries {
        let Some(resource) = entry.get_mut("resource").and_then(Value::as_object_mut) else {
            continue;
        };
        let missing = match resource.get("resourceType").and_then(Value::as_str) {
            Some("Observation") => {
                if !resource.contains_key("status") {
                    let status = if completed { "final" } else { "preliminary" };
                    resource.insert("status".into(), status.into());
                }
                (!resource.contains_key("code")).then_some("Observation.code")
            }
            Some("RelatedPerson") => {
                (!resource.contains_key("patient")).then_some("RelatedPerson.patient")
            }
            _ => None,
        };
        match missing {
            Some(path) => {
                let issue = Issue {
                    severity: Severity::Warning,
                    code: IssueType::Required,
                    diagnostics: format!(
                        "An extracted resource has no {path}, which FHIR R4 requires; it is left out"
                    ),
                    expression: Some("Questionnaire".into()),
                };
                if !warnings.contains(&issue) {
                    warnings.push(issue);
                }
            }
            None => kept.push(entry),
        }
    }
    kept
}

/// The resource type a definitionExtract canonical names: the base resource, or a
/// profile whose name contains one (`…/us-core-patient`), kept in `meta.profile`.
pub(crate) fn resource_of_canonical(canonical: &str) -> Option<(String, Option<String>)> {
    let canonical = canonical.split('|').next().unwrap_or(canonical);
    let last = canonical.rsplit('/').next().unwrap_or(canonical);
    if schema::RESOURCES.contains(&last) {
        return Some((last.to_owned(), None));
    }
    let lower = last.to_ascii_lowercase();
    // RelatedPerson before Patient: "relatedperson" contains neither, but check
    // the longer name first all the same.
    ["RelatedPerson", "Observation", "Patient"]
        .iter()
        .find(|t| lower.contains(&t.to_ascii_lowercase()))
        .map(|t| ((*t).to_owned(), Some(canonical.to_owned())))
}
