//! Rewrites an origin playlist for one viewer.
//!
//! Every URI the player will request — variant playlists, media segments, `EXT-X-MAP`,
//! `EXT-X-MEDIA`, `EXT-X-I-FRAME-STREAM-INF`, `EXT-X-PART`, `EXT-X-PRELOAD-HINT`,
//! `EXT-X-RENDITION-REPORT`, `EXT-X-SESSION-DATA` — becomes a path-absolute edge URI carrying the
//! viewer's token, keeping any query the origin wrote. `EXT-X-KEY`/`EXT-X-SESSION-KEY` for
//! identity-format keys (HLS AES-128, SAMPLE-AES) point at the edge's key endpoint instead.
//!
//! Everything else — comments, unknown tags, blank lines, CRLF line endings, byte ranges — is
//! copied byte for byte. The rewrite is a single pass into one pre-sized buffer; the common
//! relative URI costs no allocation. URIs that point to another host (or outside the title) are
//! left untouched: they are not ours to sign.

use super::uri::{has_dot_segments, has_scheme, resolve, split, UriRef};
use crate::token::hls_prefix;

/// Longest key id accepted from an origin key URI.
const MAX_KEY_ID_LEN: usize = 128;

/// What the rewriter needs to know about the request being served.
#[derive(Debug, Clone, Copy)]
pub struct RewriteContext<'a> {
    pub video_id: &'a str,
    /// Edge path of the playlist being served, without any token segment, e.g.
    /// `/hls/{v}/720p/index.m3u8`.
    pub playlist_path: &'a str,
    /// Absolute URL the origin uses for `/hls/{v}/` (HTTP origins), so absolute origin URIs map
    /// back onto the edge. `None` for a directory origin.
    pub origin_prefix: Option<&'a str>,
    /// Name of the edge's token (query parameter, path-segment prefix, cookie); a stale copy in
    /// an origin URI's query is dropped.
    pub token_name: &'a str,
    /// How the token travels on every rewritten URI (minted once per response).
    pub stamp: Stamp<'a>,
}

/// How a rewritten URI carries the viewer's proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp<'a> {
    /// `?{token_name}={token}` appended to the query.
    Query(&'a str),
    /// Raw `name=value&...` pairs appended to the query (a CloudFront signed URL's parameters).
    QueryPairs(&'a str),
    /// `{token_name}={segment}` inserted as the first path segment after `/hls/{v}/` or
    /// `/keys/{v}/`; the value is already escaped for a path segment (no `/`), so relative URIs
    /// a player resolves against the playlist keep it.
    PathSegment(&'a str),
    /// No proof on the URI (it travels in a cookie).
    Nothing,
}

impl Stamp<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Stamp::Query(t) | Stamp::QueryPairs(t) | Stamp::PathSegment(t) => t.len(),
            Stamp::Nothing => 0,
        }
    }
}

/// Why a playlist could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("the origin response is not an HLS playlist (no #EXTM3U header)")]
    NotAPlaylist,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum UriRole {
    Media,
    Key,
}

/// Rewrites `input` for the viewer described by `ctx`.
pub fn rewrite_playlist(input: &str, ctx: &RewriteContext) -> Result<String, RewriteError> {
    let body = input.strip_prefix('\u{feff}').unwrap_or(input);
    if !body.starts_with("#EXTM3U") {
        return Err(RewriteError::NotAPlaylist);
    }
    let rewriter = Rewriter::new(ctx);
    let uri_lines = body.lines().filter(|l| !l.starts_with('#')).count();
    let mut out = String::with_capacity(
        input.len() + (uri_lines + 8) * (ctx.stamp.len() + ctx.token_name.len() + 16),
    );
    out.push_str(&input[..input.len() - body.len()]);
    for raw in body.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        let ending = &raw[line.len()..];
        if line.trim().is_empty() {
            out.push_str(line);
        } else if let Some(tag_body) = line.strip_prefix('#') {
            match uri_tag_role(tag_body) {
                Some(role) => rewriter.tag(line, role, &mut out),
                None => out.push_str(line),
            }
        } else {
            rewriter.uri(line.trim(), UriRole::Media, &mut out);
        }
        out.push_str(ending);
    }
    Ok(out)
}

/// Which tags carry a `URI` attribute, and whether it names a key.
fn uri_tag_role(tag_body: &str) -> Option<UriRole> {
    const MEDIA_TAGS: [&str; 8] = [
        "EXT-X-MAP:",
        "EXT-X-MEDIA:",
        "EXT-X-I-FRAME-STREAM-INF:",
        "EXT-X-PART:",
        "EXT-X-PRELOAD-HINT:",
        "EXT-X-RENDITION-REPORT:",
        "EXT-X-SESSION-DATA:",
        "EXT-X-IMAGE-STREAM-INF:",
    ];
    if tag_body.starts_with("EXT-X-KEY:") || tag_body.starts_with("EXT-X-SESSION-KEY:") {
        Some(UriRole::Key)
    } else if MEDIA_TAGS.iter().any(|t| tag_body.starts_with(t)) {
        Some(UriRole::Media)
    } else {
        None
    }
}

struct Rewriter<'a> {
    ctx: &'a RewriteContext<'a>,
    hls_prefix: String,
    keys_prefix: String,
    /// Directory of the playlist (ends in `/`), the base for relative URIs.
    base_dir: &'a str,
}

/// The attribute spans of one tag line that the rewriter cares about.
struct TagAttributes<'a> {
    /// Byte range of the `URI` value inside the quotes.
    uri: Option<(usize, usize)>,
    method: Option<&'a str>,
    keyformat: Option<&'a str>,
}

impl<'a> Rewriter<'a> {
    fn new(ctx: &'a RewriteContext<'a>) -> Self {
        let base_dir = match ctx.playlist_path.rfind('/') {
            Some(i) => &ctx.playlist_path[..=i],
            None => "/",
        };
        Rewriter {
            ctx,
            hls_prefix: hls_prefix(ctx.video_id),
            keys_prefix: format!("/keys/{}/", ctx.video_id),
            base_dir,
        }
    }

    fn tag(&self, line: &str, role: UriRole, out: &mut String) {
        let attrs = parse_attributes(line);
        let Some((start, end)) = attrs.uri else {
            out.push_str(line);
            return;
        };
        let uri = &line[start..end];
        out.push_str(&line[..start]);
        let is_identity_key = role == UriRole::Key
            && attrs.method.is_none_or(|m| m != "NONE")
            && attrs.keyformat.is_none_or(|f| f == "identity");
        match role {
            UriRole::Key if is_identity_key => self.uri(uri, UriRole::Key, out),
            UriRole::Key => out.push_str(uri),
            UriRole::Media => self.uri(uri, UriRole::Media, out),
        }
        out.push_str(&line[end..]);
    }

    /// Writes the edge form of `uri` into `out`, or `uri` itself when it is not ours.
    fn uri(&self, uri: &str, role: UriRole, out: &mut String) {
        let parts = split(uri);
        if role == UriRole::Key {
            match key_id(parts.path) {
                // The edge is the key server for identity keys, wherever the origin pointed.
                Some(id)
                    if !has_scheme(uri)
                        || uri.starts_with("http://")
                        || uri.starts_with("https://") =>
                {
                    self.push_edge_path(&self.keys_prefix, &[id], out);
                    self.push_query(None, None, out);
                }
                _ => out.push_str(uri),
            }
            return;
        }
        let relative_plain = !has_scheme(parts.path)
            && !parts.path.starts_with('/')
            && !has_dot_segments(parts.path);
        if let (true, Some(dir)) = (
            relative_plain,
            self.base_dir.strip_prefix(self.hls_prefix.as_str()),
        ) {
            self.push_edge_path(&self.hls_prefix, &[dir, parts.path], out);
            self.push_query(parts.query, parts.fragment, out);
            return;
        }
        match self.edge_path(&parts) {
            Some(path) if path.starts_with(&self.hls_prefix) => {
                self.push_edge_path(&self.hls_prefix, &[&path[self.hls_prefix.len()..]], out);
                self.push_query(parts.query, parts.fragment, out);
            }
            _ => out.push_str(uri),
        }
    }

    /// Maps a URI's path onto the edge, or `None` when it belongs to someone else.
    fn edge_path(&self, parts: &UriRef) -> Option<String> {
        let path = parts.path;
        if has_scheme(path) || path.starts_with("//") {
            let rest = path.strip_prefix(self.ctx.origin_prefix?)?;
            return Some(resolve(&self.hls_prefix, rest));
        }
        if let Some(origin_path) = self.ctx.origin_prefix.and_then(origin_path_prefix) {
            if let Some(rest) = path.strip_prefix(origin_path) {
                return Some(resolve(&self.hls_prefix, rest));
            }
        }
        Some(resolve(self.base_dir, path))
    }

    /// Writes `prefix` (`/hls/{v}/` or `/keys/{v}/`), the token segment in path mode, then
    /// `rest` (pieces of the path below the prefix).
    fn push_edge_path(&self, prefix: &str, rest: &[&str], out: &mut String) {
        out.push_str(prefix);
        if let Stamp::PathSegment(segment) = self.ctx.stamp {
            out.push_str(self.ctx.token_name);
            out.push('=');
            out.push_str(segment);
            out.push('/');
        }
        for piece in rest {
            out.push_str(piece);
        }
    }

    /// Appends the origin's query (minus any stale token), then the token when it travels in
    /// the query, then the fragment.
    fn push_query(&self, query: Option<&str>, fragment: Option<&str>, out: &mut String) {
        let mut separator = '?';
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            let name = pair.split('=').next().unwrap_or_default();
            if pair.is_empty() || name == self.ctx.token_name {
                continue;
            }
            out.push(separator);
            out.push_str(pair);
            separator = '&';
        }
        match self.ctx.stamp {
            Stamp::Query(token) => {
                out.push(separator);
                out.push_str(self.ctx.token_name);
                out.push('=');
                out.push_str(token);
            }
            Stamp::QueryPairs(pairs) if !pairs.is_empty() => {
                out.push(separator);
                out.push_str(pairs);
            }
            _ => {}
        }
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
    }
}

/// The path part of an absolute origin prefix (`http://o:9000/media/v/` -> `/media/v/`).
fn origin_path_prefix(prefix: &str) -> Option<&str> {
    let after_scheme = prefix.split_once("://")?.1;
    after_scheme.find('/').map(|i| &after_scheme[i..])
}

/// The key id an origin key URI names: its last path segment.
fn key_id(path: &str) -> Option<&str> {
    let id = path.rsplit('/').next()?;
    let valid = !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && id != "."
        && id != "..";
    valid.then_some(id)
}

/// Scans `NAME=VALUE,...` after the tag's colon; quoted values may contain commas.
fn parse_attributes(line: &str) -> TagAttributes<'_> {
    let mut attrs = TagAttributes {
        uri: None,
        method: None,
        keyformat: None,
    };
    let Some(colon) = line.find(':') else {
        return attrs;
    };
    let bytes = line.as_bytes();
    let mut i = colon + 1;
    while i < bytes.len() {
        let name_start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b',' {
            i += 1;
        }
        let name = line[name_start..i].trim();
        if i >= bytes.len() || bytes[i] == b',' {
            i += 1;
            continue;
        }
        i += 1; // '='
        let (value_start, value_end) = if bytes.get(i) == Some(&b'"') {
            let start = i + 1;
            let end = line[start..].find('"').map_or(bytes.len(), |e| start + e);
            i = (end + 1).min(bytes.len());
            (start, end)
        } else {
            let start = i;
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
            (start, i)
        };
        let value = &line[value_start..value_end];
        match name {
            "URI" if bytes.get(value_start.wrapping_sub(1)) == Some(&b'"') => {
                attrs.uri = Some((value_start, value_end))
            }
            "METHOD" => attrs.method = Some(value),
            "KEYFORMAT" => attrs.keyformat = Some(value),
            _ => {}
        }
        while i < bytes.len() && bytes[i] != b',' {
            i += 1;
        }
        i += 1;
    }
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "3f1c2a9e-5b7d-4c1e-9a2b-8d6f0e4c3b21";
    const T: &str = "exp=1~acl=/hls/x/*~hmac=ab";

    fn ctx<'a>(playlist_path: &'a str, origin_prefix: Option<&'a str>) -> RewriteContext<'a> {
        RewriteContext {
            video_id: V,
            playlist_path,
            origin_prefix,
            token_name: "token",
            stamp: Stamp::Query(T),
        }
    }

    fn rewrite(input: &str, path: &str) -> String {
        rewrite_playlist(input, &ctx(path, None)).unwrap()
    }

    #[test]
    fn master_playlist_variants_media_and_iframes() {
        let master = format!("/hls/{V}/master.m3u8");
        let input = "#EXTM3U\n\
#EXT-X-VERSION:6\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en, main\",URI=\"audio/en.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"aud\"\n\
720p/index.m3u8\n\
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=200000,URI=\"720p/iframes.m3u8\"\n";
        let out = rewrite(input, &master);
        let expected = format!(
            "#EXTM3U\n\
#EXT-X-VERSION:6\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en, main\",URI=\"/hls/{V}/audio/en.m3u8?token={T}\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"aud\"\n\
/hls/{V}/720p/index.m3u8?token={T}\n\
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=200000,URI=\"/hls/{V}/720p/iframes.m3u8?token={T}\"\n"
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn media_playlist_with_key_map_byteranges_and_queries() {
        let path = format!("/hls/{V}/720p/index.m3u8");
        let input = "#EXTM3U\r\n\
#EXT-X-TARGETDURATION:4\r\n\
# a comment with URI=\"x\"\r\n\
#EXT-X-UNKNOWN-TAG:URI=\"keep-me\"\r\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"key/7d2c\",IV=0x00000000000000000000000000000001\r\n\
#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"\r\n\
#EXTINF:4.0,\r\n\
#EXT-X-BYTERANGE:1000@720\r\n\
main.mp4\r\n\
#EXTINF:4.0,\r\n\
seg_001.ts?cdn=1&token=stale\r\n\
#EXTINF:4.0,\r\n\
../480p/seg_002.ts\r\n\
#EXTINF:4.0,\r\n\
https://other-cdn.example/ad.ts\r\n\
#EXT-X-ENDLIST\r\n";
        let out = rewrite(input, &path);
        let expected = format!(
            "#EXTM3U\r\n\
#EXT-X-TARGETDURATION:4\r\n\
# a comment with URI=\"x\"\r\n\
#EXT-X-UNKNOWN-TAG:URI=\"keep-me\"\r\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/{V}/7d2c?token={T}\",IV=0x00000000000000000000000000000001\r\n\
#EXT-X-MAP:URI=\"/hls/{V}/720p/init.mp4?token={T}\",BYTERANGE=\"720@0\"\r\n\
#EXTINF:4.0,\r\n\
#EXT-X-BYTERANGE:1000@720\r\n\
/hls/{V}/720p/main.mp4?token={T}\r\n\
#EXTINF:4.0,\r\n\
/hls/{V}/720p/seg_001.ts?cdn=1&token={T}\r\n\
#EXTINF:4.0,\r\n\
/hls/{V}/480p/seg_002.ts?token={T}\r\n\
#EXTINF:4.0,\r\n\
https://other-cdn.example/ad.ts\r\n\
#EXT-X-ENDLIST\r\n"
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn i_frame_playlist_with_byte_ranges() {
        let path = format!("/hls/{V}/720p/iframes.m3u8");
        let input = "#EXTM3U\n\
#EXT-X-VERSION:4\n\
#EXT-X-TARGETDURATION:4\n\
#EXT-X-I-FRAMES-ONLY\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"key/k1\"\n\
#EXTINF:4.000,\n\
#EXT-X-BYTERANGE:9400@376\n\
seg_00000.ts\n\
#EXTINF:4.000,\n\
#EXT-X-BYTERANGE:8272@1128\n\
seg_00001.ts\n\
#EXT-X-ENDLIST\n";
        let expected = format!(
            "#EXTM3U\n\
#EXT-X-VERSION:4\n\
#EXT-X-TARGETDURATION:4\n\
#EXT-X-I-FRAMES-ONLY\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/{V}/k1?token={T}\"\n\
#EXTINF:4.000,\n\
#EXT-X-BYTERANGE:9400@376\n\
/hls/{V}/720p/seg_00000.ts?token={T}\n\
#EXTINF:4.000,\n\
#EXT-X-BYTERANGE:8272@1128\n\
/hls/{V}/720p/seg_00001.ts?token={T}\n\
#EXT-X-ENDLIST\n"
        );
        assert_eq!(rewrite(input, &path), expected);
    }

    #[test]
    fn absolute_origin_uris_map_back_onto_the_edge() {
        let path = format!("/hls/{V}/720p/index.m3u8");
        let prefix = format!("http://origin.internal:9000/media/{V}/");
        let input = format!(
            "#EXTM3U\n#EXTINF:4,\nhttp://origin.internal:9000/media/{V}/720p/a.ts?sig=1\n\
#EXTINF:4,\n/media/{V}/720p/b.ts\n#EXTINF:4,\n/hls/{V}/720p/c.ts\n"
        );
        let out = rewrite_playlist(&input, &ctx(&path, Some(&prefix))).unwrap();
        assert!(
            out.contains(&format!("\n/hls/{V}/720p/a.ts?sig=1&token={T}\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("\n/hls/{V}/720p/b.ts?token={T}\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("\n/hls/{V}/720p/c.ts?token={T}\n")),
            "{out}"
        );
    }

    #[test]
    fn keys_that_are_not_ours_are_left_alone() {
        let path = format!("/hls/{V}/index.m3u8");
        let input = "#EXTM3U\n\
#EXT-X-KEY:METHOD=NONE\n\
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://abc\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n\
#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:text/plain;base64,AAAA\",KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"\n\
#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"https://keys.example/k/abc-1\"\n";
        let out = rewrite(input, &path);
        assert!(out.contains("#EXT-X-KEY:METHOD=NONE\n"));
        assert!(out.contains("URI=\"skd://abc\""));
        assert!(out.contains("URI=\"data:text/plain;base64,AAAA\""));
        assert!(
            out.contains(&format!("URI=\"/keys/{V}/abc-1?token={T}\"")),
            "{out}"
        );
    }

    #[test]
    fn escaping_the_title_is_not_signed() {
        let path = format!("/hls/{V}/index.m3u8");
        let input = "#EXTM3U\n#EXTINF:4,\n../other/seg.ts\n#EXTINF:4,\n/etc/passwd\n";
        let out = rewrite(input, &path);
        assert_eq!(out, input);
    }

    #[test]
    fn rejects_non_playlists_and_keeps_bom() {
        assert_eq!(
            rewrite_playlist("<html>", &ctx("/hls/v/a.m3u8", None)),
            Err(RewriteError::NotAPlaylist)
        );
        let out = rewrite(
            "\u{feff}#EXTM3U\n#EXTINF:4,\na.ts",
            &format!("/hls/{V}/x.m3u8"),
        );
        assert_eq!(
            out,
            format!("\u{feff}#EXTM3U\n#EXTINF:4,\n/hls/{V}/a.ts?token={T}")
        );
    }

    #[test]
    fn large_playlists_are_linear() {
        let mut input = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
        for i in 0..10_000 {
            input.push_str(&format!("#EXTINF:4.000,\nseg_{i:05}.ts\n"));
        }
        let out = rewrite(&input, &format!("/hls/{V}/720p/index.m3u8"));
        assert_eq!(out.matches("?token=").count(), 10_000);
        assert!(out.contains(&format!("/hls/{V}/720p/seg_09999.ts?token={T}\n")));
    }

    fn rewrite_with(input: &str, path: &str, stamp: Stamp) -> String {
        let ctx = RewriteContext {
            stamp,
            token_name: "hdnts",
            ..ctx(path, None)
        };
        rewrite_playlist(input, &ctx).unwrap()
    }

    const MEDIA: &str = "#EXTM3U\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k/key-1\"\n\
#EXT-X-MAP:URI=\"init.mp4\"\n\
#EXTINF:4,\n\
seg_1.ts?cdn=1&hdnts=stale\n\
#EXTINF:4,\n\
../480p/seg_2.ts\n";

    #[test]
    fn path_segment_mode_keeps_the_segment_on_every_uri() {
        let path = format!("/hls/{V}/720p/index.m3u8");
        let seg = "exp=9~acl=%2Fhls%2Fv%2F*~hmac=ab";
        let out = rewrite_with(MEDIA, &path, Stamp::PathSegment(seg));
        let expected = format!(
            "#EXTM3U\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/{V}/hdnts={seg}/key-1\"\n\
#EXT-X-MAP:URI=\"/hls/{V}/hdnts={seg}/720p/init.mp4\"\n\
#EXTINF:4,\n\
/hls/{V}/hdnts={seg}/720p/seg_1.ts?cdn=1\n\
#EXTINF:4,\n\
/hls/{V}/hdnts={seg}/480p/seg_2.ts\n"
        );
        assert_eq!(out, expected);
        // A master in path mode: variants under the same segment.
        let master = rewrite_with(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n",
            &format!("/hls/{V}/master.m3u8"),
            Stamp::PathSegment(seg),
        );
        assert!(
            master.ends_with(&format!("\n/hls/{V}/hdnts={seg}/720p/index.m3u8\n")),
            "{master}"
        );
    }

    #[test]
    fn cookie_mode_stamps_nothing_and_drops_stale_tokens() {
        let path = format!("/hls/{V}/720p/index.m3u8");
        let out = rewrite_with(MEDIA, &path, Stamp::Nothing);
        assert!(out.contains(&format!("URI=\"/keys/{V}/key-1\"")), "{out}");
        assert!(
            out.contains(&format!("\n/hls/{V}/720p/seg_1.ts?cdn=1\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("\n/hls/{V}/480p/seg_2.ts\n")),
            "{out}"
        );
        assert!(!out.contains("hdnts"), "{out}");
    }

    #[test]
    fn query_pairs_mode_appends_raw_pairs() {
        let path = format!("/hls/{V}/720p/index.m3u8");
        let pairs = "Policy=abc&Signature=def&Key-Pair-Id=K1";
        let out = rewrite_with(MEDIA, &path, Stamp::QueryPairs(pairs));
        assert!(
            out.contains(&format!("\n/hls/{V}/720p/seg_1.ts?cdn=1&{pairs}\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("URI=\"/keys/{V}/key-1?{pairs}\"")),
            "{out}"
        );
    }
}
