//! Who a segment response is for, and the `Cache-Control` that follows: a viewer's copy was
//! admitted by that viewer's token and may be kept only privately; a CDN's is token-free and
//! public. Also the strong `ETag` of bytes the edge builds itself (CDN playlists).

use sha2::{Digest, Sha256};

/// Who a response is for, which decides its `Cache-Control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// A viewer admitted by a token: caches on the way may keep it only privately.
    Viewer,
    /// A CDN pulling with the `[cdn]` secret: token-free and publicly cacheable.
    Cdn,
}

/// `Cache-Control` of a segment: `public` for a CDN, `private` for a viewer, `immutable` when
/// the origin set no policy of its own.
pub fn segment_cache_control(audience: Audience, max_age_secs: u64, immutable: bool) -> String {
    let scope = match audience {
        Audience::Cdn => "public",
        Audience::Viewer => "private",
    };
    match immutable {
        true => format!("{scope}, max-age={max_age_secs}, immutable"),
        false => format!("{scope}, max-age={max_age_secs}"),
    }
}

/// `"..."`: the first 16 bytes of the SHA-256 of `bytes`, in hex.
pub fn strong_etag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_by_audience() {
        assert_eq!(
            segment_cache_control(Audience::Viewer, 60, true),
            "private, max-age=60, immutable"
        );
        assert_eq!(
            segment_cache_control(Audience::Cdn, 5, false),
            "public, max-age=5"
        );
        let tag = strong_etag(b"x");
        assert_eq!((tag.len(), tag.starts_with('"')), (34, true));
        assert_ne!(tag, strong_etag(b"y"));
    }
}
