//! The pluggable step that turns R2 and the ASk into the key protecting `[SK..R1]`.
//!
//! FairPlay's SPC carries R2 in the clear and the session key SK encrypted under
//! `DASk = D(ASk, R2)`. Apple does not publish D: it ships in the FPS deployment package (as
//! source in older Server SDKs, inside Apple's prebuilt crypto library in newer ones). So the
//! key server takes D as a [`SessionKeyDerivation`] trait object and production deployments
//! plug Apple's in.
//!
//! [`DevelopmentDerivation`] is a documented stand-in so everything else (parsing, integrity
//! checks, CKC building, round-trip tests, the benchmark) runs without Apple's package. It is
//! **not Apple's D function**: a real Apple device will never produce an SPC it can open.

use sha2::{Digest, Sha256};

use super::credentials::ASK_LEN;

/// Length of the derived key (AES-128).
pub const DERIVED_KEY_LEN: usize = 16;

/// The derivation failed (e.g. Apple's implementation rejected R2). The message is static and
/// never carries key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("session key derivation failed: {0}")]
pub struct DerivationError(pub &'static str);

/// `DASk = D(ASk, R2)`: derives the AES-128 key that decrypts the SPC's `[SK..R1]` block.
///
/// Implementations must be pure functions of their inputs (the same ASk and R2 always give the
/// same key), fast (it runs once per license request) and must not log their inputs or output.
/// The parser hands over R2 exactly as the SPC carries it (21 bytes in SPC v1/v2).
pub trait SessionKeyDerivation: Send + Sync {
    fn derive(
        &self,
        ask: &[u8; ASK_LEN],
        r2: &[u8],
    ) -> Result<[u8; DERIVED_KEY_LEN], DerivationError>;
}

/// Development stand-in for Apple's D function. **Not Apple's; never use it in production.**
///
/// `DASk = SHA-256("streaming-edge/fairplay/development-derivation/v1" || ASk || R2)[..16]`.
/// Test devices (`device::DeviceRequest`) use the same function, so SPCs they build round-trip.
#[derive(Debug, Clone, Copy, Default)]
pub struct DevelopmentDerivation;

impl SessionKeyDerivation for DevelopmentDerivation {
    fn derive(
        &self,
        ask: &[u8; ASK_LEN],
        r2: &[u8],
    ) -> Result<[u8; DERIVED_KEY_LEN], DerivationError> {
        if r2.is_empty() {
            return Err(DerivationError("R2 is empty"));
        }
        let digest = Sha256::new()
            .chain_update(b"streaming-edge/fairplay/development-derivation/v1")
            .chain_update(ask)
            .chain_update(r2)
            .finalize();
        let mut key = [0u8; DERIVED_KEY_LEN];
        key.copy_from_slice(&digest[..DERIVED_KEY_LEN]);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_derivation_depends_on_both_inputs() {
        let d = DevelopmentDerivation;
        let base = d.derive(&[1; 16], &[2; 21]).unwrap();
        assert_eq!(base, d.derive(&[1; 16], &[2; 21]).unwrap());
        assert_ne!(base, d.derive(&[9; 16], &[2; 21]).unwrap());
        assert_ne!(base, d.derive(&[1; 16], &[3; 21]).unwrap());
        assert_eq!(d.derive(&[1; 16], &[]), Err(DerivationError("R2 is empty")));
    }

    #[test]
    fn trait_objects_are_shareable() {
        fn assert_send_sync<T: Send + Sync + ?Sized>() {}
        assert_send_sync::<dyn SessionKeyDerivation>();
        let boxed: Box<dyn SessionKeyDerivation> = Box::new(DevelopmentDerivation);
        assert!(boxed.derive(&[0; 16], &[0; 21]).is_ok());
    }
}
