//! `POST /api/intakes` on the embedded store: each outcome (created, linked,
//! review), idempotency, exactly one Patient for concurrent submissions of the
//! same new patient, and a 4xx `OperationOutcome` (nothing stored) for every kind
//! of bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::intake_server::IntakeServer;
use common::{fhir_validator, registration};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A registration answered for this person.
fn intake(given: &str, family: &str, birth: &str, phone: &str) -> Value {
    registration::response(given, family, birth, Some(phone))
}

#[tokio::test]
async fn a_new_patient_gets_one_chart_with_the_response_and_its_provenance() {
    let s = IntakeServer::embedded().await;
    let (status, answer) = s
        .submit(
            "k-1",
            &intake("Amani", "Otieno", "1995-07-15", "+254 700 000 001"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["outcome"], "created");
    assert_eq!(answer["status"], "delivered");
    let patient_ref = answer["patient"].as_str().unwrap().to_owned();
    let intake_id = answer["intake"].as_str().unwrap().to_owned();

    let (status, patient) = s.get(&format!("/fhir/{patient_ref}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patient["name"][0]["family"], "Otieno");
    assert!(
        patient["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["system"] == "urn:intake:submission" && i["value"] == intake_id)
    );
    let responses = s
        .search(&format!("QuestionnaireResponse?subject={patient_ref}"))
        .await;
    assert_eq!(responses.len(), 1);
    let qr_ref = format!(
        "QuestionnaireResponse/{}",
        responses[0]["id"].as_str().unwrap()
    );
    let provenance = s.search(&format!("Provenance?target={qr_ref}")).await;
    assert_eq!(provenance.len(), 1);
    assert_eq!(
        provenance[0]["agent"][0]["who"]["display"],
        "Intake patient app"
    );
    // What was written is valid FHIR R4 by an outside validator, not only ours.
    fhir_validator::assert_valid(
        "intake",
        &[patient, responses[0].clone(), provenance[0].clone()],
    );

    let (status, again) = s.get(&format!("/api/intakes/{intake_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["patient"], patient_ref.as_str());
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_same_answer_and_writes_nothing() {
    let s = IntakeServer::embedded().await;
    let body = intake("Amani", "Otieno", "1995-07-15", "+254 700 000 001");
    let (first_status, first) = s.submit("same-key", &body).await;
    let (second_status, second) = s.submit("same-key", &body).await;
    assert_eq!(
        (first_status, second_status),
        (StatusCode::CREATED, StatusCode::OK)
    );
    assert_eq!(first, second);
    assert_eq!(s.search("Patient?family=otieno").await.len(), 1);
    assert_eq!(s.search("QuestionnaireResponse").await.len(), 1);
    // The same key for something else is refused.
    let (status, outcome) = s
        .submit(
            "same-key",
            &intake("Baraka", "Otieno", "1990-01-01", "+254 700 000 009"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(outcome["issue"][0]["expression"][0], "Idempotency-Key");
}

#[tokio::test]
async fn a_returning_patient_is_linked_and_changed_details_are_only_proposed() {
    let s = IntakeServer::embedded().await;
    let (_, first) = s
        .submit(
            "visit-1",
            &intake("Amani", "Otieno", "1995-07-15", "+254 700 000 001"),
        )
        .await;
    let patient_ref = first["patient"].as_str().unwrap().to_owned();
    let (status, second) = s
        .submit(
            "visit-2",
            &intake("Amani", "Otieno", "1995-07-15", "+254 711 111 111"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["outcome"], "linked");
    assert_eq!(second["patient"], patient_ref.as_str());
    assert_eq!(s.search("Patient?family=otieno").await.len(), 1);
    assert_eq!(
        s.search(&format!("QuestionnaireResponse?subject={patient_ref}"))
            .await
            .len(),
        2
    );
    // The chart keeps the old phone; the new one waits in a Task for staff.
    let (_, patient) = s.get(&format!("/fhir/{patient_ref}")).await;
    assert_eq!(patient["telecom"][0]["value"], "+254 700 000 001");
    let tasks = s.search(&format!("Task?focus={patient_ref}")).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["code"]["coding"][0]["code"], "demographics-update");
    assert_eq!(
        tasks[0]["contained"][0]["telecom"][0]["value"],
        "+254 711 111 111"
    );
}

#[tokio::test]
async fn a_doubtful_match_waits_for_review_and_touches_no_chart() {
    let s = IntakeServer::embedded().await;
    let (_, first) = s
        .submit(
            "a",
            &intake("Amani", "Otieno", "1995-07-15", "+254 700 000 001"),
        )
        .await;
    assert_eq!(first["outcome"], "created");
    // Same family, birth date and address, another given name: maybe a twin.
    let (status, second) = s
        .submit(
            "b",
            &intake("Zawadi", "Otieno", "1995-07-15", "+254 700 000 001"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["outcome"], "review");
    assert_eq!(second["patient"], Value::Null);
    assert_eq!(s.search("QuestionnaireResponse").await.len(), 1);
    let tasks = s.search("Task?status=requested").await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["code"]["coding"][0]["code"], "match-review");
    assert_eq!(
        tasks[0]["input"][0]["valueReference"]["reference"],
        first["patient"]
    );
}

#[tokio::test]
async fn fifty_concurrent_submissions_of_one_new_patient_make_one_chart() {
    let s = std::sync::Arc::new(IntakeServer::embedded().await);
    let body = intake("Imani", "Wanjiru", "2001-02-03", "+254 722 333 444");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let s = s.clone();
            let body = body.clone();
            tokio::spawn(async move { s.submit(&format!("concurrent-{i}"), &body).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        let (status, answer) = t.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        outcomes.push(answer["outcome"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        outcomes.iter().filter(|o| *o == "created").count(),
        1,
        "{outcomes:?}"
    );
    // Everyone else is linked to that chart once it exists.
    let mut patients = Vec::new();
    for _ in 0..50 {
        patients = s.search("Patient?family=wanjiru").await;
        if s.search("QuestionnaireResponse").await.len() == 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(patients.len(), 1);
    let subject = format!("Patient/{}", patients[0]["id"].as_str().unwrap());
    assert_eq!(
        s.search(&format!(
            "QuestionnaireResponse?subject={subject}&_count=100"
        ))
        .await
        .len(),
        50
    );
}

#[tokio::test]
async fn bad_input_is_a_4xx_outcome_and_stores_nothing() {
    let s = IntakeServer::embedded().await;
    let good = intake("Amani", "Otieno", "1995-07-15", "+254 700 000 001");
    let mut bad_date = good.clone();
    bad_date["item"][0]["item"][1]["answer"][0]["valueDate"] = json!("1995-02-30");
    let mut unknown_form = good.clone();
    unknown_form["questionnaire"] = json!("http://example.org/no-such-form");
    let mut disabled = good.clone();
    disabled["item"][0]["item"]
        .as_array_mut()
        .unwrap()
        .push(registration::answer(
            "no-such-item",
            registration::string("x"),
        ));
    let mut in_progress = good.clone();
    in_progress["status"] = json!("in-progress");
    // What, body, Idempotency-Key, expected status, the path an issue must name.
    type Case<'a> = (
        &'a str,
        String,
        Option<&'a str>,
        StatusCode,
        Option<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "malformed JSON",
            "{\"resourceType\": ".into(),
            Some("k"),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "not an object",
            "[1, 2]".into(),
            Some("k"),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            "wrong resourceType",
            json!({"resourceType": "Patient"}).to_string(),
            Some("k"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("resourceType"),
        ),
        (
            "no idempotency key",
            good.to_string(),
            None,
            StatusCode::BAD_REQUEST,
            Some("Idempotency-Key"),
        ),
        (
            "unknown questionnaire",
            unknown_form.to_string(),
            Some("k"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("QuestionnaireResponse.questionnaire"),
        ),
        (
            "invalid date",
            bad_date.to_string(),
            Some("k"),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            "an item the form does not have",
            disabled.to_string(),
            Some("k"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("no-such-item"),
        ),
        (
            "not completed",
            in_progress.to_string(),
            Some("k"),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("QuestionnaireResponse.status"),
        ),
        (
            "oversize",
            format!(
                "{{\"resourceType\": \"QuestionnaireResponse\", \"x\": \"{}\"}}",
                "a".repeat(300_000)
            ),
            Some("k"),
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
    ];
    for (what, body, key, expected, at) in cases {
        let mut request = s
            .client
            .post(format!("{}/api/intakes", s.base))
            .header("content-type", "application/fhir+json")
            .body(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), expected, "{what}");
        let outcome: Value = r.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{what}");
        if let Some(at) = at {
            let paths: Vec<&str> = outcome["issue"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|i| i["expression"][0].as_str())
                .collect();
            assert!(paths.contains(&at), "{what}: {outcome}");
        }
        assert!(
            !outcome.to_string().contains("Otieno"),
            "{what}: patient data in {outcome}"
        );
    }
    assert!(s.search("Patient").await.is_empty());
    assert!(s.search("QuestionnaireResponse").await.is_empty());
    assert!(s.search("Task").await.is_empty());
    // The key was not used up by the refusals.
    let (status, _) = s.submit("k", &good).await;
    assert_eq!(status, StatusCode::CREATED);
}

/// The one resource a search finds.
async fn only(s: &IntakeServer, query: &str) -> Value {
    let mut found = s.search(query).await;
    assert_eq!(found.len(), 1, "{query}: {found:?}");
    found.remove(0)
}

fn has_identifier(resource: &Value, system: &str, value: &str) -> bool {
    resource["identifier"].as_array().is_some_and(|ids| {
        ids.iter()
            .any(|i| i["system"] == system && i["value"] == value)
    })
}

#[tokio::test]
async fn an_emergency_contact_and_an_observation_extracted_are_delivered_with_the_patient() {
    let s = IntakeServer::embedded().await;
    registration::import_extras(&s.client, &s.base).await;
    let body = registration::response_with_extras(
        "Amani",
        "Otieno",
        "1995-07-15",
        Some("+254 700 000 001"),
        "Baraka Otieno",
    );
    let (status, answer) = s.submit("extras-1", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(
        (&answer["outcome"], &answer["status"]),
        (&json!("created"), &json!("delivered"))
    );
    let patient = answer["patient"].as_str().unwrap().to_owned();
    let intake = answer["intake"].as_str().unwrap().to_owned();

    // Both in the store, pointing at the new chart, each marked as the intake's.
    let contact = only(&s, &format!("RelatedPerson?patient={patient}")).await;
    assert_eq!(contact["name"][0]["text"], "Baraka Otieno");
    let weight = only(&s, &format!("Observation?subject={patient}")).await;
    assert_eq!(weight["valueQuantity"]["value"], 64.5);
    assert_eq!(weight["status"], "final");
    let mut marks: Vec<String> = [&contact, &weight]
        .iter()
        .flat_map(|r| r["identifier"].as_array().unwrap().clone())
        .filter(|i| i["system"] == "urn:intake:extracted")
        .map(|i| i["value"].as_str().unwrap().to_owned())
        .collect();
    marks.sort();
    assert_eq!(marks, [format!("{intake}/1"), format!("{intake}/2")]);
    // The Provenance names them too.
    let response = only(
        &s,
        &format!("QuestionnaireResponse?identifier=urn:intake:submission|{intake}"),
    )
    .await;
    let provenance = only(
        &s,
        &format!(
            "Provenance?target=QuestionnaireResponse/{}",
            response["id"].as_str().unwrap()
        ),
    )
    .await;
    let targets: Vec<&str> = provenance["target"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reference"].as_str().unwrap())
        .collect();
    for r in [&contact, &weight] {
        let reference = format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        );
        assert!(targets.contains(&reference.as_str()), "{targets:?}");
    }
    fhir_validator::assert_valid("extras", &[contact.clone(), weight.clone(), provenance]);

    // The same submission again (a retry): nothing more.
    let (status, again) = s.submit("extras-1", &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        s.search(&format!("RelatedPerson?patient={patient}"))
            .await
            .len(),
        1
    );
    assert_eq!(
        s.search(&format!("Observation?subject={patient}"))
            .await
            .len(),
        1
    );

    // A returning visit, linked: its contact and weight go on the existing chart.
    let (status, linked) = s
        .submit(
            "extras-2",
            &registration::response_with_extras(
                "Amani",
                "Otieno",
                "1995-07-15",
                Some("+254 700 000 001"),
                "Neema Otieno",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{linked}");
    assert_eq!(linked["outcome"], "linked", "{linked}");
    assert_eq!(linked["patient"], patient.as_str());
    let second = linked["intake"].as_str().unwrap();
    let contacts = s.search(&format!("RelatedPerson?patient={patient}")).await;
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    assert!(
        contacts
            .iter()
            .any(|c| c["name"][0]["text"] == "Neema Otieno"
                && has_identifier(c, "urn:intake:extracted", &format!("{second}/1")))
    );
    assert_eq!(
        s.search(&format!("Observation?subject={patient}"))
            .await
            .len(),
        2
    );
    assert_eq!(s.search("Patient?family=otieno").await.len(), 1);
}
