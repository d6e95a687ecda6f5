//! The Tasks an intake leaves for staff: a match to review, a refused or dead
//! delivery, proposed demographics changes.

use serde_json::{Value, json};

use super::changes;
use super::types::SUBMISSION_SYSTEM;
use crate::emr::Found;

pub(crate) fn candidate_json(f: &Found) -> Value {
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
        "model": c.explanation.model,
    })
}

pub(crate) const TASK_SYSTEM: &str = "urn:intake:task";

pub(crate) const SCORE_EXTENSION: &str = "urn:intake:fhir:StructureDefinition:match-score";

/// A Task asking staff which patient this intake belongs to.
pub(crate) fn review_task(id: &str, found: &[Found], now: &str) -> Value {
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

/// The review Task of an intake whose delivery was dead-lettered (the EMR kept
/// failing, or refused it for good): staff retry it once the EMR is right.
pub(crate) fn dead_delivery_task(id: &str, now: &str) -> Value {
    json!({
        "resourceType": "Task",
        "identifier": [{"system": SUBMISSION_SYSTEM, "value": id}],
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [{"system": TASK_SYSTEM, "code": "delivery-failed"}], "text": "The intake could not be delivered to the EMR"},
        "authoredOn": now,
    })
}

/// A Task proposing the intake's demographics where they really differ from the
/// chart (field by field, normalised as the matcher normalises: see [`changes`]),
/// or `None` when they agree.
pub(crate) fn update_task(
    id: &str,
    patient: &str,
    chart: &Value,
    intake: &Value,
    country: &str,
    now: &str,
) -> Option<Value> {
    let differing = changes::changed(chart, intake, country);
    if differing.is_empty() {
        return None;
    }
    let proposed = changes::proposal(intake, &differing);
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
            "type": {"coding": [{"system": TASK_SYSTEM, "code": "changed-element"}], "text": k.code()},
            "valueReference": {"reference": "#proposed"},
        })).collect::<Vec<_>>(),
    }))
}
