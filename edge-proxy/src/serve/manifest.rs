//! `GET /playback/{videoId}/manifest`: trades a viewer JWT for a short-lived signed URL of the
//! title's master playlist.
//!
//! JWT (`Authorization: Bearer` or `?token=`) -> entitlement (control plane, cached) ->
//! `{"url": "{public_base_url}/hls/{videoId}/master.m3u8?token=...", "expiresAt": "<RFC 3339>"}`.
//! The token is scoped to the title (`video_acl`), names the viewer, and lives
//! `signed_urls.manifest_ttl_secs`.

use pingora::http::RequestHeader;
use playback::token::{hls_master_path, video_acl, UrlTokenClaims};
use playback::Reason;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{require_entitlement, Subject};
use crate::credentials::{bearer_token, query_param};
use crate::edge::{now_unix, Edge};
use crate::errors::EdgeError;
use crate::reply::Reply;

/// Query parameter a viewer JWT may travel in when headers cannot be set.
const JWT_QUERY_PARAM: &str = "token";

pub async fn serve(
    edge: &Edge,
    req: &RequestHeader,
    video_id: &str,
    subject: &mut Subject,
) -> Result<Reply, EdgeError> {
    let jwt = bearer_token(&req.headers)
        .or_else(|| query_param(req.uri.query(), JWT_QUERY_PARAM))
        .ok_or(EdgeError::Jwt(Reason::MissingToken))?;
    let now = now_unix();
    let claims = edge.jwt.verify(jwt, now).map_err(EdgeError::Jwt)?;
    subject.user_id = Some(claims.sub.clone());
    require_entitlement(edge, &claims.sub, video_id).await?;

    let expires_at = now + edge.manifest_ttl_secs;
    let token = edge.signer.mint(&UrlTokenClaims {
        expires_at,
        acl: video_acl(video_id),
        user_id: Some(claims.sub),
    });
    let url = format!(
        "{}{}?{}={token}",
        edge.public_base_url,
        hls_master_path(video_id),
        edge.token_param
    );
    Ok(Reply::json(
        200,
        &json!({ "url": url, "expiresAt": rfc3339(expires_at) }),
    ))
}

fn rfc3339(unix: u64) -> String {
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
