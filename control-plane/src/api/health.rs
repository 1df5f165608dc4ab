//! Liveness (`/health`) and readiness (`/ready`: the database and key custody answer).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::AppState;

/// The process is up.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object))
)]
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The process can serve: the database is reachable and the key custody backend answers.
/// A 503 names what is down (`database`, or the custody backend, e.g. `kms`).
#[utoipa::path(
    get,
    path = "/ready",
    tag = "health",
    responses(
        (status = 200, description = "`{status: \"ready\", database, custody}`", body = Object),
        (status = 503, description = "The database or the custody backend is down (`not_ready`)"),
    )
)]
pub async fn ready(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    if let Err(e) = app.db.ping().await {
        tracing::warn!(error = %e, "readiness check failed: database");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "The database is not reachable.",
        ));
    }
    let backend = app.custody.backend();
    if let Err(e) = app.custody.check().await {
        tracing::warn!(backend, error = %e, "readiness check failed: key custody");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("Key custody backend '{backend}' is not reachable."),
        ));
    }
    Ok(Json(json!({
        "status": "ready",
        "database": app.db.kind(),
        "custody": backend,
    })))
}
