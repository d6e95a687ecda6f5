//! The real `intake serve` binary as a child process, for tests that must kill it
//! (SIGKILL: no shutdown code runs) and start it again on the same data folder.
//!
//! ```ignore
//! let data = tempfile::tempdir().unwrap();
//! let mut server = IntakeProcess::start(data.path(), &[("INTAKE_EMR_URL", &url)]);
//! server.kill9();
//! let server = IntakeProcess::start(data.path(), &[("INTAKE_EMR_URL", &url)]);
//! ```

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the binary may take to open its database and listen.
const STARTUP: Duration = Duration::from_secs(30);

/// A running `intake serve`; dropping it kills it.
#[derive(Debug)]
pub(crate) struct IntakeProcess {
    child: Child,
    /// `http://127.0.0.1:{port}`.
    pub(crate) base: String,
    log: PathBuf,
}

impl IntakeProcess {
    /// Starts `intake serve` on 127.0.0.1:0 over `data` with `env` (settings such as
    /// `INTAKE_EMR_URL`) and waits for its `listening on` line. Its log goes to
    /// `serve-{n}.log` in `data` (the server's database is `intake.db` there), the
    /// `n`th start over that folder.
    pub(crate) fn start(data: &Path, env: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(data).expect("data folder");
        let log = (1..)
            .map(|n| data.join(format!("serve-{n}.log")))
            .find(|p| !p.exists())
            .expect("a free log name");
        let mut command = Command::new(env!("CARGO_BIN_EXE_intake"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(["--dist", "/nonexistent"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        // Only what the test sets: nothing from the environment it runs in.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("INTAKE_") {
                command.env_remove(name);
            }
        }
        command.env("RUST_LOG", "info,sqlx=warn");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("starts the intake binary");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready, listening) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(base) = line.strip_prefix("listening on ") {
                    let _ = ready.send(base.to_owned());
                }
            }
        });
        let mut server = Self {
            child,
            base: String::new(),
            log,
        };
        match listening.recv_timeout(STARTUP) {
            Ok(base) => server.base = base,
            Err(e) => {
                let exit = server.child.try_wait().ok().flatten();
                panic!(
                    "intake serve did not start ({e}; exit: {exit:?}); its log:\n{}",
                    server.log()
                );
            }
        }
        server
    }

    /// A client sending a new admin token made on `data` with `intake token create
    /// --may-link` (these tests' client stands for the EMR's integration),
    /// waiting at most 20 s for an answer. `/fhir` and most of `/api` need a token.
    pub(crate) fn admin_client(data: &Path) -> reqwest::Client {
        std::fs::create_dir_all(data).expect("data folder");
        let name = format!(
            "tests-{}",
            backend::fhir::extract::IdGenerator::uuid(&backend::fhir::extract::RandomIds)
        );
        let out = Command::new(env!("CARGO_BIN_EXE_intake"))
            .args([
                "token",
                "create",
                "--role",
                "admin",
                "--may-link",
                "--name",
                &name,
                "--data",
            ])
            .arg(data)
            .env("RUST_LOG", "error")
            .output()
            .expect("runs intake token create");
        assert!(out.status.success(), "intake token create: {out:?}");
        let stdout = String::from_utf8(out.stdout).expect("UTF-8");
        let token = stdout.lines().last().expect("the token's line").trim();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("a header value"),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(20))
            .build()
            .expect("a client")
    }

    /// SIGKILL (what `kill -9` sends), then waits for the process to be gone.
    pub(crate) fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("waits for the killed server");
        assert!(!status.success(), "killed, yet exited {status:?}");
    }

    /// What the server logged so far (no patient data: our logs never carry any).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for IntakeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
