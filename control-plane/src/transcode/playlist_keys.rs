//! The one change made to Shaka Packager's HLS playlists after packaging: dropping the key
//! tags of the `identity` key format.
//!
//! With `--protection_scheme cbcs --protection_systems …,CommonSystem` packager v3.8 writes
//! (for `cenc` it does not), besides the FairPlay
//! (`com.apple.streamingkeydelivery`), PlayReady and Widevine tags, an
//! `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://…",IV=…,KEYFORMAT="identity"` line for the
//! common system. In HLS `identity` means "the URI serves the raw key", and the edge's HLS
//! rewriter points identity key tags at its AES-128 key endpoint, so a player would be told
//! to fetch the content key in the clear. ClearKey is signaled for DASH (the MPD's
//! CommonSystem `ContentProtection` and the PSSH boxes in the init segments), never in HLS.
//! The same goes for `#EXT-X-SESSION-KEY` in a master playlist. Pure.

/// Removes every `#EXT-X-KEY` and `#EXT-X-SESSION-KEY` line whose `KEYFORMAT` is `identity`
/// (or absent, which HLS defines as `identity`) and whose `METHOD` is not `NONE`; every other
/// line is kept byte for byte. Returns the playlist and how many lines went.
///
/// Only for packager output: an AES-128 MPEG-TS playlist's key tag is `identity` on purpose.
pub fn drop_identity_key_tags(playlist: &str) -> (String, usize) {
    let mut out = String::with_capacity(playlist.len());
    let mut dropped = 0;
    for line in playlist.split_inclusive('\n') {
        if is_identity_key_tag(line.trim_end_matches(['\r', '\n'])) {
            dropped += 1;
        } else {
            out.push_str(line);
        }
    }
    (out, dropped)
}

fn is_identity_key_tag(line: &str) -> bool {
    let Some(attributes) = line
        .strip_prefix("#EXT-X-KEY:")
        .or_else(|| line.strip_prefix("#EXT-X-SESSION-KEY:"))
    else {
        return false;
    };
    let mut method = None;
    let mut keyformat = None;
    for (name, value) in attribute_list(attributes) {
        match name {
            "METHOD" => method = Some(value),
            "KEYFORMAT" => keyformat = Some(value),
            _ => {}
        }
    }
    method != Some("NONE") && keyformat.is_none_or(|f| f == "identity")
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

    #[test]
    fn the_identity_tag_goes_and_the_drm_tags_stay() {
        let (out, dropped) = drop_identity_key_tags(PACKAGED);
        assert_eq!(dropped, 1);
        assert!(!out.contains("KEYFORMAT=\"identity\""), "{out}");
        let keys: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("#EXT-X-KEY:"))
            .collect();
        assert_eq!(keys.len(), 3, "{out}");
        assert!(keys[0].ends_with("KEYFORMAT=\"com.microsoft.playready\""));
        assert!(keys[1].contains("urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"));
        assert!(keys[2].contains("URI=\"skd://01234567-89ab-cdef-0123-456789abcdef\""));
        assert!(keys[2].ends_with("KEYFORMAT=\"com.apple.streamingkeydelivery\""));
        // Everything else byte for byte.
        let expected: String = PACKAGED
            .split_inclusive('\n')
            .filter(|l| !l.contains("\"identity\""))
            .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn session_keys_and_implicit_identity() {
        let master = "#EXTM3U\r\n\
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\",KEYFORMAT=\"identity\"\r\n\
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\r\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"key/1\"\r\n\
#EXT-X-KEY:METHOD=NONE\r\n\
#EXT-X-STREAM-INF:BANDWIDTH=1\r\n\
v/index.m3u8";
        let (out, dropped) = drop_identity_key_tags(master);
        assert_eq!(dropped, 2);
        assert_eq!(
            out,
            "#EXTM3U\r\n\
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\r\n\
#EXT-X-KEY:METHOD=NONE\r\n\
#EXT-X-STREAM-INF:BANDWIDTH=1\r\n\
v/index.m3u8"
        );
    }

    #[test]
    fn quoted_commas_and_odd_input() {
        let line = "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"a,KEYFORMAT=identity\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n";
        assert_eq!(drop_identity_key_tags(line), (line.to_string(), 0));
        for odd in [
            "",
            "#EXT-X-KEY:",
            "#EXT-X-KEY:URI=\"unterminated",
            "no tags\n",
        ] {
            let (out, _) = drop_identity_key_tags(odd);
            assert!(out.len() <= odd.len());
        }
        assert_eq!(drop_identity_key_tags("#EXT-X-KEY:").1, 1);
    }
}
