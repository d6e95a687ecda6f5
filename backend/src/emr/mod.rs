//! The EMR the intakes end in, behind one trait: the embedded FHIR store (the
//! default) or a remote FHIR R4 server. The intake pipeline and the outbox only
//! ever talk to [`Emr`].

mod auth;
pub mod embedded;
pub mod remote;

use async_trait::async_trait;
use serde_json::Value;

use crate::fhir::outcome::Issue;

/// A Patient the EMR holds that may be the one asked about, graded and explained.
#[derive(Clone, Debug)]
pub struct Found {
    /// The engine's verdict on this candidate.
    pub candidate: matching::Candidate,
    /// The Patient as the EMR holds it.
    pub resource: Value,
}

/// Why the EMR did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EmrError {
    /// Unreachable, timed out, busy (429) or failing (5xx): worth trying again,
    /// not before `retry_after_ms` if the EMR said so.
    #[error("the EMR is unavailable: {reason}")]
    Unavailable {
        /// What happened (status, error kind; never patient data).
        reason: String,
        /// The EMR's `Retry-After`, in milliseconds.
        retry_after_ms: Option<u64>,
    },
    /// A version or a condition did not hold (412): the data changed meanwhile.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The EMR refused the content (4xx): trying again will not help.
    #[error("the EMR refused the request ({status})")]
    Rejected {
        /// The HTTP status (422 for the embedded store's own checks).
        status: u16,
        /// What the EMR said.
        issues: Vec<Issue>,
    },
}

impl EmrError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, EmrError::Unavailable { .. })
    }
}

/// The most resources [`Emr::search`] gathers for one search.
pub const SEARCH_LIMIT: usize = 1000;

/// What the intake pipeline needs from an EMR.
#[async_trait]
pub trait Emr: Send + Sync + std::fmt::Debug {
    /// `embedded` or `remote`, for logs and health.
    fn kind(&self) -> &'static str;

    /// The store in our own database, when the EMR is it: an intake's chart
    /// resources are then written in the very transaction that accepts it (atomic,
    /// exactly once, nothing to deliver later).
    fn local_store(&self) -> Option<&crate::store::Store> {
        None
    }

    /// How many intakes' delivery Bundles may be sent together as one transaction
    /// (fewer round trips and commits); 1 to send each on its own.
    fn delivery_batch(&self) -> usize {
        1
    }

    /// Patients matching a FHIR search (`family=…&birthdate=…`), one page.
    async fn search_patients(&self, query: &str) -> Result<Vec<Value>, EmrError>;

    /// The resources of `resource_type` a FHIR search finds (`patient=…&code=…`:
    /// SDC `$populate`'s `x-fhir-query`), every page up to [`SEARCH_LIMIT`];
    /// more is [`EmrError::Rejected`] `too-costly`, a search this EMR cannot run
    /// (a type it does not keep, a parameter it does not know) `Rejected` too.
    async fn search(&self, resource_type: &str, query: &str) -> Result<Vec<Value>, EmrError>;

    /// The current version of `Patient/{id}`.
    async fn read_patient(&self, id: &str) -> Result<Option<Value>, EmrError>;

    /// Creates a Patient (conditionally, with `If-None-Exist`); the stored resource.
    async fn create_patient(
        &self,
        patient: Value,
        if_none_exist: Option<&str>,
    ) -> Result<Value, EmrError>;

    /// Updates `Patient/{id}`, refused with [`EmrError::PreconditionFailed`] when
    /// `if_match` (a `meta.versionId` as the EMR wrote it: our store's are
    /// integers, other servers' may be anything) is no longer current.
    async fn update_patient(
        &self,
        id: &str,
        patient: Value,
        if_match: Option<&str>,
    ) -> Result<Value, EmrError>;

    /// Sends a `transaction` Bundle; the `transaction-response`.
    async fn transaction(&self, bundle: Value) -> Result<Value, EmrError>;

    /// The Questionnaire with this canonical URL, if the EMR has it.
    async fn read_questionnaire(&self, url: &str) -> Result<Option<Value>, EmrError>;

    /// Makes `record`, a new patient accepted under `key` but not yet delivered,
    /// a candidate of [`Emr::find_matches`] (with `key` as its id) until
    /// [`Emr::release_pending`]: a second intake of the same person finds it.
    fn hold_pending(&self, key: &str, record: &matching::PatientRecord);

    /// Ends [`Emr::hold_pending`] once the Patient is delivered (or never will be).
    fn release_pending(&self, key: &str);

    /// The EMR's Patients that may be `record`, best first, scored by our engine.
    async fn find_matches(
        &self,
        record: &matching::PatientRecord,
        options: &matching::MatchOptions,
    ) -> Result<Vec<Found>, EmrError>;
}
