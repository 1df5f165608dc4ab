//! URI reference handling for playlists (RFC 3986 §5.2, paths only).

/// The parts of a URI reference as written in a playlist.
pub(crate) struct UriRef<'a> {
    /// Everything before `?`/`#`.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub fragment: Option<&'a str>,
}

pub(crate) fn split(uri: &str) -> UriRef<'_> {
    let (rest, fragment) = match uri.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (uri, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    UriRef {
        path,
        query,
        fragment,
    }
}

/// True for `scheme:...` references (`http:`, `skd:`, `data:`...).
pub(crate) fn has_scheme(uri: &str) -> bool {
    let Some(colon) = uri.find(':') else {
        return false;
    };
    let scheme = &uri[..colon];
    !scheme.is_empty()
        && scheme.as_bytes()[0].is_ascii_alphabetic()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && !scheme.contains('/')
}

/// True when the path has `.` or `..` segments that resolution must remove.
pub(crate) fn has_dot_segments(path: &str) -> bool {
    // A byte loop: `split('/')` costs an iterator step per segment on the MPD hot path.
    let bytes = path.as_bytes();
    let mut segment_start = 0;
    for i in 0..=bytes.len() {
        if i == bytes.len() || bytes[i] == b'/' {
            if matches!(&bytes[segment_start..i], b"." | b"..") {
                return true;
            }
            segment_start = i + 1;
        }
    }
    false
}

/// A relative reference a rewriter may copy as written and append a query to: not empty, not
/// path-absolute, no scheme, query or fragment, no `&` (in XML it starts a reference), no dot
/// segment.
pub(crate) fn is_plain_relative(uri: &str) -> bool {
    // One pass (the MPD rewrite asks this of every segment URL): the bytes and the segments.
    let bytes = uri.as_bytes();
    if bytes.first().is_none_or(|&b| b == b'/') {
        return false;
    }
    let mut segment_start = 0;
    for i in 0..=bytes.len() {
        match bytes.get(i) {
            Some(b'?' | b'#' | b'&' | b':') => return false,
            Some(b'/') | None => {
                if matches!(&bytes[segment_start..i], b"." | b"..") {
                    return false;
                }
                segment_start = i + 1;
            }
            Some(_) => {}
        }
    }
    true
}

/// Resolves `path` (relative, no scheme) against `base_dir` (path-absolute, ending in `/`),
/// removing dot segments. `..` never climbs above the root.
pub(crate) fn resolve(base_dir: &str, path: &str) -> String {
    let merged = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{base_dir}{path}")
    };
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = merged.split('/').skip(1).collect();
    for (i, seg) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        match *seg {
            "." => {
                if last {
                    segments.push("");
                }
            }
            ".." => {
                segments.pop();
                if last {
                    segments.push("");
                }
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(merged.len());
    for s in segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution() {
        assert_eq!(
            resolve("/hls/v/", "720p/index.m3u8"),
            "/hls/v/720p/index.m3u8"
        );
        assert_eq!(resolve("/hls/v/720p/", "../480p/a.ts"), "/hls/v/480p/a.ts");
        assert_eq!(resolve("/hls/v/720p/", "./a.ts"), "/hls/v/720p/a.ts");
        assert_eq!(resolve("/hls/v/", "../../../etc/passwd"), "/etc/passwd");
        assert_eq!(resolve("/hls/v/", "/x/y"), "/x/y");
        assert_eq!(resolve("/a/", "b/.."), "/a/");
    }

    #[test]
    fn schemes_and_parts() {
        assert!(has_scheme("https://cdn/x.ts"));
        assert!(has_scheme("skd://key"));
        assert!(has_scheme("data:text/plain,x"));
        assert!(!has_scheme("720p/a.ts"));
        assert!(!has_scheme("/a:b"));
        let u = split("a.ts?x=1&y=2#t=3");
        assert_eq!(
            (u.path, u.query, u.fragment),
            ("a.ts", Some("x=1&y=2"), Some("t=3"))
        );
        assert!(has_dot_segments("../a"));
        assert!(!has_dot_segments("a..b/c"));
    }
}
