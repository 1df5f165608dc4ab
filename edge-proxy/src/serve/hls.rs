//! `GET /hls/{videoId}/{path}`: playlists and segments, admitted by a signed-URL token.
//!
//! Order: prove the path safe ([`AssetPath`]), verify the token against the normalized path,
//! and only then touch the origin.
//! - Playlists are read whole (bounded) and rewritten by [`playback::hls::rewrite_playlist`]
//!   with one freshly minted child token per response: scoped to the title, same viewer,
//!   `signed_urls.child_ttl_secs` long. (Per-session tokens with revocation arrive in a later
//!   issue; until then the child token is a long-lived title token.)
//! - Segments stream: from a directory origin in fixed-size chunks, from an HTTP origin through
//!   Pingora's proxy.

use pingora::http::RequestHeader;
use playback::hls::{is_playlist, rewrite_playlist, AssetPath, RewriteContext};
use playback::token::{hls_prefix, video_acl, UrlTokenClaims};

use super::{admit_signed_url, Outcome, Subject, UpstreamTarget};
use crate::credentials::query_without;
use crate::edge::{now_unix, Edge};
use crate::errors::EdgeError;
use crate::origin::{media_type, Origin};
use crate::reply::Reply;

pub async fn serve(
    edge: &Edge,
    req: &RequestHeader,
    video_id: &str,
    raw_path: &str,
    subject: &mut Subject,
) -> Result<Outcome, EdgeError> {
    let path = AssetPath::parse(raw_path).map_err(|_| EdgeError::BadPath)?;
    let edge_path = path.edge_path(video_id);
    let claims = admit_signed_url(edge, req, &edge_path)?;
    subject.user_id.clone_from(&claims.user_id);
    if is_playlist(&edge_path) {
        let body = playlist(edge, video_id, &path, claims.user_id).await?;
        return Ok(Outcome::Reply(body));
    }
    segment(edge, req, video_id, &path).await
}

async fn playlist(
    edge: &Edge,
    video_id: &str,
    path: &AssetPath,
    user_id: Option<String>,
) -> Result<Reply, EdgeError> {
    let original = edge.origin.playlist(video_id, path).await?;
    let child_token = edge.signer.mint(&UrlTokenClaims {
        expires_at: now_unix() + edge.child_ttl_secs,
        acl: video_acl(video_id),
        user_id,
    });
    let origin_prefix = edge.origin.rewrite_prefix(video_id);
    // The rewriter resolves relative URIs against the playlist's URL path (still encoded).
    let playlist_url_path = format!("{}{}", hls_prefix(video_id), path.encoded());
    let context = RewriteContext {
        video_id,
        playlist_path: &playlist_url_path,
        origin_prefix: origin_prefix.as_deref(),
        token_param: &edge.token_param,
        token: &child_token,
    };
    let rewritten = rewrite_playlist(&original, &context).map_err(|e| {
        tracing::warn!(video_id, error = %e, "origin playlist could not be rewritten");
        EdgeError::BadPlaylist
    })?;
    Ok(
        Reply::bytes(200, media_type::for_extension(Some("m3u8")), rewritten)
            .header("cache-control", "no-store"),
    )
}

async fn segment(
    edge: &Edge,
    req: &RequestHeader,
    video_id: &str,
    path: &AssetPath,
) -> Result<Outcome, EdgeError> {
    let content_type = media_type::for_extension(path.extension().as_deref());
    match &edge.origin {
        Origin::Directory(origin) => {
            let file = origin.open(video_id, path).await?;
            Ok(Outcome::Reply(Reply::file(file, content_type)))
        }
        Origin::Http(origin) => {
            let query = query_without(req.uri.query(), &edge.token_param);
            Ok(Outcome::Proxy(UpstreamTarget {
                path_and_query: origin.upstream_path(video_id, path, query.as_deref()),
                content_type,
            }))
        }
    }
}
