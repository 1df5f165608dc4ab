//! Signed-URL tokens arrive in query strings: any bytes must give a verdict, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::token::UrlSigner;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let signer = UrlSigner::new(b"fuzz-key");
        let _ = signer.verify(token, "/hls/video/master.m3u8", 1_700_000_000);
    }
});
