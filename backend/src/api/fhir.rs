//! The embedded store's FHIR REST interface for Patient, QuestionnaireResponse,
//! Provenance, Task, RelatedPerson and Observation: read and vread (with
//! `Last-Modified`, and 304 for a matching `If-None-Match`), `_history`, search
//! (GET, and POST `_search`), create (conditional with `If-None-Exist`), update
//! (`If-Match` → 412 on a stale version, 400 on a malformed one), `$validate`,
//! and `POST /fhir` transaction and batch Bundles (GET, POST and PUT entries).
//! Writes honour `Prefer: return=…`. JSON only: 406 for anything else. No DELETE
//! or PATCH (405, with `Allow`): the store keeps what patients sent. `GET
//! /fhir/metadata` says exactly this.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::extract::Actor;
use crate::api::error::ApiError;
use crate::api::extract::Json;
use crate::audit::{self, Interaction, Reference};
use crate::fhir::FHIR_JSON;
use crate::fhir::outcome::{self, Issue, IssueType, Severity};
use crate::http::outcome_response;
use crate::state::AppState;
use crate::store::bundle::{
    EntryRequest, Return, entries_of, entry_response_with, version_of_etag, written_outcome,
};
use crate::store::search::{self, PARAMETERS};
use crate::store::{Outcome, Request as StoreRequest, StoreError, Stored};

/// The types served here (Questionnaire has routes of its own).
pub(super) const TYPES: &[&str] = &[
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
            .at(format!("{resource_type}.resourceType")),
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

/// What a media type or `_format` value names: JSON (which this server speaks) or not.
fn is_json_format(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    matches!(
        essence.to_ascii_lowercase().as_str(),
        "json" | "application/json" | "application/fhir+json" | "application/json+fhir"
    )
}

/// Whether an `Accept` header lets the answer be JSON.
fn accepts_json(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let essence = parts.next().unwrap_or_default().trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        !refused && (matches!(essence, "*/*" | "application/*" | "") || is_json_format(essence))
    })
}

/// The middleware in front of every `/fhir` route: an answer this server cannot
/// give in JSON (`Accept: application/fhir+xml`, `_format=xml`) is 406, never
/// JSON labelled as what was asked.
pub(super) async fn formats(request: Request, next: Next) -> Response {
    let format_ok = request.uri().query().is_none_or(|q| {
        search::pairs(q)
            .unwrap_or_default()
            .iter()
            .filter(|(k, _)| k == "_format")
            .all(|(_, v)| is_json_format(v))
    });
    let accept_ok = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .all(|v| v.to_str().is_ok_and(accepts_json));
    if format_ok && accept_ok {
        return next.run(request).await;
    }
    outcome_response(
        StatusCode::NOT_ACCEPTABLE,
        &[Issue::error(
            IssueType::NotSupported,
            "This server answers in FHIR JSON only (application/fhir+json)",
        )
        .at(if format_ok { "Accept" } else { "_format" })],
    )
}

/// `Prefer: return=…` (RFC 7240: an unknown preference is not an error).
pub(super) fn prefer_return(headers: &HeaderMap) -> Option<Return> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .find_map(|p| p.trim().strip_prefix("return="))
        .map(|v| match v.trim().trim_matches('"') {
            "minimal" => Return::Minimal,
            "OperationOutcome" => Return::OperationOutcome,
            _ => Return::Representation,
        })
}

fn return_code(ret: Return) -> &'static str {
    match ret {
        Return::Minimal => "return=minimal",
        Return::Representation => "return=representation",
        Return::OperationOutcome => "return=OperationOutcome",
    }
}

/// A stored FHIR instant (`2026-11-29T22:06:07.123Z`, UTC) as an HTTP date.
pub(super) fn http_date(instant: &str) -> Option<String> {
    let secs = crate::clock::instant_secs(instant)?;
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).ok()?);
    Some(httpdate::fmt_http_date(at))
}

/// `ETag` and `Last-Modified` of a version.
fn version_headers(headers: &mut HeaderMap, version_id: i64, last_updated: &str) {
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{version_id}\"")) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(date) = http_date(last_updated).and_then(|d| HeaderValue::from_str(&d).ok()) {
        headers.insert(header::LAST_MODIFIED, date);
    }
}

/// Whether `If-None-Match` names this version (or `*`): the client's copy is current.
pub(super) fn not_modified(headers: &HeaderMap, version_id: i64) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || version_of_etag(tag) == Some(version_id))
}

/// What a read's query may ask (`_summary=true|false`, `_elements`, `_format`,
/// `_pretty`); anything else is 422, never ignored.
fn read_query(raw: Option<&str>) -> Result<search::Query, ApiError> {
    let pairs = query_pairs(raw.unwrap_or_default())?;
    let mut issues: Vec<Issue> = pairs
        .iter()
        .filter(|(k, v)| {
            let allowed = matches!(k.as_str(), "_format" | "_pretty" | "_elements")
                || (k == "_summary" && matches!(v.as_str(), "true" | "false"));
            !allowed
        })
        .map(|(k, _)| {
            Issue::error(
                IssueType::NotSupported,
                "A read takes only _summary (true or false), _elements, _format and _pretty",
            )
            .at(k.clone())
        })
        .collect();
    if !issues.is_empty() {
        return Err(ApiError::Unprocessable(issues));
    }
    search::parse("Patient", &pairs).map_err(|mut more| {
        issues.append(&mut more);
        ApiError::Unprocessable(issues)
    })
}

/// A read's answer: the resource (as `query` shows it), or 304 when the
/// client's copy is current.
fn read_response(request: &HeaderMap, stored: &Stored, query: &search::Query) -> Response {
    let mut response = if not_modified(request, stored.version_id) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        fhir_json(
            StatusCode::OK,
            &search::shown(&stored.resource_type, &stored.resource, query),
        )
    };
    version_headers(
        response.headers_mut(),
        stored.version_id,
        &stored.last_updated,
    );
    response
}

/// A write's answer, as `Prefer` asks: the resource (the default), nothing, or
/// an `OperationOutcome`.
fn written_response(outcome: &Outcome, ret: Option<Return>) -> Response {
    let stored = outcome.stored();
    let status = StatusCode::from_u16(outcome.status()).unwrap_or(StatusCode::OK);
    let mut response = match ret.unwrap_or_default() {
        Return::Representation => fhir_json(status, &stored.resource),
        Return::Minimal => status.into_response(),
        Return::OperationOutcome => fhir_json(status, &written_outcome(outcome)),
    };
    let headers = response.headers_mut();
    version_headers(headers, stored.version_id, &stored.last_updated);
    if let Ok(l) = HeaderValue::from_str(&format!(
        "/fhir/{}/{}/_history/{}",
        stored.resource_type, stored.id, stored.version_id
    )) {
        headers.insert(header::LOCATION, l);
    }
    if let Some(ret) = ret {
        headers.insert(
            "preference-applied",
            HeaderValue::from_static(return_code(ret)),
        );
    }
    response
}

/// An issue the store placed in its `entry[n]` of requests, placed where the
/// client sent it: `f(n, rest)` gives the new path.
fn relocate(issues: Vec<Issue>, f: impl Fn(usize, &str) -> String) -> Vec<Issue> {
    issues
        .into_iter()
        .map(|issue| {
            let Some(expression) = issue.expression.clone() else {
                return issue;
            };
            let parsed = expression.strip_prefix("entry[").and_then(|rest| {
                let (n, rest) = rest.split_once(']')?;
                Some((n.parse::<usize>().ok()?, rest.to_owned()))
            });
            match parsed {
                Some((n, rest)) => issue.at(f(n, &rest)),
                None => issue,
            }
        })
        .collect()
}

/// A single interaction's issues: the resource's element (`Patient.birthDate`)
/// or the header, never the store's transaction internals.
fn for_single(resource_type: &str, issues: Vec<Issue>) -> Vec<Issue> {
    relocate(issues, |_, rest| match rest {
        ".request.ifMatch" => "If-Match".to_owned(),
        ".request.ifNoneExist" => "If-None-Exist".to_owned(),
        ".request.url" => format!("{resource_type}.id"),
        _ => match rest.strip_prefix(".resource.") {
            Some(element) => format!("{resource_type}.{element}"),
            None => resource_type.to_owned(),
        },
    })
}

/// A Bundle's issues: `Bundle.entry[i]…`, `i` its place in the Bundle
/// (`positions` maps the store's request index to it).
fn for_bundle(issues: Vec<Issue>, positions: &[usize]) -> Vec<Issue> {
    relocate(issues, |n, rest| {
        format!(
            "Bundle.entry[{}]{rest}",
            positions.get(n).copied().unwrap_or(n)
        )
    })
}

fn store_error(e: StoreError, place: impl Fn(Vec<Issue>) -> Vec<Issue>) -> ApiError {
    match e {
        StoreError::Invalid(issues) => ApiError::Unprocessable(place(issues)),
        StoreError::PreconditionFailed(issue) => {
            ApiError::PreconditionFailed(place(vec![issue]).remove(0))
        }
        StoreError::Database(e) => ApiError::Database(e),
    }
}

/// `If-Match`: the version the client last read; 400 when it is not a version ETag.
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(version_of_etag)
            .map(Some)
            .ok_or_else(|| {
                ApiError::BadRequest(
                    Issue::error(
                        IssueType::Value,
                        "If-Match must be a version ETag such as W/\"3\"",
                    )
                    .at("If-Match"),
                )
            }),
    }
}

/// 501: an operation (`$name`) this server does not have.
fn no_such_operation() -> Response {
    outcome_response(
        StatusCode::NOT_IMPLEMENTED,
        &[Issue::error(
            IssueType::NotSupported,
            "This server does not support that operation: GET /fhir/metadata lists the ones it has",
        )],
    )
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
    headers: HeaderMap,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    if id.starts_with('$') {
        return Ok(no_such_operation());
    }
    known_type(&resource_type)?;
    let query = read_query(raw.as_deref())?;
    let stored = app
        .store
        .read(&resource_type, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    actor
        .record(&app, Interaction::Read, audit::touched(&stored.resource))
        .await?;
    Ok(read_response(&headers, &stored, &query))
}

/// `GET /fhir/{type}/{id}/_history/{version}`.
pub(super) async fn vread(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path((resource_type, id, version)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    known_type(&resource_type)?;
    let query = read_query(raw.as_deref())?;
    let version: i64 = version.parse().map_err(|_| ApiError::NotFound)?;
    let stored = app
        .store
        .vread(&resource_type, &id, version)
        .await?
        .ok_or(ApiError::NotFound)?;
    actor
        .record(&app, Interaction::Read, audit::touched(&stored.resource))
        .await?;
    Ok(read_response(&headers, &stored, &query))
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

/// A search's searchset Bundle: one page, `next` while there are more; the total
/// only for `_count=0` or `_summary=count`. Audited as a search.
async fn searchset(
    app: &AppState,
    actor: &Actor,
    base: &str,
    resource_type: &str,
    pairs: Vec<(String, String)>,
) -> Result<Value, ApiError> {
    let query = search::parse(resource_type, &pairs).map_err(ApiError::Unprocessable)?;
    let (found, total) = app.store.search(resource_type, &query).await?;
    tracing::info!(fhir.total = total, fhir.returned = found.len(), "search");
    actor
        .record(app, Interaction::Search, touched_by(found.iter()))
        .await?;
    let entries: Vec<Value> = found
        .iter()
        .map(|s| {
            json!({
                "fullUrl": format!("{base}/{}/{}", s.resource_type, s.id),
                "resource": search::shown(resource_type, &s.resource, &query),
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
    if !query.total_only() && query.offset + found.len() < total {
        links.push(json!({"relation": "next", "url": link(query.offset + query.count)}));
    }
    let mut bundle =
        json!({"resourceType": "Bundle", "type": "searchset", "total": total, "link": links});
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    Ok(bundle)
}

fn query_pairs(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    search::pairs(raw).ok_or_else(|| {
        ApiError::Unprocessable(vec![Issue::error(
            IssueType::Value,
            "Not a valid query string",
        )])
    })
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
    let pairs = query_pairs(&raw.unwrap_or_default())?;
    let bundle = searchset(&app, &actor, &base_url(&headers), &resource_type, pairs).await?;
    Ok(fhir_json(StatusCode::OK, &bundle))
}

/// `POST /fhir/{type}/_search`: the same search, its parameters in a form body
/// (and the query string).
#[tracing::instrument(skip_all, fields(fhir.type = %resource_type))]
pub(super) async fn search_post(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    known_type(&resource_type)?;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().unwrap_or_default().trim() == "application/x-www-form-urlencoded"
        });
    if !form && !body.is_empty() {
        return Err(ApiError::UnsupportedMediaType);
    }
    let mut pairs = query_pairs(&raw.unwrap_or_default())?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiError::Unprocessable(vec![Issue::error(
            IssueType::Value,
            "Not a valid form body",
        )])
    })?;
    pairs.extend(query_pairs(text)?);
    let bundle = searchset(&app, &actor, &base_url(&headers), &resource_type, pairs).await?;
    Ok(fhir_json(StatusCode::OK, &bundle))
}

/// `POST /fhir/{type}`, conditional with `If-None-Exist` (or, as fhirpy's
/// `get_or_create` sends it, the condition as the query string): 201 with the
/// new resource, or 200 with the one the condition found.
#[tracing::instrument(skip_all, fields(fhir.type = %resource_type))]
pub(super) async fn create(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    Json(resource): Json<Value>,
) -> Result<Response, ApiError> {
    of_type(&resource_type, &resource)?;
    let if_none_exist = if_none_exist(&headers, raw.as_deref())?;
    let mut outcomes = app
        .store
        .transaction(vec![StoreRequest::Create {
            resource,
            if_none_exist,
            full_url: None,
        }])
        .await
        .map_err(|e| store_error(e, |i| for_single(&resource_type, i)))?;
    let outcome = outcomes.remove(0);
    tracing::info!(created = matches!(outcome, Outcome::Created(_)), "create");
    actor
        .record(
            &app,
            Interaction::Create,
            audit::touched(&outcome.stored().resource),
        )
        .await?;
    Ok(written_response(&outcome, prefer_return(&headers)))
}

/// A create's condition: the `If-None-Exist` header, or the query string less
/// `_format` and `_pretty` (never ignored: a client that sends its condition
/// there would otherwise get a duplicate). Both, and different, is a 400.
fn if_none_exist(headers: &HeaderMap, raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let header = headers
        .get("if-none-exist")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let query = match raw.filter(|q| !q.is_empty()) {
        Some(raw) => {
            let pairs: Vec<(String, String)> = query_pairs(raw)?
                .into_iter()
                .filter(|(k, _)| k != "_format" && k != "_pretty")
                .collect();
            (!pairs.is_empty()).then(|| serde_urlencoded::to_string(&pairs).unwrap_or_default())
        }
        None => None,
    };
    match (header, query) {
        (Some(h), Some(q)) if search::pairs(&h) != search::pairs(&q) => Err(ApiError::BadRequest(
            Issue::error(
                IssueType::Invalid,
                "Give a create's condition once: in If-None-Exist or as the query string",
            )
            .at("If-None-Exist"),
        )),
        (h, q) => Ok(h.or(q)),
    }
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
        .transaction(vec![StoreRequest::Update {
            id,
            resource,
            if_match,
            full_url: None,
        }])
        .await
        .map_err(|e| store_error(e, |i| for_single(&resource_type, i)))?;
    let outcome = outcomes.remove(0);
    actor
        .record(
            &app,
            Interaction::Update,
            audit::touched(&outcome.stored().resource),
        )
        .await?;
    Ok(written_response(&outcome, prefer_return(&headers)))
}

/// A GET entry of a batch or transaction: a read, vread or search, relative to
/// the base (an absolute URL on this base too). Its `response` entry, with
/// the resource or the OperationOutcome of why not.
async fn read_entry(
    app: &AppState,
    actor: &Actor,
    base: &str,
    url: &str,
) -> Result<Value, ApiError> {
    let url = url
        .strip_prefix(base)
        .map_or(url, |u| u.trim_start_matches('/'));
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || {
        error_entry(
            404,
            &[Issue::error(IssueType::NotFound, "No such resource")],
        )
    };
    let Some(resource_type) = segments.first().copied() else {
        return Ok(error_entry(
            400,
            &[Issue::error(IssueType::Value, "Name a type")],
        ));
    };
    if resource_type == "Questionnaire" {
        // The forms have their store of their own: a read, no audit (no patient data).
        return Ok(match segments.as_slice() {
            [_, id] => match crate::questionnaires::read(&app.db, id).await? {
                Some((body, version)) => json!({
                    "fullUrl": format!("{base}/Questionnaire/{id}"),
                    "resource": serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
                    "response": {"status": "200 OK", "etag": format!("W/\"{version}\"")},
                }),
                None => not_found(),
            },
            _ => error_entry(
                400,
                &[Issue::error(
                    IssueType::NotSupported,
                    "A GET entry reads a Questionnaire by id; search them with GET /fhir/Questionnaire?url=…",
                )],
            ),
        });
    }
    if !TYPES.contains(&resource_type) {
        return Ok(not_found());
    }
    let stored = match segments.as_slice() {
        [_] => {
            let Some(pairs) = search::pairs(query) else {
                return Ok(error_entry(
                    400,
                    &[Issue::error(IssueType::Value, "Not a valid query string")],
                ));
            };
            return match searchset(app, actor, base, resource_type, pairs).await {
                Ok(bundle) => Ok(json!({"resource": bundle, "response": {"status": "200 OK"}})),
                Err(ApiError::Unprocessable(issues)) => Ok(error_entry(422, &issues)),
                Err(e) => Err(e),
            };
        }
        [_, id] if !id.starts_with('$') => app.store.read(resource_type, id).await?,
        [_, id, "_history", v] => match v.parse() {
            Ok(v) => app.store.vread(resource_type, id, v).await?,
            Err(_) => None,
        },
        _ => {
            return Ok(error_entry(
                400,
                &[Issue::error(
                    IssueType::NotSupported,
                    "A GET entry may read ({type}/{id}), vread or search ({type}?…)",
                )],
            ));
        }
    };
    let Some(stored) = stored else {
        return Ok(not_found());
    };
    actor
        .record(app, Interaction::Read, audit::touched(&stored.resource))
        .await?;
    Ok(json!({
        "fullUrl": format!("{base}/{}", stored.reference()),
        "resource": stored.resource,
        "response": {
            "status": "200 OK",
            "etag": stored.etag(),
            "lastModified": stored.last_updated,
        },
    }))
}

/// `POST /fhir` (or `/fhir/`): a `transaction` (its writes all or nothing, then
/// its reads) or `batch` (each entry on its own) Bundle. Writes answer as
/// `Prefer` asks (the resource by default).
#[tracing::instrument(skip_all)]
pub(super) async fn bundle(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Json(bundle): Json<Value>,
) -> Result<Response, ApiError> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(ApiError::Unprocessable(vec![
            Issue::error(IssueType::Invalid, "Send a Bundle").at("Bundle.resourceType"),
        ]));
    }
    let kind = bundle.get("type").and_then(Value::as_str);
    let ret = prefer_return(&headers);
    let base = base_url(&headers);
    let (requests, problems) = entries_of(&bundle);
    let total = requests.len() + problems.len();
    let mut writes: Vec<(usize, StoreRequest)> = Vec::new();
    let mut reads: Vec<(usize, String)> = Vec::new();
    for (i, r) in requests {
        match r {
            EntryRequest::Write(w) => writes.push((i, w)),
            EntryRequest::Read(url) => reads.push((i, url)),
        }
    }
    let (positions, writes): (Vec<usize>, Vec<StoreRequest>) = writes.into_iter().unzip();
    let mut entries: Vec<Value> = vec![Value::Null; total];
    let response_type = match kind {
        Some("transaction") => {
            if !problems.is_empty() {
                let identity: Vec<usize> = (0..total).collect();
                return Err(ApiError::Unprocessable(for_bundle(
                    problems.into_iter().map(|(_, i)| i).collect(),
                    &identity,
                )));
            }
            let count = writes.len();
            let outcomes = if writes.is_empty() {
                Vec::new()
            } else {
                app.store
                    .transaction(writes)
                    .await
                    .map_err(|e| store_error(e, |i| for_bundle(i, &positions)))?
            };
            tracing::info!(entries = count, "transaction stored");
            let touched = touched_by(outcomes.iter().map(Outcome::stored));
            if !touched.is_empty() {
                actor.record(&app, Interaction::Create, touched).await?;
            }
            for (i, outcome) in positions.iter().zip(&outcomes) {
                entries[*i] = entry_response_with(outcome, ret.unwrap_or_default());
            }
            "transaction-response"
        }
        Some("batch") => {
            for (i, issue) in problems {
                entries[i] = error_entry(422, &for_bundle(vec![issue], &[i]));
            }
            let results = app.store.batch(writes).await;
            let written = results.iter().filter_map(|r| r.as_ref().ok());
            let touched = touched_by(written.map(Outcome::stored));
            if !touched.is_empty() {
                actor.record(&app, Interaction::Create, touched).await?;
            }
            for (i, result) in positions.into_iter().zip(results) {
                // Each write went to the store alone, as its request 0.
                let here = |issues: Vec<Issue>| for_bundle(issues, &[i]);
                entries[i] = match result {
                    Ok(outcome) => entry_response_with(&outcome, ret.unwrap_or_default()),
                    Err(StoreError::Invalid(issues)) => error_entry(422, &here(issues)),
                    Err(StoreError::PreconditionFailed(issue)) => {
                        error_entry(412, &here(vec![issue]))
                    }
                    Err(StoreError::Database(e)) => return Err(ApiError::Database(e)),
                };
            }
            "batch-response"
        }
        _ => {
            return Err(ApiError::Unprocessable(vec![
                Issue::error(
                    IssueType::NotSupported,
                    "Send a transaction or batch Bundle",
                )
                .at("Bundle.type"),
            ]));
        }
    };
    for (i, url) in reads {
        entries[i] = read_entry(&app, &actor, &base, &url).await?;
    }
    let mut response = fhir_json(
        StatusCode::OK,
        &json!({"resourceType": "Bundle", "type": response_type, "entry": entries}),
    );
    if let Some(ret) = ret {
        response.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_static(return_code(ret)),
        );
    }
    Ok(response)
}

fn error_entry(status: u16, issues: &[Issue]) -> Value {
    let outcome: Value = serde_json::from_slice(&outcome::to_json(issues)).unwrap_or(Value::Null);
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or_default();
    json!({"response": {"status": format!("{status} {reason}"), "outcome": outcome}})
}

/// The resource in a `$validate` body: the body itself, or the `resource`
/// parameter of a `Parameters`.
fn resource_in(body: Value) -> Result<Value, ApiError> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Ok(body);
    }
    body.get("parameter")
        .and_then(Value::as_array)
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some("resource"))
        })
        .and_then(|p| p.get("resource"))
        .cloned()
        .ok_or_else(|| {
            ApiError::Unprocessable(vec![
                Issue::error(IssueType::Required, "The Parameters have no 'resource'")
                    .at("Parameters.parameter"),
            ])
        })
}

/// `POST /fhir/{type}/$validate`: whether a resource is valid FHIR R4 for this
/// store (structure, required codes). 200 with an `OperationOutcome`: its
/// problems, or one information issue. Nothing is stored.
pub(super) async fn validate(
    Path(resource_type): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    validated(&resource_type, body)
}

/// `POST /fhir/Questionnaire/$validate`: whether a Questionnaire can be stored
/// here (it parses, and compiles to a form).
pub(super) async fn validate_questionnaire(Json(body): Json<Value>) -> Result<Response, ApiError> {
    validated("Questionnaire", body)
}

/// The fallback of `/fhir`: 501 for an operation (`$name`) this server does not
/// have, 404 for anything else.
pub(super) async fn fallback(uri: axum::http::Uri) -> Response {
    if uri
        .path()
        .rsplit('/')
        .next()
        .is_some_and(|s| s.starts_with('$'))
    {
        no_such_operation()
    } else {
        ApiError::NotFound.into_response()
    }
}

fn validated(resource_type: &str, body: Value) -> Result<Response, ApiError> {
    let resource_type = resource_type.to_owned();
    if resource_type != "Questionnaire" {
        known_type(&resource_type)?;
    }
    let resource = resource_in(body)?;
    let problems: Vec<Issue> = if resource_type == "Questionnaire" {
        match crate::fhir::questionnaire::parse_value(resource) {
            Err(issue) => vec![issue],
            Ok(parsed) => crate::fhir::questionnaire::compile(&parsed, "validate")
                .err()
                .unwrap_or_default(),
        }
    } else {
        crate::fhir::resource::check(&resource_type, &resource)
            .err()
            .into_iter()
            .collect()
    };
    let issues = if problems.is_empty() {
        vec![Issue {
            severity: Severity::Information,
            code: IssueType::Informational,
            diagnostics: format!("The {resource_type} is valid"),
            expression: None,
        }]
    } else if resource_type == "Questionnaire" {
        problems
    } else {
        problems
            .into_iter()
            .map(|i| match i.expression.clone() {
                Some(e) => i.at(format!("{resource_type}.{e}")),
                None => i,
            })
            .collect()
    };
    Ok(outcome_response(StatusCode::OK, &issues))
}

/// The operations each type has, as the CapabilityStatement lists them.
fn operations(resource_type: &str) -> Vec<Value> {
    let op = |name: &str, definition: &str| json!({"name": name, "definition": definition});
    let mut ops = vec![op(
        "validate",
        "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    )];
    match resource_type {
        "Patient" => ops.push(op(
            "match",
            "http://hl7.org/fhir/OperationDefinition/Patient-match",
        )),
        "QuestionnaireResponse" => ops.push(op(
            "extract",
            "http://hl7.org/fhir/uv/sdc/OperationDefinition/QuestionnaireResponse-extract",
        )),
        "Questionnaire" => ops.push(op(
            "populate",
            "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate",
        )),
        _ => {}
    }
    ops
}

/// `GET /fhir/metadata`: what this server does, and nothing it does not.
pub(super) async fn metadata(headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    let resources: Vec<Value> = TYPES
        .iter()
        .map(|t| {
            let mut params: Vec<Value> = PARAMETERS
                .iter()
                .find(|(name, _)| name == t)
                .map(|(_, p)| p.iter().map(|(n, k)| json!({"name": n, "type": kind_code(*k)})).collect())
                .unwrap_or_default();
            for (n, k) in [("_id", "token"), ("_lastUpdated", "date"), ("_tag", "token")] {
                params.push(json!({"name": n, "type": k}));
            }
            let interactions = ["read", "vread", "update", "create", "search-type", "history-instance"];
            json!({
                "type": t,
                "documentation": "Search: modifiers :missing on every parameter, :exact and :contains on strings, :not on tokens and _id (any other is 422); _count (0: the total only), _offset, _sort (_lastUpdated and the string and date parameters, - for descending), _summary (count, true, false), _elements, _total. No DELETE or PATCH: the store keeps what patients sent.",
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-match",
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "interaction": interactions.iter().map(|c| json!({"code": c})).collect::<Vec<_>>(),
                "searchParam": params,
                "operation": operations(t),
            })
        })
        .chain(std::iter::once(json!({
            "type": "Questionnaire",
            "versioning": "versioned",
            "updateCreate": true,
            "conditionalRead": "not-match",
            "interaction": [{"code": "read"}, {"code": "update"}, {"code": "create"}, {"code": "search-type"}],
            "searchParam": [{"name": "url", "type": "uri"}],
            "operation": operations("Questionnaire"),
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
            "date": "2026-12-07",
            "kind": "instance",
            "software": {"name": "Intake", "version": env!("CARGO_PKG_VERSION")},
            "implementation": {"description": "Intake's embedded FHIR store", "url": base},
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json", "json"],
            "rest": [{
                "mode": "server",
                "security": {
                    "description": "A staff session (POST /api/staff/login; X-CSRF-Token on changes) or Authorization: Bearer with a token from `intake token create`. Front desk reads Patient and Task, clinicians also QuestionnaireResponse and Provenance, admins and system tokens write; only /metadata and $validate are open."
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
