//! A remote EMR (Medplum, started by the test) answering a delivery with 412
//! Precondition Failed: the intake is sent to review, with a review Task for staff,
//! and nothing is written twice. Two causes: the EMR's own conditional create
//! finding two Patients under the intake's identifier, and an EMR that answers 412
//! for its own reasons (the peer's fail switch).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::intake_server::IntakeServer;
use common::medplum::{MedplumPeer, PeerOptions};
use common::{fhir_validator, http, registration};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SUBMISSION: &str = "urn:intake:submission";

/// The app delivering to `emr`: patient with it, retrying quickly and for as long as
/// a test takes.
async fn server(emr: &MedplumPeer) -> IntakeServer {
    IntakeServer::remote(emr, |config| {
        config.emr.emr_timeout_ms = Some(2_000);
        config.delivery.delivery_retry_ms = Some(50);
        config.delivery.delivery_retry_max_ms = Some(200);
        config.delivery.delivery_max_attempts = Some(10_000);
    })
    .await
}

fn ids(resources: &[Value]) -> Vec<&str> {
    resources.iter().filter_map(|r| r["id"].as_str()).collect()
}

/// Intake `id` once it no longer waits for delivery (within 10 s).
async fn settled(s: &IntakeServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = s.intake(id).await;
        if state["status"] != "accepted" {
            return state;
        }
        assert!(Instant::now() < deadline, "still waiting: {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The review Tasks in our store for intake `id`.
async fn review_tasks(s: &IntakeServer, id: &str) -> Vec<Value> {
    s.search(&format!("Task?identifier={SUBMISSION}|{id}"))
        .await
}

/// Submits a new patient while the EMR refuses deliveries: accepted, not delivered.
async fn accepted_undelivered(
    s: &IntakeServer,
    emr: &MedplumPeer,
    key: &str,
    given: &str,
) -> String {
    emr.fail_next_transactions(503, 1_000_000).await;
    let body = registration::response(given, "Mutiso", "1984-06-30", Some("+254 733 100 200"));
    let (status, answer) = s.submit(key, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(
        (&answer["outcome"], &answer["status"]),
        (&json!("created"), &json!("accepted")),
        "{answer}"
    );
    answer["intake"].as_str().unwrap().to_owned()
}

fn assert_review_task(tasks: &[Value], why: &str) {
    assert_eq!(tasks.len(), 1, "{why}: {tasks:?}");
    let task = &tasks[0];
    assert_eq!(task["status"], "requested", "{why}");
    assert_eq!(task["code"]["coding"][0]["code"], "match-review", "{why}");
    assert_eq!(
        task["reasonCode"]["coding"][0]["code"], "delivery-precondition-failed",
        "{why}"
    );
    fhir_validator::assert_valid(why, std::slice::from_ref(task));
}

#[tokio::test]
async fn a_conditional_create_matching_two_patients_sends_the_intake_to_review_once() {
    let emr = MedplumPeer::start(&PeerOptions::default());
    let s = server(&emr).await;
    let id = accepted_undelivered(&s, &emr, "cc-1", "Wairimu").await;

    // Meanwhile two Patients in the EMR came to carry this intake's identifier (a
    // merge gone wrong, a copy by another system): "create unless it exists" no
    // longer names one Patient, and Medplum answers 412.
    let fhir = emr.base_url();
    for family in ["Copy", "Other"] {
        let patient = json!({"resourceType": "Patient",
            "identifier": [{"system": SUBMISSION, "value": id}],
            "name": [{"family": family, "given": ["Someone"]}]});
        let r = s
            .client
            .post(format!("{fhir}/Patient"))
            .header("content-type", "application/fhir+json")
            .body(patient.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    emr.fail_next_transactions(503, 0).await;

    let state = settled(&s, &id).await;
    assert_eq!(state["status"], "review", "{state}");
    assert_eq!(state["patient"], Value::Null, "{state}");
    assert_review_task(&review_tasks(&s, &id).await, "conditional create");
    // Nothing written for it: still the two Patients, no response, no Provenance.
    let by_id = format!("identifier={SUBMISSION}|{id}");
    assert_eq!(
        http::search(&s.client, &fhir, &format!("Patient?{by_id}"))
            .await
            .len(),
        2
    );
    let responses = http::search(&s.client, &fhir, &format!("QuestionnaireResponse?{by_id}")).await;
    assert!(responses.is_empty(), "{:?}", ids(&responses));
    let provenance = http::search(
        &s.client,
        &fhir,
        &format!("Provenance?_tag={SUBMISSION}|{id}"),
    )
    .await;
    assert!(provenance.is_empty(), "{:?}", ids(&provenance));
    assert!(
        http::search(&s.client, &fhir, "Patient?family=mutiso")
            .await
            .is_empty()
    );

    // The same submission again: the same answer, no second Task.
    let body = registration::response("Wairimu", "Mutiso", "1984-06-30", Some("+254 733 100 200"));
    let (status, again) = s.submit("cc-1", &body).await;
    assert_eq!(
        (status, &again["status"]),
        (StatusCode::OK, &json!("review")),
        "{again}"
    );
    assert_eq!(review_tasks(&s, &id).await.len(), 1);
}

#[tokio::test]
async fn an_emr_answering_412_to_a_delivery_sends_the_intake_to_review() {
    let emr = MedplumPeer::start(&PeerOptions::default());
    let s = server(&emr).await;
    let id = accepted_undelivered(&s, &emr, "pf-1", "Njeri").await;
    // The next delivery is answered 412 (the EMR's own precondition), then all is well.
    emr.fail_next_transactions(412, 1).await;

    let state = settled(&s, &id).await;
    assert_eq!(state["status"], "review", "{state}");
    assert_review_task(&review_tasks(&s, &id).await, "412 from the EMR");
    let fhir = emr.base_url();
    assert!(
        http::search(&s.client, &fhir, "Patient?family=mutiso")
            .await
            .is_empty()
    );
    assert!(
        http::search(&s.client, &fhir, "QuestionnaireResponse")
            .await
            .is_empty()
    );
}
