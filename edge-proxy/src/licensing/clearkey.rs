//! W3C ClearKey: a license request in, a JWK set out (`playback::license::clearkey`).
//!
//! The request names key ids (`kids`, the 16 bytes of the control plane's key UUIDs); each must
//! be a key of this title, else the whole request fails with `unknown_kid` (never an empty or
//! partial license). Keys come from [`super::keys`] (plaintext L1 -> wrapped L2 -> control
//! plane); the built answer is reused for the same (user, video, kids) from
//! [`super::responses`]. A `persistent-license` session needs terms that allow persistence.

use bytes::Bytes;
use playback::license::clearkey::{self, LicenseRequest, SessionType};
use playback::Reason;

use super::keys::ContentKeys;
use super::responses::ResponseCache;
use crate::access::Grant;
use crate::core::errors::{EdgeError, Failure};
use crate::core::metrics::Metrics;

/// A built ClearKey license and the key it is recorded with (the first kid).
#[derive(Debug, Clone)]
pub struct ClearKeyLicense {
    /// The JWK set, JSON.
    pub body: Bytes,
    pub key_id: Option<String>,
}

/// Parses a ClearKey request body; a malformed one is `400` with the format's code.
pub fn parse(body: &[u8]) -> Result<LicenseRequest, EdgeError> {
    clearkey::parse_request(body).map_err(bad_request)
}

/// Parses a ClearKey request given as JSON inside another document (`POST /drm/license`).
pub fn parse_value(value: &serde_json::Value) -> Result<LicenseRequest, EdgeError> {
    clearkey::parse_request_value(value).map_err(bad_request)
}

/// The JWK set for `request` (built or reused) for an admitted viewer.
pub async fn license(
    keys: &ContentKeys,
    responses: &ResponseCache,
    metrics: &Metrics,
    grant: &Grant,
    request: &LicenseRequest,
) -> Result<ClearKeyLicense, Failure> {
    if request.session_type == SessionType::PersistentLicense && !grant.terms.license.can_persist()
    {
        return Err(EdgeError::Denied(Reason::NotEntitled).because(
            "persistent licenses need a tier that allows them; request a temporary session",
        ));
    }
    let kids: Vec<String> = request.kids.iter().map(|kid| kid.to_uuid()).collect();
    let cache_key = format!("{}:{}", kids.join(","), request.session_type.as_str());
    let cached = responses
        .get(&grant.user_id, &grant.video_id, &cache_key)
        .await;
    metrics.cache_lookup("license_response", cached.is_some());
    let body = match cached {
        Some(body) => body,
        None => {
            let mut found = Vec::with_capacity(request.kids.len());
            for (kid, key_id) in request.kids.iter().zip(&kids) {
                match keys.get(&grant.video_id, key_id).await {
                    Ok(key) => found.push((*kid, key.0)),
                    Err(EdgeError::Denied(Reason::NotFound)) => {
                        return Err(EdgeError::Denied(Reason::UnknownKid).because(format!(
                            "kid {} is not a key of this video",
                            kid.to_base64url()
                        )));
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            let body = Bytes::from(clearkey::build_response(&found, request.session_type));
            responses
                .insert(&grant.user_id, &grant.video_id, &cache_key, body.clone())
                .await;
            body
        }
    };
    Ok(ClearKeyLicense {
        body,
        key_id: kids.into_iter().next(),
    })
}

fn bad_request(error: clearkey::RequestError) -> EdgeError {
    EdgeError::BadLicenseRequest {
        code: error.code(),
        detail: error.message(),
    }
}
