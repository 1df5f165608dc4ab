//! What rewriting one MPD costs per viewer: `playback::dash::rewrite_mpd` on the two shapes a
//! long title takes, once per way the edge stamps its session token (query, path segment,
//! cookie), with the edge's license URLs injected into four `ContentProtection` elements.
//!
//! - a two-hour `SegmentTimeline` MPD as Shaka Packager writes it (three video
//!   representations and audio, one `<S>` per 4 s segment: 1,800 per representation);
//! - a `SegmentList` MPD of 10,000 `SegmentURL`s (one representation, every URL rewritten).
//!
//! The token is a real session token minted with `SessionSigner` and a random key. Run with
//! `cargo bench -p bench --bench mpd`; the method and the latest figures are in
//! `bench/README.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use playback::dash::{rewrite_mpd, LicenseUrls, MpdContext};
use playback::hls::Stamp;
use playback::token::session::escape_segment;

const VIDEO: &str = "0b6f2a8e-3c1d-4e5f-9a7b-112233445566";
const MPD_PATH: &str = "/hls/0b6f2a8e-3c1d-4e5f-9a7b-112233445566/manifest.mpd";
const TIMELINE_SEGMENTS: usize = 1_800;
const LIST_SEGMENTS: usize = 10_000;

const PROTECTION: &str = r#"      <ContentProtection value="cbcs" schemeIdUri="urn:mpeg:dash:mp4protection:2011" cenc:default_KID="52063cac-8a20-4c55-97b4-e6555b2faaa0"/>
      <ContentProtection schemeIdUri="urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b">
        <cenc:pssh>AAAANHBzc2gBAAAAEHfv7MCyTQKs4zweUuL7SwAAAAFSBjysiiBMVZe05lVbL6qgAAAAAA==</cenc:pssh>
      </ContentProtection>
      <ContentProtection value="MSPR 2.0" schemeIdUri="urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95">
        <cenc:pssh>AAAB</cenc:pssh>
        <mspr:pro>AAAC</mspr:pro>
      </ContentProtection>
      <ContentProtection schemeIdUri="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed">
        <cenc:pssh>AAAAOHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABgSEFIGPKyKIExVl7TmVVsvqqBI88aJmwY=</cenc:pssh>
      </ContentProtection>
"#;

fn header(duration: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:cenc="urn:mpeg:cenc:2013" xmlns:mspr="urn:microsoft:playready" profiles="urn:mpeg:dash:profile:isoff-live:2011" minBufferTime="PT2S" type="static" mediaPresentationDuration="{duration}">
  <Period id="0">
"#
    )
}

/// A two-hour title: 1080/720/480 video and audio, each with a 1,800-entry timeline (no `r`
/// run-length, as a packager writes it when segment durations vary).
fn timeline_mpd() -> String {
    let mut mpd = header("PT2H0M0S");
    for (set, (name, kind, height)) in [
        ("1080p", "video", 1080),
        ("720p", "video", 720),
        ("480p", "video", 480),
        ("audio", "audio", 0),
    ]
    .into_iter()
    .enumerate()
    {
        mpd.push_str(&format!(
            "    <AdaptationSet id=\"{set}\" contentType=\"{kind}\">\n"
        ));
        mpd.push_str(PROTECTION);
        mpd.push_str(&format!(
            "      <Representation id=\"{set}\" bandwidth=\"{}\" height=\"{height}\">\n        <SegmentTemplate timescale=\"90000\" initialization=\"{name}/init.mp4\" media=\"{name}/seg_$Number%05d$.m4s\" startNumber=\"1\">\n          <SegmentTimeline>\n",
            1_000_000 + set
        ));
        for i in 0..TIMELINE_SEGMENTS {
            let d = if i % 2 == 0 { 360_000 } else { 359_999 };
            mpd.push_str(&format!(
                "            <S t=\"{}\" d=\"{d}\"/>\n",
                i * 360_000
            ));
        }
        mpd.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n    </AdaptationSet>\n");
    }
    mpd.push_str("  </Period>\n</MPD>\n");
    mpd
}

/// One representation with 10,000 `SegmentURL`s (SegmentList addressing).
fn segment_list_mpd() -> String {
    let mut mpd = header("PT11H6M40S");
    mpd.push_str("    <AdaptationSet id=\"0\" contentType=\"video\">\n");
    mpd.push_str(PROTECTION);
    mpd.push_str("      <Representation id=\"720p\" bandwidth=\"2500000\">\n        <SegmentList timescale=\"1\" duration=\"4\">\n          <Initialization sourceURL=\"720p/init.mp4\"/>\n");
    for i in 1..=LIST_SEGMENTS {
        mpd.push_str(&format!(
            "          <SegmentURL media=\"720p/seg_{i:05}.m4s\"/>\n"
        ));
    }
    mpd.push_str("        </SegmentList>\n      </Representation>\n    </AdaptationSet>\n  </Period>\n</MPD>\n");
    mpd
}

fn rewrite(c: &mut Criterion) {
    let token = bench::session_token(VIDEO);
    let escaped = escape_segment(&token);
    let license = |system: &str| format!("https://edge.example/drm/{system}/{VIDEO}?hdnts={token}");
    let (widevine, playready, clearkey) = (
        license("widevine"),
        license("playready"),
        license("clearkey"),
    );
    let licenses = LicenseUrls {
        widevine: &widevine,
        playready: &playready,
        clearkey: &clearkey,
    };
    for (shape, input, urls) in [
        ("timeline_2h", timeline_mpd(), 8),
        ("segment_list_10000", segment_list_mpd(), LIST_SEGMENTS + 1),
    ] {
        let mut group = c.benchmark_group(format!("mpd_rewrite/{shape}"));
        group.throughput(Throughput::Bytes(input.len() as u64));
        for (name, stamp) in [
            ("query", Stamp::Query(&token)),
            ("path_segment", Stamp::PathSegment(&escaped)),
            ("cookie", Stamp::Nothing),
        ] {
            let context = MpdContext {
                video_id: VIDEO,
                mpd_path: MPD_PATH,
                origin_prefix: None,
                token_name: "hdnts",
                stamp,
                licenses: Some(licenses),
            };
            // The case measures what it claims: every segment URL carries the token (query
            // mode), every DRM system names the edge's license URL (Widevine, PlayReady, the
            // common system and the DASH-IF ClearKey element added beside it).
            let output = rewrite_mpd(&input, &context).expect("an MPD");
            let sets = output.matches("<AdaptationSet").count();
            assert_eq!(
                output.matches("</dashif:Laurl>").count(),
                4 * sets,
                "{shape} {name}"
            );
            if let Stamp::Query(token) = stamp {
                let stamped = |ext: &str| output.matches(&format!("{ext}?hdnts={token}\"")).count();
                assert_eq!(stamped(".mp4") + stamped(".m4s"), urls, "{shape}");
            }
            group.bench_function(name, |b| {
                b.iter(|| rewrite_mpd(black_box(&input), black_box(&context)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, rewrite);
criterion_main!(benches);
