//! The API's one error type. The client gets a FHIR `OperationOutcome` with a stable
//! code and a message free of patient data; details go to the log. The domain's
//! errors (`AuthError`, `InviteError`, `ReviewError`) convert into it, and how each
//! is answered is written here, once.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use serde_json::json;

use crate::auth::AuthError;
use crate::auth::error::LOGIN_FAILED;
use crate::fhir::FHIR_JSON;
use crate::fhir::outcome::{Issue, IssueType};
use crate::http::outcome_response;
use crate::invitation::{InviteError, TRIES_LEFT_URL};
use crate::review::{self, ReviewError};

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
    /// Authentication or authorisation failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// An invitation could not be used.
    #[error(transparent)]
    Invite(#[from] InviteError),
    /// A review request failed.
    #[error(transparent)]
    Review(#[from] ReviewError),
}

impl ApiError {
    /// The answer of the API's own errors (the domain's are answered by
    /// [`auth_response`], [`invite_response`] and [`review_response`]).
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
            ApiError::Auth(_) | ApiError::Invite(_) | ApiError::Review(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                vec![Issue::error(
                    IssueType::Exception,
                    "Something went wrong; try again",
                )],
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = match self {
            ApiError::Auth(error) => return auth_response(error),
            ApiError::Invite(error) => return invite_response(error),
            ApiError::Review(error) => return review_response(error),
            other => other,
        };
        let (status, issues) = this.status_and_issues();
        if status.is_server_error() {
            // The error's Display carries no request content, only what failed.
            tracing::error!(error = %this, "request failed");
        }
        outcome_response(status, &issues)
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl IntoResponse for InviteError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl IntoResponse for ReviewError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// How authentication fails. The messages are fixed: none says whether an
/// account exists.
fn auth_response(error: AuthError) -> Response {
    let this = match error {
        AuthError::Database(error) => return ApiError::Database(error).into_response(),
        other => other,
    };
    let (status, code, message) = match &this {
        AuthError::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "login",
            "Sign in first; the session may have expired",
        ),
        AuthError::LoginFailed => (StatusCode::UNAUTHORIZED, "login", LOGIN_FAILED),
        AuthError::Forbidden => (
            StatusCode::FORBIDDEN,
            "forbidden",
            "Your role does not allow this",
        ),
        AuthError::CsrfRefused => (
            StatusCode::FORBIDDEN,
            "security",
            "The request did not come from this site's pages, or lacked their token",
        ),
        AuthError::Throttled { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "Too many failed attempts; try again later",
        ),
        // Database was answered above.
        AuthError::Internal(_) | AuthError::Database(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "Something went wrong; try again",
        ),
    };
    if status.is_server_error() {
        tracing::error!(error = %this, "authentication failed");
    }
    // IssueType has no security codes yet (login, security, throttled), and
    // fhir/outcome.rs belongs to another change; this is the same JSON shape.
    let body = json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": message}]
    });
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    if let AuthError::Throttled { retry_after_secs } = this {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs.max(1)),
        );
    }
    response
}

/// How the patient's side of an invitation fails. The messages are fixed and
/// name no patient.
fn invite_response(error: InviteError) -> Response {
    let (status, code, message) = match &error {
        InviteError::Auth(_) | InviteError::Database(_) => {
            return match error {
                InviteError::Auth(e) => auth_response(e),
                InviteError::Database(e) => ApiError::Database(e).into_response(),
                _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            };
        }
        InviteError::Invalid => (
            StatusCode::UNAUTHORIZED,
            "login",
            "This invitation link cannot be used; ask the clinic for a new one",
        ),
        InviteError::WrongBirthDate { .. } => (
            StatusCode::UNAUTHORIZED,
            "login",
            "The birth date does not match the invitation",
        ),
        InviteError::Locked => (
            StatusCode::LOCKED,
            "lock-error",
            "This invitation is locked; ask the clinic for a new one",
        ),
        InviteError::NotConfirmed => (
            StatusCode::FORBIDDEN,
            "forbidden",
            "Confirm your birth date first",
        ),
        InviteError::CrossSite => (
            StatusCode::FORBIDDEN,
            "security",
            "The request did not come from this site's pages",
        ),
    };
    let mut issue = json!({"severity": "error", "code": code, "diagnostics": message});
    if let InviteError::WrongBirthDate { tries_left } = error {
        issue["extension"] = json!([{"url": TRIES_LEFT_URL, "valueInteger": tries_left}]);
    }
    let body = json!({"resourceType": "OperationOutcome", "issue": [issue]});
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// How a review request fails. Messages carry no patient data.
fn review_response(error: ReviewError) -> Response {
    let (status, issue) = match error {
        ReviewError::Auth(e) => return auth_response(e),
        ReviewError::Database(e) => return ApiError::Database(e).into_response(),
        ReviewError::Reauthentication => {
            // No IssueType for it yet (as in `AuthError`): the same JSON shape.
            let body = json!({
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "login",
                    "diagnostics": "The password is not correct; nothing was decided"}]
            });
            let mut response = (StatusCode::UNAUTHORIZED, body.to_string()).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
            return response;
        }
        ReviewError::NotFound => (
            StatusCode::NOT_FOUND,
            Issue::error(IssueType::NotFound, "No such review item"),
        ),
        ReviewError::Stale => (
            StatusCode::PRECONDITION_FAILED,
            Issue::error(IssueType::Conflict, review::STALE).at("If-Match"),
        ),
        ReviewError::MissingIfMatch => (
            StatusCode::PRECONDITION_REQUIRED,
            Issue::error(
                IssueType::Required,
                "Send If-Match with the version of the item you read",
            )
            .at("If-Match"),
        ),
        ReviewError::Decided => (
            StatusCode::CONFLICT,
            Issue::error(IssueType::Conflict, "This item has already been decided"),
        ),
        ReviewError::Invalid(issue) => (StatusCode::UNPROCESSABLE_ENTITY, issue),
        ReviewError::Emr(ref reason) => {
            tracing::error!(error = %reason, "review: the EMR is unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Issue::error(
                    IssueType::Transient,
                    "The EMR is unavailable; nothing was decided; try again",
                ),
            )
        }
    };
    outcome_response(status, &[issue])
}
