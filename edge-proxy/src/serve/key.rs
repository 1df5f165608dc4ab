//! `GET /keys/{videoId}/{keyId}`: the 16-byte AES-128 content key for HLS players.
//!
//! Admitted by the same signed-URL token as the title's playlists (its ACL covers
//! `/keys/{videoId}/*`), and only while the token's viewer is still entitled. Revoked keys are
//! 410, unknown ones 404, and a control plane that cannot be reached is 503.

use pingora::http::RequestHeader;
use playback::token::key_path;
use playback::Reason;

use super::{admit_signed_url, require_entitlement, Subject};
use crate::edge::Edge;
use crate::errors::EdgeError;
use crate::reply::Reply;

pub async fn serve(
    edge: &Edge,
    req: &RequestHeader,
    video_id: &str,
    key_id: &str,
    subject: &mut Subject,
) -> Result<Reply, EdgeError> {
    let claims = admit_signed_url(edge, req, &key_path(video_id, key_id))?;
    let user_id = claims
        .user_id
        .ok_or(EdgeError::Denied(Reason::NotEntitled))?;
    subject.user_id = Some(user_id.clone());
    require_entitlement(edge, &user_id, video_id).await?;
    let key = edge.keys.get(video_id, key_id).await?;
    Ok(
        Reply::bytes(200, "application/octet-stream", key.0.to_vec())
            .header("cache-control", "no-store, private"),
    )
}
