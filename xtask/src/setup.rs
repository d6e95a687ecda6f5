//! Installs what building and testing need, from the package registries only:
//! the wasm32 target (rustup, or Debian's rustc-web where rustup cannot download),
//! Trunk, wasm-bindgen-cli at the version in Cargo.lock, wasm-opt (npm's binaryen),
//! and for browser tests Debian's Chromium and ChromeDriver and npm's axe-core.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::{cargo, run_step, workspace_root};

const TRUNK_VERSION: &str = "0.22.1";
/// npm's binaryen. Not Debian's (v108): its output breaks in current Chromium.
const BINARYEN_VERSION: &str = "132";
/// npm's axe-core, injected into pages by the accessibility tests.
const AXE_CORE_VERSION: &str = "4.14.1";
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Where the tools and environment for the wasm build are.
#[derive(Debug)]
pub(crate) struct Tools {
    /// Chromium, for the browser tests.
    pub(crate) chromium: PathBuf,
    /// ChromeDriver, for the browser tests.
    pub(crate) chromedriver: PathBuf,
    /// PATH with the installed tools first.
    path: OsString,
    /// Set when the wasm build uses Debian's rustc-web instead of rustup's target.
    debian_fallback: bool,
}

impl Tools {
    /// `trunk` with the tools on PATH and no network access of its own.
    pub(crate) fn trunk_command(&self) -> Command {
        let mut trunk = Command::new("trunk");
        trunk
            .env("TRUNK_OFFLINE", "true")
            .env("TRUNK_SKIP_VERSION_CHECK", "true");
        self.apply(&mut trunk);
        trunk
    }

    /// `cargo` set up to build for wasm32.
    pub(crate) fn wasm_cargo(&self) -> Command {
        let mut command = if self.debian_fallback {
            Command::new("/usr/bin/cargo")
        } else {
            cargo()
        };
        self.apply(&mut command);
        command
    }

    fn apply(&self, command: &mut Command) {
        command.env("PATH", &self.path);
        if self.debian_fallback {
            // Debian ships no prebuilt wasm32 std for rustc-web: build it from source,
            // in a target folder of its own so the two compilers never share artifacts.
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| workspace_root().join("target"), PathBuf::from);
            command
                .env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort")
                .env("CARGO_TARGET_DIR", target.join("wasm-debian"));
        }
    }
}

/// The release build's size settings, set in Trunk's environment only (so the
/// host builds, clippy and dev builds never see them): std rebuilt from source
/// (`rust-src`) for wasm32, optimised for size, with panics as an immediate trap
/// (no panic machinery, no messages), no file/line strings for panic locations and
/// no `Debug` formatting code (`{:?}` prints nothing: the app never shows one).
/// These are unstable flags of the stable compiler, hence `RUSTC_BOOTSTRAP`, which
/// must never go into `.cargo/config.toml` (it would reach every build).
pub(crate) fn size_flags(command: &mut Command) {
    command
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort")
        .env("CARGO_UNSTABLE_BUILD_STD_FEATURES", "optimize_for_size")
        .env("CARGO_UNSTABLE_PANIC_IMMEDIATE_ABORT", "true")
        .env("CARGO_PROFILE_WASM_RELEASE_PANIC", "immediate-abort")
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
            "-Zlocation-detail=none -Zfmt-debug=none",
        );
}

/// Installs whatever is missing and says what it did.
pub(crate) fn install(browser: bool) -> anyhow::Result<Tools> {
    println!("==> checking tools");
    let tools_dir = tools_dir();
    let cargo_bin = home().join(".cargo").join("bin");
    let binaryen_bin = tools_dir.join("binaryen").join("node_modules").join(".bin");
    let mut apt = Apt::default();

    let debian_fallback = ensure_wasm_target(&mut apt)?;
    let mut path = vec![binaryen_bin.clone(), cargo_bin];
    if debian_fallback {
        path.insert(0, PathBuf::from("/usr/bin"));
    }
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(path).context("building PATH")?;

    ensure_crates_fetched(debian_fallback)?;
    ensure_trunk(&path)?;
    ensure_wasm_bindgen(&path)?;
    ensure_wasm_opt(&mut apt, &tools_dir, &binaryen_bin, &path)?;
    let (chromium, chromedriver) = (
        PathBuf::from("/usr/bin/chromium"),
        PathBuf::from("/usr/bin/chromedriver"),
    );
    if browser && !(chromium.is_file() && chromedriver.is_file()) {
        apt.install(&["chromium", "chromium-driver"])?;
    }
    if browser {
        ensure_axe_core(&mut apt, &tools_dir, &path)?;
    }
    ensure_medplum_peer(&mut apt, &path)?;
    ensure_python_fhir_validator(&mut apt, &tools_dir)?;
    ensure_python_fhir_client(&tools_dir)?;
    Ok(Tools {
        chromium,
        chromedriver,
        path,
        debian_fallback,
    })
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

/// Outside the clone, so a fresh clone (as CI makes) reuses what is installed.
pub(crate) fn tools_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map_or_else(|| home().join(".cache"), PathBuf::from)
        .join("intake")
        .join("tools")
}

/// Returns whether the Debian fallback is in use.
fn ensure_wasm_target(apt: &mut Apt) -> anyhow::Result<bool> {
    if rustup_has_wasm_target() {
        println!("    wasm32 target: installed");
        ensure_rust_src();
        return Ok(false);
    }
    println!("    wasm32 target: installing with rustup");
    let added = Command::new("timeout")
        .args(["180", "rustup", "target", "add", WASM_TARGET])
        .status()
        .is_ok_and(|s| s.success());
    if added && rustup_has_wasm_target() {
        ensure_rust_src();
        return Ok(false);
    }
    println!("    rustup could not install the target: using Debian's rustc-web instead");
    apt.install(&[
        "rustc-web",
        "cargo-web",
        "rust-web-src",
        "rust-web-llvm",
        "lld-22",
    ])?;
    // std's own dependencies are fetched with the app's (`ensure_crates_fetched`).
    Ok(true)
}

/// std's source, which the release build compiles for wasm32 (`size_flags`). A
/// failure here shows up as that build's error, which names `rust-src`.
fn ensure_rust_src() {
    let Ok(sysroot) = output(Command::new("rustc").args(["--print", "sysroot"])) else {
        return;
    };
    let library = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/Cargo.lock");
    if library.is_file() {
        println!("    rust-src: installed");
        return;
    }
    println!("    rust-src: installing with rustup");
    let _ = Command::new("timeout")
        .args(["180", "rustup", "component", "add", "rust-src"])
        .status();
}

/// Downloads every crate an offline build needs: Trunk runs cargo `--offline`, and
/// the release build compiles std from source, whose own workspace (`library/` under
/// the sysroot) depends on crates from crates.io that nothing else fetches. Each is
/// checked offline first, so a machine that has them makes no network request.
fn ensure_crates_fetched(debian_fallback: bool) -> anyhow::Result<()> {
    let rustc = if debian_fallback {
        "/usr/bin/rustc"
    } else {
        "rustc"
    };
    let sysroot = output(Command::new(rustc).args(["--print", "sysroot"]))?;
    let std_library = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/Cargo.toml");
    for (what, manifest) in [
        ("the app's crates", workspace_root().join("Cargo.toml")),
        ("the crates std's source needs", std_library),
    ] {
        let fetch = |offline: bool| {
            let mut fetch = if debian_fallback {
                Command::new("/usr/bin/cargo")
            } else {
                cargo()
            };
            fetch
                .arg("fetch")
                .arg("--manifest-path")
                .arg(&manifest)
                // std's workspace uses unstable manifest features.
                .env("RUSTC_BOOTSTRAP", "1");
            if offline {
                fetch
                    .arg("--offline")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
            fetch
        };
        if fetch(true).status().is_ok_and(|s| s.success()) {
            println!("    {what}: downloaded");
            continue;
        }
        println!("    {what}: downloading from crates.io");
        run_step(&format!("cargo fetch ({what})"), fetch(false))?;
    }
    Ok(())
}

fn rustup_has_wasm_target() -> bool {
    let Ok(sysroot) = output(Command::new("rustc").args(["--print", "sysroot"])) else {
        return false;
    };
    Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .join("lib")
        .is_dir()
}

fn ensure_trunk(path: &OsString) -> anyhow::Result<()> {
    let want = format!("trunk {TRUNK_VERSION}");
    if version_of("trunk", path).is_some_and(|v| v.trim() == want) {
        println!("    {want}: installed");
        return Ok(());
    }
    println!("    {want}: installing from crates.io (about 10 minutes on 2 cores)");
    let mut install = cargo();
    install
        .args([
            "install",
            "trunk",
            "--version",
            TRUNK_VERSION,
            "--locked",
            "--ignore-rust-version",
        ])
        // Trunk's own release profile is fat LTO with one codegen unit (26 minutes
        // here); a build tool does not need it.
        .env("CARGO_PROFILE_RELEASE_LTO", "off")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1");
    run_step("cargo install trunk", install)
}

fn ensure_wasm_bindgen(path: &OsString) -> anyhow::Result<()> {
    let root = workspace_root();
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let version =
        locked_version(&lock, "wasm-bindgen").context("wasm-bindgen is not in Cargo.lock")?;
    let trunk_toml =
        std::fs::read_to_string(root.join("Trunk.toml")).context("reading Trunk.toml")?;
    if !trunk_toml.contains(&format!("wasm_bindgen = \"{version}\"")) {
        bail!("Trunk.toml's [tools] wasm_bindgen must be \"{version}\", the version in Cargo.lock");
    }
    let want = format!("wasm-bindgen {version}");
    if version_of("wasm-bindgen", path).is_some_and(|v| v.trim() == want) {
        println!("    {want}: installed");
        return Ok(());
    }
    println!("    {want}: installing wasm-bindgen-cli from crates.io (about 4 minutes)");
    let mut locked = cargo();
    locked.args([
        "install",
        "wasm-bindgen-cli",
        "--version",
        &version,
        "--locked",
    ]);
    if run_step("cargo install wasm-bindgen-cli --locked", locked).is_ok() {
        return Ok(());
    }
    // Its lock file has named a since-yanked crate before; resolve afresh then.
    let mut unlocked = cargo();
    unlocked.args(["install", "wasm-bindgen-cli", "--version", &version]);
    run_step("cargo install wasm-bindgen-cli", unlocked)
}

fn ensure_wasm_opt(
    apt: &mut Apt,
    tools_dir: &Path,
    bin: &Path,
    path: &OsString,
) -> anyhow::Result<()> {
    let want = format!("version_{BINARYEN_VERSION}");
    let trunk_toml = std::fs::read_to_string(workspace_root().join("Trunk.toml"))?;
    if !trunk_toml.contains(&format!("wasm_opt = \"{want}\"")) {
        bail!("Trunk.toml's [tools] wasm_opt must be \"{want}\"");
    }
    let wasm_opt = bin.join("wasm-opt");
    if version_of(wasm_opt.as_os_str(), path).is_some_and(|v| v.contains(&want)) {
        println!("    wasm-opt {BINARYEN_VERSION}: installed");
        return Ok(());
    }
    if version_of("npm", path).is_none() {
        apt.install(&["nodejs", "npm"])?;
    }
    println!(
        "    wasm-opt {BINARYEN_VERSION}: installing npm's binaryen into {}",
        tools_dir.display()
    );
    let dir = tools_dir.join("binaryen");
    std::fs::create_dir_all(&dir)?;
    let mut npm = Command::new("npm");
    npm.args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(format!("binaryen@{BINARYEN_VERSION}.0.0"));
    run_step("npm install binaryen", npm)
}

/// axe-core for the accessibility tests, in `tools/axe-core`, where the test harness
/// looks for `axe.min.js` (`tests::axe_core_script`).
fn ensure_axe_core(apt: &mut Apt, tools_dir: &Path, path: &OsString) -> anyhow::Result<()> {
    let dir = tools_dir.join("axe-core");
    let package = dir.join("node_modules").join("axe-core");
    let installed = std::fs::read_to_string(package.join("package.json"))
        .is_ok_and(|json| json.contains(&format!("\"version\": \"{AXE_CORE_VERSION}\"")));
    if installed && package.join("axe.min.js").is_file() {
        println!("    axe-core {AXE_CORE_VERSION}: installed");
        return Ok(());
    }
    if version_of("npm", path).is_none() {
        apt.install(&["nodejs", "npm"])?;
    }
    println!(
        "    axe-core {AXE_CORE_VERSION}: installing from npm into {}",
        dir.display()
    );
    std::fs::create_dir_all(&dir)?;
    let mut npm = Command::new("npm");
    npm.args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(format!("axe-core@{AXE_CORE_VERSION}"));
    run_step("npm install axe-core", npm)
}

/// The FHIR R4 server the EMR client is tested against (`backend/tests/peers/medplum`,
/// npm's Medplum FHIR router, pinned by its package-lock.json): `npm ci` there when its
/// node_modules is missing or older than the lock file.
fn ensure_medplum_peer(apt: &mut Apt, path: &OsString) -> anyhow::Result<()> {
    let dir = workspace_root().join("backend/tests/peers/medplum");
    let modified = |file: &Path| std::fs::metadata(file).and_then(|m| m.modified()).ok();
    // npm rewrites node_modules/.package-lock.json at every install.
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    if installed.is_some() && installed >= modified(&dir.join("package-lock.json")) {
        println!("    Medplum FHIR peer: installed");
        return Ok(());
    }
    if version_of("npm", path).is_none() {
        apt.install(&["nodejs", "npm"])?;
    }
    // Medplum 5 asks for Node 22; on 20 the peer runs with a shim (see server.mjs).
    let node = version_of("node", path).unwrap_or_default();
    let major: u32 = node
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        println!(
            "    warning: the Medplum FHIR peer needs Node 20 or newer, not {}",
            node.trim()
        );
    }
    println!("    Medplum FHIR peer: npm ci in {}", dir.display());
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir);
    run_step("npm ci (Medplum FHIR peer)", npm)
}

/// fhir.resources 6.1.0's models are FHIR R4 (4.0.1); later releases default to
/// R4B (6.5) or R5 (7 on). It needs pydantic 1.
const FHIR_RESOURCES_VERSION: &str = "6.1.0";
const PYDANTIC_VERSION: &str = "1.10.27";

/// The external FHIR R4 validator the backend tests run over what the server
/// generates (`backend/tests/common/fhir_validator.rs`): PyPI's fhir.resources in
/// a virtualenv at `tools/fhir-validator`.
fn ensure_python_fhir_validator(apt: &mut Apt, tools_dir: &Path) -> anyhow::Result<()> {
    let venv = tools_dir.join("fhir-validator");
    let python = venv.join("bin").join("python");
    let expected = format!("{FHIR_RESOURCES_VERSION} 4.0.1");
    let installed = || {
        output(Command::new(&python).args([
            "-c",
            "import fhir.resources as f; print(f.__version__, f.__fhir_version__)",
        ]))
        .is_ok_and(|v| v.trim() == expected)
    };
    if installed() {
        println!("    fhir.resources {FHIR_RESOURCES_VERSION} (FHIR R4 validator): installed");
        return Ok(());
    }
    println!(
        "    fhir.resources {FHIR_RESOURCES_VERSION}: installing from PyPI into {}",
        venv.display()
    );
    let make_venv = || {
        let mut command = Command::new("python3");
        command.args(["-m", "venv", "--clear"]).arg(&venv);
        run_step("python3 -m venv", command)
    };
    if make_venv().is_err() {
        apt.install(&["python3", "python3-venv"])?;
        make_venv()?;
    }
    let mut pip = Command::new(venv.join("bin").join("pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("fhir.resources=={FHIR_RESOURCES_VERSION}"))
        .arg(format!("pydantic=={PYDANTIC_VERSION}"));
    run_step("pip install fhir.resources", pip)?;
    if !installed() {
        bail!(
            "fhir.resources {FHIR_RESOURCES_VERSION} did not install into {}",
            venv.display()
        );
    }
    Ok(())
}

/// fhirpy, PyPI's FHIR client: `backend/tests/fhir_client.rs` drives the server
/// with it (a client nobody here wrote). Pure Python over requests and aiohttp;
/// it leaves fhir.resources' pydantic 1 alone.
const FHIRPY_VERSION: &str = "2.3.1";

/// fhirpy in the validator's virtualenv (made just before).
fn ensure_python_fhir_client(tools_dir: &Path) -> anyhow::Result<()> {
    let venv = tools_dir.join("fhir-validator");
    let installed = || {
        output(
            Command::new(venv.join("bin").join("python"))
                .args(["-c", "import fhirpy; print(fhirpy.__version__)"]),
        )
        .is_ok_and(|v| v.trim() == FHIRPY_VERSION)
    };
    if installed() {
        println!("    fhirpy {FHIRPY_VERSION} (FHIR client for tests): installed");
        return Ok(());
    }
    println!(
        "    fhirpy {FHIRPY_VERSION}: installing from PyPI into {}",
        venv.display()
    );
    let mut pip = Command::new(venv.join("bin").join("pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("fhirpy=={FHIRPY_VERSION}"));
    run_step("pip install fhirpy", pip)?;
    if !installed() {
        bail!(
            "fhirpy {FHIRPY_VERSION} did not install into {}",
            venv.display()
        );
    }
    Ok(())
}

/// The version of `name` in a Cargo.lock.
pub(crate) fn locked_version(lock: &str, name: &str) -> Option<String> {
    let needle = format!("name = \"{name}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    let end = lock[start..].find('"')?;
    Some(lock[start..start + end].to_owned())
}

fn version_of(program: impl AsRef<std::ffi::OsStr>, path: &OsString) -> Option<String> {
    let mut command = Command::new(program);
    command.arg("--version").env("PATH", path);
    output(&mut command).ok()
}

fn output(command: &mut Command) -> anyhow::Result<String> {
    let out = command.stderr(Stdio::null()).output()?;
    if !out.status.success() {
        bail!("{command:?} failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Debian packages, with one `apt-get update` before the first install.
#[derive(Debug, Default)]
struct Apt {
    updated: bool,
}

impl Apt {
    fn install(&mut self, packages: &[&str]) -> anyhow::Result<()> {
        println!("    installing Debian packages: {}", packages.join(" "));
        let sudo = !is_root();
        let apt = |args: &[&str]| {
            let mut command = if sudo {
                Command::new("sudo")
            } else {
                Command::new("apt-get")
            };
            if sudo {
                command.arg("apt-get");
            }
            command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            command
        };
        if !self.updated {
            run_step("apt-get update", apt(&["update", "-q"]))?;
            self.updated = true;
        }
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend_from_slice(packages);
        run_step(
            &format!("apt-get install {}", packages.join(" ")),
            apt(&args),
        )
    }
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locked_version_is_read_from_cargo_lock() {
        let lock = "[[package]]\nname = \"wasm-bindgen-macro\"\nversion = \"9.9.9\"\n\n\
                    [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n";
        assert_eq!(
            locked_version(lock, "wasm-bindgen").as_deref(),
            Some("0.2.130")
        );
        assert_eq!(locked_version(lock, "leptos"), None);
    }

    #[test]
    fn trunk_toml_pins_the_wasm_bindgen_of_cargo_lock() {
        let root = workspace_root();
        let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
        let version = locked_version(&lock, "wasm-bindgen").unwrap();
        let trunk = std::fs::read_to_string(root.join("Trunk.toml")).unwrap();
        assert!(
            trunk.contains(&format!("wasm_bindgen = \"{version}\"")),
            "Trunk.toml vs {version}"
        );
    }
}
