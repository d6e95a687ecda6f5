//! The embedded store's FHIR REST interface for Patient, QuestionnaireResponse,
//! Provenance and Task: read, vread, `_history`, search, create (conditional with
//! `If-None-Exist`), update (`If-Match` → 412 on a stale version), and `POST /fhir`
//! transaction and batch Bundles. `GET /fhir/metadata` says exactly this.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::actor::Actor;
use crate::app::AppState;
use crate::audit::{self, Interaction, Reference};
use crate::error::ApiError;
use crate::fhir::FHIR_JSON;
use crate::fhir::outcome::{self, Issue, IssueType};
use crate::http::Json;
use crate::store::bundle::{entry_response, requests_of, transaction_response, version_of_etag};
use crate::store::search::{self, PARAMETERS};
use crate::store::{Outcome, Request, StoreError, Stored};

/// The types served here (Questionnaire has routes of its own).
const TYPES: &[&str] = &[
    "Patient",
    "QuestionnaireResponse",
    "Provenance",
    "Task",
    "RelatedPerson",
    "Observation",
];

fn known_type(resource_type: &str) -> Result<(), ApiError> {
    if TYPES.contains(&resource_type) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// A served type, and a body that is a resource of it.
fn of_type(resource_type: &str, resource: &Value) -> Result<(), ApiError> {
    known_type(resource_type)?;
    if resource.get("resourceType").and_then(Value::as_str) == Some(resource_type) {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::Invalid,
                format!("The resource must be a {resource_type}"),
            )
            .at("resourceType"),
        ]))
    }
}

/// The server's FHIR base URL as the client reached it, for `fullUrl`s.
pub(super) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}/fhir")
}

pub(super) fn fhir_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, serde_json::to_vec(body).unwrap_or_default()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

fn resource_response(status: StatusCode, stored: &Stored, location: bool) -> Response {
    let mut response = fhir_json(status, &stored.resource);
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&stored.etag()) {
        headers.insert(header::ETAG, etag);
    }
    if location
        && let Ok(l) = HeaderValue::from_str(&format!(
            "/fhir/{}/{}/_history/{}",
            stored.resource_type, stored.id, stored.version_id
        ))
    {
        headers.insert(header::LOCATION, l);
    }
    response
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid(issues) => ApiError::Unprocessable(issues),
        StoreError::PreconditionFailed(issue) => ApiError::PreconditionFailed(issue),
        StoreError::Database(e) => ApiError::Database(e),
    }
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(version_of_etag)
            .map(Some)
            .ok_or_else(|| {
                ApiError::Unprocessable(vec![
                    Issue::error(
                        IssueType::Value,
                        "If-Match must be a version ETag such as W/\"3\"",
                    )
                    .at("If-Match"),
                ])
            }),
    }
}

/// Everything `stored` touches, for one audit record.
fn touched_by<'a>(stored: impl Iterator<Item = &'a Stored>) -> Vec<Reference> {
    let mut all: Vec<Reference> = stored.flat_map(|s| audit::touched(&s.resource)).collect();
    all.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    all.dedup();
    all
}

/// `GET /fhir/{type}/{id}`.
#[tracing::instrument(skip_all, fields(fhir.type = %resource_type))]
pub(super) async fn read(
    State(app): State<AppState>,
    actor: Actor,
    Path((resource_type, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    known_type(&resource_type)?;
    let stored = app
        .store
        .read(&resource_type, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    actor
        .record(&app, Interaction::Read, audit::touched(&stored.resource))
        .await?;
    Ok(resource_response(StatusCode::OK, &stored, false))
}

/// `GET /fhir/{type}/{id}/_history/{version}`.
pub(super) async fn vread(
    State(app): State<AppState>,
    actor: Actor,
    Path((resource_type, id, version)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    known_type(&resource_type)?;
    let version: i64 = version.parse().map_err(|_| ApiError::NotFound)?;
    let stored = app
        .store
        .vread(&resource_type, &id, version)
        .await?
        .ok_or(ApiError::NotFound)?;
    actor
        .record(&app, Interaction::Read, audit::touched(&stored.resource))
        .await?;
    Ok(resource_response(StatusCode::OK, &stored, false))
}

/// `GET /fhir/{type}/{id}/_history`: every version, newest first.
pub(super) async fn history(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path((resource_type, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    known_type(&resource_type)?;
    let versions = app.store.history(&resource_type, &id).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound);
    }
    actor
        .record(&app, Interaction::Read, touched_by(versions.iter()))
        .await?;
    let base = base_url(&headers);
    let entries: Vec<Value> = versions
        .iter()
        .map(|s| {
            json!({
                "fullUrl": format!("{base}/{}/{}", s.resource_type, s.id),
                "resource": s.resource,
                "request": {
                    "method": if s.version_id == 1 { "POST" } else { "PUT" },
                    "url": if s.version_id == 1 { s.resource_type.clone() } else { s.reference() },
                },
                "response": {
                    "status": if s.version_id == 1 { "201 Created" } else { "200 OK" },
                    "etag": s.etag(),
                    "lastModified": s.last_updated,
                },
            })
        })
        .collect();
    Ok(fhir_json(
        StatusCode::OK,
        &json!({"resourceType": "Bundle", "type": "history", "total": entries.len(), "entry": entries}),
    ))
}

/// `GET /fhir/{type}?…`: a searchset Bundle, one page of it, with `next` when more.
#[tracing::instrument(skip_all, fields(fhir.type = %resource_type))]
pub(super) async fn search(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    known_type(&resource_type)?;
    let raw = raw.unwrap_or_default();
    let pairs = search::pairs(&raw).ok_or_else(|| {
        ApiError::Unprocessable(vec![Issue::error(
            IssueType::Value,
            "Not a valid query string",
        )])
    })?;
    let query = search::parse(&resource_type, &pairs).map_err(ApiError::Unprocessable)?;
    let (found, total) = app.store.search(&resource_type, &query).await?;
    tracing::info!(fhir.total = total, fhir.returned = found.len(), "search");
    actor
        .record(&app, Interaction::Search, touched_by(found.iter()))
        .await?;
    let base = base_url(&headers);
    let entries: Vec<Value> = found
        .iter()
        .map(|s| {
            json!({
                "fullUrl": format!("{base}/{}/{}", s.resource_type, s.id),
                "resource": s.resource,
                "search": {"mode": "match"},
            })
        })
        .collect();
    // Links repeat the query; the store's ids are random, and search values stay in
    // this response's body, never in a log.
    let without_paging: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| k != "_offset" && k != "_count")
        .collect();
    let link = |offset: usize| {
        let mut p = without_paging.clone();
        p.push(("_count".into(), query.count.to_string()));
        p.push(("_offset".into(), offset.to_string()));
        format!(
            "{base}/{resource_type}?{}",
            serde_urlencoded::to_string(&p).unwrap_or_default()
        )
    };
    let mut links = vec![json!({"relation": "self", "url": link(query.offset)})];
    if query.offset + found.len() < total {
        links.push(json!({"relation": "next", "url": link(query.offset + query.count)}));
    }
    Ok(fhir_json(
        StatusCode::OK,
        &json!({"resourceType": "Bundle", "type": "searchset", "total": total, "link": links, "entry": entries}),
    ))
}

/// `POST /fhir/{type}`, conditional with `If-None-Exist`: 201 with the new
/// resource, or 200 with the one the condition found.
#[tracing::instrument(skip_all, fields(fhir.type = %resource_type))]
pub(super) async fn create(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(resource_type): Path<String>,
    Json(resource): Json<Value>,
) -> Result<Response, ApiError> {
    of_type(&resource_type, &resource)?;
    let if_none_exist = headers
        .get("if-none-exist")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut outcomes = app
        .store
        .transaction(vec![Request::Create {
            resource,
            if_none_exist,
            full_url: None,
        }])
        .await
        .map_err(store_error)?;
    let outcome = outcomes.remove(0);
    tracing::info!(created = matches!(outcome, Outcome::Created(_)), "create");
    actor
        .record(
            &app,
            Interaction::Create,
            audit::touched(&outcome.stored().resource),
        )
        .await?;
    let status = StatusCode::from_u16(outcome.status()).unwrap_or(StatusCode::OK);
    Ok(resource_response(status, outcome.stored(), true))
}

/// `PUT /fhir/{type}/{id}`: a new version (or the first, 201); `If-Match` with an
/// older version gives 412 and writes nothing.
#[tracing::instrument(skip_all, fields(fhir.type = %resource_type))]
pub(super) async fn update(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path((resource_type, id)): Path<(String, String)>,
    Json(resource): Json<Value>,
) -> Result<Response, ApiError> {
    of_type(&resource_type, &resource)?;
    let if_match = if_match(&headers)?;
    let mut outcomes = app
        .store
        .transaction(vec![Request::Update {
            id,
            resource,
            if_match,
            full_url: None,
        }])
        .await
        .map_err(store_error)?;
    let outcome = outcomes.remove(0);
    actor
        .record(
            &app,
            Interaction::Update,
            audit::touched(&outcome.stored().resource),
        )
        .await?;
    let status = StatusCode::from_u16(outcome.status()).unwrap_or(StatusCode::OK);
    Ok(resource_response(status, outcome.stored(), true))
}

/// `POST /fhir`: a `transaction` (all or nothing) or `batch` (each on its own) Bundle.
#[tracing::instrument(skip_all)]
pub(super) async fn bundle(
    State(app): State<AppState>,
    actor: Actor,
    Json(bundle): Json<Value>,
) -> Result<Response, ApiError> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(ApiError::Unprocessable(vec![
            Issue::error(IssueType::Invalid, "Send a Bundle").at("resourceType"),
        ]));
    }
    let kind = bundle.get("type").and_then(Value::as_str);
    let (requests, problems) = requests_of(&bundle);
    match kind {
        Some("transaction") => {
            if !problems.is_empty() {
                return Err(ApiError::Unprocessable(
                    problems.into_iter().map(|(_, i)| i).collect(),
                ));
            }
            let count = requests.len();
            let outcomes = app
                .store
                .transaction(requests.into_iter().map(|(_, r)| r).collect())
                .await
                .map_err(store_error)?;
            tracing::info!(entries = count, "transaction stored");
            let touched = touched_by(outcomes.iter().map(Outcome::stored));
            actor.record(&app, Interaction::Create, touched).await?;
            Ok(fhir_json(StatusCode::OK, &transaction_response(&outcomes)))
        }
        Some("batch") => {
            let total = requests.len() + problems.len();
            let mut entries: Vec<Value> = vec![Value::Null; total];
            for (i, issue) in problems {
                entries[i] = error_entry(422, &[issue]);
            }
            let (positions, requests): (Vec<usize>, Vec<Request>) = requests.into_iter().unzip();
            let results = app.store.batch(requests).await;
            let written = results.iter().filter_map(|r| r.as_ref().ok());
            let touched = touched_by(written.map(Outcome::stored));
            if !touched.is_empty() {
                actor.record(&app, Interaction::Create, touched).await?;
            }
            for (i, result) in positions.into_iter().zip(results) {
                entries[i] = match result {
                    Ok(outcome) => entry_response(&outcome),
                    Err(StoreError::Invalid(issues)) => error_entry(422, &issues),
                    Err(StoreError::PreconditionFailed(issue)) => error_entry(412, &[issue]),
                    Err(StoreError::Database(e)) => return Err(ApiError::Database(e)),
                };
            }
            Ok(fhir_json(
                StatusCode::OK,
                &json!({"resourceType": "Bundle", "type": "batch-response", "entry": entries}),
            ))
        }
        _ => Err(ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::NotSupported,
                "Send a transaction or batch Bundle",
            )
            .at("type"),
        ])),
    }
}

fn error_entry(status: u16, issues: &[Issue]) -> Value {
    let outcome: Value = serde_json::from_slice(&outcome::to_json(issues)).unwrap_or(Value::Null);
    json!({"response": {"status": status.to_string(), "outcome": outcome}})
}

/// `GET /fhir/metadata`: what this server does, and nothing it does not.
pub(super) async fn metadata(headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    let resources: Vec<Value> = TYPES
        .iter()
        .map(|t| {
            let params: Vec<Value> = PARAMETERS
                .iter()
                .find(|(name, _)| name == t)
                .map(|(_, p)| p.iter().map(|(n, k)| json!({"name": n, "type": kind_code(*k)})).collect())
                .unwrap_or_default();
            let mut params = params;
            for (n, k) in [("_id", "token"), ("_lastUpdated", "date"), ("_tag", "token")] {
                params.push(json!({"name": n, "type": k}));
            }
            let mut interactions = vec!["read", "vread", "update", "create", "search-type"];
            interactions.push("history-instance");
            let mut r = json!({
                "type": t,
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "interaction": interactions.iter().map(|c| json!({"code": c})).collect::<Vec<_>>(),
                "searchParam": params,
            });
            if *t == "Patient" {
                r["operation"] = json!([{"name": "match", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match"}]);
            }
            r
        })
        .chain(std::iter::once(json!({
            "type": "Questionnaire",
            "versioning": "versioned",
            "updateCreate": true,
            "interaction": [{"code": "read"}, {"code": "update"}, {"code": "search-type"}],
            "searchParam": [{"name": "url", "type": "uri"}],
        })))
        .chain(std::iter::once(json!({
            "type": "AuditEvent",
            "documentation": "The audit trail, append-only and hash-chained; admins only",
            "interaction": [{"code": "search-type"}],
            "searchParam": [
                {"name": "patient", "type": "reference"},
                {"name": "agent", "type": "string"},
                {"name": "date", "type": "date"},
            ],
        })))
        .collect();
    fhir_json(
        StatusCode::OK,
        &json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-11-30",
            "kind": "instance",
            "software": {"name": "Intake", "version": env!("CARGO_PKG_VERSION")},
            "implementation": {"description": "Intake's embedded FHIR store", "url": base},
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json", "json"],
            "rest": [{
                "mode": "server",
                "security": {
                    "description": "A staff session (POST /api/staff/login; X-CSRF-Token on changes) or Authorization: Bearer with a token from `intake token create`. Front desk reads Patient and Task, clinicians also QuestionnaireResponse and Provenance, admins and system tokens write; only /metadata and QuestionnaireResponse/$validate are open."
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }],
        }),
    )
}

fn kind_code(k: search::Kind) -> &'static str {
    match k {
        search::Kind::String => "string",
        search::Kind::Token => "token",
        search::Kind::Date => "date",
        search::Kind::Reference => "reference",
        search::Kind::Uri => "uri",
    }
}
