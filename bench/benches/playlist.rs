//! What rewriting one long media playlist costs per viewer: `playback::hls::rewrite_playlist` on
//! a 10,000-segment VOD playlist (AES-128 key tag, relative segment URIs, about 17 hours
//! at 6 s), once per way the edge stamps its session token (query, path segment, cookie).
//!
//! The token is a real session token minted with `SessionSigner` and a random key, so its length
//! is what the edge puts on every URI. Run with `cargo bench -p bench --bench playlist`; the
//! method and the latest figures are in `bench/README.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use playback::hls::{rewrite_playlist, RewriteContext, Stamp};
use playback::token::session::escape_segment;

const VIDEO: &str = "0b6f2a8e-3c1d-4e5f-9a7b-112233445566";
const PLAYLIST_PATH: &str = "/hls/0b6f2a8e-3c1d-4e5f-9a7b-112233445566/720p/index.m3u8";
const SEGMENTS: usize = 10_000;

/// A VOD media playlist as ffmpeg writes it for an AES-128 rendition.
fn media_playlist(segments: usize) -> String {
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n\
         #EXT-X-KEY:METHOD=AES-128,URI=\"key-3f1c2a9e-5b7d-4c1e-9a2b-8d6f0e4c3b21\",\
         IV=0x00000000000000000000000000000001\n",
    );
    for index in 0..segments {
        playlist.push_str(&format!("#EXTINF:6.006000,\nseg_{index:05}.ts\n"));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    playlist
}

fn rewrite(c: &mut Criterion) {
    let input = media_playlist(SEGMENTS);
    let token = bench::session_token(VIDEO);
    let escaped = escape_segment(&token);
    let stamps = [
        ("query", Stamp::Query(&token)),
        ("path_segment", Stamp::PathSegment(&escaped)),
        ("cookie", Stamp::Nothing),
    ];
    let mut group = c.benchmark_group("playlist_rewrite/10000_segments");
    group.throughput(Throughput::Bytes(input.len() as u64));
    for (name, stamp) in stamps {
        let context = RewriteContext {
            video_id: VIDEO,
            playlist_path: PLAYLIST_PATH,
            origin_prefix: None,
            token_name: "hdnts",
            stamp,
        };
        // The case measures what it claims: every segment URI rewritten, the key pointed at the
        // edge's key endpoint.
        let output = rewrite_playlist(&input, &context).expect("a playlist");
        let segment_lines = output.lines().filter(|l| l.starts_with("/hls/")).count();
        assert_eq!(segment_lines, SEGMENTS, "{name}");
        assert!(output.contains("URI=\"/keys/"), "{name}");
        if let Stamp::Query(token) = stamp {
            assert_eq!(output.matches(token).count(), SEGMENTS + 1, "{name}");
        }
        group.bench_function(name, |b| {
            b.iter(|| rewrite_playlist(black_box(&input), black_box(&context)))
        });
    }
    group.finish();
}

criterion_group!(benches, rewrite);
criterion_main!(benches);
