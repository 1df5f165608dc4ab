//! The path of a file inside one video's origin folder, proven safe before any origin is asked.
//!
//! `/hls/{videoId}/{rest}` carries a client-chosen `rest`. [`AssetPath::parse`] percent-decodes
//! it once and refuses anything that could name a file outside the video's folder or be read
//! differently by another server: `..` and `.` segments, empty segments (`//`), absolute paths,
//! backslashes, NUL and other control bytes, encoded slashes (`%2F`) and leftover `%` after one
//! decoding (double encoding). What survives is a list of plain segments that can be joined onto
//! a directory or re-encoded into an upstream URL without changing meaning.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// Most segments a path may have.
const MAX_SEGMENTS: usize = 16;
/// Longest decoded path accepted. The limit is on the decoded form so that a path and its
/// re-encoded upstream form (non-ASCII bytes triple in size) get the same verdict.
const MAX_DECODED_LEN: usize = 1024;
/// Longest raw path read at all: every decoded byte written as a `%XX` escape.
const MAX_RAW_LEN: usize = 3 * MAX_DECODED_LEN;

/// Characters that must be escaped inside one path segment of an upstream URL.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

/// The request path was refused by [`AssetPath::parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the path is not a plain relative file path")]
pub struct BadPath;

/// A decoded, validated relative path such as `720p/seg_001.ts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetPath {
    segments: Vec<String>,
}

impl AssetPath {
    /// Decodes and validates the raw (percent-encoded) remainder of an `/hls/{videoId}/` path.
    pub fn parse(raw: &str) -> Result<AssetPath, BadPath> {
        if raw.is_empty() || raw.len() > MAX_RAW_LEN || raw.starts_with('/') {
            return Err(BadPath);
        }
        let segments = raw
            .split('/')
            .map(decode_segment)
            .collect::<Result<Vec<_>, _>>()?;
        let decoded_len = segments.iter().map(|s| s.len() + 1).sum::<usize>() - 1;
        if segments.len() > MAX_SEGMENTS || decoded_len > MAX_DECODED_LEN {
            return Err(BadPath);
        }
        Ok(AssetPath { segments })
    }

    /// The decoded segments, in order.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The decoded path joined with `/`, e.g. `720p/seg_001.ts`.
    pub fn relative(&self) -> String {
        self.segments.join("/")
    }

    /// The normalized edge path, `/hls/{videoId}/{relative}`, that tokens are checked against.
    pub fn edge_path(&self, video_id: &str) -> String {
        format!("{}{}", crate::token::hls_prefix(video_id), self.relative())
    }

    /// The path re-encoded for an upstream URL, one escaped segment at a time.
    pub fn encoded(&self) -> String {
        let encoded: Vec<String> = self
            .segments
            .iter()
            .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
            .collect();
        encoded.join("/")
    }

    /// The last segment's extension, lowercased (`ts`, `m3u8`), if it has one.
    pub fn extension(&self) -> Option<String> {
        let name = self.segments.last()?;
        let (stem, ext) = name.rsplit_once('.')?;
        (!stem.is_empty()).then(|| ext.to_ascii_lowercase())
    }
}

fn decode_segment(raw: &str) -> Result<String, BadPath> {
    if !valid_escapes(raw) {
        return Err(BadPath);
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| BadPath)?
        .into_owned();
    let unsafe_char = |c: char| c.is_control() || matches!(c, '/' | '\\' | '%' | ':');
    if decoded.is_empty() || decoded == "." || decoded == ".." || decoded.chars().any(unsafe_char) {
        return Err(BadPath);
    }
    Ok(decoded)
}

/// True when every `%` starts a well-formed `%XX` escape (the decoder would pass others through).
fn valid_escapes(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        AssetPath::parse(raw).unwrap().relative()
    }

    #[test]
    fn plain_paths_pass() {
        assert_eq!(ok("master.m3u8"), "master.m3u8");
        assert_eq!(ok("720p/index.m3u8"), "720p/index.m3u8");
        assert_eq!(ok("720p/seg%20001.ts"), "720p/seg 001.ts");
        assert_eq!(ok("a..b.ts"), "a..b.ts");
    }

    #[test]
    fn traversal_and_oddities_are_refused() {
        for raw in [
            "..",
            "../etc/passwd",
            "720p/../../etc/passwd",
            "./master.m3u8",
            "%2e%2e/etc/passwd",
            "%2E%2E%2Fetc%2Fpasswd",
            "..%2fetc",
            "720p%2Findex.m3u8",
            "%252e%252e%252fetc",
            "..\\etc\\passwd",
            "%5c..%5cetc",
            "a//b.ts",
            "/etc/passwd",
            "a/",
            "",
            "seg%00.ts",
            "seg\0.ts",
            "seg%0a.ts",
            "c:%5cwindows",
            "bad%zzescape",
            "trailing%2",
            "%ff%fe.ts",
        ] {
            assert_eq!(
                AssetPath::parse(raw),
                Err(BadPath),
                "{raw:?} must be refused"
            );
        }
        let deep = vec!["a"; MAX_SEGMENTS + 1].join("/");
        assert_eq!(AssetPath::parse(&deep), Err(BadPath));
    }

    #[test]
    fn limits_apply_to_the_decoded_path_so_reencoding_keeps_the_verdict() {
        // Found by the asset_path fuzz target: 412 non-ASCII bytes re-encode to over 1 KiB.
        let wide = "é".repeat(MAX_DECODED_LEN / 2);
        let path = AssetPath::parse(&wide).unwrap();
        assert_eq!(AssetPath::parse(&path.encoded()), Ok(path));
        assert_eq!(
            AssetPath::parse(&"a".repeat(MAX_DECODED_LEN + 1)),
            Err(BadPath)
        );
        assert_eq!(
            AssetPath::parse(&"%41".repeat(MAX_DECODED_LEN + 1)),
            Err(BadPath)
        );
    }

    #[test]
    fn edge_path_and_encoding() {
        let path = AssetPath::parse("720p/seg%20001.ts").unwrap();
        assert_eq!(
            path.edge_path("0b6f2a8e-3c1d-4e5f-9a7b-112233445566"),
            "/hls/0b6f2a8e-3c1d-4e5f-9a7b-112233445566/720p/seg 001.ts"
        );
        assert_eq!(path.encoded(), "720p/seg%20001.ts");
        assert_eq!(path.extension().as_deref(), Some("ts"));
        assert_eq!(AssetPath::parse("README").unwrap().extension(), None);
        assert_eq!(AssetPath::parse(".hidden").unwrap().extension(), None);
        assert_eq!(
            AssetPath::parse("A.M3U8").unwrap().extension().as_deref(),
            Some("m3u8")
        );
    }
}
