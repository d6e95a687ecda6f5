//! What an intake leaves in the embedded store, read back through `/fhir` and
//! compared with JSON snapshots in `tests/snapshots/intake/`: a new patient's
//! Patient, QuestionnaireResponse and Provenance; a returning patient's response,
//! Provenance and the Task proposing the details that differ (the chart untouched);
//! a doubtful match's review Task; and what a form extracts besides the Patient
//! (a RelatedPerson, an Observation), delivered beside it. Ids, versions and
//! times are replaced by placeholders; `UPDATE_SNAPSHOTS=1` rewrites the snapshots
//! (review the diff).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::intake_server::IntakeServer;
use common::snapshot::{assert_snapshot, normalise};
use common::{fhir_validator, registration};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SUBMISSION: &str = "urn:intake:submission";

/// Times the server sets (the client's `authored` stays as sent).
const REDACTED: &[&str] = &["versionId", "lastUpdated", "recorded", "authoredOn"];

/// Submits; the intake's id and its answer (201).
async fn submit(s: &IntakeServer, key: &str, body: &Value) -> (String, Value) {
    let (status, answer) = s.submit(key, body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    (answer["intake"].as_str().unwrap().to_owned(), answer)
}

/// The resource `reference` names in our `/fhir`.
async fn read(s: &IntakeServer, reference: &str) -> Value {
    s.read(&format!("/fhir/{reference}")).await
}

/// The one resource `query` finds.
async fn one(s: &IntakeServer, query: &str) -> Value {
    let mut found = s.search(query).await;
    assert_eq!(found.len(), 1, "{query}: {found:?}");
    found.remove(0)
}

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_owned()
}

fn reference(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        id_of(resource)
    )
}

#[tokio::test]
async fn created_linked_and_review_intakes_store_the_resources_of_their_snapshots() {
    let s = IntakeServer::embedded().await;
    let phone = "+254 700 000 001";
    let mut volatile: Vec<(String, String)> = Vec::new();

    // A new patient: a chart, the response and its Provenance.
    let (created, answer) = submit(
        &s,
        "snap-created",
        &registration::response("Amani", "Otieno", "1995-07-15", Some(phone)),
    )
    .await;
    assert_eq!(answer["outcome"], "created", "{answer}");
    let patient = read(&s, answer["patient"].as_str().unwrap()).await;
    let by_intake = |id: &str| format!("identifier={SUBMISSION}|{id}");
    let response = one(
        &s,
        &format!("QuestionnaireResponse?{}", by_intake(&created)),
    )
    .await;
    let provenance = one(&s, &format!("Provenance?target={}", reference(&response))).await;
    volatile.extend([
        (created.clone(), "[created intake]".to_owned()),
        (id_of(&patient), "[patient]".to_owned()),
        (id_of(&response), "[created response]".to_owned()),
        (id_of(&provenance), "[created provenance]".to_owned()),
    ]);
    fhir_validator::assert_valid(
        "created intake",
        &[patient.clone(), response.clone(), provenance.clone()],
    );

    // The same patient again with a new phone: linked, the phone only proposed.
    let (linked, answer) = submit(
        &s,
        "snap-linked",
        &registration::response("Amani", "Otieno", "1995-07-15", Some("+254 711 111 111")),
    )
    .await;
    assert_eq!(answer["outcome"], "linked", "{answer}");
    assert_eq!(answer["patient"], reference(&patient));
    let linked_response = one(&s, &format!("QuestionnaireResponse?{}", by_intake(&linked))).await;
    let linked_provenance = one(
        &s,
        &format!("Provenance?target={}", reference(&linked_response)),
    )
    .await;
    let update_task = one(&s, &format!("Task?{}", by_intake(&linked))).await;
    let chart = read(&s, &reference(&patient)).await;
    assert_eq!(chart, patient, "the chart was written over");
    volatile.extend([
        (linked.clone(), "[linked intake]".to_owned()),
        (id_of(&linked_response), "[linked response]".to_owned()),
        (id_of(&linked_provenance), "[linked provenance]".to_owned()),
        (id_of(&update_task), "[update task]".to_owned()),
    ]);

    // Another given name, the same birth date and phone: a person decides.
    let (review, answer) = submit(
        &s,
        "snap-review",
        &registration::response("Zawadi", "Otieno", "1995-07-15", Some(phone)),
    )
    .await;
    assert_eq!(answer["outcome"], "review", "{answer}");
    assert!(
        s.search(&format!("QuestionnaireResponse?{}", by_intake(&review)))
            .await
            .is_empty()
    );
    let review_task = one(&s, &format!("Task?{}", by_intake(&review))).await;
    volatile.extend([
        (review.clone(), "[review intake]".to_owned()),
        (id_of(&review_task), "[review task]".to_owned()),
    ]);
    fhir_validator::assert_valid(
        "linked and review intakes",
        &[
            linked_response.clone(),
            linked_provenance.clone(),
            update_task.clone(),
            review_task.clone(),
        ],
    );

    let snapshots = [
        (
            "created",
            json!({"Patient": patient, "QuestionnaireResponse": response, "Provenance": provenance}),
        ),
        (
            "linked",
            json!({"QuestionnaireResponse": linked_response, "Provenance": linked_provenance,
                "Task": update_task}),
        ),
        ("review", json!({"Task": review_task})),
    ];
    for (name, resources) in snapshots {
        assert_snapshot("intake", name, &normalise(&resources, &volatile, REDACTED));
    }
}

#[tokio::test]
async fn an_intake_with_an_emergency_contact_and_a_weight_stores_the_resources_of_its_snapshot() {
    let s = IntakeServer::embedded().await;
    registration::import_extras(&s.client, &s.base).await;
    let (created, answer) = submit(
        &s,
        "snap-extras",
        &registration::response_with_extras(
            "Amani",
            "Otieno",
            "1995-07-15",
            Some("+254 700 000 001"),
            "Baraka Otieno",
        ),
    )
    .await;
    assert_eq!(answer["outcome"], "created", "{answer}");
    let patient = read(&s, answer["patient"].as_str().unwrap()).await;
    let response = one(
        &s,
        &format!("QuestionnaireResponse?identifier={SUBMISSION}|{created}"),
    )
    .await;
    let provenance = one(&s, &format!("Provenance?target={}", reference(&response))).await;
    let contact = one(
        &s,
        &format!("RelatedPerson?patient={}", reference(&patient)),
    )
    .await;
    let weight = one(&s, &format!("Observation?subject={}", reference(&patient))).await;
    let volatile = vec![
        (created.clone(), "[intake]".to_owned()),
        (id_of(&patient), "[patient]".to_owned()),
        (id_of(&response), "[response]".to_owned()),
        (id_of(&provenance), "[provenance]".to_owned()),
        (id_of(&contact), "[contact]".to_owned()),
        (id_of(&weight), "[weight]".to_owned()),
    ];
    fhir_validator::assert_valid(
        "intake with extras",
        &[contact.clone(), weight.clone(), provenance.clone()],
    );
    let resources = json!({"RelatedPerson": contact, "Observation": weight,
        "Provenance": provenance});
    assert_snapshot(
        "intake",
        "extras",
        &normalise(&resources, &volatile, REDACTED),
    );
}
