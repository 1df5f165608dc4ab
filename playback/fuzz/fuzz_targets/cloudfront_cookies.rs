//! CloudFront signed cookies: any `Cookie` header must give a verdict, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::token::cloudfront::{params_from_cookies, CloudFrontVerifier};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(params) = params_from_cookies(header) {
        let mut verifier = CloudFrontVerifier::new();
        verifier
            .add_public_key_pem(
                "KRSA",
                include_str!("../../src/token/cloudfront/testdata/rsa2048.pub.pem"),
            )
            .unwrap();
        verifier
            .add_public_key_pem(
                "KEC",
                include_str!("../../src/token/cloudfront/testdata/p256.pub.pem"),
            )
            .unwrap();
        let url = "https://d111111abcdef8.cloudfront.net/hls/v/seg_001.ts";
        let _ = verifier.verify(&params, url, None, 1_700_000_000);
    }
});
