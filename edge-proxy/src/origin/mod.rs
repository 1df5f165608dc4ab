//! Origins: where playlists and segments come from.
//!
//! Two kinds, chosen by `origin.kind`:
//! - [`DirectoryOrigin`]: a local folder, `{origin.directory}/{videoId}/{path}`. Segments are
//!   streamed from the file in fixed-size chunks by the edge itself.
//! - [`HttpOrigin`]: an HTTP(S) server, `{origin.url}/{videoId}/{path}`. Segments are proxied by
//!   Pingora (streamed, never buffered whole); playlists are fetched whole, bounded by
//!   `origin.max_playlist_bytes`, so they can be rewritten and refused with a proper 502.
//!
//! Every request reaches an origin only with an [`AssetPath`] that has already been proven safe.

mod directory;
mod http;
pub mod media_type;

pub use directory::{DirectoryOrigin, OriginFile};
pub use http::HttpOrigin;

use crate::config::{ConfigError, OriginConfig, OriginKind};
use crate::errors::EdgeError;
use playback::hls::AssetPath;

/// The configured origin.
pub enum Origin {
    Directory(DirectoryOrigin),
    Http(HttpOrigin),
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
    /// Builds the origin `config` describes.
    pub fn from_config(config: &OriginConfig) -> Result<Origin, ConfigError> {
        Ok(match config.kind {
            OriginKind::Directory => Origin::Directory(DirectoryOrigin::new(config)),
            OriginKind::Http => Origin::Http(HttpOrigin::new(config)?),
        })
    }

    /// Reads a whole playlist (bounded by `origin.max_playlist_bytes`).
    pub async fn playlist(&self, video_id: &str, path: &AssetPath) -> Result<String, OriginError> {
        match self {
            Origin::Directory(origin) => origin.playlist(video_id, path).await,
            Origin::Http(origin) => origin.playlist(video_id, path).await,
        }
    }

    /// The absolute URL the origin uses for a title's folder, so the playlist rewriter can map
    /// absolute origin URIs back onto the edge (`None` for a directory origin).
    pub fn rewrite_prefix(&self, video_id: &str) -> Option<String> {
        match self {
            Origin::Directory(_) => None,
            Origin::Http(origin) => Some(origin.prefix(video_id)),
        }
    }

    /// `Ok` when the origin can serve; otherwise a sentence saying what is wrong.
    pub async fn check_reachable(&self) -> Result<(), String> {
        match self {
            Origin::Directory(origin) => origin.check_reachable().await,
            Origin::Http(origin) => origin.check_reachable().await,
        }
    }
}
