//! Viewer JWTs arrive in headers and query strings: any bytes must give a verdict, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::jwt::{Hs256Verifier, JwtRules};

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let verifier = Hs256Verifier::new(
            b"fuzz-secret",
            JwtRules { issuer: "i".into(), audience: "a".into(), leeway_secs: 30 },
        );
        let _ = verifier.verify(token, 1_700_000_000);
    }
});
