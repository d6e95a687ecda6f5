//! Structured logs. Fields are dotted names; no field ever carries patient data.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber, writing to stderr: human-readable by default, JSON lines when
/// `INTAKE_LOG_FORMAT=json`; the level comes from `RUST_LOG` (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Logs go to stderr; stdout carries only the "listening on" line.
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let json = std::env::var("INTAKE_LOG_FORMAT").is_ok_and(|v| v == "json");
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Replaces the default panic hook, which prints the panic's message: for a byte
/// slice of an answer or a search value that message quotes the value (a name, an
/// SSN). This one logs where the panic happened and on which thread, never the
/// message. Installed by `intake` at start (tests keep the default, whose messages
/// are their assertions').
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(panic_hook));
}

/// The hook [`install_panic_hook`] installs.
pub fn panic_hook(info: &std::panic::PanicHookInfo<'_>) {
    let location = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()))
        .unwrap_or_default();
    let thread = std::thread::current();
    tracing::error!(
        panic.location = %location,
        panic.thread = thread.name().unwrap_or("unnamed"),
        "panic (its message is not logged: it may quote request data)"
    );
}
