//! What the EMR answered, read without echoing it: a refusal's
//! `OperationOutcome` kept as issue codes and element paths only.

use serde_json::Value;

use super::client::{Answer, unavailable};
use crate::emr::EmrError;
use crate::fhir::outcome::{Issue, IssueType, Severity};

/// The issues of the `OperationOutcome` in a refusal: severity, code and path,
/// never the server's text (it may quote what was sent).
pub(crate) fn issues_of(status: u16, body: &[u8]) -> Vec<Issue> {
    let outcome: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut issues: Vec<Issue> = outcome["issue"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|i| {
                    let code = i["code"].as_str().unwrap_or_default();
                    let kind = match code {
                        "structure" => IssueType::Structure,
                        "required" => IssueType::Required,
                        "value" | "code-invalid" => IssueType::Value,
                        "too-long" => IssueType::TooLong,
                        "not-found" => IssueType::NotFound,
                        "not-supported" => IssueType::NotSupported,
                        "exception" => IssueType::Exception,
                        "transient" => IssueType::Transient,
                        "business-rule" => IssueType::BusinessRule,
                        "conflict" => IssueType::Conflict,
                        "duplicate" | "multiple-matches" => IssueType::Duplicate,
                        "informational" => IssueType::Informational,
                        _ => IssueType::Invalid,
                    };
                    let severity = match i["severity"].as_str() {
                        Some("warning") => Severity::Warning,
                        Some("information") => Severity::Information,
                        _ => Severity::Error,
                    };
                    let shown = if code.len() <= 40
                        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                    {
                        code
                    } else {
                        "invalid"
                    };
                    Issue {
                        severity,
                        code: kind,
                        diagnostics: format!("The EMR refused this ({shown})"),
                        expression: i["expression"][0]
                            .as_str()
                            .or_else(|| i["location"][0].as_str())
                            .and_then(safe_path),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if issues.is_empty() {
        issues.push(Issue::error(
            IssueType::Invalid,
            format!("The EMR refused the request (HTTP {status})"),
        ));
    }
    issues
}

/// A refusal (not 2xx, not transient) as an [`EmrError`].
pub(crate) fn refused(what: &str, answer: &Answer) -> EmrError {
    match answer.status {
        412 => EmrError::PreconditionFailed,
        // A write that collided with another: worth trying again later.
        409 => unavailable(format!("{what}: the EMR answered 409 (conflict)"), None),
        300..=399 => unavailable(
            format!(
                "{what}: the EMR redirected ({}): check INTAKE_EMR_URL",
                answer.status
            ),
            None,
        ),
        status => EmrError::Rejected {
            status,
            issues: issues_of(status, &answer.body),
        },
    }
}

/// A 2xx answer's JSON; a body that is not is the EMR's failure.
pub(crate) fn json_of(what: &str, answer: &Answer) -> Result<Value, EmrError> {
    serde_json::from_slice(&answer.body)
        .map_err(|_| unavailable(format!("{what}: the EMR's answer is not JSON"), None))
}

/// A path-like `expression` (`Patient.name[0].family`) from an issue; anything
/// else (it could quote a value) is dropped.
pub(crate) fn safe_path(s: &str) -> Option<String> {
    (s.len() <= 200
        && !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'[' | b']' | b'_' | b'-')))
    .then(|| s.to_owned())
}
