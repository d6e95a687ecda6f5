//! One item in detail: the intake's answers and extracted Patient beside each
//! candidate's chart and history, or the demographics a Task proposes.

use serde_json::{Value, json};

use super::queue::{extracted_patient, last_message};
use super::{
    Candidate, IntakeRow, Kind, ReviewError, Target, candidates_of, intake_of, intake_row,
    is_proposed_link, kind_of,
};
use crate::intake::{SUBMISSION_SYSTEM, changes};
use crate::state::App;

/// A Patient by id, from the EMR (our store, or the remote server).
pub(crate) async fn read_patient(app: &App, id: &str) -> Result<Option<Value>, ReviewError> {
    match app.emr.local_store() {
        Some(store) => Ok(store.read("Patient", id).await?.map(|s| s.resource)),
        None => app
            .emr
            .read_patient(id)
            .await
            .map_err(|e| ReviewError::Emr(e.to_string())),
    }
}

/// The Patient a pending candidate became, if it is in the EMR by now.
pub(crate) async fn resolve_pending(app: &App, intake: &str) -> Result<Option<Value>, ReviewError> {
    let query = format!("identifier={SUBMISSION_SYSTEM}|{intake}");
    let found = match app.emr.local_store() {
        Some(store) => {
            let pairs = crate::store::search::pairs(&query).unwrap_or_default();
            match crate::store::search::parse("Patient", &pairs) {
                Ok(q) => store
                    .search("Patient", &q)
                    .await?
                    .0
                    .into_iter()
                    .map(|s| s.resource)
                    .collect(),
                Err(_) => Vec::new(),
            }
        }
        None => app
            .emr
            .search_patients(&query)
            .await
            .map_err(|e| ReviewError::Emr(e.to_string()))?,
    };
    Ok(match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    })
}

/// The candidate's Patient (id included), or `None` if it is not (or no longer)
/// in the EMR.
pub(crate) async fn candidate_patient(
    app: &App,
    c: &Candidate,
) -> Result<Option<Value>, ReviewError> {
    match &c.target {
        Target::Patient(id) => read_patient(app, id).await,
        Target::Pending(intake) => resolve_pending(app, intake).await,
    }
}

/// The last five things that happened to a chart: intakes that ended on it and,
/// for the embedded store, its versions.
pub(crate) async fn history(app: &App, patient_id: &str) -> Result<Vec<Value>, ReviewError> {
    let reference = format!("Patient/{patient_id}");
    let intakes: Vec<(String, String)> = sqlx::query_as(
        "SELECT received_at, outcome FROM intake WHERE patient = ?
         ORDER BY received_at DESC LIMIT 5",
    )
    .bind(&reference)
    .fetch_all(&app.db)
    .await?;
    let mut events: Vec<(String, &str)> = intakes
        .into_iter()
        .map(|(at, outcome)| {
            let what = match outcome.as_str() {
                "created" => "Intake created this chart",
                "linked" => "Intake linked",
                _ => "Intake linked after review",
            };
            (at, what)
        })
        .collect();
    if let Some(store) = app.emr.local_store() {
        for v in store
            .history("Patient", patient_id)
            .await?
            .into_iter()
            .take(5)
        {
            let what = if v.version_id == 1 {
                "Chart created"
            } else {
                "Chart updated"
            };
            events.push((v.last_updated, what));
        }
    }
    events.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(events
        .into_iter()
        .take(5)
        .map(|(date, what)| json!({"date": date, "what": what}))
        .collect())
}

/// The QuestionnaireResponse of an intake: as kept with it until delivered, else
/// the one delivered to the embedded store.
pub(crate) async fn answers(
    app: &App,
    intake: &str,
    row: &IntakeRow,
) -> Result<Value, ReviewError> {
    if let Ok(v) = serde_json::from_str::<Value>(&row.response)
        && v.get("resourceType").is_some()
    {
        return Ok(v);
    }
    let Some(store) = app.emr.local_store() else {
        return Ok(Value::Null);
    };
    let pairs = crate::store::search::pairs(&format!("identifier={SUBMISSION_SYSTEM}|{intake}"))
        .unwrap_or_default();
    Ok(
        match crate::store::search::parse("QuestionnaireResponse", &pairs) {
            Ok(q) => store
                .search("QuestionnaireResponse", &q)
                .await?
                .0
                .into_iter()
                .next()
                .map_or(Value::Null, |s| s.resource),
            Err(_) => Value::Null,
        },
    )
}

/// One item in detail, and the Patients it showed (for the audit trail).
/// `None` when there is no such review item.
pub async fn item(
    app: &App,
    task_id: &str,
    with_answers: bool,
) -> Result<Option<(Value, Vec<String>)>, ReviewError> {
    let Some(stored) = app.store.read("Task", task_id).await? else {
        return Ok(None);
    };
    let task = &stored.resource;
    let (Some(kind), Some(intake)) = (kind_of(task), intake_of(task)) else {
        return Ok(None);
    };
    let Some(row) = intake_row(&app.db, intake).await? else {
        return Ok(None);
    };
    let mut shown = Vec::new();
    if let Some(p) = &row.patient {
        shown.push(p.clone());
    }
    let mut intake_json = json!({
        "id": intake,
        "received": row.received_at,
        "status": row.status,
        "patient": extracted_patient(app, intake, &row).await?,
    });
    if with_answers {
        intake_json["answers"] = answers(app, intake, &row).await?;
    }
    let explained: Vec<Value> = serde_json::from_str(&row.match_result).unwrap_or_default();
    let mut candidates = Vec::new();
    for c in candidates_of(task) {
        let key = match &c.target {
            Target::Patient(id) => id.clone(),
            Target::Pending(i) => crate::intake::pending_key(i),
        };
        let explanation = explained
            .iter()
            .find(|e| e.get("patient").and_then(Value::as_str) == Some(key.as_str()));
        let patient = candidate_patient(app, &c).await?.unwrap_or(Value::Null);
        let history = match patient.get("id").and_then(Value::as_str) {
            Some(id) => {
                shown.push(format!("Patient/{id}"));
                history(app, id).await?
            }
            None => Vec::new(),
        };
        candidates.push(json!({
            "patient": patient,
            "score": explanation.and_then(|e| e.get("score")).and_then(Value::as_f64).or(c.score),
            "grade": explanation.and_then(|e| e.get("grade")).cloned().or(c.grade.map(Value::String)),
            "fields": explanation.and_then(|e| e.get("fields")).cloned().unwrap_or_else(|| json!([])),
            "held": explanation.and_then(|e| e.get("held")).cloned().unwrap_or_else(|| json!([])),
            "model": explanation.and_then(|e| e.get("model")).cloned(),
            "history": history,
        }));
    }
    let mut out = json!({
        "task": stored.id,
        "version": stored.version_id.to_string(),
        "kind": kind,
        "proposedLink": is_proposed_link(task),
        "intake": intake_json,
        "candidates": candidates,
    });
    if kind == Kind::Demographics {
        let (chart, proposed) = demographics(app, task).await?;
        if let Some(id) = chart.get("id").and_then(Value::as_str) {
            shown.push(format!("Patient/{id}"));
        }
        out["proposed"] = Value::Array(
            changed_elements(task)
                .into_iter()
                .map(|k| {
                    json!({
                        "element": k,
                        "current": changes::value_of(&chart, &k),
                        "proposed": changes::value_of(&proposed, &k),
                    })
                })
                .collect(),
        );
    }
    if kind == Kind::Delivery
        && let Some((_, _, state, attempts, last_error)) = last_message(&app.db, intake).await?
    {
        out["delivery"] = json!({"attempts": attempts, "lastError": last_error, "status": state});
    }
    shown.sort();
    shown.dedup();
    Ok(Some((out, shown)))
}

/// The elements a demographics Task proposes, in its order.
pub(crate) fn changed_elements(task: &Value) -> Vec<String> {
    task.get("input")
        .and_then(Value::as_array)
        .map(|inputs| {
            inputs
                .iter()
                .filter(|i| {
                    i.pointer("/type/coding/0/code").and_then(Value::as_str)
                        == Some("changed-element")
                })
                .filter_map(|i| i.pointer("/type/text").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The chart a demographics Task is about (as the EMR holds it now; `Null` if
/// gone) and the proposed Patient it contains.
pub(crate) async fn demographics(app: &App, task: &Value) -> Result<(Value, Value), ReviewError> {
    let chart = match task
        .pointer("/focus/reference")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("Patient/"))
    {
        Some(id) => read_patient(app, id).await?.unwrap_or(Value::Null),
        None => Value::Null,
    };
    Ok((chart, proposed_patient(task)))
}

/// The Patient a demographics Task proposes (contained in it).
pub(crate) fn proposed_patient(task: &Value) -> Value {
    task.get("contained")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|r| r.get("resourceType").and_then(Value::as_str) == Some("Patient"))
        })
        .cloned()
        .unwrap_or(Value::Null)
}
