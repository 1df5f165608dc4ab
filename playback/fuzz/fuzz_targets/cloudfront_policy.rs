//! CloudFront custom policies (JSON after CloudFront's base64): any bytes must parse or be
//! refused, never panic; a parsed policy serialises back to one that parses to the same terms;
//! the base64 variant round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::token::cloudfront::{url_safe_b64_decode, url_safe_b64_encode, Policy};

fuzz_target!(|data: &[u8]| {
    assert_eq!(
        url_safe_b64_decode(&url_safe_b64_encode(data)).as_deref(),
        Some(data)
    );
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = url_safe_b64_decode(text);
    }
    if let Ok(policy) = Policy::from_json(data) {
        let again = Policy::from_json(policy.to_json().as_bytes());
        if let Ok(again) = again {
            assert_eq!(again.resource, policy.resource);
            assert_eq!(again.date_less_than, policy.date_less_than);
            assert_eq!(again.date_greater_than, policy.date_greater_than);
        }
        let _ = policy.check(
            "https://d111111abcdef8.cloudfront.net/hls/v/master.m3u8",
            Some("2001:db8::1".parse().unwrap()),
            1_700_000_000,
        );
    }
});
