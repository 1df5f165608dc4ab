//! Signed-URL tokens arrive in query strings: any query must give a verdict, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::token::{query_param, query_without, UrlSigner};

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        let token = query_param(Some(query), "token").unwrap_or(query);
        let signer = UrlSigner::new(b"fuzz-key");
        let _ = signer.verify(token, "/hls/video/master.m3u8", 1_700_000_000);
        if let Some(rest) = query_without(Some(query), "token") {
            assert_eq!(query_param(Some(&rest), "token"), None);
        }
    }
});
