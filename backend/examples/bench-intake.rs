//! `cargo xtask bench intake`: a load generator submitting realistic intakes to a
//! server on the embedded store, open loop at a fixed rate, then waiting for the
//! outbox to drain. Prints sustained submissions per second, p50/p99 latency and
//! the count of intakes accepted vs delivered (and duplicates: must be 0).
//!
//! ```text
//! bench-intake [RATE per second, default 500] [SECONDS, default 20] [RETURNING %, default 30]
//! ```
//! Figures only, no asserts.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use backend::{Application, Config};
use serde_json::{Value, json};

/// The Android FHIR registration form: extraction by definition.
const FORM: &str = "androidfhir__new-patient-registration-paginated.json";

/// Seeded: the same population every run.
use matching::rng::SplitMix as Rng;

const GIVEN: &[&str] = &[
    "Amani", "Baraka", "Imani", "Zawadi", "Juma", "Neema", "Olivia", "Liam", "Emma", "Noah", "Ava",
    "Mateo", "Sofia", "Lucas", "Mia", "Ethan", "Isabella", "James", "Amelia", "Benjamin", "Chloe",
    "Daniel", "Grace", "Samuel", "Hannah", "David", "Zoe", "Joseph", "Lily", "Henry",
];
const SYLLABLES: &[&str] = &[
    "ka", "ri", "mo", "te", "shi", "la", "no", "wa", "ben", "dor", "ul", "se", "ta", "vin", "gar",
    "po", "lu", "ne", "zi", "ro", "mar", "kel", "an", "ot", "ie", "son", "berg", "ez", "ova", "li",
];

/// Towns and their postal codes: patients of a clinic live in a few dozen.
const TOWNS: &[(&str, &str)] = &[
    ("Nairobi", "00100"),
    ("Westlands", "00800"),
    ("Karen", "00502"),
    ("Kasarani", "00608"),
    ("Embakasi", "00501"),
    ("Langata", "00509"),
    ("Ruaka", "00621"),
    ("Kikuyu", "00902"),
    ("Thika", "01000"),
    ("Ruiru", "00232"),
    ("Juja", "01001"),
    ("Kiambu", "00900"),
    ("Limuru", "00217"),
    ("Ngong", "00208"),
    ("Kitengela", "00241"),
    ("Athi River", "00204"),
    ("Machakos", "90100"),
    ("Syokimau", "00518"),
    ("Rongai", "00511"),
    ("Githurai", "00609"),
    ("Kahawa", "00610"),
    ("Dagoretti", "00603"),
    ("Kawangware", "00611"),
    ("Kilimani", "00505"),
    ("Parklands", "00623"),
    ("Eastleigh", "00610"),
    ("Donholm", "00518"),
    ("Umoja", "00608"),
    ("Kayole", "00518"),
    ("Mlolongo", "00519"),
    ("Gigiri", "00601"),
    ("Runda", "00621"),
];

/// A person: given, family, birth date, phone, town.
#[derive(Clone)]
struct Person {
    given: String,
    family: String,
    birth: String,
    phone: String,
    town: usize,
}

/// A name of `n` syllables, capitalised.
fn word(rng: &mut Rng, n: usize) -> String {
    let mut w = String::new();
    for _ in 0..n {
        w.push_str(SYLLABLES[rng.below(SYLLABLES.len())]);
    }
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn person(rng: &mut Rng, i: usize) -> Person {
    // Half the given names from a short list of common ones, half rarer.
    let given = if rng.below(2) == 0 {
        GIVEN[rng.below(GIVEN.len())].to_owned()
    } else {
        let n = 2 + rng.below(2);
        word(rng, n)
    };
    let n = 2 + rng.below(2);
    Person {
        given,
        family: word(rng, n),
        town: rng.below(TOWNS.len()),
        birth: format!(
            "{}-{:02}-{:02}",
            1930 + rng.below(90),
            1 + rng.below(12),
            1 + rng.below(28)
        ),
        phone: format!(
            "+254 7{:02} {:03} {:03}",
            rng.below(100),
            rng.below(1000),
            i % 1000
        ),
    }
}

fn answer(link_id: &str, values: &Value) -> Value {
    json!({"linkId": link_id, "answer": values})
}

fn string(s: &str) -> Value {
    json!([{"valueString": s}])
}

fn response(questionnaire: &str, p: &Person) -> Value {
    json!({"resourceType": "QuestionnaireResponse", "questionnaire": questionnaire,
        "status": "completed", "authored": "2026-11-30T09:30:00Z",
        "item": [{"linkId": "PR", "item": [
            {"linkId": "PR-name", "item": [
                answer("PR-name-text", &string(&p.given)),
                answer("PR-name-family", &string(&p.family))]},
            answer("patient-0-birth-date", &json!([{"valueDate": p.birth}])),
            answer("patient-0-gender", &json!([{"valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": "female", "display": "Female"}}])),
            {"linkId": "PR-telecom", "item": [
                answer("PR-telecom-system", &string("phone")),
                answer("PR-telecom-value", &string(&p.phone))]},
            {"linkId": "PR-address", "item": [
                answer("PR-address-city", &string(TOWNS[p.town].0)),
                answer("PR-address-country", &string("Kenya"))]},
            answer("PR-active", &json!([{"valueBoolean": true}]))]}]})
}

fn chart(p: &Person) -> Value {
    json!({"resourceType": "Patient", "active": true,
        "name": [{"family": p.family, "given": [p.given]}], "birthDate": p.birth, "gender": "female",
        "telecom": [{"system": "phone", "value": p.phone}],
        "address": [{"city": TOWNS[p.town].0, "country": "Kenya"}]})
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rate: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(500);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let returning_pct: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(30);
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/questionnaires");
    let form: Value = serde_json::from_str(&std::fs::read_to_string(fixtures.join(FORM))?)?;
    let form_id = form["id"].as_str().unwrap().to_owned();
    let questionnaire = form["url"]
        .as_str()
        .map_or_else(|| format!("Questionnaire/{form_id}"), str::to_owned);

    let dir = tempfile::tempdir()?;
    // The clinic's existing patients, written straight to the store.
    let existing = 20_000;
    let mut rng = Rng(2026);
    let people: Vec<Person> = (0..existing).map(|i| person(&mut rng, i)).collect();
    {
        let db = backend::db::open(dir.path()).await?;
        let store = backend::store::Store::new(
            db.clone(),
            Arc::new(backend::clock::SystemClock),
            Arc::new(backend::store::patients::PatientIndex::empty(
                matching::Config::default(),
            )),
        );
        for chunk in people.chunks(1000) {
            store
                .transaction(
                    chunk
                        .iter()
                        .map(|p| backend::store::Request::Create {
                            resource: chart(p),
                            if_none_exist: None,
                            full_url: None,
                        })
                        .collect(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        db.close().await;
    }
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        data: dir.path().to_owned(),
        dist: dir.path().join("no-dist"),
        max_body_bytes: 256 * 1024,
        matching: Default::default(),
        delivery: Default::default(),
        emr: Default::default(),
        guard: Default::default(),
        public_url: None,
    };
    let app = Application::build(&config).await?;
    let base = format!("http://{}", app.local_addr()?);
    // The form goes in as an admin would put it; the intakes come anonymously, as
    // from patients' phones (who are told only "received").
    let token = backend::auth::tokens::create(
        app.db(),
        std::time::SystemTime::now(),
        "bench",
        backend::auth::Role::Admin,
    )
    .await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let r = client
        .put(format!("{base}/fhir/Questionnaire/{form_id}"))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .body(form.to_string())
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "form import: {}", r.status());

    // Open loop: one submission every 1/rate s, whatever the server's pace.
    let total = (rate * seconds) as usize;
    let mut bodies = Vec::with_capacity(total);
    for i in 0..total {
        let p = if rng.below(100) < returning_pct {
            people[rng.below(people.len())].clone()
        } else {
            person(&mut rng, existing + i)
        };
        bodies.push(response(&questionnaire, &p).to_string());
    }
    println!(
        "{existing} patients in the store; submitting {total} intakes at {rate}/s for {seconds} s, {returning_pct}% returning patients"
    );
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for (i, body) in bodies.into_iter().enumerate() {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let client = client.clone();
        let url = format!("{base}/api/intakes");
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = client
                .post(url)
                .header("content-type", "application/fhir+json")
                .header("idempotency-key", format!("bench-{i}"))
                .body(body)
                .send()
                .await;
            let latency = t.elapsed();
            let status = match r {
                Ok(r) => {
                    let status = r.status().as_u16();
                    // Read to the end, as a phone would.
                    let _ = r.bytes().await;
                    status
                }
                Err(_) => 0,
            };
            (latency, status)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut accepted = 0usize;
    let mut failed = 0usize;
    for t in tasks {
        let (latency, status) = t.await?;
        latencies.push(latency);
        if status == 201 || status == 200 {
            accepted += 1;
        } else {
            failed += 1;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    // Wait for the outbox to drain.
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite:{}",
        dir.path().join("intake.db").display()
    ))
    .await?;
    let drain_started = Instant::now();
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
                .fetch_one(&db)
                .await?;
        if pending == 0 || drain_started.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&db)
                .await
                .unwrap_or(-1)
        }
    };
    let outcomes: std::collections::BTreeMap<String, i64> =
        sqlx::query_as("SELECT outcome, COUNT(*) FROM intake GROUP BY outcome")
            .fetch_all(&db)
            .await?
            .into_iter()
            .collect();
    let intakes = count("SELECT COUNT(*) FROM intake").await;
    let delivered = count("SELECT COUNT(*) FROM intake WHERE status = 'delivered'").await;
    let review = count("SELECT COUNT(*) FROM intake WHERE status = 'review'").await;
    let dead = count("SELECT COUNT(*) FROM intake WHERE status = 'dead'").await;
    let pending = count("SELECT COUNT(*) FROM intake WHERE status = 'accepted'").await;
    let responses =
        count("SELECT COUNT(*) FROM resource WHERE resource_type = 'QuestionnaireResponse'").await;
    let duplicate_responses = count(
        "SELECT COUNT(*) FROM (SELECT json_extract(body, '$.identifier.value') v, COUNT(*) n FROM resource
         WHERE resource_type = 'QuestionnaireResponse' GROUP BY v HAVING n > 1)",
    )
    .await;
    let duplicate_patients = count(
        "SELECT COUNT(*) FROM (SELECT s.value, COUNT(*) n FROM search_index s
         WHERE s.resource_type = 'Patient' AND s.name = 'identifier' AND s.system = 'urn:intake:submission'
         GROUP BY s.value HAVING n > 1)",
    )
    .await;
    let _ = stop.send(());
    server.await??;
    println!(
        "\nsustained: {:.0} submissions/s ({total} in {:.2} s); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    println!("answers: {accepted} accepted, {failed} failed; outcomes {outcomes:?}");
    println!(
        "after the outbox drained ({:.1} s): {intakes} intakes stored: {delivered} delivered, {review} waiting for review, {pending} still pending, {dead} dead-lettered",
        drain_started.elapsed().as_secs_f64()
    );
    println!(
        "in the EMR: {responses} QuestionnaireResponses for {} linked or created intakes; duplicated responses {duplicate_responses}, duplicated new patients {duplicate_patients}; lost {}",
        delivered,
        (accepted as i64) - intakes
    );
    Ok(())
}
