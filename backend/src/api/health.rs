//! `GET /api/health`: is the server working, and which version is it.

use axum::extract::State;
use axum::http::StatusCode;
use shared::health::{Database, Health, Status};

use crate::db;
use crate::state::AppState;

/// 200 with the report when every part works, 503 with the same report otherwise.
pub(super) async fn get(State(app): State<AppState>) -> (StatusCode, axum::Json<Health>) {
    let database = match db::schema_version(&app.db).await {
        Ok(schema_version) => Database {
            status: Status::Ok,
            schema_version,
        },
        Err(error) => {
            tracing::warn!(%error, "health check: database unavailable");
            Database {
                status: Status::Unavailable,
                schema_version: None,
            }
        }
    };
    let status = database.status;
    let code = match status {
        Status::Ok => StatusCode::OK,
        Status::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    let health = Health {
        status,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database,
    };
    (code, axum::Json(health))
}
