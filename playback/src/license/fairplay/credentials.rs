//! FairPlay Streaming credentials: the FPS certificate, its RSA private key and the ASk.
//!
//! Apple issues all three in the FPS deployment package. The certificate is public (players fetch
//! it from `GET /fps/certificate` and wrap the SPC key to it); the private key and the
//! Application Secret Key (ASk) are secrets and never appear in `Debug` output or errors.
//!
//! The crate reads no files: the edge reads them and passes the contents here.

use std::fmt;

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha1::{Digest, Sha1};

/// Length of the Application Secret Key.
pub const ASK_LEN: usize = 16;
/// Largest certificate accepted; FPS certificates are around 1 KiB.
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

/// Why credentials were refused. Never includes key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("the FPS private key is not an RSA private key in PKCS#1 or PKCS#8 PEM")]
    PrivateKey,
    #[error("the FPS private key has {0} bits; FairPlay uses 1024 (SPC v1) or 2048 (SPC v2)")]
    KeySize(usize),
    #[error("the FPS certificate is not a DER certificate of at most 16 KiB")]
    Certificate,
    #[error("the FPS certificate does not carry the private key's public key")]
    KeyMismatch,
    #[error("the ASk is not 32 hexadecimal characters")]
    Ask,
}

/// The key server's FairPlay identity. Build once at start-up and share (`Arc`).
#[derive(Clone)]
pub struct FairPlayCredentials {
    private_key: RsaPrivateKey,
    certificate_der: Vec<u8>,
    certificate_sha1: [u8; 20],
    ask: [u8; ASK_LEN],
}

impl FairPlayCredentials {
    /// Loads the private key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY` PEM), the
    /// certificate (DER, as Apple ships it) and the ASk.
    ///
    /// Checks that the key has a FairPlay size and that the certificate carries its public key
    /// (by finding the modulus in the DER, which needs no X.509 parser), so a mismatched pair
    /// fails at start-up instead of on every license request.
    pub fn from_pem_and_der(
        private_key_pem: &str,
        certificate_der: &[u8],
        ask: [u8; ASK_LEN],
    ) -> Result<FairPlayCredentials, CredentialsError> {
        let private_key = RsaPrivateKey::from_pkcs1_pem(private_key_pem)
            .or_else(|_| RsaPrivateKey::from_pkcs8_pem(private_key_pem))
            .map_err(|_| CredentialsError::PrivateKey)?;
        let bits = private_key.size() * 8;
        if bits != 1024 && bits != 2048 {
            return Err(CredentialsError::KeySize(bits));
        }
        if certificate_der.is_empty()
            || certificate_der.len() > MAX_CERTIFICATE_BYTES
            || certificate_der.first() != Some(&0x30)
        {
            return Err(CredentialsError::Certificate);
        }
        let modulus = private_key.n().to_bytes_be();
        if !certificate_der
            .windows(modulus.len())
            .any(|window| window == modulus.as_slice())
        {
            return Err(CredentialsError::KeyMismatch);
        }
        Ok(FairPlayCredentials {
            certificate_sha1: Sha1::digest(certificate_der).into(),
            certificate_der: certificate_der.to_vec(),
            private_key,
            ask,
        })
    }

    /// Parses an ASk written as 32 hex characters (surrounding whitespace ignored), the form the
    /// deployment package and `drm.fairplay.ask_file` use.
    pub fn parse_ask_hex(text: &str) -> Result<[u8; ASK_LEN], CredentialsError> {
        let mut ask = [0u8; ASK_LEN];
        hex::decode_to_slice(text.trim(), &mut ask).map_err(|_| CredentialsError::Ask)?;
        Ok(ask)
    }

    /// The certificate DER, served as is by `GET /fps/certificate`.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate_der
    }

    /// SHA-1 of the certificate DER: the value every SPC names its certificate by.
    pub fn certificate_sha1(&self) -> [u8; 20] {
        self.certificate_sha1
    }

    /// RSA modulus size in bytes: 128 (SPC v1) or 256 (SPC v2).
    pub fn key_len(&self) -> usize {
        self.private_key.size()
    }

    /// The certificate's public key (what a device wraps the SPC key with).
    pub fn public_key(&self) -> RsaPublicKey {
        self.private_key.to_public_key()
    }

    pub(crate) fn private_key(&self) -> &RsaPrivateKey {
        &self.private_key
    }

    pub(crate) fn ask(&self) -> &[u8; ASK_LEN] {
        &self.ask
    }
}

impl fmt::Debug for FairPlayCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FairPlayCredentials")
            .field("certificate_sha1", &hex::encode(self.certificate_sha1))
            .field("key_bits", &(self.private_key.size() * 8))
            .field("private_key", &"<redacted>")
            .field("ask", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::license::fairplay::device::{
        test_credentials, test_credentials_2048, TEST_ASK,
        TEST_CERTIFICATE_1024_DER as CERT_1024_DER, TEST_CERTIFICATE_2048_DER as CERT_2048_DER,
        TEST_PRIVATE_KEY_1024_PEM as KEY_1024_PEM, TEST_PRIVATE_KEY_2048_PEM as KEY_2048_PEM,
    };

    #[test]
    fn loads_pkcs1_and_pkcs8_keys_with_their_certificates() {
        assert!(KEY_1024_PEM.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert!(KEY_2048_PEM.starts_with("-----BEGIN PRIVATE KEY-----"));
        let small = test_credentials();
        assert_eq!(small.key_len(), 128);
        assert_eq!(small.certificate(), CERT_1024_DER);
        assert_eq!(
            small.certificate_sha1(),
            <[u8; 20]>::from(Sha1::digest(CERT_1024_DER))
        );
        assert_eq!(test_credentials_2048().key_len(), 256);
    }

    #[test]
    fn refuses_mismatched_or_malformed_inputs() {
        assert_eq!(
            FairPlayCredentials::from_pem_and_der(KEY_1024_PEM, CERT_2048_DER, TEST_ASK)
                .unwrap_err(),
            CredentialsError::KeyMismatch
        );
        assert_eq!(
            FairPlayCredentials::from_pem_and_der("not a key", CERT_1024_DER, TEST_ASK)
                .unwrap_err(),
            CredentialsError::PrivateKey
        );
        assert_eq!(
            FairPlayCredentials::from_pem_and_der(KEY_1024_PEM, b"", TEST_ASK).unwrap_err(),
            CredentialsError::Certificate
        );
        assert_eq!(
            FairPlayCredentials::from_pem_and_der(KEY_1024_PEM, b"-----BEGIN", TEST_ASK)
                .unwrap_err(),
            CredentialsError::Certificate
        );
    }

    #[test]
    fn ask_hex_parses_strictly() {
        assert_eq!(
            FairPlayCredentials::parse_ask_hex(" 000102030405060708090a0b0c0d0e0f\n").unwrap(),
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        );
        for bad in [
            "",
            "00",
            "zz0102030405060708090a0b0c0d0e0f",
            &"00".repeat(17),
        ] {
            assert_eq!(
                FairPlayCredentials::parse_ask_hex(bad),
                Err(CredentialsError::Ask),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let shown = format!("{:?}", test_credentials());
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains("key_bits: 1024"));
        assert!(!shown.contains("test-only-ask"));
        assert!(!shown.contains(&format!("{:?}", TEST_ASK)));
    }
}
