//! `intake`: the Intake server's command line.

use std::process::ExitCode;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use backend::clock::SystemClock;
use backend::questionnaires::{self, SaveError};
use backend::{Application, Config, audit, auth, db, telemetry};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "intake",
    version,
    about = "Patient intake: forms, matching, EMR delivery"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web app and the API.
    Serve(Box<Config>),
    /// Load every `*.json` Questionnaire in a folder into the embedded store.
    Import {
        /// The folder with the Questionnaires.
        dir: PathBuf,
        /// The data folder of the server.
        #[arg(long, env = "INTAKE_DATA", default_value = "./data")]
        data: PathBuf,
    },
    /// Staff accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Bearer tokens for system clients.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Front-desk kiosks.
    #[command(subcommand)]
    Kiosk(KioskCommand),
}

#[derive(Debug, Subcommand)]
enum KioskCommand {
    /// Register a kiosk; prints its one-time enrolment code as the last line.
    Add {
        /// The data folder of the server.
        #[arg(long, env = "INTAKE_DATA", default_value = "./data")]
        data: PathBuf,
        /// Shown to staff, in Provenance and in the audit trail.
        #[arg(long)]
        name: String,
        /// A stored Questionnaire's id the kiosk shows (repeat for several).
        #[arg(long = "form", required = true)]
        forms: Vec<String>,
        /// Seconds without input before the kiosk asks "Are you still there?".
        #[arg(long, default_value_t = backend::kiosk::DEFAULT_IDLE_SECONDS)]
        idle_seconds: u32,
        /// Seconds of that warning's countdown before the kiosk wipes the form.
        #[arg(long, default_value_t = backend::kiosk::DEFAULT_WARN_SECONDS)]
        warn_seconds: u32,
    },
    /// List the kiosks.
    List {
        /// The data folder of the server.
        #[arg(long, env = "INTAKE_DATA", default_value = "./data")]
        data: PathBuf,
    },
    /// Revoke a kiosk: its device is refused from now on.
    Revoke {
        /// The data folder of the server.
        #[arg(long, env = "INTAKE_DATA", default_value = "./data")]
        data: PathBuf,
        /// The kiosk's id (`intake kiosk list`).
        #[arg(long)]
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a staff user; prints a generated password as the last line.
    Add {
        /// The data folder of the server.
        #[arg(long, env = "INTAKE_DATA", default_value = "./data")]
        data: PathBuf,
        /// Letters, digits, '.', '_' and '-' (kept in lower case).
        #[arg(long)]
        username: String,
        /// front-desk, clinician or admin.
        #[arg(long)]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; prints it as the last line (only its hash is kept).
    Create {
        /// The data folder of the server.
        #[arg(long, env = "INTAKE_DATA", default_value = "./data")]
        data: PathBuf,
        /// system or admin.
        #[arg(long)]
        role: String,
        /// What the token is for (unique among live tokens).
        #[arg(long)]
        name: String,
        /// Its intakes prove who the patient is (an EMR's own integration): a
        /// matched chart is filed directly. Without it, a token's intakes are
        /// treated as the public page's (a proposed link for staff).
        #[arg(long)]
        may_link: bool,
    },
    /// Revoke the live token with this name.
    Revoke {
        /// The data folder of the server.
        #[arg(long, env = "INTAKE_DATA", default_value = "./data")]
        data: PathBuf,
        /// The token's name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the audit trail's hash chain: `ok: N events`, or the first broken one.
    Verify {
        /// The data folder of the server.
        #[arg(long, env = "INTAKE_DATA", default_value = "./data")]
        data: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    telemetry::install_panic_hook();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => serve(*config).await,
        Command::Import { dir, data } => import(&dir, &data).await,
        Command::User(UserCommand::Add {
            data,
            username,
            role,
        }) => user_add(&data, &username, &role).await,
        Command::Token(TokenCommand::Create {
            data,
            role,
            name,
            may_link,
        }) => token_create(&data, &role, &name, may_link).await,
        Command::Token(TokenCommand::Revoke { data, name }) => token_revoke(&data, &name).await,
        Command::Audit(AuditCommand::Verify { data }) => audit_verify(&data).await,
        Command::Kiosk(KioskCommand::Add {
            data,
            name,
            forms,
            idle_seconds,
            warn_seconds,
        }) => {
            let new = backend::kiosk::NewKiosk {
                name,
                forms,
                idle_seconds,
                warn_seconds,
            };
            kiosk_add(&data, &new).await
        }
        Command::Kiosk(KioskCommand::List { data }) => kiosk_list(&data).await,
        Command::Kiosk(KioskCommand::Revoke { data, id }) => kiosk_revoke(&data, id).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "intake failed");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(&config).await?;
    let addr = app.local_addr()?;
    let shutdown = shutdown_signal();
    tracing::info!(address = %addr, data = %config.data.display(), "listening");
    // The one line on stdout, for scripts and tests that start the server on port 0.
    #[allow(clippy::print_stdout)]
    {
        println!("listening on http://{addr}");
    }
    app.run_until(shutdown).await
}

/// Imports each Questionnaire in `dir` (by its own id, or the file name when it
/// has none), printing what each import could not use. Fails if any file failed;
/// the others are imported all the same.
#[allow(clippy::print_stdout)]
async fn import(dir: &Path, data: &Path) -> anyhow::Result<()> {
    let db = db::open(data).await?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut failed = 0;
    for path in &files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let value: serde_json::Value = match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        {
            Ok(value) => value,
            Err(error) => {
                println!("FAILED {name}: {error}");
                failed += 1;
                continue;
            }
        };
        let id = value
            .get("id")
            .and_then(serde_json::Value::as_str)
            .map_or_else(|| id_from_file_name(path), str::to_owned);
        match questionnaires::save(&db, &SystemClock, &id, value).await {
            Ok(saved) => {
                println!(
                    "imported {name} as Questionnaire/{id} (version {}, {} warning(s))",
                    saved.version_id,
                    saved.warnings.len()
                );
                for warning in &saved.warnings {
                    let item = warning
                        .link_id
                        .as_deref()
                        .map(|l| format!("[{l}] "))
                        .unwrap_or_default();
                    println!("    warning: {item}{}", warning.message);
                }
            }
            // No If-Match here: a stale version cannot happen.
            Err(SaveError::Invalid(issues) | SaveError::PreconditionFailed(issues)) => {
                failed += 1;
                println!("FAILED {name}:");
                for issue in issues {
                    let at = issue
                        .expression
                        .map(|e| format!(" at {e}"))
                        .unwrap_or_default();
                    println!("    {}{at}", issue.diagnostics);
                }
            }
            Err(SaveError::Database(error)) => return Err(error.into()),
        }
    }
    db.close().await;
    println!(
        "{} of {} file(s) imported",
        files.len() - failed,
        files.len()
    );
    if failed > 0 {
        anyhow::bail!("{failed} file(s) could not be imported");
    }
    Ok(())
}

/// `intake user add`: the password is the last line of stdout, for scripts.
#[allow(clippy::print_stdout)]
async fn user_add(data: &Path, username: &str, role: &str) -> anyhow::Result<()> {
    let name = auth::Username::parse(username).ok_or_else(|| {
        anyhow::anyhow!("a username is 1 to 64 of letters, digits, '.', '_' and '-'")
    })?;
    let role = auth::Role::parse_staff(role)
        .ok_or_else(|| anyhow::anyhow!("the role is front-desk, clinician or admin"))?;
    let db = db::open(data).await?;
    let password = auth::users::add(&db, SystemTime::now(), &name, role).await;
    db.close().await;
    let password = password?;
    println!(
        "added {} ({role}); the password below is shown once, give it to them privately:",
        name.as_str()
    );
    println!("{password}");
    Ok(())
}

/// `intake token create`: the token is the last line of stdout, for scripts.
#[allow(clippy::print_stdout)]
async fn token_create(data: &Path, role: &str, name: &str, may_link: bool) -> anyhow::Result<()> {
    let role = auth::Role::parse_token(role)
        .ok_or_else(|| anyhow::anyhow!("a token's role is system or admin"))?;
    let db = db::open(data).await?;
    let token = if may_link {
        auth::tokens::create_linking(&db, SystemTime::now(), name, role).await
    } else {
        auth::tokens::create(&db, SystemTime::now(), name, role).await
    };
    db.close().await;
    let token = token?;
    println!("token {name} ({role}); send it as `Authorization: Bearer <token>`, shown once:");
    println!("{token}");
    Ok(())
}

/// `intake token revoke`.
#[allow(clippy::print_stdout)]
async fn token_revoke(data: &Path, name: &str) -> anyhow::Result<()> {
    let db = db::open(data).await?;
    let revoked = auth::tokens::revoke(&db, SystemTime::now(), name).await;
    db.close().await;
    revoked?;
    println!("revoked token {name}");
    Ok(())
}

/// `intake audit verify`: fails (non-zero exit) at the first broken link.
#[allow(clippy::print_stdout)]
async fn audit_verify(data: &Path) -> anyhow::Result<()> {
    let db = db::open(data).await?;
    let report = audit::verify_all(&db, data).await;
    db.close().await;
    let report = report?;
    // Details first; the verdict is the last line, for scripts.
    if report.forged > 0 {
        println!(
            "{} checkpoint lines have a signature that does not hold",
            report.forged
        );
    }
    let verdict = match (&report.chain, &report.against, &report.checkpoint) {
        (audit::Verified::Broken { seq }, ..) => format!("broken at event {seq}"),
        (_, audit::Against::Truncated { last, missing }, Some(c)) => format!(
            "truncated: the last checkpoint ({}) names event {}, the database ends at event {last}: at least {missing} events were removed",
            c.at, c.seq
        ),
        (_, audit::Against::Rewritten { seq }, Some(c)) => format!(
            "rewritten: event {seq} differs from the last checkpoint's ({})",
            c.at
        ),
        (audit::Verified::Ok { events }, against, checkpoint) => {
            match (against, checkpoint) {
                (audit::Against::Holds { after }, Some(c)) => println!(
                    "the last checkpoint ({}, event {}) holds; {after} events after it cannot be vouched for yet",
                    c.at, c.seq
                ),
                _ => println!("no checkpoint yet: no event can be vouched for against truncation"),
            }
            format!("ok: {events} events")
        }
    };
    println!("{verdict}");
    anyhow::ensure!(report.holds(), "the audit trail does not hold");
    Ok(())
}

/// `intake kiosk add`: the enrolment code is the last line of stdout, for scripts.
#[allow(clippy::print_stdout)]
async fn kiosk_add(data: &Path, new: &backend::kiosk::NewKiosk) -> anyhow::Result<()> {
    let db = db::open(data).await?;
    let added = backend::kiosk::add(&db, SystemTime::now(), new, auth::command_line_agent()).await;
    db.close().await;
    let added = added?;
    println!(
        "kiosk {} ({}) added; on the kiosk, open /kiosk and type this one-time code before {}:",
        added.id,
        new.name,
        backend::clock::fhir_instant(added.code_expires_at)
    );
    println!("{}", added.code);
    Ok(())
}

/// `intake kiosk list`: one line per kiosk.
#[allow(clippy::print_stdout)]
async fn kiosk_list(data: &Path) -> anyhow::Result<()> {
    let db = db::open(data).await?;
    let kiosks = backend::kiosk::list(&db).await;
    db.close().await;
    for k in kiosks? {
        let state = match (&k.revoked_at, &k.enrolled_at) {
            (Some(at), _) => format!("revoked {at}"),
            (None, Some(at)) => format!("enrolled {at}"),
            (None, None) => "waiting for enrolment".to_owned(),
        };
        println!("{}\t{}\t{}\t{}", k.id, k.name, k.forms.join(","), state);
    }
    Ok(())
}

/// `intake kiosk revoke`.
#[allow(clippy::print_stdout)]
async fn kiosk_revoke(data: &Path, id: i64) -> anyhow::Result<()> {
    let db = db::open(data).await?;
    let revoked =
        backend::kiosk::revoke(&db, SystemTime::now(), id, auth::command_line_agent()).await;
    db.close().await;
    revoked?;
    println!("revoked kiosk {id}");
    Ok(())
}

/// A FHIR id from a file name: letters, digits, '-' and '.', at most 64.
fn id_from_file_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is
/// called, not when first awaited: a supervisor (or a test) may signal as soon as
/// it reads "listening", and a signal with no handler yet would kill the process
/// without a clean shutdown.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |registered: std::io::Result<tokio::signal::unix::Signal>,
                        name: &'static str| async move {
                match registered {
                    Ok(mut signal) => {
                        signal.recv().await;
                    }
                    Err(error) => {
                        tracing::error!(%error, signal = name, "cannot listen for the signal");
                        std::future::pending::<()>().await;
                    }
                }
            };
            let (interrupt, terminate) = signals;
            tokio::select! {
                () = wait(interrupt, "SIGINT") => tracing::info!("SIGINT: shutting down"),
                () = wait(terminate, "SIGTERM") => tracing::info!("SIGTERM: shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(%error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
            tracing::info!("Ctrl-C: shutting down");
        }
    }
}
