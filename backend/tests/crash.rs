//! `kill -9` of the real `intake serve` binary: with a remote EMR (Medplum, started by
//! the test) refusing deliveries, and again while the EMR has written a delivery whose
//! answer we never heard; and on the embedded store, in the middle of a burst of
//! submissions. After a restart on the same data folder every accepted intake is
//! delivered exactly once, and a retry with the same Idempotency-Key gets the first
//! answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::{get_json, resources};
use common::intake_process::IntakeProcess;
use common::medplum::{MedplumPeer, PeerOptions};
use common::registration;
use reqwest::StatusCode;
use serde_json::Value;

const SUBMISSION: &str = "urn:intake:submission";

const GIVEN: [&str; 30] = [
    "Amani", "Baraka", "Chege", "Dalia", "Eshe", "Faraji", "Gathoni", "Hamisi", "Ikenna", "Jabari",
    "Kioko", "Lulu", "Makena", "Nia", "Omondi", "Pendo", "Quincy", "Rehema", "Sefu", "Tumaini",
    "Umi", "Wambui", "Xola", "Yusuf", "Zuri", "Akinyi", "Bahati", "Chiku", "Dede", "Enzi",
];
const FAMILY: [&str; 30] = [
    "Otieno",
    "Kamau",
    "Mwangi",
    "Njoroge",
    "Ochieng",
    "Wanjiru",
    "Kiprop",
    "Mutua",
    "Onyango",
    "Kariuki",
    "Chebet",
    "Wekesa",
    "Nyambura",
    "Odhiambo",
    "Kibet",
    "Mugo",
    "Biwott",
    "Barasa",
    "Cheruiyot",
    "Gitau",
    "Koech",
    "Langat",
    "Maina",
    "Nduta",
    "Ouma",
    "Rotich",
    "Simiyu",
    "Tanui",
    "Wafula",
    "Yego",
];

const CITY: [&str; 10] = [
    "Nairobi", "Mombasa", "Kisumu", "Nakuru", "Eldoret", "Thika", "Malindi", "Kitale", "Garissa",
    "Lamu",
];

/// Person `p` (0..300): `p % 30` gives the given name, `p / 30` the city, and the
/// family name is chosen so that two people share at most one of given name,
/// family name and city, and no phone or birth date: the matcher takes no two for
/// one another. (No two of the names above are one edit apart.)
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Person {
    given: &'static str,
    family: &'static str,
    birth: String,
    phone: String,
    city: &'static str,
}

fn person(p: usize) -> Person {
    let k = p / 30;
    Person {
        given: GIVEN[p % 30],
        family: FAMILY[(p + 7 * k) % 30],
        birth: format!(
            "{}-{:02}-{:02}",
            1930 + (p * 13) % 70,
            (p * 5) % 12 + 1,
            (p * 11) % 28 + 1
        ),
        phone: format!("+254 {:09}", (p * 2_654_435_761 + 97) % 1_000_000_000),
        city: CITY[k],
    }
}

fn form_for(p: &Person) -> Value {
    let mut body = registration::response(p.given, p.family, &p.birth, Some(&p.phone));
    let items = body["item"][0]["item"].as_array_mut().unwrap();
    let address = items
        .iter_mut()
        .find(|i| i["linkId"] == "PR-address")
        .unwrap();
    address["item"][0] = registration::answer("PR-address-city", registration::string(p.city));
    body
}

/// `POST /api/intakes`: the status and answer, or the transport error (a killed
/// server) as text.
async fn try_submit(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    body: &Value,
) -> Result<(StatusCode, Value), String> {
    let r = registration::post(client, base, key, body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let answer = r.json().await.map_err(|e| e.to_string())?;
    Ok((status, answer))
}

/// Submits every `(key, body)` at once; each must be accepted (201).
async fn submit_all(client: &reqwest::Client, base: &str, jobs: &[(String, Value)]) -> Vec<Value> {
    let tasks: Vec<_> = jobs
        .iter()
        .cloned()
        .map(|(key, body)| {
            let (client, base) = (client.clone(), base.to_owned());
            tokio::spawn(
                async move { (key.clone(), try_submit(&client, &base, &key, &body).await) },
            )
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        let (key, result) = t.await.unwrap();
        let (status, answer) = result.unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(status, StatusCode::CREATED, "{key}: {answer}");
        answers.push(answer);
    }
    answers
}

/// The resources a FHIR search at `base` finds (every one: `_count` 1000).
async fn search(client: &reqwest::Client, base: &str, query: &str) -> Vec<Value> {
    let sep = if query.contains('?') { '&' } else { '?' };
    let bundle = get_json(client, &format!("{base}/{query}{sep}_count=1000")).await;
    assert_eq!(bundle["resourceType"], "Bundle", "{query}: {bundle}");
    assert!(
        bundle["link"]
            .as_array()
            .is_none_or(|l| l.iter().all(|l| l["relation"] != "next")),
        "{query}: more than one page"
    );
    resources(&bundle)
}

fn reference(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    )
}

/// The references of `resources`, for messages (not the resources: patient data).
fn refs(resources: &[Value]) -> Vec<String> {
    resources.iter().map(reference).collect()
}

/// The intakes' states on the server at `base`, by id.
async fn states(client: &reqwest::Client, base: &str, ids: &[String]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for id in ids {
        out.insert(
            id.clone(),
            get_json(client, &format!("{base}/api/intakes/{id}")).await,
        );
    }
    out
}

fn remote_env(emr: &MedplumPeer) -> Vec<(&'static str, String)> {
    vec![
        ("INTAKE_EMR_URL", emr.base_url()),
        // Long enough that a withheld answer is still awaited when the server dies.
        ("INTAKE_EMR_TIMEOUT_MS", "20000".into()),
        ("INTAKE_DELIVERY_RETRY_MS", "50".into()),
        ("INTAKE_DELIVERY_RETRY_MAX_MS", "300".into()),
        // Refused for a while is not refused for good: nothing dead-lettered here.
        ("INTAKE_DELIVERY_MAX_ATTEMPTS", "100000".into()),
    ]
}

fn start(data: &Path, env: &[(&'static str, String)]) -> IntakeProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    IntakeProcess::start(data, &env)
}

/// A submission in the burst: its key, its person and what the client heard.
type Attempt = (String, usize, Result<(StatusCode, Value), String>);

/// One intake the test made and what it expects of it.
#[derive(Debug, Clone)]
struct Sent {
    key: String,
    body: Value,
    person: Person,
    /// The first answer (201).
    answer: Value,
}

impl Sent {
    fn id(&self) -> String {
        self.answer["intake"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn kill_9_while_the_emr_refuses_and_while_it_writes_loses_and_duplicates_nothing() {
    let emr = MedplumPeer::start(&PeerOptions::default());
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let env = remote_env(&emr);
    let http = IntakeProcess::admin_client(&data);
    let fhir = emr.base_url();

    let mut server = start(&data, &env);
    registration::import(&http, &server.base).await;

    // Five patients the EMR knows before anything fails.
    let known: Vec<Person> = (100..105).map(person).collect();
    let jobs: Vec<(String, Value)> = known
        .iter()
        .enumerate()
        .map(|(n, p)| (format!("known-{n}"), form_for(p)))
        .collect();
    let mut sent: Vec<Sent> = Vec::new();
    for ((key, body), answer) in jobs
        .iter()
        .zip(submit_all(&http, &server.base, &jobs).await)
    {
        assert_eq!(
            (&answer["outcome"], &answer["status"]),
            (&"created".into(), &"delivered".into()),
            "{answer}"
        );
        let p = &known[sent.len()];
        sent.push(Sent {
            key: key.clone(),
            body: body.clone(),
            person: p.clone(),
            answer,
        });
    }

    // The EMR refuses every delivery (searches still answer): 30 new patients and the
    // five known ones coming back are accepted, none delivered.
    emr.fail_next_transactions(503, 1_000_000).await;
    let newcomers: Vec<Person> = (0..30).map(person).collect();
    let mut jobs: Vec<(String, Value)> = newcomers
        .iter()
        .enumerate()
        .map(|(n, p)| (format!("new-{n}"), form_for(p)))
        .collect();
    jobs.extend(
        known
            .iter()
            .enumerate()
            .map(|(n, p)| (format!("back-{n}"), form_for(p))),
    );
    let people: Vec<Person> = newcomers.iter().chain(&known).cloned().collect();
    for (((key, body), answer), p) in jobs
        .iter()
        .zip(submit_all(&http, &server.base, &jobs).await)
        .zip(people)
    {
        let expected = if key.starts_with("new-") {
            "created"
        } else {
            "linked"
        };
        assert_eq!(answer["outcome"], expected, "{key}: {answer}");
        assert_eq!(answer["status"], "accepted", "{key}: {answer}");
        sent.push(Sent {
            key: key.clone(),
            body: body.clone(),
            person: p,
            answer,
        });
    }

    // kill -9 with all 35 waiting in the outbox.
    server.kill9();
    let mut server = start(&data, &env);

    // Five of the new patients come back before their charts reach the EMR: the
    // restarted server still knows them (linked, not a second chart).
    let jobs: Vec<(String, Value)> = newcomers[..5]
        .iter()
        .enumerate()
        .map(|(n, p)| (format!("again-{n}"), form_for(p)))
        .collect();
    for (((key, body), answer), p) in jobs
        .iter()
        .zip(submit_all(&http, &server.base, &jobs).await)
        .zip(&newcomers)
    {
        assert_eq!(answer["outcome"], "linked", "{key}: {answer}");
        assert_eq!(answer["status"], "accepted", "{key}: {answer}");
        sent.push(Sent {
            key: key.clone(),
            body: body.clone(),
            person: p.clone(),
            answer,
        });
    }

    // The EMR takes deliveries again: it answers ten, then writes the eleventh but
    // never answers it. kill -9 while the server waits for that answer.
    emr.hold_transactions(10, 1).await;
    emr.fail_next_transactions(503, 0).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while emr.stats().await["held"] != 1 {
        assert!(
            Instant::now() < deadline,
            "no delivery held; the server's log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ids: Vec<String> = sent.iter().map(Sent::id).collect();
    let before = states(&http, &server.base, &ids).await;
    let delivered = before
        .values()
        .filter(|s| s["status"] == "delivered")
        .count();
    let written = search(&http, &fhir, "QuestionnaireResponse").await.len();
    // Five known patients, ten deliveries answered, one written and unanswered.
    assert_eq!((delivered, written), (5 + 10, 5 + 11), "{before:?}");
    server.kill9();

    // Restarted: everything delivered, the unanswered one not a second time.
    let server = start(&data, &env);
    let deadline = Instant::now() + Duration::from_secs(15);
    let after = loop {
        let now = states(&http, &server.base, &ids).await;
        let waiting: Vec<&Value> = now
            .values()
            .filter(|s| s["status"] != "delivered")
            .collect();
        if waiting.is_empty() {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered: {waiting:?}; the server's log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Exactly once in the EMR: one Patient per person, one response and one
    // Provenance per intake, each where the intake says.
    let mut chart_of: HashMap<Person, String> = HashMap::new();
    for s in &sent {
        let id = s.id();
        let state = &after[&id];
        let patient = state["patient"]
            .as_str()
            .unwrap_or_else(|| panic!("{state}"));
        assert_eq!(state["outcome"], s.answer["outcome"], "{}", s.key);
        if s.answer["outcome"] == "created" {
            let created = search(
                &http,
                &fhir,
                &format!("Patient?identifier={SUBMISSION}|{id}"),
            )
            .await;
            assert_eq!(created.len(), 1, "{}: {:?}", s.key, refs(&created));
            assert_eq!(reference(&created[0]), patient, "{}", s.key);
            let provenance = search(&http, &fhir, &format!("Provenance?target={patient}")).await;
            assert_eq!(provenance.len(), 1, "{}: {:?}", s.key, refs(&provenance));
        }
        let chart = chart_of
            .entry(s.person.clone())
            .or_insert_with(|| patient.to_owned());
        assert_eq!(
            chart, patient,
            "{}: another chart for the same person",
            s.key
        );
        let responses = search(
            &http,
            &fhir,
            &format!("QuestionnaireResponse?identifier={SUBMISSION}|{id}"),
        )
        .await;
        assert_eq!(responses.len(), 1, "{}: {:?}", s.key, refs(&responses));
        assert_eq!(responses[0]["subject"]["reference"], patient, "{}", s.key);
        let provenance = search(
            &http,
            &fhir,
            &format!("Provenance?target={}", reference(&responses[0])),
        )
        .await;
        assert_eq!(provenance.len(), 1, "{}: {:?}", s.key, refs(&provenance));
    }
    for p in chart_of.keys() {
        let named = search(
            &http,
            &fhir,
            &format!(
                "Patient?given={}&family={}&birthdate={}",
                p.given, p.family, p.birth
            ),
        )
        .await;
        assert_eq!(named.len(), 1, "{p:?}: {:?}", refs(&named));
    }
    assert_eq!(search(&http, &fhir, "Patient").await.len(), 35);
    assert_eq!(
        search(&http, &fhir, "QuestionnaireResponse").await.len(),
        45
    );
    assert_eq!(search(&http, &fhir, "Provenance").await.len(), 45);

    // A client that never heard back retries: the same intake, once.
    for s in sent.iter().filter(|s| s.key.starts_with("new-")).take(3) {
        let (status, again) = try_submit(&http, &server.base, &s.key, &s.body)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again, after[&s.id()]);
    }
}

#[tokio::test]
async fn kill_9_in_a_burst_of_submissions_keeps_every_accepted_intake_exactly_once() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let http = IntakeProcess::admin_client(&data);
    let mut server = start(&data, &[]);
    registration::import(&http, &server.base).await;
    // Twenty patients with charts, who come back in the burst.
    let known: Vec<usize> = (280..300).collect();
    let jobs: Vec<(String, Value)> = known
        .iter()
        .map(|&p| (format!("seed-{p}"), form_for(&person(p))))
        .collect();
    let mut seeded = Vec::new();
    for answer in submit_all(&http, &server.base, &jobs).await {
        assert_eq!(answer["outcome"], "created", "{answer}");
        seeded.push(answer);
    }

    // 280 new patients and the 20 returning, 16 at a time; kill -9 once 60 answered.
    let mut jobs: Vec<(String, usize)> = (0..280).map(|p| (format!("burst-{p}"), p)).collect();
    jobs.extend(known.iter().map(|&p| (format!("burst-back-{p}"), p)));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sixty = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let tasks: Vec<_> = jobs
        .iter()
        .cloned()
        .map(|(key, p)| {
            let (http, base) = (http.clone(), server.base.clone());
            let (answered, sixty, gate) = (answered.clone(), sixty.clone(), gate.clone());
            tokio::spawn(async move {
                let _turn = gate.acquire_owned().await.unwrap();
                let result = try_submit(&http, &base, &key, &form_for(&person(p))).await;
                if result.is_ok()
                    && answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 60
                {
                    sixty.notify_one();
                }
                (key, p, result)
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(15), sixty.notified())
        .await
        .expect("60 answers");
    server.kill9();
    let mut outcomes: Vec<Attempt> = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let accepted: Vec<&Attempt> = outcomes.iter().filter(|(_, _, r)| r.is_ok()).collect();
    let unanswered = outcomes.len() - accepted.len();
    assert!(
        accepted.len() >= 60 && unanswered > 0,
        "{} answered, {unanswered} not",
        accepted.len()
    );

    let server = start(&data, &[]);
    // Every 201 is there, as answered; its key gets that answer again (200).
    for (key, p, result) in &accepted {
        let (status, answer) = result.as_ref().unwrap();
        assert_eq!(*status, StatusCode::CREATED, "{key}: {answer}");
        let id = answer["intake"].as_str().unwrap();
        let now = get_json(&http, &format!("{}/api/intakes/{id}", server.base)).await;
        assert_eq!(&now, answer, "{key}");
        let (status, again) = try_submit(&http, &server.base, key, &form_for(&person(*p)))
            .await
            .unwrap();
        assert_eq!((status, &again), (StatusCode::OK, answer), "{key}");
    }
    // Clients that never heard back retry with their key: accepted then (200) or now (201).
    let mut every: Vec<(String, usize, Value)> = accepted
        .iter()
        .map(|(k, p, r)| (k.clone(), *p, r.as_ref().unwrap().1.clone()))
        .collect();
    for (key, p, result) in &outcomes {
        if result.is_err() {
            let (status, answer) = try_submit(&http, &server.base, key, &form_for(&person(*p)))
                .await
                .unwrap();
            assert!(
                matches!(status, StatusCode::OK | StatusCode::CREATED),
                "{key}: {status} {answer}"
            );
            every.push((key.clone(), *p, answer));
        }
    }
    assert_eq!(every.len(), 300);

    // Exactly once in the store: one chart per person, one response per intake.
    let fhir = format!("{}/fhir", server.base);
    let mut chart_of: HashMap<usize, String> = known
        .iter()
        .zip(&seeded)
        .map(|(&p, a)| (p, a["patient"].as_str().unwrap().to_owned()))
        .collect();
    for (key, p, answer) in &every {
        let id = answer["intake"].as_str().unwrap();
        assert_eq!(answer["status"], "delivered", "{key}: {answer}");
        let patient = answer["patient"]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {answer}"));
        if answer["outcome"] == "created" {
            let created = search(
                &http,
                &fhir,
                &format!("Patient?identifier={SUBMISSION}|{id}"),
            )
            .await;
            assert_eq!(refs(&created), [patient], "{key}");
        }
        let chart = chart_of.entry(*p).or_insert_with(|| patient.to_owned());
        assert_eq!(chart, patient, "{key}: another chart for the same person");
        let responses = search(
            &http,
            &fhir,
            &format!("QuestionnaireResponse?identifier={SUBMISSION}|{id}"),
        )
        .await;
        assert_eq!(responses.len(), 1, "{key}: {:?}", refs(&responses));
        assert_eq!(responses[0]["subject"]["reference"], patient, "{key}");
    }
    assert_eq!(chart_of.len(), 300);
    assert_eq!(search(&http, &fhir, "Patient").await.len(), 300);
    assert_eq!(
        search(&http, &fhir, "QuestionnaireResponse").await.len(),
        320
    );
    assert_eq!(search(&http, &fhir, "Provenance").await.len(), 320);
}
