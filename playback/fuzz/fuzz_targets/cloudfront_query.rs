//! CloudFront signed-URL query strings: any query must give a verdict, never a panic, and
//! stripping the signing parameters leaves none behind.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::token::cloudfront::{
    params_from_query, query_without_params, CloudFrontVerifier, QUERY_PARAMS,
};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(rest) = query_without_params(Some(query)) {
        for name in QUERY_PARAMS {
            assert_eq!(playback::token::query_param(Some(&rest), name), None);
        }
    }
    if let Some(params) = params_from_query(query) {
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
        let url = "https://d111111abcdef8.cloudfront.net/hls/v/master.m3u8";
        let ip = Some("203.0.113.7".parse().unwrap());
        let _ = verifier.verify(&params, url, ip, 1_700_000_000);
    }
});
