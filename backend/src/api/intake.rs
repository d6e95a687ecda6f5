//! `POST /api/intakes`: a patient's submitted QuestionnaireResponse, checked,
//! matched, decided and handed to the outbox; `GET /api/intakes/{id}`: where it
//! stands.

use std::time::Duration;

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use shared::response::QuestionnaireResponse;

use super::questionnaire_response::checked_extraction;
use crate::api::error::ApiError;
use crate::api::extract::{Json, decode};
use crate::auth::Principal;
use crate::fhir::outcome::{Issue, IssueType};
use crate::intake::{Accepted, IntakeError, Proof, Submission, Unverified};
use crate::invitation::InviteError;
use crate::kiosk::{Device, MaybeKiosk};
use crate::state::AppState;

/// How long the patient's request waits for the EMR to confirm before answering
/// "accepted" (the outbox keeps delivering after that).
const WAIT_FOR_DELIVERY: Duration = Duration::from_millis(800);

/// What an anonymous sender (the patient's phone, a kiosk) is told: that it was
/// received, under which id, and nothing of what was decided. "Linked" would tell
/// whoever typed someone's name and birth date that this person is the clinic's
/// patient.
fn receipt(a: &Accepted) -> Value {
    json!({"intake": a.intake, "status": "received"})
}

/// The whole receipt, for staff and system clients.
fn body(a: &Accepted) -> Value {
    json!({
        "intake": a.intake,
        "outcome": a.outcome.code(),
        "patient": a.patient,
        "status": a.status,
    })
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(
            Issue::error(
                IssueType::Required,
                "Send an Idempotency-Key header (1 to 128 visible characters), the same on every retry of this submission",
            )
            .at("Idempotency-Key"),
        ));
    }
    Ok(key.to_owned())
}

fn key_reused() -> ApiError {
    ApiError::Unprocessable(vec![
        Issue::error(
            IssueType::Duplicate,
            "This Idempotency-Key was already used for a different submission",
        )
        .at("Idempotency-Key"),
    ])
}

/// What the Provenance names as the device that sent an intake from a phone.
const PATIENT_APP: &str = "Intake patient app";

/// A kiosk may send only the forms assigned to it (`Questionnaire/{id}`).
async fn check_kiosk_form(
    app: &AppState,
    device: &Device,
    questionnaire: Option<&str>,
) -> Result<(), ApiError> {
    let forms = device.forms(&app.db).await?;
    let assigned = questionnaire
        .and_then(|q| q.strip_prefix("Questionnaire/"))
        .is_some_and(|id| forms.iter().any(|f| f == id));
    if assigned {
        return Ok(());
    }
    Err(ApiError::Unprocessable(vec![
        Issue::error(
            IssueType::BusinessRule,
            "This kiosk does not offer this form",
        )
        .at("QuestionnaireResponse.questionnaire"),
    ]))
}

/// `value` as canonical JSON text: object keys in order, numbers as their value
/// (`1.0`, `1` and `1e0` alike), no spaces. Equal content, equal text.
pub(crate) fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        Value::Number(n) => {
            let text = n.to_string();
            let normal = match text.parse::<i128>() {
                Ok(i) => i.to_string(),
                Err(_) => text.parse::<f64>().map_or(text, |f| format!("{f}")),
            };
            out.push_str(&normal);
        }
        other => out.push_str(&other.to_string()),
    }
}

/// What proves who an intake's patient is: an invitation (its token and the
/// birth date), a kiosk staff enrolled, a signed-in staff member, a token
/// allowed to link. Anything else (the public page, a token acting for nobody)
/// proves nothing, however well the typed details match a chart.
async fn proof_of(
    app: &AppState,
    principal: Option<&Principal>,
    kiosk: bool,
    invited: bool,
) -> Result<Proof, ApiError> {
    Ok(match principal.map(|p| p.kind) {
        _ if invited => Proof::Invitation,
        _ if kiosk => Proof::Kiosk,
        Some(crate::auth::PrincipalKind::User(_)) => Proof::Staff,
        Some(crate::auth::PrincipalKind::Token(id))
            if crate::auth::tokens::may_link(&app.db, id).await? =>
        {
            Proof::System
        }
        _ => Proof::None,
    })
}

/// `POST /api/intakes` with an `Idempotency-Key`: 201 `{intake, outcome,
/// patient, status}`, or 200 with the same answer for a key seen before; 422 with
/// an `OperationOutcome` (nothing stored) when the response is not valid.
///
/// From a kiosk (its device cookie), the form must be one of the kiosk's, the
/// Provenance names the kiosk as the device, and the intake is audited with the
/// kiosk as its agent; a cookie of a revoked kiosk is refused (401). (The device
/// is never taken from a header: a phone could claim to be a kiosk.)
///
/// With the invitation cookie (its birth date confirmed), the intake is the
/// invited patient's: linked to them without a match for a known patient, the
/// invitation used up in the same transaction, the cookie cleared.
#[tracing::instrument(skip_all)]
pub(super) async fn submit(
    State(app): State<AppState>,
    principal: Option<Extension<Principal>>,
    MaybeKiosk(kiosk): MaybeKiosk,
    headers: HeaderMap,
    uri: Uri,
    Json(payload): Json<Value>,
) -> Result<Response, ApiError> {
    let body = if principal.is_some() { body } else { receipt };
    let key = idempotency_key(&headers)?;
    // The content, not the text: a client's retry may order keys or write
    // numbers differently and is still the same submission.
    let mut canonical = String::new();
    canonical_json(&payload, &mut canonical);
    let body_sha256 = format!("{:x}", Sha256::digest(canonical.as_bytes()));
    drop(canonical);
    let text = payload.to_string();
    if let Some((accepted, sha)) = app.intakes.by_key(&key).await? {
        if sha != body_sha256 {
            return Err(key_reused());
        }
        return Ok((StatusCode::OK, axum::Json(body(&accepted))).into_response());
    }
    if payload.get("resourceType").and_then(Value::as_str) != Some("QuestionnaireResponse") {
        return Err(ApiError::Unprocessable(vec![
            Issue::error(IssueType::Invalid, "Send a QuestionnaireResponse").at("resourceType"),
        ]));
    }
    let invited = super::invitation::for_submission(
        &app,
        &headers,
        &uri,
        payload.get("questionnaire").and_then(Value::as_str),
    )
    .await?;
    // What `$validate` does for a bare QuestionnaireResponse, without writing
    // the body out a second time.
    drop(payload);
    let response: QuestionnaireResponse = decode(text.as_bytes())?;
    if response.status != "completed" && response.status != "amended" {
        return Err(ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::Value,
                "Only a completed QuestionnaireResponse can be submitted",
            )
            .at("QuestionnaireResponse.status"),
        ]));
    }
    if let Some(device) = &kiosk {
        check_kiosk_form(&app, device, response.questionnaire.as_deref()).await?;
    }
    let (mut response_json, extraction) = checked_extraction(&app, &response).await?;
    let proof = proof_of(
        &app,
        principal.as_ref().map(|p| &p.0),
        kiosk.is_some(),
        invited.is_some(),
    )
    .await?;
    // The chart's reader can tell verified from not; the sender cannot claim it.
    proof.stamp(&mut response_json);
    let patient = extraction.bundle["entry"]
        .as_array()
        .and_then(|entries| {
            entries
                .iter()
                .find(|e| e.pointer("/resource/resourceType") == Some(&json!("Patient")))
        })
        .and_then(|e| e.get("resource").cloned())
        .ok_or_else(|| {
            ApiError::Unprocessable(vec![
                Issue::error(
                    IssueType::BusinessRule,
                    "This form does not say who the patient is (no Patient can be extracted from it)",
                )
                .at("QuestionnaireResponse.questionnaire"),
            ])
        })?;
    let submission = Submission {
        key,
        body_sha256,
        questionnaire: response.questionnaire.clone().unwrap_or_default(),
        response: response_json,
        extras: crate::intake::Extras::of(&extraction.bundle),
        patient,
        device: kiosk
            .as_ref()
            .map_or_else(|| PATIENT_APP.to_owned(), |d| d.name.clone()),
        agent: kiosk.as_ref().map(Device::agent),
        invited,
        proof,
        may_link: proof.is_verified() || app.guard.unverified == Unverified::Link,
    };
    let invited = submission.invited.is_some();
    let accepted = match app.intakes.submit(submission).await {
        Ok(a) => a,
        Err(IntakeError::KeyReused) => return Err(key_reused()),
        Err(IntakeError::InvitationSpent) => return Err(InviteError::Invalid.into()),
        Err(IntakeError::Database(e)) => return Err(ApiError::Database(e)),
        Err(e @ (IntakeError::Emr(_) | IntakeError::Stopped)) => {
            tracing::error!(error = %e, "intake not accepted");
            return Err(ApiError::Unavailable);
        }
    };
    let status = if accepted.repeated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    // A system client hears back within a second: the EMR's confirmation if it
    // comes in time, else "accepted" (the outbox delivers it later, surely). An
    // anonymous sender is told nothing of that, so need not wait for it.
    let settled = if accepted.status == "accepted" && principal.is_some() {
        app.intakes
            .wait_settled(&accepted.intake, WAIT_FOR_DELIVERY)
            .await?
            .map(|a| Accepted {
                repeated: accepted.repeated,
                ..a
            })
            .unwrap_or(accepted)
    } else {
        accepted
    };
    let response = (status, axum::Json(body(&settled))).into_response();
    if invited {
        return super::invitation::spent(response);
    }
    Ok(response)
}

/// `GET /api/intakes/{id}`.
pub(super) async fn get(
    State(app): State<AppState>,
    actor: super::extract::Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let accepted = app.intakes.get(&id).await?.ok_or(ApiError::NotFound)?;
    let touched = accepted
        .patient
        .as_deref()
        .and_then(crate::audit::Reference::parse);
    actor
        .record(
            &app,
            crate::audit::Interaction::Read,
            touched.into_iter().collect(),
        )
        .await?;
    Ok(axum::Json(body(&accepted)).into_response())
}
