//! The one change made to Shaka Packager's HLS playlists after packaging: its key tags of the
//! `identity` key format become W3C ClearKey key tags.
//!
//! With `--protection_scheme cbcs --protection_systems …,CommonSystem` packager v3.8 writes
//! (for `cenc` it does not), besides the FairPlay
//! (`com.apple.streamingkeydelivery`), PlayReady and Widevine tags, an
//! `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://{keyId}",IV=…,KEYFORMAT="identity"` line for the
//! common system. In HLS `identity` means "the URI serves the raw key", and the edge's HLS
//! rewriter points identity key tags at its AES-128 key endpoint, so a player would be told
//! to fetch the content key in the clear. What the common system means is ClearKey, which
//! hls.js (1.5 and later) reads from a tag with `KEYFORMAT="org.w3.clearkey"` whose URI is a
//! data URI holding the 16-byte key id; its license URL comes from the player's
//! configuration (hls.js reads none from a playlist). So the identity tag is rewritten into
//! that form, keeping its method and IV; one whose URI names no key id is dropped. The same
//! goes for `#EXT-X-SESSION-KEY` in a master playlist. Pure.

use base64::Engine as _;

/// The key format hls.js maps to the `org.w3.clearkey` key system.
const CLEARKEY_KEYFORMAT: &str = "org.w3.clearkey";

/// Rewrites every `#EXT-X-KEY` and `#EXT-X-SESSION-KEY` line whose `KEYFORMAT` is `identity`
/// (or absent, which HLS defines as `identity`) and whose `METHOD` is not `NONE` into a
/// ClearKey key tag, or drops it when its URI is not `skd://{keyId}`; every other line is kept
/// byte for byte. Returns the playlist and how many lines changed.
///
/// Only for packager output: an AES-128 MPEG-TS playlist's key tag is `identity` on purpose.
pub fn clearkey_key_tags(playlist: &str) -> (String, usize) {
    let mut out = String::with_capacity(playlist.len() + 128);
    let mut changed = 0;
    for line in playlist.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        let Some(tag) = identity_key_tag(content) else {
            out.push_str(line);
            continue;
        };
        changed += 1;
        if let (Some(method), Some(key_id)) = (tag.method, tag.key_id) {
            let data = base64::engine::general_purpose::STANDARD.encode(key_id);
            out.push_str(&format!(
                "{}:METHOD={method},URI=\"data:text/plain;base64,{data}\"",
                tag.name
            ));
            if let Some(iv) = tag.iv {
                out.push_str(&format!(",IV={iv}"));
            }
            out.push_str(&format!(
                ",KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"{CLEARKEY_KEYFORMAT}\""
            ));
            out.push_str(&line[content.len()..]);
        }
    }
    (out, changed)
}

/// An identity key tag's parts (without a method or a key id, it is dropped).
struct IdentityTag<'a> {
    name: &'a str,
    method: Option<&'a str>,
    iv: Option<&'a str>,
    /// The key id its `skd://{uuid}` URI names.
    key_id: Option<[u8; 16]>,
}

fn identity_key_tag(line: &str) -> Option<IdentityTag<'_>> {
    let (name, attributes) = line.split_once(':')?;
    if name != "#EXT-X-KEY" && name != "#EXT-X-SESSION-KEY" {
        return None;
    }
    let mut method = None;
    let mut keyformat = None;
    let mut iv = None;
    let mut uri = None;
    for (attribute, value) in attribute_list(attributes) {
        match attribute {
            "METHOD" => method = Some(value),
            "KEYFORMAT" => keyformat = Some(value),
            "IV" => iv = Some(value),
            "URI" => uri = Some(value),
            _ => {}
        }
    }
    if method == Some("NONE") || keyformat.is_some_and(|f| f != "identity") {
        return None;
    }
    let key_id = uri
        .and_then(|u| u.strip_prefix("skd://"))
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .map(|id| *id.as_bytes());
    Some(IdentityTag {
        name,
        method: method.filter(|m| !m.is_empty()),
        iv,
        key_id,
    })
}

/// `NAME=value` pairs of an HLS attribute list; quoted values without their quotes (commas
/// inside quotes belong to the value).
fn attribute_list(list: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = list;
    std::iter::from_fn(move || {
        let (name, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            let tail = quoted.get(end + 1..).unwrap_or("");
            (&quoted[..end], tail.strip_prefix(',').unwrap_or(tail))
        } else {
            match after.split_once(',') {
                Some((v, tail)) => (v, tail),
                None => (after, ""),
            }
        };
        rest = next;
        Some((name.trim(), value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A media playlist as packager v3.8 writes it for cbcs with all four systems (the data
    /// URIs shortened).
    const PACKAGED: &str = "#EXTM3U\n\
#EXT-X-VERSION:6\n\
#EXT-X-TARGETDURATION:3\n\
#EXT-X-PLAYLIST-TYPE:VOD\n\
#EXT-X-MAP:URI=\"init.mp4\"\n\
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://01234567-89ab-cdef-0123-456789abcdef\",IV=0x57218f5a34ffd273c458fb37db80cf60,KEYFORMAT=\"identity\"\n\
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"data:text/plain;charset=UTF-16;base64,vgEAAAEA\",IV=0x57218f5a34ffd273c458fb37db80cf60,KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"com.microsoft.playready\"\n\
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"data:text/plain;base64,AAAAOHBzc2g=\",KEYID=0x0123456789abcdef0123456789abcdef,IV=0x57218f5a34ffd273c458fb37db80cf60,KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"\n\
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://01234567-89ab-cdef-0123-456789abcdef\",KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n\
#EXTINF:2.000,\n\
seg_00001.m4s\n\
#EXT-X-ENDLIST\n";

    const CLEARKEY_TAG: &str = "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"data:text/plain;base64,ASNFZ4mrze8BI0VniavN7w==\",IV=0x57218f5a34ffd273c458fb37db80cf60,KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"org.w3.clearkey\"";

    #[test]
    fn the_identity_tag_becomes_a_clearkey_tag_and_the_drm_tags_stay() {
        let (out, changed) = clearkey_key_tags(PACKAGED);
        assert_eq!(changed, 1);
        assert!(!out.contains("KEYFORMAT=\"identity\""), "{out}");
        let keys: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("#EXT-X-KEY:"))
            .collect();
        assert_eq!(keys.len(), 4, "{out}");
        // The key id 01234567-89ab-cdef-0123-456789abcdef, as 16 bytes in base64.
        assert_eq!(keys[0], CLEARKEY_TAG);
        assert!(keys[1].ends_with("KEYFORMAT=\"com.microsoft.playready\""));
        assert!(keys[2].contains("urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"));
        assert!(keys[3].contains("URI=\"skd://01234567-89ab-cdef-0123-456789abcdef\""));
        assert!(keys[3].ends_with("KEYFORMAT=\"com.apple.streamingkeydelivery\""));
        // Everything else byte for byte.
        let expected: String = PACKAGED
            .split_inclusive('\n')
            .map(|l| {
                if l.contains("\"identity\"") {
                    format!("{CLEARKEY_TAG}\n")
                } else {
                    l.to_string()
                }
            })
            .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn session_keys_and_implicit_identity() {
        let master = "#EXTM3U\r\n\
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://01234567-89ab-cdef-0123-456789abcdef\",KEYFORMAT=\"identity\"\r\n\
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\r\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"key/1\"\r\n\
#EXT-X-KEY:METHOD=NONE\r\n\
#EXT-X-STREAM-INF:BANDWIDTH=1\r\n\
v/index.m3u8";
        let (out, changed) = clearkey_key_tags(master);
        assert_eq!(changed, 2);
        assert_eq!(
            out,
            "#EXTM3U\r\n\
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"data:text/plain;base64,ASNFZ4mrze8BI0VniavN7w==\",KEYFORMATVERSIONS=\"1\",KEYFORMAT=\"org.w3.clearkey\"\r\n\
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\r\n\
#EXT-X-KEY:METHOD=NONE\r\n\
#EXT-X-STREAM-INF:BANDWIDTH=1\r\n\
v/index.m3u8"
        );
    }

    #[test]
    fn quoted_commas_and_odd_input() {
        let line = "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"a,KEYFORMAT=identity\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n";
        assert_eq!(clearkey_key_tags(line), (line.to_string(), 0));
        for odd in [
            "",
            "#EXT-X-KEY:",
            "#EXT-X-KEY:URI=\"unterminated",
            "#EXT-X-KEY:URI=\"skd://01234567-89ab-cdef-0123-456789abcdef\"",
            "no tags\n",
        ] {
            let (out, _) = clearkey_key_tags(odd);
            assert!(out.len() <= odd.len(), "{odd}: {out}");
        }
        assert_eq!(clearkey_key_tags("#EXT-X-KEY:"), (String::new(), 1));
        // An identity tag naming no key id goes.
        let (out, changed) = clearkey_key_tags("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\"\n");
        assert_eq!((out.as_str(), changed), ("", 1));
    }
}
