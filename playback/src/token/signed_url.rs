//! The signed-URL token: HMAC-SHA256 over `~`-separated fields.
//!
//! Wire form (the field layout of Akamai EdgeAuth v2, so CDN-side checks stay familiar):
//!
//! ```text
//! st=<unix start, optional>~exp=<unix expiry>~acl=</path/*>!</other/*>~id=<percent-encoded user>~hmac=<hex>
//! ```
//!
//! The HMAC covers every byte before `~hmac=`. The token travels exactly as it appears in the URL
//! (callers must not percent-decode it), is bounded to [`MAX_TOKEN_LEN`] bytes, and its MAC is
//! compared in constant time before any other field is trusted.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::acl::acl_matches;
use crate::encoding::{percent_decode, percent_encode};
use crate::Reason;

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted; anything larger is refused as malformed before any work is done.
pub const MAX_TOKEN_LEN: usize = 2048;
const MAC_LEN: usize = 32;
const MAC_FIELD: &str = "~hmac=";

/// What a signed-URL token asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTokenClaims {
    /// Unix time after which the token is refused.
    pub expires_at: u64,
    /// Path patterns the token admits (see [`acl_matches`]).
    pub acl: Vec<String>,
    /// The viewer the token was minted for, carried so key requests can check entitlement.
    pub user_id: Option<String>,
}

/// Mints and verifies signed-URL tokens with one HMAC key.
#[derive(Clone)]
pub struct UrlSigner {
    mac: HmacSha256,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner { key: <redacted> }")
    }
}

impl UrlSigner {
    /// A signer with `key` as the HMAC-SHA256 key (any length; 32 random bytes recommended).
    pub fn new(key: &[u8]) -> Self {
        let mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
        UrlSigner { mac }
    }

    /// Mints a token for `claims`. ACL entries must not contain `!` or `~`.
    pub fn mint(&self, claims: &UrlTokenClaims) -> String {
        let mut token = format!("exp={}~acl={}", claims.expires_at, claims.acl.join("!"));
        if let Some(user) = &claims.user_id {
            token.push_str("~id=");
            token.push_str(&percent_encode(user));
        }
        let tag = self.tag(token.as_bytes());
        token.push_str(MAC_FIELD);
        token.push_str(&hex::encode(tag));
        token
    }

    /// Verifies `token` for a request to `request_path` at `now_unix`.
    ///
    /// Order matters: size, shape and MAC are checked before any claim is believed, so a forged
    /// token learns nothing beyond `malformed` or `bad_signature`.
    pub fn verify(
        &self,
        token: &str,
        request_path: &str,
        now_unix: u64,
    ) -> Result<UrlTokenClaims, Reason> {
        if token.is_empty() {
            return Err(Reason::MissingToken);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(Reason::Malformed);
        }
        let split = token.rfind(MAC_FIELD).ok_or(Reason::Malformed)?;
        let (payload, mac_hex) = (&token[..split], &token[split + MAC_FIELD.len()..]);
        let mut given = [0u8; MAC_LEN];
        hex::decode_to_slice(mac_hex, &mut given).map_err(|_| Reason::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        mac.verify_slice(&given).map_err(|_| Reason::BadSignature)?;

        let fields = parse_fields(payload)?;
        if let Some(start) = fields.start {
            if now_unix < start {
                return Err(Reason::NotYetValid);
            }
        }
        if now_unix >= fields.expires_at {
            return Err(Reason::Expired);
        }
        if !fields.acl.iter().any(|p| acl_matches(p, request_path)) {
            return Err(Reason::AclMismatch);
        }
        Ok(UrlTokenClaims {
            expires_at: fields.expires_at,
            acl: fields.acl.iter().map(|s| s.to_string()).collect(),
            user_id: fields.user_id,
        })
    }

    fn tag(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.mac.clone();
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }
}

struct Fields<'a> {
    start: Option<u64>,
    expires_at: u64,
    acl: Vec<&'a str>,
    user_id: Option<String>,
}

fn parse_fields(payload: &str) -> Result<Fields<'_>, Reason> {
    let (mut start, mut expires_at, mut acl, mut user_id) = (None, None, None, None);
    for field in payload.split('~') {
        let (name, value) = field.split_once('=').ok_or(Reason::Malformed)?;
        let duplicate = match name {
            "st" => start.replace(parse_time(value)?).is_some(),
            "exp" => expires_at.replace(parse_time(value)?).is_some(),
            "acl" => acl.replace(value.split('!').collect::<Vec<_>>()).is_some(),
            "id" => user_id
                .replace(percent_decode(value).ok_or(Reason::Malformed)?)
                .is_some(),
            _ => return Err(Reason::Malformed),
        };
        if duplicate {
            return Err(Reason::Malformed);
        }
    }
    Ok(Fields {
        start,
        expires_at: expires_at.ok_or(Reason::Malformed)?,
        acl: acl.ok_or(Reason::Malformed)?,
        user_id,
    })
}

fn parse_time(value: &str) -> Result<u64, Reason> {
    if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reason::Malformed);
    }
    value.parse().map_err(|_| Reason::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::video_acl;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_700_000_000;
    const VIDEO: &str = "3f1c2a9e-5b7d-4c1e-9a2b-8d6f0e4c3b21";

    fn claims() -> UrlTokenClaims {
        UrlTokenClaims {
            expires_at: NOW + 300,
            acl: video_acl(VIDEO),
            user_id: Some("user-1".into()),
        }
    }

    #[test]
    fn golden_vector() {
        // Independent check: python3 -c "import hmac,hashlib;print(hmac.new(b'0123456789abcdef0123456789abcdef',
        //   b'exp=1700000300~acl=/hls/v/*~id=u','sha256').hexdigest())"
        let token = UrlSigner::new(KEY).mint(&UrlTokenClaims {
            expires_at: 1_700_000_300,
            acl: vec!["/hls/v/*".into()],
            user_id: Some("u".into()),
        });
        assert_eq!(
            token,
            "exp=1700000300~acl=/hls/v/*~id=u~hmac=\
             d1627d3cb6dbd90535b52e2af6c61ae606cd8a3b2a8114ccb4d7a88fc0ea5376"
        );
    }

    #[test]
    fn round_trip_and_scope() {
        let signer = UrlSigner::new(KEY);
        let token = signer.mint(&claims());
        let master = format!("/hls/{VIDEO}/master.m3u8");
        assert_eq!(signer.verify(&token, &master, NOW), Ok(claims()));
        assert!(signer
            .verify(&token, &format!("/keys/{VIDEO}/k1"), NOW)
            .is_ok());
        assert_eq!(
            signer.verify(&token, "/hls/other/master.m3u8", NOW),
            Err(Reason::AclMismatch)
        );
    }

    #[test]
    fn expiry_is_exclusive() {
        let signer = UrlSigner::new(KEY);
        let token = signer.mint(&claims());
        let path = format!("/hls/{VIDEO}/a.ts");
        assert!(signer.verify(&token, &path, NOW + 299).is_ok());
        assert_eq!(
            signer.verify(&token, &path, NOW + 300),
            Err(Reason::Expired)
        );
    }

    #[test]
    fn tampering_is_a_bad_signature() {
        let signer = UrlSigner::new(KEY);
        let token = signer.mint(&claims());
        let path = format!("/hls/{VIDEO}/a.ts");
        let longer = token.replace("exp=1700000300", "exp=1900000300");
        assert_eq!(
            signer.verify(&longer, &path, NOW),
            Err(Reason::BadSignature)
        );
        let other_video = token.replace(VIDEO, "00000000-0000-0000-0000-000000000000");
        assert_eq!(
            signer.verify(
                &other_video,
                "/hls/00000000-0000-0000-0000-000000000000/a.ts",
                NOW
            ),
            Err(Reason::BadSignature)
        );
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            signer.verify(std::str::from_utf8(&flipped).unwrap(), &path, NOW),
            Err(Reason::BadSignature)
        );
        assert_eq!(
            UrlSigner::new(b"another key").verify(&token, &path, NOW),
            Err(Reason::BadSignature)
        );
    }

    #[test]
    fn malformed_inputs() {
        let signer = UrlSigner::new(KEY);
        let path = "/hls/v/a.ts";
        assert_eq!(signer.verify("", path, NOW), Err(Reason::MissingToken));
        for bad in [
            "garbage",
            "exp=1~acl=/*~hmac=zz",
            "exp=1~acl=/*~hmac=00",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert_eq!(
                signer.verify(bad, path, NOW),
                Err(Reason::Malformed),
                "{bad}"
            );
        }
        // Correctly signed but structurally wrong payloads are still refused.
        for payload in [
            "acl=/*",
            "exp=99999999999~exp=99999999999~acl=/*",
            "exp=x~acl=/*",
            "exp=99999999999~acl=/*~zz=1",
            "exp=99999999999",
        ] {
            let token = format!(
                "{payload}~hmac={}",
                hex::encode(signer.tag(payload.as_bytes()))
            );
            assert_eq!(
                signer.verify(&token, path, NOW),
                Err(Reason::Malformed),
                "{payload}"
            );
        }
    }

    #[test]
    fn start_time_and_user_encoding() {
        let signer = UrlSigner::new(KEY);
        let payload = format!("st={}~exp={}~acl=/*", NOW + 10, NOW + 100);
        let token = format!(
            "{payload}~hmac={}",
            hex::encode(signer.tag(payload.as_bytes()))
        );
        assert_eq!(signer.verify(&token, "/x", NOW), Err(Reason::NotYetValid));
        assert!(signer.verify(&token, "/x", NOW + 10).is_ok());

        let mut c = claims();
        c.user_id = Some("a~b!c=d e@x".into());
        let token = signer.mint(&c);
        let back = signer
            .verify(&token, &format!("/hls/{VIDEO}/a.ts"), NOW)
            .unwrap();
        assert_eq!(back.user_id.as_deref(), Some("a~b!c=d e@x"));
    }
}
