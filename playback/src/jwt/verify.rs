//! Verification of a compact JWS: size limits, exact base64url, a strict header, key
//! selection by `kid` and pinned algorithm, the signature, then the claims.
//!
//! Rules, in the order they are applied (each failure names one [`Reason`]):
//!
//! 1. empty -> `missing_token`; longer than the verifier's limit (default [`MAX_JWT_LEN`]),
//!    not three segments, a header segment over [`MAX_HEADER_B64_LEN`], any segment that is
//!    not canonical unpadded base64url, a header that is not one JSON object without repeated
//!    keys, any `crit` member, a non-string `alg`, or a `kid` outside [`kid_is_valid`] -> `malformed`;
//! 2. an `alg` other than `HS256`, `RS256`, `ES256`, `EdDSA` (so `none` in any spelling) ->
//!    `unsupported_algorithm`;
//! 3. keys: a `kid` some key has selects the keys of that name, and if none of them is pinned
//!    to the header's `alg` -> `unsupported_algorithm` (this is where HS256 signed with an RSA
//!    public key, or RS256 against an ES256 key, stops); a `kid` no key has falls back to the
//!    unnamed keys pinned to `alg`, and without one -> `unknown_key` (the edge refetches its
//!    JWKS on this reason); without a `kid`, every key pinned to `alg` is a candidate (none ->
//!    `unsupported_algorithm`, an empty ring -> `unknown_key`);
//! 4. the signature against each candidate pinned to `alg` (HMAC in constant time; RSA
//!    signatures must be exactly the modulus size, ECDSA exactly 64 raw bytes `r || s`, Ed25519
//!    verified strictly) -> `bad_signature`;
//! 5. the claims ([`super::claims`]): strict JSON, then `iss`, `aud`, `exp`, `nbf`.
//!
//! `jku`, `x5u`, `jwk`, `x5c` and `typ` are ignored: keys come only from the verifier's ring.

use base64::Engine as _;
use hmac::Mac as _;
use rsa::signature::Verifier as _;
use serde_json::Value;

use super::b64::B64;
use super::claims::{check, Claims, JwtRules};
use super::json::parse_object;
use super::keys::{kid_is_valid, Algorithm, KeyRing, Material, VerificationKey};
use crate::Reason;

/// Longest JWT accepted by default.
pub const MAX_JWT_LEN: usize = 8 * 1024;
/// Longest base64url header segment accepted.
pub const MAX_HEADER_B64_LEN: usize = 1024;

/// The protected header fields this crate reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The algorithm, already known to be supported.
    pub alg: Algorithm,
    /// The key id, already checked against [`kid_is_valid`].
    pub kid: Option<String>,
}

/// A token that passed every rule: its claims and the key that verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub claims: Claims,
    pub alg: Algorithm,
    /// The `kid` of the key that verified the signature.
    pub kid: Option<String>,
}

/// Verifies JWTs against a [`KeyRing`] and one set of [`JwtRules`].
#[derive(Clone, Debug)]
pub struct JwtVerifier {
    ring: KeyRing,
    rules: JwtRules,
    max_token_bytes: usize,
}

/// The three segments of a compact JWS whose header passed rule 1 and 2.
struct Parts<'a> {
    header: Header,
    signing_input: &'a [u8],
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// Reads and checks the header of `token` without verifying anything else (rules 1 and 2).
pub fn parse_header(token: &str, max_token_bytes: usize) -> Result<Header, Reason> {
    split(token, max_token_bytes).map(|parts| parts.header)
}

fn split(token: &str, max_token_bytes: usize) -> Result<Parts<'_>, Reason> {
    if token.is_empty() {
        return Err(Reason::MissingToken);
    }
    if token.len() > max_token_bytes {
        return Err(Reason::Malformed);
    }
    let mut segments = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(Reason::Malformed);
    };
    if header_b64.len() > MAX_HEADER_B64_LEN || payload_b64.is_empty() {
        return Err(Reason::Malformed);
    }
    let header = B64.decode(header_b64).map_err(|_| Reason::Malformed)?;
    let header = parse_object(&header).ok_or(Reason::Malformed)?;
    if header.contains_key("crit") {
        return Err(Reason::Malformed);
    }
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => Algorithm::from_name(alg),
        _ => return Err(Reason::Malformed),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if kid_is_valid(kid) => Some(kid.clone()),
        Some(_) => return Err(Reason::Malformed),
    };
    let payload = B64.decode(payload_b64).map_err(|_| Reason::Malformed)?;
    let signature = B64.decode(sig_b64).map_err(|_| Reason::Malformed)?;
    let alg = alg.ok_or(Reason::UnsupportedAlgorithm)?;
    Ok(Parts {
        header: Header { alg, kid },
        signing_input: &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()],
        payload,
        signature,
    })
}

fn signature_ok(key: &VerificationKey, message: &[u8], signature: &[u8]) -> bool {
    match &key.material {
        Material::Hs256(mac) => {
            let mut mac = mac.clone();
            mac.update(message);
            mac.verify_slice(signature).is_ok()
        }
        Material::Rs256(key, size) => {
            signature.len() == *size
                && rsa::pkcs1v15::Signature::try_from(signature)
                    .is_ok_and(|sig| key.verify(message, &sig).is_ok())
        }
        Material::Es256(key) => {
            signature.len() == 64
                && p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|sig| key.verify(message, &sig).is_ok())
        }
        Material::EdDsa(key) => <[u8; 64]>::try_from(signature).is_ok_and(|bytes| {
            key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes))
                .is_ok()
        }),
    }
}

impl JwtVerifier {
    /// A verifier accepting tokens signed by any key of `ring` under `rules`.
    pub fn new(ring: KeyRing, rules: JwtRules) -> Self {
        JwtVerifier {
            ring,
            rules,
            max_token_bytes: MAX_JWT_LEN,
        }
    }

    /// Sets the longest token accepted (bytes).
    pub fn with_max_token_bytes(mut self, max_token_bytes: usize) -> Self {
        self.max_token_bytes = max_token_bytes;
        self
    }

    /// The keys this verifier uses.
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// The rules this verifier applies.
    pub fn rules(&self) -> &JwtRules {
        &self.rules
    }

    /// The longest token accepted.
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    /// Verifies `token` at `now_unix` and returns its claims.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, Reason> {
        self.verify_detailed(token, now_unix).map(|v| v.claims)
    }

    /// Verifies `token` at `now_unix`; also says which algorithm and key verified it.
    pub fn verify_detailed(&self, token: &str, now_unix: u64) -> Result<Verified, Reason> {
        let parts = split(token, self.max_token_bytes)?;
        let Header { alg, kid } = parts.header;
        let keys = self.ring.keys();
        let pinned_to = |k: &&VerificationKey| k.algorithm() == alg;
        let pinned: Vec<&VerificationKey> = match &kid {
            Some(kid) if self.ring.has_kid(kid) => {
                let named = keys.iter().filter(|k| k.kid() == Some(kid.as_str()));
                let pinned: Vec<_> = named.filter(pinned_to).collect();
                if pinned.is_empty() {
                    return Err(Reason::UnsupportedAlgorithm);
                }
                pinned
            }
            Some(_) => {
                let unnamed = keys.iter().filter(|k| k.kid().is_none());
                let pinned: Vec<_> = unnamed.filter(pinned_to).collect();
                if pinned.is_empty() {
                    return Err(Reason::UnknownKey);
                }
                pinned
            }
            None => {
                if keys.is_empty() {
                    return Err(Reason::UnknownKey);
                }
                let pinned: Vec<_> = keys.iter().filter(pinned_to).collect();
                if pinned.is_empty() {
                    return Err(Reason::UnsupportedAlgorithm);
                }
                pinned
            }
        };
        let key = pinned
            .into_iter()
            .find(|k| signature_ok(k, parts.signing_input, &parts.signature))
            .ok_or(Reason::BadSignature)?;
        let claims = parse_object(&parts.payload).ok_or(Reason::Malformed)?;
        let claims = check(&claims, &self.rules, now_unix)?;
        Ok(Verified {
            claims,
            alg,
            kid: key.kid().map(str::to_owned),
        })
    }
}
