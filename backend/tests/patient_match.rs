//! Patients through the FHIR API: created one by one and in a transaction, then
//! found by `POST /fhir/Patient/$match` on a server spawned on 127.0.0.1:0.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use tempfile::TempDir;

mod common;

struct Server {
    base: String,
    client: reqwest::Client,
    _data: TempDir,
    _dist: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    async fn spawn() -> Self {
        let data = tempfile::tempdir().unwrap();
        let dist = tempfile::tempdir().unwrap();
        let common::Spawned {
            base, stop, client, ..
        } = common::spawn_server(data.path(), dist.path()).await;
        Self {
            base,
            client,
            _data: data,
            _dist: dist,
            stop: Some(stop),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn patient(given: &str, family: &str, birth: &str, ssn: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn}],
        "name": [{"family": family, "given": [given]}],
        "gender": "female",
        "birthDate": birth,
        "address": [{"line": ["12 Main St"], "city": "Springfield", "state": "IL", "postalCode": "62701"}]
    })
}

fn match_params(resource: &Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": resource}]})
}

fn grade(entry: &Value) -> &str {
    entry["search"]["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == "http://hl7.org/fhir/StructureDefinition/match-grade")
        .unwrap()["valueCode"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn patients_loaded_by_transaction_are_found_by_match_with_grade_and_explanation() {
    let server = Server::spawn().await;
    let others = [
        ("Ann", "Adams", "1950-01-02", "111-22-3333"),
        ("Bob", "Brown", "1961-05-06", "222-33-4444"),
        ("Carl", "Clark", "1972-09-10", "333-44-5555"),
    ];
    let mut entries: Vec<Value> = others
        .iter()
        .map(|(g, f, b, s)| json!({"resource": patient(g, f, b, s), "request": {"method": "POST", "url": "Patient"}}))
        .collect();
    entries.push(json!({
        "resource": patient("William", "Linacre", "1975-04-03", "123-45-6789"),
        "request": {"method": "PUT", "url": "Patient/will"}
    }));
    let (status, response) = server
        .post(
            "/fhir",
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
        )
        .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["type"], "transaction-response");
    assert_eq!(response["entry"].as_array().unwrap().len(), 4);
    assert_eq!(
        response["entry"][3]["response"]["location"],
        "Patient/will/_history/1"
    );

    let (status, created) = server
        .post(
            "/fhir/Patient",
            &patient("Dora", "Davis", "1980-11-12", "444-55-6666"),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["meta"]["versionId"], "1");

    // A nickname, a typo and a transposed day and month; the same SSN.
    let query = patient("Bill", "Linacer", "1975-03-04", "123456789");
    let (status, bundle) = server
        .post("/fhir/Patient/$match", &match_params(&query))
        .await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["type"], "searchset");
    let top = &bundle["entry"][0];
    assert_eq!(top["resource"]["id"], "will");
    assert_eq!(
        top["fullUrl"].as_str().unwrap().rsplit('/').next(),
        Some("will")
    );
    assert_eq!(grade(top), "certain");
    let score = top["search"]["score"].as_f64().unwrap();
    assert!(score > 0.99 && score <= 1.0, "{score}");
    let explanation = top["search"]["extension"][1].to_string();
    assert!(explanation.contains("nickname"), "{explanation}");
    assert!(
        explanation.contains("day-month-transposed"),
        "{explanation}"
    );

    // Someone else entirely: an empty searchset, nothing said about anyone.
    let stranger = json!({"resourceType": "Patient", "name": [{"family": "Quartermaine", "given": ["Zeb"]}], "birthDate": "2001-12-30"});
    let (status, bundle) = server
        .post("/fhir/Patient/$match", &match_params(&stranger))
        .await;
    assert_eq!(status, 200);
    assert_eq!(bundle["total"], 0);
}

#[tokio::test]
async fn a_transaction_with_a_bad_entry_stores_nothing() {
    let server = Server::spawn().await;
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("Ann", "Adams", "1950-01-02", "111-22-3333"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Patient"}}
    ]});
    let (status, outcome) = server.post("/fhir", &bundle).await;
    assert_eq!(status, 422);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Bundle.entry[1].request"
    );
    let (_, found) = server
        .post(
            "/fhir/Patient/$match",
            &match_params(&patient("Ann", "Adams", "1950-01-02", "111-22-3333")),
        )
        .await;
    assert_eq!(found["total"], 0);
}

#[tokio::test]
async fn match_refuses_what_is_not_parameters_with_a_patient() {
    let server = Server::spawn().await;
    let cases = [
        json!({"resourceType": "Patient"}),
        json!({"resourceType": "Parameters", "parameter": []}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Observation"}}]}),
    ];
    for body in cases {
        let (status, outcome) = server.post("/fhir/Patient/$match", &body).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    let (status, _) = server
        .post("/fhir/Patient", &json!({"resourceType": "Observation"}))
        .await;
    assert_eq!(status, 422);
}
