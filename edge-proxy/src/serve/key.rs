//! `GET /keys/{videoId}/{keyId}`: the 16-byte AES-128 content key for HLS players.
//!
//! Admitted by the title's session token (its ACL covers `/keys/{videoId}/*`; in path mode the
//! token is the segment before the key id), and only while the token's viewer is still
//! entitled. The key is a license like any other: the viewer's rate limit and concurrent
//! streams apply (the session is the stream), and it is recorded and announced
//! ([`crate::drm::grant`]). A CloudFront signature admits the key without a viewer: the
//! platform that signed it decided entitlement (and limits). Revoked keys are 410, unknown ones
//! 404, and a control plane that cannot be reached is 503.

use pingora::http::RequestHeader;
use playback::token::key_path;
use playback::Reason;

use super::Subject;
use crate::drm;
use crate::drm::grant::new_license_id;
use crate::edge::Edge;
use crate::errors::EdgeError;
use crate::reply::Reply;
use crate::sessions::admission::{admit, Proof};
use crate::sessions::propagation::split_path_token;

pub async fn serve(
    edge: &Edge,
    req: &RequestHeader,
    video_id: &str,
    key_id: &str,
    token_segment: Option<String>,
    subject: &mut Subject,
) -> Result<Reply, EdgeError> {
    let path_token = match token_segment {
        Some(segment) => {
            let tail = format!("{segment}/{key_id}");
            match split_path_token(&tail, edge.sessions.token_name())? {
                (Some(token), _) => Some(token),
                (None, _) => return Err(EdgeError::NotFound),
            }
        }
        None => None,
    };
    let proof = admit(edge, req, &key_path(video_id, key_id), path_token, subject).await?;
    let grant = match proof {
        Proof::Session { grant, .. } => {
            let user_id = grant
                .subject
                .user_id
                .ok_or(EdgeError::Denied(Reason::NotEntitled))?;
            let stream_id = grant
                .subject
                .session_id
                .unwrap_or_else(|| format!("key-{user_id}"));
            Some(drm::grant::admit(edge, &user_id, video_id, stream_id, None).await?)
        }
        Proof::CloudFront { .. } => None,
    };
    let key = edge.keys.get(video_id, key_id).await?;
    match &grant {
        Some(grant) => {
            let issued = drm::grant::issue(edge, grant, "aes128", Some(key_id), new_license_id())?;
            subject.license_id = Some(issued.license_id);
        }
        None => edge.metrics.license_issued("aes128"),
    }
    Ok(
        Reply::bytes(200, "application/octet-stream", key.0.to_vec())
            .header("cache-control", "no-store, private"),
    )
}
