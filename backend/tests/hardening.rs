//! Issue 21: what an outsider could do to a running server. Non-ASCII input that
//! panicked a handler (and wrote the value into the log), a panic anywhere
//! answering 500 with an `OperationOutcome`, arbitrary Unicode fed to every
//! parser of search values; a stranger's intake filed in someone's chart; slow
//! and idle connections, floods, huge `$validate`s and searches; concurrent
//! wrong passwords.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod staff_common;

use std::time::Duration;

use backend::auth::Role;
use common::intake_server::IntakeServer;
use common::registration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use staff_common::TestApp;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A client with no credentials: the patient's phone.
fn anonymous() -> reqwest::Client {
    reqwest::Client::new()
}

fn is_outcome(body: &Value) -> bool {
    body["resourceType"] == "OperationOutcome"
}

/// Issue 21: `2020é0` as a birth date made `$validate` and `/api/intakes` panic
/// on a byte slice; the connection dropped without an answer.
#[tokio::test]
async fn a_birth_date_with_a_multibyte_character_is_refused_with_an_outcome() {
    let s = IntakeServer::embedded().await;
    let body = registration::response("Amani", "Otieno", "2020é0", None);
    let r = anonymous()
        .post(format!("{}/fhir/QuestionnaireResponse/$validate", s.base))
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .expect("an answer, not a dropped connection");
    let status = r.status();
    let outcome: Value = r.json().await.unwrap();
    assert!(!status.is_server_error(), "{status}");
    assert!(is_outcome(&outcome), "{outcome}");
    assert!(
        outcome.to_string().contains("patient-0-birth-date"),
        "{outcome}"
    );
    assert!(!outcome.to_string().contains("2020é0"), "echoes the value");

    let (status, answer) = registration::submit(&anonymous(), &s.base, "k-1", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(is_outcome(&answer), "{answer}");
}

/// Issue 21: `_lastUpdated=2020-01-0é…` sliced at byte 10, inside the `é`.
#[tokio::test]
async fn a_last_updated_with_a_multibyte_character_is_a_client_error() {
    let s = IntakeServer::embedded().await;
    for value in ["2020-01-0é", "2020-01-0éT10:00:00Z", "२०२०-01-01", "ge20é"] {
        let r = s
            .client
            .get(format!("{}/fhir/Patient", s.base))
            .query(&[("_lastUpdated", value)])
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert!(r.status().is_client_error(), "{value}: {}", r.status());
        let body: Value = r.json().await.unwrap();
        assert!(is_outcome(&body), "{body}");
    }
}

/// Issue 21: `AuditEvent?date=२०२०-01-01` sliced the first four bytes.
#[tokio::test]
async fn an_audit_date_in_devanagari_digits_is_a_400() {
    let s = IntakeServer::embedded().await;
    for value in ["२०२०-01-01", "ge२०२०", "2é20-01-01"] {
        let r = s
            .client
            .get(format!("{}/fhir/AuditEvent", s.base))
            .query(&[("date", value)])
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{value}");
    }
}

/// A panic anywhere in a handler answers 500 with an `OperationOutcome` that
/// says nothing of the request, instead of dropping the connection.
#[tokio::test]
async fn a_panicking_handler_answers_500_with_an_outcome_that_quotes_nothing() {
    use tower::ServiceExt as _;
    let router = axum::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async {
                let answer = String::from("2020é0 SECRET-SSN");
                // The kind of slice that panicked in issue 21.
                answer[..5].to_owned()
            }),
        )
        .layer(backend::http::catch_panic());
    let request = axum::http::Request::get("/boom")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(is_outcome(&body), "{body}");
    assert_eq!(body["issue"][0]["code"], "exception");
    assert!(!body.to_string().contains("SECRET"), "{body}");
}

/// The panic hook `intake` installs logs where a panic happened, never its
/// message (which quotes the sliced value: a name, an SSN).
#[test]
fn the_panic_hook_logs_the_location_and_not_the_message() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(backend::telemetry::panic_hook));
    let caught = tracing::subscriber::with_default(subscriber, || {
        std::panic::catch_unwind(|| {
            let answer = String::from("Wanjiru SECRET-SSN-123é");
            let cut = answer.len() - 1;
            answer[..cut].len()
        })
    });
    std::panic::set_hook(previous);
    assert!(caught.is_err(), "the slice must have panicked");
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("panic"), "{log}");
    assert!(log.contains("hardening.rs"), "names the location: {log}");
    assert!(!log.contains("SECRET"), "{log}");
    assert!(!log.contains("Wanjiru"), "{log}");
}

/// Text that looks like a search value (a prefix, digits, separators) often
/// enough to reach each parser's deeper branches, with any character mixed in.
fn valuelike() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        4 => proptest::char::range('0', '9'),
        2 => proptest::sample::select(vec!['-', ':', 'T', 'Z', '+', '.', '|', ',', 'g', 'e', 'l']),
        3 => any::<char>(),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|c| c.into_iter().collect())
}

const SEARCHED: &[(&str, &[&str])] = &[
    (
        "Patient",
        &[
            "_lastUpdated",
            "_id",
            "_count",
            "_offset",
            "_tag",
            "birthdate",
            "name",
            "family",
            "given",
            "phone",
            "email",
            "identifier",
            "gender",
            "address-postalcode",
            "family:exact",
        ],
    ),
    (
        "QuestionnaireResponse",
        &["subject", "authored", "questionnaire", "identifier"],
    ),
    ("Observation", &["subject", "date", "code"]),
    ("Task", &["status", "focus", "identifier", "_lastUpdated"]),
    ("Provenance", &["target", "_tag"]),
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

    /// Every search value any type takes, and the audit trail's, with any text:
    /// an answer (a query or a list of issues), never a panic.
    #[test]
    fn no_search_parser_panics_on_any_text(value in valuelike()) {
        for (resource_type, names) in SEARCHED {
            for name in *names {
                let pairs = vec![((*name).to_owned(), value.clone())];
                let _ = backend::store::search::parse(resource_type, &pairs);
            }
        }
        for name in ["date", "patient", "agent", "_count", "entity"] {
            let pairs = vec![(name.to_owned(), value.clone())];
            let _ = backend::audit::Search::parse(&pairs);
        }
        let _ = backend::store::search::pairs(&value);
    }
}

// ---- 2. A stranger cannot write into someone's chart ----

/// The app with the registration form, a chart for Amani Otieno made by a
/// client allowed to link, and a front-desk user.
struct Clinic {
    app: TestApp,
    linker: reqwest::Client,
    chart: String,
}

fn amani() -> Value {
    registration::response("Amani", "Otieno", "1995-07-15", Some("+254 700 000 001"))
}

impl Clinic {
    async fn start(configure: impl FnOnce(&mut backend::Config)) -> Self {
        let app = TestApp::spawn_with(|c| {
            c.max_body_bytes = 256 * 1024;
            configure(c);
        })
        .await;
        let token = backend::auth::tokens::create_linking(
            &app.db,
            std::time::SystemTime::now(),
            "emr-integration",
            Role::Admin,
        )
        .await
        .unwrap();
        let linker = common::authorized(&token);
        registration::import(&linker, &app.base).await;
        let (status, answer) = registration::submit(&linker, &app.base, "first", &amani()).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["outcome"], "created");
        let chart = answer["patient"].as_str().unwrap().to_owned();
        Self { app, linker, chart }
    }

    async fn get(&self, path: &str) -> Value {
        common::http::get_json(&self.linker, &self.app.url(path)).await
    }

    async fn responses_in_chart(&self) -> Vec<Value> {
        common::http::search(
            &self.linker,
            &self.app.url("/fhir"),
            &format!("QuestionnaireResponse?subject={}", self.chart),
        )
        .await
    }

    async fn task_of(&self, intake: &str) -> Value {
        let tasks = common::http::search(
            &self.linker,
            &self.app.url("/fhir"),
            &format!("Task?identifier=urn:intake:submission|{intake}"),
        )
        .await;
        assert_eq!(tasks.len(), 1, "{tasks:?}");
        tasks[0].clone()
    }
}

fn proof_tag(resource: &Value) -> Option<String> {
    resource["meta"]["tag"]
        .as_array()?
        .iter()
        .find(|t| t["system"] == "urn:intake:identity-proof")
        .and_then(|t| t["code"].as_str())
        .map(str::to_owned)
}

/// Issue 21, item 1: anonymously, a registered patient's details and a made-up
/// answer were filed in her chart with no review.
#[tokio::test]
async fn an_anonymous_intake_that_matches_a_chart_waits_as_a_proposed_link() {
    let c = Clinic::start(|_| {}).await;
    assert_eq!(c.responses_in_chart().await.len(), 1);
    let (status, answer) =
        registration::submit(&anonymous(), &c.app.base, "stranger", &amani()).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    // The sender is told only that it was received.
    assert_eq!(
        answer.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["intake", "status"]
    );
    assert_eq!(answer["status"], "received");
    let intake = answer["intake"].as_str().unwrap().to_owned();
    let state = c.get(&format!("/api/intakes/{intake}")).await;
    assert_eq!(state["outcome"], "review", "{state}");
    assert_eq!(state["patient"], Value::Null, "{state}");
    // Nothing reached the chart.
    assert_eq!(c.responses_in_chart().await.len(), 1);
    // A proposed link: the chart is its certain candidate.
    let task = c.task_of(&intake).await;
    assert_eq!(
        task["reasonCode"]["coding"][0]["code"], "unverified-identity",
        "{task}"
    );
    assert_eq!(
        task["input"][0]["valueReference"]["reference"],
        Value::String(c.chart.clone())
    );
    assert_eq!(task["input"][0]["type"]["text"], "certain");
}

/// Staff confirm a proposed link in one action; the front desk may, since
/// checking who a patient is belongs to the desk. The chart then says the
/// intake carried no proof of identity.
#[tokio::test]
async fn the_front_desk_confirms_a_proposed_link_and_the_chart_says_it_was_unverified() {
    let c = Clinic::start(|_| {}).await;
    let (desk, password) = c.app.signed_in("frank", Role::FrontDesk).await;
    let (_, answer) = registration::submit(&anonymous(), &c.app.base, "walk-in", &amani()).await;
    let intake = answer["intake"].as_str().unwrap().to_owned();
    let queue: Value = c
        .app
        .as_staff(c.app.client.get(c.app.url("/api/staff/review")), &desk)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = queue["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{queue}"))
        .iter()
        .find(|i| i["intake"] == intake.as_str())
        .unwrap_or_else(|| panic!("{queue}"))
        .clone();
    assert_eq!(item["proposedLink"], true, "{item}");
    let patient = c.chart.clone();
    let r = c
        .app
        .as_staff(
            c.app
                .client
                .post(c.app.url(&format!(
                    "/api/staff/review/{}/decision",
                    item["task"].as_str().unwrap()
                )))
                .header(
                    "if-match",
                    format!("W/\"{}\"", item["version"].as_str().unwrap()),
                )
                .json(&json!({"action": "link", "patient": patient, "password": password})),
            &desk,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let responses = c.responses_in_chart().await;
    assert_eq!(responses.len(), 2);
    let filed = responses
        .iter()
        .find(|r| proof_tag(r).as_deref() == Some("unverified"))
        .unwrap_or_else(|| panic!("{responses:?}"));
    let provenance = common::http::search(
        &c.linker,
        &c.app.url("/fhir"),
        &format!(
            "Provenance?target=QuestionnaireResponse/{}",
            filed["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(provenance.len(), 1);
    assert_eq!(proof_tag(&provenance[0]).as_deref(), Some("unverified"));
    // The first intake, from the linking client, says so too.
    assert!(
        responses
            .iter()
            .any(|r| proof_tag(r).as_deref() == Some("system")),
        "{responses:?}"
    );
}

/// Doubtful matches stay with clinicians: the front desk cannot decide an
/// ordinary match, nor create a chart for a proposed link.
#[tokio::test]
async fn the_front_desk_may_confirm_only_a_proposed_link() {
    let c = Clinic::start(|_| {}).await;
    let (desk, password) = c.app.signed_in("frank", Role::FrontDesk).await;
    let (_, answer) = registration::submit(&anonymous(), &c.app.base, "walk-in", &amani()).await;
    let intake = answer["intake"].as_str().unwrap().to_owned();
    let task = c.task_of(&intake).await;
    let r = c
        .app
        .as_staff(
            c.app
                .client
                .post(c.app.url(&format!(
                    "/api/staff/review/{}/decision",
                    task["id"].as_str().unwrap()
                )))
                .header(
                    "if-match",
                    format!("W/\"{}\"", task["meta"]["versionId"].as_str().unwrap()),
                )
                .json(&json!({"action": "create", "password": password})),
            &desk,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(c.responses_in_chart().await.len(), 1);
}

/// A token not allowed to link acts for nobody: its intake is a proposed link
/// too, and a proof tag the sender wrote is not believed.
#[tokio::test]
async fn a_token_acting_for_nobody_only_proposes_and_cannot_claim_a_proof() {
    let c = Clinic::start(|_| {}).await;
    let relay = common::authorized(&c.app.token("web-relay", Role::System).await);
    let mut body = amani();
    body["meta"] = json!({"tag": [{"system": "urn:intake:identity-proof", "code": "invitation"}]});
    let (status, answer) = registration::submit(&relay, &c.app.base, "relayed", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["outcome"], "review", "{answer}");
    assert_eq!(c.responses_in_chart().await.len(), 1);
    let row: String = sqlx::query_scalar("SELECT response FROM intake WHERE id = ?")
        .bind(answer["intake"].as_str().unwrap())
        .fetch_one(&c.app.db)
        .await
        .unwrap();
    let stored: Value = serde_json::from_str(&row).unwrap();
    assert_eq!(
        proof_tag(&stored).as_deref(),
        Some("unverified"),
        "{stored}"
    );
}

/// `INTAKE_UNVERIFIED_INTAKES=link`: the clinic's choice to file them as before.
#[tokio::test]
async fn a_clinic_may_choose_to_link_unverified_intakes() {
    let c = Clinic::start(|config| {
        config.guard.unverified_intakes = Some(backend::intake::Unverified::Link);
    })
    .await;
    let (_, answer) = registration::submit(&anonymous(), &c.app.base, "walk-in", &amani()).await;
    let state = c
        .get(&format!(
            "/api/intakes/{}",
            answer["intake"].as_str().unwrap()
        ))
        .await;
    assert_eq!(state["outcome"], "linked", "{state}");
    assert_eq!(c.responses_in_chart().await.len(), 2);
}

// ---- 3. One request cannot starve the server ----

/// A raw TCP connection to `base`.
async fn connect(base: &str) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (or `limit` passes: then the
/// test fails). What it sent before closing.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> String {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0_u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the connection was still open after {limit:?}"
    );
    String::from_utf8_lossy(&seen).into_owned()
}

/// Issue 21: a slow sender (partial headers), an idle socket and a trickled
/// body were never closed.
#[tokio::test]
async fn slow_headers_idle_connections_and_trickled_bodies_are_closed() {
    let s = IntakeServer::start_with(|c| {
        c.guard.header_timeout_secs = Some(1);
        c.guard.body_timeout_secs = Some(1);
    })
    .await;
    // Partial headers.
    let mut partial = connect(&s.base).await;
    partial
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    closed_within(&mut partial, Duration::from_secs(20)).await;
    // Nothing at all.
    let mut idle = connect(&s.base).await;
    closed_within(&mut idle, Duration::from_secs(20)).await;
    // A body that stops coming: the request fails and the connection closes.
    let mut trickle = connect(&s.base).await;
    trickle
        .write_all(b"POST /api/demographics/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":")
        .await
        .unwrap();
    let answer = closed_within(&mut trickle, Duration::from_secs(20)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
}

/// At most `max_connections` are served at once; the next is served when one
/// closes.
#[tokio::test]
async fn connections_past_the_cap_wait_for_one_to_close() {
    let s = IntakeServer::start_with(|c| c.guard.max_connections = Some(2)).await;
    // The helper's client keeps its connections alive: close them first.
    let a = connect(&s.base).await;
    let b = connect(&s.base).await;
    let waiting = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let health = format!("{}/api/health", s.base);
    // Both held by the two idle sockets (and the harness's own, now idle).
    let refused = waiting.get(&health).send().await;
    assert!(refused.is_err(), "served past the cap: {refused:?}");
    drop((a, b));
    let mut served = false;
    for _ in 0..20 {
        if let Ok(r) = waiting.get(&health).send().await {
            served = r.status().is_success();
            break;
        }
    }
    assert!(served, "never served after the others closed");
}

/// Issue 21: 300 anonymous intakes from one address took 0.7 s and made 300
/// charts. Past the limit: 429 with `Retry-After`; a token has its own, higher one.
#[tokio::test]
async fn strangers_are_rate_limited_per_address_and_tokens_are_not() {
    let s = IntakeServer::start_with(|c| c.guard.rate_public_per_minute = Some(3)).await;
    let validate = format!("{}/fhir/QuestionnaireResponse/$validate", s.base);
    let body = registration::response("Amani", "Otieno", "1995-07-15", None).to_string();
    let send = |client: reqwest::Client| {
        let (validate, body) = (validate.clone(), body.clone());
        async move {
            client
                .post(validate)
                .header("content-type", "application/fhir+json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        assert_eq!(send(anonymous()).await.status(), StatusCode::OK);
    }
    let refused = send(anonymous()).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(is_outcome(&refused.json().await.unwrap()));
    // The intakes route shares the address's bucket.
    let (status, _) = registration::submit(&anonymous(), &s.base, "k", &amani()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // A system client is not throttled as a stranger is.
    for _ in 0..10 {
        assert_eq!(send(s.client.clone()).await.status(), StatusCode::OK);
    }
}

/// Behind a proxy every request has the proxy's address: the forwarded one is
/// believed only from a proxy the clinic trusts.
#[tokio::test]
async fn a_forwarded_address_counts_only_behind_a_trusted_proxy() {
    let send = |base: String, forwarded: &'static str| async move {
        anonymous()
            .post(format!("{base}/api/demographics/validate"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", forwarded)
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
    };
    let trusting = IntakeServer::start_with(|c| {
        c.guard.rate_public_per_minute = Some(1);
        c.guard.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    assert_ne!(
        send(trusting.base.clone(), "203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_ne!(
        send(trusting.base.clone(), "203.0.113.2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(trusting.base.clone(), "203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Not trusted: the header is anyone's to write, and is ignored.
    let plain = IntakeServer::start_with(|c| c.guard.rate_public_per_minute = Some(1)).await;
    assert_ne!(
        send(plain.base.clone(), "203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(plain.base.clone(), "203.0.113.2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Issue 21: a 4 MB public `$validate` of 240,000 unknown items answered 25 MB.
/// A stranger gets the small body limit; anyone gets at most 100 issues.
#[tokio::test]
async fn a_public_validate_has_the_small_body_limit_and_a_cap_on_issues() {
    let s = IntakeServer::embedded().await;
    let unknown = |n: usize| {
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"linkId": format!("x{i}"), "answer": [{"valueString": "y"}]}))
            .collect();
        let mut body = registration::response("Amani", "Otieno", "1995-07-15", None);
        body["item"] = Value::Array(items);
        body.to_string()
    };
    let validate = format!("{}/fhir/QuestionnaireResponse/$validate", s.base);
    // Over the 16 KiB these tests set: refused for a stranger...
    let big = unknown(2000);
    assert!(big.len() > 16 * 1024);
    let r = anonymous()
        .post(&validate)
        .header("content-type", "application/fhir+json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // ...checked for a token, with the issues capped.
    let r = s
        .client
        .post(&validate)
        .header("content-type", "application/fhir+json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let outcome: Value = r.json().await.unwrap();
    let issues = outcome["issue"].as_array().unwrap();
    assert_eq!(issues.len(), 101, "{}", issues.len());
    assert!(
        issues[100]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("more issues"),
        "{}",
        issues[100]
    );
}

/// Issue 21: 5,000 `name=` conditions answered 503 "database unavailable".
#[tokio::test]
async fn a_search_with_thousands_of_parameters_is_a_client_error() {
    let s = IntakeServer::embedded().await;
    let query: Vec<String> = (0..5000).map(|i| format!("name=n{i}")).collect();
    let r = s
        .client
        .get(format!("{}/fhir/Patient?{}", s.base, query.join("&")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let body: Value = r.json().await.unwrap();
    assert!(is_outcome(&body), "{body}");
}

// ---- 4. Login limits that hold under concurrency ----

/// Issue 21: 100 simultaneous wrong passwords got 31 checked (the limit is 5).
#[tokio::test]
async fn a_hundred_simultaneous_wrong_passwords_get_at_most_five_checked() {
    let app = TestApp::spawn().await;
    let password = app.add_user("frank", Role::FrontDesk).await;
    let attempts = (0..100).map(|i| {
        let app = &app;
        async move { app.login("frank", &format!("wrong-{i}")).await.status() }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(checked <= 5, "{checked} passwords checked");
    assert_eq!(checked + refused, 100, "{statuses:?}");
    // And the right one is refused now, from an address never signed in from.
    assert_eq!(
        app.login("frank", &password).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// The lockout-abuse escape: an address the name has signed in from keeps its
/// own count, so a stranger elsewhere cannot lock the front desk out.
#[tokio::test]
async fn a_stranger_locking_a_name_does_not_lock_out_its_usual_address() {
    let app = TestApp::spawn_with(|c| {
        c.guard.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let password = app.add_user("frank", Role::FrontDesk).await;
    let from = |forwarded: Option<&'static str>, password: String| {
        let mut request = app
            .client
            .post(app.url("/api/staff/login"))
            .json(&json!({"username": "frank", "password": password}));
        if let Some(address) = forwarded {
            request = request.header("x-forwarded-for", address);
        }
        async move { request.send().await.unwrap().status() }
    };
    // The desk signs in from its address (the proxy's own, here).
    assert_eq!(from(None, password.clone()).await, StatusCode::OK);
    // A stranger elsewhere locks the name.
    for _ in 0..5 {
        assert_eq!(
            from(Some("203.0.113.7"), "guess".into()).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        from(Some("203.0.113.7"), password.clone()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        from(Some("198.51.100.1"), password.clone()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The desk still gets in.
    assert_eq!(from(None, password.clone()).await, StatusCode::OK);
    // And its address has its own five.
    for _ in 0..5 {
        assert_eq!(from(None, "typo".into()).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(from(None, password).await, StatusCode::TOO_MANY_REQUESTS);
}

// ---- 5. An audit trail that detects truncation and rewriting ----

/// `n` read events about Patient/0…, recorded straight into the trail.
async fn record_reads(app: &TestApp, n: usize) {
    use backend::audit::{self, Action, Event, Kind, Outcome, Reference};
    for i in 0..n {
        let event = Event::new(
            Kind::Rest(audit::Interaction::Read),
            Action::R,
            Outcome::Success,
        )
        .on(Reference::parse(&format!("Patient/{i}")).unwrap());
        audit::record_alone(&app.db, std::time::SystemTime::now(), &event)
            .await
            .unwrap();
    }
}

async fn write_checkpoint(app: &TestApp) {
    backend::audit::checkpoint(&app.db, app.dir.path(), std::time::SystemTime::now(), None)
        .await
        .unwrap();
}

/// `intake audit verify`'s verdict (its last line) and whether it succeeded.
fn verify_cli(app: &TestApp) -> (bool, String) {
    let data = app.dir.path().to_str().unwrap().to_owned();
    let out = staff_common::intake_command(&["audit", "verify", "--data", &data]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        out.status.success(),
        stdout.lines().last().unwrap_or_default().to_owned(),
    )
}

async fn sql(app: &TestApp, statement: &str) {
    sqlx::query(statement).execute(&app.db).await.unwrap();
}

/// Issue 21: deleting the last 50 rows left a chain that held.
#[tokio::test]
async fn cutting_the_last_rows_shows_against_the_checkpoint() {
    let app = TestApp::spawn().await;
    record_reads(&app, 60).await;
    write_checkpoint(&app).await;
    let (ok, verdict) = verify_cli(&app);
    assert!(ok, "{verdict}");
    assert!(verdict.starts_with("ok: "), "{verdict}");
    let last: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM audit_event")
        .fetch_one(&app.db)
        .await
        .unwrap();
    sql(&app, "DROP TRIGGER audit_event_no_delete").await;
    sqlx::query("DELETE FROM audit_event WHERE seq > ?")
        .bind(last - 50)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(
        backend::audit::verify(&app.db).await.unwrap(),
        backend::audit::Verified::Ok {
            events: u64::try_from(last - 50).unwrap()
        },
        "the chain alone cannot tell"
    );
    let (ok, verdict) = verify_cli(&app);
    assert!(!ok);
    assert!(verdict.starts_with("truncated:"), "{verdict}");
    assert!(verdict.contains("at least 50 events"), "{verdict}");
}

/// Issue 21: an edited event with the chain recomputed (SHA-256, which anyone
/// can) held.
#[tokio::test]
async fn an_edited_event_with_the_chain_recomputed_is_caught() {
    let app = TestApp::spawn().await;
    record_reads(&app, 5).await;
    write_checkpoint(&app).await;
    sql(&app, "DROP TRIGGER audit_event_no_update").await;
    sql(
        &app,
        "UPDATE audit_event SET event = replace(event, 'Patient/1', 'Patient/9') WHERE event LIKE '%Patient/1\"%'",
    )
    .await;
    // Every link recomputed as a keyless chain would be.
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, event FROM audit_event ORDER BY seq")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let mut prev = backend::audit::GENESIS.to_owned();
    for (seq, event) in &rows {
        let hash = backend::audit::chain_hash(
            &prev,
            &backend::audit::canonical_json(&serde_json::from_str(event).unwrap()),
        );
        sqlx::query("UPDATE audit_event SET prev_hash = ?, hash = ?, keyed = 0 WHERE seq = ?")
            .bind(format!("{prev}-tmp-{seq}"))
            .bind(&hash)
            .bind(seq)
            .execute(&app.db)
            .await
            .unwrap();
        prev = hash;
    }
    // (prev_hash is UNIQUE: set in a second pass.)
    let mut prev = backend::audit::GENESIS.to_owned();
    for (seq, _) in &rows {
        sqlx::query("UPDATE audit_event SET prev_hash = ? WHERE seq = ?")
            .bind(&prev)
            .bind(seq)
            .execute(&app.db)
            .await
            .unwrap();
        prev = sqlx::query_scalar("SELECT hash FROM audit_event WHERE seq = ?")
            .bind(seq)
            .fetch_one(&app.db)
            .await
            .unwrap();
    }
    let (ok, verdict) = verify_cli(&app);
    assert!(!ok);
    assert!(verdict.starts_with("rewritten:"), "{verdict}");
}

/// Issue 21: rewritten `agent`, `patient` and `recorded` columns held (and
/// `AuditEvent?agent=clinician` then found nothing).
#[tokio::test]
async fn a_rewritten_agent_patient_or_recorded_column_breaks_the_chain() {
    let app = TestApp::spawn().await;
    record_reads(&app, 4).await;
    let seq: i64 = sqlx::query_scalar("SELECT MAX(seq) - 1 FROM audit_event")
        .fetch_one(&app.db)
        .await
        .unwrap();
    sql(&app, "DROP TRIGGER audit_event_no_update").await;
    for (column, value) in [
        ("agent", "someone-else"),
        ("patient", "Patient/999"),
        ("recorded", "2001-01-01T00:00:00.000Z"),
    ] {
        let before: Option<String> =
            sqlx::query_scalar(&format!("SELECT {column} FROM audit_event WHERE seq = ?"))
                .bind(seq)
                .fetch_one(&app.db)
                .await
                .unwrap();
        sqlx::query(&format!(
            "UPDATE audit_event SET {column} = ? WHERE seq = ?"
        ))
        .bind(value)
        .bind(seq)
        .execute(&app.db)
        .await
        .unwrap();
        assert_eq!(
            backend::audit::verify(&app.db).await.unwrap(),
            backend::audit::Verified::Broken { seq },
            "{column}"
        );
        sqlx::query(&format!(
            "UPDATE audit_event SET {column} = ? WHERE seq = ?"
        ))
        .bind(before)
        .bind(seq)
        .execute(&app.db)
        .await
        .unwrap();
    }
    assert!(matches!(
        backend::audit::verify(&app.db).await.unwrap(),
        backend::audit::Verified::Ok { .. }
    ));
}

/// The MAC's key is outside the database: a file only its owner reads.
#[cfg(unix)]
#[tokio::test]
async fn the_audit_key_is_a_file_only_its_owner_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = TestApp::spawn().await;
    let key = app.dir.path().join(backend::audit::KEY_FILE);
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&key).unwrap();
    let dump: Vec<String> = sqlx::query_scalar("SELECT hash || event FROM audit_event")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert!(!dump.iter().any(|row| row.contains(text.trim())));
}

/// Issue 21: the front desk's queue view showed names and birth years, and its
/// AuditEvent named no intake.
#[tokio::test]
async fn the_queue_view_names_each_item_it_showed() {
    let c = Clinic::start(|_| {}).await;
    let (desk, _) = c.app.signed_in("frank", Role::FrontDesk).await;
    let (_, answer) = registration::submit(&anonymous(), &c.app.base, "walk-in", &amani()).await;
    let task = c.task_of(answer["intake"].as_str().unwrap()).await;
    let r = c
        .app
        .as_staff(c.app.client.get(c.app.url("/api/staff/review")), &desk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let events = c.app.audit_events().await;
    let read = events
        .iter()
        .rev()
        .find(|e| e["agent"].to_string().contains("frank"))
        .unwrap();
    let named = read["entity"].to_string();
    assert!(
        named.contains(&format!("Task/{}", task["id"].as_str().unwrap())),
        "{read}"
    );
}

// ---- 6. The FHIR store keeps only valid FHIR ----

/// `POST /fhir/{type}` as a writer: the status and the answer.
async fn create(s: &IntakeServer, resource: &Value) -> (StatusCode, Value) {
    let r = s
        .client
        .post(format!(
            "{}/fhir/{}",
            s.base,
            resource["resourceType"].as_str().unwrap()
        ))
        .header("content-type", "application/fhir+json")
        .body(resource.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Refused with a 4xx `OperationOutcome` that names where, and echoes nothing.
async fn assert_refused(s: &IntakeServer, resource: Value, at: &str) {
    let (status, outcome) = create(s, &resource).await;
    assert!(status.is_client_error(), "{status} for {resource}");
    assert!(is_outcome(&outcome), "{outcome}");
    assert!(outcome.to_string().contains(at), "{at}: {outcome}");
    assert!(!outcome.to_string().contains("Zqmarkq"), "{outcome}");
}

#[tokio::test]
async fn a_code_outside_its_required_binding_is_refused_anywhere_in_the_resource() {
    let s = IntakeServer::embedded().await;
    assert_refused(
        &s,
        json!({"resourceType": "Patient", "contact": [{"gender": "Zqmarkq"}]}),
        "contact[0].gender",
    )
    .await;
    let (status, answer) = create(
        &s,
        &json!({"resourceType": "Patient", "contact": [{"gender": "female"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[tokio::test]
async fn a_date_or_date_time_that_is_not_one_is_refused() {
    let s = IntakeServer::embedded().await;
    assert_refused(
        &s,
        json!({"resourceType": "Patient", "contact": [{"period": {"start": "Zqmarkq"}}]}),
        "contact[0].period.start",
    )
    .await;
    assert_refused(
        &s,
        json!({"resourceType": "QuestionnaireResponse", "status": "completed", "authored": "Zqmarkq"}),
        "authored",
    )
    .await;
    assert_refused(
        &s,
        json!({"resourceType": "QuestionnaireResponse", "status": "completed", "authored": "2026-02-30T10:00:00Z"}),
        "authored",
    )
    .await;
}

#[tokio::test]
async fn a_single_value_where_a_list_belongs_is_refused() {
    let s = IntakeServer::embedded().await;
    assert_refused(
        &s,
        json!({"resourceType": "Patient", "name": [{"family": "Otieno", "given": "x"}]}),
        "name[0].given",
    )
    .await;
    assert_refused(
        &s,
        json!({"resourceType": "Patient", "name": {"family": "Otieno"}}),
        "name",
    )
    .await;
}

#[tokio::test]
async fn a_decimal_that_is_not_a_number_is_refused() {
    let s = IntakeServer::embedded().await;
    assert_refused(
        &s,
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "Weight"},
               "valueQuantity": {"value": "Zqmarkq", "unit": "kg"}}),
        "valueQuantity.value",
    )
    .await;
}

/// Issue 21: empty arrays made fhirbolt panic (caught, its backtrace logged).
#[tokio::test]
async fn empty_lists_and_nulls_are_refused_without_a_panic() {
    let s = IntakeServer::embedded().await;
    assert_refused(&s, json!({"resourceType": "Patient", "name": []}), "name").await;
    assert_refused(
        &s,
        json!({"resourceType": "Patient", "name": [{"given": []}]}),
        "name[0].given",
    )
    .await;
    assert_refused(
        &s,
        json!({"resourceType": "Patient", "telecom": [{"system": "phone", "value": null}]}),
        "telecom[0].value",
    )
    .await;
}

// ---- 3, continued. Costly forms ----

fn form_with_pattern(id: &str, pattern: &str, max_length: Option<u32>) -> Value {
    let mut item = json!({"linkId": "code", "type": "string", "text": "Code",
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/regex", "valueString": pattern}]});
    if let Some(max) = max_length {
        item["maxLength"] = json!(max);
    }
    json!({"resourceType": "Questionnaire", "id": id, "status": "active", "item": [item]})
}

async fn put_form(s: &IntakeServer, form: &Value) -> (StatusCode, Value) {
    let r = s
        .client
        .put(format!(
            "{}/fhir/Questionnaire/{}",
            s.base,
            form["id"].as_str().unwrap()
        ))
        .header("content-type", "application/fhir+json")
        .body(form.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Issue 21: `[a-z]{0,2000}Q` with no maxLength took 22 s on a 1 MB answer.
/// At import, a pattern too costly for the longest answer is refused; with a
/// maxLength that bounds its cost it is kept.
#[tokio::test]
async fn a_pattern_too_costly_for_its_answers_is_refused_at_import() {
    let s = IntakeServer::embedded().await;
    let (status, outcome) =
        put_form(&s, &form_with_pattern("costly", "[a-z]{0,2000}Q", None)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert!(outcome.to_string().contains("too-costly"), "{outcome}");
    let (status, outcome) = put_form(
        &s,
        &form_with_pattern("bounded", "[a-z]{0,2000}Q", Some(500)),
    )
    .await;
    assert!(status.is_success(), "{status}: {outcome}");
}

/// A form that sets no maxLength still bounds its answers.
#[tokio::test]
async fn an_answer_longer_than_the_default_bound_is_refused() {
    let s = IntakeServer::embedded().await;
    let (status, outcome) = put_form(&s, &form_with_pattern("plain", "^[a-z]+$", None)).await;
    assert!(status.is_success(), "{status}: {outcome}");
    let long = "a".repeat(shared::answers::DEFAULT_MAX_LENGTH as usize + 1);
    let response = json!({"resourceType": "QuestionnaireResponse", "questionnaire": "Questionnaire/plain",
        "status": "completed", "item": [{"linkId": "code", "answer": [{"valueString": long}]}]});
    let r = anonymous()
        .post(format!("{}/fhir/QuestionnaireResponse/$validate", s.base))
        .header("content-type", "application/fhir+json")
        .body(response.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let outcome: Value = r.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["code"], "too-long", "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "code", "{outcome}");
}
