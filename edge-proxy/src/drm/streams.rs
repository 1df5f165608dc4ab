//! `DELETE /drm/streams/{streamId}`: a player stopping playback frees its stream slot at once
//! instead of after `drm.stream_timeout_secs`.
//!
//! The viewer's JWT names the user; only that user's stream is released, so one viewer cannot
//! free (or probe) another's. The answer is 204 either way: whether the stream was still open
//! is not the caller's concern.

use pingora::http::RequestHeader;

use crate::edge::Edge;
use crate::errors::EdgeError;
use crate::reply::Reply;
use crate::serve::Subject;

pub async fn stop(
    edge: &Edge,
    req: &RequestHeader,
    stream_id: &str,
    subject: &mut Subject,
) -> Result<Reply, EdgeError> {
    let claims = edge.viewer(req).await?;
    subject.user_id = Some(claims.sub.clone());
    subject.session_id = Some(stream_id.to_string());
    let released = edge.drm.streams.release(&claims.sub, stream_id).await;
    tracing::info!(userId = %claims.sub, sessionId = stream_id, released, "stream stopped");
    Ok(Reply::bytes(204, "text/plain", ""))
}
