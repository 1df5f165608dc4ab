//! Forwarding headers (`X-Forwarded-For`, `Forwarded`) behind trusted proxies: any header text
//! yields an address, never a panic; an untrusted peer is always the client, whatever the
//! header says.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::client_address::{ClientAddressRule, ForwardedHeader};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Up to three header instances, split on a byte the header cannot hold.
    let values: Vec<&str> = text.splitn(3, '\n').collect();
    let trusted = ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"];
    for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
        let rule = ClientAddressRule::new(&trusted, header).unwrap();
        let outsider = "203.0.113.7".parse().unwrap();
        assert_eq!(rule.client_address(outsider, &values), outsider);
        let peer = "10.1.2.3".parse().unwrap();
        let _ = rule.client_address(peer, &values);
    }
});
