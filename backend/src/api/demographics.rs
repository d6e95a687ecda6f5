//! `POST /api/demographics/validate`: the same rules the browser runs, on the server.

use axum::extract::State;
use shared::{Demographics, FieldIssue, Problem, ValidationContext};

use crate::api::error::ApiError;
use crate::api::extract::Json;
use crate::fhir::outcome::{Issue, IssueType};
use crate::state::AppState;

/// 200 with the demographics as the server will store them (trimmed, phone
/// normalised), or 422 with an `OperationOutcome` naming each field in `expression`.
#[tracing::instrument(skip_all)]
pub(super) async fn validate(
    State(app): State<AppState>,
    Json(demographics): Json<Demographics>,
) -> Result<axum::Json<Demographics>, ApiError> {
    let context = ValidationContext {
        today: app.clock.latest_date_on_earth(),
    };
    match demographics.parse(&context) {
        Ok(valid) => Ok(axum::Json(valid.to_demographics())),
        Err(issues) => {
            tracing::info!(issues = issues.len(), "demographics refused");
            Err(ApiError::Unprocessable(
                issues.iter().map(to_issue).collect(),
            ))
        }
    }
}

fn to_issue(issue: &FieldIssue) -> Issue {
    let code = match issue.problem {
        Problem::Required => IssueType::Required,
        Problem::TooLong | Problem::TooMany => IssueType::TooLong,
        _ => IssueType::Value,
    };
    Issue::error(
        code,
        shared::demographics::message(issue.field, issue.problem),
    )
    .at(issue.field.json_name())
}
