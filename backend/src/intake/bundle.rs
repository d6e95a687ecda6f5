//! The delivery Bundle of an intake: the new Patient, the response, every other
//! resource the form extracted and the Provenance that targets them all, each a
//! conditional create on the intake's identifier.

use serde_json::{Value, json};

use super::types::{EXTRACTED_SYSTEM, Extras, Proof, SUBMISSION_SYSTEM, Submission};
use crate::fhir::extract::{IdGenerator, RandomIds};
use crate::store::Request;

/// FHIR R4 resource types without an `identifier` element: an extracted one is
/// marked with a `meta.tag` instead (as the Provenance is) and found by `_tag`.
pub(crate) const WITHOUT_IDENTIFIER: &[&str] = &[
    "AuditEvent",
    "Binary",
    "Bundle",
    "CapabilityStatement",
    "CompartmentDefinition",
    "GraphDefinition",
    "ImplementationGuide",
    "Linkage",
    "MessageHeader",
    "OperationDefinition",
    "OperationOutcome",
    "Parameters",
    "Provenance",
    "SearchParameter",
    "Subscription",
];

/// A delivery bundle as writes to the local store, inside the transaction that
/// accepts the intake: its resources are new, nothing can exist under its
/// identifier yet, so no condition to search.
pub(crate) fn inline_requests(bundle: &Value) -> Option<Vec<Request>> {
    let mut requests = crate::store::bundle::transaction_requests(bundle).ok()?;
    for r in &mut requests {
        if let Request::Create { if_none_exist, .. } = r {
            *if_none_exist = None;
        }
    }
    Some(requests)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    /// No chart yet: the intake waits for a person.
    None,
    /// A new Patient, created by the delivery.
    New,
    /// This stored Patient.
    Existing(String),
    /// The Patient another intake (this id) is creating.
    Pending(String),
}

/// Who the Provenance names as the author: the device, and the invitation the
/// patient came by.
pub(crate) fn by(s: &Submission) -> Author<'_> {
    Author {
        device: &s.device,
        invitation: s.invited.as_ref().map(|i| i.invitation.as_str()),
    }
}

/// The Provenance's author.
pub(crate) struct Author<'a> {
    /// The device that sent the intake (the patient app, a kiosk's name).
    pub(crate) device: &'a str,
    /// The invitation the patient came by, if any.
    pub(crate) invitation: Option<&'a str>,
}

/// The transaction the outbox sends: the Patient (new only), the response, the
/// other resources the form extracted, and the Provenance, each conditional on
/// this intake's identifier so a repeat finds what the first attempt wrote.
///
/// The extras' references to the extracted Patient become the intake's subject
/// (as the response's `subject`); their references to one another keep their
/// `fullUrl`s, which the transaction resolves.
pub(crate) fn delivery_bundle(
    id: &str,
    subject: &Subject,
    patient: &Value,
    extras: &Extras,
    response: &Value,
    author: &Author<'_>,
    now: &str,
) -> Value {
    let condition = format!("identifier={SUBMISSION_SYSTEM}|{id}");
    let patient_url = format!("urn:uuid:{}", RandomIds.uuid());
    let response_url = format!("urn:uuid:{}", RandomIds.uuid());
    let mut entries = Vec::new();
    if *subject == Subject::New {
        let mut p = patient.clone();
        if let Some(o) = p.as_object_mut() {
            o.remove("id");
        }
        let mut identifiers = p
            .get("identifier")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        identifiers.push(json!({"system": SUBMISSION_SYSTEM, "value": id}));
        p["identifier"] = Value::Array(identifiers);
        entries.push(json!({
            "fullUrl": patient_url,
            "resource": p,
            "request": {"method": "POST", "url": "Patient", "ifNoneExist": condition},
        }));
    }
    let subject_ref = subject_reference(subject, &patient_url);
    let mut qr = response.clone();
    if let Some(o) = qr.as_object_mut() {
        o.remove("id");
    }
    qr["subject"] = json!({"reference": subject_ref});
    entries.push(json!({
        "fullUrl": response_url,
        "resource": qr,
        "request": {"method": "POST", "url": "QuestionnaireResponse", "ifNoneExist": condition},
    }));
    let mut targets = vec![json!({"reference": response_url})];
    if *subject == Subject::New {
        targets.push(json!({"reference": patient_url}));
    }
    for (n, e) in extras.entries.iter().enumerate() {
        let (entry, full_url) = extra_entry(id, n + 1, e, extras, &subject_ref);
        entries.push(entry);
        targets.push(json!({"reference": full_url}));
    }
    let mut who = json!({"display": author.device});
    if let Some(invitation) = author.invitation {
        who["identifier"] = json!({"system": crate::invitation::SYSTEM, "value": invitation});
    }
    // Which proof the intake carried, as the response is stamped.
    let proof = Proof::of(response).tag();
    entries.push(json!({
        "resource": {
            "resourceType": "Provenance",
            "meta": {"tag": [{"system": SUBMISSION_SYSTEM, "code": id}, proof]},
            "target": targets,
            "recorded": now,
            "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}]},
            "agent": [{
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author"}]},
                "who": who,
            }],
        },
        "request": {"method": "POST", "url": "Provenance", "ifNoneExist": format!("_tag={SUBMISSION_SYSTEM}|{id}")},
    }));
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// How a delivery refers to the intake's patient: the new Patient's `fullUrl`,
/// the chart, or the Patient another intake is creating (by its identifier).
pub(crate) fn subject_reference(subject: &Subject, new_url: &str) -> String {
    match subject {
        Subject::New => new_url.to_owned(),
        Subject::Existing(p) => format!("Patient/{p}"),
        Subject::Pending(earlier) => format!("Patient?identifier={SUBMISSION_SYSTEM}|{earlier}"),
        Subject::None => String::new(),
    }
}

/// The `n`th extra resource as a conditional create, and its `fullUrl`: its id
/// dropped, its references to the extracted Patient made `subject_ref`, marked as
/// this intake's (an identifier `{intake}/{n}`, or a `meta.tag` for a type with
/// no identifier element).
pub(crate) fn extra_entry(
    id: &str,
    n: usize,
    entry: &Value,
    extras: &Extras,
    subject_ref: &str,
) -> (Value, String) {
    let mut resource = entry["resource"].clone();
    let resource_type = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(o) = resource.as_object_mut() {
        o.remove("id");
    }
    if let Some(url) = &extras.patient_url {
        rewrite_references(&mut resource, url, subject_ref);
    }
    let value = format!("{id}/{n}");
    let condition = if WITHOUT_IDENTIFIER.contains(&resource_type.as_str()) {
        let mut tags = resource
            .pointer("/meta/tag")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        tags.push(json!({"system": EXTRACTED_SYSTEM, "code": value}));
        resource["meta"]["tag"] = Value::Array(tags);
        format!("_tag={EXTRACTED_SYSTEM}|{value}")
    } else {
        let mut identifiers = resource
            .get("identifier")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        identifiers.push(json!({"system": EXTRACTED_SYSTEM, "value": value}));
        resource["identifier"] = Value::Array(identifiers);
        format!("identifier={EXTRACTED_SYSTEM}|{value}")
    };
    // An extraction's fullUrl is kept (the others refer to it); one without
    // gets its own.
    let full_url = entry["fullUrl"]
        .as_str()
        .map_or_else(|| format!("urn:uuid:{}", RandomIds.uuid()), str::to_owned);
    let entry = json!({
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource_type, "ifNoneExist": condition},
    });
    (entry, full_url)
}

/// Every `reference` equal to `from`, anywhere in `value`, made `to`.
pub(crate) fn rewrite_references(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                if k == "reference" && v.as_str() == Some(from) {
                    *v = Value::String(to.to_owned());
                } else {
                    rewrite_references(v, from, to);
                }
            }
        }
        Value::Array(a) => {
            for v in a {
                rewrite_references(v, from, to);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::*;
    use super::*;
    use serde_json::{Value, json};

    const PATIENT_URL: &str = "urn:uuid:00000000-0000-4000-8000-000000000001";
    const CONTACT_URL: &str = "urn:uuid:00000000-0000-4000-8000-000000000002";

    /// An extraction: the Patient, a contact pointing at it, an Observation
    /// about the Patient performed by the contact, and a resource type without
    /// an identifier element.
    fn extraction() -> Value {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": PATIENT_URL, "resource": {"resourceType": "Patient", "birthDate": "1990"}},
            {"fullUrl": CONTACT_URL, "resource": {"resourceType": "RelatedPerson", "id": "x",
                "patient": {"reference": PATIENT_URL}}},
            {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000003", "resource": {
                "resourceType": "Observation", "status": "final", "code": {"text": "Weight"},
                "subject": {"reference": PATIENT_URL}, "performer": [{"reference": CONTACT_URL}]}},
            {"resource": {"resourceType": "Linkage", "item": [{"type": "source",
                "resource": {"reference": PATIENT_URL}}]}}
        ]})
    }

    fn bundle_for(subject: &Subject) -> Value {
        let extraction = extraction();
        let extras = Extras::of(&extraction);
        let patient = patient_in(&extraction).unwrap();
        let response = json!({"resourceType": "QuestionnaireResponse", "status": "completed"});
        let author = Author {
            device: "test",
            invitation: None,
        };
        delivery_bundle("i-1", subject, &patient, &extras, &response, &author, "now")
    }

    fn entry<'a>(bundle: &'a Value, resource_type: &str) -> &'a Value {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["resourceType"] == resource_type)
            .unwrap()
    }

    #[test]
    fn extras_refer_to_the_intakes_subject_and_to_one_another_by_full_url() {
        for (subject, expected) in [
            (Subject::Existing("p1".into()), "Patient/p1".to_owned()),
            (
                Subject::Pending("i-0".into()),
                format!("Patient?identifier={SUBMISSION_SYSTEM}|i-0"),
            ),
        ] {
            let b = bundle_for(&subject);
            let contact = entry(&b, "RelatedPerson");
            assert_eq!(contact["resource"]["patient"]["reference"], expected);
            assert_eq!(contact["fullUrl"], CONTACT_URL);
            assert!(contact["resource"].get("id").is_none());
            let observation = &entry(&b, "Observation")["resource"];
            assert_eq!(observation["subject"]["reference"], expected);
            assert_eq!(observation["performer"][0]["reference"], CONTACT_URL);
            assert_eq!(
                entry(&b, "QuestionnaireResponse")["resource"]["subject"]["reference"],
                expected
            );
        }
        // A new patient: its own fullUrl in this bundle.
        let b = bundle_for(&Subject::New);
        let patient_url = entry(&b, "Patient")["fullUrl"].clone();
        assert_eq!(
            entry(&b, "RelatedPerson")["resource"]["patient"]["reference"],
            patient_url
        );
    }

    #[test]
    fn each_extra_is_conditional_on_its_own_mark_and_named_by_the_provenance() {
        let b = bundle_for(&Subject::Existing("p1".into()));
        let contact = entry(&b, "RelatedPerson");
        assert_eq!(
            contact["resource"]["identifier"],
            json!([{"system": EXTRACTED_SYSTEM, "value": "i-1/1"}])
        );
        assert_eq!(
            contact["request"],
            json!({"method": "POST", "url": "RelatedPerson",
                "ifNoneExist": format!("identifier={EXTRACTED_SYSTEM}|i-1/1")})
        );
        assert_eq!(
            entry(&b, "Observation")["request"]["ifNoneExist"],
            format!("identifier={EXTRACTED_SYSTEM}|i-1/2")
        );
        // No identifier element: a tag, and a condition on it.
        let linkage = entry(&b, "Linkage");
        assert!(linkage["resource"].get("identifier").is_none());
        assert_eq!(
            linkage["resource"]["meta"]["tag"],
            json!([{"system": EXTRACTED_SYSTEM, "code": "i-1/3"}])
        );
        assert_eq!(
            linkage["request"]["ifNoneExist"],
            format!("_tag={EXTRACTED_SYSTEM}|i-1/3")
        );
        let full_url = linkage["fullUrl"].as_str().unwrap();
        assert!(full_url.starts_with("urn:uuid:"));
        let targets = &entry(&b, "Provenance")["resource"]["target"];
        for r in [
            CONTACT_URL,
            "urn:uuid:00000000-0000-4000-8000-000000000003",
            full_url,
        ] {
            assert!(
                targets
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["reference"] == r),
                "{targets}"
            );
        }
    }

    #[test]
    fn what_a_waiting_intake_keeps_reads_back_and_an_older_patient_alone_too() {
        let extraction = extraction();
        let extras = Extras::of(&extraction);
        let patient = patient_in(&extraction).unwrap();
        assert_eq!(extras.entries.len(), 3);
        assert_eq!(extras.patient_url.as_deref(), Some(PATIENT_URL));
        let kept = extras.keep(&patient);
        assert_eq!(Extras::kept(&kept), Some((patient.clone(), extras)));
        // Nothing else extracted: the Patient alone, as before.
        let alone = Extras::default().keep(&patient);
        assert_eq!(alone, patient.to_string());
        assert_eq!(Extras::kept(&alone), Some((patient, Extras::default())));
        assert_eq!(Extras::kept("not json"), None);
    }

    #[test]
    fn the_embedded_store_keeps_only_the_types_it_stores() {
        let mut extras = Extras::of(&extraction());
        assert_eq!(
            extras.retain_types(crate::fhir::resource::EXTRACTED_TYPES),
            1
        );
        assert_eq!(extras.entries.len(), 2);
    }
}
