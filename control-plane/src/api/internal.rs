//! The internal API the edge calls (service token): entitlements and transport-wrapped keys.
//!
//! - `GET /internal/v1/entitlements/{videoId}?userId=` answers the playback decision as data
//!   (200 with `allowed` and `reason`) and the viewer's tier (`tier`, `maxConcurrentStreams`,
//!   `licenseDurationSecs`, `licenseType`: their active subscription, else the free tier),
//!   404 for an unknown video.
//! - `GET /internal/v1/videos/{videoId}/keys/{keyId}` opens the at-rest envelope with custody and
//!   re-wraps the key under the shared transport key (purpose transport, bound to both ids);
//!   410 when the key was revoked or retired. The plaintext key exists only inside this
//!   handler. Every release (and every failed open) leaves a key audit record (actor `edge`);
//!   custody down → 503 naming the backend.

use axum::extract::{Path, Query, State};
use axum::Json;
use playback::keywrap::{self, KeyBinding, Purpose, NONCE_LEN};
use playback::Reason;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{path_uuid, EdgeService};
use super::AppState;
use crate::db::key_audit::{audit, KeyAction, KeyEvent};
use crate::db::now;
use crate::db::users::valid_user_id;
use crate::entitlements;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EntitlementQuery {
    /// The viewer's JWT subject (required).
    user_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementAnswer {
    video_id: String,
    user_id: String,
    allowed: bool,
    reason: Option<&'static str>,
    drm_protected: bool,
    ready: bool,
    /// The viewer's tier name; "free" without a subscription.
    tier: String,
    max_concurrent_streams: u32,
    license_duration_secs: u64,
    /// "rental" or "persistent".
    license_type: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransportKey {
    video_id: String,
    key_id: String,
    algorithm: String,
    wrapped_key: String,
}

/// `GET /internal/v1/entitlements/{videoId}?userId=`.
#[utoipa::path(
    get,
    path = "/internal/v1/entitlements/{videoId}",
    tag = "internal",
    params(("videoId" = String, Path, description = "The title (file id)"), EntitlementQuery),
    responses(
        (status = 200, description = "The decision as data, and the viewer's tier", body = EntitlementAnswer),
        (status = 400, description = "No `userId` (`missing_user_id`) or an impossible one (`invalid_user_id`)"),
        (status = 404, description = "No such title"),
    ),
    security(("edge_token" = []))
)]
pub async fn entitlement(
    State(app): State<AppState>,
    _edge: EdgeService,
    Path(raw_video): Path<String>,
    Query(query): Query<EntitlementQuery>,
) -> Result<Json<EntitlementAnswer>, ApiError> {
    let video_id = path_uuid(&raw_video)?;
    let user_id = query.user_id.filter(|u| !u.is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            "missing_user_id",
            "Pass the viewer's JWT subject as ?userId=.",
        )
    })?;
    if !valid_user_id(&user_id) {
        return Err(ApiError::bad_request(
            "invalid_user_id",
            "userId must be 1 to 255 bytes without control characters.",
        ));
    }
    let file = app
        .db
        .file(video_id)
        .await?
        .ok_or_else(ApiError::unknown_file)?;
    let verdict = entitlements::decide_with_tier(&app.db, &file, &user_id, now()).await?;
    let reason = verdict.decision.err().map(Reason::code);
    let policy = verdict.tier.license_policy();
    tracing::info!(userId = %user_id, fileId = %video_id, allowed = reason.is_none(), reason = reason.unwrap_or("-"), "entitlement answered");
    Ok(Json(EntitlementAnswer {
        video_id: video_id.to_string(),
        user_id,
        allowed: reason.is_none(),
        reason,
        drm_protected: file.drm_protected,
        ready: file.is_ready(),
        max_concurrent_streams: verdict.tier.max_concurrent_streams,
        license_duration_secs: policy.duration_secs,
        license_type: policy.kind.as_str(),
        tier: verdict.tier.name,
    }))
}

/// `GET /internal/v1/videos/{videoId}/keys/{keyId}`.
#[utoipa::path(
    get,
    path = "/internal/v1/videos/{videoId}/keys/{keyId}",
    tag = "internal",
    params(
        ("videoId" = String, Path, description = "The title (file id)"),
        ("keyId" = String, Path, description = "The content key id"),
    ),
    responses(
        (status = 200, description = "The key wrapped under the transport key", body = TransportKey),
        (status = 404, description = "No such title or key"),
        (status = 410, description = "The key was revoked or retired"),
        (status = 503, description = "Key custody unavailable (`custody_unavailable`)"),
    ),
    security(("edge_token" = []))
)]
pub async fn content_key(
    State(app): State<AppState>,
    _edge: EdgeService,
    Path((raw_video, raw_key)): Path<(String, String)>,
) -> Result<Json<TransportKey>, ApiError> {
    let video_id = path_uuid(&raw_video)?;
    let key_id = path_uuid(&raw_key)?;
    let record = app
        .db
        .content_key(video_id, key_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    // A retired key stops serving exactly like a revoked one.
    if !record.in_service() {
        return Err(ApiError::denied(Reason::KeyRevoked));
    }
    let (video, key) = (video_id.to_string(), key_id.to_string());
    let backend = app.custody.backend();
    let opened = app.custody.unwrap(&video, &key, &record.content_key).await;
    let detail = opened.as_ref().err().map(|e| e.to_string());
    audit(
        &app.db,
        &KeyEvent {
            actor: "edge",
            action: KeyAction::Unwrap,
            content_id: Some(video_id),
            key_id: Some(key_id),
            backend,
            ok: opened.is_ok(),
            detail: detail.as_deref(),
        },
    )
    .await;
    let plaintext = opened.map_err(|e| ApiError::custody(backend, e))?;
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let binding = KeyBinding {
        purpose: Purpose::Transport,
        video_id: &video,
        key_id: &key,
    };
    let wrapped_key = keywrap::wrap(&app.transport_key, &nonce, plaintext.bytes(), &binding);
    drop(plaintext);
    tracing::info!(fileId = %video_id, keyId = %key_id, "content key released to an edge");
    Ok(Json(TransportKey {
        video_id: video,
        key_id: key,
        algorithm: record.algorithm,
        wrapped_key,
    }))
}
