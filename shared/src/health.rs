//! The server's health report (`GET /api/health`).

use serde::{Deserialize, Serialize};

/// What `GET /api/health` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` when every part works.
    pub status: Status,
    /// The server's version.
    pub version: String,
    /// The database's state.
    pub database: Database,
}

/// The database part of [`Health`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Database {
    /// Whether a query just succeeded.
    pub status: Status,
    /// The newest migration applied.
    pub schema_version: Option<i64>,
}

/// Up or down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Working.
    Ok,
    /// Not working.
    Unavailable,
}
