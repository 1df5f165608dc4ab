//! `GET /hls/{videoId}/{path}`: playlists, MPDs and segments, admitted by a session token (or
//! a CloudFront signature), in one straight line:
//!
//! 1. cut off a path-mode token segment and prove the path safe ([`AssetPath`]);
//! 2. a CDN (`facts.cdn_pull`: the `[cdn]` secret, or its client certificate) skips the token and gets token-free, publicly cacheable
//!    answers (playlists rewritten without a stamp, segments `public`);
//! 3. otherwise admit the request ([`crate::gate::admission`]) and keep the viewer's stream
//!    slot alive (batched, no I/O here);
//! 4. a playlist or MPD is read from the origin-playlist cache and rewritten
//!    ([`crate::delivery::rewrite`]): a master or MPD served with a manifest token mints the
//!    session token (its lifetime from the first media playlist's duration or the MPD's) and
//!    stamps it on every child URI, or sets it as cookies; any other playlist re-stamps the
//!    token it came with. An MPD served to a viewer also names this edge's license endpoints,
//!    the session token in their query;
//! 5. a segment streams: from a directory origin by the edge itself (ranges, conditional
//!    requests), from an HTTP or S3 origin through Pingora and the segment cache, without the
//!    token (query, path segment or cookie).

use playback::dash::{is_mpd, LicenseUrls};
use playback::hls::{is_playlist, AssetPath, Stamp};
use playback::token::admission::{split_token_segment, Carriers};
use playback::token::session::escape_segment;

use super::{Answered, Ids, Outcome, Refused, UpstreamTarget};
use crate::access::Access;
use crate::config::SessionMode;
use crate::core::errors::EdgeError;
use crate::delivery::origin::{media_type, Origin};
use crate::delivery::rewrite::{content_duration, mpd_duration, rewrite, rewrite_dash};
use crate::delivery::segments::{segment_cache_control, strong_etag, Audience};
use crate::delivery::Delivery;
use crate::gate::admission::Proof;
use crate::gate::propagation::{origin_query, session_cookies, stamp};
use crate::gate::Gate;
use crate::http::facts::RequestFacts;
use crate::http::reply::Reply;
use crate::records::analytics::{Analytics, Event};

/// The parts HLS requests use.
pub struct Parts<'a> {
    pub gate: &'a Gate,
    pub access: &'a Access,
    pub delivery: &'a Delivery,
    pub analytics: &'a Analytics,
    /// `server.public_base_url`, for the license URLs an MPD names.
    pub public_base_url: &'a str,
}

/// The two manifest formats this route rewrites.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Manifest {
    Hls,
    Dash,
}

impl Manifest {
    fn of(path: &str) -> Option<Manifest> {
        match (is_playlist(path), is_mpd(path)) {
            (true, _) => Some(Manifest::Hls),
            (_, true) => Some(Manifest::Dash),
            _ => None,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Manifest::Hls => "m3u8",
            Manifest::Dash => "mpd",
        }
    }
}

pub async fn serve(
    parts: &Parts<'_>,
    facts: &RequestFacts<'_>,
    video_id: &str,
) -> Result<Answered, Refused> {
    let mut ids = Ids::video(video_id);
    let name = parts.gate.sessions.token_name();
    let split =
        split_token_segment(facts.path, name).map_err(|e| ids.refused(EdgeError::from(e)))?;
    let tail = split
        .path
        .strip_prefix(&format!("/hls/{video_id}/"))
        .ok_or_else(|| ids.refused(EdgeError::NotFound))?;
    let path = AssetPath::parse(tail).map_err(|_| ids.refused(EdgeError::BadPath))?;
    let edge_path = path.edge_path(video_id);
    if facts.cdn_pull {
        let outcome = match Manifest::of(&edge_path) {
            Some(kind) => Outcome::Reply(
                cdn_playlist(parts.delivery, facts, video_id, &path, name, kind)
                    .await
                    .map_err(|e| ids.refused(e))?,
            ),
            None => segment(parts.delivery, facts, video_id, &path, name, Audience::Cdn)
                .await
                .map_err(|e| ids.refused(e))?,
        };
        return Ok(ids.answered(outcome));
    }
    let carriers = Carriers {
        path_token: split.token,
        raw_path: &split.path,
        query: facts.query,
        cookie_header: facts.cookies.as_deref(),
    };
    let proof = parts
        .gate
        .admission()
        .admit(carriers, &edge_path, facts.client_ip, facts.now.unix)
        .map_err(|f| ids.refused(f))?;
    if let Some(grant) = proof.session() {
        ids.user_id.clone_from(&grant.subject.user_id);
        ids.session_id.clone_from(&grant.subject.session_id);
        // Playback keeps the viewer's stream slot alive (batched, no I/O here).
        if let (Some(user), Some(session)) = (&grant.subject.user_id, &grant.subject.session_id) {
            parts.access.streams.touch(user, session, facts.now.unix_ms);
        }
    }
    let outcome = match Manifest::of(&edge_path) {
        Some(kind) => Outcome::Reply(
            playlist(parts, facts, video_id, &path, proof, kind)
                .await
                .map_err(|e| ids.refused(e))?,
        ),
        None => segment(
            parts.delivery,
            facts,
            video_id,
            &path,
            name,
            Audience::Viewer,
        )
        .await
        .map_err(|e| ids.refused(e))?,
    };
    Ok(ids.answered(outcome))
}

/// A viewer's copy of a playlist or MPD: the origin copy rewritten with the viewer's stamp.
async fn playlist(
    parts: &Parts<'_>,
    facts: &RequestFacts<'_>,
    video_id: &str,
    path: &AssetPath,
    proof: Proof,
    kind: Manifest,
) -> Result<Reply, EdgeError> {
    let delivery = parts.delivery;
    let sessions = &parts.gate.sessions;
    let original = delivery
        .playlists
        .get(&delivery.origin, video_id, path)
        .await?
        .body;
    let mut cookies = None;
    let child_token = match &proof {
        Proof::Session { grant, .. } if grant.is_manifest_for(video_id) => {
            parts.analytics.emit(Event::playback_started(
                facts.now.unix_ms,
                grant.subject.user_id.as_deref(),
                video_id,
                grant.subject.session_id.as_deref(),
            ));
            let duration = match kind {
                Manifest::Hls => {
                    content_duration(
                        &delivery.origin,
                        &delivery.playlists,
                        video_id,
                        path,
                        &original,
                    )
                    .await
                }
                Manifest::Dash => mpd_duration(&original),
            };
            let minted = sessions.mint_session(
                video_id,
                &grant.subject,
                facts.now.unix,
                duration,
                facts.client_ip,
            );
            if sessions.mode == SessionMode::Cookie {
                cookies = Some(session_cookies(
                    video_id,
                    sessions.token_name(),
                    &minted,
                    &sessions.cookie_attributes,
                ));
            }
            minted
        }
        Proof::Session { token, .. } => token.clone(),
        Proof::CloudFront { .. } => String::new(),
    };
    let escaped = escape_segment(&child_token);
    let stamp = match &proof {
        Proof::Session { .. } => stamp(sessions.mode, &child_token, &escaped),
        Proof::CloudFront {
            query_pairs: Some(pairs),
        } => Stamp::QueryPairs(pairs),
        Proof::CloudFront { query_pairs: None } => Stamp::Nothing,
    };
    let rewritten = match kind {
        Manifest::Hls => rewrite(
            &delivery.origin,
            video_id,
            path,
            &original,
            sessions.token_name(),
            stamp,
        )?,
        Manifest::Dash => {
            // License URLs carry the session token; a CloudFront viewer keeps the origin's.
            let licenses = matches!(proof, Proof::Session { .. })
                .then(|| sessions.license_urls(parts.public_base_url, video_id, &child_token));
            let licenses = licenses
                .as_ref()
                .map(|[widevine, playready, clearkey]| LicenseUrls {
                    widevine,
                    playready,
                    clearkey,
                });
            rewrite_dash(
                &delivery.origin,
                video_id,
                path,
                &original,
                sessions.token_name(),
                stamp,
                licenses,
            )?
        }
    };
    let content_type = media_type::for_extension(Some(kind.extension()));
    let mut reply = Reply::bytes(200, content_type, rewritten).header("cache-control", "no-store");
    for cookie in cookies.into_iter().flatten() {
        reply = reply.header("set-cookie", cookie);
    }
    Ok(reply)
}

/// A playlist or MPD for a CDN: the origin copy with absolute origin URIs mapped onto the
/// edge, no token stamped, `public` for the rest of its freshness, with an `ETag` of its bytes.
async fn cdn_playlist(
    delivery: &Delivery,
    facts: &RequestFacts<'_>,
    video_id: &str,
    path: &AssetPath,
    token_name: &str,
    kind: Manifest,
) -> Result<Reply, EdgeError> {
    let cached = delivery
        .playlists
        .get(&delivery.origin, video_id, path)
        .await?;
    let (origin, body) = (&delivery.origin, &cached.body);
    let body = match kind {
        Manifest::Hls => rewrite(origin, video_id, path, body, token_name, Stamp::Nothing)?,
        Manifest::Dash => rewrite_dash(
            origin,
            video_id,
            path,
            body,
            token_name,
            Stamp::Nothing,
            None,
        )?,
    };
    let content_type = media_type::for_extension(Some(kind.extension()));
    let etag = strong_etag(body.as_bytes());
    let remaining = cached.ttl.saturating_sub(cached.age).as_secs();
    let cache_control = match cached.stale {
        true => "public, max-age=0".to_string(),
        false => format!("public, max-age={remaining}"),
    };
    let not_modified = playback::conditional::if_none_match_holds(facts.headers, &etag);
    let reply = match not_modified {
        true => Reply::bytes(304, content_type, ""),
        false => Reply::bytes(200, content_type, body),
    };
    Ok(reply
        .header("cache-control", cache_control)
        .header("age", cached.age.as_secs().to_string())
        .header("etag", etag))
}

/// A segment for `audience`: read and sent from a directory origin, else proxied.
async fn segment(
    delivery: &Delivery,
    facts: &RequestFacts<'_>,
    video_id: &str,
    path: &AssetPath,
    token_name: &str,
    audience: Audience,
) -> Result<Outcome, EdgeError> {
    let content_type = media_type::for_extension(path.extension().as_deref());
    if let Origin::Directory(origin) = &delivery.origin {
        let file = origin.open(video_id, path).await?;
        let reply = Reply::origin_file(facts.request, file, content_type, facts.now.system_time());
        // 412/416 are errors (already `no-store`); only the file's answers are long-lived.
        if !matches!(reply.status, 200 | 206 | 304) {
            return Ok(Outcome::Reply(reply));
        }
        let cache_control = segment_cache_control(audience, delivery.segment_max_age_secs, true);
        return Ok(Outcome::Reply(reply.header("cache-control", cache_control)));
    }
    // The origin's own query (e.g. `seg.ts?part=1` from its playlist) is part of the object.
    let query = origin_query(facts.query, token_name);
    Ok(Outcome::Proxy(UpstreamTarget {
        video_id: video_id.to_string(),
        path: path.clone(),
        query,
        content_type,
        audience,
    }))
}
