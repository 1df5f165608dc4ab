//! Origin playlists are outside bytes: rewriting must never panic, and every line the rewriter
//! does not own must survive.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::hls::{
    first_variant_uri, media_duration_secs, rewrite_playlist, RewriteContext, Stamp,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        let ctx = RewriteContext {
            video_id: "v",
            playlist_path: "/hls/v/720p/index.m3u8",
            origin_prefix: Some("http://origin/media/v/"),
            token_name: "hdnts",
            stamp: Stamp::Query("exp=1~acl=/hls/v/*~hmac=00"),
        };
        let segment = RewriteContext {
            stamp: Stamp::PathSegment("exp=1~acl=%2Fhls%2Fv%2F*~hmac=00"),
            ..ctx
        };
        let _ = rewrite_playlist(input, &segment);
        let _ = first_variant_uri(input);
        let _ = media_duration_secs(input);
        if let Ok(out) = rewrite_playlist(input, &ctx) {
            let comments_in = input.lines().filter(|l| l.starts_with("# ")).count();
            let comments_out = out.lines().filter(|l| l.starts_with("# ")).count();
            assert_eq!(comments_in, comments_out);
        }
    }
});
