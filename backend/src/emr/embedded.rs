//! The embedded EMR: the FHIR store in our own SQLite database, with the
//! in-memory matching index over its Patients.

use async_trait::async_trait;
use serde_json::Value;

use super::{Emr, EmrError, Found};
use crate::fhir::outcome::{Issue, IssueType};
use crate::store::search;
use crate::store::{Request, Store, StoreError};

/// The embedded store as an [`Emr`].
#[derive(Debug, Clone)]
pub struct Embedded {
    store: Store,
}

impl Embedded {
    /// Over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn store_error(e: StoreError) -> EmrError {
    match e {
        StoreError::Invalid(issues) => EmrError::Rejected {
            status: 422,
            issues,
        },
        StoreError::PreconditionFailed(_) => EmrError::PreconditionFailed,
        StoreError::Database(e) => database(&e),
    }
}

fn database(e: &sqlx::Error) -> EmrError {
    EmrError::Unavailable {
        reason: format!("database: {e}"),
        retry_after_ms: None,
    }
}

fn bad_query() -> EmrError {
    EmrError::Rejected {
        status: 400,
        issues: vec![Issue::error(IssueType::Value, "Not a valid search")],
    }
}

fn too_many() -> EmrError {
    EmrError::Rejected {
        status: 422,
        issues: vec![Issue::error(
            IssueType::TooCostly,
            format!(
                "The search finds more than {} resources: narrow it",
                super::SEARCH_LIMIT
            ),
        )],
    }
}

#[async_trait]
impl Emr for Embedded {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    fn local_store(&self) -> Option<&Store> {
        Some(&self.store)
    }

    fn delivery_batch(&self) -> usize {
        // One local commit for many intakes: the store's transactions are cheap
        // per entry, its fsync is not.
        64
    }

    async fn search_patients(&self, query: &str) -> Result<Vec<Value>, EmrError> {
        let pairs = search::pairs(query).ok_or_else(bad_query)?;
        let query = search::parse("Patient", &pairs).map_err(|issues| EmrError::Rejected {
            status: 400,
            issues,
        })?;
        let (found, _) = self
            .store
            .search("Patient", &query)
            .await
            .map_err(|e| database(&e))?;
        Ok(found.into_iter().map(|s| s.resource).collect())
    }

    async fn search(&self, resource_type: &str, query: &str) -> Result<Vec<Value>, EmrError> {
        if !search::PARAMETERS.iter().any(|(t, _)| *t == resource_type) {
            return Err(EmrError::Rejected {
                status: 422,
                issues: vec![Issue::error(
                    IssueType::NotSupported,
                    format!("This server keeps no {resource_type} resources to search"),
                )],
            });
        }
        let pairs = search::pairs(query).ok_or_else(bad_query)?;
        let mut query =
            search::parse(resource_type, &pairs).map_err(|issues| EmrError::Rejected {
                status: 422,
                issues,
            })?;
        let mut out = Vec::new();
        loop {
            let (found, total) = self
                .store
                .search(resource_type, &query)
                .await
                .map_err(|e| database(&e))?;
            if query.total_only() || found.is_empty() {
                return Ok(out);
            }
            query.offset += found.len();
            out.extend(found.into_iter().map(|s| s.resource));
            if out.len() > super::SEARCH_LIMIT {
                return Err(too_many());
            }
            if query.offset >= total {
                return Ok(out);
            }
        }
    }

    async fn read_patient(&self, id: &str) -> Result<Option<Value>, EmrError> {
        Ok(self
            .store
            .read("Patient", id)
            .await
            .map_err(|e| database(&e))?
            .map(|s| s.resource))
    }

    async fn create_patient(
        &self,
        patient: Value,
        if_none_exist: Option<&str>,
    ) -> Result<Value, EmrError> {
        let mut out = self
            .store
            .transaction(vec![Request::Create {
                resource: patient,
                if_none_exist: if_none_exist.map(str::to_owned),
                full_url: None,
            }])
            .await
            .map_err(store_error)?;
        Ok(out.remove(0).stored().resource.clone())
    }

    async fn update_patient(
        &self,
        id: &str,
        patient: Value,
        if_match: Option<&str>,
    ) -> Result<Value, EmrError> {
        // Our versions are integers: any other is not the current one.
        let if_match = match if_match {
            Some(v) => Some(
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| EmrError::PreconditionFailed)?,
            ),
            None => None,
        };
        let mut out = self
            .store
            .transaction(vec![Request::Update {
                id: id.to_owned(),
                resource: patient,
                if_match,
                full_url: None,
            }])
            .await
            .map_err(store_error)?;
        Ok(out.remove(0).stored().resource.clone())
    }

    async fn transaction(&self, bundle: Value) -> Result<Value, EmrError> {
        let requests = crate::store::bundle::transaction_requests(&bundle).map_err(|issues| {
            EmrError::Rejected {
                status: 422,
                issues,
            }
        })?;
        let outcomes = self
            .store
            .transaction(requests)
            .await
            .map_err(store_error)?;
        Ok(crate::store::bundle::transaction_response(&outcomes))
    }

    async fn read_questionnaire(&self, url: &str) -> Result<Option<Value>, EmrError> {
        let found = crate::questionnaires::search_by_url(self.store.db(), url)
            .await
            .map_err(|e| database(&e))?;
        Ok(found.first().and_then(|b| serde_json::from_str(b).ok()))
    }

    fn hold_pending(&self, key: &str, record: &matching::PatientRecord) {
        self.store.patients().hold(key, record);
    }

    fn release_pending(&self, key: &str) {
        self.store.patients().release(key);
    }

    async fn find_matches(
        &self,
        record: &matching::PatientRecord,
        options: &matching::MatchOptions,
    ) -> Result<Vec<Found>, EmrError> {
        let outcome = self.store.patients().read().find(record, options);
        if !outcome.capped.is_empty() {
            let passes: Vec<&str> = outcome.capped.iter().map(|p| p.code()).collect();
            tracing::warn!(match.capped = ?passes, "blocking cap hit: candidates were cut");
        }
        // Candidates not (yet) in the store are intakes on their way to it: kept
        // with an empty resource, the pipeline knows them by their id.
        let ids: Vec<String> = outcome.candidates.iter().map(|c| c.id.clone()).collect();
        let stored = self
            .store
            .read_many("Patient", &ids)
            .await
            .map_err(|e| database(&e))?;
        Ok(outcome
            .candidates
            .into_iter()
            .map(|candidate| {
                let resource = stored
                    .iter()
                    .find(|s| s.id == candidate.id)
                    .map(|s| s.resource.clone())
                    .unwrap_or(Value::Null);
                Found {
                    candidate,
                    resource,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::clock::SystemClock;
    use crate::store::patients::PatientIndex;

    #[tokio::test]
    async fn an_update_names_the_version_as_written_and_a_stale_or_foreign_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path()).await.unwrap();
        let patients = Arc::new(PatientIndex::empty(matching::Config::default()));
        let emr = Embedded::new(Store::new(db, Arc::new(SystemClock), patients));
        let patient = json!({"resourceType": "Patient", "name": [{"family": "Chalmers"}]});
        let created = emr.create_patient(patient.clone(), None).await.unwrap();
        let id = created["id"].as_str().unwrap();
        let version = created["meta"]["versionId"].as_str().unwrap().to_owned();
        let updated = emr
            .update_patient(id, patient.clone(), Some(&version))
            .await
            .unwrap();
        assert_ne!(updated["meta"]["versionId"], version.as_str());
        for stale in [version.as_str(), "6f1c2f0e-uuid-of-another-server"] {
            assert!(matches!(
                emr.update_patient(id, patient.clone(), Some(stale)).await,
                Err(EmrError::PreconditionFailed)
            ));
        }
    }
}
