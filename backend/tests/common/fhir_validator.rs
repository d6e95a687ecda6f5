//! An external FHIR R4 validator for tests: PyPI's `fhir.resources` 6.1.0 (FHIR
//! 4.0.1 models, pydantic), in the virtualenv `cargo xtask setup` makes at
//! `~/.cache/intake/tools/fhir-validator`. It checks structure, types, cardinality
//! and required elements independently of our own code (not terminology bindings).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The validator's Python: `INTAKE_FHIR_VALIDATOR_PYTHON`, else the venv that
/// `cargo xtask setup` installs.
pub(crate) fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("INTAKE_FHIR_VALIDATOR_PYTHON") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache"),
        PathBuf::from,
    );
    cache
        .join("intake")
        .join("tools")
        .join("fhir-validator")
        .join("bin")
        .join("python")
}

/// For each resource, `None` when fhir.resources accepts it as FHIR R4, else
/// its message. Panics, saying how to install it, when the validator is missing.
pub(crate) fn validate(resources: &[Value]) -> Vec<Option<String>> {
    let python = python();
    assert!(
        python.is_file(),
        "the external FHIR R4 validator is not installed ({} is missing): run `cargo xtask setup`, \
         which makes that virtualenv with fhir.resources 6.1.0 from PyPI",
        python.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/common/validate_fhir.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", python.display()));
    let input = serde_json::to_vec(resources).expect("resources as JSON");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("writing to the validator");
    let output = child.wait_with_output().expect("the validator's answer");
    assert!(
        output.status.success(),
        "the FHIR validator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the validator's JSON")
}

/// Asserts every resource is valid FHIR R4, naming each that is not.
pub(crate) fn assert_valid(what: &str, resources: &[Value]) {
    let problems: Vec<String> = validate(resources)
        .into_iter()
        .zip(resources)
        .filter_map(|(problem, resource)| {
            problem.map(|p| format!("{} {}: {p}", resource["resourceType"], what))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "not valid FHIR R4:\n{}",
        problems.join("\n")
    );
}
