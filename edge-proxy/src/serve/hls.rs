//! `GET /hls/{videoId}/{path}`: playlists and segments, admitted by a session token (or a
//! CloudFront signature).
//!
//! Order: cut off a path-mode token segment, prove the path safe ([`AssetPath`]), admit the
//! request for the normalized path ([`admission::admit`]), and only then touch the origin.
//! - Playlists are read whole (bounded) and rewritten by [`playback::hls::rewrite_playlist`].
//!   A master served with a manifest token mints the session token (its lifetime from the
//!   first media playlist's duration, one more bounded origin read) and stamps it on every
//!   child URI, or sets it as cookies; any other playlist re-stamps the token it was fetched
//!   with, unchanged.
//! - Segments stream: from a directory origin by the edge itself (ranges, conditional
//!   requests), from an HTTP or S3 origin through Pingora's proxy and its segment cache,
//!   without the token (query, path segment or cookie).
//! - A CDN pulling with the `[cdn]` secret skips the token and gets token-free, publicly
//!   cacheable answers: playlists rewritten without a stamp, segments `public`.

use pingora::http::RequestHeader;
use playback::hls::{
    first_variant_uri, is_playlist, media_duration_secs, rewrite_playlist, AssetPath,
    RewriteContext, Stamp,
};
use playback::token::hls_prefix;
use playback::token::session::escape_segment;

use super::{Audience, Outcome, Subject, UpstreamTarget};
use crate::analytics::Event;
use crate::config::SessionMode;
use crate::edge::{now_unix, Edge};
use crate::errors::EdgeError;
use crate::origin::{media_type, Origin};
use crate::reply::Reply;
use crate::sessions::admission::{admit, Proof};
use crate::sessions::propagation::{origin_query, session_cookies, split_path_token, stamp};

pub async fn serve(
    edge: &Edge,
    req: &RequestHeader,
    video_id: &str,
    raw_path: &str,
    subject: &mut Subject,
) -> Result<Outcome, EdgeError> {
    let (path_token, raw_path) = split_path_token(raw_path, edge.sessions.token_name())?;
    let path = AssetPath::parse(raw_path).map_err(|_| EdgeError::BadPath)?;
    let edge_path = path.edge_path(video_id);
    if edge.cdn.as_ref().is_some_and(|cdn| cdn.admits(req)) {
        if is_playlist(&edge_path) {
            return cdn_playlist(edge, req, video_id, &path)
                .await
                .map(Outcome::Reply);
        }
        return segment(edge, req, video_id, &path, Audience::Cdn).await;
    }
    let proof = admit(edge, req, &edge_path, path_token, subject).await?;
    if let Proof::Session { grant, .. } = &proof {
        // Playback keeps the viewer's stream slot alive (batched, no I/O here).
        if let (Some(user), Some(session)) = (&grant.subject.user_id, &grant.subject.session_id) {
            edge.drm.streams.touch(user, session);
        }
    }
    if is_playlist(&edge_path) {
        let body = playlist(edge, video_id, &path, proof, subject).await?;
        return Ok(Outcome::Reply(body));
    }
    segment(edge, req, video_id, &path, Audience::Viewer).await
}

async fn playlist(
    edge: &Edge,
    video_id: &str,
    path: &AssetPath,
    proof: Proof,
    subject: &Subject,
) -> Result<Reply, EdgeError> {
    let original = edge.playlists.get(&edge.origin, video_id, path).await?.body;
    let mut cookies = None;
    let child_token = match &proof {
        Proof::Session { grant, token, .. } if grant.is_manifest_for(video_id) => {
            edge.drm.analytics.emit(Event::playback_started(
                grant.subject.user_id.as_deref(),
                video_id,
                grant.subject.session_id.as_deref(),
            ));
            let duration = content_duration(edge, video_id, path, &original).await;
            let minted = edge.sessions.mint_session(
                video_id,
                &grant.subject,
                now_unix(),
                duration,
                subject.client_ip,
            );
            if edge.sessions.mode == SessionMode::Cookie {
                cookies = Some(session_cookies(
                    video_id,
                    edge.sessions.token_name(),
                    &minted,
                    &edge.sessions.cookie_attributes,
                ));
            }
            minted
        }
        Proof::Session { token, .. } => token.clone(),
        Proof::CloudFront { .. } => String::new(),
    };
    let escaped = escape_segment(&child_token);
    let stamp = match &proof {
        Proof::Session { .. } => stamp(edge.sessions.mode, &child_token, &escaped),
        Proof::CloudFront {
            query_pairs: Some(pairs),
        } => Stamp::QueryPairs(pairs),
        Proof::CloudFront { query_pairs: None } => Stamp::Nothing,
    };
    let rewritten = rewrite(edge, video_id, path, &original, stamp)?;
    let mut reply = Reply::bytes(200, media_type::for_extension(Some("m3u8")), rewritten)
        .header("cache-control", "no-store");
    for cookie in cookies.into_iter().flatten() {
        reply = reply.header("set-cookie", cookie);
    }
    Ok(reply)
}

/// The title's duration in whole seconds: the `#EXTINF` total of the first media playlist the
/// master names (one bounded origin read); `None` when it is live, absolute, or unreadable.
async fn content_duration(
    edge: &Edge,
    video_id: &str,
    master: &AssetPath,
    master_body: &str,
) -> Option<u64> {
    let variant = first_variant_uri(master_body)?;
    let variant = variant.split(['?', '#']).next()?;
    let dir = &master.segments()[..master.segments().len().saturating_sub(1)];
    let mut relative: String = dir.iter().map(|s| format!("{s}/")).collect();
    relative.push_str(variant);
    let variant_path = AssetPath::parse(&relative).ok()?;
    let media = edge
        .playlists
        .get(&edge.origin, video_id, &variant_path)
        .await
        .ok()?;
    media_duration_secs(&media.body)
}

/// Rewrites an origin playlist for the edge: every URI resolved onto `/hls/{videoId}/...`
/// (absolute origin URIs included) and carrying `stamp`.
fn rewrite(
    edge: &Edge,
    video_id: &str,
    path: &AssetPath,
    original: &str,
    stamp: Stamp,
) -> Result<String, EdgeError> {
    let origin_prefix = edge.origin.rewrite_prefix(video_id);
    // The rewriter resolves relative URIs against the playlist's URL path (still encoded).
    let playlist_url_path = format!("{}{}", hls_prefix(video_id), path.encoded());
    let context = RewriteContext {
        video_id,
        playlist_path: &playlist_url_path,
        origin_prefix: origin_prefix.as_deref(),
        token_name: edge.sessions.token_name(),
        stamp,
    };
    rewrite_playlist(original, &context).map_err(|e| {
        tracing::warn!(video_id, error = %e, "origin playlist could not be rewritten");
        EdgeError::BadPlaylist
    })
}

/// A playlist for a CDN: the origin copy with absolute origin URIs mapped onto the edge, no
/// token stamped, `public` for the rest of its freshness, with an `ETag` of its bytes.
async fn cdn_playlist(
    edge: &Edge,
    req: &RequestHeader,
    video_id: &str,
    path: &AssetPath,
) -> Result<Reply, EdgeError> {
    let cached = edge.playlists.get(&edge.origin, video_id, path).await?;
    let body = rewrite(edge, video_id, path, &cached.body, Stamp::Nothing)?;
    let etag = strong_etag(body.as_bytes());
    let remaining = cached.ttl.saturating_sub(cached.age).as_secs();
    let cache_control = match cached.stale {
        true => "public, max-age=0".to_string(),
        false => format!("public, max-age={remaining}"),
    };
    let not_modified = playback::conditional::if_none_match_holds(&req.headers, &etag);
    let reply = match not_modified {
        true => Reply::bytes(304, media_type::for_extension(Some("m3u8")), ""),
        false => Reply::bytes(200, media_type::for_extension(Some("m3u8")), body),
    };
    Ok(reply
        .header("cache-control", cache_control)
        .header("age", cached.age.as_secs().to_string())
        .header("etag", etag))
}

/// `"..."`: the first 16 bytes of the SHA-256 of `bytes`, in hex.
fn strong_etag(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

async fn segment(
    edge: &Edge,
    req: &RequestHeader,
    video_id: &str,
    path: &AssetPath,
    audience: Audience,
) -> Result<Outcome, EdgeError> {
    let content_type = media_type::for_extension(path.extension().as_deref());
    if let Origin::Directory(origin) = &edge.origin {
        let file = origin.open(video_id, path).await?;
        let reply = Reply::origin_file(req, file, content_type);
        // 412/416 are errors (already `no-store`); only the file's answers are long-lived.
        if !matches!(reply.status, 200 | 206 | 304) {
            return Ok(Outcome::Reply(reply));
        }
        let cache_control = segment_cache_control(audience, edge.segment_max_age_secs, true);
        return Ok(Outcome::Reply(reply.header("cache-control", cache_control)));
    }
    // The origin's own query (e.g. `seg.ts?part=1` from its playlist) is part of the object.
    let query = origin_query(req.uri.query(), edge.sessions.token_name());
    Ok(Outcome::Proxy(UpstreamTarget {
        video_id: video_id.to_string(),
        path: path.clone(),
        query,
        content_type,
        audience,
    }))
}

/// `Cache-Control` of a segment: `public` for a CDN, `private` for a viewer (the response was
/// admitted by that viewer's token), `immutable` when the origin set no policy of its own.
pub fn segment_cache_control(audience: Audience, max_age_secs: u64, immutable: bool) -> String {
    let scope = match audience {
        Audience::Cdn => "public",
        Audience::Viewer => "private",
    };
    match immutable {
        true => format!("{scope}, max-age={max_age_secs}, immutable"),
        false => format!("{scope}, max-age={max_age_secs}"),
    }
}
