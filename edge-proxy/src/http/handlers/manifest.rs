//! `GET /playback/{videoId}/manifest`: trades a viewer JWT for short-lived signed URLs of the
//! title's manifests, opening a playback session.
//!
//! JWT (`Authorization: Bearer` or `?token=`) -> revocation (user, `jti`) -> rate limit ->
//! entitlement (control plane, cached) -> `{"url":
//! "{public_base_url}/hls/{videoId}/master.m3u8?hdnts=...", "dashUrl":
//! ".../manifest.mpd?hdnts=...", "expiresAt": "<RFC 3339>", "sessionId": "<id>"}` (path mode:
//! `/hls/{videoId}/hdnts=.../master.m3u8`); `dashUrl` only when the origin has the title's
//! MPD. Players send `sessionId` back as `X-Playback-Session-Id` on license requests so they
//! count as the same stream. The manifest token admits only the two manifests, carries a new
//! session id and the viewer, and lives `signed_urls.manifest_ttl_secs`; see
//! [`crate::gate::sessions`].

use playback::Reason;
use serde_json::json;

use super::{Answered, Ids, Outcome, Refused};
use crate::access::Access;
use crate::core::clock::rfc3339;
use crate::core::errors::EdgeError;
use crate::delivery::Delivery;
use crate::gate::sessions::Sessions;
use crate::gate::Gate;
use crate::http::facts::RequestFacts;
use crate::http::reply::Reply;
use crate::http::Ops;

pub async fn serve(
    gate: &Gate,
    access: &Access,
    delivery: &Delivery,
    ops: &Ops,
    facts: &RequestFacts<'_>,
    video_id: &str,
) -> Result<Answered, Refused> {
    let mut ids = Ids::video(video_id);
    let now = facts.now;
    let claims = gate
        .viewers
        .viewer(facts.jwt, now.unix)
        .await
        .map_err(|e| ids.refused(e))?;
    ids.user_id = Some(claims.sub.clone());
    let session = Sessions::open(&claims.sub, claims.jti.as_deref());
    if let Err(revoked) = gate.revocations.check(&session, now.unix) {
        return Err(ids.refused(
            EdgeError::Denied(Reason::Revoked).because(format!("{} revoked", revoked.kind.label())),
        ));
    }
    access
        .check_rate(&claims.sub, now)
        .await
        .map_err(|e| ids.refused(e))?;
    access
        .require_entitlement(&claims.sub, video_id, now)
        .await
        .map_err(|e| ids.refused(e))?;
    ids.session_id.clone_from(&session.session_id);
    let urls = gate
        .sessions
        .manifest_urls(&ops.public_base_url, video_id, &session, now.unix);
    let mut answer = json!({
        "url": urls.hls,
        "expiresAt": rfc3339(urls.expires_at),
        "sessionId": session.session_id,
    });
    if delivery.has_mpd(video_id).await {
        answer["dashUrl"] = json!(urls.dash);
    }
    let reply = Reply::json(200, &answer);
    Ok(ids.answered(Outcome::Reply(reply)))
}
