//! [`Intakes`]: the requests' side (prepare what needs no decision, queue it, wait)
//! and the one writer task that decides each submission in turn and commits
//! what is queued together (group commit).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};

use super::bundle::Subject;
use super::job::{Context, Job, NewIntake, Prepared};
use super::outbox;
use super::record::{Rows, record};
use super::types::patient_in;
use super::types::{Accepted, Decision, IntakeError, Submission, pending_key};
use crate::clock::Clock;
use crate::config::Delivery;
use crate::emr::{Emr, Found};
use crate::store::Store;

/// The pipeline: submit, look up, wait for delivery.
#[derive(Debug, Clone)]
pub struct Intakes {
    pub(crate) db: SqlitePool,
    pub(crate) jobs: mpsc::Sender<Job>,
    /// Requests waiting for their intake's delivery.
    pub(crate) waiters: Waiters,
    /// Wakes the outbox after an accept.
    pub(crate) wake: Arc<tokio::sync::Notify>,
    /// Tells the outbox to stop, and its task.
    pub(crate) stop: Arc<watch::Sender<bool>>,
    pub(crate) outbox: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// The EMR when it is our own store.
    pub(crate) local: Option<Store>,
    pub(crate) clock: Arc<dyn Clock>,
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

pub(crate) fn lock(
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
pub(crate) async fn writer(
    ctx: Context,
    mut rx: mpsc::Receiver<Job>,
    wake: Arc<tokio::sync::Notify>,
) {
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
pub(crate) async fn accept_batch(
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
pub(crate) async fn accepted_under(
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
pub(crate) enum Decided {
    /// Accepted before: this answer again.
    Repeat(Accepted),
    /// The same as the job at this position in the batch.
    RepeatOf(usize),
    /// A new intake.
    New(NewIntake),
}

/// Whether the invitation `id` can still take an intake: not used, cancelled or
/// locked, and not taken by an intake earlier in this batch (`taken`, to which
/// it is added). Read in the accept's own transaction, by the one writer, so
/// two submissions under one invitation cannot both be accepted.
pub(crate) async fn invitation_open(
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
pub(crate) async fn decide(
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
pub(crate) async fn charts(
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
