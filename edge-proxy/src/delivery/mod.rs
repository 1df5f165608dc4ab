//! Where the bytes come from: origins (a directory, HTTP servers, an S3 bucket) in
//! [`origin`], the segment cache and the origin-playlist cache in [`cache`], playlist
//! playlist and MPD rewriting onto the edge in [`rewrite`], and who may cache a segment and for how long in
//! [`segments`]. [`Delivery`] holds one of each for the request handlers.

pub mod cache;
pub mod origin;
pub mod rewrite;
pub mod segments;

use cache::playlists::OriginPlaylists;
use cache::SegmentCache;
use origin::Origin;
use playback::dash::DASH_MANIFEST;
use playback::hls::AssetPath;

/// The origin and its caches; one per process.
pub struct Delivery {
    pub origin: Origin,
    /// pingora-cache for segments of HTTP and S3 origins (`None` when
    /// `cache.segment_cache_bytes` is 0).
    pub segment_cache: Option<SegmentCache>,
    /// Origin copies of playlists, before the per-viewer rewrite.
    pub playlists: OriginPlaylists,
    /// `cache.segment_max_age_secs`: a segment's freshness when its origin says nothing.
    pub segment_max_age_secs: u64,
}

impl Delivery {
    /// True when the origin has `video_id`'s DASH manifest (`manifest.mpd` beside the master).
    pub async fn has_mpd(&self, video_id: &str) -> bool {
        let Ok(path) = AssetPath::parse(DASH_MANIFEST) else {
            return false;
        };
        self.playlists.exists(&self.origin, video_id, &path).await
    }
}
