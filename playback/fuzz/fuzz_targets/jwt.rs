//! Viewer JWTs arrive in headers and query strings: any bytes must give a verdict, never a
//! panic, against a ring holding one key of every algorithm (named and unnamed).
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use playback::jwt::{Algorithm, JwtRules, JwtVerifier, KeyRing, VerificationKey};

const RSA: &str = include_str!("../../tests/fixtures/jwt/rsa-2048-a.pub.pem");
const P256: &str = include_str!("../../tests/fixtures/jwt/p256.pub.pem");
const ED25519: &str = include_str!("../../tests/fixtures/jwt/ed25519.pub.pem");

fn verifier() -> &'static JwtVerifier {
    static VERIFIER: OnceLock<JwtVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let mut ring = KeyRing::new();
        ring.push(VerificationKey::hs256(b"fuzz-secret").unwrap()).unwrap();
        for (alg, pem, kid) in [
            (Algorithm::Rs256, RSA, "rsa"),
            (Algorithm::Es256, P256, "ec"),
            (Algorithm::EdDsa, ED25519, "ed"),
        ] {
            let key = VerificationKey::from_public_pem(alg, pem).unwrap();
            ring.push(key.clone().with_kid(kid).unwrap()).unwrap();
            ring.push(key).unwrap();
        }
        let rules = JwtRules { issuer: "i".into(), audience: "a".into(), leeway_secs: 30 };
        JwtVerifier::new(ring, rules)
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = verifier().verify(token, 1_700_000_000);
        let _ = playback::jwt::parse_header(token, 8192);
    }
});
