//! `OperationOutcome`: how every error leaves the server.

use fhirbolt::model::r4::resources::{OperationOutcome, OperationOutcomeIssue};

/// FHIR IssueSeverity (the ones the server sends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The action failed.
    Error,
    /// Worth knowing; the action went ahead.
    Warning,
    /// Nothing wrong.
    Information,
}

impl Severity {
    fn code(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// FHIR IssueType (the ones the server sends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueType {
    /// Content invalid against the specification or a profile.
    Invalid,
    /// A structural issue: not parseable.
    Structure,
    /// A required element is missing.
    Required,
    /// An element value is invalid.
    Value,
    /// A content length limit was exceeded.
    TooLong,
    /// The resource or route does not exist.
    NotFound,
    /// The operation or content type is not supported.
    NotSupported,
    /// An unexpected internal error.
    Exception,
    /// A transient problem: try again.
    Transient,
    /// A rule of the content was broken (an answer to a disabled question).
    BusinessRule,
    /// Nothing wrong; for information.
    Informational,
    /// The resource changed since it was read (a version conflict).
    Conflict,
    /// More than one resource matched where one was expected.
    Duplicate,
    /// The request would cost more than the server spends on one.
    TooCostly,
    /// The caller's role may not do this.
    Forbidden,
}

impl IssueType {
    fn code(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::TooLong => "too-long",
            IssueType::Conflict => "conflict",
            IssueType::Duplicate => "duplicate",
            IssueType::TooCostly => "too-costly",
            IssueType::Forbidden => "forbidden",
            IssueType::NotFound => "not-found",
            IssueType::NotSupported => "not-supported",
            IssueType::Exception => "exception",
            IssueType::Transient => "transient",
            IssueType::BusinessRule => "business-rule",
            IssueType::Informational => "informational",
        }
    }
}

/// One issue, before it becomes FHIR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// How bad.
    pub severity: Severity,
    /// What kind.
    pub code: IssueType,
    /// A human message, without patient data.
    pub diagnostics: String,
    /// Where, as the field's name or a path.
    pub expression: Option<String>,
}

impl Issue {
    /// An error issue.
    pub fn error(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    /// A warning issue.
    pub fn warning(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, diagnostics)
        }
    }

    /// The same issue, located at `expression`.
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }
}

/// The issues as FHIR R4 JSON.
pub fn to_json(issues: &[Issue]) -> Vec<u8> {
    let outcome = OperationOutcome {
        issue: issues.iter().map(to_fhir).collect(),
        ..Default::default()
    };
    // Every required element (severity, code) is set above, so serializing cannot
    // meet fhirbolt's "$invalid" placeholder; keep a valid answer even if it did.
    fhirbolt::json::to_vec(&outcome, None).unwrap_or_else(|_| {
        br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}"#
            .to_vec()
    })
}

fn to_fhir(issue: &Issue) -> OperationOutcomeIssue {
    OperationOutcomeIssue {
        severity: issue.severity.code().into(),
        code: issue.code.code().into(),
        diagnostics: Some(issue.diagnostics.as_str().into()),
        expression: issue.expression.iter().map(|e| e.as_str().into()).collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_fhir_json_that_the_browser_view_reads() {
        let json = to_json(&[
            Issue::error(IssueType::Required, "Enter your family name").at("family"),
            Issue::error(IssueType::Structure, "Not JSON"),
        ]);
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "required",
                 "diagnostics": "Enter your family name", "expression": ["family"]},
                {"severity": "error", "code": "structure", "diagnostics": "Not JSON"}
            ]})
        );
        // fhirbolt turns on serde_json's arbitrary_precision for this build: the
        // browser's view must still decode what the server sends.
        let view: shared::outcome::OperationOutcome = serde_json::from_slice(&json).unwrap();
        assert_eq!(view.issue.len(), 2);
        assert_eq!(view.issue[0].expression, ["family"]);
    }
}
