//! `/fhir/QuestionnaireResponse`: checking answers against their form, and
//! extracting the resources they describe.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::answers::{self, AnswerProblem};
use shared::i18n::EN;
use shared::response::QuestionnaireResponse;

use super::extract::Actor;
use crate::api::error::ApiError;
use crate::api::extract::{Json, decode};
use crate::clock::fhir_instant;
use crate::fhir::FHIR_JSON;
use crate::fhir::extract::{self, RandomIds};
use crate::fhir::outcome::{self, Issue, IssueType, Severity};
use crate::questionnaires::CachedForm;
use crate::state::AppState;

/// The most issues `$validate` lists.
pub(super) const MAX_ISSUES: usize = 100;

/// `POST /fhir/QuestionnaireResponse/$validate`, with the response as the body or
/// as the `resource` parameter of a `Parameters`. 200 with an `OperationOutcome`:
/// one error per problem (at most [`MAX_ISSUES`]: its structure as FHIR R4, `status`
/// and unknown elements included, then its answers, the item's linkId in
/// `expression`); or one information issue when all is well. 4xx when the body is
/// not a response to a known form, 422 when an answer is too costly to check.
#[tracing::instrument(skip_all)]
pub(super) async fn validate(
    State(app): State<AppState>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let (resource, questionnaire) = inputs(body)?;
    validated(&app, resource, questionnaire).await
}

/// `POST /fhir/QuestionnaireResponse/{id}/$validate`: the same, for a stored
/// response (a read of it, on the record).
#[tracing::instrument(skip_all)]
pub(super) async fn validate_stored(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let resource = stored(&app, &actor, &id).await?;
    validated(&app, resource, None).await
}

async fn validated(
    app: &AppState,
    resource: serde_json::Value,
    questionnaire: Option<serde_json::Value>,
) -> Result<Response, ApiError> {
    let mut issues: Vec<Issue> = Vec::new();
    if let Err(issue) = crate::fhir::resource::check("QuestionnaireResponse", &resource) {
        let at = issue.expression.clone().map_or_else(
            || "QuestionnaireResponse".to_owned(),
            |e| format!("QuestionnaireResponse.{e}"),
        );
        issues.push(issue.at(at));
    }
    // An answer the server would not spend the time to check: refused (422),
    // not reported as checked.
    let mut status = StatusCode::OK;
    let mut kept = Vec::new();
    // Answers are checked when the structure lets the response be read at all.
    match decode_response(&resource) {
        Ok(response) => {
            let form = match questionnaire {
                Some(q) => given_form(q)?,
                None => form_of(app, &response).await?,
            };
            let (problems, unchecked) = problems(app, &form, &response).await?;
            if problems
                .iter()
                .any(|p| p.problem == AnswerProblem::TooCostly)
            {
                status = StatusCode::UNPROCESSABLE_ENTITY;
            }
            issues.extend(problems.iter().map(|p| to_issue(&p.link_id, &p.problem)));
            kept.extend(unchecked.into_iter().map(kept_unchecked));
        }
        Err(e) if issues.is_empty() => return Err(e),
        Err(_) => {}
    }
    tracing::info!(issues = issues.len(), "questionnaire response validated");
    if issues.is_empty() {
        issues.push(Issue {
            severity: Severity::Information,
            code: IssueType::Informational,
            diagnostics: "The response is valid for its Questionnaire".into(),
            expression: None,
        });
    } else if issues.len() > MAX_ISSUES {
        // A response of 240,000 unknown items answered 25 MB (issue 21): the
        // first issues, and how many more there are.
        let more = issues.len() - MAX_ISSUES;
        issues.truncate(MAX_ISSUES);
        issues.push(Issue {
            severity: Severity::Information,
            code: IssueType::TooLong,
            diagnostics: format!("{more} more issues are not listed; correct these first"),
            expression: None,
        });
    }
    issues.extend(kept);
    Ok(fhir_json(status, outcome::to_json(&issues)))
}

/// `POST /fhir/QuestionnaireResponse/$extract` (SDC), with the response as the
/// body or as the `questionnaire-response` (or `resource`) parameter, and the
/// form as the optional `questionnaire` parameter (else the one the response
/// names, from this server). The answers are checked first, as `$validate` does:
/// problems are a 422 naming each linkId. Then 200 with a `transaction` Bundle of
/// the extracted resources; when some metadata could not be used, a `Parameters`
/// with the Bundle as `return` and the warnings as `issues`, as SDC's operation
/// defines.
#[tracing::instrument(skip_all)]
pub(super) async fn extract(
    State(app): State<AppState>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let (resource, questionnaire) = inputs(body)?;
    extracted(&app, &resource, questionnaire).await
}

/// `POST /fhir/QuestionnaireResponse/{id}/$extract`: the same, for a stored
/// response (a read of it, on the record). Nothing is stored.
#[tracing::instrument(skip_all)]
pub(super) async fn extract_stored(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let resource = stored(&app, &actor, &id).await?;
    extracted(&app, &resource, None).await
}

async fn extracted(
    app: &AppState,
    resource: &serde_json::Value,
    questionnaire: Option<serde_json::Value>,
) -> Result<Response, ApiError> {
    let response = decode_response(resource)?;
    let (_, extraction) = match questionnaire {
        Some(q) => {
            let form = given_form(q)?;
            checked_extraction_with(app, &form, &response).await?
        }
        None => checked_extraction(app, &response).await?,
    };
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

/// A stored QuestionnaireResponse, its reading recorded.
async fn stored(app: &AppState, actor: &Actor, id: &str) -> Result<serde_json::Value, ApiError> {
    let stored = app
        .store
        .read("QuestionnaireResponse", id)
        .await?
        .ok_or(ApiError::NotFound)?;
    actor
        .record(
            app,
            crate::audit::Interaction::Read,
            crate::audit::touched(&stored.resource),
        )
        .await?;
    Ok(stored.resource)
}

/// A Questionnaire sent with the request (SDC's `questionnaire` parameter),
/// compiled as a stored one would be; nothing is stored.
fn given_form(questionnaire: serde_json::Value) -> Result<Arc<CachedForm>, ApiError> {
    let at = |issue: Issue| {
        let path = issue.expression.clone().map_or_else(
            || "Parameters.parameter.where(name='questionnaire')".to_owned(),
            |e| format!("Parameters.parameter.where(name='questionnaire').resource.{e}"),
        );
        issue.at(path)
    };
    let parsed = crate::fhir::questionnaire::parse_value(questionnaire.clone())
        .map_err(|issue| ApiError::Unprocessable(vec![at(issue)]))?;
    let compiled = crate::fhir::questionnaire::compile(&parsed, "given")
        .map_err(|issues| ApiError::Unprocessable(issues.into_iter().map(at).collect()))?;
    Ok(Arc::new(CachedForm {
        id: "given".to_owned(),
        version_id: 0,
        questionnaire,
        compiled,
    }))
}

/// What the form's rules say is wrong with `response`.
///
/// FHIRPath's `today()` on the server is the latest date anywhere (the patient's
/// zone is not known), as the demographics rules take it. A calculated value the
/// browser worked out with its own date (an age, say) may be a day behind that:
/// it is refused only if it matches neither the latest nor the earliest date on
/// Earth.
///
/// Run on the blocking pool: a form's rules can take a while on a large
/// response, and the async workers must stay free for everyone else's requests
/// (issue 21: three costly checks in flight made `/api/health` take 42 s).
async fn problems(
    app: &AppState,
    form: &Arc<CachedForm>,
    response: &QuestionnaireResponse,
) -> Result<(Vec<answers::AnswerIssue>, Vec<answers::Unchecked>), ApiError> {
    let (app, form, response) = (app.clone(), form.clone(), response.clone());
    off_workers(move || problems_now(&app, &form, &response)).await
}

/// Runs `work` on the blocking pool; its panic goes on as a panic (the
/// catch-panic layer answers 500).
pub(super) async fn off_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Ok(value),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => Err(ApiError::Unavailable),
    }
}

fn problems_now(
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
    checked_extraction_with(app, &form, response).await
}

/// [`checked_extraction`] against `form`.
async fn checked_extraction_with(
    app: &AppState,
    form: &Arc<CachedForm>,
    response: &QuestionnaireResponse,
) -> Result<(serde_json::Value, extract::Extraction), ApiError> {
    let (problems, unchecked) = problems(app, form, response).await?;
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
    let form = Arc::clone(form);
    let (extraction, response_json) = off_workers(move || {
        let extraction = extract::extract(&form.questionnaire, &response_json, &RandomIds, &now);
        (extraction, response_json)
    })
    .await?;
    let mut extraction = extraction.map_err(ApiError::Unprocessable)?;
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

/// The response in a request body (the body itself, or the `resource` or
/// `questionnaire-response` parameter of a `Parameters`), and the
/// `questionnaire` parameter if sent.
fn inputs(
    body: serde_json::Value,
) -> Result<(serde_json::Value, Option<serde_json::Value>), ApiError> {
    if body.get("resourceType").and_then(serde_json::Value::as_str) != Some("Parameters") {
        return Ok((body, None));
    }
    let parameters = body
        .get("parameter")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let named = |names: &[&str]| {
        parameters
            .iter()
            .find(|p| {
                p.get("name")
                    .and_then(|n| n.as_str())
                    .is_some_and(|n| names.contains(&n))
            })
            .and_then(|p| p.get("resource"))
            .cloned()
    };
    let resource = named(&["resource", "questionnaire-response"]).ok_or_else(|| {
        ApiError::Unprocessable(vec![
            Issue::error(IssueType::Required, "The Parameters have no 'resource'")
                .at("Parameters.parameter"),
        ])
    })?;
    Ok((resource, named(&["questionnaire"])))
}

/// `resource` read as a QuestionnaireResponse (422 when it is not one).
fn decode_response(resource: &serde_json::Value) -> Result<QuestionnaireResponse, ApiError> {
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
        AnswerProblem::TooCostly => IssueType::TooCostly,
        AnswerProblem::UnknownItem
        | AnswerProblem::NotAQuestion
        | AnswerProblem::TooManyAnswers => IssueType::Structure,
        AnswerProblem::NotEnabled | AnswerProblem::NotCalculated => IssueType::BusinessRule,
        _ => IssueType::Value,
    };
    Issue::error(code, (EN.answer_problem)(problem)).at(link_id)
}
