//! The intake pipeline: a checked QuestionnaireResponse and the Patient extracted
//! from it are matched against the EMR, decided (linked, review or created) and
//! accepted in one local transaction with the outbox message that will deliver
//! them; the [`outbox`] then delivers, retrying until the EMR confirms.
//!
//! Decisions are made one at a time by a single writer task, so two submissions
//! of the same new patient can never both decide "new": the second finds the
//! first (held as a pending candidate until it reaches the EMR). The writer
//! commits whatever is queued together (group commit), which is what lets one
//! SQLite file take hundreds of intakes a second with every commit synced.

pub(crate) mod changes;
pub mod outbox;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::{Clock, fhir_instant};
use crate::config::Delivery;
pub use crate::config::Unverified;
use crate::emr::{Emr, Found};
use crate::fhir::extract::{IdGenerator, RandomIds};
use crate::store::{Request, Store};

/// The identifier system of what an intake writes: the Patient it creates, its
/// QuestionnaireResponse (`identifier`) and Provenance (`meta.tag`); the rest of
/// what its form extracts is under [`EXTRACTED_SYSTEM`].
/// A retried or replayed delivery finds them by it instead of writing twice.
pub const SUBMISSION_SYSTEM: &str = "urn:intake:submission";

/// The identifier system of the other resources an intake's form extracts
/// (RelatedPerson, Observation…): each has the value `{intake id}/{n}`, `n` its
/// place among them (from 1). Not [`SUBMISSION_SYSTEM`]: there a value is an
/// intake's id and names one resource per type (its Patient, its response), while
/// a form may extract several resources of one type, and a condition on a shared
/// value would make the second find the first and never be written.
pub const EXTRACTED_SYSTEM: &str = "urn:intake:extracted";

/// FHIR R4 resource types without an `identifier` element: an extracted one is
/// marked with a `meta.tag` instead (as the Provenance is) and found by `_tag`.
const WITHOUT_IDENTIFIER: &[&str] = &[
    "AuditEvent",
    "Binary",
    "Bundle",
    "CapabilityStatement",
    "CompartmentDefinition",
    "GraphDefinition",
    "ImplementationGuide",
    "Linkage",
    "MessageHeader",
    "OperationDefinition",
    "OperationOutcome",
    "Parameters",
    "Provenance",
    "SearchParameter",
    "Subscription",
];

/// What a form extracts besides the Patient (an emergency contact's
/// RelatedPerson, Observations…), delivered with it in the same transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extras {
    /// The extracted Patient's `fullUrl`, by which these refer to it.
    pub patient_url: Option<String>,
    /// The other entries of the extraction, `{fullUrl, resource}`, in its order
    /// (which numbers their identifiers, so it must not change between attempts).
    pub entries: Vec<Value>,
}

impl Extras {
    /// The entries of an extraction's Bundle that are not its Patient.
    pub fn of(extraction: &Value) -> Self {
        let mut out = Self::default();
        for e in extraction["entry"].as_array().into_iter().flatten() {
            let Some(resource) = e.get("resource").filter(|r| r.is_object()) else {
                continue;
            };
            let full_url = e.get("fullUrl").cloned();
            if resource["resourceType"] == "Patient" && out.patient_url.is_none() {
                out.patient_url = full_url.and_then(|u| u.as_str().map(str::to_owned));
                continue;
            }
            let mut entry = json!({"resource": resource});
            if let Some(u) = full_url {
                entry["fullUrl"] = u;
            }
            out.entries.push(entry);
        }
        out
    }

    /// Leaves out the resources of a type not in `allowed` (what the embedded
    /// store keeps); how many were left out.
    pub fn retain_types(&mut self, allowed: &[&str]) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| {
            e.pointer("/resource/resourceType")
                .and_then(Value::as_str)
                .is_some_and(|t| allowed.contains(&t))
        });
        before - self.entries.len()
    }

    /// What an intake waiting for a decision keeps (`intake.extracted`): the
    /// Patient alone when nothing else was extracted (as before these were
    /// delivered), else a `collection` Bundle of the Patient and the rest.
    pub(crate) fn keep(&self, patient: &Value) -> String {
        if self.entries.is_empty() {
            return patient.to_string();
        }
        let mut first = json!({"resource": patient});
        if let Some(u) = &self.patient_url {
            first["fullUrl"] = Value::String(u.clone());
        }
        let mut entries = vec![first];
        entries.extend(self.entries.iter().cloned());
        json!({"resourceType": "Bundle", "type": "collection", "entry": entries}).to_string()
    }

    /// The Patient and the rest, from what [`Extras::keep`] kept (or a Patient
    /// alone, as older versions kept it).
    pub(crate) fn kept(text: &str) -> Option<(Value, Self)> {
        let value: Value = serde_json::from_str(text).ok()?;
        if value["resourceType"] == "Bundle" {
            let patient = patient_in(&value)?;
            return Some((patient, Self::of(&value)));
        }
        value.is_object().then(|| (value, Self::default()))
    }
}

/// Where a pending (accepted, not yet delivered) new patient sits in the index.
pub(crate) fn pending_key(intake: &str) -> String {
    format!("intake-{intake}")
}

/// What was decided for an intake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// An existing patient, matched `certain`.
    Linked,
    /// Candidates a person must decide between.
    Review,
    /// Nobody like this patient: a new chart.
    Created,
}

impl Decision {
    /// As in the API and the database.
    pub fn code(self) -> &'static str {
        match self {
            Decision::Linked => "linked",
            Decision::Review => "review",
            Decision::Created => "created",
        }
    }

    fn parse(code: &str) -> Self {
        match code {
            "linked" => Decision::Linked,
            "created" => Decision::Created,
            _ => Decision::Review,
        }
    }
}

/// An intake as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Its id.
    pub intake: String,
    /// What was decided.
    pub outcome: Decision,
    /// `Patient/{id}` once known.
    pub patient: Option<String>,
    /// `accepted`, `delivered`, `review` or `dead`.
    pub status: String,
    /// Whether this answer repeats an earlier one (same Idempotency-Key).
    pub repeated: bool,
}

/// A checked submission, ready to decide.
#[derive(Clone, Debug)]
pub struct Submission {
    /// The client's Idempotency-Key.
    pub key: String,
    /// SHA-256 of the body, hex.
    pub body_sha256: String,
    /// The Questionnaire answered (canonical or `Questionnaire/{id}`).
    pub questionnaire: String,
    /// The QuestionnaireResponse (FHIR JSON), as checked.
    pub response: Value,
    /// The Patient extracted from it.
    pub patient: Value,
    /// Whatever else was extracted from it.
    pub extras: Extras,
    /// Who sent it, for Provenance (`Intake patient app`, a kiosk's name, …).
    pub device: String,
    /// Who to name in the audit trail when it is accepted (a kiosk), if anyone.
    pub agent: Option<crate::audit::Agent>,
    /// The invitation it was sent under, when the patient came by one.
    pub invited: Option<Invited>,
    /// What proved who the patient is (stamped on `response` already).
    pub proof: Proof,
    /// Whether a `certain` match may be filed without a person: the intake
    /// has proof, or the clinic links unverified intakes too.
    pub may_link: bool,
}

/// What proved who the patient of an intake is (issue 21). An intake without
/// proof that matches a chart is not filed there on the strength of the typed
/// name and birth date alone (anyone who knows a neighbour's details could put
/// a false allergy in her chart): it waits as a proposed link staff confirm,
/// unless the clinic set `INTAKE_UNVERIFIED_INTAKES=link`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// An invitation: its single-use token plus the birth date.
    Invitation,
    /// A kiosk enrolled by staff, in the clinic.
    Kiosk,
    /// A signed-in staff member entered it.
    Staff,
    /// A system client whose token is allowed to link (`--may-link`).
    System,
    /// None: the public page, or a system client acting for nobody.
    None,
}

/// The system of the `meta.tag` on an intake's QuestionnaireResponse and
/// Provenance that says which [`Proof`] the intake carried.
pub const PROOF_SYSTEM: &str = "urn:intake:identity-proof";

impl Proof {
    /// As in the `meta.tag`.
    pub fn code(self) -> &'static str {
        match self {
            Proof::Invitation => "invitation",
            Proof::Kiosk => "kiosk",
            Proof::Staff => "staff",
            Proof::System => "system",
            Proof::None => "unverified",
        }
    }

    /// What a clinician reading the chart is told.
    fn display(self) -> &'static str {
        match self {
            Proof::Invitation => "Patient-reported; identity verified by invitation",
            Proof::Kiosk => "Patient-reported at a clinic kiosk",
            Proof::Staff => "Entered by staff",
            Proof::System => "Sent by a trusted system",
            Proof::None => "Patient-reported; identity not verified",
        }
    }

    /// Whether the intake proves who the patient is.
    pub fn is_verified(self) -> bool {
        self != Proof::None
    }

    /// The `meta.tag` saying so.
    pub fn tag(self) -> Value {
        json!({"system": PROOF_SYSTEM, "code": self.code(), "display": self.display()})
    }

    /// `resource` with this proof as its only tag of [`PROOF_SYSTEM`]: a tag
    /// the sender wrote there is dropped, so nobody can claim a proof.
    pub fn stamp(self, resource: &mut Value) {
        let Some(object) = resource.as_object_mut() else {
            return;
        };
        let meta = object.entry("meta").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        let mut tags: Vec<Value> = meta
            .get("tag")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        tags.retain(|t| t.get("system").and_then(Value::as_str) != Some(PROOF_SYSTEM));
        tags.push(self.tag());
        meta["tag"] = Value::Array(tags);
    }

    /// The proof a stored response was stamped with (none: unverified).
    pub fn of(resource: &Value) -> Self {
        let code = resource
            .pointer("/meta/tag")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|t| t.get("system").and_then(Value::as_str) == Some(PROOF_SYSTEM))
            .and_then(|t| t.get("code"))
            .and_then(Value::as_str);
        match code {
            Some("invitation") => Proof::Invitation,
            Some("kiosk") => Proof::Kiosk,
            Some("staff") => Proof::Staff,
            Some("system") => Proof::System,
            _ => Proof::None,
        }
    }
}

/// The reason code of a review Task that proposes a link an intake without
/// proof could not make itself.
pub const UNVERIFIED_REASON: &str = "unverified-identity";

/// An intake sent under a confirmed invitation (see [`crate::invitation`]).
#[derive(Clone, Debug)]
pub struct Invited {
    /// The invitation's id: named by the Provenance, marked used with the accept.
    pub invitation: String,
    /// The invited patient's id, for an invitation to a known patient: the
    /// intake is linked to them without a match (they proved who they are), and
    /// what they changed becomes a demographics Task.
    pub patient: Option<String>,
    /// That patient's chart as the EMR has it, to compare the answers with.
    pub chart: Option<Value>,
}

/// Why an intake was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The key was used before for a different body.
    #[error("idempotency key reused for other content")]
    KeyReused,
    /// The EMR could not be asked for candidates; nothing was accepted.
    #[error("the EMR could not be searched: {0}")]
    Emr(String),
    /// The local database failed; nothing was accepted.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The pipeline has stopped (shutting down).
    #[error("the intake pipeline has stopped")]
    Stopped,
    /// The invitation was used (or cancelled, or locked) before this intake
    /// was decided; nothing was accepted.
    #[error("the invitation can no longer be used")]
    InvitationSpent,
}

struct Job {
    submission: Submission,
    prepared: Prepared,
    reply: oneshot::Sender<Result<Accepted, IntakeError>>,
}

/// What can be made of a submission before the writer sees it (in the request's
/// own task, in parallel with other requests): the writer decides one intake at a
/// time, so whatever it need not do itself, it should not.
struct Prepared {
    /// The intake's id, should it be accepted.
    id: String,
    /// When it was received (FHIR instant).
    now: String,
    /// The Patient as the matching engine reads it.
    record: matching::PatientRecord,
    /// The response, with the intake's identifier.
    response: Value,
    /// `response` as stored in the intake row.
    response_text: String,
    /// The delivery should the intake create a new patient, and its text.
    new_bundle: Value,
    new_text: String,
    /// That delivery as local store writes, checked as the store checks them, when
    /// the EMR is the local store and they pass. The deliveries of the other
    /// decisions are that one without the Patient (the response refers to an
    /// existing one), so they pass too.
    checked: Option<Vec<Request>>,
}

impl Prepared {
    fn of(s: &Submission, store: Option<&Store>, clock: &dyn Clock) -> Self {
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

/// The pipeline: submit, look up, wait for delivery.
#[derive(Debug, Clone)]
pub struct Intakes {
    db: SqlitePool,
    jobs: mpsc::Sender<Job>,
    /// Requests waiting for their intake's delivery.
    waiters: Waiters,
    /// Wakes the outbox after an accept.
    wake: Arc<tokio::sync::Notify>,
    /// Tells the outbox to stop, and its task.
    stop: Arc<watch::Sender<bool>>,
    outbox: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// The EMR when it is our own store.
    local: Option<Store>,
    clock: Arc<dyn Clock>,
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

impl Intakes {
    /// Starts the writer and the outbox over `emr`. Deliveries left pending by a
    /// previous run (a crash, a restart) are picked up at once.
    pub async fn start(
        db: SqlitePool,
        store: Store,
        emr: Arc<dyn Emr>,
        clock: Arc<dyn Clock>,
        delivery: Delivery,
        country: String,
    ) -> Result<Self, sqlx::Error> {
        let ctx = Context {
            db: db.clone(),
            store,
            emr,
            clock,
            delivery,
            country,
        };
        // New patients accepted but not delivered before a restart are candidates
        // again, so a second submission still finds them.
        let pending: Vec<(String, String)> = sqlx::query_as(
            "SELECT i.id, o.payload FROM intake i JOIN outbox o ON o.intake_id = i.id
             WHERE i.outcome = 'created' AND o.state = 'pending'",
        )
        .fetch_all(&db)
        .await?;
        for (intake, payload) in pending {
            if let Some(patient) = serde_json::from_str::<Value>(&payload)
                .ok()
                .and_then(|b| patient_in(&b))
            {
                ctx.emr.hold_pending(
                    &pending_key(&intake),
                    &crate::fhir::patient::to_record(&patient),
                );
            }
        }
        let local = ctx.emr.local_store().cloned();
        let clock = ctx.clock.clone();
        let (jobs, rx) = mpsc::channel(1024);
        let waiters = Waiters::default();
        let wake = Arc::new(tokio::sync::Notify::new());
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(writer(ctx.clone(), rx, wake.clone()));
        let outbox = tokio::spawn(outbox::run(ctx, wake.clone(), waiters.clone(), stopped));
        Ok(Self {
            db,
            jobs,
            waiters,
            wake,
            stop: Arc::new(stop),
            outbox: Arc::new(tokio::sync::Mutex::new(Some(outbox))),
            local,
            clock,
        })
    }

    /// Wakes the outbox: a decision put a delivery in it.
    pub(crate) fn wake_outbox(&self) {
        self.wake.notify_one();
    }

    /// Stops the outbox once its delivery in flight is done (what is left is
    /// delivered after the next start).
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.outbox.lock().await.take() {
            let _ = task.await;
        }
    }

    /// The intake accepted under `key`, and the hash of its body.
    pub async fn by_key(&self, key: &str) -> Result<Option<(Accepted, String)>, sqlx::Error> {
        let row: Option<(String, String, String, Option<String>, String)> = sqlx::query_as(
            "SELECT id, body_sha256, outcome, patient, status FROM intake WHERE idempotency_key = ?",
        )
        .bind(key)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.map(|(id, sha, outcome, patient, status)| {
            (
                Accepted {
                    intake: id,
                    outcome: Decision::parse(&outcome),
                    patient,
                    status,
                    repeated: true,
                },
                sha,
            )
        }))
    }

    /// The intake `id`.
    pub async fn get(&self, id: &str) -> Result<Option<Accepted>, sqlx::Error> {
        let row: Option<(String, String, Option<String>, String)> =
            sqlx::query_as("SELECT id, outcome, patient, status FROM intake WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.db)
                .await?;
        Ok(row.map(|(intake, outcome, patient, status)| Accepted {
            intake,
            outcome: Decision::parse(&outcome),
            patient,
            status,
            repeated: false,
        }))
    }

    /// Decides and accepts `submission` (or answers as before for a known key).
    pub async fn submit(&self, mut submission: Submission) -> Result<Accepted, IntakeError> {
        if self.local.is_some() {
            // The embedded store keeps only some types: the rest of what a form
            // extracts cannot be delivered there (a remote EMR gets everything).
            let dropped = submission
                .extras
                .retain_types(crate::fhir::resource::EXTRACTED_TYPES);
            if dropped > 0 {
                tracing::warn!(
                    intake.extras_dropped = dropped,
                    "extracted resources of types the embedded store does not keep were left out"
                );
            }
        }
        let (reply, answer) = oneshot::channel();
        let prepared = Prepared::of(&submission, self.local.as_ref(), self.clock.as_ref());
        self.jobs
            .send(Job {
                submission,
                prepared,
                reply,
            })
            .await
            .map_err(|_| IntakeError::Stopped)?;
        answer.await.map_err(|_| IntakeError::Stopped)?
    }

    /// Waits until intake `id` is no longer waiting for delivery, or `timeout`.
    /// Its state then.
    pub async fn wait_settled(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<Accepted>, sqlx::Error> {
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters)
            .entry(id.to_owned())
            .or_default()
            .push(tx);
        let now = self.get(id).await?;
        if now.as_ref().is_some_and(|a| a.status == "accepted") {
            self.wake.notify_one();
            if tokio::time::timeout(timeout, rx).await.is_err() {
                // Gave up waiting: forget this waiter (the intake is still delivered).
                let mut w = lock(&self.waiters);
                if let Some(list) = w.get_mut(id) {
                    list.retain(|s| !s.is_closed());
                    if list.is_empty() {
                        w.remove(id);
                    }
                }
            }
            return self.get(id).await;
        }
        lock(&self.waiters).remove(id);
        Ok(now)
    }
}

/// Requests waiting for an intake's delivery, by intake id.
pub(crate) type Waiters =
    Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<oneshot::Sender<()>>>>>;

fn lock(
    waiters: &Waiters,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<oneshot::Sender<()>>>> {
    waiters
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Wakes whoever waits for intake `id` (delivered, dead-lettered or sent to review).
pub(crate) fn settle(waiters: &Waiters, id: &str) {
    if let Some(list) = lock(waiters).remove(id) {
        for waiter in list {
            let _ = waiter.send(());
        }
    }
}

/// The single writer: takes every queued job, decides each in order, commits
/// them together.
async fn writer(ctx: Context, mut rx: mpsc::Receiver<Job>, wake: Arc<tokio::sync::Notify>) {
    const BATCH: usize = 128;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (results, rows) = accept_batch(&ctx, &mut batch).await;
        let mut spent = Vec::with_capacity(batch.len());
        for (job, result) in batch.into_iter().zip(results) {
            let _ = job.reply.send(result);
            spent.push((job.submission, job.prepared));
        }
        wake.notify_one();
        // Freeing a batch's documents takes the writer a while: leave it to
        // another thread.
        tokio::spawn(async move { drop((spent, rows)) });
    }
}

/// Decides and stores a batch in one transaction. On a database failure every
/// job of the batch fails (nothing of it is stored) and pending holds are undone.
///
/// Two passes: the first decides each intake in order (matching sees the new
/// patients of the intakes before it, held as pending candidates); the second
/// builds what each intake writes. The rows of the whole batch then go to SQLite
/// in a few multi-row statements: each statement is a round trip to SQLite's
/// thread, and per intake there were about twenty.
async fn accept_batch(
    ctx: &Context,
    batch: &mut [Job],
) -> (Vec<Result<Accepted, IntakeError>>, Rows) {
    let mut held = Vec::new();
    let mut rows = Rows::default();
    let result = async {
        let guard = ctx.store.lock().await;
        let mut tx = crate::db::begin_write(&ctx.db).await?;
        let earlier = accepted_under(&mut tx, batch).await?;
        let mut decided = Vec::with_capacity(batch.len());
        let mut keys: HashMap<&str, usize> = HashMap::new();
        let mut invitations: Vec<String> = Vec::new();
        for (i, job) in batch.iter().enumerate() {
            let s = &job.submission;
            let d = if let Some((accepted, sha)) = earlier.get(&s.key) {
                // A retry of an intake accepted before.
                if *sha == s.body_sha256 {
                    Ok(Decided::Repeat(accepted.clone()))
                } else {
                    Err(IntakeError::KeyReused)
                }
            } else if let Some(&first) = keys.get(s.key.as_str()) {
                // A retry of an intake earlier in this very batch.
                if batch[first].submission.body_sha256 == s.body_sha256 {
                    Ok(Decided::RepeatOf(first))
                } else {
                    Err(IntakeError::KeyReused)
                }
            } else if let Some(invited) = &s.invited
                && !invitation_open(&mut tx, &invited.invitation, &mut invitations).await?
            {
                Err(IntakeError::InvitationSpent)
            } else {
                keys.insert(&s.key, i);
                decide(ctx, &job.prepared, s, &mut held)
                    .await
                    .map(Decided::New)
            };
            decided.push(d);
        }
        let charts = charts(ctx, &decided).await?;
        let mut results: Vec<Result<Accepted, IntakeError>> = Vec::with_capacity(batch.len());
        for (job, d) in batch.iter_mut().zip(decided) {
            let result = match d {
                Err(e) => Err(e),
                Ok(Decided::Repeat(accepted)) => Ok(accepted),
                Ok(Decided::RepeatOf(first)) => match &results[first] {
                    Ok(a) => Ok(Accepted {
                        repeated: true,
                        ..a.clone()
                    }),
                    Err(IntakeError::Emr(e)) => Err(IntakeError::Emr(e.clone())),
                    Err(IntakeError::InvitationSpent) => Err(IntakeError::InvitationSpent),
                    Err(_) => Err(IntakeError::KeyReused),
                },
                Ok(Decided::New(d)) => record(ctx, job, d, &charts, &mut rows, &mut held),
            };
            results.push(result);
        }
        rows.write(ctx, &mut tx).await?;
        tx.commit().await?;
        ctx.store.inserted(&rows.stored);
        drop(guard);
        // Written with the accept: the Patient itself is in the index now.
        for (key, written) in &held {
            if *written {
                ctx.emr.release_pending(key);
            }
        }
        Ok::<_, sqlx::Error>(results)
    }
    .await;
    match result {
        Ok(results) => (results, rows),
        Err(e) => {
            for (key, _) in &held {
                ctx.emr.release_pending(key);
            }
            tracing::error!(error = %e, "intakes not accepted: database failed");
            let failed = batch
                .iter()
                .map(|_| Err(IntakeError::Database(sqlx::Error::PoolClosed)))
                .collect();
            (failed, rows)
        }
    }
}

/// The intakes accepted before under the keys of `batch`, by key: each with the
/// hash of its body.
async fn accepted_under(
    tx: &mut SqliteConnection,
    batch: &[Job],
) -> Result<HashMap<String, (Accepted, String)>, sqlx::Error> {
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "SELECT idempotency_key, id, body_sha256, outcome, patient, status FROM intake
         WHERE idempotency_key IN (",
    );
    let mut keys = q.separated(", ");
    for job in batch {
        keys.push_bind(job.submission.key.as_str());
    }
    q.push(")");
    let rows: Vec<(String, String, String, String, Option<String>, String)> = q
        .build_query_as()
        .persistent(false)
        .fetch_all(&mut *tx)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(key, intake, sha, outcome, patient, status)| {
            let accepted = Accepted {
                intake,
                outcome: Decision::parse(&outcome),
                patient,
                status,
                repeated: true,
            };
            (key, (accepted, sha))
        })
        .collect())
}

/// What the first pass made of a job.
enum Decided {
    /// Accepted before: this answer again.
    Repeat(Accepted),
    /// The same as the job at this position in the batch.
    RepeatOf(usize),
    /// A new intake.
    New(NewIntake),
}

/// A new intake's decision.
struct NewIntake {
    decision: Decision,
    subject: Subject,
    found: Vec<Found>,
    /// Where its pending new patient sits in the batch's holds.
    held: Option<usize>,
}

/// Whether the invitation `id` can still take an intake: not used, cancelled or
/// locked, and not taken by an intake earlier in this batch (`taken`, to which
/// it is added). Read in the accept's own transaction, by the one writer, so
/// two submissions under one invitation cannot both be accepted.
async fn invitation_open(
    tx: &mut SqliteConnection,
    id: &str,
    taken: &mut Vec<String>,
) -> Result<bool, sqlx::Error> {
    if taken.iter().any(|t| t == id) {
        return Ok(false);
    }
    let open: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM invitation
         WHERE id = ? AND used_at IS NULL AND cancelled_at IS NULL AND locked_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if open.is_some() {
        taken.push(id.to_owned());
    }
    Ok(open.is_some())
}

/// Matches the intake and decides; a new patient is held as a pending candidate
/// at once, so the intakes after it in the batch find them. An invited known
/// patient is not matched: the intake is theirs.
async fn decide(
    ctx: &Context,
    p: &Prepared,
    s: &Submission,
    held: &mut Vec<(String, bool)>,
) -> Result<NewIntake, IntakeError> {
    if let Some(patient) = s.invited.as_ref().and_then(|i| i.patient.clone()) {
        return Ok(NewIntake {
            decision: Decision::Linked,
            subject: Subject::Existing(patient),
            found: Vec::new(),
            held: None,
        });
    }
    let options = matching::MatchOptions {
        count: 5,
        ..matching::MatchOptions::default()
    };
    let found = match ctx.emr.local_store() {
        // Our own index: the candidates' charts are read later, for the batch at
        // once, and only where a Task needs one.
        Some(store) => {
            let outcome = store.patients().read().find(&p.record, &options);
            if !outcome.capped.is_empty() {
                let passes: Vec<&str> = outcome.capped.iter().map(|p| p.code()).collect();
                tracing::warn!(match.capped = ?passes, "blocking cap hit: candidates were cut");
            }
            Ok(outcome
                .candidates
                .into_iter()
                .map(|candidate| Found {
                    candidate,
                    resource: Value::Null,
                })
                .collect())
        }
        None => ctx.emr.find_matches(&p.record, &options).await,
    };
    // An EMR that cannot be searched must not lose the intake, nor make a
    // returning patient look new: it is accepted for staff to decide.
    let unsearched = found.is_err();
    let found = found.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "EMR not searchable: intake sent to review");
        Vec::new()
    });
    let top = found.first();
    let decision = match top.map(|f| f.candidate.grade) {
        _ if unsearched => Decision::Review,
        // Without proof, a certain match is only proposed (issue 21).
        Some(matching::Grade::Certain) if s.may_link => Decision::Linked,
        Some(_) => Decision::Review,
        None => Decision::Created,
    };
    // Linked to a patient still on their way to the EMR: referenced by the
    // identifier of the intake that created them, resolved at delivery.
    let subject = match (decision, top) {
        (Decision::Linked, Some(f)) => match f.candidate.id.strip_prefix("intake-") {
            Some(earlier) => Subject::Pending(earlier.to_owned()),
            None => Subject::Existing(f.candidate.id.clone()),
        },
        (Decision::Created, _) => Subject::New,
        _ => Subject::None,
    };
    let held = (subject == Subject::New).then(|| {
        let key = pending_key(&p.id);
        ctx.emr.hold_pending(&key, &p.record);
        held.push((key, false));
        held.len() - 1
    });
    Ok(NewIntake {
        decision,
        subject,
        found,
        held,
    })
}

/// The charts of the existing patients the batch's intakes were linked to (to
/// propose what differs), by id, when the embedded store's candidates came
/// without them.
async fn charts(
    ctx: &Context,
    decided: &[Result<Decided, IntakeError>],
) -> Result<HashMap<String, Value>, sqlx::Error> {
    let Some(store) = ctx.emr.local_store() else {
        return Ok(HashMap::new());
    };
    let mut ids: Vec<String> = decided
        .iter()
        .filter_map(|d| match d {
            Ok(Decided::New(NewIntake {
                subject: Subject::Existing(p),
                ..
            })) => Some(p.clone()),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    Ok(store
        .read_many("Patient", &ids)
        .await?
        .into_iter()
        .map(|s| (s.id, s.resource))
        .collect())
}

/// What a batch writes, gathered to be written at once.
#[derive(Default)]
struct Rows {
    /// Resources for the store: intakes' deliveries, Tasks.
    stored: Vec<crate::store::Stored>,
    intakes: Vec<IntakeRow>,
    outbox: Vec<OutboxRow>,
    /// `Patient/{id}` of each intake of this batch that created one.
    created: HashMap<String, String>,
    /// The audit trail's record of each intake: who sent patient data (the
    /// patient's phone, a kiosk), and what it touched.
    audits: Vec<crate::audit::Event>,
    /// Invitations used: (invitation, intake, `Patient/{id}` when known).
    invitations: Vec<(String, String, Option<String>)>,
}

struct IntakeRow {
    id: String,
    key: String,
    body_sha256: String,
    received_at: String,
    questionnaire: String,
    outcome: Decision,
    patient: Option<String>,
    status: &'static str,
    response: String,
    match_result: String,
    /// The Patient extracted, and who sent it, for a later decision.
    extracted: Option<String>,
    device: Option<String>,
}

struct OutboxRow {
    intake_id: String,
    payload: String,
    /// The locations written, when delivered with the accept.
    delivered: Option<Value>,
    at: String,
}

/// Most rows in one multi-row statement (12 parameters a row: well under
/// SQLite's limit of 32,766).
const ROWS_PER_STATEMENT: usize = 500;

impl Rows {
    async fn write(&self, ctx: &Context, tx: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        ctx.store.insert_created(tx, &self.stored).await?;
        crate::audit::record_all(tx, ctx.clock.now(), &self.audits).await?;
        for chunk in self.intakes.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO intake (id, idempotency_key, body_sha256, received_at, questionnaire,
                                     outcome, patient, status, response, match_result,
                                     extracted, device) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.id)
                    .push_bind(&r.key)
                    .push_bind(&r.body_sha256)
                    .push_bind(&r.received_at)
                    .push_bind(&r.questionnaire)
                    .push_bind(r.outcome.code())
                    .push_bind(&r.patient)
                    .push_bind(r.status)
                    .push_bind(&r.response)
                    .push_bind(&r.match_result)
                    .push_bind(&r.extracted)
                    .push_bind(&r.device);
            });
            q.build().persistent(false).execute(&mut *tx).await?;
        }
        for chunk in self.outbox.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO outbox (intake_id, payload, next_attempt_at, state, attempts,
                                     delivered_at, result) ",
            );
            q.push_values(chunk, |mut b, r| {
                let delivered = r.delivered.is_some();
                b.push_bind(&r.intake_id)
                    .push_bind(&r.payload)
                    .push_bind(0_i64)
                    .push_bind(if delivered { "delivered" } else { "pending" })
                    .push_bind(i64::from(delivered))
                    .push_bind(delivered.then_some(r.at.as_str()))
                    .push_bind(r.delivered.as_ref().map(Value::to_string));
            });
            q.build().persistent(false).execute(&mut *tx).await?;
        }
        let now = ctx.clock.now();
        for (invitation, intake, patient) in &self.invitations {
            crate::invitation::mark_used(tx, now, invitation, intake, patient.as_deref()).await?;
        }
        Ok(())
    }
}

/// The second pass for a new intake: what it writes (added to `rows`), and the
/// answer.
fn record(
    ctx: &Context,
    job: &mut Job,
    d: NewIntake,
    charts: &HashMap<String, Value>,
    rows: &mut Rows,
    held: &mut [(String, bool)],
) -> Result<Accepted, IntakeError> {
    let (s, p) = (&job.submission, &mut job.prepared);
    let NewIntake {
        decision,
        subject,
        mut found,
        held: held_at,
    } = d;
    let (id, now) = (&p.id.clone(), &p.now.clone());
    if let Subject::Existing(patient) = &subject
        && let (Some(top), Some(chart)) = (found.first_mut(), charts.get(patient))
        && top.resource.is_null()
    {
        top.resource = chart.clone();
    }
    let top = found.first();
    let mut patient_ref = match &subject {
        Subject::Existing(p) => Some(format!("Patient/{p}")),
        _ => None,
    };
    // The delivery: the bundle the outbox keeps (and sends, unless it is written
    // here), and the same as writes to the local store.
    let local = ctx.emr.local_store();
    let mut resolved = None;
    let (payload, requests) = match &subject {
        Subject::None => (None, None),
        Subject::New => {
            let requests = match p.checked.take() {
                Some(checked) => Some((checked, true)),
                None => local
                    .and_then(|_| inline_requests(&p.new_bundle))
                    .map(|r| (r, false)),
            };
            (Some(std::mem::take(&mut p.new_text)), requests)
        }
        Subject::Existing(_) | Subject::Pending(_) => {
            let mut bundle = delivery_bundle(
                id,
                &subject,
                &s.patient,
                &s.extras,
                &p.response,
                &by(s),
                now,
            );
            if let Subject::Pending(earlier) = &subject
                && let Some(patient) = rows.created.get(earlier)
            {
                // Created earlier in this batch (an earlier batch's is in the
                // index by now; one not written here is resolved at delivery):
                // every reference to it, the response's and the extras'.
                let pending = subject_reference(&subject, "");
                rewrite_references(&mut bundle, &pending, patient);
                resolved = Some(patient.clone());
            }
            let requests = match (&subject, &resolved) {
                (Subject::Pending(_), None) => None,
                _ => local
                    .and_then(|_| inline_requests(&bundle))
                    .map(|r| (r, p.checked.is_some())),
            };
            (Some(bundle.to_string()), requests)
        }
    };
    let mut status = if decision == Decision::Review {
        "review"
    } else {
        "accepted"
    };
    // Tasks for staff: the match to decide, or demographics that differ from the
    // chart (proposed, never written over it).
    // An invited patient's chart came with the submission; a matched one's with
    // the match.
    let chart = match &s.invited {
        Some(Invited {
            chart: Some(chart), ..
        }) => Some(chart),
        _ => top.map(|f| &f.resource),
    };
    let task = match (&subject, chart) {
        (Subject::None, _) => {
            let mut task = review_task(id, &found, now);
            let proposed =
                !s.may_link && top.is_some_and(|f| f.candidate.grade == matching::Grade::Certain);
            if proposed {
                task["reasonCode"] = json!({
                    "coding": [{"system": TASK_SYSTEM, "code": UNVERIFIED_REASON}],
                    "text": "Proposed link: the intake matches this chart but carried no proof of identity; confirm it is this patient",
                });
            }
            Some(task)
        }
        (Subject::Existing(p), Some(chart)) => {
            update_task(id, p, chart, &s.patient, &ctx.country, now)
        }
        _ => None,
    };
    let task = match task {
        Some(task) => ctx
            .store
            .prepare_creates(vec![Request::Create {
                resource: task,
                if_none_exist: None,
                full_url: None,
            }])
            .map_err(|e| IntakeError::Emr(format!("review task refused: {e}")))?,
        None => Vec::new(),
    };
    // The EMR is our own store: its resources are written right here.
    let mut delivered = None;
    let mut touched = Vec::new();
    if let (Some(store), Some((requests, checked))) = (local, requests)
        && let Some((written, locations, patient)) =
            write_inline(store, requests, checked, &subject, resolved)
    {
        if subject == Subject::New
            && let Some(p) = &patient
        {
            rows.created.insert(id.clone(), p.clone());
        }
        if let Some(at) = held_at
            && let Some(h) = held.get_mut(at)
        {
            h.1 = true;
        }
        {
            // What the audit event names: the chart and the response written here.
            touched.extend(
                written
                    .iter()
                    .filter(|st| st.resource_type == "QuestionnaireResponse")
                    .filter_map(|st| crate::audit::Reference::parse(&st.reference())),
            );
        }
        patient_ref = patient;
        status = "delivered";
        delivered = Some(locations);
        rows.stored.extend(written);
    }
    // An intake someone will look at or decide keeps what a decision needs.
    let keep = !task.is_empty() || status != "delivered";
    rows.stored.extend(task);
    if let Some(invited) = &s.invited {
        rows.invitations
            .push((invited.invitation.clone(), id.clone(), patient_ref.clone()));
    }
    let match_result = json!(found.iter().map(candidate_json).collect::<Vec<_>>());
    rows.intakes.push(IntakeRow {
        id: id.clone(),
        key: s.key.clone(),
        body_sha256: s.body_sha256.clone(),
        received_at: now.clone(),
        questionnaire: s.questionnaire.clone(),
        outcome: decision,
        patient: patient_ref.clone(),
        status,
        response: std::mem::take(&mut p.response_text),
        match_result: match_result.to_string(),
        extracted: keep.then(|| s.extras.keep(&s.patient)),
        device: keep.then(|| s.device.clone()),
    });
    if let Some(payload) = payload {
        rows.outbox.push(OutboxRow {
            intake_id: id.clone(),
            payload,
            delivered,
            at: now.clone(),
        });
    }
    rows.audits
        .push(intake_audit(s, id, patient_ref.as_deref(), touched));
    tracing::info!(
        intake.outcome = decision.code(),
        match.candidates = found.len(),
        "intake accepted"
    );
    Ok(Accepted {
        intake: id.clone(),
        outcome: decision,
        patient: patient_ref,
        status: status.to_owned(),
        repeated: false,
    })
}

/// The audit record of an accepted intake: who sent it (a kiosk, else the
/// patient's device by the name it gave) wrote patient data, under the intake's
/// id, to `patient` when it is known and the `written` resources (the response,
/// when written here).
fn intake_audit(
    s: &Submission,
    intake: &str,
    patient: Option<&str>,
    written: Vec<crate::audit::Reference>,
) -> crate::audit::Event {
    use crate::audit::{Action, Agent, Event, Interaction, Kind, Outcome, Reference};
    let agent = s.agent.clone().unwrap_or_else(|| Agent {
        system: "urn:intake:device",
        name: s.device.clone(),
        role: "patient",
    });
    Event::new(Kind::Rest(Interaction::Create), Action::C, Outcome::Success)
        .by(Some(agent))
        .about(SUBMISSION_SYSTEM, intake)
        .on_all(patient.and_then(Reference::parse))
        .on_all(written)
}

/// A delivery's resources, made to be written into the local store with the
/// accept (`checked`: as [`Store::check_creates`] accepted them). `None` when
/// they cannot be written here (left to the outbox, which reports why); else the
/// resources, the locations written and the intake's Patient (`resolved`: the
/// one an intake earlier in the batch created).
fn write_inline(
    store: &Store,
    requests: Vec<Request>,
    checked: bool,
    subject: &Subject,
    resolved: Option<String>,
) -> Option<(Vec<crate::store::Stored>, Value, Option<String>)> {
    let prepared = if checked {
        Ok(store.prepare_checked_creates(requests))
    } else {
        store.prepare_creates(requests)
    };
    let written = match prepared {
        Ok(written) => written,
        Err(e) => {
            tracing::warn!(error = %e, "intake not written inline; left to the outbox");
            return None;
        }
    };
    let locations: Vec<Value> = written
        .iter()
        .map(|st| Value::String(format!("{}/_history/{}", st.reference(), st.version_id)))
        .collect();
    let patient = match subject {
        Subject::New => written
            .iter()
            .find(|st| st.resource_type == "Patient")
            .map(crate::store::Stored::reference),
        Subject::Existing(p) => Some(format!("Patient/{p}")),
        _ => resolved,
    };
    Some((written, Value::Array(locations), patient))
}

/// A delivery bundle as writes to the local store, inside the transaction that
/// accepts the intake: its resources are new, nothing can exist under its
/// identifier yet, so no condition to search.
pub(crate) fn inline_requests(bundle: &Value) -> Option<Vec<Request>> {
    let mut requests = crate::store::bundle::transaction_requests(bundle).ok()?;
    for r in &mut requests {
        if let Request::Create { if_none_exist, .. } = r {
            *if_none_exist = None;
        }
    }
    Some(requests)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    /// No chart yet: the intake waits for a person.
    None,
    /// A new Patient, created by the delivery.
    New,
    /// This stored Patient.
    Existing(String),
    /// The Patient another intake (this id) is creating.
    Pending(String),
}

/// Who the Provenance names as the author: the device, and the invitation the
/// patient came by.
fn by(s: &Submission) -> Author<'_> {
    Author {
        device: &s.device,
        invitation: s.invited.as_ref().map(|i| i.invitation.as_str()),
    }
}

/// The Provenance's author.
pub(crate) struct Author<'a> {
    /// The device that sent the intake (the patient app, a kiosk's name).
    pub(crate) device: &'a str,
    /// The invitation the patient came by, if any.
    pub(crate) invitation: Option<&'a str>,
}

/// The transaction the outbox sends: the Patient (new only), the response, the
/// other resources the form extracted, and the Provenance, each conditional on
/// this intake's identifier so a repeat finds what the first attempt wrote.
///
/// The extras' references to the extracted Patient become the intake's subject
/// (as the response's `subject`); their references to one another keep their
/// `fullUrl`s, which the transaction resolves.
pub(crate) fn delivery_bundle(
    id: &str,
    subject: &Subject,
    patient: &Value,
    extras: &Extras,
    response: &Value,
    author: &Author<'_>,
    now: &str,
) -> Value {
    let condition = format!("identifier={SUBMISSION_SYSTEM}|{id}");
    let patient_url = format!("urn:uuid:{}", RandomIds.uuid());
    let response_url = format!("urn:uuid:{}", RandomIds.uuid());
    let mut entries = Vec::new();
    if *subject == Subject::New {
        let mut p = patient.clone();
        if let Some(o) = p.as_object_mut() {
            o.remove("id");
        }
        let mut identifiers = p
            .get("identifier")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        identifiers.push(json!({"system": SUBMISSION_SYSTEM, "value": id}));
        p["identifier"] = Value::Array(identifiers);
        entries.push(json!({
            "fullUrl": patient_url,
            "resource": p,
            "request": {"method": "POST", "url": "Patient", "ifNoneExist": condition},
        }));
    }
    let subject_ref = subject_reference(subject, &patient_url);
    let mut qr = response.clone();
    if let Some(o) = qr.as_object_mut() {
        o.remove("id");
    }
    qr["subject"] = json!({"reference": subject_ref});
    entries.push(json!({
        "fullUrl": response_url,
        "resource": qr,
        "request": {"method": "POST", "url": "QuestionnaireResponse", "ifNoneExist": condition},
    }));
    let mut targets = vec![json!({"reference": response_url})];
    if *subject == Subject::New {
        targets.push(json!({"reference": patient_url}));
    }
    for (n, e) in extras.entries.iter().enumerate() {
        let (entry, full_url) = extra_entry(id, n + 1, e, extras, &subject_ref);
        entries.push(entry);
        targets.push(json!({"reference": full_url}));
    }
    let mut who = json!({"display": author.device});
    if let Some(invitation) = author.invitation {
        who["identifier"] = json!({"system": crate::invitation::SYSTEM, "value": invitation});
    }
    // Which proof the intake carried, as the response is stamped.
    let proof = Proof::of(response).tag();
    entries.push(json!({
        "resource": {
            "resourceType": "Provenance",
            "meta": {"tag": [{"system": SUBMISSION_SYSTEM, "code": id}, proof]},
            "target": targets,
            "recorded": now,
            "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}]},
            "agent": [{
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author"}]},
                "who": who,
            }],
        },
        "request": {"method": "POST", "url": "Provenance", "ifNoneExist": format!("_tag={SUBMISSION_SYSTEM}|{id}")},
    }));
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// How a delivery refers to the intake's patient: the new Patient's `fullUrl`,
/// the chart, or the Patient another intake is creating (by its identifier).
fn subject_reference(subject: &Subject, new_url: &str) -> String {
    match subject {
        Subject::New => new_url.to_owned(),
        Subject::Existing(p) => format!("Patient/{p}"),
        Subject::Pending(earlier) => format!("Patient?identifier={SUBMISSION_SYSTEM}|{earlier}"),
        Subject::None => String::new(),
    }
}

/// The `n`th extra resource as a conditional create, and its `fullUrl`: its id
/// dropped, its references to the extracted Patient made `subject_ref`, marked as
/// this intake's (an identifier `{intake}/{n}`, or a `meta.tag` for a type with
/// no identifier element).
fn extra_entry(
    id: &str,
    n: usize,
    entry: &Value,
    extras: &Extras,
    subject_ref: &str,
) -> (Value, String) {
    let mut resource = entry["resource"].clone();
    let resource_type = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(o) = resource.as_object_mut() {
        o.remove("id");
    }
    if let Some(url) = &extras.patient_url {
        rewrite_references(&mut resource, url, subject_ref);
    }
    let value = format!("{id}/{n}");
    let condition = if WITHOUT_IDENTIFIER.contains(&resource_type.as_str()) {
        let mut tags = resource
            .pointer("/meta/tag")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        tags.push(json!({"system": EXTRACTED_SYSTEM, "code": value}));
        resource["meta"]["tag"] = Value::Array(tags);
        format!("_tag={EXTRACTED_SYSTEM}|{value}")
    } else {
        let mut identifiers = resource
            .get("identifier")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        identifiers.push(json!({"system": EXTRACTED_SYSTEM, "value": value}));
        resource["identifier"] = Value::Array(identifiers);
        format!("identifier={EXTRACTED_SYSTEM}|{value}")
    };
    // An extraction's fullUrl is kept (the others refer to it); one without
    // gets its own.
    let full_url = entry["fullUrl"]
        .as_str()
        .map_or_else(|| format!("urn:uuid:{}", RandomIds.uuid()), str::to_owned);
    let entry = json!({
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource_type, "ifNoneExist": condition},
    });
    (entry, full_url)
}

/// Every `reference` equal to `from`, anywhere in `value`, made `to`.
pub(crate) fn rewrite_references(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                if k == "reference" && v.as_str() == Some(from) {
                    *v = Value::String(to.to_owned());
                } else {
                    rewrite_references(v, from, to);
                }
            }
        }
        Value::Array(a) => {
            for v in a {
                rewrite_references(v, from, to);
            }
        }
        _ => {}
    }
}

/// The new Patient in a delivery bundle, if it creates one.
pub(crate) fn patient_in(bundle: &Value) -> Option<Value> {
    bundle["entry"]
        .as_array()?
        .iter()
        .find(|e| e.pointer("/resource/resourceType") == Some(&json!("Patient")))
        .and_then(|e| e.get("resource").cloned())
}

fn candidate_json(f: &Found) -> Value {
    let c = &f.candidate;
    json!({
        "patient": c.id,
        "score": c.score,
        "grade": c.grade.code(),
        "fields": c.explanation.fields.iter().map(|x| json!({
            "field": x.field.code(),
            "level": x.level.code(),
            "weight": x.weight,
        })).collect::<Vec<_>>(),
        "held": c.explanation.held.iter().map(|h| h.code()).collect::<Vec<_>>(),
        "model": c.explanation.model,
    })
}

pub(crate) const TASK_SYSTEM: &str = "urn:intake:task";
pub(crate) const SCORE_EXTENSION: &str = "urn:intake:fhir:StructureDefinition:match-score";

/// A Task asking staff which patient this intake belongs to.
fn review_task(id: &str, found: &[Found], now: &str) -> Value {
    let inputs: Vec<Value> = found
        .iter()
        .map(|f| {
            let reference = match f.candidate.id.strip_prefix("intake-") {
                Some(earlier) => json!({"identifier": {"system": SUBMISSION_SYSTEM, "value": earlier}}),
                None => json!({"reference": format!("Patient/{}", f.candidate.id)}),
            };
            json!({
                "extension": [{"url": SCORE_EXTENSION, "valueDecimal": (f.candidate.score * 1e4).round() / 1e4}],
                "type": {"coding": [{"system": TASK_SYSTEM, "code": "candidate"}], "text": f.candidate.grade.code()},
                "valueReference": reference,
            })
        })
        .collect();
    let mut task = json!({
        "resourceType": "Task",
        "identifier": [{"system": SUBMISSION_SYSTEM, "value": id}],
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [{"system": TASK_SYSTEM, "code": "match-review"}], "text": "Decide which patient this intake belongs to"},
        "authoredOn": now,
    });
    // FHIR has no empty arrays: no candidates (the EMR could not be searched), no input.
    if !inputs.is_empty() {
        task["input"] = Value::Array(inputs);
    }
    task
}

/// The review Task of an intake whose delivery the EMR refused with 412 (its
/// identifier no longer names one Patient, or a version moved on): a person
/// decides where it belongs.
pub(crate) fn refused_delivery_task(id: &str, now: &str) -> Value {
    let mut task = review_task(id, &[], now);
    task["reasonCode"] = json!({
        "coding": [{"system": TASK_SYSTEM, "code": "delivery-precondition-failed"}],
        "text": "The EMR refused the delivery: its condition no longer held (412)",
    });
    task
}

/// The review Task of an intake whose delivery was dead-lettered (the EMR kept
/// failing, or refused it for good): staff retry it once the EMR is right.
pub(crate) fn dead_delivery_task(id: &str, now: &str) -> Value {
    json!({
        "resourceType": "Task",
        "identifier": [{"system": SUBMISSION_SYSTEM, "value": id}],
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [{"system": TASK_SYSTEM, "code": "delivery-failed"}], "text": "The intake could not be delivered to the EMR"},
        "authoredOn": now,
    })
}

/// A Task proposing the intake's demographics where they really differ from the
/// chart (field by field, normalised as the matcher normalises: see [`changes`]),
/// or `None` when they agree.
fn update_task(
    id: &str,
    patient: &str,
    chart: &Value,
    intake: &Value,
    country: &str,
    now: &str,
) -> Option<Value> {
    let differing = changes::changed(chart, intake, country);
    if differing.is_empty() {
        return None;
    }
    let proposed = changes::proposal(intake, &differing);
    Some(json!({
        "resourceType": "Task",
        "identifier": [{"system": SUBMISSION_SYSTEM, "value": id}],
        "contained": [proposed],
        "status": "requested",
        "intent": "proposal",
        "code": {"coding": [{"system": TASK_SYSTEM, "code": "demographics-update"}], "text": "The patient gave details that differ from the chart"},
        "focus": {"reference": format!("Patient/{patient}")},
        "authoredOn": now,
        "input": differing.iter().map(|k| json!({
            "type": {"coding": [{"system": TASK_SYSTEM, "code": "changed-element"}], "text": k.code()},
            "valueReference": {"reference": "#proposed"},
        })).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENT_URL: &str = "urn:uuid:00000000-0000-4000-8000-000000000001";
    const CONTACT_URL: &str = "urn:uuid:00000000-0000-4000-8000-000000000002";

    /// An extraction: the Patient, a contact pointing at it, an Observation
    /// about the Patient performed by the contact, and a resource type without
    /// an identifier element.
    fn extraction() -> Value {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": PATIENT_URL, "resource": {"resourceType": "Patient", "birthDate": "1990"}},
            {"fullUrl": CONTACT_URL, "resource": {"resourceType": "RelatedPerson", "id": "x",
                "patient": {"reference": PATIENT_URL}}},
            {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000003", "resource": {
                "resourceType": "Observation", "status": "final", "code": {"text": "Weight"},
                "subject": {"reference": PATIENT_URL}, "performer": [{"reference": CONTACT_URL}]}},
            {"resource": {"resourceType": "Linkage", "item": [{"type": "source",
                "resource": {"reference": PATIENT_URL}}]}}
        ]})
    }

    fn bundle_for(subject: &Subject) -> Value {
        let extraction = extraction();
        let extras = Extras::of(&extraction);
        let patient = patient_in(&extraction).unwrap();
        let response = json!({"resourceType": "QuestionnaireResponse", "status": "completed"});
        let author = Author {
            device: "test",
            invitation: None,
        };
        delivery_bundle("i-1", subject, &patient, &extras, &response, &author, "now")
    }

    fn entry<'a>(bundle: &'a Value, resource_type: &str) -> &'a Value {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["resourceType"] == resource_type)
            .unwrap()
    }

    #[test]
    fn extras_refer_to_the_intakes_subject_and_to_one_another_by_full_url() {
        for (subject, expected) in [
            (Subject::Existing("p1".into()), "Patient/p1".to_owned()),
            (
                Subject::Pending("i-0".into()),
                format!("Patient?identifier={SUBMISSION_SYSTEM}|i-0"),
            ),
        ] {
            let b = bundle_for(&subject);
            let contact = entry(&b, "RelatedPerson");
            assert_eq!(contact["resource"]["patient"]["reference"], expected);
            assert_eq!(contact["fullUrl"], CONTACT_URL);
            assert!(contact["resource"].get("id").is_none());
            let observation = &entry(&b, "Observation")["resource"];
            assert_eq!(observation["subject"]["reference"], expected);
            assert_eq!(observation["performer"][0]["reference"], CONTACT_URL);
            assert_eq!(
                entry(&b, "QuestionnaireResponse")["resource"]["subject"]["reference"],
                expected
            );
        }
        // A new patient: its own fullUrl in this bundle.
        let b = bundle_for(&Subject::New);
        let patient_url = entry(&b, "Patient")["fullUrl"].clone();
        assert_eq!(
            entry(&b, "RelatedPerson")["resource"]["patient"]["reference"],
            patient_url
        );
    }

    #[test]
    fn each_extra_is_conditional_on_its_own_mark_and_named_by_the_provenance() {
        let b = bundle_for(&Subject::Existing("p1".into()));
        let contact = entry(&b, "RelatedPerson");
        assert_eq!(
            contact["resource"]["identifier"],
            json!([{"system": EXTRACTED_SYSTEM, "value": "i-1/1"}])
        );
        assert_eq!(
            contact["request"],
            json!({"method": "POST", "url": "RelatedPerson",
                "ifNoneExist": format!("identifier={EXTRACTED_SYSTEM}|i-1/1")})
        );
        assert_eq!(
            entry(&b, "Observation")["request"]["ifNoneExist"],
            format!("identifier={EXTRACTED_SYSTEM}|i-1/2")
        );
        // No identifier element: a tag, and a condition on it.
        let linkage = entry(&b, "Linkage");
        assert!(linkage["resource"].get("identifier").is_none());
        assert_eq!(
            linkage["resource"]["meta"]["tag"],
            json!([{"system": EXTRACTED_SYSTEM, "code": "i-1/3"}])
        );
        assert_eq!(
            linkage["request"]["ifNoneExist"],
            format!("_tag={EXTRACTED_SYSTEM}|i-1/3")
        );
        let full_url = linkage["fullUrl"].as_str().unwrap();
        assert!(full_url.starts_with("urn:uuid:"));
        let targets = &entry(&b, "Provenance")["resource"]["target"];
        for r in [
            CONTACT_URL,
            "urn:uuid:00000000-0000-4000-8000-000000000003",
            full_url,
        ] {
            assert!(
                targets
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["reference"] == r),
                "{targets}"
            );
        }
    }

    #[test]
    fn what_a_waiting_intake_keeps_reads_back_and_an_older_patient_alone_too() {
        let extraction = extraction();
        let extras = Extras::of(&extraction);
        let patient = patient_in(&extraction).unwrap();
        assert_eq!(extras.entries.len(), 3);
        assert_eq!(extras.patient_url.as_deref(), Some(PATIENT_URL));
        let kept = extras.keep(&patient);
        assert_eq!(Extras::kept(&kept), Some((patient.clone(), extras)));
        // Nothing else extracted: the Patient alone, as before.
        let alone = Extras::default().keep(&patient);
        assert_eq!(alone, patient.to_string());
        assert_eq!(Extras::kept(&alone), Some((patient, Extras::default())));
        assert_eq!(Extras::kept("not json"), None);
    }

    #[test]
    fn the_embedded_store_keeps_only_the_types_it_stores() {
        let mut extras = Extras::of(&extraction());
        assert_eq!(
            extras.retain_types(crate::fhir::resource::EXTRACTED_TYPES),
            1
        );
        assert_eq!(extras.entries.len(), 2);
    }
}
