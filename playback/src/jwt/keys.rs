//! Verification keys: each pinned to exactly one algorithm, optionally named by a `kid`,
//! loaded from an HS256 secret, a PEM public key, a JWK, or a JWKS document.
//!
//! JWK and JWKS input comes from the network, so it is parsed strictly: the document is
//! bounded ([`MAX_JWKS_BYTES`], [`MAX_JWKS_KEYS`]) and has no repeated JSON keys; every key's
//! `kty`, `crv` and `alg` must agree (`alg` is inferred from `kty`/`crv` when absent, since each
//! key type maps to one supported algorithm); RSA moduli are 2048 to 8192 bits; keys marked
//! `"use": "enc"` (or whose `key_ops` lack `verify`) are skipped, as are symmetric (`oct`) keys
//! and algorithms this crate does not verify, so a provider's mixed JWKS still loads.

use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePublicKey as _;
use hmac::{Hmac, Mac};
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::b64::B64;
use super::json::parse_object;

/// Largest JWKS document accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most keys accepted in one JWKS document (and in one [`KeyRing`]).
pub const MAX_JWKS_KEYS: usize = 32;
/// Longest `kid` accepted.
pub const MAX_KID_LEN: usize = 128;
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

/// A JWS algorithm this crate verifies. Names are matched exactly (`"none"`, `"hs256"` and
/// every other spelling are unsupported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC-SHA256 with a shared secret.
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256, signature as raw `r || s` (64 bytes).
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Hs256,
        Algorithm::Rs256,
        Algorithm::Es256,
        Algorithm::EdDsa,
    ];

    /// The JOSE name, e.g. `"RS256"`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The algorithm with exactly this JOSE name.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key could not be loaded. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub &'static str);

/// The public (or shared) material of one key.
#[derive(Clone)]
pub(crate) enum Material {
    Hs256(Hmac<Sha256>),
    Rs256(rsa::pkcs1v15::VerifyingKey<Sha256>, usize),
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_dalek::VerifyingKey),
}

/// One verification key, pinned to one algorithm.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    pub(crate) material: Material,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// True when `kid` is 1..=[`MAX_KID_LEN`] bytes of `A-Z a-z 0-9 - _ . : + / =` (enough for
/// UUIDs, thumbprints and the standard-base64 ids some providers use; never quotes, spaces or
/// control characters).
pub fn kid_is_valid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'+' | b'/' | b'=')
        })
}

impl VerificationKey {
    /// An HS256 key from a shared secret (at least one byte; callers enforce their minimum).
    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.is_empty() {
            return Err(KeyError("an HS256 secret must not be empty"));
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        Ok(VerificationKey {
            kid: None,
            material: Material::Hs256(mac),
        })
    }

    /// A public key in PEM for `alg`: RS256 takes SPKI (`PUBLIC KEY`) or PKCS#1
    /// (`RSA PUBLIC KEY`); ES256 (P-256) and EdDSA (Ed25519) take SPKI. HS256 has no PEM form.
    pub fn from_public_pem(alg: Algorithm, pem: &str) -> Result<Self, KeyError> {
        let material = match alg {
            Algorithm::Hs256 => {
                return Err(KeyError("HS256 keys are secrets, not PEM public keys"))
            }
            Algorithm::Rs256 => {
                let key = rsa::pkcs8::DecodePublicKey::from_public_key_pem(pem)
                    .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
                    .map_err(|_| KeyError("not an RSA public key in PEM (SPKI or PKCS#1)"))?;
                rsa_material(key)?
            }
            Algorithm::Es256 => {
                let key: p256::PublicKey =
                    p256::pkcs8::DecodePublicKey::from_public_key_pem(pem)
                        .map_err(|_| KeyError("not a P-256 public key in PEM (SPKI)"))?;
                Material::Es256(key.into())
            }
            Algorithm::EdDsa => Material::EdDsa(
                ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
                    .map_err(|_| KeyError("not an Ed25519 public key in PEM (SPKI)"))?,
            ),
        };
        Ok(VerificationKey {
            kid: None,
            material,
        })
    }

    /// One JWK (a JSON object) under the JWKS rules of this module; `oct` keys are accepted
    /// here (a JWK from configuration) but never from a JWKS document.
    pub fn from_jwk(json: &[u8]) -> Result<Self, KeyError> {
        if json.len() > MAX_JWKS_BYTES {
            return Err(KeyError("the JWK is too large"));
        }
        let object = parse_object(json).ok_or(KeyError(
            "the JWK is not one JSON object without repeated keys",
        ))?;
        match jwk_key(&object, true)? {
            Some(key) => Ok(key),
            None => Err(KeyError(
                "the JWK is not a signature-verification key (`use` or `key_ops`)",
            )),
        }
    }

    /// Names this key (the `kid` tokens select it by).
    pub fn with_kid(mut self, kid: &str) -> Result<Self, KeyError> {
        if !kid_is_valid(kid) {
            return Err(KeyError(
                "a kid must be 1-128 characters of A-Z a-z 0-9 - _ . : + / =",
            ));
        }
        self.kid = Some(kid.to_owned());
        Ok(self)
    }

    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            Material::Hs256(_) => Algorithm::Hs256,
            Material::Rs256(..) => Algorithm::Rs256,
            Material::Es256(_) => Algorithm::Es256,
            Material::EdDsa(_) => Algorithm::EdDsa,
        }
    }
}

fn rsa_material(key: RsaPublicKey) -> Result<Material, KeyError> {
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(KeyError("RSA keys must have at least 2048 bits"));
    }
    if bits > MAX_RSA_BITS {
        return Err(KeyError("RSA keys must have at most 8192 bits"));
    }
    let size = key.size();
    Ok(Material::Rs256(
        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key),
        size,
    ))
}

fn string<'a>(object: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, KeyError> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(KeyError("a JWK member that must be a string is not")),
    }
}

fn b64_member(object: &Map<String, Value>, name: &str) -> Result<Vec<u8>, KeyError> {
    let text = string(object, name)?.ok_or(KeyError("a required JWK member is missing"))?;
    B64.decode(text)
        .map_err(|_| KeyError("a JWK member is not canonical unpadded base64url"))
}

/// The key described by one JWK object; `Ok(None)` when the key is not for us (encryption
/// use, no `verify` operation, an algorithm or key type we do not verify, `oct` in a JWKS).
fn jwk_key(
    object: &Map<String, Value>,
    allow_oct: bool,
) -> Result<Option<VerificationKey>, KeyError> {
    let kty = string(object, "kty")?.ok_or(KeyError("a JWK has no `kty`"))?;
    if let Some(usage) = string(object, "use")? {
        if usage != "sig" {
            return Ok(None);
        }
    }
    if let Some(ops) = object.get("key_ops") {
        let ops = ops
            .as_array()
            .ok_or(KeyError("a JWK's `key_ops` is not an array"))?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Ok(None);
        }
    }
    let kid = string(object, "kid")?;
    let declared = string(object, "alg")?;
    let crv = string(object, "crv")?;
    let natural = match (kty, crv) {
        ("RSA", None) => Algorithm::Rs256,
        ("EC", Some("P-256")) => Algorithm::Es256,
        ("OKP", Some("Ed25519")) => Algorithm::EdDsa,
        ("oct", None) if allow_oct => Algorithm::Hs256,
        ("RSA" | "oct", Some(_)) => {
            return Err(KeyError("a JWK has a `crv` its `kty` does not take"))
        }
        ("EC" | "OKP", None) => return Err(KeyError("an EC or OKP JWK has no `crv`")),
        _ => return Ok(None),
    };
    if let Some(declared) = declared {
        match Algorithm::from_name(declared) {
            Some(alg) if alg == natural => {}
            Some(_) => return Err(KeyError("a JWK's `alg` does not match its `kty`/`crv`")),
            None => {
                let family_ok = match natural {
                    Algorithm::Hs256 => declared.starts_with("HS"),
                    Algorithm::Rs256 => declared.starts_with("RS") || declared.starts_with("PS"),
                    Algorithm::Es256 => declared.starts_with("ES"),
                    Algorithm::EdDsa => declared == "Ed25519" || declared == "Ed448",
                };
                if family_ok {
                    return Ok(None);
                }
                return Err(KeyError("a JWK's `alg` does not match its `kty`/`crv`"));
            }
        }
    }
    let material = match natural {
        Algorithm::Hs256 => {
            let k = b64_member(object, "k")?;
            VerificationKey::hs256(&k)?.material
        }
        Algorithm::Rs256 => {
            let n = b64_member(object, "n")?;
            let e = b64_member(object, "e")?;
            if n.first() == Some(&0) || e.first() == Some(&0) || e.len() > 8 {
                return Err(KeyError("an RSA JWK's `n` or `e` is not minimal"));
            }
            let key = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e))
                .map_err(|_| KeyError("an RSA JWK is not a valid public key"))?;
            rsa_material(key)?
        }
        Algorithm::Es256 => {
            let x = b64_member(object, "x")?;
            let y = b64_member(object, "y")?;
            if x.len() != 32 || y.len() != 32 {
                return Err(KeyError("a P-256 JWK's `x` and `y` must be 32 bytes each"));
            }
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(4);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                .map_err(|_| KeyError("a P-256 JWK is not a point on the curve"))?;
            Material::Es256(key)
        }
        Algorithm::EdDsa => {
            let x = b64_member(object, "x")?;
            let x: [u8; 32] = x
                .as_slice()
                .try_into()
                .map_err(|_| KeyError("an Ed25519 JWK's `x` must be 32 bytes"))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                .map_err(|_| KeyError("an Ed25519 JWK is not a valid point"))?;
            Material::EdDsa(key)
        }
    };
    let key = VerificationKey {
        kid: None,
        material,
    };
    match kid {
        Some(kid) => key.with_kid(kid).map(Some),
        None => Ok(Some(key)),
    }
}

/// A key of a JWKS document that was not loaded, and why (for logs; no key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// The key's `kid`, when it had a valid one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub why: &'static str,
}

/// The verification keys a verifier may use, at most [`MAX_JWKS_KEYS`] per source.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: Vec<VerificationKey>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        KeyRing::default()
    }

    /// Adds `key`; a second key with the same `kid` and algorithm is refused.
    pub fn push(&mut self, key: VerificationKey) -> Result<(), KeyError> {
        let duplicate = key.kid.is_some()
            && self
                .keys
                .iter()
                .any(|k| k.kid == key.kid && k.algorithm() == key.algorithm());
        if duplicate {
            return Err(KeyError("two keys share one kid and algorithm"));
        }
        self.keys.push(key);
        Ok(())
    }

    /// Adds every key of `other` that does not duplicate one already here.
    pub fn extend(&mut self, other: &KeyRing) {
        for key in &other.keys {
            let _ = self.push(key.clone());
        }
    }

    /// The keys, in the order they were added.
    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when some key is named `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Loads a JWKS document (`{"keys": [...]}`). The whole document is refused when it is
    /// too large, not strict JSON, lacks a `keys` array, or lists more than [`MAX_JWKS_KEYS`]
    /// keys; single keys that are not for us or break a rule are skipped and reported.
    pub fn from_jwks(json: &[u8]) -> Result<(KeyRing, Vec<SkippedKey>), KeyError> {
        if json.len() > MAX_JWKS_BYTES {
            return Err(KeyError("the JWKS document is larger than 64 KiB"));
        }
        let document = parse_object(json).ok_or(KeyError(
            "the JWKS document is not one JSON object without repeated keys",
        ))?;
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(KeyError("the JWKS document has no `keys` array"))?;
        if keys.len() > MAX_JWKS_KEYS {
            return Err(KeyError("the JWKS document lists more than 32 keys"));
        }
        let mut ring = KeyRing::new();
        let mut skipped = Vec::new();
        for entry in keys {
            let Some(object) = entry.as_object() else {
                skipped.push(SkippedKey {
                    kid: None,
                    why: "not a JSON object",
                });
                continue;
            };
            let kid = object
                .get("kid")
                .and_then(Value::as_str)
                .filter(|k| kid_is_valid(k))
                .map(str::to_owned);
            match jwk_key(object, false) {
                Ok(Some(key)) => {
                    if let Err(KeyError(why)) = ring.push(key) {
                        skipped.push(SkippedKey { kid, why });
                    }
                }
                Ok(None) => skipped.push(SkippedKey {
                    kid,
                    why: "not a signature key of a supported algorithm",
                }),
                Err(KeyError(why)) => skipped.push(SkippedKey { kid, why }),
            }
        }
        Ok((ring, skipped))
    }
}
