//! May they play: the steps every license and key request takes once its viewer is known,
//! and the ones the manifest endpoint shares.
//!
//! [`Access::admit`] turns an authenticated viewer into a [`Grant`] for one title: rate limit
//! (per user, across edges) -> entitlement and the tier's terms (L1 -> L2 -> control plane) ->
//! a slot among the viewer's concurrent streams (`playback::streams::admit_stream`). Device
//! binding ([`device_binding`]) and the stream a request counts against ([`stream_id`]) are
//! decided from what the request presents.
//!
//! A stream is a playback session: the id from `X-Playback-Session-Id` (the manifest answer's
//! `sessionId`), else the JWT's `jti`, else a digest of the JWT itself.

use std::sync::Arc;

use playback::jwt::Claims;
use playback::Reason;
use sha2::{Digest, Sha256};

use super::entitlements::Entitlements;
use super::limits::{RateLimiter, Streams};
use crate::control_plane::{Entitlement, Terms};
use crate::core::clock::Now;
use crate::core::errors::{EdgeError, Failure};
use crate::core::ids::is_stream_id;

/// Header naming the playback session a license request belongs to.
pub const SESSION_HEADER: &str = "x-playback-session-id";
/// Header naming the device a license is for (device binding).
pub const DEVICE_HEADER: &str = "x-device-id";
/// Longest device id accepted.
const MAX_DEVICE_ID_LEN: usize = 128;

/// A viewer admitted to a license for one title.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user_id: String,
    pub video_id: String,
    pub terms: Terms,
    /// The stream (playback session) this license counts against.
    pub stream_id: String,
    pub device_id: Option<String>,
}

/// Entitlements, limits and device rules; one per process.
pub struct Access {
    pub entitlements: Arc<Entitlements>,
    pub rate: RateLimiter,
    pub streams: Arc<Streams>,
    /// `drm.require_device_id`.
    pub require_device_id: bool,
}

impl Access {
    /// Counts one request of `user_id` against `drm.rate_limit_per_sec` (manifest, key and
    /// license requests).
    pub async fn check_rate(&self, user_id: &str, now: Now) -> Result<(), EdgeError> {
        self.rate
            .check(user_id, now.unix_ms)
            .await
            .map_err(|limited| limited.refusal(Reason::RateLimited))
    }

    /// Fails unless the control plane (or its cached answer) lets `user_id` play `video_id`;
    /// returns the viewer's terms.
    pub async fn require_entitlement(
        &self,
        user_id: &str,
        video_id: &str,
        now: Now,
    ) -> Result<Terms, EdgeError> {
        match self
            .entitlements
            .entitlement(user_id, video_id, now.unix)
            .await
        {
            Ok(Entitlement::Allowed(terms)) => Ok(terms),
            Ok(Entitlement::Denied(reason)) => Err(EdgeError::Denied(reason)),
            Err(_) => Err(EdgeError::ControlPlaneUnavailable),
        }
    }

    /// Rate limit, entitlement and stream admission for an authenticated viewer.
    pub async fn admit(
        &self,
        user_id: &str,
        video_id: &str,
        stream_id: String,
        device_id: Option<String>,
        now: Now,
    ) -> Result<Grant, EdgeError> {
        self.check_rate(user_id, now).await?;
        let terms = self.require_entitlement(user_id, video_id, now).await?;
        self.streams
            .admit(user_id, &stream_id, terms.max_streams, now.unix_ms)
            .await
            .map_err(|limited| limited.refusal(Reason::StreamLimit))?;
        Ok(Grant {
            user_id: user_id.to_string(),
            video_id: video_id.to_string(),
            terms,
            stream_id,
            device_id,
        })
    }

    /// The device a license is for: the presented `X-Device-Id`, required by
    /// `drm.require_device_id` and bound by the JWT's `device_id` claim.
    pub fn device_binding(
        &self,
        presented: Option<&[u8]>,
        claims: &Claims,
    ) -> Result<Option<String>, Failure> {
        device_binding(presented, claims, self.require_device_id)
    }

    /// The device rule for a request proven by a session token (no JWT, so no device claim):
    /// refused when `drm.require_device_id` asks every license for a device.
    pub fn device_binding_without_claims(&self) -> Result<Option<String>, Failure> {
        match self.require_device_id {
            true => Err(EdgeError::Denied(Reason::DeviceMismatch).because(
                "this edge requires X-Device-Id with a JWT; a session token carries no device",
            )),
            false => Ok(None),
        }
    }
}

/// The stream a JWT-authenticated request belongs to: `X-Playback-Session-Id` (`header`, as
/// sent), else the JWT's `jti`, else a digest of the JWT.
pub fn stream_id(header: Option<&[u8]>, claims: &Claims, jwt: &str) -> Result<String, EdgeError> {
    if let Some(value) = header {
        return std::str::from_utf8(value)
            .ok()
            .filter(|id| is_stream_id(id))
            .map(str::to_string)
            .ok_or_else(|| {
                EdgeError::InvalidRequest(format!(
                    "{SESSION_HEADER} must be 1-128 of [A-Za-z0-9._~-]"
                ))
            });
    }
    if let Some(jti) = claims.jti.as_deref().filter(|jti| is_stream_id(jti)) {
        return Ok(jti.to_string());
    }
    let digest = Sha256::digest(jwt.as_bytes());
    Ok(format!("jwt-{}", hex::encode(&digest[..12])))
}

/// The device rule: a presented id must be printable and bounded; a JWT bound to a device
/// needs that device; `required` needs one.
fn device_binding(
    presented: Option<&[u8]>,
    claims: &Claims,
    required: bool,
) -> Result<Option<String>, Failure> {
    let presented = match presented {
        None => None,
        Some(value) => Some(
            std::str::from_utf8(value)
                .ok()
                .filter(|id| !id.is_empty() && id.len() <= MAX_DEVICE_ID_LEN)
                .filter(|id| id.bytes().all(|b| b.is_ascii_graphic()))
                .ok_or_else(|| {
                    EdgeError::InvalidRequest(format!(
                        "{DEVICE_HEADER} must be 1-{MAX_DEVICE_ID_LEN} printable ASCII characters"
                    ))
                })?
                .to_string(),
        ),
    };
    let mismatch = |detail: &str| EdgeError::Denied(Reason::DeviceMismatch).because(detail);
    match (&presented, &claims.device_id) {
        (None, Some(_)) => Err(mismatch("the token is bound to a device; send X-Device-Id")),
        (None, None) if required => Err(mismatch("X-Device-Id is required")),
        (Some(presented), Some(bound)) if presented != bound => {
            Err(mismatch("X-Device-Id differs from the token's device"))
        }
        _ => Ok(presented),
    }
}
