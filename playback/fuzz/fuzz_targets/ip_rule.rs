//! IP rules (EdgeAuth `ip`, CloudFront `AWS:SourceIp`): any text must match, not match, or be
//! malformed, never panic; a rule always matches its own address.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::token::ip_matches;

fuzz_target!(|data: &[u8]| {
    let Ok(rule) = std::str::from_utf8(data) else {
        return;
    };
    for client in ["203.0.113.7", "::ffff:203.0.113.7", "2001:db8::1", "::"] {
        let _ = ip_matches(rule, client.parse().unwrap());
    }
    if let Ok(addr) = rule.split('/').next().unwrap_or("").parse() {
        if let Ok(matched) = ip_matches(rule, addr) {
            assert!(matched, "{rule} must contain its own address");
        }
    }
});
