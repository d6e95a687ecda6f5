//! The outbox: delivers accepted intakes to the EMR, in the order accepted, until
//! the EMR confirms each (its answer, with the ids it gave, is recorded).
//!
//! A failed attempt is retried after a delay that doubles up to a maximum, with
//! jitter, and never sooner than the EMR's `Retry-After`; after the configured
//! number of attempts the delivery is dead-lettered for staff. Every entry it
//! sends is conditional on the intake's identifier, so an attempt repeated after a
//! crash (the EMR wrote, we did not hear) finds what the first one wrote: each
//! intake lands exactly once.

use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::{Notify, watch};

use super::{Context, SUBMISSION_SYSTEM, Waiters, pending_key, settle};
use crate::audit::{Action, Agent, Event, Interaction, Kind, Outcome, Reference};
use crate::clock::fhir_instant;
use crate::emr::EmrError;

/// Delivers forever: whatever is due, then sleeps until the next is due or an
/// accept wakes it.
pub(crate) async fn run(
    ctx: Context,
    wake: Arc<Notify>,
    waiters: Waiters,
    mut stop: watch::Receiver<bool>,
) {
    if let Err(e) = queue_untasked_dead_letters(&ctx).await {
        tracing::error!(error = %e, "outbox: dead-letters without a Task were not queued");
    }
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let wait = match round(&ctx, &waiters).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::error!(error = %e, "outbox: database failed; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Gives every dead-lettered intake without a Task its `delivery-failed` Task,
/// so that staff see it (intakes dead-lettered before dead-letters made Tasks).
/// Returns how many it queued.
pub(crate) async fn queue_untasked_dead_letters(ctx: &Context) -> Result<usize, sqlx::Error> {
    let untasked: Vec<String> = sqlx::query_scalar(
        "SELECT i.id FROM intake i WHERE i.status = 'dead' AND NOT EXISTS (
             SELECT 1 FROM resource r, json_each(r.body, '$.identifier') t
             WHERE r.resource_type = 'Task'
               AND json_extract(t.value, '$.system') = ?
               AND json_extract(t.value, '$.value') = i.id)
         ORDER BY i.id",
    )
    .bind(super::SUBMISSION_SYSTEM)
    .fetch_all(&ctx.db)
    .await?;
    if untasked.is_empty() {
        return Ok(0);
    }
    let now = fhir_instant(ctx.clock.now());
    let creates = untasked
        .iter()
        .map(|intake| crate::store::Request::Create {
            resource: super::dead_delivery_task(intake, &now),
            if_none_exist: None,
            full_url: None,
        })
        .collect();
    let guard = ctx.store.lock().await;
    let mut tx = crate::db::begin_write(&ctx.db).await?;
    let written = create_tasks(ctx, &mut tx, creates).await?;
    tx.commit().await?;
    ctx.store.committed(&written);
    drop(guard);
    tracing::warn!(
        intakes = untasked.len(),
        "dead-lettered intakes without a Task queued for staff"
    );
    Ok(untasked.len())
}

/// Writes review Tasks in `tx`. Our own Task refused by our own store is a bug:
/// an error (retried, and logged) rather than an intake no one is shown.
async fn create_tasks(
    ctx: &Context,
    tx: &mut sqlx::SqliteConnection,
    creates: Vec<crate::store::Request>,
) -> Result<Vec<crate::store::Outcome>, sqlx::Error> {
    ctx.store.apply_in(tx, creates).await.map_err(|e| match e {
        crate::store::StoreError::Database(e) => e,
        other => sqlx::Error::Protocol(format!("review task refused: {other}")),
    })
}

fn unix_ms(ctx: &Context) -> i64 {
    ctx.clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One outbox message.
struct Message {
    id: i64,
    intake: String,
    attempts: i64,
    bundle: Value,
    /// The Patient a conditional subject reference resolved to, if any.
    resolved_subject: Option<String>,
}

/// Why a message cannot be sent yet.
enum NotReady {
    /// Its subject is the Patient of an earlier intake not delivered yet.
    Waiting,
    /// The EMR failed while resolving it.
    Failed(EmrError),
}

/// Delivers what is due; how long until the next is.
async fn round(ctx: &Context, waiters: &Waiters) -> Result<Duration, sqlx::Error> {
    let max = ctx.emr.delivery_batch().max(1);
    loop {
        let now = unix_ms(ctx);
        let due: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, intake_id, payload, attempts FROM outbox
             WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT 64",
        )
        .bind(now)
        .fetch_all(&ctx.db)
        .await?;
        let mut stalled = due.is_empty();
        let mut batch: Vec<Message> = Vec::new();
        for (id, intake, payload, attempts) in due {
            let Ok(bundle) = serde_json::from_str::<Value>(&payload) else {
                give_up(
                    ctx,
                    waiters,
                    id,
                    &intake,
                    &EmrError::Rejected {
                        status: 0,
                        issues: Vec::new(),
                    },
                )
                .await?;
                continue;
            };
            let mut message = Message {
                id,
                intake,
                attempts,
                bundle,
                resolved_subject: None,
            };
            match resolve_subject(ctx, &mut message).await {
                Ok(()) => {
                    batch.push(message);
                    if batch.len() >= max {
                        break;
                    }
                }
                // Delivered in this round first; then it is found.
                Err(NotReady::Waiting) if !batch.is_empty() => break,
                Err(NotReady::Waiting) => {
                    let e = EmrError::Unavailable {
                        reason: "the patient of an earlier intake is not in the EMR yet".into(),
                        retry_after_ms: None,
                    };
                    retry_later(ctx, waiters, &message, &e).await?;
                    stalled = true;
                    break;
                }
                Err(NotReady::Failed(e)) if e.is_transient() => {
                    retry_later(ctx, waiters, &message, &e).await?;
                    stalled = true;
                    break;
                }
                Err(NotReady::Failed(e)) => {
                    give_up(ctx, waiters, message.id, &message.intake, &e).await?;
                }
            }
        }
        if !batch.is_empty() && !send(ctx, waiters, batch).await? {
            stalled = true;
        }
        if stalled {
            let next: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'",
            )
            .fetch_one(&ctx.db)
            .await?;
            let now = unix_ms(ctx);
            return Ok(next.map_or(Duration::from_secs(60), |t| {
                Duration::from_millis(u64::try_from((t - now).clamp(0, 60_000)).unwrap_or(0))
            }));
        }
    }
}

/// A subject that is the Patient of an earlier intake is, by now, in the EMR
/// (the outbox keeps order): found by that intake's identifier.
async fn resolve_subject(ctx: &Context, message: &mut Message) -> Result<(), NotReady> {
    let Some(entries) = message.bundle["entry"].as_array_mut() else {
        return Ok(());
    };
    for entry in entries {
        let Some(reference) = entry
            .pointer("/resource/subject/reference")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            continue;
        };
        let Some(query) = reference.strip_prefix("Patient?") else {
            continue;
        };
        let found = ctx
            .emr
            .search_patients(query)
            .await
            .map_err(NotReady::Failed)?;
        let id = match found.as_slice() {
            [one] => one.get("id").and_then(Value::as_str).map(str::to_owned),
            [] => return Err(NotReady::Waiting),
            _ => None,
        };
        let Some(id) = id else {
            return Err(NotReady::Failed(EmrError::PreconditionFailed));
        };
        let to = format!("Patient/{id}");
        entry["resource"]["subject"]["reference"] = Value::String(to.clone());
        message.resolved_subject = Some(to);
    }
    Ok(())
}

/// Sends a batch as one transaction (its entries side by side; each intake's are
/// conditional on its own identifier). A batch the EMR refuses is sent again one
/// message at a time, so one bad intake never holds up the others. Whether the
/// EMR answered (false: it is unavailable; the rest waits).
async fn send(ctx: &Context, waiters: &Waiters, batch: Vec<Message>) -> Result<bool, sqlx::Error> {
    let sizes: Vec<usize> = batch
        .iter()
        .map(|m| m.bundle["entry"].as_array().map_or(0, Vec::len))
        .collect();
    let entries: Vec<Value> = batch
        .iter()
        .flat_map(|m| m.bundle["entry"].as_array().cloned().unwrap_or_default())
        .collect();
    let merged =
        serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    match ctx.emr.transaction(merged).await {
        Ok(answer) => {
            let answers = answer["entry"].as_array().cloned().unwrap_or_default();
            let mut done = Vec::with_capacity(batch.len());
            let mut at = 0;
            for (m, size) in batch.iter().zip(sizes) {
                let slice = answers.get(at..at + size).unwrap_or_default();
                at += size;
                done.push((m, outcome_of(m, slice)));
            }
            delivered_ok(ctx, waiters, &done).await?;
            Ok(true)
        }
        Err(e) if e.is_transient() => {
            for m in &batch {
                retry_later(ctx, waiters, m, &e).await?;
            }
            Ok(false)
        }
        Err(e) if batch.len() == 1 => {
            give_up(ctx, waiters, batch[0].id, &batch[0].intake, &e).await?;
            Ok(true)
        }
        Err(_) => {
            for m in batch {
                if !Box::pin(send(ctx, waiters, vec![m])).await? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

/// What the EMR's answer to one message's entries says: their locations, and
/// the Patient the intake ended on.
fn outcome_of(m: &Message, answers: &[Value]) -> (Value, Option<String>) {
    let creates_patient = m
        .bundle
        .pointer("/entry/0/resource/resourceType")
        .and_then(Value::as_str)
        == Some("Patient");
    let patient = if creates_patient {
        answers
            .first()
            .and_then(|a| a.pointer("/response/location"))
            .and_then(Value::as_str)
            .map(|l| {
                // Absolute or relative, with or without `_history`: `Patient/{id}`.
                let l = l.split("/_history").next().unwrap_or(l);
                let parts: Vec<&str> = l.rsplitn(3, '/').collect();
                match parts.as_slice() {
                    [id, "Patient", ..] => format!("Patient/{id}"),
                    _ => l.to_owned(),
                }
            })
    } else {
        m.resolved_subject.clone()
    };
    let locations: Vec<Value> = answers
        .iter()
        .map(|x| {
            x.pointer("/response/location")
                .cloned()
                .unwrap_or(Value::Null)
        })
        .collect();
    (Value::Array(locations), patient)
}

async fn delivered_ok(
    ctx: &Context,
    waiters: &Waiters,
    done: &[(&Message, (Value, Option<String>))],
) -> Result<(), sqlx::Error> {
    let at = ctx.clock.now();
    let now = fhir_instant(at);
    let mut tx = crate::db::begin_write(&ctx.db).await?;
    // Intake wrote patient data into the EMR: on the record, with the delivery.
    let events: Vec<Event> = done
        .iter()
        .map(|(m, (_, patient))| {
            Event::new(Kind::Rest(Interaction::Create), Action::C, Outcome::Success)
                .by(Some(Agent {
                    system: "urn:intake:system",
                    name: "outbox".to_owned(),
                    role: "system",
                }))
                .about(SUBMISSION_SYSTEM, &m.intake)
                .on_all(patient.as_deref().and_then(Reference::parse))
        })
        .collect();
    crate::audit::record_all(&mut tx, at, &events).await?;
    for (m, (result, patient)) in done {
        sqlx::query(
            "UPDATE outbox SET state = 'delivered', delivered_at = ?, result = ?, attempts = attempts + 1,
                               last_error = NULL
             WHERE id = ?",
        )
        .bind(&now)
        .bind(result.to_string())
        .bind(m.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE intake SET status = 'delivered', patient = COALESCE(patient, ?), response = '{}'
             WHERE id = ?",
        )
        .bind(patient.as_deref())
        .bind(&m.intake)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    for (m, _) in done {
        ctx.emr.release_pending(&pending_key(&m.intake));
        settle(waiters, &m.intake);
    }
    tracing::info!(intakes = done.len(), "delivered to the EMR");
    Ok(())
}

/// A random number below `bound` (jitter; not for secrets).
fn jitter(bound: u64) -> u64 {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    if bound == 0 { 0 } else { random % bound }
}

/// The delay before attempt `attempts + 1`: doubling from the first retry delay up
/// to the maximum, the upper half randomised, never under the EMR's Retry-After.
pub(crate) fn backoff(
    policy: crate::config::Delivery,
    attempts: u32,
    retry_after_ms: Option<u64>,
) -> u64 {
    let exp = policy
        .retry_ms
        .saturating_mul(1u64 << attempts.min(40))
        .min(policy.retry_max_ms);
    let delay = exp / 2 + jitter(exp / 2 + 1);
    delay.max(retry_after_ms.unwrap_or(0))
}

async fn retry_later(
    ctx: &Context,
    waiters: &Waiters,
    m: &Message,
    e: &EmrError,
) -> Result<(), sqlx::Error> {
    let (id, intake) = (m.id, m.intake.as_str());
    let attempts = u32::try_from(m.attempts + 1).unwrap_or(u32::MAX);
    if attempts >= ctx.delivery.max_attempts {
        return give_up(ctx, waiters, id, intake, e).await;
    }
    let retry_after = match e {
        EmrError::Unavailable { retry_after_ms, .. } => *retry_after_ms,
        _ => None,
    };
    let delay = backoff(ctx.delivery, attempts - 1, retry_after);
    let next = unix_ms(ctx).saturating_add(i64::try_from(delay).unwrap_or(i64::MAX / 2));
    sqlx::query("UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?")
        .bind(i64::from(attempts))
        .bind(next)
        .bind(e.to_string())
        .bind(id)
        .execute(&ctx.db)
        .await?;
    tracing::warn!(outbox.id = id, attempts, delay_ms = delay, error = %e, "delivery failed; will retry");
    Ok(())
}

/// Dead-letters a delivery (shown to staff). A condition that no longer holds
/// (412: say, two Patients now carry the identifier) sends the intake to review.
async fn give_up(
    ctx: &Context,
    waiters: &Waiters,
    id: i64,
    intake: &str,
    e: &EmrError,
) -> Result<(), sqlx::Error> {
    let to_review = matches!(
        e,
        EmrError::PreconditionFailed | EmrError::Rejected { status: 412, .. }
    );
    // Staff find what waits for them by its Task: an intake sent to review, or
    // dead-lettered, gets one in the same transaction (the store's lock first, as
    // the writer takes it).
    let guard = ctx.store.lock().await;
    let mut tx = crate::db::begin_write(&ctx.db).await?;
    sqlx::query(
        "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ? WHERE id = ?",
    )
    .bind(e.to_string())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE intake SET status = ? WHERE id = ?")
        .bind(if to_review { "review" } else { "dead" })
        .bind(intake)
        .execute(&mut *tx)
        .await?;
    let now = fhir_instant(ctx.clock.now());
    let task = if to_review {
        super::refused_delivery_task(intake, &now)
    } else {
        super::dead_delivery_task(intake, &now)
    };
    let create = crate::store::Request::Create {
        resource: task,
        if_none_exist: None,
        full_url: None,
    };
    let written = create_tasks(ctx, &mut tx, vec![create]).await?;
    tx.commit().await?;
    ctx.store.committed(&written);
    drop(guard);
    ctx.emr.release_pending(&pending_key(intake));
    settle(waiters, intake);
    tracing::error!(outbox.id = id, error = %e, to_review, "delivery dead-lettered");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Delivery;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_maximum_and_honours_retry_after() {
        let policy = Delivery {
            retry_ms: 100,
            retry_max_ms: 1_000,
            max_attempts: 10,
        };
        for _ in 0..200 {
            let first = backoff(policy, 0, None);
            assert!((50..=100).contains(&first), "{first}");
            let third = backoff(policy, 2, None);
            assert!((200..=400).contains(&third), "{third}");
            let late = backoff(policy, 30, None);
            assert!((500..=1_000).contains(&late), "{late}");
            assert!(backoff(policy, 0, Some(5_000)) >= 5_000);
        }
        // Jitter: not every delay the same.
        let delays: std::collections::HashSet<u64> =
            (0..50).map(|_| backoff(policy, 3, None)).collect();
        assert!(delays.len() > 5);
    }
}
