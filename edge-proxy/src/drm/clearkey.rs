//! `POST /drm/clearkey/{videoId}`: a W3C ClearKey license request in, a JWK set out.
//!
//! The request names key ids (`kids`, the 16 bytes of the control plane's key UUIDs); each must
//! be a key of this title, else the whole request fails with `unknown_kid` (never an empty or
//! partial license). Keys come from [`crate::keys`] (plaintext L1 -> wrapped L2 -> control
//! plane); the built answer is reused for the same (user, video, kids) from
//! [`super::responses`]. A `persistent-license` session needs terms that allow persistence.

use bytes::Bytes;
use pingora::http::RequestHeader;
use playback::license::clearkey::{self, LicenseRequest, SessionType};
use playback::Reason;

use super::grant::{admit_viewer, issue, new_license_id, Grant, Issued};
use crate::edge::Edge;
use crate::errors::EdgeError;
use crate::reply::Reply;
use crate::serve::Subject;

pub async fn serve(
    edge: &Edge,
    req: &RequestHeader,
    video_id: &str,
    body: &[u8],
    subject: &mut Subject,
) -> Result<Reply, EdgeError> {
    let request = clearkey::parse_request(body).map_err(bad_request)?;
    let grant = admit_viewer(edge, req, video_id, subject).await?;
    let (answer, issued) = answer(edge, &grant, &request, subject).await?;
    subject.license_id = Some(issued.license_id);
    Ok(Reply::bytes(200, "application/json", answer).header("cache-control", "no-store, private"))
}

/// The JWK set for `request` (built or reused), once the license is recorded.
pub async fn answer(
    edge: &Edge,
    grant: &Grant,
    request: &LicenseRequest,
    subject: &mut Subject,
) -> Result<(Bytes, Issued), EdgeError> {
    if request.session_type == SessionType::PersistentLicense && !grant.terms.license.can_persist()
    {
        subject.denial_detail = Some(
            "persistent licenses need a tier that allows them; request a temporary session".into(),
        );
        return Err(EdgeError::Denied(Reason::NotEntitled));
    }
    let kids: Vec<String> = request.kids.iter().map(|kid| kid.to_uuid()).collect();
    let cache_key = format!("{}:{}", kids.join(","), request.session_type.as_str());
    let cached = edge
        .drm
        .responses
        .get(&grant.user_id, &grant.video_id, &cache_key)
        .await;
    edge.metrics
        .cache_lookup("license_response", cached.is_some());
    let body = match cached {
        Some(body) => body,
        None => {
            let mut keys = Vec::with_capacity(request.kids.len());
            for (kid, key_id) in request.kids.iter().zip(&kids) {
                match edge.keys.get(&grant.video_id, key_id).await {
                    Ok(key) => keys.push((*kid, key.0)),
                    Err(EdgeError::Denied(Reason::NotFound)) => {
                        subject.denial_detail = Some(format!(
                            "kid {} is not a key of this video",
                            kid.to_base64url()
                        ));
                        return Err(EdgeError::Denied(Reason::UnknownKid));
                    }
                    Err(other) => return Err(other),
                }
            }
            let body = Bytes::from(clearkey::build_response(&keys, request.session_type));
            edge.drm
                .responses
                .insert(&grant.user_id, &grant.video_id, &cache_key, body.clone())
                .await;
            body
        }
    };
    let issued = issue(
        edge,
        grant,
        "clearkey",
        kids.first().map(String::as_str),
        new_license_id(),
    )?;
    Ok((body, issued))
}

fn bad_request(error: clearkey::RequestError) -> EdgeError {
    EdgeError::BadLicenseRequest {
        code: error.code(),
        detail: error.message(),
    }
}
