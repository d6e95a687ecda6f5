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
//!
//! Here: the kinds, the error, the roles, a Task's reading. `queue.rs` the queue,
//! `item.rs` one item in detail, `decide.rs` a decision.

mod decide;
mod item;
mod queue;

pub use decide::{Decided, Decision, decide, precheck};
pub use item::item;
pub use queue::queue;

use serde::Serialize;
use serde_json::Value;

use crate::auth::Role;
use crate::fhir::outcome::{Issue, IssueType};
use crate::intake::{SCORE_EXTENSION, SUBMISSION_SYSTEM, TASK_SYSTEM};
use crate::state::App;

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
    use super::queue::summary;
    use super::*;
    use serde_json::json;

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
