//! `/fhir/Questionnaire`: store, read and find the clinic's forms.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::api::extract::Json;
use crate::fhir::{FHIR_JSON, bundle};
use crate::questionnaires::{self, SaveError};
use crate::state::AppState;
use crate::store::bundle::Return;

/// `PUT /fhir/Questionnaire/{id}`: create or update. 201 or 200 with the stored
/// resource (or as `Prefer: return=…` asks); 422 with an `OperationOutcome`
/// naming the path if it cannot be used; `If-Match` honoured (412 for another
/// version, 400 for a malformed tag).
#[tracing::instrument(skip_all, fields(questionnaire.id = %id))]
pub(super) async fn put(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(resource): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let if_match = super::fhir::if_match(&headers)?;
    save(&app, &headers, &id, resource, if_match).await
}

/// `POST /fhir/Questionnaire`: a new form under an id the server chooses.
#[tracing::instrument(skip_all)]
pub(super) async fn create(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(mut resource): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    use crate::fhir::extract::IdGenerator as _;
    let id = crate::fhir::extract::RandomIds.uuid().replace('-', "");
    // A create ignores any id the client put in the body, as FHIR says.
    if let Some(fields) = resource.as_object_mut() {
        fields.remove("id");
    }
    save(&app, &headers, &id, resource, None).await
}

async fn save(
    app: &AppState,
    headers: &HeaderMap,
    id: &str,
    resource: serde_json::Value,
    if_match: Option<i64>,
) -> Result<Response, ApiError> {
    let saved = questionnaires::save_if(&app.db, app.clock.as_ref(), id, resource, if_match)
        .await
        .map_err(|e| match e {
            SaveError::Invalid(issues) => ApiError::Unprocessable(issues),
            SaveError::PreconditionFailed(mut issues) => {
                ApiError::PreconditionFailed(issues.remove(0))
            }
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
    let ret = super::fhir::prefer_return(headers);
    let body = match ret.unwrap_or_default() {
        Return::Representation => saved.body.clone(),
        Return::Minimal => String::new(),
        Return::OperationOutcome => serde_json::json!({
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational",
                "diagnostics": format!("Stored Questionnaire/{id} version {}", saved.version_id)}]
        })
        .to_string(),
    };
    let mut response = fhir_response(status, body, saved.version_id, &saved.body);
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!(
        "/fhir/Questionnaire/{id}/_history/{}",
        saved.version_id
    )) {
        headers.insert(header::LOCATION, location);
    }
    if ret == Some(Return::Minimal) {
        headers.remove(header::CONTENT_TYPE);
    }
    Ok(response)
}

/// `GET /fhir/Questionnaire/{id}`: with `Last-Modified`; 304 for a matching
/// `If-None-Match`.
pub(super) async fn read(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (body, version) = questionnaires::read(&app.db, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if super::fhir::not_modified(&headers, version) {
        let mut response = fhir_response(StatusCode::NOT_MODIFIED, String::new(), version, &body);
        response.headers_mut().remove(header::CONTENT_TYPE);
        return Ok(response);
    }
    Ok(fhir_response(StatusCode::OK, body.clone(), version, &body))
}

/// `GET /fhir/Questionnaire?url=…`: a searchset Bundle. `url` is the one
/// parameter (and `_format`, `_pretty`); anything else is 422 `not-supported`,
/// never ignored.
pub(super) async fn search(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    use crate::fhir::outcome::{Issue, IssueType};
    let pairs = crate::store::search::pairs(&raw.unwrap_or_default()).ok_or_else(|| {
        ApiError::Unprocessable(vec![Issue::error(
            IssueType::Value,
            "Not a valid query string",
        )])
    })?;
    let mut url = None;
    let mut issues = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "url" if !value.is_empty() => url = Some(value),
            "_format" | "_pretty" => {}
            _ => issues.push(
                Issue::error(
                    IssueType::NotSupported,
                    "Questionnaires are searched by url only",
                )
                .at(key),
            ),
        }
    }
    if !issues.is_empty() {
        return Err(ApiError::Unprocessable(issues));
    }
    let Some(url) = url else {
        return Err(ApiError::Unprocessable(vec![Issue::error(
            IssueType::NotSupported,
            "Search Questionnaires by url",
        )]));
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

/// A Questionnaire answer: `body` with the `ETag` and `Last-Modified` of
/// `stored` (the resource as stored, `version`).
fn fhir_response(status: StatusCode, body: String, version: i64, stored: &str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{version}\"")) {
        headers.insert(header::ETAG, etag);
    }
    let last_updated = serde_json::from_str::<serde_json::Value>(stored)
        .ok()
        .and_then(|v| v.pointer("/meta/lastUpdated")?.as_str().map(str::to_owned));
    if let Some(date) = last_updated
        .as_deref()
        .and_then(super::fhir::http_date)
        .and_then(|d| HeaderValue::from_str(&d).ok())
    {
        headers.insert(header::LAST_MODIFIED, date);
    }
    response
}
