//! How authentication fails, answered as an `OperationOutcome` like every other
//! API error. The messages are fixed: none says whether an account exists.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::fhir::FHIR_JSON;

/// The one message of every failed login, whatever failed.
pub(crate) const LOGIN_FAILED: &str = "The username or password is not correct";

/// Everything authentication can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No session or token, or one that has expired (401).
    #[error("not signed in")]
    Unauthenticated,
    /// Wrong username or password, or a disabled account (401, [`LOGIN_FAILED`]).
    #[error("login failed")]
    LoginFailed,
    /// Signed in, but the role does not allow this (403).
    #[error("forbidden for this role")]
    Forbidden,
    /// The CSRF token or the Origin did not match (403).
    #[error("cross-site request refused")]
    CsrfRefused,
    /// Too many failures for the name or the address (429).
    #[error("too many attempts")]
    Throttled {
        /// Seconds until the next attempt can succeed.
        retry_after_secs: u64,
    },
    /// Something in the request other than the credentials (a bad body).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The database did not answer.
    #[error("database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    /// Something that should not fail did (the random source, the hasher).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let this = match self {
            AuthError::Api(error) => return error.into_response(),
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
            // Api and Database were answered above.
            AuthError::Internal(_) | AuthError::Api(_) | AuthError::Database(_) => (
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
}
