//! Patients in the embedded store (every version kept, as Questionnaires are) and
//! the in-memory matching index over them, kept in step with every write.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::clock::{Clock, fhir_instant};
use crate::fhir::outcome::{Issue, IssueType};
use crate::fhir::patient;
use crate::questionnaires::is_valid_id;

/// A stored Patient.
#[derive(Debug, Clone)]
pub struct Saved {
    /// Its id.
    pub id: String,
    /// Its new version.
    pub version_id: i64,
    /// Whether it did not exist before.
    pub created: bool,
    /// The stored resource, with `id` and `meta`.
    pub resource: Value,
}

/// Why a Patient was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The resource cannot be used; nothing was stored.
    #[error("invalid Patient")]
    Invalid(Vec<Issue>),
    /// The database failed; nothing was stored.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// One write of a transaction: a Patient, under a new id (`None`) or a given one.
#[derive(Debug)]
pub struct Write {
    /// `Some(id)` for `PUT Patient/{id}`, `None` for `POST Patient`.
    pub id: Option<String>,
    /// The Patient.
    pub resource: Value,
}

/// Stores `resource` as a new Patient with a server-assigned id.
pub async fn create(
    db: &SqlitePool,
    clock: &dyn Clock,
    resource: Value,
) -> Result<Saved, SaveError> {
    let mut saved = transaction(db, clock, vec![Write { id: None, resource }]).await?;
    saved.pop().ok_or(SaveError::Invalid(Vec::new()))
}

/// Stores every write in one SQLite transaction: all or nothing.
pub async fn transaction(
    db: &SqlitePool,
    clock: &dyn Clock,
    writes: Vec<Write>,
) -> Result<Vec<Saved>, SaveError> {
    let mut issues = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        if let Err(issue) = patient::check_patient(&w.resource) {
            issues.push(issue.at(format!("entry[{i}].resource")));
        }
        if let Some(id) = &w.id
            && !is_valid_id(id)
        {
            issues.push(
                Issue::error(
                    IssueType::Value,
                    "The id must be 1 to 64 letters, digits, '-' or '.'",
                )
                .at(format!("entry[{i}].request.url")),
            );
        }
    }
    if !issues.is_empty() {
        return Err(SaveError::Invalid(issues));
    }
    let last_updated = fhir_instant(clock.now());
    let mut tx = db.begin().await?;
    let mut saved = Vec::with_capacity(writes.len());
    for w in writes {
        saved.push(write(&mut tx, &last_updated, w).await?);
    }
    tx.commit().await?;
    Ok(saved)
}

async fn write(
    tx: &mut Transaction<'static, Sqlite>,
    last_updated: &str,
    w: Write,
) -> Result<Saved, SaveError> {
    let id = match w.id {
        Some(id) => id,
        // 128 random bits as hex: a valid FHIR id that says nothing about the patient.
        None => {
            sqlx::query_scalar("SELECT lower(hex(randomblob(16)))")
                .fetch_one(&mut **tx)
                .await?
        }
    };
    let current: Option<i64> = sqlx::query_scalar(
        "SELECT version_id FROM resource WHERE resource_type = 'Patient' AND id = ?",
    )
    .bind(&id)
    .fetch_optional(&mut **tx)
    .await?;
    let version_id = current.unwrap_or(0) + 1;
    let mut resource = w.resource;
    resource["id"] = id.clone().into();
    resource["meta"] = serde_json::json!({
        "versionId": version_id.to_string(),
        "lastUpdated": last_updated,
    });
    let body = resource.to_string();
    sqlx::query(
        "INSERT INTO resource (resource_type, id, version_id, last_updated, body)
         VALUES ('Patient', ?1, ?2, ?3, ?4)
         ON CONFLICT (resource_type, id) DO UPDATE SET
           version_id = excluded.version_id, last_updated = excluded.last_updated,
           body = excluded.body",
    )
    .bind(&id)
    .bind(version_id)
    .bind(last_updated)
    .bind(&body)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO resource_version (resource_type, id, version_id, last_updated, body)
         VALUES ('Patient', ?1, ?2, ?3, ?4)",
    )
    .bind(&id)
    .bind(version_id)
    .bind(last_updated)
    .bind(&body)
    .execute(&mut **tx)
    .await?;
    Ok(Saved {
        id,
        version_id,
        created: current.is_none(),
        resource,
    })
}

/// The stored Patients (current versions) with these ids, as JSON, in that order
/// (an id not found is left out).
pub async fn read_many(db: &SqlitePool, ids: &[String]) -> Result<Vec<Value>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let body: Option<String> = sqlx::query_scalar(
            "SELECT body FROM resource WHERE resource_type = 'Patient' AND id = ?",
        )
        .bind(id)
        .fetch_optional(db)
        .await?;
        if let Some(v) = body.and_then(|b| serde_json::from_str(&b).ok()) {
            out.push(v);
        }
    }
    Ok(out)
}

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

    /// Brings the index up to date after stored writes.
    pub fn apply(&self, saved: &[Saved]) {
        let mut index = self.write();
        for s in saved {
            index.upsert(&s.id, &patient::to_record(&s.resource));
        }
    }
}
