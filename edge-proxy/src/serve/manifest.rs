//! `GET /playback/{videoId}/manifest`: trades a viewer JWT for a short-lived signed URL of the
//! title's master playlist, opening a playback session.
//!
//! JWT (`Authorization: Bearer` or `?token=`) -> revocation (user, `jti`) -> rate limit ->
//! entitlement (control plane, cached) -> `{"url":
//! "{public_base_url}/hls/{videoId}/master.m3u8?hdnts=...", "expiresAt": "<RFC 3339>",
//! "sessionId": "<id>"}` (path mode: `/hls/{videoId}/hdnts=.../master.m3u8`). Players send
//! `sessionId` back as `X-Playback-Session-Id` on license requests so they count as the same
//! stream. The
//! manifest token admits only the master, carries a new session id and the viewer, and lives
//! `signed_urls.manifest_ttl_secs`; see [`crate::sessions`].

use pingora::http::RequestHeader;
use playback::Reason;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{require_entitlement, Subject};
use crate::drm::grant::check_rate;
use crate::edge::{now_unix, Edge};
use crate::errors::EdgeError;
use crate::reply::Reply;
use crate::sessions::Sessions;

pub async fn serve(
    edge: &Edge,
    req: &RequestHeader,
    video_id: &str,
    subject: &mut Subject,
) -> Result<Reply, EdgeError> {
    let claims = edge.viewer(req).await?;
    let now = now_unix();
    subject.user_id = Some(claims.sub.clone());
    let session = Sessions::open(&claims.sub, claims.jti.as_deref());
    if let Err(revoked) = edge.revocations.check(&session).await {
        subject.denial_detail = Some(format!("{} revoked", revoked.kind.label()));
        return Err(EdgeError::Denied(Reason::Revoked));
    }
    check_rate(edge, &claims.sub).await?;
    require_entitlement(edge, &claims.sub, video_id).await?;
    subject.session_id.clone_from(&session.session_id);
    let (url, expires_at) =
        edge.sessions
            .manifest_url(&edge.public_base_url, video_id, &session, now);
    Ok(Reply::json(
        200,
        &json!({
            "url": url,
            "expiresAt": rfc3339(expires_at),
            "sessionId": session.session_id,
        }),
    ))
}

pub fn rfc3339(unix: u64) -> String {
    OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn expiry_is_rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
