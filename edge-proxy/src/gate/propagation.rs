//! How the session token travels on child requests (`sessions.mode`), and where the edge looks
//! for a token on a request.
//!
//! | mode | master response | child URIs |
//! |---|---|---|
//! | `query` | — | `/hls/{v}/720p/seg.ts?hdnts=<token>` |
//! | `path` | — | `/hls/{v}/hdnts=<token, / escaped>/720p/seg.ts`, `/keys/{v}/hdnts=<...>/{kid}` |
//! | `cookie` | `Set-Cookie: hdnts=<token>; Path=/hls/{v}/` and `Path=/keys/{v}/` | `/hls/{v}/720p/seg.ts` |
//!
//! A token is accepted from any carrier whatever the mode (path segment first, then the
//! query, then the cookie: `playback::token::admission`), so a manifest URL in the query works
//! in every mode. Tokens never reach the origin or a cache key: the path segment is cut off
//! before the path is parsed (`playback::token::admission::split_token_segment`), the token
//! and CloudFront parameters are removed from the query ([`origin_query`]), and every `Cookie`
//! header is dropped from upstream requests.

use std::borrow::Cow;

use playback::hls::Stamp;
pub use playback::token::admission::{origin_query, Carrier};
pub use playback::token::cloudfront::signed_query_pairs as cloudfront_pairs;

use crate::config::SessionMode;

/// How the rewriter stamps `token` (and its path-segment form `escaped`) on child URIs.
pub fn stamp<'a>(mode: SessionMode, token: &'a str, escaped: &'a str) -> Stamp<'a> {
    match mode {
        SessionMode::Query => Stamp::Query(token),
        SessionMode::Path => Stamp::PathSegment(escaped),
        SessionMode::Cookie => Stamp::Nothing,
    }
}

/// The two `Set-Cookie` values that carry the session token to the title's playlists,
/// segments and keys.
pub fn session_cookies(video_id: &str, name: &str, token: &str, attributes: &str) -> [String; 2] {
    [
        format!("{name}={token}; Path=/hls/{video_id}/{attributes}"),
        format!("{name}={token}; Path=/keys/{video_id}/{attributes}"),
    ]
}

/// `path` with any `{name}=<token>` segment shown as `{name}=<redacted>`, for logs.
pub fn redact_path<'p>(path: &'p str, name: &str) -> Cow<'p, str> {
    let marker = format!("/{name}=");
    if !path.contains(&marker) {
        return Cow::Borrowed(path);
    }
    let redacted: Vec<String> = path
        .split('/')
        .map(
            |segment| match segment.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                Some(_) => format!("{name}=<redacted>"),
                None => segment.to_string(),
            },
        )
        .collect();
    Cow::Owned(redacted.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_paths_never_carry_the_token() {
        assert_eq!(
            redact_path("/hls/v/hdnts=exp=1~hmac=ab/720p/a.ts", "hdnts"),
            "/hls/v/hdnts=<redacted>/720p/a.ts"
        );
        assert_eq!(redact_path("/hls/v/720p/a.ts", "hdnts"), "/hls/v/720p/a.ts");
    }

    #[test]
    fn cookies_are_scoped_to_the_title() {
        let [hls, keys] = session_cookies("v1", "hdnts", "T", "; HttpOnly; Secure; SameSite=None");
        assert_eq!(
            hls,
            "hdnts=T; Path=/hls/v1/; HttpOnly; Secure; SameSite=None"
        );
        assert_eq!(
            keys,
            "hdnts=T; Path=/keys/v1/; HttpOnly; Secure; SameSite=None"
        );
    }
}
