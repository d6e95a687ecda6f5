//! Shared by `staff_auth.rs` and `audit.rs`: the real app on loopback over a fresh
//! data folder, a second connection to its database for arranging and checking,
//! and the staff requests with the session cookie sent by hand (reqwest keeps no
//! `Secure` cookie over plain HTTP, and the tests want to see it anyway).

// Each test binary uses its own part of this module.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;
use std::time::Duration;

use backend::auth::{Role, Username};
use serde_json::{Value, json};
use sqlx::SqlitePool;
use tempfile::TempDir;

/// The running server.
#[derive(Debug)]
pub(crate) struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The app on 127.0.0.1:0, its data folder and a pool on its database.
#[derive(Debug)]
pub(crate) struct TestApp {
    /// `http://127.0.0.1:{port}`.
    pub(crate) base: String,
    /// Sends nothing but what each request adds (a test of the refusals).
    pub(crate) client: reqwest::Client,
    /// Sends an admin token, made when first asked for ([`TestApp::admin`]): no
    /// test that counts audit events sees one it did not cause.
    admin: tokio::sync::OnceCell<reqwest::Client>,
    /// The app's database, for arranging and checking what the API cannot.
    pub(crate) db: SqlitePool,
    pub(crate) dir: TempDir,
    server: Server,
}

/// A session as login returned it.
#[derive(Debug)]
pub(crate) struct Session {
    /// The cookie's value.
    pub(crate) id: String,
    pub(crate) csrf: String,
}

/// A client with a new admin token on `db`.
async fn admin_client(db: &SqlitePool) -> reqwest::Client {
    let name = format!(
        "tests-{}",
        backend::fhir::extract::IdGenerator::uuid(&backend::fhir::extract::RandomIds)
    );
    // Allowed to link: it arranges what the EMR's own integration would send
    // (issue 21: other tokens' intakes only propose a link).
    let token =
        backend::auth::tokens::create_linking(db, std::time::SystemTime::now(), &name, Role::Admin)
            .await
            .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Runs the real `intake` binary.
pub(crate) fn intake_command(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

async fn serve(dir: &TempDir, configure: impl FnOnce(&mut backend::Config)) -> (String, Server) {
    let mut config = backend::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data: dir.path().to_owned(),
        dist: dir.path().join("no-dist"),
        max_body_bytes: 16 * 1024,
        matching: Default::default(),
        delivery: Default::default(),
        emr: Default::default(),
        guard: Default::default(),
        public_url: None,
    };
    configure(&mut config);
    let app = backend::Application::build(&config).await.unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    (base, Server { stop, task })
}

impl TestApp {
    /// A fresh data folder.
    pub(crate) async fn spawn() -> Self {
        Self::spawn_on(tempfile::tempdir().unwrap()).await
    }

    /// A fresh data folder, with the settings changed by `configure` (a remote
    /// EMR, the outbox's retry policy).
    pub(crate) async fn spawn_with(configure: impl FnOnce(&mut backend::Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (base, server) = serve(&dir, configure).await;
        let db = backend::db::open(dir.path()).await.unwrap();
        let admin = tokio::sync::OnceCell::new();
        Self {
            base,
            client: reqwest::Client::new(),
            admin,
            db,
            dir,
            server,
        }
    }

    /// On an existing data folder.
    pub(crate) async fn spawn_on(dir: TempDir) -> Self {
        let (base, server) = serve(&dir, |_| {}).await;
        let db = backend::db::open(dir.path()).await.unwrap();
        let admin = tokio::sync::OnceCell::new();
        Self {
            base,
            client: reqwest::Client::new(),
            admin,
            db,
            dir,
            server,
        }
    }

    /// Stops the server and starts a new one on the same data folder.
    pub(crate) async fn restart(self) -> Self {
        let _ = self.server.stop.send(());
        self.server.task.await.unwrap().unwrap();
        self.db.close().await;
        Self::spawn_on(self.dir).await
    }

    /// A client sending an admin token: for arranging through the API (a form's
    /// import, intakes whose decision the test reads).
    pub(crate) async fn admin(&self) -> reqwest::Client {
        self.admin
            .get_or_init(|| admin_client(&self.db))
            .await
            .clone()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Adds a user as `intake user add` does; returns the password.
    pub(crate) async fn add_user(&self, name: &str, role: Role) -> String {
        backend::auth::users::add(
            &self.db,
            std::time::SystemTime::now(),
            &Username::parse(name).unwrap(),
            role,
        )
        .await
        .unwrap()
    }

    pub(crate) async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/staff/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// The session of a successful login response.
    pub(crate) async fn login_session(&self, res: reqwest::Response) -> Session {
        assert_eq!(res.status(), 200);
        let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
        let id = cookie
            .split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, id)| id.to_owned())
            .unwrap();
        let body: Value = res.json().await.unwrap();
        Session {
            id,
            csrf: body["csrf"].as_str().unwrap().to_owned(),
        }
    }

    pub(crate) async fn get_with_cookie(&self, path: &str, session_id: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("cookie", format!("__Host-intake-session={session_id}"))
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn logout(
        &self,
        session_id: &str,
        csrf: Option<&str>,
        origin: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/api/staff/logout"))
            .header("cookie", format!("__Host-intake-session={session_id}"));
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send().await.unwrap()
    }

    /// `request` as the signed-in `session` sends it: its cookie and CSRF token.
    pub(crate) fn as_staff(
        &self,
        request: reqwest::RequestBuilder,
        session: &Session,
    ) -> reqwest::RequestBuilder {
        request
            .header("cookie", format!("__Host-intake-session={}", session.id))
            .header("x-csrf-token", &session.csrf)
    }

    /// A signed-in user of `role` named `name`: the session and the password.
    pub(crate) async fn signed_in(&self, name: &str, role: Role) -> (Session, String) {
        let password = self.add_user(name, role).await;
        let res = self.login(name, &password).await;
        (self.login_session(res).await, password)
    }

    /// A live bearer token of `role` (`system` or `admin`).
    pub(crate) async fn token(&self, name: &str, role: Role) -> String {
        backend::auth::tokens::create(&self.db, std::time::SystemTime::now(), name, role)
            .await
            .unwrap()
    }

    /// Moves every session's last use (and, if `created` too, its creation) back by
    /// `by`.
    pub(crate) async fn age_session(&self, by: Duration, created: bool) {
        let ms = i64::try_from(by.as_millis()).unwrap();
        let sql = if created {
            "UPDATE staff_session SET created_at = created_at - ?"
        } else {
            "UPDATE staff_session SET last_seen_at = last_seen_at - ?"
        };
        sqlx::query(sql).bind(ms).execute(&self.db).await.unwrap();
    }

    /// Every audit event, oldest first.
    pub(crate) async fn audit_events(&self) -> Vec<Value> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT event FROM audit_event ORDER BY seq")
            .fetch_all(&self.db)
            .await
            .unwrap();
        rows.iter()
            .map(|r| serde_json::from_str(r).unwrap())
            .collect()
    }
}
