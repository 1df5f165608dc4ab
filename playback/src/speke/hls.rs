//! `#EXT-X-KEY` / `#EXT-X-SESSION-KEY` lines (RFC 8216 §4.3.2.4, §4.3.4.5) for CPIX
//! `HLSSignalingData`: the `media` playlist gets `#EXT-X-KEY`, the `master` (multivariant)
//! playlist `#EXT-X-SESSION-KEY`, both with the same attributes. `HLSSignalingData` carries the
//! line base64-encoded, without a line break.
//!
//! | system | METHOD | URI | KEYFORMAT |
//! |---|---|---|---|
//! | FairPlay | `SAMPLE-AES` | `skd://…` + kid | `com.apple.streamingkeydelivery` |
//! | AES-128 | `AES-128` | key URL + kid | `identity` |
//! | Widevine | `SAMPLE-AES` (`cbcs`) / `SAMPLE-AES-CTR` (`cenc`) | `data:text/plain;base64,<pssh>` | `urn:uuid:edef8ba9-…` |
//! | PlayReady | same | `data:text/plain;charset=UTF-16;base64,<PlayReady Object>` | `com.microsoft.playready` |

use super::KeyId;

/// FairPlay's `KEYFORMAT`.
pub const FAIRPLAY_KEYFORMAT: &str = "com.apple.streamingkeydelivery";
/// AES-128's (default) `KEYFORMAT`.
pub const IDENTITY_KEYFORMAT: &str = "identity";
/// PlayReady's `KEYFORMAT`.
pub const PLAYREADY_KEYFORMAT: &str = "com.microsoft.playready";
/// Widevine's `KEYFORMAT`.
pub const WIDEVINE_KEYFORMAT: &str = "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";

/// Which tag a line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playlist {
    /// Media playlist: `#EXT-X-KEY`.
    Media,
    /// Multivariant ("master") playlist: `#EXT-X-SESSION-KEY`.
    Master,
}

/// The attributes of one key tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTag {
    /// `AES-128`, `SAMPLE-AES` or `SAMPLE-AES-CTR`.
    pub method: &'static str,
    /// Must not contain `"`, CR or LF (a quoted-string); [`is_quotable`] checks.
    pub uri: String,
    pub iv: Option<[u8; 16]>,
    /// `KEYID` (Widevine's HLS signaling names the kid).
    pub key_id: Option<KeyId>,
    pub key_format: &'static str,
    pub key_format_versions: &'static str,
}

impl KeyTag {
    /// The tag line, without a line break.
    pub fn line(&self, playlist: Playlist) -> String {
        let tag = match playlist {
            Playlist::Media => "#EXT-X-KEY",
            Playlist::Master => "#EXT-X-SESSION-KEY",
        };
        let mut out = format!("{tag}:METHOD={},URI=\"{}\"", self.method, self.uri);
        if let Some(iv) = self.iv {
            out.push_str(",IV=0x");
            out.push_str(&hex::encode_upper(iv));
        }
        if let Some(kid) = self.key_id {
            out.push_str(",KEYID=0x");
            out.push_str(&hex::encode_upper(kid.0));
        }
        out.push_str(&format!(
            ",KEYFORMAT=\"{}\",KEYFORMATVERSIONS=\"{}\"",
            self.key_format, self.key_format_versions
        ));
        out
    }
}

/// Whether `value` can sit in an HLS quoted-string (no `"`, CR or LF) and is printable.
pub fn is_quotable(value: &str) -> bool {
    !value.is_empty() && !value.chars().any(|c| c == '"' || c.is_control())
}
