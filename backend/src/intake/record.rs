//! What the writer writes for a batch of decided intakes: their rows and outbox
//! messages in a few multi-row statements, their audit events, and, for the
//! embedded store, the delivery itself in the same transaction.

use std::collections::HashMap;

use serde_json::{Value, json};
use sqlx::SqliteConnection;

use super::bundle::{
    Subject, by, delivery_bundle, inline_requests, rewrite_references, subject_reference,
};
use super::job::{Context, Job, NewIntake};
use super::tasks::{TASK_SYSTEM, candidate_json, review_task, update_task};
use super::types::{
    Accepted, Decision, IntakeError, Invited, SUBMISSION_SYSTEM, Submission, UNVERIFIED_REASON,
};
use crate::store::{Request, Store};

/// What a batch writes, gathered to be written at once.
#[derive(Default)]
pub(crate) struct Rows {
    /// Resources for the store: intakes' deliveries, Tasks.
    pub(crate) stored: Vec<crate::store::Stored>,
    pub(crate) intakes: Vec<IntakeRow>,
    pub(crate) outbox: Vec<OutboxRow>,
    /// `Patient/{id}` of each intake of this batch that created one.
    pub(crate) created: HashMap<String, String>,
    /// The audit trail's record of each intake: who sent patient data (the
    /// patient's phone, a kiosk), and what it touched.
    pub(crate) audits: Vec<crate::audit::Event>,
    /// Invitations used: (invitation, intake, `Patient/{id}` when known).
    pub(crate) invitations: Vec<(String, String, Option<String>)>,
}

pub(crate) struct IntakeRow {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) body_sha256: String,
    pub(crate) received_at: String,
    pub(crate) questionnaire: String,
    pub(crate) outcome: Decision,
    pub(crate) patient: Option<String>,
    pub(crate) status: &'static str,
    pub(crate) response: String,
    pub(crate) match_result: String,
    /// The Patient extracted, and who sent it, for a later decision.
    pub(crate) extracted: Option<String>,
    pub(crate) device: Option<String>,
}

pub(crate) struct OutboxRow {
    pub(crate) intake_id: String,
    pub(crate) payload: String,
    /// The locations written, when delivered with the accept.
    pub(crate) delivered: Option<Value>,
    pub(crate) at: String,
}

/// Most rows in one multi-row statement (12 parameters a row: well under
/// SQLite's limit of 32,766).
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

impl Rows {
    pub(crate) async fn write(
        &self,
        ctx: &Context,
        tx: &mut SqliteConnection,
    ) -> Result<(), sqlx::Error> {
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
pub(crate) fn record(
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
pub(crate) fn intake_audit(
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
pub(crate) fn write_inline(
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
