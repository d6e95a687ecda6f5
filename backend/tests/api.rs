//! The server as a client sees it: spawned on 127.0.0.1:0 with a fresh data folder
//! and a small built app, spoken to over HTTP.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

mod common;
use common::{fixture_id, fixtures, valid_response};

const WASM: &[u8] =
    b"\0asm\x01\0\0\0 pretend this is a large WebAssembly module, repeated, repeated, repeated";
const WASM_FILE: &str = "frontend-0123456789abcdef_bg.wasm";
const INDEX: &str = "<!doctype html><html><head><title>Intake</title></head><body></body></html>";
/// The kiosk app's page (`dist/kiosk/index.html`, a build of its own).
const KIOSK_INDEX: &str =
    "<!doctype html><html><head><title>Intake kiosk</title></head><body></body></html>";
/// The staff app's page (`dist/staff/index.html`, a build of its own).
const STAFF_INDEX: &str =
    "<!doctype html><html><head><title>Intake staff</title></head><body></body></html>";

struct TestApp {
    base: String,
    client: reqwest::Client,
    data: TempDir,
    _dist: TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    async fn spawn() -> Self {
        Self::spawn_on(tempfile::tempdir().unwrap()).await
    }

    async fn spawn_on(data: TempDir) -> Self {
        let dist = tempfile::tempdir().unwrap();
        write_dist(dist.path());
        // Its client decompresses nothing, so encodings can be checked.
        let common::Spawned {
            base,
            stop,
            server,
            client,
        } = common::spawn_server(data.path(), dist.path()).await;
        Self {
            base,
            client,
            data,
            _dist: dist,
            stop: Some(stop),
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    async fn put_fhir(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .header("content-type", "application/fhir+json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_raw(path, "application/json", body.to_string())
            .await
    }

    async fn post_raw(&self, path: &str, content_type: &str, body: String) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Stops the server as SIGTERM would and hands back its data folder.
    async fn stop(mut self) -> TempDir {
        if let Some(stop) = self.stop.take() {
            stop.send(()).unwrap();
        }
        (&mut self.server).await.unwrap().unwrap();
        self.data
    }
}

fn write_dist(dir: &Path) {
    std::fs::write(dir.join("index.html"), INDEX).unwrap();
    std::fs::create_dir_all(dir.join("staff")).unwrap();
    std::fs::write(dir.join("staff").join("index.html"), STAFF_INDEX).unwrap();
    std::fs::create_dir_all(dir.join("kiosk")).unwrap();
    std::fs::write(dir.join("kiosk").join("index.html"), KIOSK_INDEX).unwrap();
    std::fs::write(dir.join(".trunk-lock"), "").unwrap();
    std::fs::write(dir.join(WASM_FILE), WASM).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(WASM).unwrap();
    std::fs::write(dir.join(format!("{WASM_FILE}.gz")), gz.finish().unwrap()).unwrap();
    let mut br = Vec::new();
    brotli::BrotliCompress(
        &mut &WASM[..],
        &mut br,
        &brotli::enc::BrotliEncoderParams::default(),
    )
    .unwrap();
    std::fs::write(dir.join(format!("{WASM_FILE}.br")), br).unwrap();
    std::fs::write(
        dir.join("favicon.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .unwrap();
}

fn jane() -> Value {
    json!({"family": "Doe", "given": ["Jane"], "birthDate": "1980-02-29", "gender": "female",
           "phone": "+1 617 555 0100", "email": "jane@example.org"})
}

async fn outcome(response: reqwest::Response) -> Value {
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/fhir+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    body
}

fn expressions(outcome: &Value) -> Vec<String> {
    outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
        .map(|e| e.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn health_reports_the_version_and_a_migrated_database() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/health").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"),
               "database": {"status": "ok", "schemaVersion": latest_migration()}})
    );
    assert!(app.data.path().join("intake.db").is_file());
}

#[tokio::test]
async fn the_example_demographics_are_valid_and_come_back_normalised() {
    let app = TestApp::spawn().await;
    let response = app.post_json("/api/demographics/validate", &jane()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["phone"], "+16175550100");
    assert_eq!(body["birthDate"], "1980-02-29");
    assert_eq!(body["given"], json!(["Jane"]));
}

#[tokio::test]
async fn invalid_demographics_get_422_naming_each_field() {
    let app = TestApp::spawn().await;
    let cases: &[(&str, Value, &[&str])] = &[
        (
            "future birth date",
            json!({"birthDate": "2999-01-01"}),
            &["birthDate"],
        ),
        (
            "impossible date",
            json!({"birthDate": "1981-02-29"}),
            &["birthDate"],
        ),
        (
            "before 1900",
            json!({"birthDate": "1899-12-31"}),
            &["birthDate"],
        ),
        (
            "bad email and phone",
            json!({"email": "jane@", "phone": "12"}),
            &["phone", "email"],
        ),
        ("unknown gender", json!({"gender": "f"}), &["gender"]),
        (
            "empty names",
            json!({"family": "", "given": []}),
            &["family", "given"],
        ),
    ];
    for (name, change, fields) in cases {
        let mut body = jane();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = app.post_json("/api/demographics/validate", &body).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}"
        );
        let outcome = outcome(response).await;
        assert_eq!(expressions(&outcome), *fields, "{name}: {outcome}");
        for issue in outcome["issue"].as_array().unwrap() {
            assert_eq!(issue["severity"], "error");
            assert!(!issue["diagnostics"].as_str().unwrap().is_empty());
        }
    }
}

#[tokio::test]
async fn bad_bodies_get_a_4xx_outcome_never_a_500() {
    let app = TestApp::spawn().await;
    let oversize = json!({"family": "x".repeat(20 * 1024)}).to_string();
    let cases: &[(&str, &str, String, StatusCode, &[&str])] = &[
        (
            "not JSON",
            "application/json",
            "{\"family\": ".into(),
            StatusCode::BAD_REQUEST,
            &[],
        ),
        (
            "trailing data",
            "application/json",
            "{} {}".into(),
            StatusCode::BAD_REQUEST,
            &[],
        ),
        (
            "list for object",
            "application/json",
            "[]".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            &[],
        ),
        (
            "text for list",
            "application/json",
            r#"{"given": "Zebulon"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            &["given"],
        ),
        (
            "number in list",
            "application/fhir+json",
            r#"{"given": ["Jane", 7]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            &["given[1]"],
        ),
        (
            "form post",
            "application/x-www-form-urlencoded",
            "family=Doe".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &[],
        ),
        (
            "oversize",
            "application/json",
            oversize,
            StatusCode::PAYLOAD_TOO_LARGE,
            &[],
        ),
    ];
    for (name, content_type, body, status, fields) in cases {
        let response = app
            .post_raw("/api/demographics/validate", content_type, body.clone())
            .await;
        assert_eq!(response.status(), *status, "{name}");
        let outcome = outcome(response).await;
        assert_eq!(expressions(&outcome), *fields, "{name}");
        // Submitted values are patient data: error bodies must not echo them.
        assert!(
            !outcome.to_string().contains("Zebulon"),
            "{name}: {outcome}"
        );
    }
}

#[tokio::test]
async fn unknown_api_routes_are_404_outcomes_not_the_app() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/nothing-here").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    outcome(response).await;
}

#[tokio::test]
async fn app_routes_get_index_html_and_missing_files_get_404() {
    let app = TestApp::spawn().await;
    for (path, page) in [
        ("/", INDEX),
        ("/intake/abc", INDEX),
        // The kiosk and staff apps are pages (and wasms) of their own.
        ("/kiosk", KIOSK_INDEX),
        ("/kiosks", INDEX),
        ("/staff", STAFF_INDEX),
        ("/staff/review", STAFF_INDEX),
        ("/staff/review/task-1", STAFF_INDEX),
        ("/staffing", INDEX),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-cache", "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(response.text().await.unwrap(), page, "{path}");
    }
    assert_eq!(
        app.get("/frontend-ffffffffffffffff.js").await.status(),
        StatusCode::NOT_FOUND
    );
    // Hidden files in dist/ (Trunk leaves a lock file there) are not served.
    assert_eq!(
        app.get("/.trunk-lock").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn hashed_files_are_cached_for_good_and_wasm_has_its_type() {
    let app = TestApp::spawn().await;
    let response = app.get(&format!("/{WASM_FILE}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/wasm");
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(response.bytes().await.unwrap(), WASM);
    let unhashed = app.get("/favicon.svg").await;
    assert_eq!(unhashed.headers()["cache-control"], "no-cache");
}

#[tokio::test]
async fn precompressed_files_go_to_browsers_that_accept_them() {
    let app = TestApp::spawn().await;
    for (accept, encoding) in [
        ("br", Some("br")),
        ("gzip", Some("gzip")),
        ("gzip, br", Some("br")),
        ("identity", None),
    ] {
        let response = app
            .client
            .get(app.url(&format!("/{WASM_FILE}")))
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "application/wasm",
            "{accept}"
        );
        let got = response
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(got.as_deref(), encoding, "{accept}");
        let body = response.bytes().await.unwrap();
        let decoded = match encoding {
            Some("br") => {
                let mut out = Vec::new();
                brotli::BrotliDecompress(&mut &body[..], &mut out).unwrap();
                out
            }
            Some(_) => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
                    .unwrap();
                out
            }
            None => body.to_vec(),
        };
        assert_eq!(decoded, WASM, "{accept}");
    }
}

#[tokio::test]
async fn api_answers_are_compressed_for_browsers_that_accept_it() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/api/demographics/validate"))
        .header("content-type", "application/json")
        .header("accept-encoding", "gzip")
        .body(json!({"family": "Doe ".repeat(10)}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        "/api/health",
        "/api/nope",
        "/missing.js",
        &format!("/{WASM_FILE}"),
    ] {
        let response = app.get(path).await;
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn api_answers_are_never_cached() {
    let app = TestApp::spawn().await;
    let ok = app.post_json("/api/demographics/validate", &jane()).await;
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let refused = app
        .post_json("/api/demographics/validate", &json!({}))
        .await;
    assert_eq!(refused.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn a_restart_on_the_same_data_folder_keeps_the_database() {
    let app = TestApp::spawn().await;
    let data = app.stop().await;
    let id_before = installation_id(data.path()).await;
    let app = TestApp::spawn_on(data).await;
    let health: Value = app.get("/api/health").await.json().await.unwrap();
    assert_eq!(health["database"]["schemaVersion"], latest_migration());
    let data = app.stop().await;
    assert_eq!(installation_id(data.path()).await, id_before);
}

/// The number of the newest file in `backend/migrations` (`0003_….sql` → 3).
fn latest_migration() -> i64 {
    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"))
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .split('_')
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap()
}

/// One value read straight from the database in `data`.
async fn scalar<T>(data: &Path, sql: &str) -> T
where
    T: Send + Unpin + for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", data.join("intake.db").display()))
        .await
        .unwrap();
    let value = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    value
}

async fn installation_id(data: &Path) -> String {
    let id: String = scalar(data, "SELECT id FROM installation").await;
    assert_eq!(id.len(), 32);
    id
}

fn fixture(part: &str) -> String {
    fixtures()
        .into_iter()
        .find(|(name, _)| name.contains(part))
        .unwrap()
        .1
}

fn phq9() -> String {
    fixture("phq9")
}

#[tokio::test]
async fn a_questionnaire_is_stored_read_back_and_versioned() {
    let app = TestApp::spawn().await;
    let created = app.put_fhir("/fhir/Questionnaire/phq9", &phq9()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["etag"], "W/\"1\"");
    assert_eq!(
        created.headers()["location"],
        "/fhir/Questionnaire/phq9/_history/1"
    );
    assert_eq!(created.headers()["content-type"], "application/fhir+json");
    let body: Value = created.json().await.unwrap();
    assert_eq!(
        (body["id"].as_str(), body["meta"]["versionId"].as_str()),
        (Some("phq9"), Some("1"))
    );

    let read = app.get("/fhir/Questionnaire/phq9").await;
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read, body);
    // Everything the file had is kept, extensions included.
    let original: Value = serde_json::from_str(&phq9()).unwrap();
    assert_eq!(read["item"], original["item"]);

    // The same content again is no new version...
    let same = app.put_fhir("/fhir/Questionnaire/phq9", &phq9()).await;
    assert_eq!(same.status(), StatusCode::OK);
    assert_eq!(same.headers()["etag"], "W/\"1\"");
    // ...a change is.
    let mut changed: Value = serde_json::from_str(&phq9()).unwrap();
    changed["title"] = "PHQ-9, revised".into();
    let updated = app
        .put_fhir("/fhir/Questionnaire/phq9", &changed.to_string())
        .await;
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(updated.headers()["etag"], "W/\"2\"");
    let form: shared::form::CompiledForm = app.get("/api/forms/phq9").await.json().await.unwrap();
    assert_eq!(form.form.title, "PHQ-9, revised");
}

#[tokio::test]
async fn questionnaires_are_found_by_canonical_url() {
    let app = TestApp::spawn().await;
    let gad7 = fixture("GAD-7");
    app.put_fhir("/fhir/Questionnaire/gad7", &gad7).await;
    let url = serde_json::from_str::<Value>(&gad7).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let found: Value = app
        .client
        .get(app.url("/fhir/Questionnaire"))
        .query(&[("url", url.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["resourceType"], "Bundle");
    assert_eq!(found["type"], "searchset");
    assert_eq!(found["total"], 1);
    assert_eq!(found["entry"][0]["resource"]["id"], "gad7");
    assert!(
        found["entry"][0]["fullUrl"]
            .as_str()
            .unwrap()
            .ends_with("/fhir/Questionnaire/gad7")
    );
    let none: Value = app
        .get("/fhir/Questionnaire?url=http://example.org/none")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["total"], 0);
}

#[tokio::test]
async fn every_fixture_is_accepted_and_its_compiled_form_served() {
    let app = TestApp::spawn().await;
    for (name, json) in fixtures() {
        let id = fixture_id(&name, &json);
        let response = app
            .put_fhir(&format!("/fhir/Questionnaire/{id}"), &json)
            .await;
        let status = response.status();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{name}: {}",
            response.text().await.unwrap()
        );
        let form = app.get(&format!("/api/forms/{id}")).await;
        assert_eq!(form.status(), StatusCode::OK, "{name}");
        // The compiled form crosses to the browser as shared types: it must decode
        // here too, where fhirbolt has turned on serde_json's arbitrary_precision.
        let text = form.text().await.unwrap();
        let compiled: shared::form::CompiledForm = serde_json::from_str(&text).unwrap();
        assert_eq!(compiled.form.id, id);
        assert!(!compiled.form.items.is_empty(), "{name}");
        // The browser reads it with `shared::json`, not serde: the same form.
        let in_browser: Option<shared::form::CompiledForm> = shared::json::from_str(&text);
        assert_eq!(in_browser.as_ref(), Some(&compiled), "{name}");
    }
}

#[tokio::test]
async fn unusable_questionnaires_are_refused_naming_the_path_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let cases: &[(&str, &str, StatusCode, &[&str])] = &[
        (
            "no type",
            r#"{"resourceType": "Questionnaire", "status": "active", "item": [{"linkId": "a"}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            &["Questionnaire.item[0].type"],
        ),
        (
            "other id",
            r#"{"resourceType": "Questionnaire", "id": "other", "status": "active"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            &["id"],
        ),
        (
            "a Patient",
            r#"{"resourceType": "Patient"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            &["resourceType"],
        ),
        (
            "not JSON",
            r#"{"resourceType": "Questionnaire", "#,
            StatusCode::BAD_REQUEST,
            &[],
        ),
    ];
    for (name, body, status, expressions_expected) in cases {
        let response = app.put_fhir("/fhir/Questionnaire/q1", body).await;
        assert_eq!(response.status(), *status, "{name}");
        let outcome = outcome(response).await;
        assert_eq!(
            expressions(&outcome),
            *expressions_expected,
            "{name}: {outcome}"
        );
    }
    let bad_id = app.put_fhir("/fhir/Questionnaire/a_b", &phq9()).await;
    assert_eq!(bad_id.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get("/fhir/Questionnaire/q1").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/forms/q1").await.status(),
        StatusCode::NOT_FOUND
    );
    outcome(app.get("/fhir/Questionnaire/q1").await).await;
}

#[tokio::test]
async fn a_large_questionnaire_fits_the_fhir_body_limit() {
    let app = TestApp::spawn().await;
    // The Cardiology form is 262 kB, above the /api limit, within /fhir's.
    let (_, cardiology) = fixtures()
        .into_iter()
        .find(|(n, _)| n.contains("Cardiology"))
        .unwrap();
    assert!(cardiology.len() > 16 * 1024);
    let response = app
        .put_fhir("/fhir/Questionnaire/CardiologyForm", &cardiology)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn validate_response(app: &TestApp, response: &impl serde::Serialize) -> Value {
    let body = serde_json::to_string(response).unwrap();
    let answer = app
        .client
        .post(app.url("/fhir/QuestionnaireResponse/$validate"))
        .header("content-type", "application/fhir+json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    outcome(answer).await
}

#[tokio::test]
async fn generated_responses_to_every_fixture_are_accepted_and_broken_ones_refused_at_the_right_item()
 {
    let app = TestApp::spawn().await;
    for (name, json) in fixtures() {
        let id = fixture_id(&name, &json);
        assert_eq!(
            app.put_fhir(&format!("/fhir/Questionnaire/{id}"), &json)
                .await
                .status(),
            StatusCode::CREATED
        );
        let compiled: shared::form::CompiledForm = app
            .get(&format!("/api/forms/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let response = valid_response(&compiled.form);

        let outcome = validate_response(&app, &response).await;
        assert_eq!(
            outcome["issue"][0]["severity"], "information",
            "{name}: {outcome}"
        );
        assert_eq!(outcome["issue"].as_array().unwrap().len(), 1, "{name}");

        // Break the first top-level answer: a value of the wrong type.
        let mut broken = response.clone();
        let Some(first) = broken.item.iter_mut().find(|i| !i.answer.is_empty()) else {
            continue;
        };
        let link_id = first.link_id.clone();
        first.answer[0].value =
            if matches!(first.answer[0].value, shared::form::Value::Reference(_)) {
                shared::form::Value::Boolean(true)
            } else {
                shared::form::Value::Reference("Patient/wrong".into())
            };
        let outcome = validate_response(&app, &broken).await;
        assert_eq!(expressions(&outcome), [link_id], "{name}: {outcome}");
        assert_eq!(outcome["issue"][0]["severity"], "error");
    }
}

#[tokio::test]
async fn validate_accepts_parameters_and_refuses_responses_to_unknown_forms() {
    let app = TestApp::spawn().await;
    let gad7 = fixture("GAD-7");
    app.put_fhir("/fhir/Questionnaire/gad7", &gad7).await;
    let url = serde_json::from_str::<Value>(&gad7).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    // By canonical URL, inside Parameters, as FHIR's $validate allows.
    let parameters = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource":
        {"resourceType": "QuestionnaireResponse", "questionnaire": format!("{url}|1.0"), "status": "completed"}}]});
    let missing = validate_response(&app, &parameters).await;
    // GAD-7 requires its answers: what is missing is named.
    assert!(!expressions(&missing).is_empty(), "{missing}");
    assert!(
        missing["issue"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["code"] == "required"),
        "{missing}"
    );

    let unknown = json!({"resourceType": "QuestionnaireResponse", "questionnaire": "Questionnaire/nope", "status": "completed"});
    let response = app
        .client
        .post(app.url("/fhir/QuestionnaireResponse/$validate"))
        .header("content-type", "application/fhir+json")
        .body(unknown.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        expressions(&outcome(response).await),
        ["QuestionnaireResponse.questionnaire"]
    );
}

async fn post_extract(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/fhir/QuestionnaireResponse/$extract"))
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn extract_answers_a_transaction_bundle_and_refuses_bad_input_at_the_link_id() {
    let app = TestApp::spawn().await;
    let demographics = fixture("hl7sdc--demographics");
    assert_eq!(
        app.put_fhir("/fhir/Questionnaire/demographics", &demographics)
            .await
            .status(),
        StatusCode::CREATED
    );
    let url = "http://hl7.org/fhir/uv/sdc/Questionnaire/demographics";
    let response = |birth_date: Value, id: &str| {
        json!({"resourceType": "QuestionnaireResponse", "questionnaire": url, "status": "completed",
            "item": [{"linkId": "patient.id", "answer": [{"valueString": id}]},
                     {"linkId": "patient.birthDate", "answer": [birth_date]},
                     {"linkId": "patient.name", "item": [{"linkId": "patient.name.family", "answer": [{"valueString": "Chalmers"}]},
                         {"linkId": "patient.name.given", "answer": [{"valueString": "Peter"}]}]}]})
    };
    let ok = post_extract(&app, &response(json!({"valueDate": "1974-12-25"}), "pat-1")).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["content-type"], "application/fhir+json");
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let bundle: Value = ok.json().await.unwrap();
    assert_eq!(
        (&bundle["resourceType"], &bundle["type"]),
        (&json!("Bundle"), &json!("transaction"))
    );
    let entry = &bundle["entry"][0];
    assert!(entry["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));
    assert_eq!(
        entry["request"],
        json!({"method": "PUT", "url": "Patient/pat-1"})
    );
    assert_eq!(entry["resource"]["birthDate"], "1974-12-25");
    assert_eq!(
        entry["resource"]["name"],
        json!([{"family": "Chalmers", "given": ["Peter"]}])
    );

    // Inside Parameters, as SDC's operation takes it.
    let parameters = json!({"resourceType": "Parameters", "parameter": [
        {"name": "questionnaire-response", "resource": response(json!({"valueDate": "1974"}), "pat-1")}]});
    assert_eq!(
        post_extract(&app, &parameters).await.status(),
        StatusCode::OK
    );

    // An answer of the wrong type: refused as $validate would, at its linkId.
    let wrong = post_extract(&app, &response(json!({"valueBoolean": true}), "pat-1")).await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(expressions(&outcome(wrong).await), ["patient.birthDate"]);
    // A valid answer that cannot be a FHIR id: refused at its linkId, not echoed.
    let bad_id = post_extract(&app, &response(json!({"valueDate": "1974"}), "not an id!")).await;
    assert_eq!(bad_id.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad_id = outcome(bad_id).await;
    assert_eq!(expressions(&bad_id), ["patient.id"]);
    assert!(!bad_id.to_string().contains("not an id!"), "{bad_id}");
    // Not a response, to an unknown form, or not JSON: 4xx outcomes.
    let not_a_response = post_extract(&app, &json!({"resourceType": "Patient"})).await;
    assert_eq!(not_a_response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = post_extract(
        &app,
        &json!({"resourceType": "QuestionnaireResponse", "questionnaire": "Questionnaire/nope", "status": "completed"}),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        expressions(&outcome(unknown).await),
        ["QuestionnaireResponse.questionnaire"]
    );
    let garbage = app
        .post_raw(
            "/fhir/QuestionnaireResponse/$extract",
            "application/fhir+json",
            "{".into(),
        )
        .await;
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn extract_reports_unused_metadata_as_issues_beside_the_bundle() {
    let app = TestApp::spawn().await;
    app.put_fhir(
        "/fhir/Questionnaire/extract-complex-defn3",
        &fixture("extract-complex-defn3"),
    )
    .await;
    let compiled: shared::form::CompiledForm = app
        .get("/api/forms/extract-complex-defn3")
        .await
        .json()
        .await
        .unwrap();
    let body = serde_json::to_value(valid_response(&compiled.form)).unwrap();
    let answer = post_extract(&app, &body).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let parameters: Value = answer.json().await.unwrap();
    assert_eq!(parameters["resourceType"], "Parameters");
    assert_eq!(parameters["parameter"][0]["name"], "return");
    assert_eq!(
        parameters["parameter"][0]["resource"]["resourceType"],
        "Bundle"
    );
    assert_eq!(parameters["parameter"][1]["name"], "issues");
    let issues = &parameters["parameter"][1]["resource"];
    assert_eq!(issues["resourceType"], "OperationOutcome");
    assert!(
        issues["issue"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["severity"] == "warning" && i["expression"] == json!(["complication"])),
        "{issues}"
    );
}

/// Regression: `today()` was empty on the server, so an item enabled by a date
/// condition counted as disabled and its answer was refused.
#[tokio::test]
async fn expressions_on_the_server_see_todays_date() {
    let app = TestApp::spawn().await;
    let form = json!({"resourceType": "Questionnaire", "id": "dated", "status": "active",
        "item": [{"linkId": "since-2000", "type": "string", "text": "Asked from 2000 on",
            "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression",
                "valueExpression": {"language": "text/fhirpath", "expression": "today() >= @2000-01-01"}}]},
          {"linkId": "before-2000", "type": "string", "text": "Asked before 2000 only",
            "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression",
                "valueExpression": {"language": "text/fhirpath", "expression": "today() < @2000-01-01"}}]}]});
    app.put_fhir("/fhir/Questionnaire/dated", &form.to_string())
        .await;
    let answer = |link_id: &str| {
        json!({"resourceType": "QuestionnaireResponse", "questionnaire": "Questionnaire/dated", "status": "completed",
            "item": [{"linkId": link_id, "answer": [{"valueString": "yes"}]}]})
    };
    let enabled = validate_response(&app, &answer("since-2000")).await;
    assert_eq!(enabled["issue"][0]["severity"], "information", "{enabled}");
    let disabled = validate_response(&app, &answer("before-2000")).await;
    assert_eq!(expressions(&disabled), ["before-2000"], "{disabled}");
}

/// The built-in registration form answered with this birth date.
fn registration_with_birth_date(date: &str) -> Value {
    json!({"resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:intake:questionnaire:registration", "status": "completed",
        "item": [
            {"linkId": "name", "item": [
                {"linkId": "family", "answer": [{"valueString": "Doe"}]},
                {"linkId": "given", "answer": [{"valueString": "Jane"}]}]},
            {"linkId": "birth-date", "answer": [{"valueDate": date}]},
            {"linkId": "gender", "answer": [{"valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": "female", "display": "Female"}}]}]})
}

/// Regression: the registration form took a birth date in the future. The
/// server does not know the patient's time zone, so the latest date anywhere on
/// Earth (UTC+14) is still today for someone and is accepted; the day after is
/// refused, a 422 at the item's linkId, wherever a birth date comes in, and
/// nothing answers 500.
#[tokio::test]
async fn a_birth_date_after_today_anywhere_on_earth_is_refused_at_its_link_id() {
    use shared::date::Date;
    let app = TestApp::spawn().await;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let latest = i64::try_from((secs + 14 * 3600) / 86_400).unwrap();
    let today_somewhere = Date::from_days_since_epoch(latest).to_string();
    let tomorrow_everywhere = Date::from_days_since_epoch(latest + 1).to_string();

    // $validate: the same check as the browser's, with the server's "today".
    let ok = validate_response(&app, &registration_with_birth_date(&today_somewhere)).await;
    assert_eq!(ok["issue"][0]["severity"], "information", "{ok}");
    for future in [tomorrow_everywhere.as_str(), "2999-01-01"] {
        let refused = validate_response(&app, &registration_with_birth_date(future)).await;
        assert_eq!(expressions(&refused), ["birth-date"], "{future}: {refused}");
        assert_eq!(refused["issue"][0]["code"], "value", "{refused}");
        assert_eq!(
            refused["issue"][0]["diagnostics"], "The date cannot be later than today",
            "{refused}"
        );
    }

    // An intake: refused before anything is stored, never a 500.
    let send = |key: &str, date: &str| {
        app.client
            .post(app.url("/api/intakes"))
            .header("content-type", "application/fhir+json")
            .header("idempotency-key", key)
            .body(registration_with_birth_date(date).to_string())
            .send()
    };
    let res = send("future", &tomorrow_everywhere).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(expressions(&outcome(res).await), ["birth-date"]);
    let res = send("today", &today_somewhere).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    // The demographics check and $match: 422 and 200, never a 500.
    let mut body = jane();
    body["birthDate"] = json!(today_somewhere);
    let res = app.post_json("/api/demographics/validate", &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    body["birthDate"] = json!(tomorrow_everywhere);
    let res = app.post_json("/api/demographics/validate", &body).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(expressions(&outcome(res).await), ["birthDate"]);
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "resource",
        "resource": {"resourceType": "Patient", "name": [{"family": "Doe", "given": ["Jane"]}],
            "birthDate": tomorrow_everywhere}}]});
    let res = app
        .post_raw(
            "/fhir/Patient/$match",
            "application/fhir+json",
            params.to_string(),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
}

/// A PHQ-2 scored the standard SDC way: the answers' ordinals summed with
/// `aggregate()` into a variable the total reads; `score` the variable's
/// expression.
fn phq2(id: &str, score: &str) -> String {
    let option = |code: &str, ordinal: i64| {
        json!({"valueCoding": {"system": "http://loinc.org", "code": code},
               "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue",
                              "valueDecimal": ordinal}]})
    };
    let question = |link: &str| {
        json!({"linkId": link, "text": link, "type": "choice", "answerOption": [
            option("LA6568-5", 0), option("LA6569-3", 1), option("LA6570-1", 2), option("LA6571-9", 3)]})
    };
    json!({"resourceType": "Questionnaire", "id": id, "status": "active", "title": "PHQ-2",
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/variable",
            "valueExpression": {"name": "score", "language": "text/fhirpath", "expression": score}}],
        "item": [question("q1"), question("q2"),
            {"linkId": "total", "text": "Total", "type": "integer", "readOnly": true, "extension": [
                {"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression",
                 "valueExpression": {"language": "text/fhirpath", "expression": "%score"}}]}]})
    .to_string()
}

fn phq2_response(id: &str, total: i64) -> Value {
    let coding =
        |code: &str| json!([{"valueCoding": {"system": "http://loinc.org", "code": code}}]);
    json!({"resourceType": "QuestionnaireResponse", "questionnaire": format!("Questionnaire/{id}"),
        "status": "completed", "item": [
            {"linkId": "q1", "answer": coding("LA6569-3")},
            {"linkId": "q2", "answer": coding("LA6570-1")},
            {"linkId": "total", "answer": [{"valueInteger": total}]}]})
}

/// The issue's case: a PHQ-2 scored with `aggregate()` is checked (3 is right,
/// 4 is refused); and a value sent for a calculated item whose expression the
/// server cannot evaluate is kept as sent with a warning, never a 422.
#[tokio::test]
async fn a_phq2_scored_with_aggregate_is_checked_and_what_cannot_be_evaluated_is_kept() {
    let app = TestApp::spawn().await;
    let standard = "%resource.repeat(item).where(linkId = 'q1' or linkId = 'q2')\
                    .answer.value.ordinal().aggregate($this + $total, 0)";
    let res = app
        .put_fhir("/fhir/Questionnaire/phq2", &phq2("phq2", standard))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let outcome = validate_response(&app, &phq2_response("phq2", 3)).await;
    assert_eq!(outcome["issue"].as_array().unwrap().len(), 1, "{outcome}");
    assert_eq!(outcome["issue"][0]["severity"], "information", "{outcome}");
    let outcome = validate_response(&app, &phq2_response("phq2", 4)).await;
    assert_eq!(expressions(&outcome), ["total"], "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "business-rule", "{outcome}");

    // Several values where one is needed: the server cannot evaluate it.
    let broken = "%resource.repeat(item).answer.value.ordinal() + 0";
    let res = app
        .put_fhir("/fhir/Questionnaire/phq2b", &phq2("phq2b", broken))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let outcome = validate_response(&app, &phq2_response("phq2b", 3)).await;
    let severities: Vec<&str> = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["severity"].as_str().unwrap())
        .collect();
    assert_eq!(severities, ["information", "warning"], "{outcome}");
    assert_eq!(expressions(&outcome), ["total"], "{outcome}");
    let res = app
        .post_raw(
            "/fhir/QuestionnaireResponse/$extract",
            "application/fhir+json",
            phq2_response("phq2b", 3).to_string(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(
        body.to_string().contains("kept as sent"),
        "the warning is in what $extract returns: {body}"
    );
}

/// The PHQ-9's total is calculated from the answers (`calculatedExpression`):
/// the server works it out again and refuses a total that does not match, at its
/// linkId, before anything is stored.
#[tokio::test]
async fn a_calculated_score_that_does_not_match_the_answers_is_refused_at_its_link_id() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.put_fhir("/fhir/Questionnaire/phq9", &phq9())
            .await
            .status(),
        StatusCode::CREATED
    );
    // "Several days" (1 point) to each of the eight required questions.
    let questions = [
        "/44250-9", "/44255-8", "/44259-0", "/44254-1", "/44251-7", "/44258-2", "/44252-5",
        "/44253-3",
    ];
    let response = |total: Option<f64>| {
        let mut item: Vec<Value> = questions
            .iter()
            .map(|q| {
                json!({"linkId": q, "answer": [{"valueCoding":
                    {"system": "http://loinc.org", "code": "LA6569-3", "display": "Several days"}}]})
            })
            .collect();
        if let Some(total) = total {
            item.push(json!({"linkId": "/44261-6", "answer": [{"valueDecimal": total}]}));
        }
        json!({"resourceType": "QuestionnaireResponse", "questionnaire": "Questionnaire/phq9",
               "status": "completed", "item": item})
    };
    for (total, refused) in [
        (Some(8.0), false),
        (None, false),
        (Some(0.0), true),
        (Some(27.0), true),
    ] {
        let outcome = validate_response(&app, &response(total)).await;
        if refused {
            assert_eq!(expressions(&outcome), ["/44261-6"], "{total:?}: {outcome}");
            assert_eq!(outcome["issue"][0]["code"], "business-rule", "{outcome}");
        } else {
            assert_eq!(
                outcome["issue"][0]["severity"], "information",
                "{total:?}: {outcome}"
            );
        }
    }
    // Sent as an intake: 422 at the item, and nothing stored.
    let res = app
        .client
        .post(app.url("/api/intakes"))
        .header("content-type", "application/fhir+json")
        .header("idempotency-key", "phq9-wrong-total")
        .body(response(Some(0.0)).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(expressions(&outcome(res).await), ["/44261-6"]);
    let stored: i64 = scalar(app.data.path(), "SELECT count(*) FROM intake").await;
    assert_eq!(stored, 0);
}
