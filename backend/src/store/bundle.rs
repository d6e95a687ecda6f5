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

/// Each entry of a transaction or batch as a store request (with its position), or
/// the problem with it.
pub fn requests_of(bundle: &Value) -> (Vec<(usize, Request)>, Vec<Problem>) {
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
        let full_url = e.get("fullUrl").and_then(Value::as_str).map(str::to_owned);
        let Some(resource) = e.get("resource").cloned() else {
            problems.push((
                i,
                Issue::error(IssueType::Required, "Each entry needs a resource")
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
                        "Each entry must be POST {type} or PUT {type}/{id}, the type matching its resource",
                    )
                    .at(format!("entry[{i}].request")),
                ));
                continue;
            }
        };
        requests.push((i, request));
    }
    (requests, problems)
}

pub fn entry_response(outcome: &Outcome) -> Value {
    let s = outcome.stored();
    json!({"response": {
        "status": if outcome.status() == 201 { "201 Created" } else { "200 OK" },
        "location": format!("{}/_history/{}", s.reference(), s.version_id),
        "etag": s.etag(),
        "lastModified": s.last_updated,
    }})
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
