//! The blocking searches a match runs on a remote EMR: what the record has, each
//! with a count, the values escaped as FHIR's search syntax wants.

use serde_json::Value;

use super::SEARCH_COUNT;
use super::client::{Answer, unavailable};
use super::refusals::{json_of, refused};
use crate::emr::EmrError;

/// One page of a search: the resources found, and whether there were more.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub(crate) resources: Vec<Value>,
    pub(crate) more: bool,
}

/// FHIR search's special characters in a value, escaped.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '$' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The resources of a `searchset` (matches only, not included resources).
pub(crate) fn page_of(what: &str, answer: &Answer, resource_type: &str) -> Result<Page, EmrError> {
    if !answer.ok() {
        return Err(refused(what, answer));
    }
    let bundle = json_of(what, answer)?;
    if bundle["resourceType"] != "Bundle" {
        return Err(unavailable(
            format!("{what}: the EMR's answer is not a Bundle"),
            None,
        ));
    }
    let resources = bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| {
                    e.pointer("/search/mode")
                        .and_then(Value::as_str)
                        .is_none_or(|m| m == "match")
                })
                .filter_map(|e| e.get("resource"))
                .filter(|r| r["resourceType"] == resource_type)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let more = bundle["link"]
        .as_array()
        .is_some_and(|links| links.iter().any(|l| l["relation"] == "next"));
    Ok(Page { resources, more })
}

/// The blocking searches for `record`: each a pass name (for logs) and its
/// parameters. Values as written: the server does its own matching.
pub(crate) fn blocking_searches(
    record: &matching::PatientRecord,
) -> Vec<(&'static str, Vec<(String, String)>)> {
    let trimmed = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let given = record
        .given
        .first()
        .and_then(|g| g.split_whitespace().next())
        .map(str::to_owned);
    let family = record.family.as_deref().and_then(trimmed);
    let birth = record
        .birth_date
        .as_deref()
        .map(str::trim)
        .filter(|b| {
            (4..=10).contains(&b.len()) && b.bytes().all(|c| c.is_ascii_digit() || c == b'-')
        })
        .map(str::to_owned);
    let postal = record.postal_code.as_deref().and_then(trimmed);
    let p = |name: &str, value: String| (name.to_owned(), value);
    let mut searches = Vec::new();
    if let (Some(f), Some(b)) = (&family, &birth) {
        searches.push((
            "family+birthdate",
            vec![p("family", escape(f)), p("birthdate", b.clone())],
        ));
    }
    if let (Some(g), Some(b)) = (&given, &birth) {
        searches.push((
            "given+birthdate",
            vec![p("given", escape(g)), p("birthdate", b.clone())],
        ));
    }
    if let (Some(f), Some(g)) = (&family, &given) {
        searches.push((
            "family+given",
            vec![p("family", escape(f)), p("given", escape(g))],
        ));
    }
    for id in record
        .identifiers
        .iter()
        .filter(|i| !i.value.trim().is_empty())
        .take(3)
    {
        let value = match trimmed(&id.system) {
            Some(system) => format!("{}|{}", escape(&system), escape(id.value.trim())),
            None => escape(id.value.trim()),
        };
        searches.push(("identifier", vec![p("identifier", value)]));
    }
    for phone in record.phones.iter().filter_map(|x| trimmed(x)).take(2) {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        if digits != phone && digits.len() >= 7 {
            searches.push(("phone", vec![p("phone", digits)]));
        }
        searches.push(("phone", vec![p("phone", escape(&phone))]));
    }
    for email in record.emails.iter().filter_map(|x| trimmed(x)).take(2) {
        searches.push(("email", vec![p("email", escape(&email))]));
    }
    if let (Some(code), Some(initial)) = (&postal, given.as_deref().and_then(|g| g.chars().next()))
    {
        searches.push((
            "address-postalcode+given-initial",
            vec![
                p("address-postalcode", escape(code)),
                p("given", escape(&initial.to_string())),
            ],
        ));
    }
    for (_, params) in &mut searches {
        params.push(p("_count", SEARCH_COUNT.to_string()));
    }
    let mut seen = std::collections::HashSet::new();
    searches.retain(|(_, params)| seen.insert(params.clone()));
    searches
}
