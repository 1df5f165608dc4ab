//! ClearKey license requests come straight from browsers: any bytes must parse or be refused,
//! never panic, and whatever parses must survive a round trip through its JSON form.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::license::clearkey::{parse_request, MAX_KIDS};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = parse_request(data) {
        assert!(!request.kids.is_empty() && request.kids.len() <= MAX_KIDS);
        let again =
            parse_request(request.to_json().as_bytes()).expect("re-serialised request parses");
        assert_eq!(again, request);
    }
});
