//! Intake's FHIR API driven by a FHIR client nobody here wrote: Medplum's
//! `MedplumClient` (`@medplum/core`, the version of the peer in
//! `tests/peers/medplum`, installed there by `cargo xtask setup`), running
//! `tests/peers/medplum/client.mjs`: create, search paged to the end, conditional
//! create, update with `If-Match`, a batch with GET entries, a transaction (sent to
//! `/fhir/`, as the client joins its base). Any step's error fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;

#[tokio::test]
async fn medplums_client_does_everyday_work_without_an_error() {
    let dir = common::medplum::peer_dir();
    assert!(
        dir.join("node_modules/@medplum/core/package.json")
            .is_file(),
        "@medplum/core is not installed in {}: run `cargo xtask setup`",
        dir.display()
    );
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
    let token = common::admin_token(app.db(), "medplum-client").await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let (node_dir, node_origin, node_token) = (dir.clone(), origin.clone(), token.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(std::env::var_os("NODE").unwrap_or_else(|| "node".into()))
            .arg("client.mjs")
            .current_dir(&node_dir)
            .env("INTAKE_ORIGIN", &node_origin)
            .env("INTAKE_TOKEN", &node_token)
            .stdin(Stdio::null())
            .output()
            .expect("node runs (`cargo xtask setup` installs it)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    assert!(
        output.status.success(),
        "the client failed:\n{stdout}\n{stderr}"
    );
    for step in [
        "create",
        "search with paging to the end",
        "conditional create",
        "update with If-Match",
        "batch with GET entries",
        "transaction",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("ok {step}")),
            "{step} did not finish:\n{stdout}\n{stderr}"
        );
    }
}
