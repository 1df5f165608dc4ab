//! JWKS documents and single JWKs come from the network or operators: any bytes must load or
//! be refused, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::jwt::{KeyRing, VerificationKey};

fuzz_target!(|data: &[u8]| {
    if let Ok((ring, skipped)) = KeyRing::from_jwks(data) {
        assert!(ring.len() + skipped.len() <= playback::jwt::keys::MAX_JWKS_KEYS);
    }
    let _ = VerificationKey::from_jwk(data);
});
