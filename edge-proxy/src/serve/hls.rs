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
//! - Segments stream: from a directory origin in fixed-size chunks, from an HTTP origin through
//!   Pingora's proxy, without the token (query, path segment or cookie).

use pingora::http::RequestHeader;
use playback::hls::{
    first_variant_uri, is_playlist, media_duration_secs, rewrite_playlist, AssetPath,
    RewriteContext, Stamp,
};
use playback::token::hls_prefix;
use playback::token::session::escape_segment;

use super::{Outcome, Subject, UpstreamTarget};
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
    segment(edge, req, video_id, &path).await
}

async fn playlist(
    edge: &Edge,
    video_id: &str,
    path: &AssetPath,
    proof: Proof,
    subject: &Subject,
) -> Result<Reply, EdgeError> {
    let original = edge.origin.playlist(video_id, path).await?;
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
    let rewritten = rewrite_playlist(&original, &context).map_err(|e| {
        tracing::warn!(video_id, error = %e, "origin playlist could not be rewritten");
        EdgeError::BadPlaylist
    })?;
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
    let media = edge.origin.playlist(video_id, &variant_path).await.ok()?;
    media_duration_secs(&media)
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
            let query = origin_query(req.uri.query(), edge.sessions.token_name());
            Ok(Outcome::Proxy(UpstreamTarget {
                path_and_query: origin.upstream_path(video_id, path, query.as_deref()),
                content_type,
            }))
        }
    }
}
