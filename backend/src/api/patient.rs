//! `/fhir/Patient`: create, `$match`, and the `POST /fhir` transaction that loads
//! many Patients at once. Every write updates the matching index after it commits.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;
use crate::fhir::outcome::{Issue, IssueType};
use crate::fhir::{FHIR_JSON, patient};
use crate::http::Json;
use crate::patients::{self, SaveError, Write};

fn save_error(e: SaveError) -> ApiError {
    match e {
        SaveError::Invalid(issues) => ApiError::Unprocessable(issues),
        SaveError::Database(e) => ApiError::Database(e),
    }
}

fn fhir_body(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// `POST /fhir/Patient`: stores a new Patient under a server-assigned id; 201 with
/// the stored resource and its `Location`.
#[tracing::instrument(skip_all)]
pub(super) async fn create(
    State(app): State<AppState>,
    Json(resource): Json<Value>,
) -> Result<Response, ApiError> {
    let saved = patients::create(&app.db, app.clock.as_ref(), resource)
        .await
        .map_err(save_error)?;
    app.patients.apply(std::slice::from_ref(&saved));
    let mut response = fhir_body(
        StatusCode::CREATED,
        serde_json::to_vec(&saved.resource).unwrap_or_default(),
    );
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!(
        "/fhir/Patient/{}/_history/{}",
        saved.id, saved.version_id
    )) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{}\"", saved.version_id)) {
        headers.insert(header::ETAG, etag);
    }
    tracing::info!("patient created");
    Ok(response)
}

/// `POST /fhir/Patient/$match`: the stored Patients that may be the one sent, best
/// first, graded and explained. Says nothing about any patient below `possible`.
#[tracing::instrument(skip_all)]
pub(super) async fn match_(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let request = patient::match_request(&body).map_err(ApiError::Unprocessable)?;
    let outcome = app.patients.read().find(&request.record, &request.options);
    if !outcome.capped.is_empty() {
        // Which passes, never which values.
        let passes: Vec<&str> = outcome.capped.iter().map(|p| p.code()).collect();
        tracing::warn!(match.capped = ?passes, "blocking cap hit: candidates were cut");
    }
    tracing::info!(
        match.considered = outcome.considered,
        match.returned = outcome.candidates.len(),
        "patient match"
    );
    let ids: Vec<String> = outcome.candidates.iter().map(|c| c.id.clone()).collect();
    let resources = patients::read_many(&app.db, &ids).await?;
    let found: Vec<_> = outcome
        .candidates
        .into_iter()
        .filter_map(|c| {
            let resource = resources
                .iter()
                .find(|r| r.get("id").and_then(Value::as_str) == Some(c.id.as_str()))?
                .clone();
            Some((c, resource))
        })
        .collect();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    Ok(fhir_body(
        StatusCode::OK,
        patient::match_bundle(&format!("http://{host}/fhir"), &found),
    ))
}

/// `POST /fhir`: a `transaction` Bundle of Patient writes (`POST Patient`,
/// `PUT Patient/{id}`), stored all or nothing; answers a `transaction-response`.
#[tracing::instrument(skip_all)]
pub(super) async fn transaction(
    State(app): State<AppState>,
    Json(bundle): Json<Value>,
) -> Result<Response, ApiError> {
    let writes = transaction_writes(&bundle).map_err(ApiError::Unprocessable)?;
    let count = writes.len();
    let saved = patients::transaction(&app.db, app.clock.as_ref(), writes)
        .await
        .map_err(save_error)?;
    app.patients.apply(&saved);
    tracing::info!(entries = count, "transaction stored");
    let entries: Vec<Value> = saved
        .iter()
        .map(|s| {
            json!({"response": {
                "status": if s.created { "201 Created" } else { "200 OK" },
                "location": format!("Patient/{}/_history/{}", s.id, s.version_id),
                "etag": format!("W/\"{}\"", s.version_id),
            }})
        })
        .collect();
    let body = json!({
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": entries,
    });
    Ok(fhir_body(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    ))
}

/// Reads a transaction Bundle's entries; every problem found, with its path.
fn transaction_writes(bundle: &Value) -> Result<Vec<Write>, Vec<Issue>> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(vec![
            Issue::error(IssueType::Invalid, "Send a Bundle").at("resourceType"),
        ]);
    }
    if bundle.get("type").and_then(Value::as_str) != Some("transaction") {
        return Err(vec![
            Issue::error(
                IssueType::NotSupported,
                "Only transaction Bundles are accepted",
            )
            .at("type"),
        ]);
    }
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut issues = Vec::new();
    let mut writes = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let method = e.pointer("/request/method").and_then(Value::as_str);
        let url = e.pointer("/request/url").and_then(Value::as_str);
        let Some(resource) = e.get("resource").cloned() else {
            issues.push(
                Issue::error(IssueType::Required, "Each entry needs a resource")
                    .at(format!("entry[{i}].resource")),
            );
            continue;
        };
        let id = match (method, url.map(|u| u.trim_start_matches('/'))) {
            (Some("POST"), Some("Patient")) => None,
            (Some("PUT"), Some(u)) if u.starts_with("Patient/") => {
                Some(u.trim_start_matches("Patient/").to_owned())
            }
            _ => {
                issues.push(
                    Issue::error(
                        IssueType::NotSupported,
                        "Entries must be POST Patient or PUT Patient/{id}",
                    )
                    .at(format!("entry[{i}].request")),
                );
                continue;
            }
        };
        if let (Some(id), Some(own)) = (&id, resource.get("id").and_then(Value::as_str))
            && id != own
        {
            issues.push(
                Issue::error(IssueType::Invalid, "The resource's id differs from the url")
                    .at(format!("entry[{i}].resource.id")),
            );
        }
        writes.push(Write { id, resource });
    }
    if issues.is_empty() {
        Ok(writes)
    } else {
        Err(issues)
    }
}
