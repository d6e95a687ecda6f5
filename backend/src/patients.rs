//! The in-memory matching index over the stored Patients, kept in step with every
//! write (see [`crate::store`]).

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use sqlx::SqlitePool;

use crate::fhir::patient;
use crate::store::Stored;

/// The in-memory matching index, shared by every request.
#[derive(Debug)]
pub struct PatientIndex(RwLock<matching::Index>);

impl PatientIndex {
    /// Builds the index over every stored Patient, then fits the model once.
    pub async fn load(db: &SqlitePool, config: matching::Config) -> Result<Self, sqlx::Error> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, body FROM resource WHERE resource_type = 'Patient' ORDER BY rowid",
        )
        .fetch_all(db)
        .await?;
        let auto_refit = config.auto_refit;
        let index = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let mut index = matching::Index::new(matching::Config {
                auto_refit: false,
                ..config
            });
            for (id, body) in &rows {
                if let Ok(resource) = serde_json::from_str::<Value>(body) {
                    index.upsert(id, &patient::to_record(&resource));
                }
            }
            index.fit();
            let mut config = index.config().clone();
            config.auto_refit = auto_refit;
            index.set_config(config);
            let memory = index.memory();
            tracing::info!(
                patients = memory.patients,
                index.bytes = memory.total_bytes,
                index.bytes_per_patient = memory.bytes_per_patient,
                index.build_ms = started.elapsed().as_millis(),
                "patient index built"
            );
            index
        })
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("building the patient index: {e}")))?;
        Ok(Self(RwLock::new(index)))
    }

    /// An empty index.
    pub fn empty(config: matching::Config) -> Self {
        Self(RwLock::new(matching::Index::new(config)))
    }

    /// Reads the index. A panic while it was held leaves it as it was: keep going.
    pub fn read(&self) -> RwLockReadGuard<'_, matching::Index> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, matching::Index> {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds or replaces one record under `id` (an intake on its way to the store).
    pub fn hold(&self, id: &str, record: &matching::PatientRecord) {
        self.write().upsert(id, record);
    }

    /// Removes `id` from the index.
    pub fn release(&self, id: &str) {
        self.write().remove(id);
    }

    /// Brings the index up to date after stored writes (other types are skipped).
    pub fn apply_stored<'a>(&self, stored: impl IntoIterator<Item = &'a Stored>) {
        let mut patients = stored
            .into_iter()
            .filter(|s| s.resource_type == "Patient")
            .peekable();
        if patients.peek().is_none() {
            return;
        }
        let mut index = self.write();
        for s in patients {
            index.upsert(&s.id, &patient::to_record(&s.resource));
        }
    }
}
