//! Roles on every route: each `/api` and `/fhir` route of the access policy's
//! table, called on the real app by nobody, by a signed-in user of each staff
//! role and by a system and an admin token. Whoever the table refuses gets 401
//! (nobody) or 403 (the wrong role); whoever it allows gets past it. The table
//! itself is checked against the rules in `auth::policy`'s unit tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod staff_common;

use backend::auth::Role;
use backend::auth::policy::{self, Access, ROUTES};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use staff_common::TestApp;

/// Who calls.
#[derive(Debug)]
enum Caller {
    Nobody,
    /// A signed-in user: the cookie's value and the CSRF token.
    Session(Role, String, String),
    Token(Role, String),
}

impl Caller {
    fn role(&self) -> Option<Role> {
        match self {
            Caller::Nobody => None,
            Caller::Session(role, ..) | Caller::Token(role, _) => Some(*role),
        }
    }
}

async fn callers(app: &TestApp) -> Vec<Caller> {
    let mut callers = vec![Caller::Nobody];
    for (name, role) in [
        ("desk", Role::FrontDesk),
        ("doctor", Role::Clinician),
        ("boss", Role::Admin),
    ] {
        let password = app.add_user(name, role).await;
        let session = app.login_session(app.login(name, &password).await).await;
        callers.push(Caller::Session(role, session.id, session.csrf));
    }
    for role in [Role::System, Role::Admin] {
        let token = backend::auth::tokens::create(
            &app.db,
            std::time::SystemTime::now(),
            &format!("t-{role}"),
            role,
        )
        .await
        .unwrap();
        callers.push(Caller::Token(role, token));
    }
    callers
}

/// Public routes whose handlers ask for a credential of their own.
const OWN_CREDENTIAL: &[&str] = &[
    "/api/staff/me",
    "/api/kiosk/enroll",
    "/api/kiosk/me",
    "/api/invitation/open",
    "/api/invitation/confirm",
    "/api/invitation/form",
];

/// The resource types the generic store routes are tried with.
const TYPES: &[&str] = &[
    "Patient",
    "Task",
    "QuestionnaireResponse",
    "Provenance",
    "RelatedPerson",
    "Observation",
    "AuditEvent",
];

/// Concrete paths for a route pattern, with the resource type each stands for.
fn paths(route: &str) -> Vec<(String, Option<&'static str>)> {
    let fill = |r: &str| {
        r.replace("{id}", "no-such-id")
            .replace("{task}", "no-such-task")
            .replace("{version}", "1")
            .replace("{username}", "no-such-user")
            .replace("{name}", "no-such-token")
    };
    if route.contains("{type}") {
        TYPES
            .iter()
            // `/fhir/AuditEvent` is a route of its own (search, for admins).
            .filter(|t| !(route == "/fhir/{type}" && **t == "AuditEvent"))
            .map(|t| (fill(&route.replace("{type}", t)), Some(*t)))
            .collect()
    } else {
        vec![(fill(route), None)]
    }
}

async fn call(app: &TestApp, caller: &Caller, method: &Method, path: &str) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method.clone(), app.url(path))
        .header("content-type", "application/fhir+json");
    if *method != Method::GET {
        req = req.body("{}");
    }
    req = match caller {
        Caller::Nobody => req,
        Caller::Session(_, id, csrf) => req
            .header("cookie", format!("__Host-intake-session={id}"))
            .header("x-csrf-token", csrf),
        Caller::Token(_, token) => req.bearer_auth(token),
    };
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_route_refuses_exactly_whom_the_policy_refuses() {
    let app = TestApp::spawn().await;
    let callers = callers(&app).await;
    let mut checked = 0;
    for (method, route, access) in ROUTES {
        // Logging out ends the session the rest of the calls use; it is
        // `staff_auth.rs`'s to test.
        if *route == "/api/staff/logout" {
            continue;
        }
        for (path, resource_type) in paths(route) {
            for caller in &callers {
                let (status, body) = call(&app, caller, method, &path).await;
                let what = format!("{method} {path} by {caller:?}: {status} {body}");
                assert!(status.as_u16() < 500, "{what}");
                let allowed = match caller.role() {
                    None => *access == Access::Public,
                    Some(role) => policy::allowed(role, method, route, resource_type),
                };
                if allowed {
                    assert_ne!(status, StatusCode::FORBIDDEN, "{what}");
                    // These answer 401 themselves to a caller without their own
                    // credential (a session, a kiosk's or an invitation's cookie).
                    if !OWN_CREDENTIAL.contains(route) {
                        assert_ne!(status, StatusCode::UNAUTHORIZED, "{what}");
                    }
                } else if caller.role().is_none() {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                    assert_eq!(body["resourceType"], "OperationOutcome", "{what}");
                }
                checked += 1;
            }
        }
    }
    // Every route (logout aside), every type (but `/fhir/AuditEvent`, a route of
    // its own), every caller: none skipped.
    let by_type = ROUTES.iter().filter(|r| r.1.contains("{type}")).count();
    assert!(by_type >= 6, "{by_type}");
    let type_only = ROUTES.iter().filter(|r| r.1 == "/fhir/{type}").count();
    let paths = (ROUTES.len() - 1 - by_type) + by_type * TYPES.len() - type_only;
    assert_eq!(checked, callers.len() * paths);
}

#[tokio::test]
async fn a_refused_access_is_audited_with_who_and_what() {
    let app = TestApp::spawn().await;
    let password = app.add_user("desk", Role::FrontDesk).await;
    let session = app.login_session(app.login("desk", &password).await).await;
    let res = app
        .get_with_cookie("/fhir/QuestionnaireResponse", &session.id)
        .await;
    assert_eq!(res.status(), 403);
    let events = app.audit_events().await;
    let refused = events
        .iter()
        .find(|e| e["outcome"] == "4" && e["agent"][0]["who"]["identifier"]["value"] == "desk")
        .unwrap_or_else(|| panic!("no refusal among {events:#?}"));
    let what = refused.to_string();
    assert!(what.contains("GET /fhir/{type}"), "{what}");
}

#[tokio::test]
async fn a_session_must_send_its_csrf_token_to_change_anything() {
    let app = TestApp::spawn().await;
    let password = app.add_user("boss", Role::Admin).await;
    let session = app.login_session(app.login("boss", &password).await).await;
    let put = |csrf: Option<&str>| {
        let mut req = app
            .client
            .put(app.url("/fhir/Questionnaire/x"))
            .header("content-type", "application/fhir+json")
            .header("cookie", format!("__Host-intake-session={}", session.id))
            .body("{}");
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        req.send()
    };
    assert_eq!(put(None).await.unwrap().status(), 403);
    assert_eq!(put(Some("wrong")).await.unwrap().status(), 403);
    // With the token it reaches the handler, which refuses the empty form.
    let status = put(Some(&session.csrf)).await.unwrap().status();
    assert!(status.is_client_error() && status != 403, "{status}");
}

#[tokio::test]
async fn a_wrong_token_is_refused_even_where_none_is_needed() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/api/health"))
        .bearer_auth("intake_not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app.client.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn every_reading_and_writing_of_a_patient_is_on_the_trail_by_whom() {
    let app = TestApp::spawn().await;
    let system =
        backend::auth::tokens::create(&app.db, std::time::SystemTime::now(), "emr", Role::System)
            .await
            .unwrap();
    let patient = serde_json::json!({"resourceType": "Patient", "name": [{"family": "Audited"}]});
    let created: Value = app
        .client
        .post(app.url("/fhir/Patient"))
        .bearer_auth(&system)
        .header("content-type", "application/fhir+json")
        .body(patient.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reference = format!("Patient/{}", created["id"].as_str().unwrap());
    let password = app.add_user("desk", Role::FrontDesk).await;
    let desk = app.login_session(app.login("desk", &password).await).await;
    for path in [
        format!("/fhir/{reference}"),
        "/fhir/Patient?family=audited".to_owned(),
        format!("/fhir/{reference}/_history"),
    ] {
        assert_eq!(
            app.get_with_cookie(&path, &desk.id).await.status(),
            200,
            "{path}"
        );
    }
    // A search that finds nobody names nobody.
    let nobody = app
        .get_with_cookie("/fhir/Patient?family=zzz", &desk.id)
        .await;
    assert_eq!(nobody.status(), 200);

    let about: Vec<(String, String)> = app
        .audit_events()
        .await
        .iter()
        .filter(|e| e.to_string().contains(&reference))
        .map(|e| {
            (
                e["agent"][0]["who"]["identifier"]["value"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                e["subtype"][0]["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("emr", "create"),
        ("desk", "read"),
        ("desk", "search-type"),
        ("desk", "read"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(about, expected);
}
