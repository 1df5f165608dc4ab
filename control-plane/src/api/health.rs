//! Liveness (`/health`) and readiness (`/ready`: the database answers).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::AppState;

/// The process is up.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The process can serve: the database is reachable.
pub async fn ready(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    match app.db.ping().await {
        Ok(()) => Ok(Json(
            json!({ "status": "ready", "database": app.db.kind() }),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "The database is not reachable.",
            ))
        }
    }
}
