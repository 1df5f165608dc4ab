//! Which answer a request for a file gets: RFC 9110's conditional headers (§13) and a single
//! byte range (§14), judged against the file's length and validators. Used by the edge for
//! files it serves itself (the directory origin) and for its own validators (CDN playlists).
//!
//! Pure (no I/O, the clock passed in) so every rule is unit-tested on its own. Multiple ranges
//! and malformed or oversized headers are answered with the whole file, which RFC 9110 allows
//! (a server may ignore `Range`); a client never gets a wrong partial body from a guess.

use std::time::SystemTime;

use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE};
use http::{HeaderMap, HeaderName, Method};

/// Longest `Range` value considered; a longer one is ignored (one range needs ~40 bytes).
pub const MAX_RANGE_HEADER: usize = 256;
/// Longest value considered for any conditional header (all lines of a list together).
pub const MAX_CONDITION_HEADER: usize = 4096;

/// What a file's current representation is compared against.
pub struct Validators<'a> {
    /// The strong entity tag, quoted.
    pub etag: &'a str,
    /// `Last-Modified` as sent: whole seconds, never after the server's clock.
    pub last_modified: Option<SystemTime>,
}

/// The answer to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// 200 with the whole file.
    Full,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416: the range starts at or past the end of the file.
    Unsatisfiable,
    /// 304: the client's copy is current.
    NotModified,
    /// 412: `If-Match` / `If-Unmodified-Since` failed.
    PreconditionFailed,
}

/// Evaluates `headers` in RFC 9110 §13.2.2's order: If-Match (else If-Unmodified-Since),
/// If-None-Match (else If-Modified-Since), then Range guarded by If-Range.
pub fn evaluate(
    method: &Method,
    headers: &HeaderMap,
    len: u64,
    validators: &Validators,
    now: SystemTime,
) -> Decision {
    let read_only = matches!(*method, Method::GET | Method::HEAD);
    if headers.contains_key(IF_MATCH) {
        if !list_matches(headers, &IF_MATCH, validators.etag, Comparison::Strong) {
            return Decision::PreconditionFailed;
        }
    } else if let (Some(since), Some(modified)) = (
        date_header(headers, &IF_UNMODIFIED_SINCE),
        validators.last_modified,
    ) {
        if modified > since {
            return Decision::PreconditionFailed;
        }
    }
    if headers.contains_key(IF_NONE_MATCH) {
        if list_matches(headers, &IF_NONE_MATCH, validators.etag, Comparison::Weak) {
            return if read_only {
                Decision::NotModified
            } else {
                Decision::PreconditionFailed
            };
        }
    } else if let (true, Some(since), Some(modified)) = (
        read_only,
        date_header(headers, &IF_MODIFIED_SINCE),
        validators.last_modified,
    ) {
        // A date in the future cannot have come from us, so it is not a validator.
        if since <= now && modified <= since {
            return Decision::NotModified;
        }
    }
    // Range handling is defined for GET; HEAD is answered as the GET would be, so a client
    // can probe a range's headers.
    if !read_only {
        return Decision::Full;
    }
    let Some(range) = single_value(headers, &http::header::RANGE, MAX_RANGE_HEADER) else {
        return Decision::Full;
    };
    if headers.contains_key(IF_RANGE) && !if_range_holds(headers, validators) {
        return Decision::Full;
    }
    parse_range(range, len)
}

/// One byte range of a `len`-byte file from a `Range` value.
pub fn parse_range(value: &str, len: u64) -> Decision {
    if value.len() > MAX_RANGE_HEADER {
        return Decision::Full;
    }
    let Some((unit, set)) = value.split_once('=') else {
        return Decision::Full;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return Decision::Full;
    }
    // `1#range-spec`: empty list elements are allowed and skipped; more than one range is
    // answered with the whole file.
    let mut specs = set.split(',').map(trim_ows).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return Decision::Full;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Decision::Full;
    };
    if first.is_empty() {
        // `-n`: the last n bytes.
        let Some(suffix) = digits(last) else {
            return Decision::Full;
        };
        return match (suffix, len) {
            (0, _) => Decision::Unsatisfiable,
            // Nothing to cut from an empty file: it is sent whole (empty).
            (_, 0) => Decision::Full,
            _ => Decision::Partial {
                start: len - suffix.min(len),
                end: len - 1,
            },
        };
    }
    let Some(start) = digits(first) else {
        return Decision::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match digits(last) {
            Some(end) if end >= start => end,
            _ => return Decision::Full,
        }
    };
    if start >= len {
        return Decision::Unsatisfiable;
    }
    Decision::Partial {
        start,
        end: end.min(len - 1),
    }
}

/// A decimal number; saturates (a position past any file means the same as `u64::MAX`).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

fn trim_ows(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

#[derive(Clone, Copy)]
enum Comparison {
    /// Both tags strong and equal (If-Match, If-Range).
    Strong,
    /// Equal ignoring `W/` (If-None-Match).
    Weak,
}

/// Whether the request's `If-None-Match` names `etag` (weak comparison, or `*`): the client's
/// copy is current and a `GET` may be answered 304.
pub fn if_none_match_holds(headers: &HeaderMap, etag: &str) -> bool {
    list_matches(headers, &IF_NONE_MATCH, etag, Comparison::Weak)
}

/// Whether an `If-Match` / `If-None-Match` list (all its header lines) names `ours` (or is
/// `*`: the file exists). Malformed or oversized lists match nothing.
fn list_matches(headers: &HeaderMap, name: &HeaderName, ours: &str, how: Comparison) -> bool {
    let values = headers.get_all(name);
    let total: usize = values.iter().map(|v| v.len()).sum();
    if total > MAX_CONDITION_HEADER {
        return false;
    }
    values
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|list| list_names(list, ours, how))
}

fn list_names(list: &str, ours: &str, how: Comparison) -> bool {
    if trim_ows(list) == "*" {
        return true;
    }
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let Some((tag, weak, after)) = entity_tag(rest) else {
            return false;
        };
        let comparable = match how {
            Comparison::Strong => !weak,
            Comparison::Weak => true,
        };
        if comparable && tag == ours {
            return true;
        }
        // The next element must be separated by a comma.
        let after = trim_ows(after);
        if !(after.is_empty() || after.starts_with(',')) {
            return false;
        }
        rest = after;
    }
}

/// The leading `[W/]"…"` of `text`: the quoted opaque tag, whether it is weak, and the rest.
fn entity_tag(text: &str) -> Option<(&str, bool, &str)> {
    let (weak, quoted) = match text.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let inner = quoted.strip_prefix('"')?;
    let close = inner.find('"')?;
    Some((&quoted[..close + 2], weak, &inner[close + 1..]))
}

/// `If-Range`: a strong entity tag equal to ours, or a date equal to our `Last-Modified`.
/// Anything else (a weak tag, a malformed value, several lines) fails it.
fn if_range_holds(headers: &HeaderMap, validators: &Validators) -> bool {
    let Some(value) = single_value(headers, &IF_RANGE, MAX_CONDITION_HEADER) else {
        return false;
    };
    let value = trim_ows(value);
    if value.starts_with('"') || value.starts_with("W/") {
        return matches!(entity_tag(value), Some((tag, false, "")) if tag == validators.etag);
    }
    match (httpdate::parse_http_date(value), validators.last_modified) {
        (Ok(date), Some(modified)) => date == modified,
        _ => false,
    }
}

/// An HTTP-date header with exactly one valid value.
fn date_header(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let value = single_value(headers, name, MAX_CONDITION_HEADER)?;
    httpdate::parse_http_date(trim_ows(value)).ok()
}

/// The header's value when it appears once, is visible ASCII and at most `max` bytes long.
fn single_value<'h>(headers: &'h HeaderMap, name: &HeaderName, max: usize) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    if value.len() > max {
        return None;
    }
    value.to_str().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const ETAG: &str = "\"17f0a1b2c3d4e5f6-2710\"";
    const LEN: u64 = 10_000;
    /// Sun, 06 Nov 1994 08:49:37 GMT
    const MODIFIED_SECS: u64 = 784_111_777;
    const MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    fn modified() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(MODIFIED_SECS)
    }

    fn now() -> SystemTime {
        modified() + Duration::from_secs(86_400 * 365 * 30)
    }

    fn decide_with(method: Method, lines: &[(&'static str, &str)]) -> Decision {
        let mut headers = HeaderMap::new();
        for (name, value) in lines {
            headers.append(*name, value.parse().unwrap());
        }
        let validators = Validators {
            etag: ETAG,
            last_modified: Some(modified()),
        };
        evaluate(&method, &headers, LEN, &validators, now())
    }

    fn decide(lines: &[(&'static str, &str)]) -> Decision {
        decide_with(Method::GET, lines)
    }

    fn partial(start: u64, end: u64) -> Decision {
        Decision::Partial { start, end }
    }

    #[test]
    fn the_three_range_forms() {
        assert_eq!(parse_range("bytes=0-499", LEN), partial(0, 499));
        assert_eq!(parse_range("bytes=500-", LEN), partial(500, LEN - 1));
        assert_eq!(parse_range("bytes=-500", LEN), partial(LEN - 500, LEN - 1));
        // The last position is clamped to the file; a suffix longer than it is the whole file.
        assert_eq!(parse_range("bytes=9000-20000", LEN), partial(9000, LEN - 1));
        assert_eq!(parse_range("bytes=-20000", LEN), partial(0, LEN - 1));
        assert_eq!(parse_range("bytes=9999-9999", LEN), partial(9999, 9999));
        // The unit is case-insensitive; whitespace around the spec and empty list elements
        // are allowed.
        assert_eq!(parse_range("Bytes=1-2", LEN), partial(1, 2));
        assert_eq!(parse_range("bytes= 1-2 ,", LEN), partial(1, 2));
        // Positions beyond u64 saturate instead of failing.
        assert_eq!(
            parse_range("bytes=0-99999999999999999999999999", LEN),
            partial(0, LEN - 1)
        );
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(parse_range("bytes=10000-", LEN), Decision::Unsatisfiable);
        assert_eq!(
            parse_range("bytes=10000-10005", LEN),
            Decision::Unsatisfiable
        );
        assert_eq!(parse_range("bytes=-0", LEN), Decision::Unsatisfiable);
        assert_eq!(
            parse_range("bytes=99999999999999999999999-", LEN),
            Decision::Unsatisfiable
        );
        assert_eq!(parse_range("bytes=0-", 0), Decision::Unsatisfiable);
        // A suffix of an empty file: nothing to cut, the (empty) file is sent whole.
        assert_eq!(parse_range("bytes=-5", 0), Decision::Full);
    }

    #[test]
    fn malformed_or_multiple_ranges_get_the_whole_file() {
        for value in [
            "bytes=0-1,5-6",
            "bytes=-1,0-0",
            "bytes=5-4",
            "bytes=",
            "bytes=,",
            "bytes=-",
            "bytes=a-b",
            "bytes=1 -2",
            "bytes=+1-2",
            "bytes=0x10-",
            "bytes=1-2-3",
            "bytes 0-1",
            "items=0-1",
            "bytes =0-1",
            "0-1",
            "",
        ] {
            assert_eq!(parse_range(value, LEN), Decision::Full, "{value:?}");
        }
        let long = format!("bytes=0-{}", "0".repeat(MAX_RANGE_HEADER));
        assert_eq!(parse_range(&long, LEN), Decision::Full);
        assert_eq!(decide(&[("range", &long)]), Decision::Full);
        // Two Range lines are as ambiguous as two ranges.
        assert_eq!(
            decide(&[("range", "bytes=0-1"), ("range", "bytes=2-3")]),
            Decision::Full
        );
    }

    #[test]
    fn no_conditions_no_range_is_the_whole_file() {
        assert_eq!(decide(&[]), Decision::Full);
        assert_eq!(decide(&[("range", "bytes=0-9")]), partial(0, 9));
        assert_eq!(
            decide(&[("range", "bytes=20000-")]),
            Decision::Unsatisfiable
        );
    }

    #[test]
    fn if_none_match_weak_comparison() {
        let weak = format!("W/{ETAG}");
        let listed = format!("\"other\", W/\"x,y\" ,{ETAG}");
        for value in [ETAG, weak.as_str(), "*", " * ", listed.as_str()] {
            assert_eq!(
                decide(&[("if-none-match", value)]),
                Decision::NotModified,
                "{value}"
            );
        }
        // HEAD is answered like GET.
        assert_eq!(
            decide_with(Method::HEAD, &[("if-none-match", ETAG)]),
            Decision::NotModified
        );
        // A list spread over several lines.
        assert_eq!(
            decide(&[("if-none-match", "\"a\""), ("if-none-match", ETAG)]),
            Decision::NotModified
        );
        for value in [
            "\"17f0a1b2c3d4e5f6-2711\"",
            "\"other\"",
            "17f0a1b2c3d4e5f6-2710",
            "\"unterminated",
            // Malformed in front of a match: the list is not trusted.
            &format!("bogus, {ETAG}"),
            // `*` is only valid alone.
            &format!("*, {ETAG}"),
        ] {
            assert_eq!(
                decide(&[("if-none-match", value)]),
                Decision::Full,
                "{value}"
            );
        }
        // A matching tag inside an oversized list is ignored.
        let huge = format!("{}{ETAG}", "\"a\", ".repeat(MAX_CONDITION_HEADER / 5));
        assert_eq!(decide(&[("if-none-match", &huge)]), Decision::Full);
    }

    #[test]
    fn if_modified_since() {
        assert_eq!(
            decide(&[("if-modified-since", MODIFIED)]),
            Decision::NotModified
        );
        // Later than the file: not modified since. All three HTTP-date formats are accepted.
        for later in [
            "Mon, 07 Nov 1994 00:00:00 GMT",
            "Monday, 07-Nov-94 00:00:00 GMT",
            "Mon Nov  7 00:00:00 1994",
        ] {
            assert_eq!(
                decide(&[("if-modified-since", later)]),
                Decision::NotModified,
                "{later}"
            );
        }
        assert_eq!(
            decide(&[("if-modified-since", "Sun, 06 Nov 1994 08:49:36 GMT")]),
            Decision::Full
        );
        // Invalid, future or doubled dates are ignored.
        for (value, second) in [
            ("yesterday", None),
            ("Fri, 01 Jan 2100 00:00:00 GMT", None),
            (MODIFIED, Some(MODIFIED)),
        ] {
            let mut lines = vec![("if-modified-since", value)];
            lines.extend(second.map(|s| ("if-modified-since", s)));
            assert_eq!(decide(&lines), Decision::Full, "{value}");
        }
        // No Last-Modified: nothing to compare.
        let validators = Validators {
            etag: ETAG,
            last_modified: None,
        };
        let mut headers = HeaderMap::new();
        headers.insert(IF_MODIFIED_SINCE, MODIFIED.parse().unwrap());
        assert_eq!(
            evaluate(&Method::GET, &headers, LEN, &validators, now()),
            Decision::Full
        );
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        // A different tag with a current date: the tag decides (modified).
        assert_eq!(
            decide(&[
                ("if-none-match", "\"older\""),
                ("if-modified-since", MODIFIED)
            ]),
            Decision::Full
        );
        // 304 wins over a Range.
        assert_eq!(
            decide(&[("if-none-match", ETAG), ("range", "bytes=0-1")]),
            Decision::NotModified
        );
        assert_eq!(
            decide(&[("if-modified-since", MODIFIED), ("range", "bytes=0-1")]),
            Decision::NotModified
        );
    }

    #[test]
    fn if_range() {
        let range = ("range", "bytes=10-19");
        assert_eq!(decide(&[range, ("if-range", ETAG)]), partial(10, 19));
        assert_eq!(decide(&[range, ("if-range", MODIFIED)]), partial(10, 19));
        let weak = format!("W/{ETAG}");
        for value in [
            "\"other\"",
            weak.as_str(),
            "Sun, 06 Nov 1994 08:49:38 GMT",
            "Sun, 06 Nov 1994 08:49:36 GMT",
            "garbage",
            // A list is not an If-Range value.
            &format!("{ETAG}, {ETAG}"),
        ] {
            assert_eq!(
                decide(&[range, ("if-range", value)]),
                Decision::Full,
                "{value}"
            );
        }
        // If-Range without Range changes nothing; an unsatisfiable range behind a failed
        // If-Range is the whole file, not 416.
        assert_eq!(decide(&[("if-range", "\"other\"")]), Decision::Full);
        assert_eq!(
            decide(&[("range", "bytes=20000-"), ("if-range", "\"other\"")]),
            Decision::Full
        );
        assert_eq!(
            decide(&[("range", "bytes=20000-"), ("if-range", ETAG)]),
            Decision::Unsatisfiable
        );
    }

    #[test]
    fn if_match_and_if_unmodified_since() {
        assert_eq!(decide(&[("if-match", ETAG)]), Decision::Full);
        assert_eq!(decide(&[("if-match", "*")]), Decision::Full);
        assert_eq!(
            decide(&[("if-match", ETAG), ("range", "bytes=0-0")]),
            partial(0, 0)
        );
        // Strong comparison: a weak tag never matches.
        assert_eq!(
            decide(&[("if-match", &format!("W/{ETAG}"))]),
            Decision::PreconditionFailed
        );
        assert_eq!(
            decide(&[("if-match", "\"other\"")]),
            Decision::PreconditionFailed
        );
        assert_eq!(
            decide(&[("if-unmodified-since", "Sun, 06 Nov 1994 08:49:36 GMT")]),
            Decision::PreconditionFailed
        );
        assert_eq!(decide(&[("if-unmodified-since", MODIFIED)]), Decision::Full);
        // If-Match present: If-Unmodified-Since is not looked at.
        assert_eq!(
            decide(&[
                ("if-match", ETAG),
                ("if-unmodified-since", "Sun, 06 Nov 1994 08:49:36 GMT")
            ]),
            Decision::Full
        );
        // If-None-Match on a method that is not GET/HEAD fails the precondition.
        assert_eq!(
            decide_with(Method::POST, &[("if-none-match", ETAG)]),
            Decision::PreconditionFailed
        );
        assert_eq!(
            decide_with(Method::POST, &[("range", "bytes=0-0")]),
            Decision::Full
        );
    }
}
