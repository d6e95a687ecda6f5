//! The Intake server.
//!
//! [`Application::build`] binds the listener and wires the router; `main.rs` only
//! parses the command line. See ARCHITECTURE.md for the map.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod emr;
pub mod fhir;
pub mod guard;
pub mod http;
pub mod intake;
pub mod invitation;
pub mod kiosk;
pub mod questionnaires;
pub mod review;
pub mod state;
pub mod static_files;
pub mod store;
pub mod telemetry;

pub use app::Application;
pub use config::Config;
pub use state::AppState;
