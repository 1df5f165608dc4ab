//! What fetching from an origin returns: a playlist with the origin's word on its freshness,
//! or an [`OriginError`]; and the two pieces every HTTP-speaking origin shares to read one (a
//! bounded UTF-8 body, `Cache-Control` freshness).

use crate::core::errors::EdgeError;

/// A playlist as the origin sent it, with the origin's word on how long it stays fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPlaylist {
    pub body: String,
    /// The origin's freshness for it: `Cache-Control` `s-maxage` (preferred) or `max-age`;
    /// `no-store`, `no-cache` or `private` give `Some(0)`; `None` when the origin says nothing
    /// (always for a directory origin).
    pub max_age_secs: Option<u64>,
}

/// What went wrong asking an origin for a file.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    /// The origin has no such file (or it lies outside the origin root).
    #[error("no such file at the origin")]
    NotFound,
    /// The playlist is larger than `origin.max_playlist_bytes`.
    #[error("playlist larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The playlist is not UTF-8 text.
    #[error("playlist is not UTF-8 text")]
    NotText,
    /// The origin could not be reached or failed.
    #[error("origin failed: {0}")]
    Failed(String),
}

impl From<OriginError> for EdgeError {
    fn from(e: OriginError) -> Self {
        match e {
            OriginError::NotFound => EdgeError::NotFound,
            OriginError::TooLarge { limit } => EdgeError::PlaylistTooLarge { limit },
            OriginError::NotText => EdgeError::BadPlaylist,
            OriginError::Failed(cause) => {
                tracing::warn!(cause = %cause, "origin request failed");
                EdgeError::OriginUnavailable
            }
        }
    }
}

/// A whole playlist body as UTF-8, refused past `limit` bytes (by `Content-Length` first,
/// then while reading); `failed` describes a broken transfer.
pub async fn read_playlist(
    mut response: reqwest::Response,
    limit: u64,
    failed: fn(reqwest::Error) -> OriginError,
) -> Result<String, OriginError> {
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(OriginError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(OriginError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| OriginError::NotText)
}

/// The origin's freshness from its `Cache-Control`: `no-store`, `no-cache` and `private` →
/// `Some(0)`, else `s-maxage` (a shared cache's lifetime, which the edge is), else `max-age`.
pub fn freshness(headers: &::http::HeaderMap) -> Option<u64> {
    let mut max_age = None;
    let mut s_maxage = None;
    for value in headers.get_all(::http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive, None),
            };
            let seconds = || argument.and_then(|a| a.parse::<u64>().ok());
            if name.eq_ignore_ascii_case("no-store")
                || name.eq_ignore_ascii_case("no-cache")
                || name.eq_ignore_ascii_case("private")
            {
                return Some(0);
            } else if name.eq_ignore_ascii_case("s-maxage") {
                s_maxage = s_maxage.or_else(seconds);
            } else if name.eq_ignore_ascii_case("max-age") {
                max_age = max_age.or_else(seconds);
            }
        }
    }
    s_maxage.or(max_age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> ::http::HeaderMap {
        let mut map = ::http::HeaderMap::new();
        for value in values {
            map.append(::http::header::CACHE_CONTROL, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn freshness_from_cache_control() {
        assert_eq!(freshness(&headers(&[])), None);
        assert_eq!(freshness(&headers(&["public"])), None);
        assert_eq!(freshness(&headers(&["max-age=6"])), Some(6));
        assert_eq!(freshness(&headers(&["Max-Age = \"6\""])), Some(6));
        assert_eq!(freshness(&headers(&["max-age=60, s-maxage=2"])), Some(2));
        assert_eq!(freshness(&headers(&["public", "s-maxage=3"])), Some(3));
        assert_eq!(freshness(&headers(&["max-age=60, no-cache"])), Some(0));
        assert_eq!(freshness(&headers(&["no-store"])), Some(0));
        assert_eq!(freshness(&headers(&["private, max-age=60"])), Some(0));
        assert_eq!(freshness(&headers(&["max-age=soon"])), None);
    }
}
