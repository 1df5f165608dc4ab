//! The internal API the edge calls (service token): entitlements and transport-wrapped keys.
//!
//! - `GET /internal/v1/entitlements/{videoId}?userId=` answers the playback decision as data
//!   (200 with `allowed` and `reason`) and the viewer's tier (`tier`, `maxConcurrentStreams`,
//!   `licenseDurationSecs`, `licenseType`: their active subscription, else the free tier),
//!   404 for an unknown video.
//! - `GET /internal/v1/videos/{videoId}/keys/{keyId}` opens the at-rest envelope with custody and
//!   re-wraps the key under the shared transport key (purpose transport, bound to both ids);
//!   410 when the key was revoked. The plaintext key exists only inside this handler.

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
use crate::db::now;
use crate::entitlements;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementQuery {
    user_id: Option<String>,
}

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportKey {
    video_id: String,
    key_id: String,
    algorithm: String,
    wrapped_key: String,
}

/// `GET /internal/v1/entitlements/{videoId}?userId=`.
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
    if record.revoked_at.is_some() {
        return Err(ApiError::denied(Reason::KeyRevoked));
    }
    let (video, key) = (video_id.to_string(), key_id.to_string());
    let plaintext = app
        .custody
        .unwrap(&video, &key, &record.content_key)
        .await
        .map_err(ApiError::internal)?;
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
