//! `intake`: the Intake server's command line.

use std::process::ExitCode;

use std::path::{Path, PathBuf};

use backend::clock::SystemClock;
use backend::questionnaires::{self, SaveError};
use backend::{Application, Config, db, telemetry};
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
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => serve(*config).await,
        Command::Import { dir, data } => import(&dir, &data).await,
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
            Err(SaveError::Invalid(issues)) => {
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
