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
//! query, then the cookie), so a manifest URL in the query works in every mode. Tokens never
//! reach the origin or a cache key: the path segment is cut off before the path is parsed, the
//! token and CloudFront parameters are removed from the query ([`origin_query`]), and the
//! `Cookie` header is dropped from upstream requests.

use std::borrow::Cow;

use http::HeaderMap;
use pingora::http::RequestHeader;
use playback::hls::Stamp;
use playback::token::admission;
pub use playback::token::admission::Carrier;
use playback::token::session::unescape_segment;

use crate::config::SessionMode;
use crate::errors::EdgeError;

/// CloudFront's query parameters and cookie suffixes.
pub const CLOUDFRONT_PARAMS: [&str; 5] = [
    "Expires",
    "Policy",
    "Signature",
    "Key-Pair-Id",
    "Hash-Algorithm",
];

/// Splits a leading `{name}=<escaped token>/` segment off the tail of an `/hls/{v}/` or
/// `/keys/{v}/` path: `(token, rest)`. Without such a segment the tail is returned whole.
pub fn split_path_token<'a>(
    tail: &'a str,
    name: &str,
) -> Result<(Option<String>, &'a str), EdgeError> {
    let Some(after_name) = tail
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('='))
    else {
        return Ok((None, tail));
    };
    let (segment, rest) = after_name.split_once('/').ok_or(EdgeError::NotFound)?;
    let token = unescape_segment(segment).ok_or(EdgeError::BadPath)?;
    if rest.is_empty() {
        return Err(EdgeError::NotFound);
    }
    Ok((Some(token), rest))
}

/// Every `Cookie` header joined, for CloudFront's cookie parser.
pub fn cookie_header(headers: &HeaderMap) -> Option<Cow<'_, str>> {
    let mut values = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    // One Cookie header (the usual case) is borrowed; only several are joined.
    let rest: Vec<&str> = values.collect();
    if rest.is_empty() {
        return Some(Cow::Borrowed(first));
    }
    Some(Cow::Owned(
        std::iter::once(first)
            .chain(rest)
            .collect::<Vec<_>>()
            .join("; "),
    ))
}

/// The token the request presents: path segment, then query, then cookie (the rule is
/// `playback::token::admission::presented`, shared with the proxy-wasm filter).
pub fn presented(
    req: &RequestHeader,
    name: &str,
    path_token: Option<String>,
) -> Option<(String, Carrier)> {
    let cookies = cookie_header(&req.headers);
    admission::presented(path_token, req.uri.query(), cookies.as_deref(), name)
}

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

/// The CloudFront parameters of `query`, raw, to re-stamp on child URIs.
pub fn cloudfront_pairs(query: Option<&str>) -> Option<String> {
    let pairs: Vec<&str> = query?
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            CLOUDFRONT_PARAMS.contains(&name)
        })
        .collect();
    (!pairs.is_empty()).then(|| pairs.join("&"))
}

/// `query` without the edge token and CloudFront parameters: what the origin may see.
pub use playback::token::admission::origin_query;

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
    fn path_tokens_are_split_and_unescaped() {
        let (token, rest) =
            split_path_token("hdnts=exp=1~acl=%2Fhls%2Fv%2F*~hmac=ab/720p/a.ts", "hdnts").unwrap();
        assert_eq!(token.as_deref(), Some("exp=1~acl=/hls/v/*~hmac=ab"));
        assert_eq!(rest, "720p/a.ts");
        assert_eq!(
            split_path_token("720p/a.ts", "hdnts").unwrap(),
            (None, "720p/a.ts")
        );
        assert_eq!(
            split_path_token("hdntsx=1/a.ts", "hdnts").unwrap(),
            (None, "hdntsx=1/a.ts")
        );
        assert_eq!(
            split_path_token("hdnts=abc", "hdnts"),
            Err(EdgeError::NotFound)
        );
        assert_eq!(
            split_path_token("hdnts=abc/", "hdnts"),
            Err(EdgeError::NotFound)
        );
        assert_eq!(
            split_path_token("hdnts=%zz/a.ts", "hdnts"),
            Err(EdgeError::BadPath)
        );
    }

    #[test]
    fn cookies_and_queries() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", "a=1; hdnts=exp=2~hmac=ff".parse().unwrap());
        headers.append("cookie", "CloudFront-Policy=p".parse().unwrap());
        assert_eq!(
            cookie_header(&headers).as_deref(),
            Some("a=1; hdnts=exp=2~hmac=ff; CloudFront-Policy=p")
        );
        let q = Some("x=1&hdnts=t&Policy=p&Signature=s&Key-Pair-Id=K");
        assert_eq!(origin_query(q, "hdnts").as_deref(), Some("x=1"));
        assert_eq!(
            cloudfront_pairs(q).as_deref(),
            Some("Policy=p&Signature=s&Key-Pair-Id=K")
        );
        assert_eq!(cloudfront_pairs(Some("x=1")), None);
    }

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
