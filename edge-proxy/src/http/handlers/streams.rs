//! `DELETE /drm/streams/{streamId}`: a player stopping playback frees its stream slot at once
//! instead of after `drm.stream_timeout_secs`.
//!
//! The viewer's JWT names the user; only that user's stream is released, so one viewer cannot
//! free (or probe) another's. The answer is 204 either way: whether the stream was still open
//! is not the caller's concern.

use super::viewer::authenticate;
use super::{Answered, Ids, Outcome, Refused};
use crate::access::Access;
use crate::gate::Gate;
use crate::http::facts::RequestFacts;
use crate::http::reply::Reply;

pub async fn stop(
    gate: &Gate,
    access: &Access,
    facts: &RequestFacts<'_>,
    stream_id: &str,
) -> Result<Answered, Refused> {
    let (claims, mut ids) = authenticate(gate, facts, Ids::default()).await?;
    ids.session_id = Some(stream_id.to_string());
    let released = access.streams.release(&claims.sub, stream_id).await;
    tracing::info!(userId = %claims.sub, sessionId = stream_id, released, "stream stopped");
    Ok(ids.answered(Outcome::Reply(Reply::bytes(204, "text/plain", ""))))
}
