//! SDC `$populate`: a stored Questionnaire's QuestionnaireResponse, in progress,
//! prefilled from the patient's chart (the `patient` launch context, read from the
//! EMR: the embedded store or the remote one) through the form's `initial` values
//! and `initialExpression`s. The invitation's prefill is this same function.
//!
//! What this server cannot evaluate is refused, not skipped: a form with an
//! `itemPopulationContext`, `sourceQueries` or an `application/x-fhir-query`
//! expression is 422 `not-supported`, naming where.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::actor::Actor;
use crate::app::AppState;
use crate::audit::{self, Interaction};
use crate::error::ApiError;
use crate::fhir::outcome::{Issue, IssueType};
use crate::http::Json;
use crate::questionnaires::CachedForm;

/// `POST /fhir/Questionnaire/{id}/$populate` with a `Parameters`: `subject` (a
/// Patient reference) and/or `context` (`name` = `patient`, `content` a
/// reference or the Patient itself). 200 with a `Parameters` whose `response` is
/// the QuestionnaireResponse.
#[tracing::instrument(skip_all)]
pub(super) async fn by_id(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let form = app
        .forms
        .form(&app.db, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    populate_answer(&app, &actor, &form, &body).await
}

/// `POST /fhir/Questionnaire/$populate`: the same, the form named by the
/// `canonical` (or `identifier`-less `url`) parameter.
#[tracing::instrument(skip_all)]
pub(super) async fn by_canonical(
    State(app): State<AppState>,
    actor: Actor,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let canonical = parameter(&body, "canonical")
        .and_then(|p| {
            p.get("valueCanonical")
                .or_else(|| p.get("valueUri"))
                .and_then(Value::as_str)
        })
        .ok_or_else(|| {
            ApiError::Unprocessable(vec![
                Issue::error(
                    IssueType::Required,
                    "Name the form with the 'canonical' parameter, or POST to Questionnaire/{id}/$populate",
                )
                .at("Parameters.parameter"),
            ])
        })?;
    let url = canonical.split('|').next().unwrap_or(canonical);
    let not_here = || {
        ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::NotFound,
                "No Questionnaire with that canonical URL is on this server",
            )
            .at("Parameters.parameter.where(name='canonical')"),
        ])
    };
    let id = app
        .forms
        .id_by_url(&app.db, url)
        .await?
        .ok_or_else(not_here)?;
    let form = app.forms.form(&app.db, &id).await?.ok_or_else(not_here)?;
    populate_answer(&app, &actor, &form, &body).await
}

fn parameter<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body.get("parameter")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
}

async fn populate_answer(
    app: &AppState,
    actor: &Actor,
    form: &CachedForm,
    body: &Value,
) -> Result<Response, ApiError> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(ApiError::Unprocessable(vec![
            Issue::error(IssueType::Invalid, "Send a Parameters resource").at("resourceType"),
        ]));
    }
    let unsupported = unsupported_population(&form.questionnaire);
    if !unsupported.is_empty() {
        return Err(ApiError::Unprocessable(unsupported));
    }
    let patient = launch_patient(app, actor, body).await?;
    let subject = patient
        .as_ref()
        .and_then(|p| p.get("id").and_then(Value::as_str))
        .map(|id| format!("Patient/{id}"));
    let (_, response) = populate(
        &form.compiled.form,
        &format!("Questionnaire/{}", form.id),
        patient.as_ref(),
        subject.as_deref(),
    )?;
    tracing::info!(prefilled = patient.is_some(), "questionnaire populated");
    Ok(super::fhir::fhir_json(
        StatusCode::OK,
        &json!({"resourceType": "Parameters", "parameter": [
            {"name": "response", "resource": response}
        ]}),
    ))
}

/// The Patient of the launch context: `context` named `patient` (a reference or
/// the resource), else `subject`. Read from the EMR, its reading on the record.
async fn launch_patient(
    app: &AppState,
    actor: &Actor,
    body: &Value,
) -> Result<Option<Value>, ApiError> {
    let context = body
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("name").and_then(Value::as_str) == Some("context"))
        .find(|p| {
            p.get("part")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|part| {
                    part.get("name").and_then(Value::as_str) == Some("name")
                        && part.get("valueString").and_then(Value::as_str) == Some("patient")
                })
        });
    let content = context.and_then(|c| {
        c.get("part")?
            .as_array()?
            .iter()
            .find(|part| part.get("name").and_then(Value::as_str) == Some("content"))
    });
    if let Some(resource) = content.and_then(|c| c.get("resource")) {
        if resource.get("resourceType").and_then(Value::as_str) != Some("Patient") {
            return Err(ApiError::Unprocessable(vec![
                Issue::error(IssueType::Invalid, "The patient context must be a Patient")
                    .at("Parameters.parameter.where(name='context').part.where(name='content')"),
            ]));
        }
        return Ok(Some(resource.clone()));
    }
    let reference = content
        .and_then(|c| c.pointer("/valueReference/reference"))
        .or_else(|| parameter(body, "subject")?.pointer("/valueReference/reference"))
        .and_then(Value::as_str);
    let Some(reference) = reference else {
        return Ok(None);
    };
    let Some(id) = reference.strip_prefix("Patient/") else {
        return Err(ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::NotSupported,
                "The subject must be a Patient reference, Patient/{id}",
            )
            .at("Parameters.parameter.where(name='subject')"),
        ]));
    };
    let patient = app.emr.read_patient(id).await.map_err(|e| {
        tracing::error!(error = %e, "the patient's chart could not be read");
        ApiError::Unavailable
    })?;
    let patient = patient.ok_or_else(|| {
        ApiError::Unprocessable(vec![
            Issue::error(IssueType::NotFound, "No such Patient")
                .at("Parameters.parameter.where(name='subject')"),
        ])
    })?;
    actor
        .record(app, Interaction::Read, audit::touched(&patient))
        .await?;
    Ok(Some(patient))
}

/// The form's QuestionnaireResponse, in progress: its `initial` values, then its
/// `initialExpression`s with `%patient` bound to `patient` (when known). The one
/// prefill of the server: `$populate` and a patient's invitation both use it.
pub(crate) fn populate(
    form: &shared::form::Form,
    questionnaire: &str,
    patient: Option<&Value>,
    subject: Option<&str>,
) -> Result<(shared::draft::Draft, Value), ApiError> {
    let patient = patient.and_then(|p| shared::json::Json::parse(&p.to_string()));
    let launch: Vec<(&str, &shared::json::Json)> = patient.iter().map(|p| ("patient", p)).collect();
    let draft = shared::draft::Draft::initial_in(form, None, &launch);
    let response = draft.response(form, questionnaire.to_owned());
    let mut response = serde_json::to_value(&response).map_err(|_| ApiError::Unavailable)?;
    response["status"] = json!("in-progress");
    if let Some(subject) = subject {
        response["subject"] = json!({"reference": subject});
    }
    Ok((draft, response))
}

/// Where a Questionnaire asks for population this server does not do.
fn unsupported_population(questionnaire: &Value) -> Vec<Issue> {
    fn walk(value: &Value, path: &str, out: &mut Vec<Issue>) {
        match value {
            Value::Object(map) => {
                let url = map.get("url").and_then(Value::as_str).unwrap_or_default();
                let language = map
                    .get("language")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if url.ends_with("sdc-questionnaire-itemPopulationContext")
                    || url.ends_with("sdc-questionnaire-sourceQueries")
                    || language == "application/x-fhir-query"
                {
                    out.push(
                        Issue::error(
                            IssueType::NotSupported,
                            "This server does not populate from itemPopulationContext, sourceQueries or x-fhir-query yet",
                        )
                        .at(path.to_owned()),
                    );
                    return;
                }
                for (k, v) in map {
                    walk(v, &format!("{path}.{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(questionnaire, "Questionnaire", &mut out);
    out
}
