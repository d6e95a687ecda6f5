//! `POST /fhir/Patient/$match`: the matching engine over the stored Patients.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::extract::Actor;
use crate::api::error::ApiError;
use crate::api::extract::Json;
use crate::audit::{Interaction, Reference};
use crate::fhir::{FHIR_JSON, patient};
use crate::state::AppState;

/// `POST /fhir/Patient/$match`: the stored Patients that may be the one sent, best
/// first, graded and explained. Says nothing about any patient below `possible`.
#[tracing::instrument(skip_all)]
pub(super) async fn match_(
    State(app): State<AppState>,
    actor: Actor,
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
    let resources = app.store.read_many("Patient", &ids).await?;
    let found: Vec<_> = outcome
        .candidates
        .into_iter()
        .filter_map(|c| {
            let resource = resources.iter().find(|r| r.id == c.id)?.resource.clone();
            Some((c, resource))
        })
        .collect();
    // The candidates' demographics go out: each of them was read.
    let touched = found
        .iter()
        .filter_map(|(c, _)| Reference::parse(&format!("Patient/{}", c.id)))
        .collect();
    actor.record(&app, Interaction::Search, touched).await?;
    let mut response = (
        StatusCode::OK,
        patient::match_bundle(&super::fhir::base_url(&headers), &found),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    Ok(response)
}
