//! The administrators' API: staff accounts (`/api/admin/users`) and system tokens
//! (`/api/admin/tokens`) over HTTP, on the real app. Admins may, nobody else;
//! a disabled account or a replaced password stops working at once; secrets are
//! shown once and never listed; bad input names its field; every change is on
//! the audit trail with the admin as its agent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod staff_common;

use backend::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use staff_common::{Session, TestApp};

/// `method path` as `session` sends it from the staff app (cookie, CSRF token,
/// Origin), with `body` as JSON if there is one.
async fn send(
    app: &TestApp,
    session: &Session,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut req = app
        .as_staff(app.client.request(method, app.url(path)), session)
        .header("origin", &app.base);
    if let Some(body) = body {
        req = req.json(body);
    }
    req.send().await.unwrap()
}

async fn admin(app: &TestApp) -> Session {
    app.signed_in("ada", Role::Admin).await.0
}

async fn add_user(app: &TestApp, admin: &Session, name: &str, role: &str) -> reqwest::Response {
    let body = json!({"username": name, "role": role});
    send(app, admin, Method::POST, "/api/admin/users", Some(&body)).await
}

async fn json_of(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

fn subtype(event: &Value) -> &str {
    event["subtype"][0]["code"].as_str().unwrap()
}

#[tokio::test]
async fn an_admin_adds_a_user_whose_generated_password_signs_in_and_is_listed_without_it() {
    let app = TestApp::spawn().await;
    let admin = admin(&app).await;
    let res = add_user(&app, &admin, "Fred", "front-desk").await;
    assert_eq!(res.status(), 201);
    let added = json_of(res).await;
    assert_eq!(added["username"], "fred");
    assert_eq!(added["role"], "front-desk");
    let password = added["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), backend::auth::users::PASSWORD_LENGTH);
    assert_eq!(app.login("fred", &password).await.status(), 200);

    let res = send(&app, &admin, Method::GET, "/api/admin/users", None).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(!text.contains(&password), "{text}");
    assert!(!text.contains("argon2"), "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    let fred = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "fred")
        .unwrap();
    assert_eq!(fred["role"], "front-desk");
    assert_eq!(fred["disabled"], false);
    assert!(fred["created"].as_str().unwrap().ends_with('Z'), "{fred}");
    let keys: Vec<&String> = fred.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "{fred}");
}

#[tokio::test]
async fn bad_users_and_tokens_are_refused_naming_the_field_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let admin = admin(&app).await;
    assert_eq!(
        add_user(&app, &admin, "taken", "clinician").await.status(),
        201
    );
    let cases: &[(&str, Value, u16, &str)] = &[
        (
            "/api/admin/users",
            json!({"username": "Taken", "role": "admin"}),
            409,
            "username",
        ),
        (
            "/api/admin/users",
            json!({"username": "a b", "role": "admin"}),
            422,
            "username",
        ),
        (
            "/api/admin/users",
            json!({"username": "", "role": "admin"}),
            422,
            "username",
        ),
        (
            "/api/admin/users",
            json!({"username": "-x", "role": "admin"}),
            422,
            "username",
        ),
        (
            "/api/admin/users",
            json!({"username": "new", "role": "system"}),
            422,
            "role",
        ),
        (
            "/api/admin/users",
            json!({"username": "new", "role": "boss"}),
            422,
            "role",
        ),
        ("/api/admin/users", json!({"username": "new"}), 422, "role"),
        (
            "/api/admin/users",
            json!({"username": 7, "role": "admin"}),
            422,
            "username",
        ),
        (
            "/api/admin/tokens",
            json!({"name": "", "role": "system"}),
            422,
            "name",
        ),
        (
            "/api/admin/tokens",
            json!({"name": "x".repeat(65), "role": "system"}),
            422,
            "name",
        ),
        (
            "/api/admin/tokens",
            json!({"name": "emr", "role": "clinician"}),
            422,
            "role",
        ),
        ("/api/admin/tokens", json!({"role": "system"}), 422, "name"),
    ];
    for (path, body, status, field) in cases {
        let res = send(&app, &admin, Method::POST, path, Some(body)).await;
        let what = format!("{path} {body}");
        assert_eq!(res.status().as_u16(), *status, "{what}");
        let outcome = json_of(res).await;
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{what}");
        assert!(
            outcome["issue"].to_string().contains(field),
            "{what}: {outcome}"
        );
    }
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM staff_user")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(users, 2, "ada and taken");
    let tokens: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_token")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(tokens, 0);
    // A taken token name is a conflict too.
    let body = json!({"name": "emr", "role": "system"});
    let res = send(&app, &admin, Method::POST, "/api/admin/tokens", Some(&body)).await;
    assert_eq!(res.status(), 201);
    let body = json!({"name": "EMR", "role": "admin"});
    let res = send(&app, &admin, Method::POST, "/api/admin/tokens", Some(&body)).await;
    assert_eq!(res.status(), 409);
    // Unknown names in the path are not found.
    for (method, path) in [
        (Method::POST, "/api/admin/users/nobody/disable"),
        (Method::POST, "/api/admin/users/nobody/enable"),
        (Method::POST, "/api/admin/users/nobody/password"),
        (Method::POST, "/api/admin/users/not%20a%20name/password"),
        (Method::DELETE, "/api/admin/tokens/nothing"),
    ] {
        let res = send(&app, &admin, method.clone(), path, None).await;
        assert_eq!(res.status(), 404, "{method} {path}");
        assert_eq!(json_of(res).await["resourceType"], "OperationOutcome");
    }
}

#[tokio::test]
async fn only_admins_manage_users_and_tokens() {
    let app = TestApp::spawn().await;
    let desk = app.signed_in("desk", Role::FrontDesk).await.0;
    let doctor = app.signed_in("doctor", Role::Clinician).await.0;
    let user = json!({"username": "eve", "role": "admin"});
    let token = json!({"name": "mine", "role": "admin"});
    let calls: &[(Method, &str, Option<&Value>)] = &[
        (Method::GET, "/api/admin/users", None),
        (Method::POST, "/api/admin/users", Some(&user)),
        (Method::POST, "/api/admin/users/desk/disable", None),
        (Method::POST, "/api/admin/users/desk/enable", None),
        (Method::POST, "/api/admin/users/doctor/password", None),
        (Method::GET, "/api/admin/tokens", None),
        (Method::POST, "/api/admin/tokens", Some(&token)),
        (Method::DELETE, "/api/admin/tokens/mine", None),
    ];
    for session in [&desk, &doctor] {
        for (method, path, body) in calls {
            let res = send(&app, session, method.clone(), path, *body).await;
            assert_eq!(res.status(), 403, "{method} {path}");
            assert_eq!(json_of(res).await["resourceType"], "OperationOutcome");
        }
    }
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM staff_user")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(users, 2);
    // A system token is refused too; an admin token may (a script).
    let system = app.token("emr", Role::System).await;
    let res = app
        .client
        .get(app.url("/api/admin/users"))
        .bearer_auth(&system)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let ops = app.token("ops", Role::Admin).await;
    let res = app
        .client
        .post(app.url("/api/admin/users"))
        .bearer_auth(&ops)
        .json(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_their_session_dies_and_enabling_restores_the_account() {
    let app = TestApp::spawn().await;
    let admin = admin(&app).await;
    let (fred, password) = app.signed_in("fred", Role::FrontDesk).await;
    assert_eq!(
        app.get_with_cookie("/api/staff/me", &fred.id)
            .await
            .status(),
        200
    );

    let res = send(
        &app,
        &admin,
        Method::POST,
        "/api/admin/users/fred/disable",
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        app.get_with_cookie("/api/staff/me", &fred.id)
            .await
            .status(),
        401
    );
    let sessions: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM staff_session s JOIN staff_user u ON u.id = s.user_id WHERE u.username = 'fred'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(sessions, 0);
    assert_eq!(app.login("fred", &password).await.status(), 401);
    let list = json_of(send(&app, &admin, Method::GET, "/api/admin/users", None).await).await;
    let fred_row = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "fred")
        .unwrap()
        .clone();
    assert_eq!(fred_row["disabled"], true);

    let res = send(
        &app,
        &admin,
        Method::POST,
        "/api/admin/users/fred/enable",
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(app.login("fred", &password).await.status(), 200);
}

#[tokio::test]
async fn an_admin_cannot_disable_their_own_account() {
    let app = TestApp::spawn().await;
    let admin = admin(&app).await;
    let res = send(
        &app,
        &admin,
        Method::POST,
        "/api/admin/users/ADA/disable",
        None,
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(json_of(res).await["issue"].to_string().contains("username"));
    assert_eq!(
        app.get_with_cookie("/api/staff/me", &admin.id)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_reset_password_works_the_old_one_does_not_and_their_sessions_end() {
    let app = TestApp::spawn().await;
    let admin = admin(&app).await;
    let (doctor, old) = app.signed_in("doctor", Role::Clinician).await;
    let res = send(
        &app,
        &admin,
        Method::POST,
        "/api/admin/users/doctor/password",
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let new = json_of(res).await["password"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(
        app.get_with_cookie("/api/staff/me", &doctor.id)
            .await
            .status(),
        401
    );
    assert_eq!(app.login("doctor", &old).await.status(), 401);
    assert_eq!(app.login("doctor", &new).await.status(), 200);
}

#[tokio::test]
async fn a_token_is_shown_once_never_listed_and_revoked_gets_401() {
    let app = TestApp::spawn().await;
    let admin = admin(&app).await;
    let body = json!({"name": "EMR feed", "role": "system"});
    let res = send(&app, &admin, Method::POST, "/api/admin/tokens", Some(&body)).await;
    assert_eq!(res.status(), 201);
    let created = json_of(res).await;
    assert_eq!(created["name"], "EMR feed");
    assert_eq!(created["role"], "system");
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with(backend::auth::tokens::TOKEN_PREFIX));
    let read = || {
        app.client
            .get(app.url("/api/intakes/none"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(read().await.unwrap().status(), 404, "the token works");

    let res = send(&app, &admin, Method::GET, "/api/admin/tokens", None).await;
    let text = res.text().await.unwrap();
    let hash: String = sqlx::query_scalar("SELECT token_sha256 FROM api_token")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!text.contains(&token) && !text.contains(&hash), "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        list["tokens"],
        json!([{"name": "EMR feed", "role": "system", "created": list["tokens"][0]["created"], "revoked": null}])
    );

    let res = send(
        &app,
        &admin,
        Method::DELETE,
        "/api/admin/tokens/EMR%20feed",
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(read().await.unwrap().status(), 401);
    let list = json_of(send(&app, &admin, Method::GET, "/api/admin/tokens", None).await).await;
    assert!(list["tokens"][0]["revoked"].is_string(), "{list}");
    let res = send(
        &app,
        &admin,
        Method::DELETE,
        "/api/admin/tokens/EMR%20feed",
        None,
    )
    .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn every_change_is_audited_with_the_admin_as_agent_and_no_secret() {
    let app = TestApp::spawn().await;
    let admin = admin(&app).await;
    let added = json_of(add_user(&app, &admin, "fred", "front-desk").await).await;
    let fred_password = added["password"].as_str().unwrap().to_owned();
    for path in [
        "/api/admin/users/fred/disable",
        "/api/admin/users/fred/enable",
        "/api/admin/users/fred/password",
    ] {
        send(&app, &admin, Method::POST, path, None).await;
    }
    let body = json!({"name": "emr", "role": "system"});
    let created =
        json_of(send(&app, &admin, Method::POST, "/api/admin/tokens", Some(&body)).await).await;
    send(&app, &admin, Method::DELETE, "/api/admin/tokens/emr", None).await;

    let events = app.audit_events().await;
    let admin_events: Vec<(String, String, String, Option<String>)> = events
        .iter()
        .filter(|e| subtype(e) == "110136")
        .filter(|e| e["agent"][0]["who"]["identifier"]["value"] == "ada")
        .map(|e| {
            let entity = &e["entity"][0];
            (
                e["action"].as_str().unwrap().to_owned(),
                entity["what"]["identifier"]["system"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                entity["what"]["identifier"]["value"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                entity["detail"][0]["valueString"]
                    .as_str()
                    .map(str::to_owned),
            )
        })
        .collect();
    let row = |a: &str, s: &str, n: &str, d: Option<&str>| {
        (
            a.to_owned(),
            s.to_owned(),
            n.to_owned(),
            d.map(str::to_owned),
        )
    };
    assert_eq!(
        admin_events,
        vec![
            row("C", "urn:intake:staff-user", "fred", None),
            row("U", "urn:intake:staff-user", "fred", Some("disable")),
            row("U", "urn:intake:staff-user", "fred", Some("enable")),
            row("U", "urn:intake:staff-user", "fred", Some("password")),
            row("C", "urn:intake:token", "emr", None),
            row("D", "urn:intake:token", "emr", None),
        ]
    );
    let trail = serde_json::to_string(&events).unwrap();
    assert!(!trail.contains(&fred_password));
    assert!(!trail.contains(created["token"].as_str().unwrap()));
}
