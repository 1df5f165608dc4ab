//! CloudFront key material: RSA (2048 to 4096 bits, PKCS#1 v1.5 signatures) and ECDSA P-256
//! (DER signatures), over SHA-1 or SHA-256 of the policy bytes.
//!
//! Public keys are read from SPKI (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`) PEM, private keys
//! from PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM.
//! Signing needs no randomness: PKCS#1 v1.5 is deterministic and ECDSA uses RFC 6979 nonces.
//! RSA signing is unblinded (no RNG in this crate); keep signing off hosts where an attacker can
//! time many signatures, or sign with a blinded implementation.

use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::Reason;

/// Largest PEM text accepted for a key.
pub const MAX_PEM_LEN: usize = 16 * 1024;
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// The digest a signature is computed over (`Hash-Algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashAlgorithm {
    /// SHA-1, CloudFront's default when `Hash-Algorithm` is absent.
    #[default]
    Sha1,
    /// SHA-256 (`Hash-Algorithm=SHA256`).
    Sha256,
}

impl HashAlgorithm {
    /// Parses a `Hash-Algorithm` value (`SHA1`, `SHA256`); absent means SHA-1.
    pub fn from_param(value: Option<&str>) -> Result<HashAlgorithm, Reason> {
        match value {
            None | Some("SHA1") => Ok(HashAlgorithm::Sha1),
            Some("SHA256") => Ok(HashAlgorithm::Sha256),
            Some(_) => Err(Reason::UnsupportedAlgorithm),
        }
    }

    /// The `Hash-Algorithm` value, or `None` for the default SHA-1 (which signers omit).
    pub fn param(self) -> Option<&'static str> {
        match self {
            HashAlgorithm::Sha1 => None,
            HashAlgorithm::Sha256 => Some("SHA256"),
        }
    }

    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha1 => Sha1::digest(message).to_vec(),
            HashAlgorithm::Sha256 => Sha256::digest(message).to_vec(),
        }
    }

    fn pkcs1v15(self) -> Pkcs1v15Sign {
        match self {
            HashAlgorithm::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
            HashAlgorithm::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
        }
    }
}

/// A public key that verifies CloudFront signatures.
#[derive(Clone)]
pub(crate) enum PublicKey {
    Rsa(Box<RsaPublicKey>),
    Ecdsa(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    pub(crate) fn from_pem(pem: &str) -> Result<PublicKey, Reason> {
        if pem.len() > MAX_PEM_LEN {
            return Err(Reason::Malformed);
        }
        let pem = pem.trim();
        if let Ok(key) = RsaPublicKey::from_public_key_pem(pem) {
            return rsa_size_ok(key.n().bits()).map(|_| PublicKey::Rsa(Box::new(key)));
        }
        if let Ok(key) = RsaPublicKey::from_pkcs1_pem(pem) {
            return rsa_size_ok(key.n().bits()).map(|_| PublicKey::Rsa(Box::new(key)));
        }
        p256::ecdsa::VerifyingKey::from_public_key_pem(pem)
            .map(PublicKey::Ecdsa)
            .map_err(|_| Reason::Malformed)
    }

    /// True when `signature` is this key's signature of `message` under `hash`.
    pub(crate) fn verify(&self, hash: HashAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        let digest = hash.digest(message);
        match self {
            PublicKey::Rsa(key) => key.verify(hash.pkcs1v15(), &digest, signature).is_ok(),
            PublicKey::Ecdsa(key) => p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok()),
        }
    }
}

/// A private key that signs CloudFront policies.
#[derive(Clone)]
pub(crate) enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    Ecdsa(p256::ecdsa::SigningKey),
}

impl PrivateKey {
    pub(crate) fn from_pem(pem: &str) -> Result<PrivateKey, Reason> {
        if pem.len() > MAX_PEM_LEN {
            return Err(Reason::Malformed);
        }
        let pem = pem.trim();
        let rsa =
            RsaPrivateKey::from_pkcs8_pem(pem).or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem));
        if let Ok(key) = rsa {
            rsa_size_ok(key.n().bits())?;
            key.validate().map_err(|_| Reason::Malformed)?;
            return Ok(PrivateKey::Rsa(Box::new(key)));
        }
        p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .or_else(|_| p256::SecretKey::from_sec1_pem(pem).map(Into::into))
            .map(PrivateKey::Ecdsa)
            .map_err(|_| Reason::Malformed)
    }

    /// The signature of `message` under `hash` (RSA PKCS#1 v1.5, or ECDSA in DER).
    pub(crate) fn sign(&self, hash: HashAlgorithm, message: &[u8]) -> Result<Vec<u8>, Reason> {
        let digest = hash.digest(message);
        match self {
            PrivateKey::Rsa(key) => key
                .sign(hash.pkcs1v15(), &digest)
                .map_err(|_| Reason::Malformed),
            PrivateKey::Ecdsa(key) => {
                let sig: p256::ecdsa::Signature =
                    key.sign_prehash(&digest).map_err(|_| Reason::Malformed)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }

    pub(crate) fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Rsa(key) => PublicKey::Rsa(Box::new(key.to_public_key())),
            PrivateKey::Ecdsa(key) => PublicKey::Ecdsa(*key.verifying_key()),
        }
    }

    /// The public half as SPKI PEM (what CloudFront's public-key upload takes).
    pub(crate) fn public_key_pem(&self) -> String {
        let pem = match self {
            PrivateKey::Rsa(key) => key.to_public_key().to_public_key_pem(LineEnding::LF),
            PrivateKey::Ecdsa(key) => key.verifying_key().to_public_key_pem(LineEnding::LF),
        };
        pem.expect("a valid public key always encodes")
    }
}

fn rsa_size_ok(bits: usize) -> Result<(), Reason> {
    if RSA_BITS.contains(&bits) {
        Ok(())
    } else {
        Err(Reason::Malformed)
    }
}
