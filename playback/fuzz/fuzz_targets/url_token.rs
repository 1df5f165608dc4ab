//! Edge tokens arrive in query strings, path segments and cookies: any input must give a
//! verdict (EdgeAuth, then the session layer), never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::token::edgeauth::{EdgeAuth, EdgeAuthConfig, RequestFacts};
use playback::token::session::{denial_detail, raw_fields, unescape_segment, SessionSigner};
use playback::token::{query_param, query_without};

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        let token = query_param(Some(query), "hdnts").unwrap_or(query);
        let signer = SessionSigner::new(EdgeAuth::new(EdgeAuthConfig::new(b"fuzz-key".to_vec())));
        let facts = RequestFacts {
            path: "/hls/video/master.m3u8",
            client_ip: Some([203, 0, 113, 7].into()),
            now_unix: 1_700_000_000,
        };
        if let Err(reason) = signer.verify(token, &facts) {
            let _ = denial_detail(reason, token, '~', &facts);
        }
        let _ = raw_fields(token, '~');
        let _ = unescape_segment(token);
        if let Some(rest) = query_without(Some(query), "hdnts") {
            assert_eq!(query_param(Some(&rest), "hdnts"), None);
        }
    }
});
