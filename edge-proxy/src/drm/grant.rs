//! The steps every license and key request shares, before and after the DRM system's own work.
//!
//! [`admit_viewer`] turns a license request carrying a viewer JWT into a [`Grant`]: revocation,
//! rate limit, entitlement with the tier's terms, device binding, and a slot among the viewer's
//! concurrent streams. [`admit`] is the part after authentication, shared with the AES-128 key
//! endpoint (whose viewer comes from the session token). [`issue`] runs once a license is built:
//! the license is appended to the durable outbox (so `media_licenses` gets it even if the control
//! plane is down), counted, and announced as a `LicenseIssued` event.
//!
//! A stream is a playback session: the id from `X-Playback-Session-Id` (the manifest answer's
//! `sessionId`), else the JWT's `jti`, else a digest of the JWT itself.

use pingora::http::RequestHeader;
use playback::jwt::Claims;
use playback::token::session::SessionSubject;
use playback::Reason;
use sha2::{Digest, Sha256};

use crate::analytics::Event;
use crate::control_plane::Terms;
use crate::credentials::{bearer_token, query_param};
use crate::edge::{now_unix, Edge};
use crate::errors::EdgeError;
use crate::license_ledger::LicenseRecord;
use crate::route::is_stream_id;
use crate::serve::{require_entitlement, Subject};
use crate::viewer::JWT_QUERY_PARAM;

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

/// A license that was recorded and may be sent.
#[derive(Debug, Clone)]
pub struct Issued {
    pub license_id: String,
    pub expires_at: u64,
}

/// Authenticates a license request's viewer (JWT) and admits them for `video_id`.
pub async fn admit_viewer(
    edge: &Edge,
    req: &RequestHeader,
    video_id: &str,
    subject: &mut Subject,
) -> Result<Grant, EdgeError> {
    let claims = edge.viewer(req).await?;
    subject.user_id = Some(claims.sub.clone());
    let stream_id = stream_id(req, &claims)?;
    subject.session_id = Some(stream_id.clone());
    let session = SessionSubject {
        session_id: Some(stream_id.clone()),
        user_id: Some(claims.sub.clone()),
        jti: claims.jti.clone(),
    };
    if let Err(revoked) = edge.revocations.check(&session).await {
        subject.denial_detail = Some(format!("{} revoked", revoked.kind.label()));
        return Err(EdgeError::Denied(Reason::Revoked));
    }
    let device_id = device_id(edge, req, &claims, subject)?;
    admit(edge, &claims.sub, video_id, stream_id, device_id).await
}

/// Rate limit, entitlement and stream admission for an authenticated viewer.
pub async fn admit(
    edge: &Edge,
    user_id: &str,
    video_id: &str,
    stream_id: String,
    device_id: Option<String>,
) -> Result<Grant, EdgeError> {
    check_rate(edge, user_id).await?;
    let terms = require_entitlement(edge, user_id, video_id).await?;
    edge.drm
        .streams
        .admit(user_id, &stream_id, terms.max_streams)
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

/// A fresh license id (a UUID, the `media_licenses` primary key).
pub fn new_license_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Counts one request of `user_id` against `drm.rate_limit_per_sec` (manifest, key and license
/// requests).
pub async fn check_rate(edge: &Edge, user_id: &str) -> Result<(), EdgeError> {
    edge.drm
        .rate
        .check(user_id)
        .await
        .map_err(|limited| limited.refusal(Reason::RateLimited))
}

/// Records the license `grant` is about to receive (outbox, metrics, event). A license that
/// cannot be recorded is not issued. Callers put the license id in [`Subject::license_id`] so
/// the access log names it.
pub fn issue(
    edge: &Edge,
    grant: &Grant,
    system: &'static str,
    key_id: Option<&str>,
    license_id: String,
) -> Result<Issued, EdgeError> {
    let now = now_unix();
    let expires_at = grant.terms.license.expires_at(now);
    let record = LicenseRecord {
        id: license_id.clone(),
        video_id: grant.video_id.clone(),
        user_id: grant.user_id.clone(),
        key_id: key_id.map(str::to_string),
        drm_system: system.to_string(),
        license_type: grant.terms.license.kind.as_str().to_string(),
        issued_at: now,
        expires_at,
        device_id: grant.device_id.clone(),
    };
    if let Err(e) = edge.drm.ledger.record(record) {
        tracing::error!(error = %e, "license outbox unwritable; license refused");
        return Err(EdgeError::LicenseRecordUnavailable);
    }
    edge.metrics.license_issued(system);
    edge.drm.analytics.emit(Event::license_issued(
        &grant.user_id,
        &grant.video_id,
        &grant.stream_id,
        &license_id,
        system,
    ));
    // The request's access-log line carries the license id (`Subject::license_id`).
    Ok(Issued {
        license_id,
        expires_at,
    })
}

/// The stream a JWT-authenticated request belongs to.
fn stream_id(req: &RequestHeader, claims: &Claims) -> Result<String, EdgeError> {
    if let Some(value) = req.headers.get(SESSION_HEADER) {
        return value
            .to_str()
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
    let token = bearer_token(&req.headers)
        .or_else(|| query_param(req.uri.query(), JWT_QUERY_PARAM))
        .unwrap_or_default();
    let digest = Sha256::digest(token.as_bytes());
    Ok(format!("jwt-{}", hex::encode(&digest[..12])))
}

/// The device the license is for: `X-Device-Id`, required by `drm.require_device_id` and
/// bound by the JWT's `device_id` claim.
fn device_id(
    edge: &Edge,
    req: &RequestHeader,
    claims: &Claims,
    subject: &mut Subject,
) -> Result<Option<String>, EdgeError> {
    let presented = match req.headers.get(DEVICE_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
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
    match (&presented, &claims.device_id) {
        (None, Some(_)) => {
            subject.denial_detail = Some("the token is bound to a device; send X-Device-Id".into());
            Err(EdgeError::Denied(Reason::DeviceMismatch))
        }
        (None, None) if edge.drm.require_device_id => {
            subject.denial_detail = Some("X-Device-Id is required".into());
            Err(EdgeError::Denied(Reason::DeviceMismatch))
        }
        (Some(presented), Some(bound)) if presented != bound => {
            subject.denial_detail = Some("X-Device-Id differs from the token's device".into());
            Err(EdgeError::Denied(Reason::DeviceMismatch))
        }
        _ => Ok(presented),
    }
}
