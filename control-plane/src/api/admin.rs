//! The admin API (a JWT whose `roles` contain `admin`): changes edges must hear about at once.
//!
//! - `POST /admin/v1/videos/{videoId}/keys/{keyId}/revoke` → 200
//!   `{videoId, keyId, revokedAt, alreadyRevoked, edgesNotified}`; 404 for a key the title
//!   does not have. Idempotent: a repeat keeps the first `revokedAt` and re-publishes.
//! - `PUT /admin/v1/users/{userId}/subscription` `{"tier": "free"|"pro"|"enterprise"}` → 200
//!   `{userId, tier, edgesNotified}`; the user is created if needed.
//!
//! The logic is shared with the CLI in [`crate::admin`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{path_uuid, Admin, ApiJson, JsonBody, SMALL_JSON_BODY};
use super::AppState;
use crate::admin::{self, KeyRevocation, SubscriptionChange};
use crate::db::users::{valid_user_id, MAX_USER_ID_LEN};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionBody {
    /// A tier's name (`GET /tiers`): `free`, `pro`, `enterprise` or one an admin created.
    tier: String,
}

impl JsonBody for SubscriptionBody {
    const MAX_BYTES: usize = SMALL_JSON_BODY;
}

/// `POST /admin/v1/videos/{videoId}/keys/{keyId}/revoke`.
#[utoipa::path(
    post,
    path = "/admin/v1/videos/{videoId}/keys/{keyId}/revoke",
    tag = "keys",
    params(
        ("videoId" = String, Path, description = "The title (file id)"),
        ("keyId" = String, Path, description = "The key to revoke"),
    ),
    responses(
        (status = 200, description = "Revoked (idempotent); edges told", body = KeyRevocation),
        (status = 404, description = "The title has no such key"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn revoke_key(
    State(app): State<AppState>,
    Admin(admin): Admin,
    Path((raw_video, raw_key)): Path<(String, String)>,
) -> Result<Json<KeyRevocation>, ApiError> {
    let video_id = path_uuid(&raw_video)?;
    let key_id = path_uuid(&raw_key)?;
    let actor = format!("admin:{}", admin.user_id());
    let revocation = admin::revoke_key(
        &app.db,
        &app.invalidator,
        app.custody.as_ref(),
        &actor,
        video_id,
        key_id,
    )
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "This video has no content key with that id.",
        )
    })?;
    tracing::info!(adminId = %admin.user_id(), fileId = %video_id, keyId = %key_id, "key revocation requested");
    Ok(Json(revocation))
}

/// `PUT /admin/v1/users/{userId}/subscription`.
#[utoipa::path(
    put,
    path = "/admin/v1/users/{userId}/subscription",
    tag = "admin",
    params(("userId" = String, Path, description = "The user (JWT `sub`); created if needed")),
    request_body = SubscriptionBody,
    responses(
        (status = 200, description = "Set; edges told", body = SubscriptionChange),
        (status = 400, description = "Malformed JSON or bad user id"),
        (status = 422, description = "No tier has that name (`unknown_tier`)"),
        (status = 403, description = "No admin role (`admin_required`)"),
        (status = 415, description = "Not JSON"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn set_subscription(
    State(app): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<SubscriptionBody>,
) -> Result<Json<SubscriptionChange>, ApiError> {
    if !valid_user_id(&user_id) {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("The user id must be 1 to {MAX_USER_ID_LEN} bytes without control characters."),
        ));
    }
    if body.tier.is_empty() || body.tier.len() > MAX_TIER_NAME_LEN {
        return Err(ApiError::unknown_tier(&body.tier));
    }
    let change = admin::set_subscription(&app.db, &app.invalidator, &user_id, &body.tier).await?;
    tracing::info!(adminId = %admin.user_id(), userId = %user_id, tier = %body.tier, "subscription change requested");
    Ok(Json(change))
}

/// Longest tier name accepted (tier names are `[a-z0-9_-]{1,64}`).
const MAX_TIER_NAME_LEN: usize = 64;
