//! The in-memory matching index over the stored Patients, kept in step with every
//! write (see [`super::Store`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde_json::Value;
use sqlx::SqlitePool;

use crate::fhir::patient;
use crate::store::Stored;

/// How often the background learner looks whether the model is due a new fit.
const LEARN_EVERY: Duration = Duration::from_secs(30);

/// The in-memory matching index, shared by every request.
#[derive(Debug)]
pub struct PatientIndex {
    index: RwLock<matching::Index>,
    /// Queries the model in use learned from (see [`PatientIndex::start_learning`]).
    fitted_queries: AtomicU64,
    /// Staff decisions the model in use learned from.
    fitted_labels: AtomicU64,
}

fn label_count(observed: &matching::Observed) -> u64 {
    observed.labels.values().map(|(s, n)| s + n).sum()
}

/// What the model learned, as stored (table `match_model`).
async fn read_learning(db: &SqlitePool) -> Result<(u64, matching::Observed), sqlx::Error> {
    let row: Option<(i64, i64, String, String)> =
        sqlx::query_as("SELECT version, queries, patterns, labels FROM match_model WHERE id = 1")
            .fetch_optional(db)
            .await?;
    let Some((version, queries, patterns, labels)) = row else {
        return Ok((0, matching::Observed::default()));
    };
    let pairs: Vec<(u64, u64)> = serde_json::from_str(&patterns).unwrap_or_default();
    let labels: Vec<(u64, u64, u64)> = serde_json::from_str(&labels).unwrap_or_default();
    Ok((
        u64::try_from(version).unwrap_or(0),
        matching::Observed {
            patterns: pairs.into_iter().collect(),
            queries: u64::try_from(queries).unwrap_or(0),
            labels: labels.into_iter().map(|(p, s, n)| (p, (s, n))).collect(),
        },
    ))
}

impl PatientIndex {
    fn new(index: matching::Index) -> Self {
        let fitted_queries = AtomicU64::new(index.model().learned_from_queries);
        let fitted_labels = AtomicU64::new(label_count(&index.observed()));
        Self {
            index: RwLock::new(index),
            fitted_queries,
            fitted_labels,
        }
    }

    /// Builds the index over every stored Patient, adds what earlier queries
    /// taught (table `match_model`), then fits the model once.
    pub async fn load(db: &SqlitePool, config: matching::Config) -> Result<Self, sqlx::Error> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, body FROM resource WHERE resource_type = 'Patient' ORDER BY rowid",
        )
        .fetch_all(db)
        .await?;
        let (version, observed) = read_learning(db).await?;
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
            index.add_observed(&observed);
            index.set_model(matching::Model {
                version,
                ..index.model().clone()
            });
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
                model.version = index.model().version,
                model.learned_from_queries = index.model().learned_from_queries,
                "patient index built"
            );
            index
        })
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("building the patient index: {e}")))?;
        Ok(Self::new(index))
    }

    /// An empty index.
    pub fn empty(config: matching::Config) -> Self {
        Self::new(matching::Index::new(config))
    }

    /// Reads the index. A panic while it was held leaves it as it was: keep going.
    pub fn read(&self) -> RwLockReadGuard<'_, matching::Index> {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, matching::Index> {
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores what the queries taught and the model's version (table `match_model`).
    pub async fn save(&self, db: &SqlitePool) -> Result<(), sqlx::Error> {
        let (version, observed) = {
            let index = self.read();
            (index.model().version, index.observed())
        };
        let mut pairs: Vec<(u64, u64)> = observed.patterns.into_iter().collect();
        pairs.sort_unstable();
        let patterns = serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into());
        let mut labels: Vec<(u64, u64, u64)> = observed
            .labels
            .into_iter()
            .map(|(p, (s, n))| (p, s, n))
            .collect();
        labels.sort_unstable();
        let labels = serde_json::to_string(&labels).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO match_model (id, version, queries, patterns, labels) \
             VALUES (1, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, \
             queries = excluded.queries, patterns = excluded.patterns, labels = excluded.labels",
        )
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .bind(i64::try_from(observed.queries).unwrap_or(i64::MAX))
        .bind(patterns)
        .bind(labels)
        .execute(db)
        .await?;
        Ok(())
    }

    /// Whether the model is due a new fit: staff decided since the last fit, or
    /// the queries seen since are [`matching::QUERIES_TO_LEARN`] or more and at
    /// least a quarter of those it learned from.
    fn due(&self) -> bool {
        let observed = self.read().observed();
        let fitted = self.fitted_queries.load(Ordering::Relaxed);
        let new = observed.queries.saturating_sub(fitted);
        label_count(&observed) > self.fitted_labels.load(Ordering::Relaxed)
            || (new >= matching::QUERIES_TO_LEARN && new * 4 >= fitted)
    }

    /// A staff decision on a match as labelled pairs for the model: each
    /// `(chart, same)` says whether the intake's patient is that chart (a link says
    /// it is; "not this patient" or a new chart says it is not). The model learns
    /// them at its next fit (within [`LEARN_EVERY`]).
    pub fn learn_from_review<'a>(
        &self,
        intake_patient: &Value,
        labels: impl IntoIterator<Item = (&'a str, bool)>,
    ) {
        let record = patient::to_record(intake_patient);
        let index = self.read();
        for (chart, same) in labels {
            index.teach(&record, chart, same);
        }
    }

    /// Re-estimates the model now: fitted under the read lock on a blocking thread
    /// (queries go on), installed under the write lock with the next version.
    pub async fn refit(self: &Arc<Self>) {
        let this = Arc::clone(self);
        let fitted = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let (model, labels) = {
                let index = this.read();
                (index.fit_model(), label_count(&index.observed()))
            };
            let mut index = this.write();
            this.fitted_labels.store(labels, Ordering::Relaxed);
            let model = matching::Model {
                version: index.model().version + 1,
                ..model
            };
            this.fitted_queries
                .store(model.learned_from_queries, Ordering::Relaxed);
            tracing::info!(
                model.version = model.version,
                model.learned_from_queries = model.learned_from_queries,
                model.fitted_on = model.fitted_on,
                model.fit_ms = started.elapsed().as_millis(),
                "matching model re-estimated"
            );
            index.set_model(model);
        })
        .await;
        if let Err(e) = fitted {
            tracing::error!(error = %e, "re-estimating the matching model failed");
        }
    }

    /// The background learner: every 30 seconds, when the queries have taught
    /// enough since the last fit, re-estimates the model and stores what was
    /// learned. Abort the handle to stop it (then [`PatientIndex::save`] once more).
    pub fn start_learning(self: Arc<Self>, db: SqlitePool) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LEARN_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                if !self.due() {
                    continue;
                }
                self.refit().await;
                if let Err(e) = self.save(&db).await {
                    tracing::warn!(error = %e, "storing the matching model's learning failed");
                }
            }
        })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn chart(given: &str, family: &str) -> Value {
        json!({
            "resourceType": "Patient",
            "name": [{"family": family, "given": [given]}],
            "gender": "female",
            "birthDate": "1980-03-04"
        })
    }

    #[tokio::test]
    async fn what_queries_and_decisions_taught_is_kept_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path()).await.unwrap();
        let index = Arc::new(PatientIndex::empty(matching::Config::default()));
        index.hold("a", &patient::to_record(&chart("Maria", "Okafor")));
        index.hold("b", &patient::to_record(&chart("Jane", "Linacre")));
        let intake = chart("Maria", "Smith");
        let found = index
            .read()
            .find(&patient::to_record(&intake), &Default::default());
        assert_eq!(found.candidates[0].id, "a");
        assert!(!index.due(), "one query is not enough to learn from");
        index.learn_from_review(&intake, [("a", true)]);
        index.learn_from_review(&intake, [("b", false), ("zz", false)]);
        assert!(index.due(), "a staff decision is");
        let observed = index.read().observed();
        assert_eq!(observed.queries, 1);
        assert_eq!(label_count(&observed), 2);
        let version = index.read().model().version;
        index.refit().await;
        assert_eq!(index.read().model().version, version + 1);
        assert!(!index.due());
        index.save(&db).await.unwrap();
        let loaded = PatientIndex::load(&db, matching::Config::default())
            .await
            .unwrap();
        assert_eq!(loaded.read().observed(), observed);
        // The version goes on from the stored one (the start's fit is one more).
        assert_eq!(loaded.read().model().version, version + 2);
        assert!(!loaded.due());
    }
}
