//! Origins: where playlists and segments come from.
//!
//! Three kinds, chosen by `origin.kind`:
//! - [`DirectoryOrigin`]: a local folder, `{origin.directory}/{videoId}/{path}`. Segments are
//!   read and sent by the edge itself.
//! - [`HttpOrigin`]: one or more HTTP(S) servers with the same layout,
//!   `{origin.url or each of origin.urls}/{videoId}/{path}`, health-checked in the background
//!   (`pingora-load-balancing`), round-robin among the healthy ones, failing over on connect
//!   errors and 5xx.
//! - [`S3Origin`]: an S3 bucket (or any SigV4 S3 API), `{bucket}/{prefix}/{videoId}/{path}`,
//!   read with signed GETs.
//!
//! Segments of HTTP and S3 origins are proxied by Pingora (streamed, never buffered whole):
//! the proxy asks [`Origin::upstream_peer`] where to connect and
//! [`Origin::prepare_upstream_request`] what to send. Playlists are fetched whole, bounded by
//! `origin.max_playlist_bytes`, so they can be rewritten and refused with a proper 502.
//!
//! Every request reaches an origin only with an [`AssetPath`] that has already been proven safe.

mod directory;
mod http;
pub mod media_type;
pub mod s3;

pub use directory::{DirectoryOrigin, OriginBody, OriginFile};
pub use http::{HttpOrigin, OriginHealthService};
pub use s3::S3Origin;

use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

use crate::config::{ConfigError, OriginConfig, OriginKind};
use crate::errors::EdgeError;
use playback::hls::AssetPath;

/// The configured origin.
pub enum Origin {
    Directory(DirectoryOrigin),
    Http(HttpOrigin),
    S3(Box<S3Origin>),
}

/// A playlist as the origin sent it, with the origin's word on how long it stays fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPlaylist {
    pub body: String,
    /// The origin's freshness for it: `Cache-Control` `s-maxage` (preferred) or `max-age`;
    /// `no-store`, `no-cache` or `private` give `Some(0)`; `None` when the origin says nothing
    /// (always for a directory origin).
    pub max_age_secs: Option<u64>,
}

/// What went wrong asking an origin for a file.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    /// The origin has no such file (or it lies outside the origin root).
    #[error("no such file at the origin")]
    NotFound,
    /// The playlist is larger than `origin.max_playlist_bytes`.
    #[error("playlist larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The playlist is not UTF-8 text.
    #[error("playlist is not UTF-8 text")]
    NotText,
    /// The origin could not be reached or failed.
    #[error("origin failed: {0}")]
    Failed(String),
}

impl From<OriginError> for EdgeError {
    fn from(e: OriginError) -> Self {
        match e {
            OriginError::NotFound => EdgeError::NotFound,
            OriginError::TooLarge { limit } => EdgeError::PlaylistTooLarge { limit },
            OriginError::NotText => EdgeError::BadPlaylist,
            OriginError::Failed(cause) => {
                tracing::warn!(cause = %cause, "origin request failed");
                EdgeError::OriginUnavailable
            }
        }
    }
}

impl Origin {
    /// Builds the origin `config` describes (already validated). An S3 origin's secret key and
    /// session token are read from their files here, at start-up, like the edge's other
    /// secrets.
    pub fn from_config(config: &OriginConfig) -> Result<Origin, ConfigError> {
        Ok(match config.kind {
            OriginKind::Directory => Origin::Directory(DirectoryOrigin::new(config)),
            OriginKind::Http => Origin::Http(HttpOrigin::new(config)?),
            OriginKind::S3 => Origin::S3(Box::new(S3Origin::from_config(config)?)),
        })
    }

    /// Reads a whole playlist (bounded by `origin.max_playlist_bytes`); an HTTP origin fails
    /// over to its other backends on connect errors, timeouts and 5xx.
    pub async fn playlist(
        &self,
        video_id: &str,
        path: &AssetPath,
    ) -> Result<OriginPlaylist, OriginError> {
        match self {
            Origin::Directory(origin) => Ok(OriginPlaylist {
                body: origin.playlist(video_id, path).await?,
                max_age_secs: None,
            }),
            Origin::Http(origin) => origin.playlist(video_id, path).await,
            Origin::S3(origin) => origin.playlist(video_id, path).await,
        }
    }

    /// True for kinds whose segments Pingora proxies (HTTP, S3).
    pub fn is_proxied(&self) -> bool {
        !matches!(self, Origin::Directory(_))
    }

    /// How many upstream attempts a segment request may make: the number of HTTP backends
    /// (at most 3), 1 for S3 (and for a directory origin, which is never proxied).
    pub fn max_attempts(&self) -> usize {
        match self {
            Origin::Http(origin) => origin.max_attempts(),
            Origin::Directory(_) | Origin::S3(_) => 1,
        }
    }

    /// The peer for the request's next attempt. `tried` is the request's own record of the
    /// HTTP servers it has tried (kept in its context): a later attempt picks one it has not
    /// tried when there is one (healthy ones first), and appends it.
    pub async fn upstream_peer(&self, tried: &mut Vec<usize>) -> Result<HttpPeer, OriginError> {
        match self {
            Origin::Http(origin) => origin.upstream_peer(tried).await,
            Origin::S3(origin) => {
                // One endpoint: its attempt counts like a server's, so retries stay bounded.
                tried.push(0);
                origin.peer().await
            }
            Origin::Directory(_) => Err(OriginError::Failed(
                "a directory origin is not proxied".into(),
            )),
        }
    }

    /// Makes `req` the origin's request for (video, path, query): its URI, its `Host` (that of
    /// the server last appended to `tried` by [`Self::upstream_peer`]), SigV4 headers for S3; removes `Authorization` and
    /// `Cookie`. `Range`, `If-Range`, `If-None-Match` and `If-Modified-Since` already on `req`
    /// survive (unsigned for S3). The query goes to HTTP origins only, never to S3.
    pub fn prepare_upstream_request(
        &self,
        req: &mut RequestHeader,
        tried: &[usize],
        video_id: &str,
        path: &AssetPath,
        query: Option<&str>,
    ) -> Result<(), OriginError> {
        match self {
            Origin::Http(origin) => {
                origin.prepare_upstream_request(req, tried, video_id, path, query)
            }
            Origin::S3(origin) => origin.prepare_upstream_request(
                req,
                video_id,
                path,
                time::OffsetDateTime::now_utc(),
            ),
            Origin::Directory(_) => Err(OriginError::Failed(
                "a directory origin is not proxied".into(),
            )),
        }
    }

    /// The absolute URL the origin uses for a title's folder, so the playlist rewriter can map
    /// absolute origin URIs back onto the edge (`None` for a directory origin). For several
    /// HTTP backends it is the first one's: playlists fetched from the others have their own
    /// prefix replaced by it (see [`HttpOrigin::playlist`]). For S3 it is the object URL in
    /// the configured addressing style.
    pub fn rewrite_prefix(&self, video_id: &str) -> Option<String> {
        match self {
            Origin::Directory(_) => None,
            Origin::Http(origin) => Some(origin.prefix(video_id)),
            Origin::S3(origin) => Some(origin.prefix(video_id)),
        }
    }

    /// `Ok` when the origin can serve; otherwise a sentence saying what is wrong. For HTTP,
    /// at least one backend must be healthy (the sentence counts them).
    pub async fn check_reachable(&self) -> Result<(), String> {
        match self {
            Origin::Directory(origin) => origin.check_reachable().await,
            Origin::Http(origin) => origin.check_reachable().await,
            Origin::S3(origin) => origin.check_reachable().await,
        }
    }

    /// The background service running the HTTP origin's health checks (`None` for other
    /// kinds); `main.rs` adds it to the Pingora server.
    pub fn health_service(&self) -> Option<OriginHealthService> {
        match self {
            Origin::Http(origin) => Some(origin.health_service()),
            Origin::Directory(_) | Origin::S3(_) => None,
        }
    }
}

/// A whole playlist body as UTF-8, refused past `limit` bytes (by `Content-Length` first,
/// then while reading); `failed` describes a broken transfer.
pub(crate) async fn read_playlist(
    mut response: reqwest::Response,
    limit: u64,
    failed: fn(reqwest::Error) -> OriginError,
) -> Result<String, OriginError> {
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(OriginError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(OriginError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| OriginError::NotText)
}

/// The origin's freshness from its `Cache-Control`: `no-store`, `no-cache` and `private` →
/// `Some(0)`, else `s-maxage` (a shared cache's lifetime, which the edge is), else `max-age`.
pub(crate) fn freshness(headers: &::http::HeaderMap) -> Option<u64> {
    let mut max_age = None;
    let mut s_maxage = None;
    for value in headers.get_all(::http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive, None),
            };
            let seconds = || argument.and_then(|a| a.parse::<u64>().ok());
            if name.eq_ignore_ascii_case("no-store")
                || name.eq_ignore_ascii_case("no-cache")
                || name.eq_ignore_ascii_case("private")
            {
                return Some(0);
            } else if name.eq_ignore_ascii_case("s-maxage") {
                s_maxage = s_maxage.or_else(seconds);
            } else if name.eq_ignore_ascii_case("max-age") {
                max_age = max_age.or_else(seconds);
            }
        }
    }
    s_maxage.or(max_age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> ::http::HeaderMap {
        let mut map = ::http::HeaderMap::new();
        for value in values {
            map.append(::http::header::CACHE_CONTROL, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn freshness_from_cache_control() {
        assert_eq!(freshness(&headers(&[])), None);
        assert_eq!(freshness(&headers(&["public"])), None);
        assert_eq!(freshness(&headers(&["max-age=6"])), Some(6));
        assert_eq!(freshness(&headers(&["Max-Age = \"6\""])), Some(6));
        assert_eq!(freshness(&headers(&["max-age=60, s-maxage=2"])), Some(2));
        assert_eq!(freshness(&headers(&["public", "s-maxage=3"])), Some(3));
        assert_eq!(freshness(&headers(&["max-age=60, no-cache"])), Some(0));
        assert_eq!(freshness(&headers(&["no-store"])), Some(0));
        assert_eq!(freshness(&headers(&["private, max-age=60"])), Some(0));
        assert_eq!(freshness(&headers(&["max-age=soon"])), None);
    }
}
