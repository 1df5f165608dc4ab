//! CDN origin pull: a CDN in front of the edge proves itself with a shared secret in a request
//! header (`[cdn]`), and in exchange gets token-free answers it may cache and serve to anyone:
//! segments `public` and long-lived, playlists unstamped and `public` for their freshness.
//!
//! The secret is compared in constant time against the SHA-256 of each configured secret, so
//! neither its length nor its content leaks through timing. Several secrets may be configured
//! at once (one per line) so a rotation needs no downtime.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Recognizes requests from the configured CDN.
pub struct CdnPull {
    header: http::HeaderName,
    secret_digests: Vec<[u8; 32]>,
}

impl CdnPull {
    /// `None` when no secret is configured (CDN pulls off).
    pub fn new(header: &str, secrets: &[Vec<u8>]) -> Option<CdnPull> {
        if secrets.is_empty() {
            return None;
        }
        Some(CdnPull {
            header: http::HeaderName::from_bytes(header.as_bytes()).ok()?,
            secret_digests: secrets.iter().map(|s| Sha256::digest(s).into()).collect(),
        })
    }

    /// Whether `headers` carry one of the secrets (exactly one header; any other count is no).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(&self.header).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(value.as_bytes()).into();
        // Every digest is compared, so the time does not depend on which one matches.
        self.secret_digests
            .iter()
            .fold(subtle::Choice::from(0), |found, digest| {
                found | digest.ct_eq(&presented)
            })
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-edge-cdn-auth", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn admits_any_configured_secret_and_nothing_else() {
        let old = b"0123456789abcdef-old".to_vec();
        let new = b"0123456789abcdef-new".to_vec();
        let cdn = CdnPull::new("x-edge-cdn-auth", &[old, new]).unwrap();
        assert!(cdn.admits(&request(&["0123456789abcdef-old"])));
        assert!(cdn.admits(&request(&["0123456789abcdef-new"])));
        assert!(!cdn.admits(&request(&[])));
        assert!(!cdn.admits(&request(&["0123456789abcdef-ol"])));
        assert!(!cdn.admits(&request(&[""])));
        // Two headers are ambiguous: refused even when one is right.
        assert!(!cdn.admits(&request(&["0123456789abcdef-new", "x"])));
        assert!(CdnPull::new("x-edge-cdn-auth", &[]).is_none());
    }
}
