//! `/fhir/QuestionnaireResponse`: checking answers against their form.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::answers::{self, AnswerProblem};
use shared::form::CompiledForm;
use shared::i18n::EN;
use shared::response::QuestionnaireResponse;

use crate::app::AppState;
use crate::error::ApiError;
use crate::fhir::FHIR_JSON;
use crate::fhir::outcome::{self, Issue, IssueType, Severity};
use crate::http::{Json, decode};
use crate::questionnaires;

/// `POST /fhir/QuestionnaireResponse/$validate`, with the response as the body or
/// as the `resource` parameter of a `Parameters`. 200 with an `OperationOutcome`:
/// one error per problem, the item's linkId in `expression`; or one information
/// issue when all is well. 4xx when the body is not a response to a known form.
#[tracing::instrument(skip_all)]
pub(super) async fn validate(
    State(app): State<AppState>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let resource = match body.get("resourceType").and_then(serde_json::Value::as_str) {
        Some("Parameters") => body
            .get("parameter")
            .and_then(serde_json::Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("name").and_then(|n| n.as_str()) == Some("resource"))
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
    let response: QuestionnaireResponse = decode(resource.to_string().as_bytes())?;
    let form = form_of(&app, &response).await?;
    let problems = answers::validate(&form.form, &response);
    tracing::info!(issues = problems.len(), "questionnaire response validated");
    let issues: Vec<Issue> = if problems.is_empty() {
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
    let mut answer = (StatusCode::OK, outcome::to_json(&issues)).into_response();
    answer
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    Ok(answer)
}

/// The compiled form a response answers: `Questionnaire/{id}`, or a canonical URL
/// (with or without `|version`).
async fn form_of(
    app: &AppState,
    response: &QuestionnaireResponse,
) -> Result<CompiledForm, ApiError> {
    let unknown = || {
        ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::NotFound,
                "The Questionnaire this response answers is not on this server",
            )
            .at("QuestionnaireResponse.questionnaire"),
        ])
    };
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
            let found = questionnaires::search_by_url(&app.db, url).await?;
            let first = found.first().ok_or_else(unknown)?;
            serde_json::from_str::<serde_json::Value>(first)
                .ok()
                .and_then(|q| q.get("id").and_then(|i| i.as_str()).map(str::to_owned))
                .ok_or_else(unknown)?
        }
    };
    let compiled = questionnaires::compiled_form(&app.db, &id)
        .await?
        .ok_or_else(unknown)?;
    serde_json::from_str(&compiled).map_err(|_| unknown())
}

fn to_issue(link_id: &str, problem: &AnswerProblem) -> Issue {
    let code = match problem {
        AnswerProblem::Required => IssueType::Required,
        AnswerProblem::TooLong(_) | AnswerProblem::FileTooLarge(_) => IssueType::TooLong,
        AnswerProblem::UnknownItem
        | AnswerProblem::NotAQuestion
        | AnswerProblem::TooManyAnswers => IssueType::Structure,
        AnswerProblem::NotEnabled => IssueType::BusinessRule,
        _ => IssueType::Value,
    };
    Issue::error(code, (EN.answer_problem)(problem)).at(link_id)
}
