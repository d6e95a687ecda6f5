//! The parts of a FHIR `OperationOutcome` that the browser reads.
//!
//! The server builds outcomes with a full FHIR library; the browser only needs to
//! read a few fields, so it gets this small view instead of FHIR machinery.

use serde::{Deserialize, Serialize};

/// A FHIR R4 `OperationOutcome`, reduced to what the app shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcome {
    /// Always `OperationOutcome`.
    pub resource_type: String,
    /// The issues.
    #[serde(default)]
    pub issue: Vec<OutcomeIssue>,
}

/// One `OperationOutcome.issue`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeIssue {
    /// How bad it is.
    pub severity: Severity,
    /// FHIR IssueType code (`required`, `value`, `invalid`, ...).
    pub code: String,
    /// A human message, in English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    /// Where: the field's JSON name, or a FHIRPath for FHIR resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expression: Vec<String>,
}

/// FHIR IssueSeverity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// fatal
    Fatal,
    /// error
    Error,
    /// warning
    Warning,
    /// information
    Information,
}
