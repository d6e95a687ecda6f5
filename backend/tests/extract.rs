//! Extraction over the team's fixtures: every fixture's generated response is
//! extracted and snapshot-tested, and the response and what was extracted pass an
//! external FHIR R4 validator (PyPI's fhir.resources); the three SDC extraction
//! forms are also answered by hand and their Patients checked field by field.
//!
//! Snapshots are in `tests/snapshots/extract/` (`common::snapshot`). A missing or
//! different snapshot fails; `UPDATE_SNAPSHOTS=1` rewrites them all (review the
//! diff before committing).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use backend::fhir::extract::{Extraction, SequentialIds, extract};
use backend::fhir::questionnaire;
use serde_json::{Value, json};

use common::fhir_validator;
use common::snapshot::assert_snapshot;

const NOW: &str = "2026-11-29T10:00:00.000Z";

fn fixture(part: &str) -> Value {
    let (_, json) = common::fixtures()
        .into_iter()
        .find(|(name, _)| name.contains(part))
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

fn run(questionnaire: &Value, response: &Value) -> Extraction {
    extract(questionnaire, response, &SequentialIds::default(), NOW)
        .unwrap_or_else(|issues| panic!("extraction refused: {issues:?}"))
}

fn resources(x: &Extraction, resource_type: &str) -> Vec<Value> {
    x.bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == resource_type)
        .map(|e| e["resource"].clone())
        .collect()
}

fn full_url(x: &Extraction, resource_type: &str) -> String {
    x.bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["resourceType"] == resource_type)
        .unwrap()["fullUrl"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Values our generic generator cannot guess: an item whose definition is a
/// coded element typed as free text.
fn fit_generated_answers(response: &mut shared::response::QuestionnaireResponse) {
    fn walk(items: &mut [shared::response::ResponseItem]) {
        for item in items {
            if item.link_id == "PR-telecom-system" {
                for answer in &mut item.answer {
                    answer.value = shared::form::Value::String("phone".into());
                }
            }
            walk(&mut item.item);
            for answer in &mut item.answer {
                walk(&mut answer.item);
            }
        }
    }
    walk(&mut response.item);
}

#[test]
fn every_fixture_extracts_to_its_snapshot_and_passes_the_external_validator() {
    let fixtures = common::fixtures();
    assert_eq!(fixtures.len(), 26, "the fixture folder changed");
    let mut to_validate = Vec::new();
    let mut with_patient = Vec::new();
    for (name, json) in &fixtures {
        let id = common::fixture_id(name, json);
        let parsed = questionnaire::parse(json).unwrap();
        let compiled = questionnaire::compile(&parsed, &id).unwrap();
        let mut response = common::valid_response(&compiled.form);
        fit_generated_answers(&mut response);
        response.id = Some("generated".into());
        response.authored = Some("2026-11-29T09:00:00Z".into());
        let response = serde_json::to_value(&response).unwrap();
        let q: Value = serde_json::from_str(json).unwrap();
        let x = run(&q, &response);
        if !resources(&x, "Patient").is_empty() {
            with_patient.push(name.clone());
        }
        let warnings: Vec<Value> = x
            .warnings
            .iter()
            .map(|w| json!({"at": w.expression, "code": format!("{:?}", w.code), "text": w.diagnostics}))
            .collect();
        assert_snapshot(
            "extract",
            name,
            &json!({"bundle": x.bundle, "warnings": warnings}),
        );
        to_validate.push((format!("{name}: response"), response));
        for entry in x.bundle["entry"].as_array().unwrap() {
            to_validate.push((format!("{name}: extracted"), entry["resource"].clone()));
        }
        to_validate.push((format!("{name}: bundle"), x.bundle));
    }
    let values: Vec<Value> = to_validate.iter().map(|(_, v)| v.clone()).collect();
    let problems: Vec<String> = fhir_validator::validate(&values)
        .into_iter()
        .zip(&to_validate)
        .filter_map(|(p, (what, v))| p.map(|p| format!("{what} {}: {p}", v["resourceType"])))
        .collect();
    assert!(
        problems.is_empty(),
        "not valid FHIR R4:\n{}",
        problems.join("\n")
    );
    // The SDC extraction forms (the template one included), the medplum intake
    // form (by its mapping) and the US Surgeon General's family history (by
    // LOINC codes).
    assert_eq!(
        with_patient,
        [
            "androidfhir--new-patient-registration-paginated",
            "hl7sdc--demographics.fsh-converted",
            "hl7sdc--extract-complex-defn3",
            "hl7sdc--extract-complex-template",
            "lforms--ussg-fhp",
            "medplum--patient-intake-questionnaire",
        ]
    );
}

fn answer(link_id: &str, values: Value) -> Value {
    let mut item = json!({"linkId": link_id});
    item["answer"] = values;
    item
}

fn string(s: &str) -> Value {
    json!([{"valueString": s}])
}

fn response(questionnaire: &Value, items: Value) -> Value {
    let mut response = json!({"resourceType": "QuestionnaireResponse", "id": "qr-1",
        "questionnaire": questionnaire["url"], "status": "completed",
        "authored": "2026-11-29T09:30:00Z"});
    response["item"] = items;
    response
}

#[test]
fn the_sdc_demographics_example_makes_a_patient_and_one_related_person_per_relative() {
    let q = fixture("hl7sdc--demographics");
    let r = response(
        &q,
        json!([
            answer("patient.birthDate", json!([{"valueDate": "1974-12-25"}])),
            {"linkId": "patient.name", "item": [
                answer("patient.name.family", string("Chalmers")),
                answer("patient.name.given", json!([{"valueString": "Peter"}, {"valueString": "James"}]))]},
            {"linkId": "patient.name", "item": [
                answer("patient.name.family", string("Windsor")),
                answer("patient.name.given", string("Jim"))]},
            {"linkId": "relative", "item": [
                answer("relative.relationship", json!([{"valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "WIFE", "display": "wife"}}])),
                {"linkId": "relative.name", "item": [
                    answer("relative.name.family", string("Chalmers")),
                    answer("relative.name.given", string("Jane"))]}]},
            {"linkId": "relative", "item": [
                answer("relative.relationship", json!([{"valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "SON"}}])),
                {"linkId": "relative.name", "item": [answer("relative.name.given", string("Tom"))]}]}
        ]),
    );
    let x = run(&q, &r);
    assert_eq!(x.warnings, []);
    let [patient] = resources(&x, "Patient").try_into().unwrap();
    assert_eq!(
        patient,
        json!({"resourceType": "Patient", "birthDate": "1974-12-25", "name": [
            {"family": "Chalmers", "given": ["Peter", "James"]},
            {"family": "Windsor", "given": ["Jim"]}]})
    );
    let patient_url = full_url(&x, "Patient");
    let relatives = resources(&x, "RelatedPerson");
    assert_eq!(relatives.len(), 2);
    assert_eq!(relatives[0]["relationship"][0]["coding"][0]["code"], "WIFE");
    assert_eq!(
        relatives[0]["name"],
        json!([{"family": "Chalmers", "given": ["Jane"]}])
    );
    assert_eq!(relatives[1]["name"], json!([{"given": ["Tom"]}]));
    for relative in &relatives {
        assert_eq!(relative["patient"]["reference"], patient_url.as_str());
    }
    fhir_validator::assert_valid("demographics", &[r, x.bundle]);
}

/// Answers to SDC's extract-complex example (the definition and the template
/// versions have the same items).
fn complex_example_answers() -> Value {
    json!([
        {"linkId": "patient", "item": [
            {"linkId": "name", "item": [
                answer("given", json!([{"valueString": "Jane"}, {"valueString": "Mary"}])),
                answer("family", string("Doe"))]},
            answer("gender", json!([{"valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": "female", "display": "Female"}}])),
            answer("dob", json!([{"valueDate": "1980-03-04"}])),
            answer("ihi", string("8003608166690503")),
            answer("mobile-phone", string("0491 572 665"))]},
        {"linkId": "contacts", "item": [
            answer("contact-name", string("John Doe")),
            answer("relationship", json!([{"valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N", "display": "Next-of-Kin"}}])),
            answer("phone", string("0491 000 000"))]},
        {"linkId": "obs", "item": [
            answer("height", json!([{"valueDecimal": 1.72}])),
            answer("weight", json!([{"valueDecimal": 65.5}])),
            answer("complication", json!([{"valueBoolean": false}]))]}
    ])
}

#[test]
fn the_sdc_complex_definition_example_makes_its_patient_contacts_and_observations() {
    let q = fixture("extract-complex-defn3");
    let r = response(&q, complex_example_answers());
    let x = run(&q, &r);
    let patient_url = full_url(&x, "Patient");
    // extractAllocateId: the Patient's fullUrl is the allocated id, the first one.
    assert_eq!(patient_url, "urn:uuid:00000000-0000-4000-8000-000000000001");
    let [patient] = resources(&x, "Patient").try_into().unwrap();
    assert_eq!(
        patient,
        json!({"resourceType": "Patient",
            "name": [{"given": ["Jane", "Mary"], "family": "Doe", "text": "Jane Mary Doe"}],
            "gender": "female", "birthDate": "1980-03-04",
            "identifier": [{"value": "8003608166690503", "type": {"text": "National Identifier (IHI)"}, "system": "http://example.org/nhio"}],
            // The example has use and system the wrong way round; each goes where
            // its code belongs.
            "telecom": [{"value": "0491 572 665", "system": "phone", "use": "mobile"}]})
    );
    let [contact] = resources(&x, "RelatedPerson").try_into().unwrap();
    assert_eq!(
        contact,
        json!({"resourceType": "RelatedPerson",
            "name": [{"text": "John Doe"}],
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N", "display": "Next-of-Kin"}]}],
            "telecom": [{"value": "0491 000 000", "system": "phone", "use": "mobile"}],
            "patient": {"reference": patient_url}})
    );
    let observations = resources(&x, "Observation");
    assert_eq!(
        observations.len(),
        2,
        "height and weight; complication has no extraction context"
    );
    assert_eq!(observations[0]["code"]["coding"][0]["code"], "8302-2");
    assert_eq!(
        observations[0]["valueQuantity"],
        json!({"value": 1.72, "unit": "m"})
    );
    assert_eq!(
        observations[1]["valueQuantity"],
        json!({"value": 65.5, "unit": "kg"})
    );
    for o in &observations {
        assert_eq!(o["status"], "final");
        assert_eq!(o["subject"]["reference"], patient_url.as_str());
        assert_eq!(o["effectiveDateTime"], "2026-11-29T09:30:00Z");
        assert_eq!(o["issued"], "2026-11-29T09:30:00Z");
        assert_eq!(
            o["derivedFrom"],
            json!([{"reference": "QuestionnaireResponse/qr-1"}])
        );
    }
    let at: Vec<_> = x
        .warnings
        .iter()
        .filter_map(|w| w.expression.clone())
        .collect();
    assert!(at.iter().all(|a| a == "complication"), "{:?}", x.warnings);
    fhir_validator::assert_valid("extract-complex-defn3", &[r, x.bundle]);
}

#[test]
fn the_android_fhir_registration_form_makes_its_patient() {
    let q = fixture("new-patient-registration");
    let r = response(
        &q,
        json!([{"linkId": "PR", "item": [
            {"linkId": "PR-name", "item": [
                answer("PR-name-text", string("Amani")),
                answer("PR-name-family", string("Otieno"))]},
            answer("patient-0-birth-date", json!([{"valueDate": "1995-07-15"}])),
            answer("patient-0-gender", json!([{"valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": "male", "display": "Male"}}])),
            {"linkId": "PR-telecom", "item": [
                answer("PR-telecom-system", string("phone")),
                answer("PR-telecom-value", string("+254 700 000 000"))]},
            {"linkId": "PR-address", "item": [
                answer("PR-address-city", string("Nairobi")),
                answer("PR-address-country", string("Kenya"))]},
            answer("PR-active", json!([{"valueBoolean": true}]))]}]),
    );
    let x = run(&q, &r);
    assert_eq!(x.warnings, []);
    let [patient] = resources(&x, "Patient").try_into().unwrap();
    assert_eq!(
        patient,
        json!({"resourceType": "Patient",
            "name": [{"given": ["Amani"], "family": "Otieno"}],
            "birthDate": "1995-07-15", "gender": "male",
            "telecom": [{"system": "phone", "value": "+254 700 000 000"}],
            "address": [{"city": "Nairobi", "country": "Kenya"}],
            "active": true})
    );
    fhir_validator::assert_valid("android registration", &[r, x.bundle]);
}

#[test]
fn the_medplum_intake_form_is_extracted_by_its_mapping() {
    let q = fixture("medplum");
    let r = response(
        &q,
        json!([
            {"linkId": "patient-demographics", "item": [
                answer("first-name", string("Homer")),
                answer("middle-name", string("Jay")),
                answer("last-name", string("Simpson")),
                answer("dob", json!([{"valueDate": "1956-05-12"}])),
                answer("street", string("742 Evergreen Terrace")),
                answer("city", string("Springfield")),
                answer("state", json!([{"valueCoding": {"system": "https://www.usps.com/", "code": "OR", "display": "Oregon"}}])),
                answer("zip", string("97403")),
                answer("phone", string("555-7334"))]},
            {"linkId": "emergency-contact", "item": [
                answer("emergency-contact-first-name", string("Marge")),
                answer("emergency-contact-last-name", string("Simpson")),
                answer("emergency-contact-phone", string("555-7335"))]},
            answer("preferred-language", json!([{"valueCoding": {"system": "urn:ietf:bcp:47", "code": "en", "display": "English"}}]))
        ]),
    );
    let x = run(&q, &r);
    assert_eq!(x.warnings, []);
    let [patient] = resources(&x, "Patient").try_into().unwrap();
    assert_eq!(
        patient["name"],
        json!([{"given": ["Homer", "Jay"], "family": "Simpson"}])
    );
    assert_eq!(patient["birthDate"], "1956-05-12");
    assert_eq!(
        patient["address"],
        json!([{"line": ["742 Evergreen Terrace"], "city": "Springfield", "state": "Oregon", "postalCode": "97403"}])
    );
    assert_eq!(
        patient["telecom"],
        json!([{"value": "555-7334", "system": "phone"}])
    );
    assert_eq!(
        patient["contact"],
        json!([{"name": {"given": ["Marge"], "family": "Simpson"},
            "telecom": [{"value": "555-7335", "system": "phone"}],
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C", "display": "Emergency Contact"}]}]}])
    );
    assert_eq!(
        patient["communication"],
        json!([{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en", "display": "English"}]}, "preferred": true}])
    );
    fhir_validator::assert_valid("medplum intake", &[r, x.bundle]);
}

#[test]
fn the_validator_refuses_what_is_not_fhir_r4() {
    let verdicts = fhir_validator::validate(&[
        json!({"resourceType": "Patient", "birthDate": "1990-02-30x"}),
        json!({"resourceType": "RelatedPerson"}),
        json!({"resourceType": "Patient", "gender": "female"}),
    ]);
    assert!(
        verdicts[0]
            .as_deref()
            .is_some_and(|m| m.contains("birthDate"))
    );
    assert!(
        verdicts[1]
            .as_deref()
            .is_some_and(|m| m.contains("patient"))
    );
    assert_eq!(verdicts[2], None);
}

#[test]
fn the_sdc_template_example_makes_the_same_patient_as_the_definition_example() {
    let by_definition = run(
        &fixture("extract-complex-defn3"),
        &response(&fixture("extract-complex-defn3"), complex_example_answers()),
    );
    let q = fixture("extract-complex-template");
    let r = response(&q, complex_example_answers());
    let x = run(&q, &r);
    let [patient] = resources(&x, "Patient").try_into().unwrap();
    let mut expected = resources(&by_definition, "Patient").remove(0);
    // The template writes telecom the right way round, and has no birthDate.
    expected["telecom"] = json!([{"system": "phone", "use": "mobile", "value": "0491 572 665"}]);
    expected.as_object_mut().unwrap().remove("birthDate");
    assert_eq!(patient, expected, "{patient:#}");
    assert_eq!(
        full_url(&x, "Patient"),
        "urn:uuid:00000000-0000-4000-8000-000000000001"
    );
    let [contact] = resources(&x, "RelatedPerson").try_into().unwrap();
    assert_eq!(
        contact["patient"]["reference"],
        full_url(&x, "Patient").as_str()
    );
    assert_eq!(contact["name"], json!([{"text": "John Doe"}]));
    let observations = resources(&x, "Observation");
    assert_eq!(observations.len(), 3, "height, weight and the complication");
    // The template records height in centimetres: `answer.value * 100`, a
    // decimal (FHIRPath's decimal times an integer), written as one.
    let expected: Value = serde_json::from_str(
        r#"{"system": "http://unitsofmeasure.org", "unit": "cm", "code": "cm", "value": 172.0}"#,
    )
    .unwrap();
    assert_eq!(observations[0]["valueQuantity"], expected);
    assert_eq!(x.warnings, []);
    fhir_validator::assert_valid("extract-complex-template", &[r, x.bundle]);
}
