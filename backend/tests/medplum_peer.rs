//! The Medplum FHIR peer (`tests/peers/medplum`) is the FHIR R4 server the EMR client
//! needs to be tested against: these tests pin down what it does.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::medplum::{Es384Key, MedplumPeer, PeerOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};

const FHIR_JSON: &str = "application/fhir+json";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post(peer: &MedplumPeer, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/{path}", peer.base_url()))
        .header("Content-Type", FHIR_JSON)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get_json(peer: &MedplumPeer, path: &str) -> (StatusCode, Value) {
    let res = client()
        .get(format!("{}/{path}", peer.base_url()))
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

fn jane() -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{ "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345" }],
        "name": [{ "family": "Chalmers", "given": ["Jane", "Ann"] }],
        "gender": "female",
        "birthDate": "1974-12-25",
        "telecom": [
            { "system": "phone", "value": "555-0100", "use": "mobile" },
            { "system": "email", "value": "jane@example.org" }
        ],
        "address": [{ "line": ["534 Erewhon St"], "city": "Springfield", "postalCode": "3999" }]
    })
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_created_patient_reads_back_with_its_location_and_version() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let res = post(&peer, "Patient", &jane()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(FHIR_JSON)
    );
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let version = created["meta"]["versionId"].as_str().unwrap();
    assert_eq!(
        location,
        format!("{}/Patient/{id}/_history/{version}", peer.base_url())
    );
    assert_eq!(etag, format!("W/\"{version}\""));

    let (status, read) = get_json(&peer, &format!("Patient/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, created);
    assert_eq!(read["name"], jane()["name"]);

    let (status, outcome) = get_json(&peer, "Patient/no-such-patient").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn search_finds_a_patient_by_the_parameters_matching_uses() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let jane = post(&peer, "Patient", &jane())
        .await
        .json::<Value>()
        .await
        .unwrap();
    let other = json!({ "resourceType": "Patient", "name": [{ "family": "Other" }], "birthDate": "1990-01-01" });
    assert_eq!(
        post(&peer, "Patient", &other).await.status(),
        StatusCode::CREATED
    );
    let id = jane["id"].as_str().unwrap();

    for query in [
        "family=Chalmers",
        "family=chalmers&birthdate=1974-12-25",
        "given=Ann",
        "birthdate=1974-12-25",
        "birthdate=lt1980-01-01",
        "identifier=urn:oid:1.2.36.146.595.217.0.1|12345",
        "phone=555-0100",
        "email=jane@example.org",
        "address-postalcode=3999",
    ] {
        let (status, bundle) = get_json(&peer, &format!("Patient?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {bundle}");
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(ids(&bundle), [id], "{query}");
    }
    let (_, none) = get_json(&peer, "Patient?family=Chalmers&birthdate=1975-12-25").await;
    assert_eq!(none["total"], 0);
    // A parameter the server does not know is refused, not silently matched against nothing.
    let (status, outcome) = get_json(&peer, "Patient?surname=Chalmers").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn conditional_create_twice_makes_one_patient() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let create = || async {
        client()
            .post(format!("{}/Patient", peer.base_url()))
            .header("Content-Type", FHIR_JSON)
            .header(
                "If-None-Exist",
                "identifier=urn:oid:1.2.36.146.595.217.0.1|12345",
            )
            .json(&jane())
            .send()
            .await
            .unwrap()
    };
    let first = create().await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let second = create().await;
    assert_eq!(second.status(), StatusCode::OK);
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["id"], first["id"]);

    let (_, bundle) = get_json(&peer, "Patient?family=Chalmers").await;
    assert_eq!(bundle["total"], 1);
}

#[tokio::test]
async fn an_update_with_a_stale_version_is_refused_with_412() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let created: Value = post(&peer, "Patient", &jane()).await.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let version = created["meta"]["versionId"].as_str().unwrap();
    let put = |body: Value| {
        client()
            .put(format!("{}/Patient/{id}", peer.base_url()))
            .header("Content-Type", FHIR_JSON)
            .header("If-Match", format!("W/\"{version}\""))
            .json(&body)
            .send()
    };
    let mut changed = created.clone();
    changed["gender"] = json!("other");
    let res = put(changed.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let updated: Value = res.json().await.unwrap();
    assert_ne!(updated["meta"]["versionId"], created["meta"]["versionId"]);

    let res = put(changed).await.unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    let outcome: Value = res.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn a_json_patch_is_applied_and_validated() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let created: Value = post(&peer, "Patient", &jane()).await.json().await.unwrap();
    let url = format!(
        "{}/Patient/{}",
        peer.base_url(),
        created["id"].as_str().unwrap()
    );
    let patch = |gender: &str| {
        client()
            .patch(&url)
            .header("Content-Type", "application/json-patch+json")
            .body(json!([{ "op": "replace", "path": "/gender", "value": gender }]).to_string())
            .send()
    };
    let res = patch("other").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["gender"], "other");
    assert_eq!(patch("x").await.unwrap().status(), StatusCode::BAD_REQUEST);
}

fn intake_transaction() -> Value {
    let patient_url = "urn:uuid:4d2b8f7e-95a1-4c3e-9a57-0c1de2a8b001";
    let response_url = "urn:uuid:4d2b8f7e-95a1-4c3e-9a57-0c1de2a8b002";
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": jane(),
                "request": { "method": "POST", "url": "Patient" }
            },
            {
                "fullUrl": response_url,
                "resource": {
                    "resourceType": "QuestionnaireResponse",
                    "questionnaire": "http://example.org/Questionnaire/intake",
                    "status": "completed",
                    "subject": { "reference": patient_url },
                    "authored": "2026-01-02T10:00:00Z",
                    "item": [{ "linkId": "reason", "answer": [{ "valueString": "Check-up" }] }]
                },
                "request": { "method": "POST", "url": "QuestionnaireResponse" }
            },
            {
                "resource": {
                    "resourceType": "Provenance",
                    "target": [{ "reference": response_url }, { "reference": patient_url }],
                    "recorded": "2026-01-02T10:00:01Z",
                    "agent": [{ "who": { "display": "Intake" } }]
                },
                "request": { "method": "POST", "url": "Provenance" }
            }
        ]
    })
}

#[tokio::test]
async fn a_transaction_resolves_its_urn_uuid_references() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let res = post(&peer, "", &intake_transaction()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let bundle: Value = res.json().await.unwrap();
    assert_eq!(bundle["type"], "transaction-response");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for entry in entries {
        assert_eq!(entry["response"]["status"], "201", "{entry}");
    }
    let patient = format!("Patient/{}", entries[0]["resource"]["id"].as_str().unwrap());
    let response = format!(
        "QuestionnaireResponse/{}",
        entries[1]["resource"]["id"].as_str().unwrap()
    );
    assert_eq!(entries[0]["response"]["location"], patient.as_str());

    let (status, stored) = get_json(&peer, &response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored["subject"]["reference"], patient.as_str());
    let (_, provenance) = get_json(&peer, "Provenance").await;
    let targets = &provenance["entry"][0]["resource"]["target"];
    assert_eq!(targets[0]["reference"], response.as_str());
    assert_eq!(targets[1]["reference"], patient.as_str());
    let (_, by_subject) =
        get_json(&peer, &format!("QuestionnaireResponse?subject={patient}")).await;
    assert_eq!(by_subject["total"], 1);
}

#[tokio::test]
async fn a_transaction_with_an_invalid_entry_writes_nothing() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let mut bundle = intake_transaction();
    bundle["entry"][1]["resource"]["status"] = json!("done");
    let res = post(&peer, "", &bundle).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let outcome: Value = res.json().await.unwrap();
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "QuestionnaireResponse.status"
    );
    for kind in ["Patient", "QuestionnaireResponse", "Provenance"] {
        let (_, found) = get_json(&peer, kind).await;
        assert_eq!(found["total"], 0, "{kind}");
    }
}

#[tokio::test]
async fn a_batch_answers_each_entry_on_its_own() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let batch = json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            { "resource": jane(), "request": { "method": "POST", "url": "Patient" } },
            {
                "resource": { "resourceType": "Patient", "gender": "x" },
                "request": { "method": "POST", "url": "Patient" }
            }
        ]
    });
    let res = post(&peer, "", &batch).await;
    assert_eq!(res.status(), StatusCode::OK);
    let bundle: Value = res.json().await.unwrap();
    assert_eq!(bundle["type"], "batch-response");
    assert_eq!(bundle["entry"][0]["response"]["status"], "201");
    assert_eq!(bundle["entry"][1]["response"]["status"], "400");
    let (_, found) = get_json(&peer, "Patient").await;
    assert_eq!(found["total"], 1);
}

#[tokio::test]
async fn an_invalid_patient_is_refused_with_400_and_an_operation_outcome() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let with = |key: &str, value: Value| {
        let mut patient = jane();
        patient[key] = value;
        patient
    };
    for (patient, path) in [
        (with("gender", json!("x")), "Patient.gender"),
        (with("nickname", json!("Janie")), "Patient.nickname"),
        (with("birthDate", json!("1974-13-01")), "Patient.birthDate"),
        (
            with("name", json!([{ "family": "" }])),
            "Patient.name[0].family",
        ),
        (
            with(
                "telecom",
                json!([{ "system": "mobile", "value": "555-0100" }]),
            ),
            "Patient.telecom[0].system",
        ),
    ] {
        let res = post(&peer, "Patient", &patient).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"][0]["severity"], "error");
        assert_eq!(outcome["issue"][0]["expression"][0], path, "{outcome}");
    }
    // Extensions are open: any URL is valid FHIR.
    let extended = with(
        "extension",
        json!([{ "url": "http://example.org/fhir/StructureDefinition/x", "valueString": "y" }]),
    );
    assert_eq!(
        post(&peer, "Patient", &extended).await.status(),
        StatusCode::CREATED
    );
    let (_, found) = get_json(&peer, "Patient").await;
    assert_eq!(found["total"], 1);
}

#[tokio::test]
async fn the_bearer_token_is_required_when_set() {
    let peer = MedplumPeer::start(&PeerOptions::default().bearer_token("s3cret"));
    let url = format!("{}/Patient", peer.base_url());
    let res = client().get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let res = client()
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = client()
        .get(&url)
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn request_token(peer: &MedplumPeer, assertion: &str) -> reqwest::Response {
    client()
        .post(peer.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
            (
                "scope",
                "system/Patient.cruds system/QuestionnaireResponse.c",
            ),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_smart_token_is_issued_for_a_good_es384_assertion_only() {
    let key = Es384Key::generate();
    let peer = MedplumPeer::start(&PeerOptions::default().smart(&key.public_key_path(), "intake"));

    let (status, config) = get_json(&peer, ".well-known/smart-configuration").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["token_endpoint"], peer.token_url().as_str());

    let res = request_token(&peer, &key.assertion("intake", &peer.token_url(), "jti-1")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let token: Value = res.json().await.unwrap();
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["expires_in"], 300);
    assert_eq!(
        token["scope"],
        "system/Patient.cruds system/QuestionnaireResponse.c"
    );
    let access = token["access_token"].as_str().unwrap();
    let url = format!("{}/Patient", peer.base_url());
    let res = client().get(&url).bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        client().get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // Another key's signature, a replayed jti, the wrong audience or issuer: refused.
    let other = Es384Key::generate();
    for assertion in [
        other.assertion("intake", &peer.token_url(), "jti-2"),
        key.assertion("intake", &peer.token_url(), "jti-1"),
        key.assertion("intake", "http://127.0.0.1:1/oauth2/token", "jti-3"),
        key.assertion("someone-else", &peer.token_url(), "jti-4"),
    ] {
        let res = request_token(&peer, &assertion).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let error: Value = res.json().await.unwrap();
        assert_eq!(error["error"], "invalid_client");
    }
    let stats = peer.stats().await;
    assert_eq!(stats["tokensIssued"], 1);
    assert_eq!(stats["tokenRequests"], 5);
    assert_eq!(stats["requests"]["GET"], 3);
}

#[tokio::test]
async fn the_fail_switch_gives_n_failures_then_recovers() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    peer.fail_next(503, 2, Some(1)).await;
    for _ in 0..2 {
        let res = client()
            .get(format!("{}/Patient", peer.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "1");
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    let (status, _) = get_json(&peer, "Patient").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(peer.stats().await["requests"]["GET"], 3);
}

#[tokio::test]
async fn a_paused_peer_answers_nothing_until_resumed() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    peer.pause();
    let url = format!("{}/metadata", peer.base_url());
    let hung = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await;
    assert!(hung.is_err_and(|e| e.is_timeout()));
    peer.resume();
    let res = client().get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let capability: Value = res.json().await.unwrap();
    assert_eq!(capability["fhirVersion"], "4.0.1");
}
