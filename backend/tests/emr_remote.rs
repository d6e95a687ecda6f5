//! The remote EMR client (`emr/remote.rs`) against a real FHIR R4 server: the
//! Medplum peer (`tests/peers/medplum`), with its validation, auth and faults.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use backend::emr::remote::{MAX_WAIT, Remote, RemoteArgs};
use backend::emr::{Emr, EmrError};
use backend::intake::SUBMISSION_SYSTEM;
use common::medplum::{Es384Key, MedplumPeer, PeerOptions};
use serde_json::{Value, json};

fn args(peer: &MedplumPeer) -> RemoteArgs {
    RemoteArgs {
        emr_url: Some(peer.base_url()),
        // Generous: two cores shared with builds.
        emr_timeout_ms: Some(15_000),
        ..RemoteArgs::default()
    }
}

fn remote(args: &RemoteArgs) -> Remote {
    Remote::from_args(args, matching::Config::default())
        .unwrap()
        .expect("a URL makes a remote EMR")
}

fn jane() -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{ "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345" }],
        "name": [{ "family": "Chalmers", "given": ["Jane", "Ann"] }],
        "gender": "female",
        "birthDate": "1974-12-25",
        "telecom": [
            { "system": "phone", "value": "(03) 5555 6473", "use": "mobile" },
            { "system": "email", "value": "jane@example.org" }
        ],
        "address": [{ "line": ["534 Erewhon St"], "city": "Springfield", "postalCode": "3999" }]
    })
}

fn person(given: &str, family: &str, birth: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "name": [{ "family": family, "given": [given] }],
        "birthDate": birth,
    })
}

async fn raw_search(peer: &MedplumPeer, query: &str) -> Value {
    reqwest::get(format!("{}/{query}", peer.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn count(peer: &MedplumPeer, resource_type: &str) -> u64 {
    raw_search(peer, &format!("{resource_type}?_summary=count")).await["total"]
        .as_u64()
        .unwrap()
}

fn unavailable(result: Result<impl std::fmt::Debug, EmrError>) -> (String, Option<u64>) {
    match result {
        Err(EmrError::Unavailable {
            reason,
            retry_after_ms,
        }) => (reason, retry_after_ms),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn patients_are_created_once_read_searched_and_updated_under_the_servers_versions() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let emr = remote(&args(&peer));
    assert_eq!(emr.kind(), "remote");

    let condition = "identifier=urn:oid:1.2.36.146.595.217.0.1|12345";
    let created = emr.create_patient(jane(), Some(condition)).await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let again = emr.create_patient(jane(), Some(condition)).await.unwrap();
    assert_eq!(again["id"], id.as_str());
    assert_eq!(count(&peer, "Patient").await, 1);

    let read = emr.read_patient(&id).await.unwrap().unwrap();
    assert_eq!(read, created);
    assert_eq!(emr.read_patient("no-such-patient").await.unwrap(), None);
    assert_eq!(emr.read_patient("../metadata").await.unwrap(), None);

    for query in [
        "family=Chalmers&birthdate=1974-12-25",
        "identifier=urn:oid:1.2.36.146.595.217.0.1|12345",
        "email=jane%40example.org",
    ] {
        let found = emr.search_patients(query).await.unwrap();
        assert_eq!(found.len(), 1, "{query}");
        assert_eq!(found[0]["id"], id.as_str(), "{query}");
    }
    assert!(
        emr.search_patients("family=Nobody")
            .await
            .unwrap()
            .is_empty()
    );
    // Medplum's versions are UUIDs: If-Match takes them as written.
    let version = created["meta"]["versionId"].as_str().unwrap().to_owned();
    let mut changed = created.clone();
    changed["gender"] = json!("other");
    let updated = emr
        .update_patient(&id, changed.clone(), Some(&version))
        .await
        .unwrap();
    assert_eq!(updated["gender"], "other");
    assert_ne!(updated["meta"]["versionId"], version.as_str());
    assert!(matches!(
        emr.update_patient(&id, changed.clone(), Some(&version))
            .await,
        Err(EmrError::PreconditionFailed)
    ));
    let unconditional = emr.update_patient(&id, changed, None).await.unwrap();
    assert_eq!(unconditional["id"], id.as_str());
}

#[tokio::test]
async fn a_plain_create_makes_a_patient_each_time_and_a_condition_matching_two_is_a_failed_precondition()
 {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let emr = remote(&args(&peer));
    for _ in 0..2 {
        emr.create_patient(jane(), None).await.unwrap();
    }
    assert_eq!(count(&peer, "Patient").await, 2);
    let twice = emr
        .create_patient(
            jane(),
            Some("identifier=urn:oid:1.2.36.146.595.217.0.1|12345"),
        )
        .await;
    assert!(
        matches!(twice, Err(EmrError::PreconditionFailed)),
        "{twice:?}"
    );
}

/// A delivery Bundle as `intake::delivery_bundle` builds it for a new patient:
/// conditional creates on the submission identifier, `_tag` for the Provenance,
/// `urn:uuid` references.
fn delivery_bundle(id: &str, patient: &Value) -> Value {
    let condition = format!("identifier={SUBMISSION_SYSTEM}|{id}");
    let patient_url = "urn:uuid:7f0b7a3e-3d1c-4f43-9a44-6f4f1b2c0001";
    let response_url = "urn:uuid:7f0b7a3e-3d1c-4f43-9a44-6f4f1b2c0002";
    let mut p = patient.clone();
    p["identifier"]
        .as_array_mut()
        .unwrap()
        .push(json!({"system": SUBMISSION_SYSTEM, "value": id}));
    json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {
            "fullUrl": patient_url,
            "resource": p,
            "request": {"method": "POST", "url": "Patient", "ifNoneExist": condition},
        },
        {
            "fullUrl": response_url,
            "resource": {
                "resourceType": "QuestionnaireResponse",
                "identifier": {"system": SUBMISSION_SYSTEM, "value": id},
                "questionnaire": "http://example.org/Questionnaire/intake|1",
                "status": "completed",
                "authored": "2026-01-02T10:00:00Z",
                "subject": {"reference": patient_url},
                "item": [
                    {"linkId": "reason", "text": "Reason for visit", "answer": [{"valueString": "Check-up"}]},
                    {"linkId": "smoker", "answer": [{"valueBoolean": false}]},
                    {"linkId": "since", "answer": [{"valueDate": "2025-11-01"}]},
                ],
            },
            "request": {"method": "POST", "url": "QuestionnaireResponse", "ifNoneExist": condition},
        },
        {
            "resource": {
                "resourceType": "Provenance",
                "meta": {"tag": [{"system": SUBMISSION_SYSTEM, "code": id}]},
                "target": [{"reference": response_url}, {"reference": patient_url}],
                "recorded": "2026-01-02T10:00:01Z",
                "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}]},
                "agent": [{
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author"}]},
                    "who": {"display": "kiosk 3"},
                }],
            },
            "request": {"method": "POST", "url": "Provenance", "ifNoneExist": format!("_tag={SUBMISSION_SYSTEM}|{id}")},
        },
    ]})
}

#[tokio::test]
async fn an_intake_delivery_passes_medplums_validation_and_sent_twice_creates_nothing_more() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let emr = remote(&args(&peer));
    let bundle = delivery_bundle("3f6e2c1a-8b0d-4c55-9e61-2f1d7a9b4c10", &jane());

    let first = emr.transaction(bundle.clone()).await.unwrap();
    assert_eq!(first["type"], "transaction-response");
    let entries = first["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for entry in entries {
        assert_eq!(entry["response"]["status"], "201", "{}", entry["response"]);
    }
    // Medplum answers a relative location without the version: `Patient/{id}`.
    let location = entries[0]["response"]["location"].as_str().unwrap();
    let patient_id = location.strip_prefix("Patient/").unwrap();

    let second = emr.transaction(bundle).await.unwrap();
    for (a, b) in first["entry"]
        .as_array()
        .unwrap()
        .iter()
        .zip(second["entry"].as_array().unwrap())
    {
        assert_eq!(b["response"]["status"], "200");
        assert_eq!(a["response"]["location"], b["response"]["location"]);
    }
    for kind in ["Patient", "QuestionnaireResponse", "Provenance"] {
        assert_eq!(count(&peer, kind).await, 1, "{kind}");
    }

    // The response and the Provenance point at the Patient written with them.
    let responses = raw_search(&peer, "QuestionnaireResponse").await;
    assert_eq!(
        responses["entry"][0]["resource"]["subject"]["reference"],
        location
    );
    let provenance = raw_search(&peer, "Provenance").await;
    assert_eq!(
        provenance["entry"][0]["resource"]["target"][1]["reference"],
        location
    );
    // The outbox finds the Patient of an earlier intake by its identifier.
    let found = emr
        .search_patients(&format!(
            "identifier={SUBMISSION_SYSTEM}|3f6e2c1a-8b0d-4c55-9e61-2f1d7a9b4c10"
        ))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], patient_id);
}

#[tokio::test]
async fn a_refused_write_is_rejected_with_paths_and_codes_but_not_the_values_sent() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let emr = remote(&args(&peer));
    let mut patient = jane();
    patient["name"][0]["family"] = json!("Zebedee-Quixote");
    patient["birthDate"] = json!("1974-13-01");
    let refused = emr.create_patient(patient.clone(), None).await;
    let text = format!("{refused:?} {}", refused.as_ref().err().unwrap());
    let Err(EmrError::Rejected { status, issues }) = refused else {
        panic!("{text}");
    };
    assert_eq!(status, 400);
    assert!(
        issues
            .iter()
            .any(|i| i.expression.as_deref() == Some("Patient.birthDate")),
        "{issues:?}"
    );
    for value in ["1974-13-01", "Zebedee", "Erewhon", "5555"] {
        assert!(!text.contains(value), "{value} in {text}");
    }

    // A transaction with one bad entry writes nothing.
    let mut bundle = delivery_bundle("5e0c9d2b-1a7f-4e3b-8c6d-9b2a0f1e3d40", &patient);
    bundle["entry"][0]["resource"]["birthDate"] = json!("1974-12-25");
    bundle["entry"][1]["resource"]["status"] = json!("done");
    let refused = emr.transaction(bundle).await;
    assert!(
        matches!(&refused, Err(EmrError::Rejected { status: 400, issues })
            if issues.iter().any(|i| i.expression.as_deref() == Some("QuestionnaireResponse.status"))),
        "{refused:?}"
    );
    assert!(!format!("{refused:?}").contains("done"));
    for kind in ["Patient", "QuestionnaireResponse", "Provenance"] {
        assert_eq!(count(&peer, kind).await, 0, "{kind}");
    }
}

#[tokio::test]
async fn a_questionnaire_is_read_by_its_canonical_url_and_version() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let emr = remote(&args(&peer));
    let url = "http://example.org/Questionnaire/intake";
    for version in ["1", "2"] {
        let res = reqwest::Client::new()
            .post(format!("{}/Questionnaire", peer.base_url()))
            .header("Content-Type", "application/fhir+json")
            .body(
                json!({"resourceType": "Questionnaire", "url": url, "version": version, "status": "active"})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let any = emr.read_questionnaire(url).await.unwrap().unwrap();
    assert_eq!(any["url"], url);
    let second = emr
        .read_questionnaire(&format!("{url}|2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second["version"], "2");
    assert_eq!(
        emr.read_questionnaire("http://example.org/Questionnaire/none")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        emr.read_questionnaire(&format!("{url}|3")).await.unwrap(),
        None
    );
}

async fn store(emr: &Remote, patients: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for p in patients {
        let created = emr.create_patient(p.clone(), None).await.unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    ids
}

#[tokio::test]
async fn matching_finds_a_stored_patient_despite_a_typo_and_scores_a_stranger_below_possible() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let emr = remote(&args(&peer));
    let ids = store(
        &emr,
        &[
            jane(),
            person("John", "Chalmers", "1970-02-03"),
            person("Jane", "Chambers", "1990-06-07"),
            person("Oliver", "Twist", "1974-12-25"),
            person("Mary", "Shelley", "1982-08-30"),
        ],
    )
    .await;
    let options = matching::MatchOptions::default();

    // A family name with a typo; no identifier or e-mail to lean on.
    let mut query = backend::fhir::patient::to_record(&jane());
    query.family = Some("Chalmbers".into());
    query.identifiers.clear();
    query.emails.clear();
    let found = emr.find_matches(&query, &options).await.unwrap();
    let top = &found.first().expect("Jane is found").candidate;
    assert_eq!(top.id, ids[0]);
    assert_eq!(top.grade, matching::Grade::Certain, "{top:?}");
    assert_eq!(found[0].resource["id"], ids[0].as_str());
    // The prior is that of the EMR's five patients, not of the few candidates:
    // odds of 1 to 4 (a model that has learned nothing yet takes every query for
    // a returning patient).
    assert!(
        (top.explanation.prior - (1.0f64 / 4.0).log2()).abs() < 1e-9,
        "{top:?}"
    );

    // No name: the phone number (as stored) and the birth date.
    let by_phone = matching::PatientRecord {
        birth_date: Some("1974-12-25".into()),
        phones: vec!["(03) 5555 6473".into()],
        ..matching::PatientRecord::default()
    };
    let found = emr.find_matches(&by_phone, &options).await.unwrap();
    assert_eq!(found[0].candidate.id, ids[0]);

    // A stranger who shares Jane's postal code and initial: brought by that
    // search, scored below possible.
    let stranger = backend::fhir::patient::to_record(&json!({
        "resourceType": "Patient",
        "name": [{"family": "Okonkwo", "given": ["Jolene"]}],
        "birthDate": "2001-04-05",
        "telecom": [{"system": "phone", "value": "+44 20 7946 0000"}],
        "address": [{"postalCode": "3999"}]
    }));
    assert!(
        emr.find_matches(&stranger, &options)
            .await
            .unwrap()
            .is_empty()
    );
    let everyone = Remote::from_args(
        &args(&peer),
        matching::Config {
            thresholds: matching::Thresholds {
                possible: -1_000.0,
                ..matching::Thresholds::default()
            },
            ..matching::Config::default()
        },
    )
    .unwrap()
    .unwrap();
    // Another given name and another birth date: another person, never
    // returned (the household rule), or at most scored below possible.
    let seen = everyone.find_matches(&stranger, &options).await.unwrap();
    if let Some(jane) = seen.iter().find(|f| f.candidate.id == ids[0]) {
        assert!(jane.candidate.log_odds < matching::Thresholds::default().possible);
    }
}

#[tokio::test]
async fn a_large_configured_population_asks_for_more_evidence() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let small = remote(&args(&peer));
    let large = remote(&RemoteArgs {
        emr_patients: Some(50_000_000),
        ..args(&peer)
    });
    store(&small, &[person("Jane", "Chalmers", "1974-12-25")]).await;
    let query = backend::fhir::patient::to_record(&person("Jane", "Chalmers", "1974-12-25"));
    let options = matching::MatchOptions::default();
    let a = &small.find_matches(&query, &options).await.unwrap()[0].candidate;
    let b = &large.find_matches(&query, &options).await.unwrap()[0].candidate;
    // Odds of one patient in the population (a model that has learned nothing
    // yet takes every query for a returning patient): 1 to 1 of two, 1 to
    // 49,999,999 of fifty million.
    assert!(a.explanation.prior.abs() < 1e-9, "{a:?}");
    assert!(
        (b.explanation.prior + 49_999_999f64.log2()).abs() < 1e-6,
        "{b:?}"
    );
    assert!(b.log_odds < a.log_odds - 20.0);
    assert_eq!(a.grade, matching::Grade::Certain);
    assert_ne!(b.grade, matching::Grade::Certain);
}

#[tokio::test]
async fn a_pending_new_patient_is_a_candidate_until_released() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let emr = remote(&args(&peer));
    let record = backend::fhir::patient::to_record(&jane());
    let options = matching::MatchOptions::default();
    assert!(
        emr.find_matches(&record, &options)
            .await
            .unwrap()
            .is_empty()
    );

    emr.hold_pending("intake-1", &record);
    // Held records are patient data: not in the client's Debug.
    let debug = format!("{emr:?}");
    assert!(
        debug.contains("pending: 1") && !debug.contains("Chalmers"),
        "{debug}"
    );
    let found = emr.find_matches(&record, &options).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].candidate.id, "intake-1");
    assert_eq!(found[0].resource, Value::Null);

    emr.release_pending("intake-1");
    assert!(
        emr.find_matches(&record, &options)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_static_bearer_token_is_sent_and_a_wrong_one_is_a_credentials_problem() {
    let peer = MedplumPeer::start(&PeerOptions::default().bearer_token("s3cret"));
    let good = remote(&RemoteArgs {
        emr_token: Some("s3cret".into()),
        ..args(&peer)
    });
    let created = good.create_patient(jane(), None).await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(good.read_patient(id).await.unwrap().is_some());

    for token in [Some("wrong"), None] {
        let bad = remote(&RemoteArgs {
            emr_token: token.map(str::to_owned),
            ..args(&peer)
        });
        let (reason, _) = unavailable(bad.read_patient(id).await);
        assert!(reason.contains("credentials (401)"), "{reason}");
    }
    // The token never shows in the client's Debug.
    assert!(!format!("{good:?}").contains("s3cret"));
}

fn smart_args(peer: &MedplumPeer, client_id: &str, key: &Path) -> RemoteArgs {
    RemoteArgs {
        emr_client_id: Some(client_id.into()),
        emr_private_key: Some(key.to_owned()),
        ..args(peer)
    }
}

#[tokio::test]
async fn a_smart_es384_token_is_fetched_once_and_reused_across_calls() {
    let key = Es384Key::generate();
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private.pem");
    std::fs::write(&private, key.private_key_pem()).unwrap();
    let peer = MedplumPeer::start(&PeerOptions::default().smart(&key.public_key_path(), "intake"));
    let emr = remote(&smart_args(&peer, "intake", &private));

    let created = emr.create_patient(jane(), None).await.unwrap();
    let id = created["id"].as_str().unwrap();
    let calls = (0..10).map(|_| emr.read_patient(id));
    for read in futures_util::future::join_all(calls).await {
        assert!(read.unwrap().is_some());
    }
    emr.find_matches(
        &backend::fhir::patient::to_record(&jane()),
        &matching::MatchOptions::default(),
    )
    .await
    .unwrap();
    let stats = peer.stats().await;
    assert_eq!(stats["tokensIssued"], 1, "{stats}");
    assert_eq!(stats["tokenRequests"], 1, "{stats}");
    assert!(!format!("{emr:?}").contains("PRIVATE"));

    // Another client id, or another key: the token endpoint says why, the client
    // says it is a credentials problem (worth retrying once fixed).
    let other = Es384Key::generate();
    let other_private = dir.path().join("other.pem");
    std::fs::write(&other_private, other.private_key_pem()).unwrap();
    for args in [
        smart_args(&peer, "someone-else", &private),
        smart_args(&peer, "intake", &other_private),
    ] {
        let (reason, _) = unavailable(remote(&args).read_patient(id).await);
        assert!(reason.contains("401: invalid_client"), "{reason}");
    }
}

#[tokio::test]
async fn a_smart_token_is_renewed_when_it_expires() {
    let key = Es384Key::generate();
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private.pem");
    std::fs::write(&private, key.private_key_pem()).unwrap();
    let peer = MedplumPeer::start(
        &PeerOptions::default()
            .smart(&key.public_key_path(), "intake")
            .token_ttl(2),
    );
    let emr = remote(&RemoteArgs {
        emr_token_url: Some(peer.token_url()),
        emr_scope: Some("system/Patient.crus".into()),
        ..smart_args(&peer, "intake", &private)
    });
    let created = emr.create_patient(jane(), None).await.unwrap();
    let id = created["id"].as_str().unwrap();
    // Every read succeeds while tokens come and go (each lasts two seconds).
    let started = Instant::now();
    while peer.stats().await["tokensIssued"].as_u64().unwrap() < 3 {
        assert!(started.elapsed() < Duration::from_secs(60), "no renewal");
        assert!(emr.read_patient(id).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = peer.stats().await;
    assert_eq!(stats["tokenRequests"], stats["tokensIssued"], "{stats}");
}

/// An RSA key made by Node (the peer's runtime): the private key as PKCS#8 PEM,
/// the public one as a JWKS with `kid`.
fn rsa_key(dir: &Path, kid: &str) {
    let script = "const c = require('crypto'); const fs = require('fs');\
        const [dir, kid] = process.argv.slice(1);\
        const { privateKey, publicKey } = c.generateKeyPairSync('rsa', { modulusLength: 2048 });\
        fs.writeFileSync(dir + '/rsa.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }));\
        const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS384' };\
        fs.writeFileSync(dir + '/jwks.json', JSON.stringify({ keys: [jwk] }));";
    let status =
        std::process::Command::new(std::env::var_os("NODE").unwrap_or_else(|| "node".into()))
            .args(["-e", script])
            .arg(dir)
            .arg(kid)
            .status()
            .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn a_smart_rs384_assertion_names_its_key_id() {
    let dir = tempfile::tempdir().unwrap();
    rsa_key(dir.path(), "intake-rsa-1");
    let peer =
        MedplumPeer::start(&PeerOptions::default().smart(&dir.path().join("jwks.json"), "intake"));
    let rsa = dir.path().join("rsa.pem");
    let emr = remote(&RemoteArgs {
        emr_key_id: Some("intake-rsa-1".into()),
        ..smart_args(&peer, "intake", &rsa)
    });
    emr.create_patient(jane(), None).await.unwrap();
    assert_eq!(peer.stats().await["tokensIssued"], 1);

    let wrong_kid = remote(&RemoteArgs {
        emr_key_id: Some("intake-rsa-2".into()),
        ..smart_args(&peer, "intake", &rsa)
    });
    let (reason, _) = unavailable(wrong_kid.read_patient("x1").await);
    assert!(reason.contains("invalid_client"), "{reason}");
}

#[tokio::test]
async fn a_503_with_retry_after_is_waited_out_then_the_request_succeeds() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let emr = remote(&args(&peer));
    let created = emr.create_patient(jane(), None).await.unwrap();
    let id = created["id"].as_str().unwrap();

    peer.fail_next(503, 2, Some(1)).await;
    let started = Instant::now();
    assert!(emr.read_patient(id).await.unwrap().is_some());
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(peer.stats().await["requests"]["GET"], 3);

    // An answer too long to wait for here is the outbox's to honour.
    peer.fail_next(503, 1, Some(120)).await;
    let (reason, retry_after) = unavailable(emr.read_patient(id).await);
    assert_eq!(retry_after, Some(120_000));
    assert!(reason.contains("503"), "{reason}");
    assert!(Duration::from_secs(120) > MAX_WAIT);
    assert_eq!(peer.stats().await["requests"]["GET"], 4);
    // 429 is waited out the same way.
    peer.fail_next(429, 1, Some(1)).await;
    assert!(emr.read_patient(id).await.unwrap().is_some());
}

#[tokio::test]
async fn failures_that_persist_end_in_unavailable_and_a_plain_create_is_not_repeated_after_a_500() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let emr = remote(&args(&peer));

    peer.fail_next(500, 10, None).await;
    let (reason, retry_after) = unavailable(emr.read_patient("x1").await);
    assert!(reason.contains("500"), "{reason}");
    assert_eq!(retry_after, None);
    assert_eq!(peer.stats().await["requests"]["GET"], 3);

    // The server may have created it before failing: a retry could make two.
    unavailable(emr.create_patient(jane(), None).await);
    assert_eq!(peer.stats().await["requests"]["POST"], 1);
    // A conditional create is safe to repeat.
    unavailable(emr.create_patient(jane(), Some("identifier=urn:x|1")).await);
    assert_eq!(peer.stats().await["requests"]["POST"], 4);
}

#[tokio::test]
async fn a_hung_server_is_unavailable_after_the_timeout_and_usable_once_it_answers_again() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let emr = remote(&RemoteArgs {
        emr_timeout_ms: Some(500),
        ..args(&peer)
    });
    // Warm up: the first request may be slow while node compiles its handlers.
    let _ = emr.read_patient("x1").await;
    peer.pause();
    let started = Instant::now();
    let (reason, _) = unavailable(emr.read_patient("x1").await);
    let took = started.elapsed();
    peer.resume();
    assert!(reason.contains("no answer within 500 ms"), "{reason}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "{took:?}"
    );

    let emr = remote(&args(&peer));
    emr.create_patient(jane(), None).await.unwrap();
}

#[tokio::test]
async fn nobody_listening_is_unavailable() {
    let emr = remote(&RemoteArgs {
        emr_url: Some("http://127.0.0.1:9/fhir".into()),
        ..RemoteArgs::default()
    });
    let (reason, _) = unavailable(emr.read_patient("x1").await);
    assert!(reason.contains("could not connect"), "{reason}");
}

#[tokio::test]
async fn settings_that_make_no_sense_are_refused_at_start() {
    let config = matching::Config::default;
    assert!(
        Remote::from_args(&RemoteArgs::default(), config())
            .unwrap()
            .is_none()
    );
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, Es384Key::generate().private_key_pem()).unwrap();
    let sec1 = dir.path().join("sec1.pem");
    std::fs::write(
        &sec1,
        "-----BEGIN EC PRIVATE KEY-----\nAAEC\n-----END EC PRIVATE KEY-----\n",
    )
    .unwrap();
    let url = || Some("https://emr.example.org/fhir/R4".to_owned());
    let ok = RemoteArgs {
        emr_url: url(),
        emr_client_id: Some("intake".into()),
        emr_private_key: Some(key.clone()),
        ..RemoteArgs::default()
    };
    assert!(Remote::from_args(&ok, config()).unwrap().is_some());
    for (args, says) in [
        (
            RemoteArgs {
                emr_token: Some("t".into()),
                ..RemoteArgs::default()
            },
            "need INTAKE_EMR_URL",
        ),
        (
            RemoteArgs {
                emr_url: Some("emr.example.org".into()),
                ..RemoteArgs::default()
            },
            "not a URL",
        ),
        (
            RemoteArgs {
                emr_token: Some("t".into()),
                ..ok.clone()
            },
            "static token",
        ),
        (
            RemoteArgs {
                emr_private_key: None,
                ..ok.clone()
            },
            "both",
        ),
        (
            RemoteArgs {
                emr_url: url(),
                emr_scope: Some("system/*.rs".into()),
                ..RemoteArgs::default()
            },
            "SMART",
        ),
        (
            RemoteArgs {
                emr_private_key: Some(dir.path().join("missing.pem")),
                ..ok.clone()
            },
            "reading INTAKE_EMR_PRIVATE_KEY",
        ),
        (
            RemoteArgs {
                emr_private_key: Some(sec1),
                ..ok.clone()
            },
            "SEC1",
        ),
        (
            RemoteArgs {
                emr_timeout_ms: Some(0),
                ..ok.clone()
            },
            "TIMEOUT",
        ),
    ] {
        let e = Remote::from_args(&args, config())
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            e.as_deref().is_some_and(|e| e.contains(says)),
            "{args:?}: {e:?}"
        );
    }
}

/// What the stub EMR below saw.
#[derive(Debug, Default)]
struct Seen {
    tokens_issued: u32,
    authorizations: Vec<String>,
    queries: Vec<String>,
}

/// A stub EMR for what the Medplum peer cannot do: refuse `POST _search` (405),
/// and refuse a token it issued (401) as a revoked one would be. SMART tokens are
/// `t1`, `t2`…; `t1` is refused.
async fn stub_emr() -> (String, std::sync::Arc<std::sync::Mutex<Seen>>) {
    use axum::extract::{Path as UrlPath, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};

    type Shared = std::sync::Arc<std::sync::Mutex<Seen>>;
    let seen: Shared = Shared::default();
    let token = |State(seen): State<Shared>| async move {
        let mut seen = seen.lock().unwrap();
        seen.tokens_issued += 1;
        axum::Json(
            json!({"access_token": format!("t{}", seen.tokens_issued), "token_type": "bearer", "expires_in": 3600}),
        )
    };
    let read = |State(seen): State<Shared>, UrlPath(id): UrlPath<String>, headers: HeaderMap| async move {
        let auth = headers["authorization"].to_str().unwrap().to_owned();
        seen.lock().unwrap().authorizations.push(auth.clone());
        if auth == "Bearer t1" {
            return (StatusCode::UNAUTHORIZED, axum::Json(json!({})));
        }
        (
            StatusCode::OK,
            axum::Json(json!({"resourceType": "Patient", "id": id})),
        )
    };
    let search = |State(seen): State<Shared>, RawQuery(query): RawQuery| async move {
        seen.lock().unwrap().queries.push(query.unwrap_or_default());
        axum::Json(
            json!({"resourceType": "Bundle", "type": "searchset", "entry": [
                {"search": {"mode": "match"}, "resource": {"resourceType": "Patient", "id": "p1"}},
                {"search": {"mode": "include"}, "resource": {"resourceType": "Organization", "id": "o1"}},
            ]}),
        )
    };
    let app = axum::Router::new()
        .route("/oauth2/token", post(token))
        .route("/fhir/Patient/{id}", get(read))
        .route(
            "/fhir/Patient/_search",
            post(|| async { StatusCode::METHOD_NOT_ALLOWED }),
        )
        .route("/fhir/Patient", get(search))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, seen)
}

#[tokio::test]
async fn a_revoked_smart_token_is_replaced_once_and_post_search_falls_back_to_get() {
    let (origin, seen) = stub_emr().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, Es384Key::generate().private_key_pem()).unwrap();
    let emr = remote(&RemoteArgs {
        emr_url: Some(format!("{origin}/fhir/")),
        emr_client_id: Some("intake".into()),
        emr_private_key: Some(key),
        emr_token_url: Some(format!("{origin}/oauth2/token")),
        ..RemoteArgs::default()
    });

    let read = emr.read_patient("p1").await.unwrap().unwrap();
    assert_eq!(read["id"], "p1");
    assert!(emr.read_patient("p2").await.unwrap().is_some());
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.tokens_issued, 2);
        assert_eq!(seen.authorizations, ["Bearer t1", "Bearer t2", "Bearer t2"]);
    }

    for _ in 0..2 {
        let found = emr
            .search_patients("family=O%27Brien&birthdate=1974-12-25")
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "included resources are not results");
        assert_eq!(found[0]["id"], "p1");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.queries, ["family=O%27Brien&birthdate=1974-12-25"; 2],
        "GET after the first 405, and from then on"
    );
}

/// `$populate` with a remote EMR: the patient and the form's `x-fhir-query`
/// searches are the EMR's (Medplum's), through the remote client.
#[tokio::test]
async fn populate_runs_its_queries_on_the_remote_emr() {
    let peer = MedplumPeer::start(&PeerOptions::default());
    let http = reqwest::Client::new();
    let post = |resource: Value| {
        let http = http.clone();
        let url = format!(
            "{}/{}",
            peer.base_url(),
            resource["resourceType"].as_str().unwrap()
        );
        async move {
            let r = http
                .post(url)
                .header("content-type", "application/fhir+json")
                .body(resource.to_string())
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let jane = post(jane()).await;
    for family in ["Lopez", "Vega"] {
        post(json!({"resourceType": "RelatedPerson", "patient": {"reference": format!("Patient/{jane}")},
            "name": [{"family": family}]}))
        .await;
    }
    let app = common::intake_server::IntakeServer::remote(&peer, |_| {}).await;
    let form = |query: &str| {
        json!({"resourceType": "Questionnaire", "status": "active",
        "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-launchContext",
            "extension": [{"url": "name", "valueCoding": {"system": "http://hl7.org/fhir/uv/sdc/CodeSystem/launchContext", "code": "patient"}},
                {"url": "type", "valueCode": "Patient"}]}],
        "item": [
            {"linkId": "family", "text": "Family name", "type": "string",
             "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression",
                "valueExpression": {"language": "text/fhirpath", "expression": "%patient.name.first().family"}}]},
            {"linkId": "contacts", "text": "Contacts", "type": "group", "repeats": true,
             "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-itemPopulationContext",
                "valueExpression": {"name": "contact", "language": "application/x-fhir-query", "expression": query}}],
             "item": [{"linkId": "contact-name", "text": "Name", "type": "string",
                "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression",
                    "valueExpression": {"language": "text/fhirpath", "expression": "%contact.name.first().family"}}]}]}
        ]})
    };
    let populate = |query: &str| {
        let (client, base, form) = (app.client.clone(), app.base.clone(), form(query));
        let jane = jane.clone();
        async move {
            let put = client
                .put(format!("{base}/fhir/Questionnaire/contacts"))
                .header("content-type", "application/fhir+json")
                .body(form.to_string())
                .send()
                .await
                .unwrap();
            assert!(put.status().is_success(), "{}", put.status());
            let r = client
                .post(format!("{base}/fhir/Questionnaire/contacts/$populate"))
                .header("content-type", "application/fhir+json")
                .body(
                    json!({"resourceType": "Parameters", "parameter": [
                        {"name": "subject", "valueReference": {"reference": format!("Patient/{jane}")}}]})
                    .to_string(),
                )
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, answer) = populate("RelatedPerson?patient=Patient/{{%patient.id}}").await;
    assert_eq!(status, 200, "{answer}");
    let items = answer["parameter"][0]["resource"]["item"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(items[0]["answer"][0]["valueString"], "Chalmers", "{answer}");
    let mut contacts: Vec<String> = items
        .iter()
        .filter(|i| i["linkId"] == "contacts")
        .map(|g| {
            g["item"][0]["answer"][0]["valueString"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    contacts.sort();
    assert_eq!(contacts, ["Lopez", "Vega"], "{answer}");
    // A search the EMR refuses is a 422 naming the query, not an empty group.
    let (status, outcome) = populate("RelatedPerson?shoe-size=9").await;
    assert_eq!(status, 422, "{outcome}");
    assert_eq!(
        outcome["issue"][0]["expression"][0], "Questionnaire.item[1].extension[0]",
        "{outcome}"
    );
}
