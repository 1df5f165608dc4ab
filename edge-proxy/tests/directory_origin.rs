//! The edge with a directory origin: signed HLS end to end, refusals, path safety, and
//! segments served like a file server (ranges, conditional requests, HEAD, large files).

mod common;

use common::scenarios;
use common::*;
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_origin() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let edge = Edge::start(OriginSetup::Directory(&media.root));

    scenarios::signed_hls_round_trip(&edge, &media).await;
    scenarios::refusals_and_ops(&edge).await;
    scenarios::path_attacks(&edge);
    scenarios::cors(&edge).await;

    // A symlink inside the title that points outside the origin root is never followed.
    let r = edge.raw_get(&format!("/hls/{VIDEO}/720p/leak.ts?hdnts={}", edge.token()));
    assert_eq!(r.status, 404, "{}", r.head);
    assert!(!String::from_utf8_lossy(&r.body).contains(SECRET_CONTENT));

    scenarios::logs_hold_no_tokens(&edge);
}

/// The directory origin's chunk size (edge-proxy's `reply::FILE_CHUNK`, 256 KiB).
const CHUNK: usize = 256 * 1024;

#[test]
fn segments_are_served_like_a_file_server() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let edge = Edge::start(OriginSetup::Directory(&media.root));
    let token = edge.token();
    let big = format!("/hls/{VIDEO}/720p/seg_000.ts?hdnts={token}");
    let small = format!("/hls/{VIDEO}/720p/seg_001.ts?hdnts={token}");
    let big_bytes = media.file("720p/seg_000.ts");
    let small_bytes = media.file("720p/seg_001.ts");
    assert!(big_bytes.len() > 1024 * 1024 + 2 * CHUNK);
    let get = |target: &str, headers: &str| edge.raw_get_with(target, headers);

    // The whole large file, streamed in chunks: every byte, nothing more.
    let r = get(&big, "");
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body.len(), big_bytes.len());
    assert_eq!(Sha256::digest(&r.body), Sha256::digest(&big_bytes));
    assert_eq!(one(&r, "content-length"), big_bytes.len().to_string());
    assert_eq!(one(&r, "accept-ranges"), "bytes");
    assert_eq!(one(&r, "content-type"), "video/mp2t");
    let etag = one(&r, "etag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let last_modified = one(&r, "last-modified");
    assert!(last_modified.ends_with(" GMT"), "{last_modified}");
    assert!(r.headers("content-range").is_empty());

    // The three range forms, on the streamed file and the one read whole.
    for (target, bytes) in [(&big, &big_bytes), (&small, &small_bytes)] {
        let len = bytes.len();
        for (range, start, end) in [
            ("bytes=3-9", 3, 9),
            ("bytes=5-", 5, len - 1),
            ("bytes=-7", len - 7, len - 1),
            // Past the end is clamped to the last byte.
            (
                &*format!("bytes={}-{}", len - 2, len + 100),
                len - 2,
                len - 1,
            ),
        ] {
            let r = get(target, &format!("Range: {range}\r\n"));
            assert_eq!(r.status, 206, "{range}: {}", r.head);
            assert_eq!(r.body, &bytes[start..=end], "{range}");
            assert_eq!(
                one(&r, "content-range"),
                format!("bytes {start}-{end}/{len}")
            );
            assert_eq!(one(&r, "content-length"), (end - start + 1).to_string());
            assert_eq!(one(&r, "etag"), one(&get(target, ""), "etag"));
        }
    }

    // Ranges across chunk boundaries of the streamed file: two boundaries, and one starting
    // exactly on a boundary and ending just after the next.
    for (start, end) in [(CHUNK - 100, 2 * CHUNK + 100), (CHUNK, 2 * CHUNK)] {
        let r = get(&big, &format!("Range: bytes={start}-{end}\r\n"));
        assert_eq!(r.status, 206, "{}", r.head);
        assert_eq!(
            Sha256::digest(&r.body),
            Sha256::digest(&big_bytes[start..=end])
        );
    }
    // The tail of the streamed file, a last chunk shorter than the others.
    let tail = big_bytes.len() - (big_bytes.len() % CHUNK) - 1;
    let r = get(&big, &format!("Range: bytes={tail}-\r\n"));
    assert_eq!(r.status, 206, "{}", r.head);
    assert_eq!(r.body, &big_bytes[tail..]);

    // Unsatisfiable: 416 naming the length.
    for target in [&big, &small] {
        let len = if target == &big {
            big_bytes.len()
        } else {
            small_bytes.len()
        };
        let r = get(target, &format!("Range: bytes={len}-\r\n"));
        assert_eq!(r.status, 416, "{}", r.head);
        assert_eq!(one(&r, "content-range"), format!("bytes */{len}"));
    }

    // Several ranges, or a malformed one: the whole file (RFC 9110 lets a server ignore Range).
    for range in ["bytes=0-1,4-5", "bytes=9-3", "pages=1-2"] {
        let r = get(&small, &format!("Range: {range}\r\n"));
        assert_eq!(r.status, 200, "{range}: {}", r.head);
        assert_eq!(r.body, small_bytes);
    }
    let absurd = format!("Range: bytes=0-{}\r\n", "9".repeat(4000));
    let r = get(&small, &absurd);
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body, small_bytes);

    // Conditional requests: 304 with the validators and no body.
    let r = get(&big, &format!("If-None-Match: \"other\", {etag}\r\n"));
    assert_eq!(r.status, 304, "{}", r.head);
    assert!(r.body.is_empty());
    assert_eq!(one(&r, "etag"), etag);
    assert_eq!(one(&r, "last-modified"), last_modified);
    assert!(r.headers("content-length").is_empty(), "{}", r.head);
    let r = get(
        &big,
        &format!("If-None-Match: W/{etag}\r\nRange: bytes=0-1\r\n"),
    );
    assert_eq!(r.status, 304, "{}", r.head);
    let r = get(&big, &format!("If-Modified-Since: {last_modified}\r\n"));
    assert_eq!(r.status, 304, "{}", r.head);
    assert!(r.body.is_empty());
    // If-None-Match takes precedence: another tag with a current date is a full answer.
    let r = get(
        &small,
        &format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {last_modified}\r\n"),
    );
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body, small_bytes);
    let r = get(
        &small,
        "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.head);

    // If-Range: a matching validator keeps the range, a stale one gets the whole file.
    let r = get(&big, &format!("Range: bytes=0-9\r\nIf-Range: {etag}\r\n"));
    assert_eq!(r.status, 206, "{}", r.head);
    assert_eq!(r.body, &big_bytes[..10]);
    let r = get(
        &big,
        &format!("Range: bytes=0-9\r\nIf-Range: {last_modified}\r\n"),
    );
    assert_eq!(r.status, 206, "{}", r.head);
    for stale in ["\"other\"", "Sun, 06 Nov 1994 08:49:37 GMT"] {
        let r = get(&big, &format!("Range: bytes=0-9\r\nIf-Range: {stale}\r\n"));
        assert_eq!(r.status, 200, "{stale}: {}", r.head);
        assert_eq!(Sha256::digest(&r.body), Sha256::digest(&big_bytes));
    }

    // HEAD: the headers and Content-Length a GET gets, no body.
    for (target, range) in [(&big, ""), (&big, "Range: bytes=10-99\r\n"), (&small, "")] {
        let got = get(target, range);
        let head = raw_request(edge.addr, "HEAD", target, range);
        assert_eq!(head.status, got.status, "{}", head.head);
        assert!(head.body.is_empty());
        for name in [
            "content-length",
            "content-range",
            "content-type",
            "accept-ranges",
            "etag",
            "last-modified",
            "cache-control",
        ] {
            assert_eq!(head.headers(name), got.headers(name), "{name}");
        }
    }

    // A changed file gets a new tag: the old one no longer earns a 304.
    std::fs::write(
        media.root.join(VIDEO).join("720p/seg_001.ts"),
        b"new bytes!",
    )
    .unwrap();
    let r = get(
        &small,
        &format!("If-None-Match: {}\r\n", one(&get(&small, ""), "etag")),
    );
    assert_eq!(r.status, 304, "{}", r.head);
    let old_tag = one(&r, "etag");
    std::fs::write(
        media.root.join(VIDEO).join("720p/seg_001.ts"),
        b"newer bytes",
    )
    .unwrap();
    let r = get(&small, &format!("If-None-Match: {old_tag}\r\n"));
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body, b"newer bytes");
    assert_ne!(one(&r, "etag"), old_tag);
}

/// The single value of header `name`.
fn one(r: &RawResponse, name: &str) -> String {
    let values = r.headers(name);
    assert_eq!(values.len(), 1, "{name} in {}", r.head);
    values[0].clone()
}
