//! Patient invitations over HTTP against the real app: created by the front desk,
//! opened on any device until the birth date is confirmed (five wrong tries lock), the form
//! prefilled from the chart, the intake linked to the invited patient only, and
//! every way an invitation might reach someone else's data refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod staff_common;

use std::time::SystemTime;

use backend::auth::Role;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use staff_common::{Session, TestApp};

const INVITE: &str = "__Host-intake-invite";

struct Desk {
    app: TestApp,
    session: Session,
    /// An admin token, for arranging patients over `/fhir`.
    token: String,
}

impl Desk {
    async fn spawn() -> Self {
        Self::on(TestApp::spawn().await).await
    }

    /// With the server's settings changed by `configure`.
    async fn spawn_with(configure: impl FnOnce(&mut backend::Config)) -> Self {
        Self::on(TestApp::spawn_with(configure).await).await
    }

    async fn on(app: TestApp) -> Self {
        let password = app.add_user("dora", Role::FrontDesk).await;
        let session = app.login_session(app.login("dora", &password).await).await;
        let token =
            backend::auth::tokens::create(&app.db, SystemTime::now(), "arrange", Role::Admin)
                .await
                .unwrap();
        Self {
            app,
            session,
            token,
        }
    }

    /// A Patient stored in the embedded EMR; its id.
    async fn patient(&self, given: &str, family: &str, birth: &str, phone: &str) -> String {
        let res = self
            .app
            .client
            .post(self.app.url("/fhir/Patient"))
            .bearer_auth(&self.token)
            .header("content-type", "application/fhir+json")
            .body(
                json!({
                    "resourceType": "Patient",
                    "name": [{"family": family, "given": [given]}],
                    "birthDate": birth,
                    "gender": "female",
                    "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
                    "address": [{"line": ["12 Elm St"], "city": "Springfield", "postalCode": "01101"}]
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// `resource`, a Patient, stored in the embedded EMR; its id.
    async fn stored(&self, resource: Value) -> String {
        let res = self
            .app
            .client
            .post(self.app.url("/fhir/Patient"))
            .bearer_auth(&self.token)
            .header("content-type", "application/fhir+json")
            .body(resource.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// `POST /api/staff/invitations` with the front desk's session and CSRF token.
    async fn create(&self, body: Value) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/api/staff/invitations"))
            .header(
                "cookie",
                format!("__Host-intake-session={}", self.session.id),
            )
            .header("x-csrf-token", &self.session.csrf)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// `PUT /fhir/Questionnaire/{id}` as an admin; whether it was stored.
    async fn put_form(&self, id: &str, form: &Value) -> bool {
        self.app
            .client
            .put(self.app.url(&format!("/fhir/Questionnaire/{id}")))
            .bearer_auth(&self.token)
            .header("content-type", "application/fhir+json")
            .body(form.to_string())
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    }

    /// An invitation for `patient`: (id, token).
    async fn invite(&self, patient: &str) -> (String, String) {
        let res = self
            .create(
                json!({"patient": format!("Patient/{patient}"), "questionnaire": "registration"}),
            )
            .await;
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        let link = body["link"].as_str().unwrap();
        let token = link.split_once('#').unwrap().1.to_owned();
        (body["invitation"].as_str().unwrap().to_owned(), token)
    }

    async fn list(&self) -> Vec<Value> {
        let res = self
            .app
            .get_with_cookie("/api/staff/invitations", &self.session.id)
            .await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        body["invitations"].as_array().unwrap().clone()
    }

    /// What was decided for an intake, from its row: the patient is told only
    /// "received".
    async fn decided(&self, receipt: &Value) -> (String, Option<String>) {
        assert_eq!(receipt["status"], "received", "{receipt}");
        sqlx::query_as("SELECT outcome, patient FROM intake WHERE id = ?")
            .bind(receipt["intake"].as_str().unwrap())
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }

    async fn status(&self, id: &str) -> String {
        let list = self.list().await;
        let found = list.iter().find(|i| i["invitation"] == id).unwrap();
        found["status"].as_str().unwrap().to_owned()
    }

    async fn open(&self, token: &str) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/api/invitation/open"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap()
    }

    /// Opens `token`: the cookie's value.
    async fn opened(&self, token: &str) -> String {
        let res = self.open(token).await;
        assert_eq!(res.status(), 200);
        cookie_of(&res)
    }

    async fn confirm(&self, cookie: &str, birth: &str) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/api/invitation/confirm"))
            .header("cookie", format!("{INVITE}={cookie}"))
            .json(&json!({"birthDate": birth}))
            .send()
            .await
            .unwrap()
    }

    async fn form(&self, cookie: &str) -> reqwest::Response {
        self.app
            .client
            .get(self.app.url("/api/invitation/form"))
            .header("cookie", format!("{INVITE}={cookie}"))
            .send()
            .await
            .unwrap()
    }

    /// Opens and confirms: the cookie, and the form's answer.
    async fn confirmed(&self, token: &str, birth: &str) -> (String, Value) {
        let cookie = self.opened(token).await;
        assert_eq!(self.confirm(&cookie, birth).await.status(), 200);
        let res = self.form(&cookie).await;
        assert_eq!(res.status(), 200);
        (cookie, res.json().await.unwrap())
    }

    async fn submit(&self, cookie: Option<&str>, key: &str, response: &Value) -> reqwest::Response {
        let mut req = self
            .app
            .client
            .post(self.app.url("/api/intakes"))
            .header("idempotency-key", key)
            .header("content-type", "application/fhir+json")
            .body(response.to_string());
        if let Some(cookie) = cookie {
            req = req.header("cookie", format!("{INVITE}={cookie}"));
        }
        req.send().await.unwrap()
    }

    async fn read(&self, path: &str) -> Value {
        let res = self
            .app
            .client
            .get(self.app.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        res.json().await.unwrap()
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }
}

fn cookie_of(res: &reqwest::Response) -> String {
    let set = res.headers()["set-cookie"].to_str().unwrap();
    set.split(';')
        .next()
        .and_then(|p| p.strip_prefix(&format!("{INVITE}=")))
        .unwrap()
        .to_owned()
}

/// The prefilled response of a form answer, completed, with `item`'s answer
/// replaced where given.
fn completed(form: &Value, replace: &[(&str, Value)]) -> Value {
    fn walk(items: &mut [Value], replace: &[(&str, Value)]) {
        for item in items.iter_mut() {
            if let Some((_, answer)) = replace.iter().find(|(l, _)| item["linkId"] == *l) {
                item["answer"] = answer.clone();
            }
            if let Some(inner) = item.get_mut("item").and_then(Value::as_array_mut) {
                walk(inner, replace);
            }
        }
    }
    let mut response = form["response"].clone();
    response["status"] = json!("completed");
    walk(response["item"].as_array_mut().unwrap(), replace);
    response
}

fn answer_of<'a>(items: &'a [Value], link: &str) -> Option<&'a Value> {
    items.iter().find_map(|i| {
        if i["linkId"] == link {
            i["answer"][0].as_object().and_then(|a| a.values().next())
        } else {
            i.get("item")
                .and_then(Value::as_array)
                .and_then(|inner| answer_of(inner, link))
        }
    })
}

async fn search(desk: &Desk, query: &str) -> Vec<Value> {
    let bundle = desk.read(query).await;
    bundle["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["resource"].clone())
        .collect()
}

#[tokio::test]
async fn the_link_carries_a_256_bit_token_in_its_fragment_stored_only_hashed() {
    let desk = Desk::spawn().await;
    let patient = desk.patient("Ana", "Lima", "1980-03-27", "555-0100").await;
    let res = desk
        .create(
            json!({"patient": format!("Patient/{patient}"), "questionnaire": "registration",
                       "appointment": "2026-12-01T09:30:00-05:00", "expiresInHours": 10_000}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let link = body["link"].as_str().unwrap();
    // No INTAKE_PUBLIC_URL: the scheme and host the front desk reached us at.
    let host = desk.app.base.strip_prefix("http://").unwrap();
    let token = link
        .strip_prefix(&format!("http://{host}/i#"))
        .expect("the token is in the fragment of /i");
    assert_eq!(token.len(), 43, "256 bits, base64url");
    let id = body["invitation"].as_str().unwrap();
    let stored: (String, i64, i64) =
        sqlx::query_as("SELECT token_sha256, created_at, expires_at FROM invitation WHERE id = ?")
            .bind(id)
            .fetch_one(&desk.app.db)
            .await
            .unwrap();
    assert_eq!(stored.0, format!("{:x}", Sha256::digest(token.as_bytes())));
    // 10,000 hours asked: capped at 14 days.
    assert_eq!(stored.2 - stored.1, 14 * 24 * 3600 * 1000);
    let dump: String = sqlx::query_scalar(
        "SELECT group_concat(id || token_sha256 || coalesce(patient, '') || birth_date) FROM invitation",
    )
    .fetch_one(&desk.app.db)
    .await
    .unwrap();
    assert!(!dump.contains(token));
    // The staff list shows it as sent, by reference only.
    let list = desk.list().await;
    assert_eq!(list[0]["status"], "sent");
    assert_eq!(list[0]["patient"], format!("Patient/{patient}"));
    assert_eq!(list[0]["appointment"], "2026-12-01T09:30:00-05:00");
    // Named as the chart names her, for the front desk to recognise.
    assert_eq!(list[0]["name"], "Lima, Ana");
    assert!(!list[0].to_string().contains("1980"));
    // The link as a QR code, for a patient at the desk to scan.
    let qr = body["qr"].as_str().unwrap();
    assert!(qr.contains("<svg") && qr.contains("<path"), "{qr}");
    assert!(!qr.contains(token), "the token is encoded, not written out");
    // Created and the chart read: audited, by the front desk, on the patient.
    let events = desk.app.audit_events().await;
    let on_patient: Vec<&Value> = events
        .iter()
        .filter(|e| e["entity"][0]["what"]["reference"] == format!("Patient/{patient}"))
        .collect();
    assert!(
        on_patient
            .iter()
            .any(|e| e["action"] == "C" && e["agent"][0]["who"]["identifier"]["value"] == "dora")
    );
    assert!(on_patient.iter().any(|e| e["action"] == "R"));
    // Listing named her: that read is audited on her too.
    let searches = on_patient
        .iter()
        .filter(|e| e["subtype"].to_string().contains("search"))
        .count();
    assert_eq!(searches, 1, "{on_patient:?}");
}

#[tokio::test]
async fn only_front_desk_clinicians_and_admins_create_and_sessions_need_the_csrf_token() {
    let desk = Desk::spawn().await;
    let body = json!({"questionnaire": "registration", "birthDate": "1990-01-02"});
    let url = desk.app.url("/api/staff/invitations");
    let anonymous = desk.app.client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let no_csrf = desk
        .app
        .client
        .post(&url)
        .header(
            "cookie",
            format!("__Host-intake-session={}", desk.session.id),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    let other_site = desk
        .app
        .client
        .post(&url)
        .header(
            "cookie",
            format!("__Host-intake-session={}", desk.session.id),
        )
        .header("x-csrf-token", &desk.session.csrf)
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(other_site.status(), 403);
    let system =
        backend::auth::tokens::create(&desk.app.db, SystemTime::now(), "emr", Role::System)
            .await
            .unwrap();
    let by_system = desk
        .app
        .client
        .post(&url)
        .bearer_auth(&system)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(by_system.status(), 403);
    let list_by_system = desk
        .app
        .client
        .get(&url)
        .bearer_auth(&system)
        .send()
        .await
        .unwrap();
    assert_eq!(list_by_system.status(), 403);
    assert_eq!(desk.count("SELECT count(*) FROM invitation").await, 0);
    let by_admin_token = desk
        .app
        .client
        .post(&url)
        .bearer_auth(&desk.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(by_admin_token.status(), 201);
    assert_eq!(desk.create(body).await.status(), 201);
    let clinician = desk.app.add_user("cleo", Role::Clinician).await;
    let cleo = desk
        .app
        .login_session(desk.app.login("cleo", &clinician).await)
        .await;
    let listed = desk
        .app
        .get_with_cookie("/api/staff/invitations", &cleo.id)
        .await;
    assert_eq!(listed.status(), 200);
    assert_eq!(desk.count("SELECT count(*) FROM invitation").await, 2);
}

#[tokio::test]
async fn bad_invitations_are_422_naming_the_field_and_store_nothing() {
    let desk = Desk::spawn().await;
    let patient = desk.patient("Ana", "Lima", "1980-03-27", "555-0100").await;
    let cases = [
        (
            json!({"questionnaire": "nope", "birthDate": "1990-01-02"}),
            "questionnaire",
        ),
        (json!({"questionnaire": "registration"}), "birthDate"),
        (
            json!({"questionnaire": "registration", "birthDate": "1990-02-30"}),
            "birthDate",
        ),
        (
            json!({"questionnaire": "registration", "patient": "Patient/nobody-here"}),
            "patient",
        ),
        (
            json!({"questionnaire": "registration", "patient": patient}),
            "patient",
        ),
        (
            json!({"questionnaire": "registration", "patient": format!("Patient/{patient}"),
                "appointment": "tomorrow"}),
            "appointment",
        ),
        (
            json!({"questionnaire": "registration", "patient": format!("Patient/{patient}"),
                "expiresInHours": 0}),
            "expiresInHours",
        ),
        (
            json!({"questionnaire": "registration", "birthDate": "1990-01-02",
                "name": "x".repeat(201)}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let res = desk.create(body.clone()).await;
        assert_eq!(res.status(), 422, "{body}");
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"][0]["expression"][0], field, "{body}");
    }
    let unknown_field = desk
        .create(json!({"questionnaire": "registration", "birthDate": "1990-01-02", "subject": "x"}))
        .await;
    assert!(unknown_field.status().is_client_error());
    assert_eq!(desk.count("SELECT count(*) FROM invitation").await, 0);
}

#[tokio::test]
async fn opening_sets_a_strict_httponly_cookie_says_nothing_of_the_patient_and_works_on_any_device_until_the_birth_date_is_confirmed()
 {
    let desk = Desk::spawn().await;
    let patient = desk.patient("Ana", "Lima", "1980-03-27", "555-0100").await;
    let (id, token) = desk.invite(&patient).await;
    let res = desk.open(&token).await;
    assert_eq!(res.status(), 200);
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=1800",
    ] {
        assert!(set.contains(attribute), "{set}");
    }
    let cookie = cookie_of(&res);
    assert_eq!(cookie.len(), 43);
    let stored: String =
        sqlx::query_scalar("SELECT id_sha256 FROM invitation_session WHERE invitation_id = ?")
            .bind(&id)
            .fetch_one(&desk.app.db)
            .await
            .unwrap();
    assert_eq!(stored, format!("{:x}", Sha256::digest(cookie.as_bytes())));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"confirm": "birthDate"}));
    assert_eq!(desk.status(&id).await, "opened");

    // A second device (or a messaging app's link preview that opened it first):
    // the link opens again, with a cookie of its own, until the birth date is
    // confirmed with one of them.
    let second = desk.open(&token).await;
    assert_eq!(second.status(), 200);
    let second = cookie_of(&second);
    assert_ne!(second, cookie);
    assert_eq!(desk.status(&id).await, "opened");
    assert_eq!(desk.confirm(&second, "1980-03-27").await.status(), 200);
    assert_eq!(desk.form(&second).await.status(), 200);

    // Confirmed, an unknown token, an expired one and a cancelled one: one answer.
    let refusal = |res: reqwest::Response| async move {
        assert!(res.headers().get("set-cookie").is_none());
        (res.status().as_u16(), res.text().await.unwrap())
    };
    let again = refusal(desk.open(&token).await).await;
    assert_eq!(again.0, 401);
    // The confirmed device goes on; the list says the birth date was confirmed.
    assert_eq!(desk.form(&second).await.status(), 200);
    let listed = desk.list().await;
    let row = listed.iter().find(|i| i["invitation"] == id).unwrap();
    assert_eq!(row["birthDateConfirmed"], true);
    let unknown = refusal(desk.open("A".repeat(43).as_str()).await).await;
    let (expired_id, expired) = desk.invite(&patient).await;
    sqlx::query("UPDATE invitation SET expires_at = 1 WHERE id = ?")
        .bind(&expired_id)
        .execute(&desk.app.db)
        .await
        .unwrap();
    let expired = refusal(desk.open(&expired).await).await;
    let (cancelled_id, cancelled) = desk.invite(&patient).await;
    let res = desk
        .app
        .client
        .delete(
            desk.app
                .url(&format!("/api/staff/invitations/{cancelled_id}")),
        )
        .header(
            "cookie",
            format!("__Host-intake-session={}", desk.session.id),
        )
        .header("x-csrf-token", &desk.session.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let cancelled = refusal(desk.open(&cancelled).await).await;
    assert_eq!(again, unknown);
    assert_eq!(again, expired);
    assert_eq!(again, cancelled);
    assert!(!again.1.contains(&patient));
}

#[tokio::test]
async fn five_wrong_birth_dates_lock_the_invitation_and_the_right_one_no_longer_opens_it() {
    let desk = Desk::spawn().await;
    let patient = desk.patient("Ana", "Lima", "1980-03-27", "555-0100").await;
    let (id, token) = desk.invite(&patient).await;
    let cookie = desk.opened(&token).await;
    // Not a date: a 422 at birthDate, not a try.
    let res = desk.confirm(&cookie, "27/03/1980").await;
    assert_eq!(res.status(), 422);
    for left in (1..=4).rev() {
        let res = desk.confirm(&cookie, "1980-03-28").await;
        assert_eq!(res.status(), 401);
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(
            outcome["issue"][0]["extension"][0]["url"],
            "urn:intake:tries-left"
        );
        assert_eq!(outcome["issue"][0]["extension"][0]["valueInteger"], left);
    }
    assert_eq!(desk.confirm(&cookie, "1981-01-01").await.status(), 423);
    let locked = desk.confirm(&cookie, "1980-03-27").await;
    assert_eq!(locked.status(), 423);
    assert!(!locked.text().await.unwrap().contains("1980"));
    assert_eq!(desk.form(&cookie).await.status(), 423);
    assert_eq!(desk.status(&id).await, "locked");
    let events = desk.app.audit_events().await;
    let lockout = events
        .iter()
        .find(|e| e["subtype"][0]["code"] == "110137")
        .expect("the lockout is audited");
    assert_eq!(
        lockout["agent"][0]["who"]["identifier"]["system"],
        "urn:intake:invitation"
    );
    assert_eq!(lockout["agent"][0]["who"]["identifier"]["value"], id);
    let wrong = events
        .iter()
        .filter(|e| e["subtype"][0]["code"] == "110122" && e["outcome"] == "4")
        .count();
    assert_eq!(wrong, 4);
    // The right date is refused from a new cookie too: the token is spent.
    assert_eq!(desk.open(&token).await.status(), 401);
}

#[tokio::test]
async fn nothing_about_the_patient_is_shown_before_the_birth_date_is_confirmed() {
    let desk = Desk::spawn().await;
    let patient = desk.patient("Ana", "Lima", "1980-03-27", "555-0100").await;
    let (_, token) = desk.invite(&patient).await;
    let cookie = desk.opened(&token).await;
    let res = desk.form(&cookie).await;
    assert_eq!(res.status(), 403);
    assert!(!res.text().await.unwrap().contains("Lima"));
    // No cookie, a made-up one, a staff session's: nothing.
    let none = desk
        .app
        .client
        .get(desk.app.url("/api/invitation/form"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(desk.form(&"B".repeat(43)).await.status(), 401);
    assert_eq!(desk.form(&desk.session.id).await.status(), 401);
    assert_eq!(
        desk.confirm(&"B".repeat(43), "1980-03-27").await.status(),
        401
    );
    // The patient's cookie is not a staff session.
    let staff = desk
        .app
        .get_with_cookie("/api/staff/invitations", &cookie)
        .await;
    assert_eq!(staff.status(), 401);
    // Submitting before confirming is refused and stores nothing.
    let answers = json!({"resourceType": "QuestionnaireResponse", "questionnaire": "Questionnaire/registration",
                         "status": "completed", "item": []});
    assert_eq!(
        desk.submit(Some(&cookie), "k-early", &answers)
            .await
            .status(),
        403
    );
    assert_eq!(desk.count("SELECT count(*) FROM intake").await, 0);
    // Confirmed from another site's page: refused.
    let cross = desk
        .app
        .client
        .post(desk.app.url("/api/invitation/confirm"))
        .header("cookie", format!("{INVITE}={cookie}"))
        .header("origin", "https://evil.example")
        .json(&json!({"birthDate": "1980-03-27"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert_eq!(desk.form(&cookie).await.status(), 403);
}

#[tokio::test]
async fn a_known_patient_finds_the_form_prefilled_from_their_chart_and_the_read_is_audited() {
    let desk = Desk::spawn().await;
    let patient = desk.patient("Ana", "Lima", "1980-03-27", "555-0100").await;
    let (id, token) = desk.invite(&patient).await;
    let (_, form) = desk.confirmed(&token, "1980-03-27").await;
    assert_eq!(form["prefilledFrom"], "chart");
    assert_eq!(form["questionnaire"], "Questionnaire/registration");
    assert_eq!(form["form"]["form"]["id"], "registration");
    let answers = &form["draft"]["answers"];
    assert_eq!(answers["name[0].family"], json!([{"string": "Lima"}]));
    assert_eq!(answers["name[0].given"], json!([{"string": "Ana"}]));
    assert_eq!(answers["birth-date"], json!([{"date": "1980-03-27"}]));
    assert_eq!(answers["phone"], json!([{"string": "555-0100"}]));
    assert_eq!(
        answers["address[0].city"],
        json!([{"string": "Springfield"}])
    );
    assert_eq!(answers["gender"][0]["coding"]["code"], "female");
    let response = &form["response"];
    assert_eq!(response["status"], "in-progress");
    assert_eq!(
        response["subject"]["reference"],
        format!("Patient/{patient}")
    );
    let items = response["item"].as_array().unwrap();
    assert_eq!(answer_of(items, "family"), Some(&json!("Lima")));
    let events = desk.app.audit_events().await;
    let read = events
        .iter()
        .rfind(|e| e["action"] == "R")
        .expect("the chart's read is audited");
    assert_eq!(read["agent"][0]["who"]["identifier"]["value"], id);
    assert_eq!(read["agent"][0]["role"][0]["coding"][0]["code"], "patient");
    assert_eq!(
        read["entity"][0]["what"]["reference"],
        format!("Patient/{patient}")
    );
}

#[tokio::test]
async fn an_invited_intake_lands_on_the_invited_patient_whatever_the_body_says() {
    let desk = Desk::spawn().await;
    let ana = desk.patient("Ana", "Lima", "1980-03-27", "555-0100").await;
    let bea = desk
        .patient("Beatriz", "Souza", "1975-07-04", "555-0199")
        .await;
    let (id, token) = desk.invite(&ana).await;
    let (cookie, form) = desk.confirmed(&token, "1980-03-27").await;
    // Someone holding Ana's invitation types Beatriz's details and names her
    // chart as the subject: the intake is still Ana's, and what differs is a
    // proposal for staff, not a match to Beatriz.
    let mut response = completed(
        &form,
        &[
            ("family", json!([{"valueString": "Souza"}])),
            ("given", json!([{"valueString": "Beatriz"}])),
            ("phone", json!([{"valueString": "555-0199"}])),
        ],
    );
    response["subject"] = json!({"reference": format!("Patient/{bea}")});
    let res = desk.submit(Some(&cookie), "key-1", &response).await;
    assert_eq!(res.status(), 201);
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with(&format!("{INVITE}=;")) && set.contains("Max-Age=0"),
        "{set}"
    );
    let receipt: Value = res.json().await.unwrap();
    assert_eq!(
        desk.decided(&receipt).await,
        ("linked".to_owned(), Some(format!("Patient/{ana}")))
    );

    let ana_responses = search(
        &desk,
        &format!("/fhir/QuestionnaireResponse?subject=Patient/{ana}"),
    )
    .await;
    assert_eq!(ana_responses.len(), 1);
    let bea_responses = search(
        &desk,
        &format!("/fhir/QuestionnaireResponse?subject=Patient/{bea}"),
    )
    .await;
    assert!(bea_responses.is_empty());
    let provenances = search(&desk, "/fhir/Provenance").await;
    assert_eq!(provenances.len(), 1);
    assert_eq!(
        provenances[0]["agent"][0]["who"]["identifier"],
        json!({"system": "urn:intake:invitation", "value": id})
    );
    let tasks = search(&desk, "/fhir/Task").await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["code"]["coding"][0]["code"], "demographics-update");
    assert_eq!(tasks[0]["focus"]["reference"], format!("Patient/{ana}"));
    let changed: Vec<&str> = tasks[0]["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["name", "phone"]);
    // Ana's chart is unchanged; Beatriz's too.
    let chart = desk.read(&format!("/fhir/Patient/{ana}")).await;
    assert_eq!(chart["name"][0]["family"], "Lima");
    assert_eq!(desk.status(&id).await, "used");
    // The use is on the audit trail, by the invitation, on Ana.
    let events = desk.app.audit_events().await;
    assert!(events.iter().any(|e| e["action"] == "C"
        && e["agent"][0]["who"]["identifier"]["value"] == id
        && e["entity"][0]["what"]["reference"] == format!("Patient/{ana}")));

    // Used: the same cookie cannot send again, nor read the form.
    let again = desk.submit(Some(&cookie), "key-2", &response).await;
    assert_eq!(again.status(), 401);
    assert_eq!(desk.form(&cookie).await.status(), 401);
    assert_eq!(desk.count("SELECT count(*) FROM intake").await, 1);
    // A retry of the accepted submission (same key, same body) gets its receipt.
    let retry = desk.submit(None, "key-1", &response).await;
    assert_eq!(retry.status(), 200);
}

#[tokio::test]
async fn two_submissions_under_one_invitation_at_once_make_one_intake() {
    let desk = Desk::spawn().await;
    let ana = desk.patient("Ana", "Lima", "1980-03-27", "555-0100").await;
    let (_, token) = desk.invite(&ana).await;
    let (cookie, form) = desk.confirmed(&token, "1980-03-27").await;
    let response = completed(&form, &[]);
    let sends = (0..4).map(|n| {
        let (desk, cookie, response) = (&desk, &cookie, &response);
        async move {
            desk.submit(Some(cookie), &format!("race-{n}"), response)
                .await
                .status()
        }
    });
    let statuses = futures_util::future::join_all(sends).await;
    assert_eq!(
        statuses.iter().filter(|s| s.as_u16() == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(s.as_u16(), 201 | 401)),
        "{statuses:?}"
    );
    assert_eq!(desk.count("SELECT count(*) FROM intake").await, 1);
    // Nothing differed from the chart: no Task.
    let tasks = search(&desk, "/fhir/Task").await;
    assert!(tasks.is_empty(), "{tasks:#?}");
}

/// A returning patient's chart as an EMR keeps it, with what the form never
/// writes: a name's `use` and a middle name, ranked contacts in their own format,
/// an address's `use` and state.
fn kept_chart() -> Value {
    json!({
        "resourceType": "Patient",
        "name": [{"use": "official", "family": "SMITH", "given": ["Ana", "Maria"]}],
        "birthDate": "1980-03-27",
        "gender": "female",
        "telecom": [
            {"system": "email", "value": "Ana.Smith@Example.org", "rank": 2},
            {"system": "phone", "value": "(555) 123-4567", "use": "mobile", "rank": 1}
        ],
        "address": [{"use": "home", "line": ["12 Elm Street"], "city": "Springfield",
            "state": "MA", "postalCode": "01101"}]
    })
}

#[tokio::test]
async fn a_returning_patient_proposes_only_what_really_changed() {
    let desk = Desk::spawn().await;
    let chart = desk.stored(kept_chart()).await;
    let s = |v: &str| json!([{"valueString": v}]);
    // (what the patient did, the answers changed, the fields the Task names)
    type Case<'a> = (&'a str, Vec<(&'a str, Value)>, Vec<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        ("the prefilled form confirmed unchanged", vec![], vec![]),
        (
            "case, spacing and phone format only",
            vec![
                ("family", s("Smith")),
                ("given", s("ana maria")),
                ("phone", s("555-123-4567")),
                ("email", s("ana.smith@EXAMPLE.org")),
                ("address-line", s("12 elm st")),
                ("city", s("SPRINGFIELD")),
            ],
            vec![],
        ),
        (
            "a new phone",
            vec![("phone", s("555 987 6543"))],
            vec!["phone"],
        ),
        (
            "a new e-mail and another city",
            vec![("email", s("ana@example.net")), ("city", s("Boston"))],
            vec!["email", "address"],
        ),
        (
            "another family name",
            vec![("family", s("Smith-Lee"))],
            vec!["name"],
        ),
    ];
    for (n, (what, answers, expected)) in cases.into_iter().enumerate() {
        let (_, token) = desk.invite(&chart).await;
        let (cookie, form) = desk.confirmed(&token, "1980-03-27").await;
        let response = completed(&form, &answers);
        let res = desk
            .submit(Some(&cookie), &format!("case-{n}"), &response)
            .await;
        assert_eq!(res.status(), 201, "{what}");
        let receipt: Value = res.json().await.unwrap();
        assert_eq!(
            desk.decided(&receipt).await,
            ("linked".to_owned(), Some(format!("Patient/{chart}"))),
            "{what}"
        );
        let tasks: Vec<Value> = search(&desk, "/fhir/Task")
            .await
            .into_iter()
            .filter(|t| t["identifier"][0]["value"] == receipt["intake"])
            .collect();
        let changed: Vec<String> = tasks
            .iter()
            .flat_map(|t| t["input"].as_array().cloned().unwrap_or_default())
            .filter_map(|i| i["type"]["text"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(changed, expected, "{what}: {tasks:#?}");
        assert!(tasks.len() <= 1, "{what}");
        if let Some(task) = tasks.first() {
            // The proposal holds only the changed fields: a new phone is not a
            // new e-mail.
            let proposed = &task["contained"][0];
            let systems: Vec<&str> = proposed["telecom"]
                .as_array()
                .map(|t| t.iter().filter_map(|c| c["system"].as_str()).collect())
                .unwrap_or_default();
            let contacts: Vec<&str> = expected
                .iter()
                .copied()
                .filter(|f| ["phone", "email"].contains(f))
                .collect();
            assert_eq!(systems, contacts, "{what}: {proposed}");
        }
    }
    // Whatever was proposed, the chart itself is as it was.
    let kept = desk.read(&format!("/fhir/Patient/{chart}")).await;
    assert_eq!(kept["meta"]["versionId"], "1");
}

#[tokio::test]
async fn an_invitation_for_an_unknown_patient_confirms_the_typed_date_and_goes_through_the_matcher()
{
    let desk = Desk::spawn().await;
    let res = desk
        .create(
            json!({"questionnaire": "registration", "birthDate": "1992-11-05",
            "name": "  Okafor, Chidi "}),
        )
        .await;
    assert_eq!(res.status(), 201);
    // No chart to name him: the list shows the name the front desk typed.
    assert_eq!(desk.list().await[0]["name"], "Okafor, Chidi");
    let body: Value = res.json().await.unwrap();
    let id = body["invitation"].as_str().unwrap().to_owned();
    let token = body["link"]
        .as_str()
        .unwrap()
        .split_once('#')
        .unwrap()
        .1
        .to_owned();
    let cookie = desk.opened(&token).await;
    assert_eq!(desk.confirm(&cookie, "1980-03-27").await.status(), 401);
    assert_eq!(desk.confirm(&cookie, "1992-11-05").await.status(), 200);
    let form: Value = desk.form(&cookie).await.json().await.unwrap();
    // No chart: what the front desk typed is prefilled, and there is no subject.
    assert_eq!(form["prefilledFrom"], "front-desk");
    assert_eq!(
        form["draft"]["answers"]["name[0].family"],
        json!([{"string": "Okafor"}])
    );
    assert!(form["response"].get("subject").is_none());
    let mut response = form["response"].clone();
    response["status"] = json!("completed");
    response["item"] = json!([
        {"linkId": "name", "item": [
            {"linkId": "family", "answer": [{"valueString": "Okafor"}]},
            {"linkId": "given", "answer": [{"valueString": "Chidi"}]}]},
        {"linkId": "birth-date", "answer": [{"valueDate": "1992-11-05"}]},
        {"linkId": "gender", "answer": [{"valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": "male", "display": "Male"}}]}
    ]);
    let res = desk.submit(Some(&cookie), "new-1", &response).await;
    assert_eq!(res.status(), 201);
    let receipt: Value = res.json().await.unwrap();
    assert_eq!(desk.decided(&receipt).await.0, "created");
    let provenances = search(&desk, "/fhir/Provenance").await;
    assert_eq!(provenances[0]["agent"][0]["who"]["identifier"]["value"], id);
    assert_eq!(desk.status(&id).await, "used");
}

#[tokio::test]
async fn an_invitation_answers_its_own_form_only() {
    let desk = Desk::spawn().await;
    let ana = desk.patient("Ana", "Lima", "1980-03-27", "555-0100").await;
    let (id, token) = desk.invite(&ana).await;
    let (cookie, form) = desk.confirmed(&token, "1980-03-27").await;
    // Another form that would be accepted on its own: a copy of the registration.
    let mut copy: Value = serde_json::from_str(include_str!("../forms/registration.json")).unwrap();
    copy["id"] = json!("registration-copy");
    copy["url"] = json!("urn:intake:questionnaire:registration-copy");
    assert!(desk.put_form("registration-copy", &copy).await);
    let mut response = completed(&form, &[]);
    response["questionnaire"] = json!("Questionnaire/registration-copy");
    let res = desk.submit(Some(&cookie), "other-form", &response).await;
    assert_eq!(res.status(), 422);
    let outcome: Value = res.json().await.unwrap();
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "QuestionnaireResponse.questionnaire"
    );
    // The canonical URL of the invited form is the same form.
    response["questionnaire"] = json!("urn:intake:questionnaire:registration");
    assert_eq!(
        desk.submit(Some(&cookie), "by-url", &response)
            .await
            .status(),
        201
    );
    assert_eq!(desk.status(&id).await, "used");
}

#[tokio::test]
async fn expired_and_cancelled_invitations_end_their_cookies_at_once() {
    let desk = Desk::spawn().await;
    let ana = desk.patient("Ana", "Lima", "1980-03-27", "555-0100").await;
    let (expiring, token) = desk.invite(&ana).await;
    let (cookie, form) = desk.confirmed(&token, "1980-03-27").await;
    sqlx::query("UPDATE invitation SET expires_at = 1 WHERE id = ?")
        .bind(&expiring)
        .execute(&desk.app.db)
        .await
        .unwrap();
    assert_eq!(desk.form(&cookie).await.status(), 401);
    let response = completed(&form, &[]);
    assert_eq!(
        desk.submit(Some(&cookie), "late", &response).await.status(),
        401
    );
    assert_eq!(desk.status(&expiring).await, "expired");

    // A cookie past its own 30 minutes, on a live invitation: refused.
    let (_, token) = desk.invite(&ana).await;
    let (old, _) = desk.confirmed(&token, "1980-03-27").await;
    sqlx::query("UPDATE invitation_session SET expires_at = 1")
        .execute(&desk.app.db)
        .await
        .unwrap();
    assert_eq!(desk.form(&old).await.status(), 401);

    let (cancelled, token) = desk.invite(&ana).await;
    let (cookie, _) = desk.confirmed(&token, "1980-03-27").await;
    let delete = |id: String| {
        let desk = &desk;
        async move {
            desk.app
                .client
                .delete(desk.app.url(&format!("/api/staff/invitations/{id}")))
                .header(
                    "cookie",
                    format!("__Host-intake-session={}", desk.session.id),
                )
                .header("x-csrf-token", &desk.session.csrf)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(delete(cancelled.clone()).await, 204);
    assert_eq!(desk.form(&cookie).await.status(), 401);
    assert_eq!(desk.status(&cancelled).await, "cancelled");
    assert_eq!(delete(cancelled.clone()).await, 422);
    assert_eq!(delete("no-such-invitation".into()).await, 404);
    assert_eq!(desk.count("SELECT count(*) FROM intake").await, 0);
    let events = desk.app.audit_events().await;
    assert!(
        events.iter().any(|e| e["action"] == "D"
            && e["entity"][0]["what"]["reference"] == format!("Patient/{ana}"))
    );
}

#[tokio::test]
async fn the_front_desk_chooses_among_the_stored_forms_by_title_retired_ones_left_out() {
    let desk = Desk::spawn().await;
    for (id, title, status) in [
        ("zz-consent", Some("A consent"), "active"),
        ("old-history", Some("Old history"), "retired"),
        ("untitled", None, "draft"),
    ] {
        let mut form = json!({"resourceType": "Questionnaire", "id": id, "status": status,
            "item": [{"linkId": "a", "type": "string", "text": "A"}]});
        if let Some(title) = title {
            form["title"] = json!(title);
        }
        assert!(desk.put_form(id, &form).await, "{id}");
    }
    let res = desk
        .app
        .get_with_cookie("/api/staff/forms", &desk.session.id)
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let forms: Vec<(&str, &str)> = body["forms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_str().unwrap(), f["title"].as_str().unwrap()))
        .collect();
    let registration = forms.iter().find(|(id, _)| *id == "registration").unwrap();
    assert!(!registration.1.is_empty() && registration.1 != "registration");
    assert!(forms.contains(&("zz-consent", "A consent")));
    assert!(forms.contains(&("untitled", "untitled")), "{forms:?}");
    assert!(
        !forms.iter().any(|(id, _)| *id == "old-history"),
        "{forms:?}"
    );
    // By title, whatever the ids.
    assert_eq!(forms[0], ("zz-consent", "A consent"), "{forms:?}");
}

#[tokio::test]
async fn a_new_patients_form_is_prefilled_with_what_the_front_desk_typed() {
    let desk = Desk::spawn().await;
    let res = desk
        .create(
            json!({"questionnaire": "registration", "birthDate": "1990-05-04",
                       "name": "García, Ana María"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let token = body["link"]
        .as_str()
        .unwrap()
        .split_once('#')
        .unwrap()
        .1
        .to_owned();
    let (_, form) = desk.confirmed(&token, "1990-05-04").await;
    // Not "from your chart": there is none.
    assert_eq!(form["prefilledFrom"], "front-desk");
    let answers = &form["draft"]["answers"];
    assert_eq!(answers["name[0].family"], json!([{"string": "García"}]));
    assert_eq!(answers["name[0].given"], json!([{"string": "Ana María"}]));
    assert_eq!(answers["birth-date"], json!([{"date": "1990-05-04"}]));
    assert!(answers.get("phone").is_none(), "{answers}");
    assert!(form["response"].get("subject").is_none());
}

#[tokio::test]
async fn the_link_is_built_from_the_configured_public_url() {
    let desk = Desk::spawn_with(|config| {
        config.public_url = Some("https://intake.example.org/clinic/".to_owned());
    })
    .await;
    let patient = desk.patient("Ana", "Lima", "1980-03-27", "555-0100").await;
    let res = desk
        .create(json!({"patient": format!("Patient/{patient}"), "questionnaire": "registration"}))
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let link = body["link"].as_str().unwrap();
    let token = link
        .strip_prefix("https://intake.example.org/clinic/i#")
        .unwrap_or_else(|| panic!("{link}"));
    assert_eq!(desk.open(token).await.status(), 200);
}

#[tokio::test]
async fn a_public_url_that_is_not_an_http_address_stops_the_start() {
    for bad in ["intake.example.org", "ftp://x", "https://", "https://a b"] {
        let dir = tempfile::tempdir().unwrap();
        let config = backend::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data: dir.path().to_owned(),
            dist: dir.path().join("no-dist"),
            max_body_bytes: 16 * 1024,
            matching: Default::default(),
            delivery: Default::default(),
            emr: Default::default(),
            public_url: Some(bad.to_owned()),
            guard: Default::default(),
        };
        let error = backend::Application::build(&config)
            .await
            .err()
            .unwrap_or_else(|| panic!("{bad} was taken"));
        assert!(
            format!("{error:#}").contains("INTAKE_PUBLIC_URL"),
            "{error:#}"
        );
    }
}
