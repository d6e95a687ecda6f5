//! `/fhir/Questionnaire`: store, read and find the clinic's forms.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::ApiError;
use crate::fhir::{FHIR_JSON, bundle};
use crate::http::Json;
use crate::questionnaires::{self, SaveError};

/// `PUT /fhir/Questionnaire/{id}`: create or update. 201 or 200 with the stored
/// resource; 422 with an `OperationOutcome` naming the path if it cannot be used.
#[tracing::instrument(skip_all, fields(questionnaire.id = %id))]
pub(super) async fn put(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Json(resource): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let saved = questionnaires::save(&app.db, app.clock.as_ref(), &id, resource)
        .await
        .map_err(|e| match e {
            SaveError::Invalid(issues) => ApiError::Unprocessable(issues),
            SaveError::Database(e) => ApiError::Database(e),
        })?;
    tracing::info!(
        version = saved.version_id,
        warnings = saved.warnings.len(),
        "questionnaire saved"
    );
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = fhir_response(status, saved.body, saved.version_id);
    if let Ok(location) = HeaderValue::from_str(&format!(
        "/fhir/Questionnaire/{id}/_history/{}",
        saved.version_id
    )) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /fhir/Questionnaire/{id}`.
pub(super) async fn read(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (body, version) = questionnaires::read(&app.db, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(fhir_response(StatusCode::OK, body, version))
}

/// The search parameters understood.
#[derive(Debug, Deserialize)]
pub(super) struct Search {
    url: Option<String>,
}

/// `GET /fhir/Questionnaire?url=…`: a searchset Bundle.
pub(super) async fn search(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(search): Query<Search>,
) -> Result<Response, ApiError> {
    let Some(url) = search.url else {
        return Err(ApiError::Unprocessable(vec![
            crate::fhir::outcome::Issue::error(
                crate::fhir::outcome::IssueType::NotSupported,
                "Search Questionnaires by url",
            ),
        ]));
    };
    let found = questionnaires::search_by_url(&app.db, &url).await?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let body = bundle::searchset(&format!("http://{host}/fhir"), "Questionnaire", &found);
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    Ok(response)
}

fn fhir_response(status: StatusCode, body: String, version: i64) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{version}\"")) {
        headers.insert(header::ETAG, etag);
    }
    response
}
