//! `GET /api/forms/{id}`: the compiled form the browser renders.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::questionnaires;
use crate::state::AppState;

/// The `shared::form::CompiledForm` of `Questionnaire/{id}`, compiled at import.
pub(super) async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let body = questionnaires::compiled_form(&app.db, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
