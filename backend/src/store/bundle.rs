//! Bundles in and out of the store: a transaction or batch Bundle read as store
//! requests, and the `transaction-response` written back.

use serde_json::{Value, json};

use super::{Outcome, Request};
use crate::fhir::outcome::{Issue, IssueType};

/// `W/"3"` or `"3"` or `3`.
pub fn version_of_etag(value: &str) -> Option<i64> {
    value
        .trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// An entry that cannot be a request: its position and why.
pub type Problem = (usize, Issue);

/// What an entry of a batch or transaction asks.
#[derive(Clone, Debug)]
pub enum EntryRequest {
    /// A write (POST or PUT).
    Write(Request),
    /// `GET {url}`: a read, vread or search, relative to the base.
    Read(String),
}

/// What a client prefers to get back for a write (`Prefer: return=…`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Return {
    /// Nothing but the headers (`return=minimal`).
    Minimal,
    /// The resource as stored (`return=representation`, the default).
    #[default]
    Representation,
    /// An `OperationOutcome` saying what was done (`return=OperationOutcome`).
    OperationOutcome,
}

/// Each entry of a transaction or batch as a store request (with its position), or
/// the problem with it. GET entries are problems here: see [`entries_of`].
pub fn requests_of(bundle: &Value) -> (Vec<(usize, Request)>, Vec<Problem>) {
    let (entries, mut problems) = entries_of(bundle);
    let mut requests = Vec::with_capacity(entries.len());
    for (i, entry) in entries {
        match entry {
            EntryRequest::Write(r) => requests.push((i, r)),
            EntryRequest::Read(_) => problems.push((
                i,
                Issue::error(
                    IssueType::NotSupported,
                    "Only POST and PUT entries are accepted here",
                )
                .at(format!("entry[{i}].request.method")),
            )),
        }
    }
    problems.sort_by_key(|(i, _)| *i);
    (requests, problems)
}

/// Each entry of a transaction or batch as what it asks (with its position), or
/// the problem with it.
pub fn entries_of(bundle: &Value) -> (Vec<(usize, EntryRequest)>, Vec<Problem>) {
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut requests = Vec::new();
    let mut problems = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let method = e.pointer("/request/method").and_then(Value::as_str);
        let url = e
            .pointer("/request/url")
            .and_then(Value::as_str)
            .map(|u| u.trim_start_matches('/'));
        match (method, url) {
            (Some("GET"), Some(u)) if !u.is_empty() => {
                requests.push((i, EntryRequest::Read(u.to_owned())));
                continue;
            }
            (Some("DELETE" | "PATCH" | "HEAD"), _) => {
                problems.push((
                    i,
                    Issue::error(
                        IssueType::NotSupported,
                        "This server does not support DELETE or PATCH: entries may be GET, POST or PUT",
                    )
                    .at(format!("entry[{i}].request.method")),
                ));
                continue;
            }
            _ => {}
        }
        let full_url = e.get("fullUrl").and_then(Value::as_str).map(str::to_owned);
        let Some(resource) = e.get("resource").cloned() else {
            problems.push((
                i,
                Issue::error(IssueType::Required, "A POST or PUT entry needs a resource")
                    .at(format!("entry[{i}].resource")),
            ));
            continue;
        };
        let resource_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let request = match (method, url) {
            (Some("POST"), Some(u)) if u == resource_type => Request::Create {
                resource: resource.clone(),
                if_none_exist: e
                    .pointer("/request/ifNoneExist")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                full_url,
            },
            (Some("PUT"), Some(u))
                if u.split_once('/')
                    .is_some_and(|(t, id)| t == resource_type && !id.contains(['/', '?'])) =>
            {
                let id = u
                    .split_once('/')
                    .map(|(_, id)| id.to_owned())
                    .unwrap_or_default();
                let if_match = match e.pointer("/request/ifMatch").and_then(Value::as_str) {
                    None => None,
                    Some(v) => match version_of_etag(v) {
                        Some(v) => Some(v),
                        None => {
                            problems.push((
                                i,
                                Issue::error(IssueType::Value, "ifMatch must be a version ETag")
                                    .at(format!("entry[{i}].request.ifMatch")),
                            ));
                            continue;
                        }
                    },
                };
                Request::Update {
                    id,
                    resource: resource.clone(),
                    if_match,
                    full_url,
                }
            }
            _ => {
                problems.push((
                    i,
                    Issue::error(
                        IssueType::NotSupported,
                        "Each entry must be GET, POST {type} or PUT {type}/{id}, the type matching its resource",
                    )
                    .at(format!("entry[{i}].request")),
                ));
                continue;
            }
        };
        requests.push((i, EntryRequest::Write(request)));
    }
    (requests, problems)
}

/// A write's `response` entry (with `resource` or `outcome` as `ret` asks).
pub fn entry_response_with(outcome: &Outcome, ret: Return) -> Value {
    let s = outcome.stored();
    let mut entry = json!({"response": {
        "status": if outcome.status() == 201 { "201 Created" } else { "200 OK" },
        "location": format!("{}/_history/{}", s.reference(), s.version_id),
        "etag": s.etag(),
        "lastModified": s.last_updated,
    }});
    match ret {
        Return::Minimal => {}
        Return::Representation => entry["resource"] = s.resource.clone(),
        Return::OperationOutcome => {
            entry["response"]["outcome"] = written_outcome(outcome);
        }
    }
    entry
}

/// The `OperationOutcome` of `Prefer: return=OperationOutcome` for a write.
pub fn written_outcome(outcome: &Outcome) -> Value {
    let s = outcome.stored();
    let what = match outcome {
        Outcome::Created(_) => "Created",
        Outcome::Updated(_) => "Updated",
        Outcome::Existing(_) => "Found (nothing written)",
    };
    json!({"resourceType": "OperationOutcome", "issue": [{
        "severity": "information",
        "code": "informational",
        "diagnostics": format!("{what} {} version {}", s.reference(), s.version_id),
    }]})
}

/// A write's `response` entry, without the resource.
pub fn entry_response(outcome: &Outcome) -> Value {
    entry_response_with(outcome, Return::Minimal)
}

/// The `transaction-response` Bundle for these outcomes.
pub fn transaction_response(outcomes: &[Outcome]) -> Value {
    let entries: Vec<Value> = outcomes.iter().map(entry_response).collect();
    json!({"resourceType": "Bundle", "type": "transaction-response", "entry": entries})
}

/// A transaction Bundle's entries as store requests, or every problem found.
pub fn transaction_requests(bundle: &Value) -> Result<Vec<Request>, Vec<Issue>> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(vec![
            Issue::error(IssueType::Invalid, "Send a Bundle").at("resourceType"),
        ]);
    }
    if bundle.get("type").and_then(Value::as_str) != Some("transaction") {
        return Err(vec![
            Issue::error(IssueType::NotSupported, "Send a transaction Bundle").at("type"),
        ]);
    }
    let (requests, problems) = requests_of(bundle);
    if problems.is_empty() {
        Ok(requests.into_iter().map(|(_, r)| r).collect())
    } else {
        Err(problems.into_iter().map(|(_, i)| i).collect())
    }
}
