//! `/fhir/QuestionnaireResponse`: checking answers against their form, and
//! extracting the resources they describe.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::answers::{self, AnswerProblem};
use shared::i18n::EN;
use shared::response::QuestionnaireResponse;

use crate::app::AppState;
use crate::clock::fhir_instant;
use crate::error::ApiError;
use crate::fhir::FHIR_JSON;
use crate::fhir::extract::{self, RandomIds};
use crate::fhir::outcome::{self, Issue, IssueType, Severity};
use crate::http::{Json, decode};
use crate::questionnaires::CachedForm;

/// `POST /fhir/QuestionnaireResponse/$validate`, with the response as the body or
/// as the `resource` parameter of a `Parameters`. 200 with an `OperationOutcome`:
/// one error per problem, the item's linkId in `expression`; or one information
/// issue when all is well. 4xx when the body is not a response to a known form.
#[tracing::instrument(skip_all)]
pub(super) async fn validate(
    State(app): State<AppState>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let response = response_in(body)?;
    let form = form_of(&app, &response).await?;
    let (problems, unchecked) = problems(&app, &form, &response);
    tracing::info!(issues = problems.len(), "questionnaire response validated");
    let mut issues: Vec<Issue> = if problems.is_empty() {
        vec![Issue {
            severity: Severity::Information,
            code: IssueType::Informational,
            diagnostics: "The response is valid for its Questionnaire".into(),
            expression: None,
        }]
    } else {
        problems
            .iter()
            .map(|p| to_issue(&p.link_id, &p.problem))
            .collect()
    };
    issues.extend(unchecked.into_iter().map(kept_unchecked));
    Ok(fhir_json(StatusCode::OK, outcome::to_json(&issues)))
}

/// `POST /fhir/QuestionnaireResponse/$extract` (SDC), with the response as the
/// body or as the `questionnaire-response` (or `resource`) parameter. The
/// answers are checked first, as `$validate` does: problems are a 422 naming each
/// linkId. Then 200 with a `transaction` Bundle of the extracted resources; when
/// some metadata could not be used, a `Parameters` with the Bundle as `return` and
/// the warnings as `issues`, as SDC's operation defines.
#[tracing::instrument(skip_all)]
pub(super) async fn extract(
    State(app): State<AppState>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let response = response_in(body)?;
    let (_, extraction) = checked_extraction(&app, &response).await?;
    let entries = extraction.bundle["entry"].as_array().map_or(0, Vec::len);
    tracing::info!(
        extract.entries = entries,
        extract.warnings = extraction.warnings.len(),
        "questionnaire response extracted"
    );
    let body = if extraction.warnings.is_empty() {
        extraction.bundle
    } else {
        let issues: serde_json::Value =
            serde_json::from_slice(&outcome::to_json(&extraction.warnings)).unwrap_or_default();
        serde_json::json!({"resourceType": "Parameters", "parameter": [
            {"name": "return", "resource": extraction.bundle},
            {"name": "issues", "resource": issues}
        ]})
    };
    Ok(fhir_json(StatusCode::OK, body.to_string().into_bytes()))
}

/// What the form's rules say is wrong with `response`, and the calculated
/// values sent that could not be checked (their expression could not be
/// evaluated: they are kept as sent, with a warning).
///
/// FHIRPath's `today()` on the server is the latest date anywhere (the patient's
/// zone is not known), as the demographics rules take it. A calculated value the
/// browser worked out with its own date (an age, say) may be a day behind that:
/// it is refused only if it matches neither the latest nor the earliest date on
/// Earth.
fn problems(
    app: &AppState,
    form: &CachedForm,
    response: &QuestionnaireResponse,
) -> (Vec<answers::AnswerIssue>, Vec<answers::Unchecked>) {
    let form = &form.compiled.form;
    let answers::Evaluation {
        issues: mut problems,
        unchecked,
        ..
    } = answers::evaluate_on(form, response, Some(app.clock.latest_date_on_earth()));
    if problems
        .iter()
        .any(|p| p.problem == AnswerProblem::NotCalculated)
    {
        let earlier =
            answers::evaluate_on(form, response, Some(app.clock.earliest_date_on_earth())).issues;
        problems.retain(|p| p.problem != AnswerProblem::NotCalculated || earlier.contains(p));
    }
    (problems, unchecked)
}

/// Checks `response` against its form (422 naming each linkId on a problem) and
/// extracts what it describes. The response as FHIR JSON, and the extraction.
pub(super) async fn checked_extraction(
    app: &AppState,
    response: &QuestionnaireResponse,
) -> Result<(serde_json::Value, extract::Extraction), ApiError> {
    let form = form_of(app, response).await?;
    let (problems, unchecked) = problems(app, &form, response);
    if !problems.is_empty() {
        tracing::info!(issues = problems.len(), "questionnaire response refused");
        return Err(ApiError::Unprocessable(
            problems
                .iter()
                .map(|p| to_issue(&p.link_id, &p.problem))
                .collect(),
        ));
    }
    let response_json = serde_json::to_value(response).map_err(|_| {
        ApiError::Unprocessable(vec![Issue::error(
            IssueType::Structure,
            "The response could not be read",
        )])
    })?;
    let now = fhir_instant(app.clock.now());
    let mut extraction = extract::extract(&form.questionnaire, &response_json, &RandomIds, &now)
        .map_err(ApiError::Unprocessable)?;
    if !unchecked.is_empty() {
        tracing::warn!(
            items = unchecked.len(),
            "calculated values kept unchecked: their expressions could not be evaluated"
        );
    }
    extraction
        .warnings
        .extend(unchecked.into_iter().map(kept_unchecked));
    Ok((response_json, extraction))
}

/// The warning for a value sent for a calculated item whose expression the
/// server could not evaluate: kept as sent, never refused (a correct score must
/// not cost a patient's intake).
fn kept_unchecked(item: answers::Unchecked) -> Issue {
    Issue {
        severity: Severity::Warning,
        code: IssueType::NotSupported,
        diagnostics: "This calculated value was kept as sent: the server could not evaluate \
                      the form's calculatedExpression to check it"
            .into(),
        expression: Some(item.link_id),
    }
}

fn fhir_json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut answer = (status, body).into_response();
    answer
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    answer
}

/// The QuestionnaireResponse in a request body: the body itself, or the
/// `resource` (or `questionnaire-response`) parameter of a `Parameters`.
pub(super) fn response_in(body: serde_json::Value) -> Result<QuestionnaireResponse, ApiError> {
    let resource = match body.get("resourceType").and_then(serde_json::Value::as_str) {
        Some("Parameters") => body
            .get("parameter")
            .and_then(serde_json::Value::as_array)
            .and_then(|ps| {
                ps.iter().find(|p| {
                    matches!(
                        p.get("name").and_then(|n| n.as_str()),
                        Some("resource" | "questionnaire-response")
                    )
                })
            })
            .and_then(|p| p.get("resource"))
            .cloned()
            .ok_or_else(|| {
                ApiError::Unprocessable(vec![
                    Issue::error(IssueType::Required, "The Parameters have no 'resource'")
                        .at("Parameters.parameter"),
                ])
            })?,
        _ => body,
    };
    if resource
        .get("resourceType")
        .and_then(serde_json::Value::as_str)
        != Some("QuestionnaireResponse")
    {
        return Err(ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::Invalid,
                "The resource is not a QuestionnaireResponse",
            )
            .at("resourceType"),
        ]));
    }
    decode(resource.to_string().as_bytes())
}

/// The form a response answers (`Questionnaire/{id}`, or a canonical URL with or
/// without `|version`), from the app's cache.
async fn form_of(
    app: &AppState,
    response: &QuestionnaireResponse,
) -> Result<Arc<CachedForm>, ApiError> {
    let id = questionnaire_id(app, response).await?;
    app.forms
        .form(&app.db, &id)
        .await?
        .ok_or_else(unknown_questionnaire)
}

fn unknown_questionnaire() -> ApiError {
    ApiError::Unprocessable(vec![
        Issue::error(
            IssueType::NotFound,
            "The Questionnaire this response answers is not on this server",
        )
        .at("QuestionnaireResponse.questionnaire"),
    ])
}

/// The id on this server of the Questionnaire a response answers.
async fn questionnaire_id(
    app: &AppState,
    response: &QuestionnaireResponse,
) -> Result<String, ApiError> {
    let unknown = unknown_questionnaire;
    let reference = response.questionnaire.as_deref().ok_or_else(|| {
        ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::Required,
                "The response does not say which Questionnaire it answers",
            )
            .at("QuestionnaireResponse.questionnaire"),
        ])
    })?;
    let id = match reference.strip_prefix("Questionnaire/") {
        Some(id) => id.to_owned(),
        None => {
            let url = reference.split('|').next().unwrap_or(reference);
            app.forms
                .id_by_url(&app.db, url)
                .await?
                .ok_or_else(unknown)?
        }
    };
    Ok(id)
}

fn to_issue(link_id: &str, problem: &AnswerProblem) -> Issue {
    let code = match problem {
        AnswerProblem::Required => IssueType::Required,
        AnswerProblem::TooLong(_) | AnswerProblem::FileTooLarge(_) => IssueType::TooLong,
        AnswerProblem::UnknownItem
        | AnswerProblem::NotAQuestion
        | AnswerProblem::TooManyAnswers => IssueType::Structure,
        AnswerProblem::NotEnabled | AnswerProblem::NotCalculated => IssueType::BusinessRule,
        _ => IssueType::Value,
    };
    Issue::error(code, (EN.answer_problem)(problem)).at(link_id)
}
