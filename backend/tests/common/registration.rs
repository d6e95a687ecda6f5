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
