//! Tokens that admit HLS and DASH requests at the edge.
//!
//! A viewer proves entitlement once with a JWT ([`crate::jwt`]); from then on every playlist,
//! segment and key request carries a short HMAC token minted by the edge. This module holds the
//! token formats and the path rules they are scoped to.

mod acl;
pub mod admission;
pub mod cloudfront;
pub mod edgeauth;
pub mod ip;
mod query;
pub mod session;

pub use acl::acl_matches;
pub use ip::ip_matches;
pub use query::{query_param, query_without};

/// Longest token accepted, in bytes (tokens are bounded before any parsing).
pub const MAX_TOKEN_LEN: usize = 2048;

/// The ACL a playback token for `video_id` carries: the title's HLS and DASH tree, its
/// AES-128 key endpoint, and its license endpoints (`/drm/{system}/{v}`), so the license URLs
/// an MPD names work for a player that only has the MPD.
pub fn video_acl(video_id: &str) -> Vec<String> {
    vec![
        format!("/hls/{video_id}/*"),
        format!("/keys/{video_id}/*"),
        license_acl(video_id),
    ]
}

/// The ACL entry of a title's license endpoints: `/drm/{system}/{v}`.
pub fn license_acl(video_id: &str) -> String {
    format!("/drm/*/{video_id}")
}

/// The edge path of a title's DASH manifest, beside its master playlist.
pub fn dash_manifest_path(video_id: &str) -> String {
    format!("/hls/{video_id}/{}", crate::dash::DASH_MANIFEST)
}

/// The edge's manifest endpoint for a title, where a viewer JWT is traded for a signed
/// master-playlist URL (`GET /playback/{videoId}/manifest`). The control plane hands it out;
/// the edge routes it.
pub fn playback_manifest_path(video_id: &str) -> String {
    format!("/playback/{video_id}/manifest")
}

/// The edge path of a title's master playlist.
pub fn hls_master_path(video_id: &str) -> String {
    format!("/hls/{video_id}/{}", crate::hls::HLS_MASTER)
}

/// The edge path prefix of a title's HLS tree (with trailing slash).
pub fn hls_prefix(video_id: &str) -> String {
    format!("/hls/{video_id}/")
}

/// The edge path of a title's AES-128 key endpoint for `key_id`.
pub fn key_path(video_id: &str, key_id: &str) -> String {
    format!("/keys/{video_id}/{key_id}")
}
