//! The intake tests' form and submissions: Android FHIR's registration form
//! (Patient extraction by definition), answered for a person, posted to
//! `/api/intakes`.

use reqwest::StatusCode;
use serde_json::{Value, json};

/// The registration Questionnaire, as in the fixtures.
pub(crate) fn form() -> Value {
    let (_, json) = super::fixtures()
        .into_iter()
        .find(|(name, _)| name.contains("new-patient-registration"))
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

/// Stores the form on the server at `base`.
pub(crate) async fn import(client: &reqwest::Client, base: &str) {
    let q = form();
    let r = client
        .put(format!(
            "{base}/fhir/Questionnaire/{}",
            q["id"].as_str().unwrap()
        ))
        .header("content-type", "application/fhir+json")
        .body(q.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "form import: {}", r.status());
}

pub(crate) fn answer(link_id: &str, values: Value) -> Value {
    let mut item = json!({"linkId": link_id});
    item["answer"] = values;
    item
}

pub(crate) fn string(s: &str) -> Value {
    json!([{"valueString": s}])
}

/// The form answered for this person (with a phone number if given).
pub(crate) fn response(given: &str, family: &str, birth: &str, phone: Option<&str>) -> Value {
    let q = form();
    let questionnaire = q["url"].as_str().map_or_else(
        || format!("Questionnaire/{}", q["id"].as_str().unwrap()),
        str::to_owned,
    );
    let mut items = vec![
        json!({"linkId": "PR-name", "item": [
            answer("PR-name-text", string(given)),
            answer("PR-name-family", string(family))]}),
        answer("patient-0-birth-date", json!([{"valueDate": birth}])),
        answer(
            "patient-0-gender",
            json!([{"valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": "female", "display": "Female"}}]),
        ),
    ];
    if let Some(phone) = phone {
        items.push(json!({"linkId": "PR-telecom", "item": [
            answer("PR-telecom-system", string("phone")),
            answer("PR-telecom-value", string(phone))]}));
    }
    items.push(json!({"linkId": "PR-address", "item": [
        answer("PR-address-city", string("Nairobi")),
        answer("PR-address-country", string("Kenya"))]}));
    items.push(answer("PR-active", json!([{"valueBoolean": true}])));
    json!({"resourceType": "QuestionnaireResponse", "questionnaire": questionnaire,
        "status": "completed", "authored": "2026-11-30T09:30:00Z",
        "item": [{"linkId": "PR", "item": items}]})
}

/// `POST /api/intakes` with `key`, not yet sent.
pub(crate) fn post(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/api/intakes"))
        .header("content-type", "application/fhir+json")
        .header("idempotency-key", key)
        .body(body.to_string())
}

/// `POST /api/intakes` with `key`: the status and the JSON answer.
pub(crate) async fn submit(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let r = post(client, base, key, body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The id of [`extras_form`].
pub(crate) const EXTRAS_FORM: &str = "registration-extras";

/// The registration form with more to extract than the Patient: an emergency
/// contact (a RelatedPerson) and the patient's weight (an Observation).
pub(crate) fn extras_form() -> Value {
    let extract = |canonical: &str| {
        json!({"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-definitionExtract",
            "extension": [{"url": "definition", "valueCanonical": canonical}]})
    };
    let r = "http://hl7.org/fhir/StructureDefinition/RelatedPerson#";
    let o = "http://hl7.org/fhir/StructureDefinition/Observation#";
    let mut q = form();
    q["id"] = json!(EXTRAS_FORM);
    q["title"] = json!("Registration with an emergency contact");
    let items = q["item"].as_array_mut().unwrap();
    items.push(json!({"linkId": "kin", "type": "group", "text": "Emergency contact",
        "extension": [extract("http://hl7.org/fhir/StructureDefinition/RelatedPerson")],
        "item": [
            {"linkId": "kin-name", "type": "string", "text": "Name", "definition": format!("{r}RelatedPerson.name.text")},
            {"linkId": "kin-phone", "type": "string", "text": "Phone", "definition": format!("{r}RelatedPerson.telecom.value"),
             "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-definitionExtractValue", "extension": [
                {"url": "definition", "valueUri": format!("{r}RelatedPerson.telecom.system")},
                {"url": "fixed-value", "valueCode": "phone"}]}]}
        ]}));
    items.push(json!({"linkId": "weight", "type": "decimal", "text": "Weight (kg)",
        "definition": format!("{o}Observation.value[x]:valueQuantity.value"),
        "extension": [extract("http://hl7.org/fhir/StructureDefinition/Observation"),
            {"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-definitionExtractValue", "extension": [
                {"url": "definition", "valueUri": format!("{o}Observation.code.text")},
                {"url": "fixed-value", "valueString": "Body weight"}]}]}));
    q
}

/// Stores [`extras_form`] on the server at `base`.
pub(crate) async fn import_extras(client: &reqwest::Client, base: &str) {
    let r = client
        .put(format!("{base}/fhir/Questionnaire/{EXTRAS_FORM}"))
        .header("content-type", "application/fhir+json")
        .body(extras_form().to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "form import: {}", r.status());
}

/// [`extras_form`] answered for this person, with an emergency contact
/// (`kin`) and a weight.
pub(crate) fn response_with_extras(
    given: &str,
    family: &str,
    birth: &str,
    phone: Option<&str>,
    kin: &str,
) -> Value {
    let mut r = response(given, family, birth, phone);
    r["questionnaire"] = json!(format!("Questionnaire/{EXTRAS_FORM}"));
    let items = r["item"].as_array_mut().unwrap();
    items.push(json!({"linkId": "kin", "item": [
        answer("kin-name", string(kin)),
        answer("kin-phone", string("+254 722 000 002"))]}));
    items.push(answer("weight", json!([{"valueDecimal": 64.5}])));
    r
}
