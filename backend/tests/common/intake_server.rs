//! The app in this process with the registration form imported, for the intake
//! pipeline's tests: on the embedded store, or delivering to a remote EMR.
//!
//! ```ignore
//! let s = IntakeServer::embedded().await;
//! let (status, answer) = s.submit("k-1", &registration::response(..)).await;
//! let patients = s.search("Patient?family=otieno").await;
//! ```

use reqwest::StatusCode;
use serde_json::Value;

use super::medplum::MedplumPeer;
use super::{Spawned, http, registration};

/// The running app; dropping it stops it and removes its data folder.
#[derive(Debug)]
pub(crate) struct IntakeServer {
    /// `http://127.0.0.1:{port}`.
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    _spawned: Spawned,
    _dir: tempfile::TempDir,
}

impl IntakeServer {
    /// On the embedded store, with [`super::spawn_server`]'s settings.
    pub(crate) async fn embedded() -> Self {
        Self::start(|_| {}).await
    }

    /// Delivering to `emr` with a 256 KiB body limit; `tune` sets the rest (the EMR's
    /// timeout, the outbox's retry delays).
    pub(crate) async fn remote(emr: &MedplumPeer, tune: impl FnOnce(&mut backend::Config)) -> Self {
        Self::start(|config| {
            config.max_body_bytes = 256 * 1024;
            config.emr.emr_url = Some(emr.base_url());
            tune(config);
        })
        .await
    }

    /// On the embedded store, with [`super::spawn_server`]'s settings changed by
    /// `configure`.
    pub(crate) async fn start_with(configure: impl FnOnce(&mut backend::Config)) -> Self {
        Self::start(configure).await
    }

    async fn start(configure: impl FnOnce(&mut backend::Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let spawned =
            super::spawn_server_with(dir.path(), &dir.path().join("no-dist"), configure).await;
        let client = spawned.client.clone();
        registration::import(&client, &spawned.base).await;
        Self {
            base: spawned.base.clone(),
            client,
            _spawned: spawned,
            _dir: dir,
        }
    }

    /// `POST /api/intakes` with `key`: the status and the JSON answer.
    pub(crate) async fn submit(&self, key: &str, body: &Value) -> (StatusCode, Value) {
        registration::submit(&self.client, &self.base, key, body).await
    }

    /// `GET path`: the status and the JSON answer (null if there is none).
    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `GET path`, which must answer 200: its JSON.
    pub(crate) async fn read(&self, path: &str) -> Value {
        http::get_json(&self.client, &format!("{}{path}", self.base)).await
    }

    /// `GET /api/intakes/{id}`: the intake's state.
    pub(crate) async fn intake(&self, id: &str) -> Value {
        self.read(&format!("/api/intakes/{id}")).await
    }

    /// The resources a search of our `/fhir` finds (its first page).
    pub(crate) async fn search(&self, query: &str) -> Vec<Value> {
        http::search(&self.client, &format!("{}/fhir", self.base), query).await
    }
}
