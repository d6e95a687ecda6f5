//! The embedded FHIR store over HTTP: versioning, `If-Match`, conditional create,
//! search parameters, transactions with `urn:uuid` references, batches, history,
//! and an honest CapabilityStatement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::StatusCode;
use serde_json::{Value, json};

struct Server {
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
    _spawned: common::Spawned,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let spawned = common::spawn_server(dir.path(), &dir.path().join("no-dist")).await;
    Server {
        base: format!("{}/fhir", spawned.base),
        client: spawned.client.clone(),
        _dir: dir,
        _spawned: spawned,
    }
}

impl Server {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/fhir+json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    async fn post(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::POST, path, Some(body), headers)
            .await
    }

    async fn put(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::PUT, path, Some(body), headers)
            .await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.send(reqwest::Method::GET, path, None, &[]).await;
        (s, b)
    }

    async fn ids(&self, search: &str) -> Vec<String> {
        let (status, bundle) = self.get(search).await;
        assert_eq!(status, StatusCode::OK, "{search}: {bundle}");
        let mut ids: Vec<String> = bundle["entry"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }
}

fn patient(given: &str, family: &str, birth: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": [given]}], "birthDate": birth})
}

#[tokio::test]
async fn update_with_a_stale_if_match_is_412_and_writes_nothing() {
    let s = server().await;
    let (status, headers, created) = s
        .post("/Patient", &patient("Ana", "Núñez", "1980-03-27"), &[])
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["etag"], "W/\"1\"");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("/Patient/{id}/_history/1"))
    );

    let mut changed = created.clone();
    changed["gender"] = json!("female");
    let (status, headers, v2) = s
        .put(
            &format!("/Patient/{id}"),
            &changed,
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!(headers["etag"], "W/\"2\"");
    assert_eq!(v2["meta"]["versionId"], "2");

    // Someone who read version 1 writes: refused, and version 2 stays.
    changed["gender"] = json!("male");
    let (status, _, outcome) = s
        .put(
            &format!("/Patient/{id}"),
            &changed,
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let (_, now) = s.get(&format!("/Patient/{id}")).await;
    assert_eq!(now["gender"], "female");
    assert_eq!(now["meta"]["versionId"], "2");

    // History, newest first, and each version readable.
    let (status, history) = s.get(&format!("/Patient/{id}/_history")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["type"], "history");
    let versions: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["2", "1"]);
    let (status, v1) = s.get(&format!("/Patient/{id}/_history/1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v1.get("gender").is_none());
    assert_eq!(
        s.get(&format!("/Patient/{id}/_history/9")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn conditional_create_finds_the_existing_patient_instead_of_a_second() {
    let s = server().await;
    let mut p = patient("Ana", "Diaz", "1980-03-27");
    p["identifier"] = json!([{"system": "urn:example:mrn", "value": "A-1"}]);
    let condition = [("if-none-exist", "identifier=urn:example:mrn|A-1")];
    let (first, _, a) = s.post("/Patient", &p, &condition).await;
    let (second, _, b) = s.post("/Patient", &p, &condition).await;
    assert_eq!((first, second), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a["id"], b["id"]);
    assert_eq!(s.ids("/Patient?identifier=A-1").await.len(), 1);
    // The system matters when given.
    assert!(s.ids("/Patient?identifier=urn:other|A-1").await.is_empty());
}

#[tokio::test]
async fn patients_are_found_by_each_search_parameter() {
    let s = server().await;
    let mut ana = patient("Ana María", "Núñez-García", "1980-03-27");
    ana["gender"] = json!("female");
    ana["telecom"] = json!([{"system": "phone", "value": "+1 (617) 555-0100"}, {"system": "email", "value": "Ana@Example.org"}]);
    ana["address"] = json!([{"postalCode": "02139"}]);
    let (_, _, ana) = s.post("/Patient", &ana, &[]).await;
    let (_, _, bo) = s
        .post("/Patient", &patient("Bo", "Nunes", "1981-03-27"), &[])
        .await;
    let (ana, bo) = (
        ana["id"].as_str().unwrap().to_owned(),
        bo["id"].as_str().unwrap().to_owned(),
    );
    let mut both = vec![ana.clone(), bo.clone()];
    both.sort();
    let cases: &[(&str, Vec<String>)] = &[
        ("family=nunez", vec![ana.clone()]),
        ("family=NUN", both.clone()),
        ("family:exact=nunez", vec![]),
        ("given=maria", vec![]),
        ("given=ana", vec![ana.clone()]),
        ("name=garcia", vec![ana.clone()]),
        ("name=bo", vec![bo.clone()]),
        ("birthdate=1980-03-27", vec![ana.clone()]),
        ("birthdate=1980", vec![ana.clone()]),
        ("birthdate=ge1981-01-01", vec![bo.clone()]),
        ("birthdate=le1980-12", vec![ana.clone()]),
        ("birthdate=1980-03-27,1981-03-27", both.clone()),
        ("gender=female", vec![ana.clone()]),
        ("phone=6175550100", vec![]),
        ("phone=16175550100", vec![ana.clone()]),
        ("email=ana@example.org", vec![ana.clone()]),
        ("address-postalcode=02139", vec![ana.clone()]),
        ("family=nun&birthdate=1981", vec![bo.clone()]),
        (&format!("_id={bo}"), vec![bo.clone()]),
        ("_lastUpdated=ge2000-01-01", both.clone()),
        ("_lastUpdated=lt2000-01-01", vec![]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            &s.ids(&format!("/Patient?{query}")).await,
            expected,
            "{query}"
        );
    }
    // Paging: one per page, with a next link, and the total.
    let (_, page) = s.get("/Patient?_count=1").await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["entry"].as_array().unwrap().len(), 1);
    assert!(
        page["link"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["relation"] == "next")
    );
    // A typo is an error, never every patient.
    let (status, outcome) = s.get("/Patient?familly=nunez").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(outcome["issue"][0]["expression"][0], "familly");
    let (status, _) = s.get("/Patient?birthdate=last-week").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_transaction_resolves_urn_uuid_references_and_is_all_or_nothing() {
    let s = server().await;
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:4b1f7d1e-0000-4000-8000-000000000001", "resource": patient("Ana", "Diaz", "1980-03-27"),
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:4b1f7d1e-0000-4000-8000-000000000002",
         "resource": {"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "http://example.org/q",
                      "subject": {"reference": "urn:uuid:4b1f7d1e-0000-4000-8000-000000000001"}},
         "request": {"method": "POST", "url": "QuestionnaireResponse"}},
        {"resource": {"resourceType": "Provenance", "recorded": "2026-11-30T10:00:00Z",
                      "target": [{"reference": "urn:uuid:4b1f7d1e-0000-4000-8000-000000000002"}],
                      "agent": [{"who": {"display": "Intake kiosk 1"}}]},
         "request": {"method": "POST", "url": "Provenance"}},
    ]});
    let (status, _, response) = s.post("", &bundle, &[]).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["type"], "transaction-response");
    let locations: Vec<String> = response["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["location"].as_str().unwrap().to_owned())
        .collect();
    let patient_ref = locations[0].split("/_history").next().unwrap().to_owned();
    let qr_ref = locations[1].split("/_history").next().unwrap().to_owned();
    let (_, qr) = s.get(&format!("/{qr_ref}")).await;
    assert_eq!(qr["subject"]["reference"], patient_ref);
    assert_eq!(
        s.ids(&format!("/QuestionnaireResponse?subject={patient_ref}"))
            .await
            .len(),
        1
    );
    assert_eq!(
        s.ids("/QuestionnaireResponse?questionnaire=http://example.org/q")
            .await
            .len(),
        1
    );
    assert_eq!(
        s.ids(&format!("/Provenance?target={qr_ref}")).await.len(),
        1
    );

    // One bad entry: nothing of the transaction is stored.
    let bad = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("Bo", "Diaz", "1981-01-01"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "gender": "sometimes"}, "request": {"method": "POST", "url": "Patient"}},
    ]});
    let (status, _, outcome) = s.post("", &bad, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Bundle.entry[1].resource.gender"
    );
    assert!(
        !outcome.to_string().contains("sometimes"),
        "values are not echoed: {outcome}"
    );
    assert!(s.ids("/Patient?given=bo").await.is_empty());
}

#[tokio::test]
async fn a_batch_applies_each_entry_on_its_own() {
    let s = server().await;
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": patient("Ana", "Diaz", "1980-03-27"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "gender": "sometimes"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": patient("Bo", "Diaz", "1981-01-01"), "request": {"method": "DELETE", "url": "Patient/x"}},
    ]});
    let (status, _, response) = s.post("", &bundle, &[]).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let statuses: Vec<&str> = response["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "201 Created",
            "422 Unprocessable Entity",
            "422 Unprocessable Entity"
        ]
    );
    // Each issue names its own entry, the resource's element within it.
    assert_eq!(
        response["entry"][1]["response"]["outcome"]["issue"][0]["expression"][0],
        "Bundle.entry[1].resource.gender"
    );
    assert_eq!(
        response["entry"][2]["response"]["outcome"]["issue"][0]["code"],
        "not-supported"
    );
    assert_eq!(s.ids("/Patient?family=diaz").await.len(), 1);
}

#[tokio::test]
async fn the_capability_statement_lists_what_the_store_does() {
    let s = server().await;
    let (status, cs) = s.get("/metadata").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let patient = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap();
    let params: Vec<&str> = patient["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "family",
        "given",
        "name",
        "birthdate",
        "gender",
        "identifier",
        "phone",
        "email",
        "address-postalcode",
        "_lastUpdated",
    ] {
        assert!(params.contains(&p), "{p}");
        // Every parameter the statement names is one the store answers.
        let probe = match p {
            "birthdate" | "_lastUpdated" => "2000",
            _ => "x",
        };
        assert_eq!(
            s.get(&format!("/Patient?{p}={probe}")).await.0,
            StatusCode::OK,
            "{p}"
        );
    }
    assert_eq!(s.get("/Observation/1").await.0, StatusCode::NOT_FOUND);
    // The audit trail's search, with the parameters it answers.
    let audit = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "AuditEvent")
        .unwrap();
    for p in audit["searchParam"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let probe = if name == "date" { "2000" } else { "x" };
        assert_eq!(
            s.get(&format!("/AuditEvent?{name}={probe}")).await.0,
            StatusCode::OK,
            "{name}"
        );
    }
    assert!(cs["rest"][0]["security"]["description"].is_string());
}
