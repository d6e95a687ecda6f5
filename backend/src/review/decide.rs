//! A decision on an item, in one write transaction under the store's lock (see
//! the module's header).

use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::SqliteConnection;

use super::item::{changed_elements, demographics, proposed_patient, resolve_pending};
use super::queue::last_message;
use super::{
    IntakeRow, Kind, ReviewError, Target, candidates_of, intake_of, intake_row, is_open, kind_of,
};
use crate::audit::{self, Reference};
use crate::auth::Principal;
use crate::clock::fhir_instant;
use crate::fhir::outcome::{Issue, IssueType};
use crate::intake::{
    Author, Extras, Subject, TASK_SYSTEM, changes, delivery_bundle, inline_requests,
};
use crate::state::App;
use crate::store::{Outcome, Request, Stored};

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
    pub(crate) fn labels<'a>(&'a self, candidates: &'a [String]) -> Vec<(&'a str, bool)> {
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

pub(crate) fn check_task(stored: &Stored, if_match: i64) -> Result<Kind, ReviewError> {
    let kind = kind_of(&stored.resource).ok_or(ReviewError::NotFound)?;
    if stored.version_id != if_match {
        return Err(ReviewError::Stale);
    }
    if !is_open(&stored.resource) {
        return Err(ReviewError::Decided);
    }
    Ok(kind)
}

pub(crate) fn invalid(message: &str, at: &str) -> ReviewError {
    ReviewError::Invalid(Issue::error(IssueType::BusinessRule, message).at(at))
}

/// The Task as decided by `who`: `status`, `owner`, `lastModified`, and `output`
/// naming the decision (and the patient).
pub(crate) fn decided_task(
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
pub(crate) fn with_verifier(mut bundle: Value, who: &Principal) -> Value {
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
pub(crate) struct Plan {
    /// The Task's new version.
    pub(crate) task: Value,
    /// The Task's new status.
    pub(crate) status: &'static str,
    /// The delivery Bundle, if the decision delivers.
    pub(crate) delivery: Option<Value>,
    /// The intake's new status and patient.
    pub(crate) intake: Option<(&'static str, Option<String>)>,
    /// A dead message put back into the outbox.
    pub(crate) retry: Option<i64>,
    /// Patients touched, for the audit trail.
    pub(crate) touched: Vec<String>,
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
    let facts = Facts {
        who,
        now: &now,
        kind,
        intake: &intake,
        row: &row,
        delivered_status,
    };
    let mut plan = plan(app, &mut tx, &facts, task, decision, remote_chart).await?;
    let mut outcomes = Vec::new();
    if let Some(bundle) = plan.delivery.take() {
        outcomes =
            write_delivery(app, &mut tx, &facts, &bundle, decision, local, &mut plan).await?;
        plan.delivery = Some(bundle);
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

/// What a decision reads before it plans: who decides, when, the item's kind and
/// its intake.
#[derive(Clone, Copy)]
struct Facts<'a> {
    who: &'a Principal,
    now: &'a str,
    kind: Kind,
    intake: &'a str,
    row: &'a IntakeRow,
    /// The intake's state once its delivery is written: `delivered` with the
    /// embedded store, else `accepted` (the outbox delivers).
    delivered_status: &'static str,
}

/// What the decision does, read under the lock: the Task's new version, the
/// delivery, the intake's new state, a dead message to retry. Refuses a decision
/// the item's kind does not allow.
async fn plan(
    app: &App,
    tx: &mut SqliteConnection,
    facts: &Facts<'_>,
    task: Value,
    decision: &Decision,
    remote_chart: Option<Value>,
) -> Result<Plan, ReviewError> {
    let Facts {
        who,
        now,
        kind,
        intake,
        row,
        delivered_status,
    } = *facts;
    Ok(match decision {
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
                task: decided_task(task, who, "completed", now, "link", Some(&reference)),
                status: "completed",
                delivery: Some(deliver(row, intake, &subject, who, now)?),
                intake: Some((delivered_status, Some(reference.clone()))),
                retry: None,
                touched: vec![reference],
            }
        }
        // The Task's output names the new Patient once it has an id (below).
        Decision::Create => Plan {
            task: decided_task(task, who, "completed", now, "create", None),
            status: "completed",
            delivery: Some(deliver(row, intake, &Subject::New, who, now)?),
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
                task: decided_task(task, who, "in-progress", now, "not-this", Some(&reference)),
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
            let mut done = decided_task(task, who, "completed", now, "update", None);
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
            let (message, ..) = last_message(&mut *tx, intake)
                .await?
                .filter(|(_, _, state, ..)| state == "dead")
                .ok_or_else(|| invalid("This intake has no failed delivery to retry", "action"))?;
            Plan {
                task: decided_task(task, who, "completed", now, "retry", None),
                status: "completed",
                delivery: None,
                intake: Some(("accepted", row.patient.clone())),
                retry: Some(message),
                touched: row.patient.iter().cloned().collect(),
            }
        }
    })
}

/// Writes the decision's delivery: with the embedded store, its resources here
/// and now and the outbox message recorded as delivered (as the pipeline does);
/// otherwise a message for the outbox. A created Patient is named in the Task's
/// output and the plan. What the store wrote.
async fn write_delivery(
    app: &App,
    tx: &mut SqliteConnection,
    facts: &Facts<'_>,
    bundle: &Value,
    decision: &Decision,
    local: bool,
    plan: &mut Plan,
) -> Result<Vec<Outcome>, ReviewError> {
    let (intake, now) = (facts.intake, facts.now);
    // The delivery: with the embedded store, its resources written here and now
    // and the outbox message recorded as delivered (as the pipeline does);
    // otherwise a message for the outbox.
    if local {
        let written = app.store.apply_in(tx, store_writes(bundle)?).await?;
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
            plan.intake = Some((facts.delivered_status, Some(p)));
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
        .bind(intake)
        .bind(bundle.to_string())
        .bind(now)
        .bind(Value::Array(locations).to_string())
        .execute(&mut *tx)
        .await?;
        Ok(written)
    } else {
        sqlx::query("INSERT INTO outbox (intake_id, payload, next_attempt_at) VALUES (?, ?, 0)")
            .bind(intake)
            .bind(bundle.to_string())
            .execute(&mut *tx)
            .await?;
        Ok(Vec::new())
    }
}

/// The stored Patients among a Task's candidates, by id.
pub(crate) fn candidate_ids(task: &Value) -> Vec<String> {
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
pub(crate) async fn is_candidate(
    app: &App,
    task: &Value,
    patient: &str,
) -> Result<bool, ReviewError> {
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
pub(crate) fn without_candidate(mut task: Value, reference: &str) -> Option<Value> {
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
pub(crate) fn check_elements(
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
pub(crate) fn update_bundle(
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
pub(crate) fn store_writes(bundle: &Value) -> Result<Vec<Request>, ReviewError> {
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
pub(crate) async fn finish(
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
pub(crate) fn deliver(
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
