//! The intake pipeline with a remote FHIR R4 EMR (Medplum's router, started by
//! the test): an intake lands once, valid by Medplum's own validation; when the
//! EMR fails its deliveries for a while, the outbox retries until it takes them,
//! nothing twice, what a form extracts besides the Patient included; an EMR that cannot be searched sends intakes to review instead
//! of refusing them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::intake_server::IntakeServer;
use common::medplum::{MedplumPeer, PeerOptions};
use common::{http, registration};
use reqwest::StatusCode;
use serde_json::Value;

/// The app delivering to `emr`: quick to give up on it, quick to retry.
async fn server(emr: &MedplumPeer) -> IntakeServer {
    IntakeServer::remote(emr, |config| {
        config.emr.emr_timeout_ms = Some(500);
        config.delivery.delivery_retry_ms = Some(100);
        config.delivery.delivery_retry_max_ms = Some(400);
    })
    .await
}

fn intake(given: &str, family: &str, birth: &str) -> Value {
    registration::response(given, family, birth, None)
}

async fn emr_search(emr: &MedplumPeer, query: &str) -> Vec<Value> {
    http::search(&reqwest::Client::new(), &emr.base_url(), query).await
}

#[tokio::test]
async fn an_intake_lands_once_in_a_remote_emr_even_when_it_fails_for_a_while() {
    let emr = MedplumPeer::start(&PeerOptions::default());
    let s = server(&emr).await;
    let (status, first) = s
        .submit("r-1", &intake("Otieno", "Kamau", "1988-04-02"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["outcome"], "created");
    assert_eq!(first["status"], "delivered", "{first}");
    let patient = first["patient"].as_str().unwrap().to_owned();
    assert_eq!(
        emr_search(&emr, &format!("QuestionnaireResponse?subject={patient}"))
            .await
            .len(),
        1
    );

    // The EMR refuses the next 7 deliveries (503): accepted now, delivered later.
    emr.fail_next_transactions(503, 7).await;
    let (status, second) = s
        .submit("r-2", &intake("Wanjiku", "Mwangi", "1990-10-10"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["outcome"], "created");
    let id = second["intake"].as_str().unwrap().to_owned();
    let mut state = s.intake(&id).await;
    for _ in 0..100 {
        if state["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = s.intake(&id).await;
    }
    assert_eq!(state["status"], "delivered", "{state}");
    // Exactly once: one Patient, one response, one Provenance for the intake.
    let patients = emr_search(
        &emr,
        &format!("Patient?identifier=urn:intake:submission|{id}"),
    )
    .await;
    assert_eq!(patients.len(), 1);
    assert_eq!(
        state["patient"],
        format!("Patient/{}", patients[0]["id"].as_str().unwrap())
    );
    let responses = emr_search(
        &emr,
        &format!("QuestionnaireResponse?identifier=urn:intake:submission|{id}"),
    )
    .await;
    assert_eq!(responses.len(), 1);
    let qr = format!(
        "QuestionnaireResponse/{}",
        responses[0]["id"].as_str().unwrap()
    );
    assert_eq!(
        emr_search(&emr, &format!("Provenance?target={qr}"))
            .await
            .len(),
        1
    );
    // On the audit trail: the outbox wrote the chart into the EMR (the patient's
    // device sent it before the chart had an id); the test's token read it.
    let patient = state["patient"].as_str().unwrap();
    let trail = s.search(&format!("AuditEvent?patient={patient}")).await;
    let by = |action: &str| -> Vec<&str> {
        trail
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| {
                e["agent"][0]["who"]["identifier"]["value"]
                    .as_str()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(by("C"), ["outbox"], "{trail:#?}");
    assert!(!by("R").is_empty() && by("R").iter().all(|a| a.starts_with("tests-")));

    // A retry of the first submission changes nothing.
    let (status, again) = s
        .submit("r-1", &intake("Otieno", "Kamau", "1988-04-02"))
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &first));
    assert_eq!(emr_search(&emr, "Patient?family=kamau").await.len(), 1);
}

#[tokio::test]
async fn an_emr_that_cannot_be_searched_sends_intakes_to_review_not_away() {
    let emr = MedplumPeer::start(&PeerOptions::default());
    let s = server(&emr).await;
    emr.pause();
    let (status, answer) = s
        .submit("down-1", &intake("Achieng", "Odhiambo", "1979-01-31"))
        .await;
    emr.resume();
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["outcome"], "review");
    assert_eq!(answer["patient"], Value::Null);
    let id = answer["intake"].as_str().unwrap();
    assert_eq!(s.intake(id).await["status"], "review");
    assert!(emr_search(&emr, "Patient?family=odhiambo").await.is_empty());
}

#[tokio::test]
async fn an_intakes_extracted_contact_and_observation_reach_a_remote_emr_once_when_a_delivery_is_repeated()
 {
    let emr = MedplumPeer::start(&PeerOptions::default());
    let s = server(&emr).await;
    registration::import_extras(&s.client, &s.base).await;
    // The EMR carries out the first delivery but its answer never comes: the
    // outbox cannot know, and sends it again (delivered below means a second
    // transaction was answered: the first one after the hold is withheld).
    emr.hold_transactions(0, 1).await;
    let (status, answer) = s
        .submit(
            "x-1",
            &registration::response_with_extras(
                "Wanjiku",
                "Mwangi",
                "1990-10-10",
                None,
                "Baraka Mwangi",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = answer["intake"].as_str().unwrap().to_owned();
    let mut state = s.intake(&id).await;
    for _ in 0..100 {
        if state["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = s.intake(&id).await;
    }
    assert_eq!(state["status"], "delivered", "{state}");
    emr.release().await;
    let patient = state["patient"].as_str().unwrap().to_owned();
    // Once each, referencing the chart the EMR made, each by its own identifier.
    let contacts = emr_search(
        &emr,
        &format!("RelatedPerson?identifier=urn:intake:extracted|{id}/1"),
    )
    .await;
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0]["patient"]["reference"], patient.as_str());
    assert_eq!(
        emr_search(&emr, &format!("RelatedPerson?patient={patient}"))
            .await
            .len(),
        1
    );
    let weights = emr_search(
        &emr,
        &format!("Observation?identifier=urn:intake:extracted|{id}/2"),
    )
    .await;
    assert_eq!(weights.len(), 1, "{weights:?}");
    assert_eq!(weights[0]["subject"]["reference"], patient.as_str());
    assert_eq!(
        emr_search(&emr, &format!("Observation?subject={patient}"))
            .await
            .len(),
        1
    );
    let provenances =
        emr_search(&emr, &format!("Provenance?_tag=urn:intake:submission|{id}")).await;
    assert_eq!(provenances.len(), 1);
    let targets = provenances[0]["target"].to_string();
    assert!(
        targets.contains(&format!(
            "RelatedPerson/{}",
            contacts[0]["id"].as_str().unwrap()
        )) && targets.contains(&format!(
            "Observation/{}",
            weights[0]["id"].as_str().unwrap()
        )),
        "{targets}"
    );
}
