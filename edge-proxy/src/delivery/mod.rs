//! Where the bytes come from: origins (a directory, HTTP servers, an S3 bucket) in
//! [`origin`], the segment cache and the origin-playlist cache in [`cache`], playlist
//! rewriting onto the edge in [`rewrite`], and who may cache a segment and for how long in
//! [`segments`]. [`Delivery`] holds one of each for the request handlers.

pub mod cache;
pub mod origin;
pub mod rewrite;
pub mod segments;

use cache::playlists::OriginPlaylists;
use cache::SegmentCache;
use origin::Origin;

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
