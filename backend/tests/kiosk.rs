//! Kiosks: registered by an admin (command line or API), enrolled once with a
//! single-use, expiring code, refused once revoked, never staff; their intakes
//! carry the kiosk's name in Provenance, and all of it is on the audit trail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod staff_common;

use backend::auth::Role;
use serde_json::{Value, json};
use staff_common::{Session, TestApp, intake_command};

const KIOSK_COOKIE: &str = "__Host-intake-kiosk";

/// The server's own registration form, answered for one person.
fn registration(family: &str, given: &str) -> Value {
    registration_born(family, given, "1984-03-09")
}

fn registration_born(family: &str, given: &str, birth: &str) -> Value {
    json!({
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "Questionnaire/registration",
        "status": "completed",
        "item": [
            {"linkId": "name", "item": [
                {"linkId": "family", "answer": [{"valueString": family}]},
                {"linkId": "given", "answer": [{"valueString": given}]}
            ]},
            {"linkId": "birth-date", "answer": [{"valueDate": birth}]},
            {"linkId": "gender", "answer": [{"valueCoding": {
                "system": "http://hl7.org/fhir/administrative-gender", "code": "female", "display": "Female"}}]}
        ]
    })
}

/// A second form, so a kiosk can be given one and not the other.
async fn store_second_form(app: &TestApp) {
    let form = json!({
        "resourceType": "Questionnaire", "id": "consent", "status": "active",
        "title": "Consent to treatment",
        "item": [{"linkId": "agree", "type": "boolean", "text": "I agree", "required": true}]
    });
    backend::questionnaires::save(&app.db, &backend::clock::SystemClock, "consent", form)
        .await
        .unwrap();
}

async fn admin_session(app: &TestApp) -> Session {
    let password = app.add_user("ada", Role::Admin).await;
    app.login_session(app.login("ada", &password).await).await
}

/// `POST /api/admin/kiosks` as the admin session.
async fn add_kiosk(app: &TestApp, admin: &Session, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/admin/kiosks"))
        .header("cookie", format!("__Host-intake-session={}", admin.id))
        .header("x-csrf-token", &admin.csrf)
        .header("origin", &app.base)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn enroll(app: &TestApp, code: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/kiosk/enroll"))
        .header("origin", &app.base)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap()
}

/// The device secret of a successful enrolment.
fn device_secret(res: &reqwest::Response) -> String {
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    let pair = cookie.split(';').next().unwrap();
    let (name, value) = pair.split_once('=').unwrap();
    assert_eq!(name, KIOSK_COOKIE);
    value.to_owned()
}

async fn kiosk_get(app: &TestApp, path: &str, secret: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("cookie", format!("{KIOSK_COOKIE}={secret}"))
        .send()
        .await
        .unwrap()
}

async fn submit(app: &TestApp, secret: Option<&str>, key: &str, body: &Value) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/intakes"))
        .header("idempotency-key", key)
        .json(body);
    if let Some(secret) = secret {
        req = req.header("cookie", format!("{KIOSK_COOKIE}={secret}"));
    }
    req.send().await.unwrap()
}

/// Adds a kiosk with the command line, returning the code (its last line).
fn cli_add(app: &TestApp, name: &str, forms: &[&str]) -> String {
    let data = app.dir.path().to_str().unwrap().to_owned();
    let mut args = vec!["kiosk", "add", "--data", &data, "--name", name];
    for form in forms {
        args.extend(["--form", form]);
    }
    let out = intake_command(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().unwrap().to_owned()
}

fn subtype(event: &Value) -> &str {
    event["subtype"][0]["code"].as_str().unwrap()
}

fn agent_name(event: &Value) -> Option<&str> {
    event["agent"][0]["who"]["identifier"]["value"].as_str()
}

#[tokio::test]
async fn a_code_from_the_command_line_enrols_one_device_once_and_is_kept_only_hashed() {
    let app = TestApp::spawn().await;
    let code = cli_add(&app, "Front desk 1", &["registration"]);
    // 28 base32 characters in groups of four: 140 bits.
    assert_eq!(code.len(), 34, "{code}");
    let stored: Vec<String> = sqlx::query_scalar("SELECT code_sha256 FROM kiosk")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], code);
    assert!(!stored[0].contains(&code.replace('-', "")));

    // Typed as people type it: lower case, spaces for dashes.
    let typed = code.to_lowercase().replace('-', " ");
    let res = enroll(&app, &typed).await;
    assert_eq!(res.status(), 200);
    let secret = device_secret(&res);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["name"], "Front desk 1");
    assert_eq!(me["idleSeconds"], 60);
    assert_eq!(me["warnSeconds"], 20);
    assert_eq!(
        me["forms"],
        json!([{"id": "registration", "title": "Your details"}])
    );
    let devices: Vec<String> = sqlx::query_scalar("SELECT device_sha256 FROM kiosk")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_ne!(devices[0], secret);
    assert_eq!(devices[0].len(), 64);

    // Single use: a second browser with the same code is refused, one message.
    let again = enroll(&app, &code).await;
    assert_eq!(again.status(), 401);
    assert!(again.headers().get("set-cookie").is_none());
    let wrong = enroll(&app, "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        again.text().await.unwrap(),
        wrong.text().await.unwrap(),
        "a used code and a wrong one must look the same"
    );
    // The first device still works.
    assert_eq!(
        kiosk_get(&app, "/api/kiosk/me", &secret).await.status(),
        200
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = TestApp::spawn().await;
    let code = cli_add(&app, "Lobby", &["registration"]);
    // A day and a moment later.
    sqlx::query("UPDATE kiosk SET code_expires_at = code_expires_at - 86400001")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(enroll(&app, &code).await.status(), 401);
    // Fresh codes expire a day after they are made, not later.
    let code = cli_add(&app, "Lobby 2", &["registration"]);
    let expires: i64 =
        sqlx::query_scalar("SELECT code_expires_at FROM kiosk WHERE name = 'Lobby 2'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    assert!(
        (expires - now_ms - 86_400_000).abs() < 60_000,
        "{expires} vs {now_ms}"
    );
    assert_eq!(enroll(&app, &code).await.status(), 200);
}

#[tokio::test]
async fn the_device_cookie_is_host_only_secure_http_only_strict_and_long_lived() {
    let app = TestApp::spawn().await;
    let code = cli_add(&app, "Front desk 1", &["registration"]);
    let res = enroll(&app, &code).await;
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let attributes: Vec<&str> = cookie.split("; ").skip(1).collect();
    for wanted in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(attributes.contains(&wanted), "{cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let max_age: u64 = attributes
        .iter()
        .find_map(|a| a.strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_age >= 365 * 24 * 3600, "{cookie}");
    // 256 random bits, URL-safe.
    assert_eq!(device_secret(&res).len(), 43);
}

#[tokio::test]
async fn enrolment_from_another_site_is_refused() {
    let app = TestApp::spawn().await;
    let code = cli_add(&app, "Front desk 1", &["registration"]);
    let res = app
        .client
        .post(app.url("/api/kiosk/enroll"))
        .header("origin", "https://evil.example")
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // The code was not spent by the refused attempt.
    assert_eq!(enroll(&app, &code).await.status(), 200);
}

#[tokio::test]
async fn admins_add_list_and_revoke_kiosks_and_a_revoked_device_is_refused() {
    let app = TestApp::spawn().await;
    store_second_form(&app).await;
    let admin = admin_session(&app).await;
    let res = add_kiosk(
        &app,
        &admin,
        &json!({"name": "Waiting room", "forms": ["consent", "registration"], "idleSeconds": 3, "warnSeconds": 2}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let added: Value = res.json().await.unwrap();
    let id = added["id"].as_i64().unwrap();
    let code = added["code"].as_str().unwrap().to_owned();

    let res = enroll(&app, &code).await;
    let secret = device_secret(&res);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["idleSeconds"], 3);
    assert_eq!(me["warnSeconds"], 2);
    // Its forms, in the order given, and no other.
    assert_eq!(
        me["forms"],
        json!([{"id": "consent", "title": "Consent to treatment"}, {"id": "registration", "title": "Your details"}])
    );

    let list: Value = app
        .get_with_cookie("/api/admin/kiosks", &admin.id)
        .await
        .json()
        .await
        .unwrap();
    let listed = &list["kiosks"][0];
    assert_eq!(listed["name"], "Waiting room");
    assert!(listed["enrolledAt"].is_string());
    assert!(listed["revokedAt"].is_null());
    assert!(
        !list.to_string().contains(&code),
        "the list never shows a code"
    );

    // Revoking needs the CSRF token.
    let forged = app
        .client
        .delete(app.url(&format!("/api/admin/kiosks/{id}")))
        .header("cookie", format!("__Host-intake-session={}", admin.id))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        kiosk_get(&app, "/api/kiosk/me", &secret).await.status(),
        200
    );

    let revoke = |id: String| {
        app.client
            .delete(app.url(&format!("/api/admin/kiosks/{id}")))
            .header("cookie", format!("__Host-intake-session={}", admin.id))
            .header("x-csrf-token", &admin.csrf)
            .send()
    };
    assert_eq!(revoke(id.to_string()).await.unwrap().status(), 204);
    let refused = kiosk_get(&app, "/api/kiosk/me", &secret).await;
    assert_eq!(refused.status(), 401);
    assert!(
        refused.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"),
        "the revoked device's cookie is cleared"
    );
    let outcome: Value = refused.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    // Nor can it send an intake, as a kiosk or as anyone.
    let res = submit(
        &app,
        Some(&secret),
        "k-revoked",
        &registration("Doe", "Jane"),
    )
    .await;
    assert_eq!(res.status(), 401);
    let intakes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM intake")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(intakes, 0);
    // Revoked twice, or never there: 404 as an OperationOutcome.
    for id in [id.to_string(), "9999".to_owned(), "x".to_owned()] {
        let res = revoke(id).await.unwrap();
        assert_eq!(res.status(), 404);
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    // A revoked kiosk's name can be given to a new one.
    let res = add_kiosk(
        &app,
        &admin,
        &json!({"name": "Waiting room", "forms": ["registration"]}),
    )
    .await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn only_admins_manage_kiosks() {
    let app = TestApp::spawn().await;
    let password = app.add_user("fred", Role::FrontDesk).await;
    let clerk = app.login_session(app.login("fred", &password).await).await;
    let res = add_kiosk(
        &app,
        &clerk,
        &json!({"name": "X", "forms": ["registration"]}),
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        app.get_with_cookie("/api/admin/kiosks", &clerk.id)
            .await
            .status(),
        403
    );
    // Nobody signed in.
    let res = app
        .client
        .post(app.url("/api/admin/kiosks"))
        .json(&json!({"name": "X", "forms": ["registration"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        app.client
            .get(app.url("/api/admin/kiosks"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let kiosks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kiosk")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(kiosks, 0);
    // An admin token may (a script), without CSRF: a browser never sends the header.
    let token =
        backend::auth::tokens::create(&app.db, std::time::SystemTime::now(), "ops", Role::Admin)
            .await
            .unwrap();
    let res = app
        .client
        .post(app.url("/api/admin/kiosks"))
        .bearer_auth(&token)
        .json(&json!({"name": "X", "forms": ["registration"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let system =
        backend::auth::tokens::create(&app.db, std::time::SystemTime::now(), "emr", Role::System)
            .await
            .unwrap();
    let res = app
        .client
        .get(app.url("/api/admin/kiosks"))
        .bearer_auth(&system)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn bad_kiosks_are_refused_naming_the_field_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let admin = admin_session(&app).await;
    let cases = [
        (json!({"name": "", "forms": ["registration"]}), "name"),
        (json!({"name": "A\nB", "forms": ["registration"]}), "name"),
        (json!({"name": "A", "forms": []}), "forms"),
        (
            json!({"name": "A", "forms": ["registration", "no-such-form"]}),
            "forms[1]",
        ),
        (
            json!({"name": "A", "forms": ["registration"], "idleSeconds": 0}),
            "idleSeconds",
        ),
        (
            json!({"name": "A", "forms": ["registration"], "warnSeconds": 601}),
            "warnSeconds",
        ),
    ];
    for (body, at) in cases {
        let res = add_kiosk(&app, &admin, &body).await;
        assert_eq!(res.status(), 422, "{body}");
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(outcome["issue"][0]["expression"][0], at, "{body}");
    }
    // Wrong types and unknown fields: 4xx, never 500, never echoing the value.
    for body in [
        json!({"name": 5, "forms": ["registration"]}),
        json!({"name": "A", "forms": "registration"}),
        json!({"name": "A", "forms": ["registration"], "idleSeconds": -5}),
        json!({"name": "A", "forms": ["registration"], "colour": "Secret-Value"}),
    ] {
        let res = add_kiosk(&app, &admin, &body).await;
        assert!(res.status().is_client_error(), "{body}: {}", res.status());
        assert!(!res.text().await.unwrap().contains("Secret-Value"));
    }
    let kiosks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kiosk")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(kiosks, 0);
    // A live name is taken.
    assert_eq!(
        add_kiosk(
            &app,
            &admin,
            &json!({"name": "Lobby", "forms": ["registration"]})
        )
        .await
        .status(),
        201
    );
    let res = add_kiosk(
        &app,
        &admin,
        &json!({"name": "lobby", "forms": ["registration"]}),
    )
    .await;
    assert_eq!(res.status(), 422);
    let outcome: Value = res.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["code"], "duplicate");
    // Enrolment bodies that cannot be read.
    let res = app
        .client
        .post(app.url("/api/kiosk/enroll"))
        .header("content-type", "application/json")
        .body("{\"code\": 5}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn a_kiosk_is_not_staff_and_cannot_read_staff_or_fhir_routes() {
    let app = TestApp::spawn().await;
    let code = cli_add(&app, "Front desk 1", &["registration"]);
    let secret = device_secret(&enroll(&app, &code).await);
    for path in ["/api/staff/me", "/api/admin/kiosks", "/fhir/AuditEvent"] {
        let res = kiosk_get(&app, path, &secret).await;
        assert_eq!(res.status(), 401, "{path}");
    }
    // Nor can it write as an admin.
    let res = app
        .client
        .post(app.url("/api/admin/kiosks"))
        .header("cookie", format!("{KIOSK_COOKIE}={secret}"))
        .header("origin", &app.base)
        .json(&json!({"name": "Mine", "forms": ["registration"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // And a browser with no device is not a kiosk.
    let res = app
        .client
        .get(app.url("/api/kiosk/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = kiosk_get(&app, "/api/kiosk/me", "not-a-secret").await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn a_kiosk_sends_only_its_own_forms() {
    let app = TestApp::spawn().await;
    store_second_form(&app).await;
    let code = cli_add(&app, "Consent desk", &["consent"]);
    let secret = device_secret(&enroll(&app, &code).await);
    let res = submit(&app, Some(&secret), "k-1", &registration("Doe", "Jane")).await;
    assert_eq!(res.status(), 422);
    let outcome: Value = res.json().await.unwrap();
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "QuestionnaireResponse.questionnaire"
    );
    let intakes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM intake")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(intakes, 0);
}

#[tokio::test]
async fn a_kiosks_intake_names_the_kiosk_in_provenance_and_on_the_audit_trail() {
    let app = TestApp::spawn().await;
    let code = cli_add(&app, "Front desk 1", &["registration"]);
    let secret = device_secret(&enroll(&app, &code).await);
    let res = submit(&app, Some(&secret), "k-1", &registration("Okafor", "Ada")).await;
    assert_eq!(res.status(), 201);
    let answer: Value = res.json().await.unwrap();
    // The kiosk is told only "received"; the chart is in the intake's row.
    assert_eq!(answer["status"], "received", "{answer}");
    let patient: String = sqlx::query_scalar("SELECT patient FROM intake WHERE id = ?")
        .bind(answer["intake"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    // The same key again is the same intake, not a second audit event.
    let res = submit(&app, Some(&secret), "k-1", &registration("Okafor", "Ada")).await;
    assert_eq!(res.status(), 200);
    // From a phone: the patient app, and no kiosk.
    let res = submit(
        &app,
        None,
        "p-1",
        &registration_born("Mensah", "Kofi", "1950-11-30"),
    )
    .await;
    assert_eq!(res.status(), 201);

    let provenances: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM resource WHERE resource_type = 'Provenance' ORDER BY last_updated",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let devices: Vec<Value> = provenances
        .iter()
        .map(|p| serde_json::from_str::<Value>(p).unwrap()["agent"][0]["who"]["display"].clone())
        .collect();
    assert_eq!(devices.len(), 2);
    assert!(devices.contains(&json!("Front desk 1")), "{devices:?}");
    assert!(
        devices.contains(&json!("Intake patient app")),
        "{devices:?}"
    );

    let events = app.audit_events().await;
    let by_kiosk: Vec<&Value> = events
        .iter()
        .filter(|e| e["agent"][0]["who"]["identifier"]["system"] == "urn:intake:kiosk")
        .collect();
    // Enrolment (a login by the device), then the one intake it sent.
    assert_eq!(by_kiosk.len(), 2, "{by_kiosk:#?}");
    assert_eq!(subtype(by_kiosk[0]), "110122");
    assert_eq!(by_kiosk[0]["outcome"], "0");
    let create = by_kiosk[1];
    assert_eq!(subtype(create), "create");
    assert_eq!(create["action"], "C");
    assert_eq!(agent_name(create), Some("Front desk 1"));
    assert_eq!(create["agent"][0]["role"][0]["coding"][0]["code"], "kiosk");
    assert_eq!(create["entity"][0]["what"]["reference"], patient.as_str());
    assert!(create["entity"].as_array().unwrap().iter().any(|e| {
        e["what"]["reference"]
            .as_str()
            .is_some_and(|r| r.starts_with("QuestionnaireResponse/"))
    }));
    // No patient data on the trail: the references only.
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains("Okafor") && !text.contains("1984-03-09"),
        "{text}"
    );
    assert_eq!(
        backend::audit::verify(&app.db).await.unwrap(),
        backend::audit::Verified::Ok {
            events: u64::try_from(events.len()).unwrap()
        }
    );
}

#[tokio::test]
async fn adding_revoking_and_failed_enrolments_are_audited() {
    let app = TestApp::spawn().await;
    let admin = admin_session(&app).await;
    let res = add_kiosk(
        &app,
        &admin,
        &json!({"name": "Lobby", "forms": ["registration"]}),
    )
    .await;
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(enroll(&app, "nope").await.status(), 401);
    let res = app
        .client
        .delete(app.url(&format!("/api/admin/kiosks/{id}")))
        .header("cookie", format!("__Host-intake-session={}", admin.id))
        .header("x-csrf-token", &admin.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    cli_add(&app, "Desk", &["registration"]);

    let events = app.audit_events().await;
    let about_kiosk = |e: &&Value| {
        e["entity"].as_array().is_some_and(|es| {
            es.iter()
                .any(|x| x["what"]["identifier"]["system"] == "urn:intake:kiosk")
        })
    };
    let admin_events: Vec<(&str, &str, Option<&str>)> = events
        .iter()
        .filter(about_kiosk)
        .filter(|e| subtype(e) == "110136")
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["entity"][0]["what"]["identifier"]["value"]
                    .as_str()
                    .unwrap(),
                agent_name(e),
            )
        })
        .collect();
    assert_eq!(
        admin_events,
        vec![
            ("C", "Lobby", Some("ada")),
            ("D", "Lobby", Some("ada")),
            ("C", "Desk", Some("intake"))
        ]
    );
    // The failed enrolment: a failed device login with no agent.
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| subtype(e) == "110122" && e["outcome"] == "4")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["agent"][0]["name"], "unknown");
}
