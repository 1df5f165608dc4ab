//! The origin tree the edge pulls titles from (`[storage] origin_dir`), and the address a
//! viewer is given for a title.
//!
//! A ready title lives in `{origin_dir}/{fileId}/`, written by the ffmpeg transcoder or copied
//! by `control-plane import`. Both build it first under [`STAGING_DIR`] and rename it into place,
//! so an edge never sees half a title. Viewers are handed the edge's manifest route for it
//! ([`manifest_url`]), where a JWT is traded for a signed master-playlist URL; the route is the
//! one `playback` defines for the edge to serve.

use uuid::Uuid;

/// Name of the staging directory inside `storage.origin_dir`.
pub const STAGING_DIR: &str = ".staging";

/// Name of the HLS master playlist at the top of a title (the edge serves it by this name).
/// Transcoding re-exports it as `transcode::MASTER_PLAYLIST`; it is defined here, the one
/// layer both the transcoder and `control-plane import` may use.
pub const MASTER_PLAYLIST: &str = "master.m3u8";
/// Name of the DASH manifest at the top of a CMAF title (the edge serves it by this name);
/// re-exported as `transcode::DASH_MANIFEST`.
pub const DASH_MANIFEST: &str = "manifest.mpd";

/// `{edge}/playback/{fileId}/manifest`: [`playback::token::playback_manifest_path`] on the
/// edge's public URL (`server.edge_public_url`, a trailing `/` ignored).
pub fn manifest_url(edge_base: &str, file_id: Uuid) -> String {
    format!(
        "{}{}",
        edge_base.trim_end_matches('/'),
        playback::token::playback_manifest_path(&file_id.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_url_is_the_edges_route_for_the_title() {
        let id = Uuid::nil();
        let expected = format!("https://edge.example/playback/{id}/manifest");
        assert_eq!(manifest_url("https://edge.example", id), expected);
        assert_eq!(manifest_url("https://edge.example/", id), expected);
    }
}
