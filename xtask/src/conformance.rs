//! `cargo xtask conformance fhirpath`: the official FHIRPath R4 suite
//! (`../shared/fixtures/fhirpath/` from the repository root) through our engine.
//!
//! The runner is the `shared` test `fhirpath_conformance` (so the normal test run
//! checks that no passing case regresses); this command runs it in report mode:
//! passed, failed and skipped per group, then one JSON line
//! `{"total": …, "passed": …, "failed": …, "skipped": …}`. `--failures` also lists
//! each failing case; `--write` rewrites `shared/tests/fhirpath-passing.txt`
//! (the cases the normal run requires to pass) from this run.

use anyhow::Context as _;

use crate::{cargo, workspace_root};

/// Runs the suite named by `args[0]` (only `fhirpath` exists).
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    if args.first().map(String::as_str) != Some("fhirpath") {
        anyhow::bail!("usage: cargo xtask conformance fhirpath [--failures] [--write]");
    }
    let mut test = cargo();
    test.args([
        "test",
        "-p",
        "shared",
        "--features",
        "launch-context",
        "--test",
        "fhirpath_conformance",
        "--",
        "--nocapture",
        "--test-threads=1",
    ]);
    let write = args.iter().any(|a| a == "--write");
    test.env(
        "FHIRPATH_CONFORMANCE",
        if write { "write" } else { "report" },
    );
    if args.iter().any(|a| a == "--failures") {
        test.env("FHIRPATH_CONFORMANCE_FAILURES", "1");
    }
    println!("==> FHIRPath conformance (tests-fhir-r4.xml)");
    let out = test
        .current_dir(workspace_root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("starting cargo test")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The report without libtest's own lines, and the totals last of all.
    let mut totals = None;
    for line in text.lines() {
        if line.starts_with("{\"total\"") {
            totals = Some(line.to_owned());
        } else if !(line.starts_with("running ")
            || line.starts_with("test ")
            || line.starts_with("test result")
            || line.trim().is_empty()
            || line.trim() == "ok")
        {
            println!("{line}");
        }
    }
    if !out.status.success() {
        if let Some(totals) = totals {
            println!("{totals}");
        }
        anyhow::bail!("cases that passed before now fail (listed above)");
    }
    println!("{}", totals.context("the runner printed no totals")?);
    Ok(())
}
