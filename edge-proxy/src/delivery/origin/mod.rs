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
//! [`Origin::prepare_upstream_request`] what to send (an [`UpstreamRequest`], which the HTTP
//! layer applies to Pingora's request). Playlists are fetched whole, bounded by
//! `origin.max_playlist_bytes`, so they can be rewritten and refused with a proper 502.
//!
//! Every request reaches an origin only with an [`AssetPath`] that has already been proven safe.

mod directory;
pub mod fetch;
mod http;
pub mod media_type;
pub mod s3;
pub mod upstream;

pub use directory::{DirectoryOrigin, OriginBody, OriginFile};
pub use fetch::{OriginError, OriginPlaylist};
pub use http::{HttpOrigin, OriginHealthService};
pub use s3::S3Origin;
pub use upstream::UpstreamRequest;

use ::http::{HeaderMap, Method};
use pingora::upstreams::peer::HttpPeer;

use crate::config::{ConfigError, OriginConfig, OriginKind};
use playback::hls::AssetPath;

/// The configured origin.
pub enum Origin {
    Directory(DirectoryOrigin),
    Http(HttpOrigin),
    S3(Box<S3Origin>),
}

impl Origin {
    /// Builds the origin `config` describes (already validated); an S3 origin takes its
    /// credentials, read from their files by the application's builder.
    pub fn from_config(
        config: &OriginConfig,
        s3_credentials: Option<(String, Option<String>)>,
    ) -> Result<Origin, ConfigError> {
        Ok(match config.kind {
            OriginKind::Directory => Origin::Directory(DirectoryOrigin::new(config)),
            OriginKind::Http => Origin::Http(HttpOrigin::new(config)?),
            OriginKind::S3 => {
                let (secret, token) = s3_credentials.unwrap_or_default();
                Origin::S3(Box::new(S3Origin::from_config(config, secret, token)?))
            }
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

    /// The origin's request for (video, path, query), from Pingora's `method` and `headers`
    /// (what pingora-cache set): its URI, its `Host` (that of the server last appended to
    /// `tried` by [`Self::upstream_peer`]), SigV4 headers for S3; no `Authorization`, no
    /// `Cookie`. `Range`, `If-Range`, `If-None-Match` and `If-Modified-Since` survive
    /// (unsigned for S3, signed at the request's `now_unix`). The query goes to HTTP origins
    /// only, never to S3.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_upstream_request(
        &self,
        method: &Method,
        headers: &HeaderMap,
        tried: &[usize],
        video_id: &str,
        path: &AssetPath,
        query: Option<&str>,
        now_unix: u64,
    ) -> Result<UpstreamRequest, OriginError> {
        match self {
            Origin::Http(origin) => origin.prepare_upstream_request(tried, video_id, path, query),
            Origin::S3(origin) => origin.prepare_upstream_request(
                method,
                headers,
                video_id,
                path,
                time::OffsetDateTime::from_unix_timestamp(now_unix as i64)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
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
