//! The edge's side of manifest rewriting (`playback::hls::rewrite_playlist`,
//! `playback::dash::rewrite_mpd`): every URI of an origin playlist or MPD resolved onto
//! `/hls/{videoId}/...` (absolute origin URIs included) and carrying the viewer's stamp; and
//! the title's duration, read from its first media playlist or the MPD, which decides how long
//! a session token lives.

use playback::dash::{mpd_facts, rewrite_mpd, LicenseUrls, MpdContext};
use playback::hls::{
    first_variant_uri, media_duration_secs, rewrite_playlist, AssetPath, RewriteContext, Stamp,
};
use playback::token::hls_prefix;

use super::cache::playlists::OriginPlaylists;
use super::origin::Origin;
use crate::core::errors::EdgeError;

/// `original` (the origin's copy of the playlist at `path`) rewritten for the edge, every URI
/// carrying `stamp`; `token_name` is the edge token's name (stripped from origin URIs).
pub fn rewrite(
    origin: &Origin,
    video_id: &str,
    path: &AssetPath,
    original: &str,
    token_name: &str,
    stamp: Stamp,
) -> Result<String, EdgeError> {
    let origin_prefix = origin.rewrite_prefix(video_id);
    // The rewriter resolves relative URIs against the playlist's URL path (still encoded).
    let playlist_url_path = format!("{}{}", hls_prefix(video_id), path.encoded());
    let context = RewriteContext {
        video_id,
        playlist_path: &playlist_url_path,
        origin_prefix: origin_prefix.as_deref(),
        token_name,
        stamp,
    };
    rewrite_playlist(original, &context).map_err(|e| {
        tracing::warn!(video_id, error = %e, "origin playlist could not be rewritten");
        EdgeError::BadPlaylist
    })
}

/// `original` (the origin's copy of the MPD at `path`) rewritten for the edge: every URL
/// carrying `stamp` and, with `licenses`, every DRM system's license URL pointing at the edge.
pub fn rewrite_dash(
    origin: &Origin,
    video_id: &str,
    path: &AssetPath,
    original: &str,
    token_name: &str,
    stamp: Stamp,
    licenses: Option<LicenseUrls>,
) -> Result<String, EdgeError> {
    let origin_prefix = origin.rewrite_prefix(video_id);
    let mpd_path = format!("{}{}", hls_prefix(video_id), path.encoded());
    let context = MpdContext {
        video_id,
        mpd_path: &mpd_path,
        origin_prefix: origin_prefix.as_deref(),
        token_name,
        stamp,
        licenses,
    };
    rewrite_mpd(original, &context).map_err(|e| {
        tracing::warn!(video_id, error = %e, "origin MPD could not be rewritten");
        EdgeError::BadMpd
    })
}

/// The presentation's duration in whole seconds from the MPD's root; `None` when it is live
/// or does not say.
pub fn mpd_duration(mpd: &str) -> Option<u64> {
    mpd_facts(mpd).filter(|f| !f.dynamic)?.duration_secs
}

/// The title's duration in whole seconds: the `#EXTINF` total of the first media playlist the
/// master names (one bounded origin read); `None` when it is live, absolute, or unreadable.
pub async fn content_duration(
    origin: &Origin,
    playlists: &OriginPlaylists,
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
    let media = playlists.get(origin, video_id, &variant_path).await.ok()?;
    media_duration_secs(&media.body)
}
