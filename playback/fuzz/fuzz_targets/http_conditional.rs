//! Conditional and range headers (the directory origin, CDN playlists): any header lines must
//! give an answer, never a panic, and a partial answer always lies inside the file.
#![no_main]
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use playback::conditional::{evaluate, if_none_match_holds, parse_range, Decision, Validators};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    // Lengths of 0..=2^40 bytes, so empty, tiny and huge files are all reached.
    let len = u64::from_le_bytes(data[..8].try_into().unwrap()) % (1 << 40);
    let mut headers = HeaderMap::new();
    for line in data[8..].split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let validators = Validators {
        etag: "\"5f3a-1000\"",
        last_modified: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for method in [Method::GET, Method::HEAD, Method::POST] {
        if let Decision::Partial { start, end } = evaluate(&method, &headers, len, &validators, now)
        {
            assert!(start <= end && end < len, "{start}-{end} of {len}");
        }
    }
    let _ = if_none_match_holds(&headers, validators.etag);
    if let Ok(text) = std::str::from_utf8(&data[8..]) {
        if let Decision::Partial { start, end } = parse_range(text, len) {
            assert!(start <= end && end < len, "{start}-{end} of {len}");
        }
    }
});
