//! EdgeAuth tokens arrive in query strings and cookies: any bytes must give a verdict, never a
//! panic, under several configurations; escaping round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::token::edgeauth::{
    escape_early, unescape_early, Algorithm, EdgeAuth, EdgeAuthConfig, RequestFacts,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let plain = EdgeAuth::new(EdgeAuthConfig::new(b"fuzz-key".to_vec()));
    let escaped = EdgeAuth::new(EdgeAuthConfig {
        algorithm: Algorithm::Md5,
        field_delimiter: ',',
        acl_delimiter: ';',
        escape_early: true,
        ..EdgeAuthConfig::new(b"fuzz-key".to_vec())
    })
    .with_salt(Some("salt".into()));
    let request = RequestFacts {
        path: "/hls/video/seg_001.ts",
        client_ip: Some("2001:db8::1".parse().unwrap()),
        now_unix: 1_700_000_000,
    };
    let token = plain.token_from_query(Some(text)).unwrap_or(text);
    let _ = plain.verify(token, &request);
    let _ = escaped.verify(text, &request);
    assert_eq!(unescape_early(&escape_early(text)).as_deref(), Some(text));
    let _ = unescape_early(text);
});
