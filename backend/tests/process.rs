//! The `intake` binary as an operator runs it.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

#[test]
fn sigterm_stops_the_server_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .args(["--dist", "/nonexistent"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(data.path().join("intake.db").is_file());
}

#[test]
fn import_loads_every_fixture_and_reports_what_it_could_not_use() {
    let data = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/questionnaires");
    let output = Command::new(env!("CARGO_BIN_EXE_intake"))
        .arg("import")
        .arg(&fixtures)
        .arg("--data")
        .arg(data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("26 of 26 file(s) imported"), "{stdout}");
    assert!(
        stdout.contains("imported lforms__phq9.json as Questionnaire/lforms--phq9 (version 1"),
        "{stdout}"
    );
    assert!(stdout.contains("cannot be expanded here"), "{stdout}");
}

#[test]
fn import_goes_on_past_a_broken_file_and_then_fails() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-broken.json"), "{ not json").unwrap();
    std::fs::write(
        dir.path().join("b-good.json"),
        r#"{"resourceType": "Questionnaire", "id": "good", "status": "active",
            "item": [{"linkId": "q", "type": "string", "text": "Name"}]}"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_intake"))
        .arg("import")
        .arg(dir.path())
        .arg("--data")
        .arg(data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(stdout.contains("FAILED a-broken.json"), "{stdout}");
    assert!(
        stdout.contains("imported b-good.json as Questionnaire/good"),
        "{stdout}"
    );
    assert!(stdout.contains("1 of 2 file(s) imported"), "{stdout}");
}
