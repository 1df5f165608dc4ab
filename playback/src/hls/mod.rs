//! HLS: which request paths are safe to serve, and playlist rewriting so every follow-up
//! request carries proof.

mod asset_path;
mod duration;
mod rewrite;
pub(crate) mod uri;

pub use asset_path::{AssetPath, BadPath};
pub use duration::{first_variant_uri, media_duration_secs};
pub use rewrite::{rewrite_playlist, RewriteContext, RewriteError, Stamp};

/// File name of a title's master playlist in its directory.
pub const HLS_MASTER: &str = "master.m3u8";

/// True when `path` names an HLS playlist (by extension, ignoring any query).
pub fn is_playlist(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.len() >= 5 && path[path.len() - 5..].eq_ignore_ascii_case(".m3u8")
}

#[cfg(test)]
mod tests {
    #[test]
    fn playlist_detection() {
        assert!(super::is_playlist("/hls/v/master.m3u8"));
        assert!(super::is_playlist("/hls/v/720p/INDEX.M3U8?x=1"));
        assert!(!super::is_playlist("/hls/v/seg.ts"));
        assert!(!super::is_playlist("m3u8"));
    }
}
