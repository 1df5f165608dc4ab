//! Minting JWTs with any supported algorithm: development tokens, tests and benchmarks.
//! Production tokens come from the platform's auth service.
//!
//! RSA signing here is deterministic PKCS#1 v1.5 without blinding; fine for tests and
//! benchmarks, not meant to hold a production signing key.

use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use hmac::{Hmac, Mac};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};
use sha2::Sha256;

use super::b64::B64;
use super::claims::Claims;
use super::keys::{Algorithm, KeyError, VerificationKey};

#[derive(Clone)]
enum SigningMaterial {
    Hs256(Vec<u8>),
    Rs256(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    Es256(p256::ecdsa::SigningKey),
    EdDsa(Box<ed25519_dalek::SigningKey>),
}

/// A private (or shared) key that mints JWTs with one algorithm, optionally naming a `kid`.
#[derive(Clone)]
pub struct JwtSigner {
    material: SigningMaterial,
    kid: Option<String>,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner")
            .field("alg", &self.algorithm())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    /// An HS256 signer.
    pub fn hs256(secret: &[u8]) -> Self {
        JwtSigner {
            material: SigningMaterial::Hs256(secret.to_vec()),
            kid: None,
        }
    }

    /// A signer from a private key in PEM: RS256 takes PKCS#8 or PKCS#1, ES256 PKCS#8 or
    /// SEC1 (`EC PRIVATE KEY`), EdDSA PKCS#8.
    pub fn from_pem(alg: Algorithm, pem: &str) -> Result<Self, KeyError> {
        let material = match alg {
            Algorithm::Hs256 => return Err(KeyError("HS256 keys are secrets, not PEM")),
            Algorithm::Rs256 => {
                let key = rsa::pkcs8::DecodePrivateKey::from_pkcs8_pem(pem)
                    .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
                    .map_err(|_| KeyError("not an RSA private key in PEM"))?;
                SigningMaterial::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(key)))
            }
            Algorithm::Es256 => {
                let key: p256::SecretKey = p256::pkcs8::DecodePrivateKey::from_pkcs8_pem(pem)
                    .or_else(|_| p256::SecretKey::from_sec1_pem(pem))
                    .map_err(|_| KeyError("not a P-256 private key in PEM"))?;
                SigningMaterial::Es256(key.into())
            }
            Algorithm::EdDsa => SigningMaterial::EdDsa(Box::new(
                ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                    .map_err(|_| KeyError("not an Ed25519 private key in PKCS#8 PEM"))?,
            )),
        };
        Ok(JwtSigner {
            material,
            kid: None,
        })
    }

    /// Puts `kid` in every header this signer writes.
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_owned());
        self
    }

    /// The algorithm this signer uses.
    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            SigningMaterial::Hs256(_) => Algorithm::Hs256,
            SigningMaterial::Rs256(_) => Algorithm::Rs256,
            SigningMaterial::Es256(_) => Algorithm::Es256,
            SigningMaterial::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// The matching verification key (with this signer's `kid`).
    pub fn verification_key(&self) -> VerificationKey {
        let jwk = self.jwk(true);
        VerificationKey::from_jwk(jwk.to_string().as_bytes()).expect("a signer's own JWK is valid")
    }

    /// The public JWK of this signer (`kty`, `alg`, `use: sig`, `kid` and the public
    /// members); `None` for HS256, whose key is a secret.
    pub fn public_jwk(&self) -> Option<Value> {
        (!matches!(self.material, SigningMaterial::Hs256(_))).then(|| self.jwk(false))
    }

    fn jwk(&self, include_secret: bool) -> Value {
        let mut jwk = match &self.material {
            SigningMaterial::Hs256(secret) => {
                assert!(include_secret, "HS256 has no public JWK");
                json!({"kty": "oct", "k": B64.encode(secret)})
            }
            SigningMaterial::Rs256(key) => {
                let key: &rsa::RsaPrivateKey = key.as_ref().as_ref();
                json!({
                    "kty": "RSA",
                    "n": B64.encode(key.n().to_bytes_be()),
                    "e": B64.encode(key.e().to_bytes_be()),
                })
            }
            SigningMaterial::Es256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC", "crv": "P-256",
                    "x": B64.encode(point.x().expect("uncompressed point")),
                    "y": B64.encode(point.y().expect("uncompressed point")),
                })
            }
            SigningMaterial::EdDsa(key) => json!({
                "kty": "OKP", "crv": "Ed25519",
                "x": B64.encode(key.verifying_key().as_bytes()),
            }),
        };
        jwk["alg"] = json!(self.algorithm().name());
        jwk["use"] = json!("sig");
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// Mints a token carrying `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        self.sign_json(&serde_json::to_value(claims).expect("claims serialize to JSON"))
    }

    /// Mints a token with any JSON payload (tests use this for odd claims).
    pub fn sign_json(&self, payload: &Value) -> String {
        let mut header = json!({"alg": self.algorithm().name(), "typ": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        self.sign_raw(
            header.to_string().as_bytes(),
            payload.to_string().as_bytes(),
        )
    }

    /// Mints a token from raw header and payload bytes, exactly as given (tests use this for
    /// hostile headers).
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
        let signature = self.signature(input.as_bytes());
        format!("{input}.{}", B64.encode(signature))
    }

    /// The raw signature of `message`.
    pub fn signature(&self, message: &[u8]) -> Vec<u8> {
        match &self.material {
            SigningMaterial::Hs256(secret) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret)
                    .expect("HMAC accepts keys of any length");
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
            SigningMaterial::Rs256(key) => key.sign(message).to_vec(),
            SigningMaterial::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            SigningMaterial::EdDsa(key) => key.sign(message).to_bytes().to_vec(),
        }
    }
}
