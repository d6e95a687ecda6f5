//! Server settings, from the command line or the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `intake serve` needs to start.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Address to listen on. Use port 0 for any free port.
    #[arg(long, env = "INTAKE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder for the embedded database (created if missing).
    #[arg(long, env = "INTAKE_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// Folder with the built web app (Trunk's `dist/`).
    #[arg(long, env = "INTAKE_DIST", default_value = "./dist")]
    pub dist: PathBuf,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "INTAKE_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
}
