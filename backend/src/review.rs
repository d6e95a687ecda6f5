//! The match-resolution queue: what waits for staff, one item in detail, and the
//! decisions, all over the review `Task`s in the embedded store.
//!
//! Everything that waits is a Task (`status` requested or in-progress): the
//! pipeline's `match-review` (which patient is this?), its `demographics-update`
//! (details that differ from the linked chart), and the outbox's
//! `delivery-failed` (dead-lettered) or `match-review` with reason
//! `delivery-precondition-failed` (the EMR answered 412). The kind shown to staff
//! is derived from the code (see [`Kind`]).
//!
//! A decision is one write transaction, under the store's lock: the Task's new
//! version (checked against the version the person read: two people deciding the
//! same item, the second is refused and nothing is written twice), the intake's
//! new state, its delivery as an outbox message, and the AuditEvent. The delivery
//! is the pipeline's own Bundle ([`crate::intake::delivery_bundle`]); with the
//! embedded store as the EMR its resources are written in that same transaction
//! and the message recorded as delivered, as the pipeline does; a remote EMR gets
//! it from the outbox.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::{self, Reference};
use crate::auth::{Principal, Role};
use crate::clock::fhir_instant;
use crate::fhir::outcome::{Issue, IssueType};
use crate::intake::{
    Author, Extras, SCORE_EXTENSION, SUBMISSION_SYSTEM, Subject, TASK_SYSTEM, changes,
    delivery_bundle, inline_requests, patient_in,
};
use crate::state::App;
use crate::store::{Outcome, Request, Stored};

/// What the second of two people deciding the same item is told (412).
pub const STALE: &str =
    "Someone else has already decided this intake. Reload to see the current state.";

/// What an item asks of staff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Which patient is this intake? (`match-review`)
    Match,
    /// Details that differ from the linked chart (`demographics-update`).
    Demographics,
    /// A delivery dead-lettered (`delivery-failed`) or refused with 412
    /// (`match-review` with reason `delivery-precondition-failed`).
    Delivery,
}

/// The kind of a review Task, or `None` for any other Task.
fn kind_of(task: &Value) -> Option<Kind> {
    let coding = task.pointer("/code/coding/0")?;
    if coding.get("system").and_then(Value::as_str) != Some(TASK_SYSTEM) {
        return None;
    }
    match coding.get("code").and_then(Value::as_str)? {
        "match-review" => {
            let refused = task
                .pointer("/reasonCode/coding/0/code")
                .and_then(Value::as_str)
                == Some("delivery-precondition-failed");
            Some(if refused { Kind::Delivery } else { Kind::Match })
        }
        "demographics-update" => Some(Kind::Demographics),
        "delivery-failed" => Some(Kind::Delivery),
        _ => None,
    }
}

/// The intake a Task is about (its `urn:intake:submission` identifier).
fn intake_of(task: &Value) -> Option<&str> {
    task.get("identifier")?
        .as_array()?
        .iter()
        .find(|i| i.get("system").and_then(Value::as_str) == Some(SUBMISSION_SYSTEM))?
        .get("value")?
        .as_str()
}

fn is_open(task: &Value) -> bool {
    matches!(
        task.get("status").and_then(Value::as_str),
        Some("requested" | "in-progress")
    )
}

/// Why a review request failed. Messages carry no patient data.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// No such item (404).
    #[error("no such review item")]
    NotFound,
    /// `If-Match` names an older version (412).
    #[error("stale version")]
    Stale,
    /// No `If-Match` (428).
    #[error("If-Match missing")]
    MissingIfMatch,
    /// The item was decided already (409).
    #[error("already decided")]
    Decided,
    /// The re-authentication password is wrong or missing (401).
    #[error("re-authentication failed")]
    Reauthentication,
    /// The request cannot be applied to this item (422).
    #[error("invalid decision")]
    Invalid(Issue),
    /// The EMR could not be read or written (503).
    #[error("the EMR is unavailable: {0}")]
    Emr(String),
    /// Authentication or authorisation failed.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The database failed (503).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<crate::store::StoreError> for ReviewError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Database(e) => ReviewError::Database(e),
            // A version checked under the lock moved: someone else wrote.
            crate::store::StoreError::PreconditionFailed(_) => ReviewError::Stale,
            crate::store::StoreError::Invalid(issues) => ReviewError::Invalid(
                issues
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| Issue::error(IssueType::Invalid, "Not a valid resource")),
            ),
        }
    }
}

/// One line of the queue.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// The Task's id.
    pub task: String,
    /// The Task's `versionId`, for `If-Match`.
    pub version: String,
    /// What it asks.
    pub kind: Kind,
    /// The intake's id.
    pub intake: String,
    /// When the intake was received (FHIR instant).
    pub received: String,
    /// Seconds since then.
    pub age_seconds: i64,
    /// The best remaining candidate's score (kind match).
    pub top_score: Option<f64>,
    /// Its grade (kind match).
    pub grade: Option<String>,
    /// "J. Smith, born 1980": patient data, for a signed-in person's screen only.
    pub summary: String,
    /// A link proposed for an intake without proof of identity, which the
    /// front desk may confirm.
    pub proposed_link: bool,
}

/// A candidate input of a review Task.
#[derive(Clone, Debug, PartialEq)]
struct Candidate {
    /// A stored Patient's id, or the intake whose new Patient it is (not in the
    /// EMR when the Task was written).
    target: Target,
    score: Option<f64>,
    grade: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Patient(String),
    Pending(String),
}

fn candidates_of(task: &Value) -> Vec<Candidate> {
    let Some(inputs) = task.get("input").and_then(Value::as_array) else {
        return Vec::new();
    };
    inputs
        .iter()
        .filter(|i| i.pointer("/type/coding/0/code").and_then(Value::as_str) == Some("candidate"))
        .filter_map(|i| {
            let reference = i.get("valueReference")?;
            let target = match reference.get("reference").and_then(Value::as_str) {
                Some(r) => Target::Patient(r.strip_prefix("Patient/")?.to_owned()),
                None => {
                    Target::Pending(reference.pointer("/identifier/value")?.as_str()?.to_owned())
                }
            };
            let score = i
                .get("extension")
                .and_then(Value::as_array)
                .and_then(|x| {
                    x.iter()
                        .find(|e| e.get("url").and_then(Value::as_str) == Some(SCORE_EXTENSION))
                })
                .and_then(|e| e.get("valueDecimal"))
                .and_then(Value::as_f64);
            let grade = i
                .pointer("/type/text")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Some(Candidate {
                target,
                score,
                grade,
            })
        })
        .collect()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of a FHIR instant as [`fhir_instant`] writes it (UTC).
fn instant_secs(text: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    Some(days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?)
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// "J. Smith, born 1980" from a Patient (what is there of it).
fn summary(patient: &Value) -> String {
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

/// The intake row as review needs it.
#[derive(Debug, sqlx::FromRow)]
struct IntakeRow {
    received_at: String,
    status: String,
    patient: Option<String>,
    response: String,
    match_result: String,
    extracted: Option<String>,
    device: Option<String>,
}

async fn intake_row(
    conn: impl sqlx::SqliteExecutor<'_>,
    id: &str,
) -> Result<Option<IntakeRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT received_at, status, patient, response, match_result, extracted, device
         FROM intake WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The newest outbox message of an intake: (id, payload, state, attempts, last error).
type OutboxRow = (i64, String, String, i64, Option<String>);

async fn last_message(
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
async fn extracted_patient(app: &App, id: &str, row: &IntakeRow) -> Result<Value, sqlx::Error> {
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

/// A Patient by id, from the EMR (our store, or the remote server).
async fn read_patient(app: &App, id: &str) -> Result<Option<Value>, ReviewError> {
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
async fn resolve_pending(app: &App, intake: &str) -> Result<Option<Value>, ReviewError> {
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
async fn candidate_patient(app: &App, c: &Candidate) -> Result<Option<Value>, ReviewError> {
    match &c.target {
        Target::Patient(id) => read_patient(app, id).await,
        Target::Pending(intake) => resolve_pending(app, intake).await,
    }
}

/// The last five things that happened to a chart: intakes that ended on it and,
/// for the embedded store, its versions.
async fn history(app: &App, patient_id: &str) -> Result<Vec<Value>, ReviewError> {
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
async fn answers(app: &App, intake: &str, row: &IntakeRow) -> Result<Value, ReviewError> {
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
fn changed_elements(task: &Value) -> Vec<String> {
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
async fn demographics(app: &App, task: &Value) -> Result<(Value, Value), ReviewError> {
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
fn proposed_patient(task: &Value) -> Value {
    task.get("contained")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|r| r.get("resourceType").and_then(Value::as_str) == Some("Patient"))
        })
        .cloned()
        .unwrap_or(Value::Null)
}

/// A decision, as checked from the request body.
#[derive(Clone, PartialEq, Eq)]
pub enum Decision {
    /// The intake is this candidate's.
    Link {
        /// `Patient/{id}`'s id.
        patient: String,
    },
    /// The intake is a new patient.
    Create,
    /// This candidate is not the intake's patient.
    NotThis {
        /// `Patient/{id}`'s id.
        patient: String,
    },
    /// Proposed demographics accepted or refused, element by element.
    Update {
        /// Written to the chart.
        accept: Vec<String>,
        /// Dropped.
        refuse: Vec<String>,
    },
    /// A dead-lettered delivery goes back into the outbox.
    Retry,
}

impl Decision {
    /// The decision as labelled pairs for the matching model, `(chart, same)`: a
    /// link says the intake's patient is the chart; "not this patient" says it is
    /// not that one; creating a new chart says it is none of the `candidates`.
    fn labels<'a>(&'a self, candidates: &'a [String]) -> Vec<(&'a str, bool)> {
        match self {
            Decision::Link { patient } => vec![(patient.as_str(), true)],
            Decision::NotThis { patient } => vec![(patient.as_str(), false)],
            Decision::Create => candidates.iter().map(|id| (id.as_str(), false)).collect(),
            Decision::Update { .. } | Decision::Retry => Vec::new(),
        }
    }
}

impl std::fmt::Debug for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl Decision {
    /// The action's code, as in the API.
    pub fn code(&self) -> &'static str {
        match self {
            Decision::Link { .. } => "link",
            Decision::Create => "create",
            Decision::NotThis { .. } => "not-this",
            Decision::Update { .. } => "update",
            Decision::Retry => "retry",
        }
    }

    /// Whether a person must give their password again first: merging records
    /// (link) or making one (create).
    pub fn needs_reauthentication(&self) -> bool {
        matches!(self, Decision::Link { .. } | Decision::Create)
    }
}

/// What a decision left.
#[derive(Debug, Serialize)]
pub struct Decided {
    /// The Task's id.
    pub task: String,
    /// `completed`, or `in-progress` while the item stays in the queue.
    pub status: &'static str,
    /// The intake: `{id, status, patient}`.
    pub intake: Value,
}

/// The pre-check of a decision before any slow work (the password's hash): the
/// item exists, the version is the one read, it is still open. Repeated under the
/// lock in [`decide`].
pub async fn precheck(app: &App, task_id: &str, if_match: i64) -> Result<(), ReviewError> {
    let stored = app
        .store
        .read("Task", task_id)
        .await?
        .ok_or(ReviewError::NotFound)?;
    check_task(&stored, if_match).map(|_| ())
}

fn check_task(stored: &Stored, if_match: i64) -> Result<Kind, ReviewError> {
    let kind = kind_of(&stored.resource).ok_or(ReviewError::NotFound)?;
    if stored.version_id != if_match {
        return Err(ReviewError::Stale);
    }
    if !is_open(&stored.resource) {
        return Err(ReviewError::Decided);
    }
    Ok(kind)
}

fn invalid(message: &str, at: &str) -> ReviewError {
    ReviewError::Invalid(Issue::error(IssueType::BusinessRule, message).at(at))
}

/// The Task as decided by `who`: `status`, `owner`, `lastModified`, and `output`
/// naming the decision (and the patient).
fn decided_task(
    mut task: Value,
    who: &Principal,
    status: &str,
    now: &str,
    decision: &str,
    patient: Option<&str>,
) -> Value {
    let agent = who.agent();
    task["status"] = json!(status);
    task["lastModified"] = json!(now);
    task["owner"] = json!({
        "identifier": {"system": agent.system, "value": agent.name},
        "display": agent.name,
    });
    let mut outputs = task
        .get("output")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    outputs.push(json!({
        "type": {"coding": [{"system": TASK_SYSTEM, "code": "decision"}]},
        "valueCode": decision,
    }));
    if let Some(p) = patient {
        outputs.push(json!({
            "type": {"coding": [{"system": TASK_SYSTEM, "code": "patient"}]},
            "valueReference": {"reference": p},
        }));
    }
    task["output"] = Value::Array(outputs);
    task
}

/// The Provenance of a decided delivery names the person who decided, beside the
/// device the patient used.
fn with_verifier(mut bundle: Value, who: &Principal) -> Value {
    if let Some(entries) = bundle["entry"].as_array_mut() {
        for e in entries {
            if e.pointer("/resource/resourceType").and_then(Value::as_str) == Some("Provenance")
                && let Some(agents) = e["resource"]["agent"].as_array_mut()
            {
                agents.push(json!({
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "verifier"}]},
                    "who": {"display": who.name},
                }));
            }
        }
    }
    bundle
}

/// What a decision writes, gathered under the lock.
struct Plan {
    /// The Task's new version.
    task: Value,
    /// The Task's new status.
    status: &'static str,
    /// The delivery Bundle, if the decision delivers.
    delivery: Option<Value>,
    /// The intake's new status and patient.
    intake: Option<(&'static str, Option<String>)>,
    /// A dead message put back into the outbox.
    retry: Option<i64>,
    /// Patients touched, for the audit trail.
    touched: Vec<String>,
}

/// Applies `decision` to Task `task_id`, read at version `if_match`, by `who`
/// (whose re-authentication, if needed, the caller has checked). One transaction.
pub async fn decide(
    app: &App,
    who: &Principal,
    address: Option<std::net::IpAddr>,
    task_id: &str,
    if_match: i64,
    decision: &Decision,
) -> Result<Decided, ReviewError> {
    // A remote chart to update is read before the lock (a network call); its
    // version goes in the update's If-Match, so a chart changed since is refused.
    let remote_chart = match (decision, app.emr.local_store()) {
        (Decision::Update { accept, .. }, None) if !accept.is_empty() => {
            let stored = app
                .store
                .read("Task", task_id)
                .await?
                .ok_or(ReviewError::NotFound)?;
            Some(demographics(app, &stored.resource).await?.0)
        }
        _ => None,
    };
    let clock_now = app.clock.now();
    let now = fhir_instant(clock_now);
    let guard = app.store.lock().await;
    let mut tx = crate::db::begin_write(&app.db).await?;
    // The Task as it is now, under the lock: whoever decided first has written.
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT version_id, body FROM resource WHERE resource_type = 'Task' AND id = ?",
    )
    .bind(task_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (version, body) = row.ok_or(ReviewError::NotFound)?;
    let stored = Stored {
        resource_type: "Task".to_owned(),
        id: task_id.to_owned(),
        version_id: version,
        last_updated: String::new(),
        resource: serde_json::from_str(&body).map_err(|_| ReviewError::NotFound)?,
    };
    let kind = check_task(&stored, if_match)?;
    let task = stored.resource;
    let candidates = candidate_ids(&task);
    let intake = intake_of(&task).ok_or(ReviewError::NotFound)?.to_owned();
    let row = intake_row(&mut *tx, &intake)
        .await?
        .ok_or(ReviewError::NotFound)?;
    let local = app.emr.local_store().is_some();
    let delivered_status = if local { "delivered" } else { "accepted" };
    let mut plan = match decision {
        Decision::Link { .. } | Decision::Create if kind == Kind::Demographics => {
            return Err(invalid(
                "This intake is linked already; accept or refuse its details",
                "action",
            ));
        }
        Decision::Link { patient } => {
            if !is_candidate(app, &task, patient).await? {
                return Err(invalid(
                    "That patient is not a candidate of this item",
                    "patient",
                ));
            }
            let reference = format!("Patient/{patient}");
            let subject = Subject::Existing(patient.clone());
            Plan {
                task: decided_task(task, who, "completed", &now, "link", Some(&reference)),
                status: "completed",
                delivery: Some(deliver(&row, &intake, &subject, who, &now)?),
                intake: Some((delivered_status, Some(reference.clone()))),
                retry: None,
                touched: vec![reference],
            }
        }
        // The Task's output names the new Patient once it has an id (below).
        Decision::Create => Plan {
            task: decided_task(task, who, "completed", &now, "create", None),
            status: "completed",
            delivery: Some(deliver(&row, &intake, &Subject::New, who, &now)?),
            intake: Some((delivered_status, None)),
            retry: None,
            touched: Vec::new(),
        },
        Decision::NotThis { patient } => {
            if kind != Kind::Match {
                return Err(invalid("Only a match has candidates to rule out", "action"));
            }
            let reference = format!("Patient/{patient}");
            let task = without_candidate(task, &reference).ok_or_else(|| {
                invalid("That patient is not a candidate of this item", "patient")
            })?;
            Plan {
                task: decided_task(task, who, "in-progress", &now, "not-this", Some(&reference)),
                status: "in-progress",
                delivery: None,
                intake: None,
                retry: None,
                touched: vec![reference],
            }
        }
        Decision::Update { accept, refuse } => {
            if kind != Kind::Demographics {
                return Err(invalid(
                    "Only proposed details can be accepted or refused",
                    "action",
                ));
            }
            check_elements(&changed_elements(&task), accept, refuse)?;
            let focus = task
                .pointer("/focus/reference")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("Patient/"))
                .ok_or(ReviewError::NotFound)?
                .to_owned();
            let reference = format!("Patient/{focus}");
            let delivery = if accept.is_empty() {
                None
            } else {
                let chart = match remote_chart {
                    Some(chart) => chart,
                    None => {
                        let body: Option<String> = sqlx::query_scalar(
                            "SELECT body FROM resource WHERE resource_type = 'Patient' AND id = ?",
                        )
                        .bind(&focus)
                        .fetch_optional(&mut *tx)
                        .await?;
                        body.and_then(|b| serde_json::from_str(&b).ok())
                            .unwrap_or(Value::Null)
                    }
                };
                let proposed = proposed_patient(&task);
                Some(update_bundle(&reference, chart, &proposed, accept)?)
            };
            // The decision, then each element's fate.
            let mut done = decided_task(task, who, "completed", &now, "update", None);
            if let Some(outputs) = done["output"].as_array_mut() {
                for (list, code) in [(accept, "accepted-element"), (refuse, "refused-element")] {
                    for e in list {
                        outputs.push(json!({
                            "type": {"coding": [{"system": TASK_SYSTEM, "code": code}]},
                            "valueString": e,
                        }));
                    }
                }
            }
            Plan {
                task: done,
                status: "completed",
                delivery,
                intake: None,
                retry: None,
                touched: vec![reference],
            }
        }
        Decision::Retry => {
            if kind != Kind::Delivery {
                return Err(invalid("Only a failed delivery can be retried", "action"));
            }
            let (message, ..) = last_message(&mut *tx, &intake)
                .await?
                .filter(|(_, _, state, ..)| state == "dead")
                .ok_or_else(|| invalid("This intake has no failed delivery to retry", "action"))?;
            Plan {
                task: decided_task(task, who, "completed", &now, "retry", None),
                status: "completed",
                delivery: None,
                intake: Some(("accepted", row.patient.clone())),
                retry: Some(message),
                touched: row.patient.iter().cloned().collect(),
            }
        }
    };
    // The delivery: with the embedded store, its resources written here and now
    // and the outbox message recorded as delivered (as the pipeline does);
    // otherwise a message for the outbox.
    let mut outcomes = Vec::new();
    if let Some(bundle) = &plan.delivery {
        if local {
            let written = app.store.apply_in(&mut tx, store_writes(bundle)?).await?;
            if matches!(decision, Decision::Create)
                && let Some(p) = written
                    .iter()
                    .map(Outcome::stored)
                    .find(|s| s.resource_type == "Patient")
                    .map(Stored::reference)
            {
                if let Some(outputs) = plan.task["output"].as_array_mut() {
                    outputs.push(json!({
                        "type": {"coding": [{"system": TASK_SYSTEM, "code": "patient"}]},
                        "valueReference": {"reference": p},
                    }));
                }
                plan.touched.push(p.clone());
                plan.intake = Some((delivered_status, Some(p)));
            }
            let locations: Vec<Value> = written
                .iter()
                .map(|o| {
                    let s = o.stored();
                    Value::String(format!("{}/_history/{}", s.reference(), s.version_id))
                })
                .collect();
            sqlx::query(
                "INSERT INTO outbox (intake_id, payload, next_attempt_at, state, attempts,
                                     delivered_at, result)
                 VALUES (?, ?, 0, 'delivered', 1, ?, ?)",
            )
            .bind(&intake)
            .bind(bundle.to_string())
            .bind(&now)
            .bind(Value::Array(locations).to_string())
            .execute(&mut *tx)
            .await?;
            outcomes.extend(written);
        } else {
            sqlx::query(
                "INSERT INTO outbox (intake_id, payload, next_attempt_at) VALUES (?, ?, 0)",
            )
            .bind(&intake)
            .bind(bundle.to_string())
            .execute(&mut *tx)
            .await?;
        }
    }
    if let Some(message) = plan.retry {
        sqlx::query(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = 0,
                               last_error = NULL WHERE id = ? AND state = 'dead'",
        )
        .bind(message)
        .execute(&mut *tx)
        .await?;
    }
    let task_write = Request::Update {
        id: task_id.to_owned(),
        resource: plan.task.clone(),
        if_match: Some(version),
        full_url: None,
    };
    outcomes.extend(app.store.apply_in(&mut tx, vec![task_write]).await?);
    finish(&mut tx, who, address, clock_now, task_id, &intake, &plan).await?;
    tx.commit().await?;
    app.store.committed(&outcomes);
    drop(guard);
    // A decision on a match teaches the matching model (labelled pairs).
    if kind == Kind::Match
        && let Some((p, _)) = row.extracted.as_deref().and_then(Extras::kept)
    {
        app.patients
            .learn_from_review(&p, decision.labels(&candidates));
    }
    let queued = (plan.delivery.is_some() && !local) || plan.retry.is_some();
    if queued {
        // A new patient on the way to a remote EMR is a candidate until it lands,
        // as the pipeline holds its own.
        if matches!(decision, Decision::Create)
            && let Some((p, _)) = row.extracted.as_deref().and_then(Extras::kept)
        {
            app.emr.hold_pending(
                &crate::intake::pending_key(&intake),
                &crate::fhir::patient::to_record(&p),
            );
        }
        app.intakes.wake_outbox();
    }
    let (status, patient) = match plan.intake {
        Some((s, p)) => (s.to_owned(), p),
        None => (row.status.clone(), row.patient.clone()),
    };
    tracing::info!(
        review.action = decision.code(),
        review.kind = ?kind,
        "review item decided"
    );
    Ok(Decided {
        task: task_id.to_owned(),
        status: plan.status,
        intake: json!({"id": intake, "status": status, "patient": patient}),
    })
}

/// The stored Patients among a Task's candidates, by id.
fn candidate_ids(task: &Value) -> Vec<String> {
    candidates_of(task)
        .into_iter()
        .filter_map(|c| match c.target {
            Target::Patient(id) => Some(id),
            Target::Pending(_) => None,
        })
        .collect()
}

/// Whether `Patient/{patient}` is one of the Task's remaining candidates (a
/// candidate that was a new patient on its way counts by the id it got).
async fn is_candidate(app: &App, task: &Value, patient: &str) -> Result<bool, ReviewError> {
    for c in candidates_of(task) {
        let id = match &c.target {
            Target::Patient(id) => Some(id.clone()),
            Target::Pending(intake) => resolve_pending(app, intake)
                .await?
                .and_then(|p| p.get("id").and_then(Value::as_str).map(str::to_owned)),
        };
        if id.as_deref() == Some(patient) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The Task without the candidate `reference`, or `None` if it is not one.
fn without_candidate(mut task: Value, reference: &str) -> Option<Value> {
    let inputs = task.get_mut("input")?.as_array_mut()?;
    let before = inputs.len();
    inputs.retain(|i| {
        i.pointer("/valueReference/reference")
            .and_then(Value::as_str)
            != Some(reference)
    });
    if inputs.len() == before {
        return None;
    }
    if inputs.is_empty()
        && let Some(o) = task.as_object_mut()
    {
        // FHIR has no empty arrays: no candidates left, no input.
        o.remove("input");
    }
    Some(task)
}

/// Every proposed element accepted or refused, once; nothing else.
fn check_elements(
    proposed: &[String],
    accept: &[String],
    refuse: &[String],
) -> Result<(), ReviewError> {
    for (list, at) in [(accept, "accept"), (refuse, "refuse")] {
        if list.iter().any(|e| !proposed.contains(e)) {
            return Err(invalid("An element named is not one proposed", at));
        }
    }
    if accept.iter().any(|e| refuse.contains(e)) {
        return Err(invalid(
            "An element cannot be both accepted and refused",
            "refuse",
        ));
    }
    if proposed
        .iter()
        .any(|e| !accept.contains(e) && !refuse.contains(e))
    {
        return Err(invalid("Accept or refuse every proposed element", "accept"));
    }
    Ok(())
}

/// The chart with the accepted elements of the proposal, as a transaction of one
/// `PUT` conditional on the chart's version.
fn update_bundle(
    reference: &str,
    chart: Value,
    proposed: &Value,
    accept: &[String],
) -> Result<Value, ReviewError> {
    if !chart.is_object() {
        return Err(invalid("The chart is no longer in the EMR", "accept"));
    }
    let version = chart
        .pointer("/meta/versionId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut updated = chart;
    for k in accept {
        changes::apply(&mut updated, proposed, k);
    }
    Ok(json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "resource": updated,
            "request": {"method": "PUT", "url": reference, "ifMatch": format!("W/\"{version}\"")},
        }],
    }))
}

/// A decided delivery as writes to the embedded store: the creates of a link or
/// create, without their conditions (nothing can exist under the intake's
/// identifier yet: it was never delivered), or the update of a chart.
fn store_writes(bundle: &Value) -> Result<Vec<Request>, ReviewError> {
    let mut requests = crate::store::bundle::transaction_requests(bundle).map_err(|_| {
        ReviewError::Invalid(Issue::error(
            IssueType::Exception,
            "The delivery could not be made",
        ))
    })?;
    if requests.iter().all(|r| matches!(r, Request::Create { .. })) {
        requests = inline_requests(bundle).unwrap_or(requests);
    }
    Ok(requests)
}

/// The intake's new state and the AuditEvent, in the decision's transaction.
async fn finish(
    tx: &mut sqlx::SqliteConnection,
    who: &Principal,
    address: Option<std::net::IpAddr>,
    now: SystemTime,
    task_id: &str,
    intake: &str,
    plan: &Plan,
) -> Result<(), ReviewError> {
    if let Some((status, patient)) = &plan.intake {
        // Delivered here: the response and the patient's details now live in the
        // chart, not in the row.
        let delivered = *status == "delivered";
        sqlx::query(
            "UPDATE intake SET status = ?1, patient = COALESCE(?2, patient),
                               response = CASE WHEN ?3 THEN '{}' ELSE response END,
                               extracted = CASE WHEN ?3 THEN NULL ELSE extracted END,
                               device = CASE WHEN ?3 THEN NULL ELSE device END
             WHERE id = ?4",
        )
        .bind(*status)
        .bind(patient.as_deref())
        .bind(delivered)
        .bind(intake)
        .execute(&mut *tx)
        .await?;
    }
    let mut event = audit::Event::new(
        audit::Kind::Rest(audit::Interaction::Update),
        audit::Action::U,
        audit::Outcome::Success,
    )
    .by(Some(who.agent()))
    .from(address);
    // The Patient first: the audit row is searchable by it.
    for p in &plan.touched {
        if let Some(r) = Reference::parse(p) {
            event = event.on(r);
        }
    }
    if let Some(r) = Reference::parse(&format!("Task/{task_id}")) {
        event = event.on(r);
    }
    audit::record(tx, now, &event).await?;
    Ok(())
}

/// The delivery of an intake decided for `subject`: the pipeline's Bundle, its
/// Provenance naming the decider too.
fn deliver(
    row: &IntakeRow,
    intake: &str,
    subject: &Subject,
    who: &Principal,
    now: &str,
) -> Result<Value, ReviewError> {
    let response: Value = serde_json::from_str(&row.response)
        .ok()
        .filter(|v: &Value| v.get("resourceType").is_some())
        .ok_or_else(|| invalid("This intake was delivered already", "action"))?;
    // The Patient and whatever else the form extracted, kept for this decision.
    let (patient, extras) = row
        .extracted
        .as_deref()
        .and_then(Extras::kept)
        .unwrap_or_default();
    if *subject == Subject::New && !patient.is_object() {
        return Err(invalid(
            "This intake kept no patient details to make a chart from",
            "action",
        ));
    }
    let device = row.device.as_deref().unwrap_or("Intake patient app");
    // (An invitation leads to review only for a patient the clinic did not know:
    // its Provenance names the device.)
    let author = Author {
        device,
        invitation: None,
    };
    let bundle = delivery_bundle(intake, subject, &patient, &extras, &response, &author, now);
    Ok(with_verifier(bundle, who))
}

/// Who may see the queue and items: every staff role, and system tokens.
pub fn may_read(role: Role) -> bool {
    matches!(
        role,
        Role::FrontDesk | Role::Clinician | Role::Admin | Role::System
    )
}

/// Who may see an intake's answers: clinicians and admins.
pub fn may_see_answers(role: Role) -> bool {
    matches!(role, Role::Clinician | Role::Admin)
}

/// Who may decide: clinicians and admins (people or admin tokens), and system
/// tokens. The front desk confirms proposed links only
/// ([`front_desk_may_decide`]).
pub fn may_decide(role: Role) -> bool {
    matches!(role, Role::Clinician | Role::Admin | Role::System)
}

/// Whether the Task proposes a link an intake without proof of identity could
/// not make itself: one `certain` candidate, the patient not yet checked.
fn is_proposed_link(task: &Value) -> bool {
    kind_of(task) == Some(Kind::Match)
        && task
            .pointer("/reasonCode/coding/0/code")
            .and_then(Value::as_str)
            == Some(crate::intake::UNVERIFIED_REASON)
}

/// The front desk may confirm a proposed link (checking who a patient is
/// belongs to the desk): `link` to its `certain` candidate, nothing else;
/// doubtful matches stay with clinicians (issue 21).
pub async fn front_desk_may_decide(
    app: &App,
    task_id: &str,
    decision: &Decision,
) -> Result<bool, ReviewError> {
    let Decision::Link { patient } = decision else {
        return Ok(false);
    };
    let Some(stored) = app.store.read("Task", task_id).await? else {
        return Ok(false);
    };
    let task = &stored.resource;
    Ok(is_proposed_link(task)
        && candidates_of(task).iter().any(|c| {
            c.target == Target::Patient(patient.clone()) && c.grade.as_deref() == Some("certain")
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_read_back_as_unix_seconds() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_796_000_000);
        assert_eq!(instant_secs(&fhir_instant(t)), Some(1_796_000_000));
        assert_eq!(instant_secs("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(instant_secs("nonsense"), None);
    }

    #[test]
    fn a_summary_is_an_initial_a_family_name_and_a_birth_year() {
        let p =
            json!({"name": [{"family": "Smith", "given": ["John"]}], "birthDate": "1980-02-03"});
        assert_eq!(summary(&p), "J. Smith, born 1980");
        assert_eq!(summary(&json!({"birthDate": "1980"})), "born 1980");
        assert_eq!(summary(&json!({})), "");
    }

    #[test]
    fn task_kinds_follow_their_codes() {
        let task =
            |code: &str| json!({"code": {"coding": [{"system": TASK_SYSTEM, "code": code}]}});
        assert_eq!(kind_of(&task("match-review")), Some(Kind::Match));
        assert_eq!(
            kind_of(&task("demographics-update")),
            Some(Kind::Demographics)
        );
        assert_eq!(kind_of(&task("delivery-failed")), Some(Kind::Delivery));
        let mut refused = task("match-review");
        refused["reasonCode"] = json!({"coding": [{"code": "delivery-precondition-failed"}]});
        assert_eq!(kind_of(&refused), Some(Kind::Delivery));
        assert_eq!(kind_of(&task("other")), None);
    }
}
