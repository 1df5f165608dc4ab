//! Keyset pagination shared by every list endpoint: `?limit=&cursor=` in, `{items, nextCursor}`
//! out.
//!
//! The cursor is opaque to clients: base64url (no padding) of the last item's sort key. Lists are
//! ordered by that key, so a page is `WHERE key > :after ORDER BY key LIMIT :limit + 1`; the
//! extra row only tells whether another page exists. Keyset (not offset) pagination keeps pages
//! stable while rows are added and costs the same on page 1 and page 1000.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page a client may ask for.
pub const MAX_LIMIT: u32 = 100;
/// Longest cursor accepted (cursors this code issues are far shorter).
pub const MAX_CURSOR_LEN: usize = 512;

/// `?limit=&cursor=` of a list endpoint.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1..=100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page; absent for the first page.
    #[param(max_length = 512)]
    #[schema(max_length = 512)]
    pub cursor: Option<String>,
}

/// A validated page request: the limit and the sort key to start after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// Sort key of the last item of the previous page (exclusive lower bound).
    pub after: Option<String>,
}

impl PageRequest {
    /// Rows to fetch: one more than the limit, to learn whether a next page exists.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

impl PageQuery {
    /// Checks the limit and decodes the cursor; bad values → 400 `invalid_limit` /
    /// `invalid_cursor`.
    pub fn validate(&self) -> Result<PageRequest, ApiError> {
        let limit = match self.limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_limit",
                    format!("`limit` must be between 1 and {MAX_LIMIT}."),
                ))
            }
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(decode_cursor(c)?),
        };
        Ok(PageRequest { limit, after })
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent (null) on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `req.fetch()` rows sorted by `key`: keeps `req.limit` of them
    /// and, when there were more, makes the cursor from the last one kept.
    pub fn from_rows(mut rows: Vec<T>, req: &PageRequest, key: impl Fn(&T) -> String) -> Self {
        let limit = req.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    /// The same page with each item converted (row type → API type).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// The opaque cursor for a sort key.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// The sort key inside a cursor; anything this code could not have issued → 400.
pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_cursor",
            "`cursor` is not a cursor this API issued; use `nextCursor` of the previous page.",
        )
    };
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let key = String::from_utf8(bytes).map_err(|_| bad())?;
    if key.is_empty() || key.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: Option<u32>, cursor: Option<&str>) -> PageQuery {
        PageQuery {
            limit,
            cursor: cursor.map(str::to_string),
        }
    }

    #[test]
    fn limits() {
        assert_eq!(q(None, None).validate().unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(q(Some(1), None).validate().unwrap().limit, 1);
        assert_eq!(q(Some(100), None).validate().unwrap().limit, 100);
        for bad in [0, 101, u32::MAX] {
            let e = q(Some(bad), None).validate().unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "invalid_limit"));
        }
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_400() {
        let c = encode_cursor("user-42");
        let r = q(Some(2), Some(&c)).validate().unwrap();
        assert_eq!(r.after.as_deref(), Some("user-42"));
        assert_eq!(r.fetch(), 3);
        assert_eq!(q(None, Some("")).validate().unwrap().after, None);
        let long = "A".repeat(MAX_CURSOR_LEN + 1);
        for bad in [
            "!!!",
            "%%",
            long.as_str(),
            &URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
        ] {
            let e = q(None, Some(bad)).validate().unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (400, "invalid_cursor"),
                "{bad}"
            );
        }
    }

    #[test]
    fn pages_from_rows() {
        let req = PageRequest {
            limit: 2,
            after: None,
        };
        let p = Page::from_rows(vec!["a", "b", "c"], &req, |s| s.to_string());
        assert_eq!(p.items, vec!["a", "b"]);
        assert_eq!(
            decode_cursor(p.next_cursor.as_deref().unwrap()).unwrap(),
            "b"
        );
        let last = Page::from_rows(vec!["c"], &req, |s| s.to_string());
        assert_eq!(last.items, vec!["c"]);
        assert!(last.next_cursor.is_none());
        let mapped = last.map(|s| s.len());
        assert_eq!(mapped.items, vec![1]);
    }
}
