//! Tokens that admit HLS requests at the edge.
//!
//! A viewer proves entitlement once with a JWT ([`crate::jwt`]); from then on every playlist,
//! segment and key request carries a short HMAC token minted by the edge. This module holds the
//! token formats and the path rules they are scoped to.

mod acl;
mod query;
mod signed_url;

pub use acl::acl_matches;
pub use query::{query_param, query_without};
pub use signed_url::{UrlSigner, UrlTokenClaims, MAX_TOKEN_LEN};

/// The ACL a playback token for `video_id` carries: the title's HLS tree and its key endpoint.
pub fn video_acl(video_id: &str) -> Vec<String> {
    vec![format!("/hls/{video_id}/*"), format!("/keys/{video_id}/*")]
}

/// The edge path of a title's master playlist.
pub fn hls_master_path(video_id: &str) -> String {
    format!("/hls/{video_id}/master.m3u8")
}

/// The edge path prefix of a title's HLS tree (with trailing slash).
pub fn hls_prefix(video_id: &str) -> String {
    format!("/hls/{video_id}/")
}

/// The edge path of a title's AES-128 key endpoint for `key_id`.
pub fn key_path(video_id: &str, key_id: &str) -> String {
    format!("/keys/{video_id}/{key_id}")
}
