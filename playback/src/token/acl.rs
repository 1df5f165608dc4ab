//! Path patterns a token is scoped to.
//!
//! A pattern is a request path where `*` matches any run of characters (including `/`) and `?`
//! matches exactly one, as in Akamai's EdgeAuth ACLs. Matching is linear in the path length for
//! the patterns tokens use and never recurses.

/// True when `path` matches `pattern`.
pub fn acl_matches(pattern: &str, path: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), path.as_bytes());
    let (mut pi, mut si) = (0usize, 0usize);
    // Position of the last `*` in the pattern and the path index it was tried at.
    let mut backtrack: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            backtrack = Some((pi, si));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            si = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::acl_matches;

    #[test]
    fn wildcards() {
        assert!(acl_matches("/hls/abc/*", "/hls/abc/master.m3u8"));
        assert!(acl_matches("/hls/abc/*", "/hls/abc/720p/seg_001.ts"));
        assert!(acl_matches("/hls/abc/*", "/hls/abc/"));
        assert!(!acl_matches("/hls/abc/*", "/hls/abcd/master.m3u8"));
        assert!(!acl_matches("/hls/abc/*", "/hls/ab/master.m3u8"));
        assert!(acl_matches("/hls/abc/seg_00?.ts", "/hls/abc/seg_007.ts"));
        assert!(!acl_matches("/hls/abc/seg_00?.ts", "/hls/abc/seg_0077.ts"));
        assert!(acl_matches("/exact", "/exact"));
        assert!(!acl_matches("/exact", "/exact/more"));
        assert!(acl_matches("*", ""));
        assert!(acl_matches("/a/*/c/*.ts", "/a/b/x/c/d.ts"));
        assert!(!acl_matches("/a/*/c/*.ts", "/a/b/x/c/d.m4s"));
    }
}
