//! The API's one error type. The client gets a FHIR `OperationOutcome` with a stable
//! code and a message free of patient data; details go to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::fhir::FHIR_JSON;
use crate::fhir::outcome::{self, Issue, IssueType};

/// Everything an API handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not well-formed JSON.
    #[error("malformed JSON")]
    Malformed(Issue),
    /// Well-formed, but with a value of the wrong type or shape.
    #[error("unprocessable content")]
    Unprocessable(Vec<Issue>),
    /// The body is larger than the limit.
    #[error("body too large")]
    TooLarge,
    /// A content type the route does not read.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// No such route or resource.
    #[error("not found")]
    NotFound,
    /// The request is missing something it needs (a header).
    #[error("bad request")]
    BadRequest(Issue),
    /// A service the request needs is not answering; nothing was stored.
    #[error("service unavailable")]
    Unavailable,
    /// A condition of the request did not hold (a stale `If-Match`).
    #[error("precondition failed")]
    PreconditionFailed(Issue),
    /// The request conflicts with what is stored (a name that is taken).
    #[error("conflict")]
    Conflict(Issue),
    /// The database did not answer.
    #[error("database unavailable: {0}")]
    Database(#[from] sqlx::Error),
}

impl ApiError {
    fn status_and_issues(&self) -> (StatusCode, Vec<Issue>) {
        match self {
            ApiError::Malformed(issue) => (StatusCode::BAD_REQUEST, vec![issue.clone()]),
            ApiError::Unprocessable(issues) => (StatusCode::UNPROCESSABLE_ENTITY, issues.clone()),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                vec![Issue::error(
                    IssueType::TooLong,
                    "The request body is larger than this server accepts",
                )],
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                vec![Issue::error(
                    IssueType::NotSupported,
                    "Send JSON, with Content-Type application/json or application/fhir+json",
                )],
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                vec![Issue::error(
                    IssueType::NotFound,
                    "No such resource or operation",
                )],
            ),
            ApiError::BadRequest(issue) => (StatusCode::BAD_REQUEST, vec![issue.clone()]),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                vec![Issue::error(
                    IssueType::Transient,
                    "The service is unavailable; nothing was stored; try again",
                )],
            ),
            ApiError::PreconditionFailed(issue) => {
                (StatusCode::PRECONDITION_FAILED, vec![issue.clone()])
            }
            ApiError::Conflict(issue) => (StatusCode::CONFLICT, vec![issue.clone()]),
            ApiError::Database(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                vec![Issue::error(
                    IssueType::Transient,
                    "The database is unavailable; try again",
                )],
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, issues) = self.status_and_issues();
        if status.is_server_error() {
            // The error's Display carries no request content, only what failed.
            tracing::error!(error = %self, "request failed");
        }
        outcome_response(status, &issues)
    }
}

/// A response whose body is an `OperationOutcome`.
pub fn outcome_response(status: StatusCode, issues: &[Issue]) -> Response {
    let mut response = (status, outcome::to_json(issues)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}
