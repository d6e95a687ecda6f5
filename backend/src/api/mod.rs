//! The JSON API under `/api`: one file per resource, all routes here.

mod demographics;
mod health;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;
use crate::error::ApiError;

/// Every `/api` route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::get))
        .route("/demographics/validate", post(demographics::validate))
        .fallback(|| async { ApiError::NotFound })
        // Answers may carry patient data: no cache, in the browser or between, keeps them.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}
