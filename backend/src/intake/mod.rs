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

pub mod outbox;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::{Clock, fhir_instant};
use crate::config::Delivery;
use crate::emr::{Emr, Found};
use crate::fhir::extract::{IdGenerator, RandomIds};
use crate::store::{Request, Store};

/// The identifier system of everything an intake writes: the Patient it
/// creates, its QuestionnaireResponse (`identifier`) and Provenance (`meta.tag`).
/// A retried or replayed delivery finds them by it instead of writing twice.
pub const SUBMISSION_SYSTEM: &str = "urn:intake:submission";

/// Where a pending (accepted, not yet delivered) new patient sits in the index.
fn pending_key(intake: &str) -> String {
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
    /// Who sent it, for Provenance (`Intake patient app`, a kiosk's name, …).
    pub device: String,
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
}

struct Job {
    submission: Submission,
    reply: oneshot::Sender<Result<Accepted, IntakeError>>,
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
    ) -> Result<Self, sqlx::Error> {
        let ctx = Context {
            db: db.clone(),
            store,
            emr,
            clock,
            delivery,
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
        })
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
    pub async fn submit(&self, submission: Submission) -> Result<Accepted, IntakeError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { submission, reply })
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
        let results = accept_batch(&ctx, &batch).await;
        for (job, result) in batch.into_iter().zip(results) {
            let _ = job.reply.send(result);
        }
        wake.notify_one();
    }
}

/// Decides and stores a batch in one transaction. On a database failure every
/// job of the batch fails (nothing of it is stored) and pending holds are undone.
async fn accept_batch(ctx: &Context, batch: &[Job]) -> Vec<Result<Accepted, IntakeError>> {
    let mut held = Vec::new();
    let result = async {
        let guard = ctx.store.lock().await;
        let mut tx = crate::db::begin_write(&ctx.db).await?;
        let mut results = Vec::with_capacity(batch.len());
        let mut outcomes = Vec::new();
        let mut created = HashMap::new();
        for job in batch {
            let r = accept_one(
                ctx,
                &mut tx,
                &job.submission,
                &mut Batch {
                    held: &mut held,
                    outcomes: &mut outcomes,
                    created: &mut created,
                },
            )
            .await;
            if let Err(IntakeError::Database(e)) = r {
                return Err(e);
            }
            results.push(r);
        }
        tx.commit().await?;
        ctx.store.committed(&outcomes);
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
        Ok(results) => results,
        Err(e) => {
            for (key, _) in &held {
                ctx.emr.release_pending(key);
            }
            tracing::error!(error = %e, "intakes not accepted: database failed");
            batch
                .iter()
                .map(|_| Err(IntakeError::Database(sqlx::Error::PoolClosed)))
                .collect()
        }
    }
}

/// What the jobs of one batch share.
struct Batch<'a> {
    /// Pending new patients held in the index, and whether already written.
    held: &'a mut Vec<(String, bool)>,
    /// Store writes, for the index once committed.
    outcomes: &'a mut Vec<crate::store::Outcome>,
    /// `Patient/{id}` of each intake of this batch that created one.
    created: &'a mut HashMap<String, String>,
}

async fn accept_one(
    ctx: &Context,
    tx: &mut SqliteConnection,
    s: &Submission,
    batch: &mut Batch<'_>,
) -> Result<Accepted, IntakeError> {
    // A retry of an accepted intake (perhaps earlier in this very batch).
    let existing: Option<(String, String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT id, body_sha256, outcome, patient, status FROM intake WHERE idempotency_key = ?",
    )
    .bind(&s.key)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((intake, sha, outcome, patient, status)) = existing {
        if sha != s.body_sha256 {
            return Err(IntakeError::KeyReused);
        }
        return Ok(Accepted {
            intake,
            outcome: Decision::parse(&outcome),
            patient,
            status,
            repeated: true,
        });
    }
    let record = crate::fhir::patient::to_record(&s.patient);
    let found = ctx
        .emr
        .find_matches(
            &record,
            &matching::MatchOptions {
                count: 5,
                ..matching::MatchOptions::default()
            },
        )
        .await;
    // An EMR that cannot be searched must not lose the intake, nor make a
    // returning patient look new: it is accepted for staff to decide.
    let unsearched = found.is_err();
    let found = found.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "EMR not searchable: intake sent to review");
        Vec::new()
    });
    let id = RandomIds.uuid();
    let now = fhir_instant(ctx.clock.now());
    let top = found.first();
    let decision = match top.map(|f| f.candidate.grade) {
        _ if unsearched => Decision::Review,
        Some(matching::Grade::Certain) => Decision::Linked,
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
    let mut response = s.response.clone();
    response["identifier"] = json!({"system": SUBMISSION_SYSTEM, "value": id});
    let mut patient_ref = match &subject {
        Subject::Existing(p) => Some(format!("Patient/{p}")),
        _ => None,
    };
    let mut payload = match &subject {
        Subject::None => None,
        _ => Some(delivery_bundle(
            &id, &subject, &s.patient, &response, &s.device, &now,
        )),
    };
    let mut status = if decision == Decision::Review {
        "review"
    } else {
        "accepted"
    };
    // The EMR is our own store: its resources are written right here.
    let mut delivered = None;
    if let (Some(store), Some(bundle)) = (ctx.emr.local_store(), payload.as_mut())
        && let Some((result, patient)) = write_inline(store, tx, bundle, &subject, batch).await?
    {
        if subject == Subject::New
            && let Some(p) = &patient
        {
            batch.created.insert(id.clone(), p.clone());
        }
        patient_ref = patient;
        status = "delivered";
        delivered = Some(result);
    }
    let match_result = json!(found.iter().map(candidate_json).collect::<Vec<_>>());
    sqlx::query(
        "INSERT INTO intake (id, idempotency_key, body_sha256, received_at, questionnaire, outcome,
                             patient, status, response, match_result)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(&s.key)
    .bind(&s.body_sha256)
    .bind(&now)
    .bind(&s.questionnaire)
    .bind(decision.code())
    .bind(&patient_ref)
    .bind(status)
    .bind(response.to_string())
    .bind(match_result.to_string())
    .execute(&mut *tx)
    .await?;
    if let Some(bundle) = &payload {
        sqlx::query(
            "INSERT INTO outbox (intake_id, payload, next_attempt_at, state, attempts, delivered_at, result)
             VALUES (?, ?, 0, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(bundle.to_string())
        .bind(if delivered.is_some() { "delivered" } else { "pending" })
        .bind(i64::from(delivered.is_some()))
        .bind(delivered.as_ref().map(|_| now.clone()))
        .bind(delivered.as_ref().map(Value::to_string))
        .execute(&mut *tx)
        .await?;
    }
    // Tasks for staff: the match to decide, or demographics that differ from the
    // chart (proposed, never written over it).
    let task = match (&subject, top) {
        (Subject::None, _) => Some(review_task(&id, &found, &now)),
        (Subject::Existing(p), Some(f)) => update_task(&id, p, &f.resource, &s.patient, &now),
        _ => None,
    };
    if let Some(task) = task {
        let written = ctx
            .store
            .apply_in(
                tx,
                vec![Request::Create {
                    resource: task,
                    if_none_exist: None,
                    full_url: None,
                }],
            )
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Database(e) => IntakeError::Database(e),
                other => IntakeError::Emr(format!("review task refused: {other}")),
            })?;
        batch.outcomes.extend(written);
    }
    if subject == Subject::New {
        let key = pending_key(&id);
        ctx.emr.hold_pending(&key, &record);
        batch.held.push((key, delivered.is_some()));
    }
    tracing::info!(
        intake.outcome = decision.code(),
        match.candidates = found.len(),
        "intake accepted"
    );
    Ok(Accepted {
        intake: id,
        outcome: decision,
        patient: patient_ref,
        status: status.to_owned(),
        repeated: false,
    })
}

/// Writes a delivery bundle into the local store inside the accepting
/// transaction (under a savepoint: all of it or none). `None` when it cannot be
/// written here and now (left to the outbox, which reports why); else the
/// locations written and the intake's Patient.
async fn write_inline(
    store: &Store,
    tx: &mut SqliteConnection,
    bundle: &mut Value,
    subject: &Subject,
    batch: &mut Batch<'_>,
) -> Result<Option<(Value, Option<String>)>, IntakeError> {
    let mut resolved = None;
    if let Subject::Pending(earlier) = subject {
        // Created earlier in this batch (an earlier batch's is in the index).
        let Some(p) = batch.created.get(earlier).cloned() else {
            return Ok(None);
        };
        if let Some(entries) = bundle["entry"].as_array_mut() {
            for e in entries {
                if e.pointer("/resource/subject/reference").is_some() {
                    e["resource"]["subject"]["reference"] = Value::String(p.clone());
                }
            }
        }
        resolved = Some(p);
    }
    let Ok(mut requests) = crate::store::bundle::transaction_requests(bundle) else {
        return Ok(None);
    };
    // New resources of a new intake, in the transaction that accepts it: nothing
    // can exist under its identifier yet, so no condition to search.
    for r in &mut requests {
        if let Request::Create { if_none_exist, .. } = r {
            *if_none_exist = None;
        }
    }
    sqlx::query("SAVEPOINT inline_delivery")
        .execute(&mut *tx)
        .await?;
    match store.apply_in(tx, requests).await {
        Ok(outcomes) => {
            sqlx::query("RELEASE inline_delivery")
                .execute(&mut *tx)
                .await?;
            let locations: Vec<Value> = outcomes
                .iter()
                .map(|o| {
                    let st = o.stored();
                    Value::String(format!("{}/_history/{}", st.reference(), st.version_id))
                })
                .collect();
            let patient = match subject {
                Subject::New => outcomes
                    .iter()
                    .map(crate::store::Outcome::stored)
                    .find(|st| st.resource_type == "Patient")
                    .map(crate::store::Stored::reference),
                Subject::Existing(p) => Some(format!("Patient/{p}")),
                _ => resolved,
            };
            batch.outcomes.extend(outcomes);
            Ok(Some((Value::Array(locations), patient)))
        }
        Err(crate::store::StoreError::Database(e)) => Err(IntakeError::Database(e)),
        Err(e) => {
            tracing::warn!(error = %e, "intake not written inline; left to the outbox");
            sqlx::query("ROLLBACK TO inline_delivery")
                .execute(&mut *tx)
                .await?;
            sqlx::query("RELEASE inline_delivery")
                .execute(&mut *tx)
                .await?;
            Ok(None)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    /// No chart yet: the intake waits for a person.
    None,
    /// A new Patient, created by the delivery.
    New,
    /// This stored Patient.
    Existing(String),
    /// The Patient another intake (this id) is creating.
    Pending(String),
}

/// The transaction the outbox sends: the Patient (new only), the response, and
/// the Provenance, each conditional on this intake's identifier so a repeat
/// finds what the first attempt wrote.
fn delivery_bundle(
    id: &str,
    subject: &Subject,
    patient: &Value,
    response: &Value,
    device: &str,
    now: &str,
) -> Value {
    let condition = format!("identifier={SUBMISSION_SYSTEM}|{id}");
    let patient_url = format!("urn:uuid:{}", RandomIds.uuid());
    let response_url = format!("urn:uuid:{}", RandomIds.uuid());
    let mut entries = Vec::new();
    let subject_ref = match subject {
        Subject::New => {
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
            patient_url.clone()
        }
        Subject::Existing(p) => format!("Patient/{p}"),
        Subject::Pending(earlier) => format!("Patient?identifier={SUBMISSION_SYSTEM}|{earlier}"),
        Subject::None => String::new(),
    };
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
    entries.push(json!({
        "resource": {
            "resourceType": "Provenance",
            "meta": {"tag": [{"system": SUBMISSION_SYSTEM, "code": id}]},
            "target": targets,
            "recorded": now,
            "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}]},
            "agent": [{
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author"}]},
                "who": {"display": device},
            }],
        },
        "request": {"method": "POST", "url": "Provenance", "ifNoneExist": format!("_tag={SUBMISSION_SYSTEM}|{id}")},
    }));
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
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
    })
}

const TASK_SYSTEM: &str = "urn:intake:task";
const SCORE_EXTENSION: &str = "urn:intake:fhir:StructureDefinition:match-score";

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

/// The Patient elements an intake may propose to change.
const DEMOGRAPHICS: &[&str] = &["name", "birthDate", "gender", "telecom", "address"];

/// A Task proposing the intake's demographics where they differ from the chart,
/// or `None` when they agree.
fn update_task(id: &str, patient: &str, chart: &Value, intake: &Value, now: &str) -> Option<Value> {
    let differing: Vec<&str> = DEMOGRAPHICS
        .iter()
        .copied()
        .filter(|k| intake.get(*k).is_some_and(|v| chart.get(*k) != Some(v)))
        .collect();
    if differing.is_empty() {
        return None;
    }
    let mut proposed = json!({"resourceType": "Patient", "id": "proposed"});
    for k in &differing {
        proposed[*k] = intake[*k].clone();
    }
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
            "type": {"coding": [{"system": TASK_SYSTEM, "code": "changed-element"}], "text": k},
            "valueReference": {"reference": "#proposed"},
        })).collect::<Vec<_>>(),
    }))
}
