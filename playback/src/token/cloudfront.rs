//! Amazon CloudFront signed URLs and signed cookies: verify and mint, canned and custom
//! policies, RSA (SHA-1 or SHA-256) and ECDSA P-256 keys selected by `Key-Pair-Id`.
//!
//! A signed URL carries `Expires` (canned policy) or `Policy` (custom policy, CloudFront's
//! URL-safe base64 of the JSON), plus `Signature` (the same base64 of the signature over the
//! policy bytes), `Key-Pair-Id` and optionally `Hash-Algorithm=SHA256`. Signed cookies carry the
//! same values as `CloudFront-Expires`, `CloudFront-Policy`, `CloudFront-Signature`,
//! `CloudFront-Key-Pair-Id` and `CloudFront-Hash-Algorithm`. For a canned policy the verifier
//! rebuilds the policy JSON from the requested URL, byte for byte as CloudFront and botocore sign
//! it, so a canned URL presented for another resource fails as `bad_signature`.
//!
//! Verification order: bounds and encodings (`malformed`), `Hash-Algorithm`
//! (`unsupported_algorithm`), the key (`unknown_key`), the signature (`bad_signature`), the
//! custom policy's JSON (`malformed`), then the conditions (see [`Policy::check`]). Values are
//! taken exactly as sent, never percent-decoded (the variant base64 needs no escaping).

mod encoding;
mod keys;
mod policy;

use std::collections::HashMap;
use std::net::IpAddr;

pub use encoding::{url_safe_b64_decode, url_safe_b64_encode};
pub use keys::{HashAlgorithm, MAX_PEM_LEN};
pub use policy::{Policy, MAX_POLICY_LEN};

use super::query::query_param;
use crate::Reason;
use keys::{PrivateKey, PublicKey};

/// Longest `Signature` accepted (a 4096-bit RSA signature is 684 characters).
pub const MAX_SIGNATURE_LEN: usize = 700;
/// Longest `Key-Pair-Id` accepted.
pub const MAX_KEY_PAIR_ID_LEN: usize = 128;
/// Longest resource URL accepted.
pub const MAX_RESOURCE_URL_LEN: usize = 8192;
/// The query parameters a signed URL adds (to strip before forwarding or before rebuilding the
/// resource URL).
pub const QUERY_PARAMS: [&str; 5] = [
    "Expires",
    "Policy",
    "Signature",
    "Key-Pair-Id",
    "Hash-Algorithm",
];
/// The cookies signed cookies consist of.
pub const COOKIE_NAMES: [&str; 5] = [
    "CloudFront-Expires",
    "CloudFront-Policy",
    "CloudFront-Signature",
    "CloudFront-Key-Pair-Id",
    "CloudFront-Hash-Algorithm",
];
const MAX_POLICY_B64_LEN: usize = MAX_POLICY_LEN.div_ceil(3) * 4;

/// The CloudFront values of one request, borrowed from its query string or cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudFrontParams<'a> {
    /// `Expires`: canned policy expiry (Unix time).
    pub expires: Option<&'a str>,
    /// `Policy`: custom policy, URL-safe base64.
    pub policy: Option<&'a str>,
    /// `Signature`, URL-safe base64.
    pub signature: &'a str,
    /// `Key-Pair-Id`: which public key verifies it.
    pub key_pair_id: &'a str,
    /// `Hash-Algorithm`: `SHA1` (default) or `SHA256`.
    pub hash_algorithm: Option<&'a str>,
}

/// The CloudFront parameters in a query string (without the `?`); `None` unless both
/// `Signature` and `Key-Pair-Id` are present (the first occurrence of each name counts).
pub fn params_from_query(query: &str) -> Option<CloudFrontParams<'_>> {
    let get = |name| query_param(Some(query), name);
    Some(CloudFrontParams {
        expires: get("Expires"),
        policy: get("Policy"),
        signature: get("Signature")?,
        key_pair_id: get("Key-Pair-Id")?,
        hash_algorithm: get("Hash-Algorithm"),
    })
}

/// The CloudFront signed cookies in a `Cookie` header; `None` unless both
/// `CloudFront-Signature` and `CloudFront-Key-Pair-Id` are present (first occurrence counts).
pub fn params_from_cookies(cookie_header: &str) -> Option<CloudFrontParams<'_>> {
    let get = |name: &str| {
        cookie_header.split(';').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key.trim() == name).then(|| value.trim())
        })
    };
    Some(CloudFrontParams {
        expires: get("CloudFront-Expires"),
        policy: get("CloudFront-Policy"),
        signature: get("CloudFront-Signature")?,
        key_pair_id: get("CloudFront-Key-Pair-Id")?,
        hash_algorithm: get("CloudFront-Hash-Algorithm"),
    })
}

/// `query` without the signed-URL parameters ([`QUERY_PARAMS`]); `None` when nothing is left.
pub fn query_without_params(query: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = query?
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !pair.is_empty() && !QUERY_PARAMS.contains(&key)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// The signed-URL parameters of `query`, raw and in order (`Policy=…&Signature=…&Key-Pair-Id=…`),
/// to re-stamp on the child URIs of a playlist a signed URL admitted; `None` without any.
pub fn signed_query_pairs(query: Option<&str>) -> Option<String> {
    let pairs: Vec<&str> = query?
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            QUERY_PARAMS.contains(&name)
        })
        .collect();
    (!pairs.is_empty()).then(|| pairs.join("&"))
}

/// The address a signed URL or cookie is checked against, as CloudFront and botocore sign it:
/// `{public_base_url}{raw_path}` plus the request's query without the signed-URL parameters
/// (`?a=1` stays part of the resource; `Expires`, `Policy`, `Signature`, `Key-Pair-Id` and
/// `Hash-Algorithm` do not). `raw_path` is the path as requested, still percent-encoded.
pub fn signed_resource(public_base_url: &str, raw_path: &str, query: Option<&str>) -> String {
    match query_without_params(query) {
        Some(query) => format!("{public_base_url}{raw_path}?{query}"),
        None => format!("{public_base_url}{raw_path}"),
    }
}

/// What a verified signed URL or cookie set grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudFrontGrant {
    /// The policy's `DateLessThan`.
    pub expires_at: u64,
    /// The key that verified it.
    pub key_pair_id: String,
}

/// Verifies signed URLs and cookies with public keys selected by `Key-Pair-Id`.
#[derive(Clone, Default)]
pub struct CloudFrontVerifier {
    keys: HashMap<String, PublicKey>,
}

impl std::fmt::Debug for CloudFrontVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("CloudFrontVerifier")
            .field("key_pair_ids", &ids)
            .finish()
    }
}

impl CloudFrontVerifier {
    /// A verifier with no keys.
    pub fn new() -> Self {
        CloudFrontVerifier::default()
    }

    /// Adds (or replaces) the public key for `key_pair_id`: RSA 2048–4096 bits or ECDSA P-256,
    /// SPKI or PKCS#1 PEM. `Malformed` for anything else or an unusable id.
    pub fn add_public_key_pem(&mut self, key_pair_id: &str, pem: &str) -> Result<(), Reason> {
        check_key_pair_id(key_pair_id)?;
        let key = PublicKey::from_pem(pem)?;
        self.keys.insert(key_pair_id.to_string(), key);
        Ok(())
    }

    /// The public key of `signer`, under its Key-Pair-Id.
    pub fn add_signer(&mut self, signer: &CloudFrontSigner) {
        self.keys
            .insert(signer.key_pair_id.clone(), signer.key.public_key());
    }

    /// Verifies `params` for a request to `resource_url` (scheme, host, path and the query
    /// without [`QUERY_PARAMS`], as the URL was signed) from `client_ip` at `now_unix`.
    pub fn verify(
        &self,
        params: &CloudFrontParams,
        resource_url: &str,
        client_ip: Option<IpAddr>,
        now_unix: u64,
    ) -> Result<CloudFrontGrant, Reason> {
        self.verify_memoized(params, resource_url, client_ip, now_unix, &NoMemo)
    }

    /// [`verify`](Self::verify), skipping the public-key operation for a signature `memo`
    /// already holds. A custom policy re-stamped on every segment URL is then verified once,
    /// not on every request (an RSA-2048 verify costs hundreds of microseconds here); the
    /// policy's resource, time and address conditions are still checked every time.
    pub fn verify_memoized(
        &self,
        params: &CloudFrontParams,
        resource_url: &str,
        client_ip: Option<IpAddr>,
        now_unix: u64,
        memo: &dyn SignatureMemo,
    ) -> Result<CloudFrontGrant, Reason> {
        if params.signature.is_empty() || params.signature.len() > MAX_SIGNATURE_LEN {
            return Err(Reason::Malformed);
        }
        if resource_url.len() > MAX_RESOURCE_URL_LEN {
            return Err(Reason::Malformed);
        }
        check_key_pair_id(params.key_pair_id)?;
        let signature = url_safe_b64_decode(params.signature).ok_or(Reason::Malformed)?;
        let (signed, canned) = match (params.expires, params.policy) {
            (Some(expires), None) => {
                let policy = Policy::canned(resource_url, parse_epoch(expires)?);
                (policy.to_json().into_bytes(), Some(policy))
            }
            (None, Some(policy)) => {
                if policy.len() > MAX_POLICY_B64_LEN {
                    return Err(Reason::Malformed);
                }
                let bytes = url_safe_b64_decode(policy).ok_or(Reason::Malformed)?;
                if bytes.len() > MAX_POLICY_LEN {
                    return Err(Reason::Malformed);
                }
                (bytes, None)
            }
            _ => return Err(Reason::Malformed),
        };
        let hash = HashAlgorithm::from_param(params.hash_algorithm)?;
        let key = self
            .keys
            .get(params.key_pair_id)
            .ok_or(Reason::UnknownKey)?;
        let digest = signature_digest(params.key_pair_id, hash, &signed, &signature);
        if !memo.contains(&digest) {
            if !key.verify(hash, &signed, &signature) {
                return Err(Reason::BadSignature);
            }
            memo.insert(digest);
        }
        let policy = match canned {
            Some(policy) => policy,
            None => Policy::from_json(&signed)?,
        };
        policy.check(resource_url, client_ip, now_unix)?;
        Ok(CloudFrontGrant {
            expires_at: policy.date_less_than,
            key_pair_id: params.key_pair_id.to_string(),
        })
    }
}

/// Remembers signatures that verified, by [`signature_digest`]. Implementations bound their size
/// and age; forgetting is always safe (the signature is verified again).
pub trait SignatureMemo {
    fn contains(&self, digest: &[u8; 32]) -> bool;
    fn insert(&self, digest: [u8; 32]);
}

/// The memo that remembers nothing.
struct NoMemo;

impl SignatureMemo for NoMemo {
    fn contains(&self, _digest: &[u8; 32]) -> bool {
        false
    }
    fn insert(&self, _digest: [u8; 32]) {}
}

/// SHA-256 over everything the signature check depends on: the key, the hash, the signed bytes
/// and the signature, each length-prefixed so no two inputs share a digest.
fn signature_digest(
    key_pair_id: &str,
    hash: HashAlgorithm,
    signed: &[u8],
    signature: &[u8],
) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    let hash_name = hash.param().unwrap_or("SHA1");
    for part in [
        key_pair_id.as_bytes(),
        hash_name.as_bytes(),
        signed,
        signature,
    ] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    digest.finalize().into()
}

/// Mints signed URLs and cookies with one private key.
#[derive(Clone)]
pub struct CloudFrontSigner {
    key_pair_id: String,
    key: PrivateKey,
    hash: HashAlgorithm,
}

impl std::fmt::Debug for CloudFrontSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudFrontSigner")
            .field("key_pair_id", &self.key_pair_id)
            .field("key", &"<redacted>")
            .field("hash", &self.hash)
            .finish()
    }
}

impl CloudFrontSigner {
    /// A signer for `key_pair_id` with an RSA (2048–4096 bits) or P-256 private key in PKCS#8,
    /// PKCS#1 or SEC1 PEM. `Malformed` for anything else.
    pub fn from_pem(key_pair_id: &str, pem: &str, hash: HashAlgorithm) -> Result<Self, Reason> {
        check_key_pair_id(key_pair_id)?;
        let key = PrivateKey::from_pem(pem)?;
        // Prove the key signs and verifies once, so minting below cannot fail.
        let probe = key.sign(hash, b"probe")?;
        if !key.public_key().verify(hash, b"probe", &probe) {
            return Err(Reason::Malformed);
        }
        Ok(CloudFrontSigner {
            key_pair_id: key_pair_id.to_string(),
            key,
            hash,
        })
    }

    /// The Key-Pair-Id.
    pub fn key_pair_id(&self) -> &str {
        &self.key_pair_id
    }

    /// The public key as SPKI PEM.
    pub fn public_key_pem(&self) -> String {
        self.key.public_key_pem()
    }

    /// `url` with a canned policy expiring at `expires_at` appended
    /// (`Expires`, `Signature`, `Key-Pair-Id`, and `Hash-Algorithm` for SHA-256).
    pub fn signed_url_canned(&self, url: &str, expires_at: u64) -> String {
        let signature = self.sign(Policy::canned(url, expires_at).to_json().as_bytes());
        self.append(
            url,
            &[
                ("Expires", expires_at.to_string()),
                ("Signature", signature),
            ],
        )
    }

    /// `url` with a custom `policy` appended (`Policy`, `Signature`, `Key-Pair-Id`, and
    /// `Hash-Algorithm` for SHA-256).
    pub fn signed_url_custom(&self, url: &str, policy: &Policy) -> String {
        let json = policy.to_json();
        let signature = self.sign(json.as_bytes());
        let encoded = url_safe_b64_encode(json.as_bytes());
        self.append(url, &[("Policy", encoded), ("Signature", signature)])
    }

    /// Signed cookies for a custom `policy`: `CloudFront-Policy`, `CloudFront-Signature`,
    /// `CloudFront-Key-Pair-Id` (and `CloudFront-Hash-Algorithm` for SHA-256).
    pub fn cookies(&self, policy: &Policy) -> Vec<(&'static str, String)> {
        let json = policy.to_json();
        let signature = self.sign(json.as_bytes());
        self.cookie_set(
            ("CloudFront-Policy", url_safe_b64_encode(json.as_bytes())),
            signature,
        )
    }

    /// Signed cookies for a canned policy on `resource`: `CloudFront-Expires`,
    /// `CloudFront-Signature`, `CloudFront-Key-Pair-Id` (and `CloudFront-Hash-Algorithm`).
    pub fn cookies_canned(&self, resource: &str, expires_at: u64) -> Vec<(&'static str, String)> {
        let signature = self.sign(Policy::canned(resource, expires_at).to_json().as_bytes());
        self.cookie_set(("CloudFront-Expires", expires_at.to_string()), signature)
    }

    fn cookie_set(
        &self,
        first: (&'static str, String),
        signature: String,
    ) -> Vec<(&'static str, String)> {
        let mut cookies = vec![
            first,
            ("CloudFront-Signature", signature),
            ("CloudFront-Key-Pair-Id", self.key_pair_id.clone()),
        ];
        if let Some(hash) = self.hash.param() {
            cookies.push(("CloudFront-Hash-Algorithm", hash.to_string()));
        }
        cookies
    }

    fn append(&self, url: &str, params: &[(&str, String)]) -> String {
        let mut out = url.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        let id = ("Key-Pair-Id", self.key_pair_id.clone());
        let hash = self.hash.param().map(|h| ("Hash-Algorithm", h.to_string()));
        for (name, value) in params.iter().cloned().chain([id]).chain(hash) {
            out.push(sep);
            out.push_str(name);
            out.push('=');
            out.push_str(&value);
            sep = '&';
        }
        out
    }

    fn sign(&self, policy: &[u8]) -> String {
        let signature = self
            .key
            .sign(self.hash, policy)
            .expect("the key signed a probe when it was loaded");
        url_safe_b64_encode(&signature)
    }
}

fn check_key_pair_id(id: &str) -> Result<(), Reason> {
    let ok = !id.is_empty()
        && id.len() <= MAX_KEY_PAIR_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Reason::Malformed)
    }
}

fn parse_epoch(value: &str) -> Result<u64, Reason> {
    if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reason::Malformed);
    }
    value.parse().map_err(|_| Reason::Malformed)
}

#[cfg(test)]
mod tests;
