//! The one error type every handler returns: `{"error": "<code>", "message": "<sentence>"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use playback::Reason;
use serde::Serialize;

use crate::db::DbError;
use crate::keys::CustodyError;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A JWT failure: always 401 with the reason's code.
    pub fn jwt(reason: Reason) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, reason.code(), reason.message())
    }

    /// An entitlement or lookup refusal with the status the contract gives `reason`.
    pub fn denied(reason: Reason) -> Self {
        let status = match reason {
            Reason::NotFound => StatusCode::NOT_FOUND,
            Reason::NotReady => StatusCode::CONFLICT,
            Reason::KeyRevoked => StatusCode::GONE,
            Reason::NotEntitled | Reason::TierRequired => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        Self::new(status, reason.code(), reason.message())
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such resource; check the id in the path.",
        )
    }

    pub fn unknown_file() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such file.")
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "The upload is larger than the limit of {limit} bytes (storage.max_upload_bytes)."
            ),
        )
    }

    /// 413 for a JSON body over its endpoint's limit ([`super::extract::JsonBody`]).
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body is larger than the {limit} bytes this endpoint accepts."),
        )
    }

    /// 422 for a tier name no tier has (the name is echoed, cut to 64 characters).
    pub fn unknown_tier(name: &str) -> Self {
        let shown: String = name.chars().take(64).collect();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_tier",
            format!("No subscription tier is named {shown:?}; GET /tiers lists them."),
        )
    }

    /// Logs the cause and answers a generic 500 (causes may name paths or SQL).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "An internal error occurred; the control plane's logs have the details.",
        )
    }
}

impl ApiError {
    /// A key-custody failure. An unreachable or failing backend is a 503 that names it (the
    /// operator's cue to look at KMS, OpenBao or the HSM); an envelope that does not open is
    /// the server's fault, answered as a generic 500 and logged.
    pub fn custody(backend: &str, error: CustodyError) -> Self {
        match error {
            CustodyError::Backend(detail) => {
                tracing::error!(backend, error = %detail, "key custody unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "custody_unavailable",
                    format!(
                        "Key custody backend '{backend}' is unavailable; nothing was changed. \
                         Retry later; the control plane's logs have the cause."
                    ),
                )
            }
            other => Self::internal(format!("key custody ({backend}): {other}")),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::UnknownTier(name) => ApiError::unknown_tier(&name),
            busy if busy.is_busy() => {
                // Contention, not a fault: write transactions wait for the lock first (see
                // `crate::db`), so this only happens under a sustained write storm.
                tracing::warn!(error = %busy, "database busy");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_busy",
                    "The database is busy with other writes; retry shortly.",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// Fallback for unknown routes.
pub async fn route_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such endpoint; see the control plane's API list in its README.",
    )
}

/// Fallback for a known route called with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not accept that HTTP method.",
    )
}
