//! The queue: every open review Task, oldest first, each with a one-line summary.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{
    IntakeRow, Item, Kind, OutboxRow, ReviewError, candidates_of, intake_of, intake_row, is_open,
    is_proposed_link, kind_of,
};
use crate::clock::instant_secs;
use crate::intake::{Extras, patient_in};
use crate::state::App;

pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// "J. Smith, born 1980" from a Patient (what is there of it).
pub(crate) fn summary(patient: &Value) -> String {
    let name = patient.pointer("/name/0");
    let given = name
        .and_then(|n| n.pointer("/given/0"))
        .and_then(Value::as_str)
        .and_then(|g| g.chars().next())
        .map(|c| format!("{c}. "))
        .unwrap_or_default();
    let family = name
        .and_then(|n| n.get("family"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut out = format!("{given}{family}").trim().to_owned();
    if let Some(year) = patient
        .get("birthDate")
        .and_then(Value::as_str)
        .and_then(|d| d.get(0..4))
    {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str("born ");
        out.push_str(year);
    }
    out
}

pub(crate) async fn last_message(
    conn: impl sqlx::SqliteExecutor<'_>,
    intake: &str,
) -> Result<Option<OutboxRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, payload, state, attempts, last_error FROM outbox
         WHERE intake_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(intake)
    .fetch_optional(conn)
    .await
}

/// The Patient extracted from the intake: kept with it, else the one its
/// delivery would create.
pub(crate) async fn extracted_patient(
    app: &App,
    id: &str,
    row: &IntakeRow,
) -> Result<Value, sqlx::Error> {
    if let Some((p, _)) = row.extracted.as_deref().and_then(Extras::kept) {
        return Ok(p);
    }
    Ok(last_message(&app.db, id)
        .await?
        .and_then(|(_, payload, ..)| serde_json::from_str::<Value>(&payload).ok())
        .and_then(|b| patient_in(&b))
        .unwrap_or(Value::Null))
}

/// Every open review Task, with its intake: the queue, oldest first.
pub async fn queue(app: &App) -> Result<Vec<Item>, ReviewError> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT r.id, r.version_id, r.body FROM resource r
         WHERE r.resource_type = 'Task' AND r.id IN (
             SELECT id FROM search_index WHERE resource_type = 'Task' AND name = 'status'
             AND value IN ('requested', 'in-progress'))",
    )
    .fetch_all(&app.db)
    .await?;
    let now = unix_secs(app.clock.now());
    let mut items = Vec::with_capacity(rows.len());
    for (id, version, body) in rows {
        let Ok(task) = serde_json::from_str::<Value>(&body) else {
            continue;
        };
        let (Some(kind), Some(intake)) = (kind_of(&task), intake_of(&task)) else {
            continue;
        };
        if !is_open(&task) {
            continue;
        }
        let Some(row) = intake_row(&app.db, intake).await? else {
            continue;
        };
        let (top_score, grade) = if kind == Kind::Match {
            let best = candidates_of(&task)
                .into_iter()
                .max_by(|a, b| a.score.unwrap_or(0.0).total_cmp(&b.score.unwrap_or(0.0)));
            (
                best.as_ref().and_then(|c| c.score),
                best.and_then(|c| c.grade),
            )
        } else {
            (None, None)
        };
        let patient = extracted_patient(app, intake, &row).await?;
        items.push(Item {
            task: id,
            version: version.to_string(),
            kind,
            intake: intake.to_owned(),
            age_seconds: instant_secs(&row.received_at).map_or(0, |t| (now - t).max(0)),
            received: row.received_at,
            top_score,
            grade,
            summary: summary(&patient),
            proposed_link: is_proposed_link(&task),
        });
    }
    items.sort_by(|a, b| a.received.cmp(&b.received).then(a.task.cmp(&b.task)));
    Ok(items)
}
