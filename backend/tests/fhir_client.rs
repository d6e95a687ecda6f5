//! Intake's FHIR API driven by a FHIR client nobody here wrote: Medplum's
//! `MedplumClient` (`@medplum/core`, the version of the peer in
//! `tests/peers/medplum`, installed there by `cargo xtask setup`), running
//! `tests/peers/medplum/client.mjs`: create, search paged to the end, conditional
//! create, update with `If-Match`, a batch with GET entries, a transaction (sent to
//! `/fhir/`, as the client joins its base). Any step's error fails the test.
//! The same steps with PyPI's `fhirpy` (`tests/peers/fhirpy/client.py`, in the
//! virtualenv `cargo xtask setup` makes for fhir.resources).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;

const STEPS: [&str; 6] = [
    "create",
    "search with paging to the end",
    "conditional create",
    "update with If-Match",
    "batch with GET entries",
    "transaction",
];

/// Runs `command` (with `INTAKE_ORIGIN` and `INTAKE_TOKEN` set) against a fresh
/// server, and asserts it succeeded and printed `ok STEP` for every step.
async fn drive(name: &str, mut command: std::process::Command) {
    let data = tempfile::tempdir().unwrap();
    let config = backend::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data: data.path().to_owned(),
        dist: data.path().join("no-dist"),
        max_body_bytes: 16 * 1024,
        matching: Default::default(),
        delivery: Default::default(),
        emr: Default::default(),
        guard: Default::default(),
        public_url: None,
    };
    let app = backend::Application::build(&config).await.unwrap();
    let origin = format!("http://{}", app.local_addr().unwrap());
    let token = common::admin_token(app.db(), name).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    command
        .env("INTAKE_ORIGIN", &origin)
        .env("INTAKE_TOKEN", &token)
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{name} does not start: {e} (`cargo xtask setup` installs it)"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    assert!(
        output.status.success(),
        "{name} failed:\n{stdout}\n{stderr}"
    );
    for step in STEPS {
        assert!(
            stdout.lines().any(|l| l == format!("ok {step}")),
            "{name}: {step} did not finish:\n{stdout}\n{stderr}"
        );
    }
}

#[tokio::test]
async fn fhirpy_does_everyday_work_without_an_error() {
    let python = common::fhir_validator::python();
    let installed = std::process::Command::new(&python)
        .args(["-c", "import fhirpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "fhirpy is not installed in {}: run `cargo xtask setup`",
        python.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/fhirpy/client.py");
    let mut command = std::process::Command::new(python);
    command.arg(script);
    drive("fhirpy", command).await;
}

#[tokio::test]
async fn medplums_client_does_everyday_work_without_an_error() {
    let dir = common::medplum::peer_dir();
    assert!(
        dir.join("node_modules/@medplum/core/package.json")
            .is_file(),
        "@medplum/core is not installed in {}: run `cargo xtask setup`",
        dir.display()
    );
    let mut command =
        std::process::Command::new(std::env::var_os("NODE").unwrap_or_else(|| "node".into()));
    command.arg("client.mjs").current_dir(&dir);
    drive("medplum-client", command).await;
}
