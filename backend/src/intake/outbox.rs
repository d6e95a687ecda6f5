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

use super::{Context, pending_key};
use crate::clock::fhir_instant;
use crate::emr::EmrError;

/// Delivers forever: whatever is due, then sleeps until the next is due or an
/// accept wakes it.
pub(crate) async fn run(
    ctx: Context,
    wake: Arc<Notify>,
    delivered: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let wait = match round(&ctx, &delivered).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::error!(error = %e, "outbox: database failed; retrying");
                Duration::from_secs(1)
            }
        };
        delivered.send_modify(|n| *n = n.wrapping_add(1));
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

fn unix_ms(ctx: &Context) -> i64 {
    ctx.clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Delivers what is due; how long until the next is.
async fn round(ctx: &Context, delivered: &watch::Sender<u64>) -> Result<Duration, sqlx::Error> {
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
        for (id, intake, payload, attempts) in due {
            match deliver(ctx, &payload).await {
                Ok((result, patient)) => {
                    delivered_ok(ctx, id, &intake, &result, patient.as_deref()).await?;
                    delivered.send_modify(|n| *n = n.wrapping_add(1));
                }
                Err(e) if e.is_transient() => {
                    retry_later(ctx, id, &intake, attempts, &e).await?;
                    // The EMR is not answering: the rest waits for the next round
                    // rather than hammering it (and stays in order).
                    stalled = true;
                    break;
                }
                Err(e) => {
                    give_up(ctx, id, &intake, &e).await?;
                }
            }
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

/// Sends one delivery bundle. The EMR's answer (each entry's location) and the
/// Patient the intake ended on.
async fn deliver(ctx: &Context, payload: &str) -> Result<(Value, Option<String>), EmrError> {
    let mut bundle: Value = serde_json::from_str(payload).map_err(|_| EmrError::Rejected {
        status: 0,
        issues: Vec::new(),
    })?;
    // A subject that is the Patient of an earlier intake: by now delivered (the
    // outbox keeps order), found by that intake's identifier.
    let mut resolved_subject = None;
    if let Some(entries) = bundle["entry"].as_array_mut() {
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
            let found = ctx.emr.search_patients(query).await?;
            let id = match found.as_slice() {
                [one] => one.get("id").and_then(Value::as_str).map(str::to_owned),
                [] => {
                    return Err(EmrError::Unavailable {
                        reason: "the patient of an earlier intake is not in the EMR yet".into(),
                        retry_after_ms: None,
                    });
                }
                _ => None,
            };
            let Some(id) = id else {
                return Err(EmrError::Rejected {
                    status: 412,
                    issues: Vec::new(),
                });
            };
            let to = format!("Patient/{id}");
            entry["resource"]["subject"]["reference"] = Value::String(to.clone());
            resolved_subject = Some(to);
        }
    }
    let creates_patient = bundle
        .pointer("/entry/0/resource/resourceType")
        .and_then(Value::as_str)
        == Some("Patient");
    let answer = ctx.emr.transaction(bundle).await?;
    let patient = if creates_patient {
        answer
            .pointer("/entry/0/response/location")
            .and_then(Value::as_str)
            .map(|l| l.split("/_history").next().unwrap_or(l))
            .map(|l| {
                // Absolute or relative: keep `Patient/{id}`.
                let parts: Vec<&str> = l.rsplitn(3, '/').collect();
                match parts.as_slice() {
                    [id, "Patient", ..] => format!("Patient/{id}"),
                    _ => l.to_owned(),
                }
            })
    } else {
        resolved_subject
    };
    let locations: Vec<Value> = answer["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|x| {
                    x.pointer("/response/location")
                        .cloned()
                        .unwrap_or(Value::Null)
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((Value::Array(locations), patient))
}

async fn delivered_ok(
    ctx: &Context,
    id: i64,
    intake: &str,
    result: &Value,
    patient: Option<&str>,
) -> Result<(), sqlx::Error> {
    let now = fhir_instant(ctx.clock.now());
    let mut tx = crate::db::begin_write(&ctx.db).await?;
    sqlx::query(
        "UPDATE outbox SET state = 'delivered', delivered_at = ?, result = ?, attempts = attempts + 1,
                           last_error = NULL
         WHERE id = ?",
    )
    .bind(&now)
    .bind(result.to_string())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE intake SET status = 'delivered', patient = COALESCE(patient, ?), response = '{}'
         WHERE id = ?",
    )
    .bind(patient)
    .bind(intake)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    ctx.emr.release_pending(&pending_key(intake));
    tracing::info!(outbox.id = id, "intake delivered to the EMR");
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
    id: i64,
    intake: &str,
    attempts: i64,
    e: &EmrError,
) -> Result<(), sqlx::Error> {
    let attempts = u32::try_from(attempts + 1).unwrap_or(u32::MAX);
    if attempts >= ctx.delivery.max_attempts {
        return give_up(ctx, id, intake, e).await;
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
async fn give_up(ctx: &Context, id: i64, intake: &str, e: &EmrError) -> Result<(), sqlx::Error> {
    let to_review = matches!(
        e,
        EmrError::PreconditionFailed | EmrError::Rejected { status: 412, .. }
    );
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
    tx.commit().await?;
    ctx.emr.release_pending(&pending_key(intake));
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
