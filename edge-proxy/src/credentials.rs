//! Where credentials are found on a request, and how they are kept out of what the edge
//! forwards.
//!
//! Viewer JWTs come in `Authorization: Bearer <jwt>` or `?token=<jwt>`; signed-URL tokens come
//! in the configured query parameter. Query values are returned exactly as sent (never
//! percent-decoded), because the signed-URL MAC covers the token's bytes as they appear in URLs.

use http::HeaderMap;

/// The bearer token in `Authorization`, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    playback::jwt::bearer_token(headers.get(http::header::AUTHORIZATION)?.to_str().ok()?)
}

pub use playback::token::{query_param, query_without};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert("authorization", "Bearer abc.def.ghi".parse().unwrap());
        assert_eq!(bearer_token(&headers), Some("abc.def.ghi"));
        headers.insert("authorization", "bearer  xyz ".parse().unwrap());
        assert_eq!(bearer_token(&headers), Some("xyz"));
        headers.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
        headers.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
    }
}
