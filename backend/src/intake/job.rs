//! What the writer works on: a queued submission ([`Job`]) with what was made
//! before it was queued ([`Prepared`]), the decision made of it ([`NewIntake`]),
//! and the writer's [`Context`].

use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::SqlitePool;
use tokio::sync::oneshot;

use super::bundle::{Subject, by, delivery_bundle, inline_requests};
use super::types::{Accepted, Decision, IntakeError, SUBMISSION_SYSTEM, Submission};
use crate::clock::{Clock, fhir_instant};
use crate::config::Delivery;
use crate::emr::{Emr, Found};
use crate::fhir::extract::{IdGenerator, RandomIds};
use crate::store::{Request, Store};

pub(crate) struct Job {
    pub(crate) submission: Submission,
    pub(crate) prepared: Prepared,
    pub(crate) reply: oneshot::Sender<Result<Accepted, IntakeError>>,
}

/// What can be made of a submission before the writer sees it (in the request's
/// own task, in parallel with other requests): the writer decides one intake at a
/// time, so whatever it need not do itself, it should not.
pub(crate) struct Prepared {
    /// The intake's id, should it be accepted.
    pub(crate) id: String,
    /// When it was received (FHIR instant).
    pub(crate) now: String,
    /// The Patient as the matching engine reads it.
    pub(crate) record: matching::PatientRecord,
    /// The response, with the intake's identifier.
    pub(crate) response: Value,
    /// `response` as stored in the intake row.
    pub(crate) response_text: String,
    /// The delivery should the intake create a new patient, and its text.
    pub(crate) new_bundle: Value,
    pub(crate) new_text: String,
    /// That delivery as local store writes, checked as the store checks them, when
    /// the EMR is the local store and they pass. The deliveries of the other
    /// decisions are that one without the Patient (the response refers to an
    /// existing one), so they pass too.
    pub(crate) checked: Option<Vec<Request>>,
}

impl Prepared {
    pub(crate) fn of(s: &Submission, store: Option<&Store>, clock: &dyn Clock) -> Self {
        let id = RandomIds.uuid();
        let now = fhir_instant(clock.now());
        let mut response = s.response.clone();
        response["identifier"] = json!({"system": SUBMISSION_SYSTEM, "value": id});
        let bundle = delivery_bundle(
            &id,
            &Subject::New,
            &s.patient,
            &s.extras,
            &response,
            &by(s),
            &now,
        );
        let checked = store.and_then(|store| {
            let requests = inline_requests(&bundle)?;
            store.check_creates(&requests).ok()?;
            Some(requests)
        });
        Self {
            record: crate::fhir::patient::to_record(&s.patient),
            response_text: response.to_string(),
            response,
            new_text: bundle.to_string(),
            new_bundle: bundle,
            checked,
            now,
            id,
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

/// What the writer and the outbox share.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) db: SqlitePool,
    pub(crate) store: Store,
    pub(crate) emr: Arc<dyn Emr>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) delivery: Delivery,
    /// The calling code assumed for phone numbers written without one (the
    /// matcher's `default_country`), to tell a changed number from the same one
    /// written another way.
    pub(crate) country: String,
}

/// A new intake's decision.
pub(crate) struct NewIntake {
    pub(crate) decision: Decision,
    pub(crate) subject: Subject,
    pub(crate) found: Vec<Found>,
    /// Where its pending new patient sits in the batch's holds.
    pub(crate) held: Option<usize>,
}
