//! Origin MPDs are outside bytes: rewriting must never panic, the `SegmentURL` fast path must
//! give what the event parser gives in every mode, and a rewrite that has nothing to change
//! (cookie mode, no license URLs, a directory origin, no URL under the title's path and no
//! MPD-level `BaseURL`/`Location`) must give the input back byte for byte.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback::dash::{mpd_facts, rewrite_mpd, rewrite_mpd_event_by_event, LicenseUrls, MpdContext};
use playback::hls::Stamp;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        let licenses = LicenseUrls {
            widevine: "https://e/drm/widevine/v?hdnts=t",
            playready: "https://e/drm/playready/v?hdnts=t",
            clearkey: "https://e/drm/clearkey/v?hdnts=t",
        };
        let ctx = MpdContext {
            video_id: "v",
            mpd_path: "/hls/v/manifest.mpd",
            origin_prefix: Some("http://origin/media/v/"),
            token_name: "hdnts",
            stamp: Stamp::Query("exp=1~acl=/hls/v/*~hmac=00"),
            licenses: Some(licenses),
        };
        assert_eq!(rewrite_mpd(input, &ctx), rewrite_mpd_event_by_event(input, &ctx));
        let _ = mpd_facts(input);
        let segment = MpdContext {
            stamp: Stamp::PathSegment("exp=1~acl=%2Fhls%2Fv%2F*~hmac=00"),
            ..ctx
        };
        assert_eq!(
            rewrite_mpd(input, &segment),
            rewrite_mpd_event_by_event(input, &segment)
        );
        let untouched = MpdContext {
            origin_prefix: None,
            stamp: Stamp::Nothing,
            licenses: None,
            ..ctx
        };
        let owns_nothing = !["/hls/", "BaseURL", "Location"]
            .iter()
            .any(|s| input.contains(s));
        if let Ok(out) = rewrite_mpd(input, &untouched) {
            if owns_nothing && !out.contains("<Location>/hls/v/manifest.mpd</Location>") {
                assert_eq!(out, input);
            }
        }
    }
});
