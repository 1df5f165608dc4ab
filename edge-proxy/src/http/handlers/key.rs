//! `GET /keys/{videoId}/{keyId}`: the 16-byte AES-128 content key for HLS players.
//!
//! Admitted by the title's session token (its ACL covers `/keys/{videoId}/*`; in path mode the
//! token is the segment before the key id), and only while the token's viewer is still
//! entitled. The key is a license like any other: the viewer's rate limit and concurrent
//! streams apply (the session is the stream), and it is recorded and announced. A CloudFront
//! signature admits the key without a viewer: the platform that signed it decided entitlement
//! (and limits). Revoked keys are 410, unknown ones 404, and a control plane that cannot be
//! reached is 503.

use playback::token::admission::{split_token_segment, Carriers};
use playback::token::key_path;
use playback::Reason;

use super::licenses::Parts;
use super::{Answered, Ids, Outcome, Refused};
use crate::core::errors::EdgeError;
use crate::http::facts::RequestFacts;
use crate::http::reply::Reply;
use crate::licensing::System;
use crate::records::new_license_id;

pub async fn serve(
    parts: &Parts<'_>,
    facts: &RequestFacts<'_>,
    video_id: &str,
    key_id: &str,
    token_segment: bool,
) -> Result<Answered, Refused> {
    let mut ids = Ids::video(video_id);
    let name = parts.gate.sessions.token_name();
    let split =
        split_token_segment(facts.path, name).map_err(|e| ids.refused(EdgeError::from(e)))?;
    if token_segment && split.token.is_none() {
        // `/keys/{v}/{segment}/{kid}` whose segment is not this edge's token: no such key.
        return Err(ids.refused(EdgeError::NotFound));
    }
    let carriers = Carriers {
        path_token: split.token,
        raw_path: &split.path,
        query: facts.query,
        cookie_header: facts.cookies.as_deref(),
    };
    let now = facts.now;
    let proof = parts
        .gate
        .admission()
        .admit(
            carriers,
            &key_path(video_id, key_id),
            facts.client_ip,
            now.unix,
        )
        .map_err(|f| ids.refused(f))?;
    let grant = match proof.session() {
        Some(session) => {
            let subject = &session.subject;
            ids.user_id.clone_from(&subject.user_id);
            ids.session_id.clone_from(&subject.session_id);
            let user_id = subject
                .user_id
                .clone()
                .ok_or_else(|| ids.refused(EdgeError::Denied(Reason::NotEntitled)))?;
            let stream_id = subject
                .session_id
                .clone()
                .unwrap_or_else(|| format!("key-{user_id}"));
            Some(
                parts
                    .access
                    .admit(&user_id, video_id, stream_id, None, now)
                    .await
                    .map_err(|e| ids.refused(e))?,
            )
        }
        None => None,
    };
    let key = parts
        .licensing
        .keys
        .get(video_id, key_id)
        .await
        .map_err(|e| ids.refused(e))?;
    match &grant {
        Some(grant) => {
            let issued = parts
                .records
                .record_license(
                    grant,
                    System::Aes128.label(),
                    Some(key_id),
                    new_license_id(),
                    now,
                )
                .map_err(|e| ids.refused(e))?;
            ids.license_id = Some(issued.license_id);
        }
        None => parts.records.metrics.license_issued(System::Aes128.label()),
    }
    let reply = Reply::bytes(200, "application/octet-stream", key.0.to_vec())
        .header("cache-control", "no-store, private");
    Ok(ids.answered(Outcome::Reply(reply)))
}
