//! The segment cache and CDN origin pull, through the real edge process in front of a
//! scriptable HTTP origin: request coalescing, ranges on cached and uncached objects, 304s,
//! revalidation, stale-if-error, HTTP/1.0 close-delimited origins, origin playlists cached
//! while every viewer's copy is `no-store`, and token-free answers for an authenticated CDN.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// How the test origin answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok = 0,
    /// Every request gets a 500.
    Fail = 1,
    /// Connections are closed without an answer.
    Drop = 2,
}

/// A small HTTP origin on a raw socket, so a test controls framing (HTTP/1.0 close-delimited
/// or HTTP/1.1 with `Content-Length`), delays and failures, and counts what it is asked.
struct Origin {
    url: String,
    files: Arc<Mutex<HashMap<String, Object>>>,
    /// Every request: (target, headers lower-cased).
    requests: Arc<Mutex<Vec<(String, String)>>>,
    mode: Arc<AtomicU8>,
}

#[derive(Clone)]
struct Object {
    body: Vec<u8>,
    cache_control: Option<&'static str>,
    delay: Duration,
}

impl Origin {
    fn start(http10: bool) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/media", listener.local_addr().unwrap());
        let origin = Origin {
            url,
            files: Arc::default(),
            requests: Arc::default(),
            mode: Arc::new(AtomicU8::new(Mode::Ok as u8)),
        };
        let (files, requests, mode) = (
            origin.files.clone(),
            origin.requests.clone(),
            origin.mode.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (files, requests, mode) = (files.clone(), requests.clone(), mode.clone());
                std::thread::spawn(move || serve(stream, http10, &files, &requests, &mode));
            }
        });
        origin
    }

    fn put(&self, relative: &str, body: Vec<u8>, cache_control: Option<&'static str>) {
        self.put_slow(relative, body, cache_control, Duration::ZERO);
    }

    fn put_slow(&self, relative: &str, body: Vec<u8>, cc: Option<&'static str>, delay: Duration) {
        self.files.lock().unwrap().insert(
            format!("/media/{VIDEO}/{relative}"),
            Object {
                body,
                cache_control: cc,
                delay,
            },
        );
    }

    fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// How many requests asked for `relative`, and how many of them were conditional.
    fn asked(&self, relative: &str) -> (usize, usize) {
        let target = format!("/media/{VIDEO}/{relative}");
        let requests = self.requests.lock().unwrap();
        let matching: Vec<_> = requests.iter().filter(|(t, _)| *t == target).collect();
        let conditional = matching
            .iter()
            .filter(|(_, h)| h.contains("if-none-match"))
            .count();
        (matching.len(), conditional)
    }
}

fn etag_of(body: &[u8]) -> String {
    use sha2::Digest;
    format!("\"{}\"", hex::encode(&sha2::Sha256::digest(body)[..8]))
}

fn serve(
    stream: TcpStream,
    http10: bool,
    files: &Mutex<HashMap<String, Object>>,
    requests: &Mutex<Vec<(String, String)>>,
    mode: &AtomicU8,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = String::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        headers.push_str(&header.to_ascii_lowercase());
    }
    requests
        .lock()
        .unwrap()
        .push((target.clone(), headers.clone()));
    let mut stream = stream;
    // Error answers are framed like the rest: by length, or (HTTP/1.0) by the close alone.
    let error = |stream: &mut TcpStream, status: &str, body: &str| {
        let framing = if http10 {
            String::new()
        } else {
            format!("Content-Length: {}\r\n", body.len())
        };
        let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let _ = stream.write_all(
            format!("{version} {status}\r\n{framing}Connection: close\r\n\r\n{body}").as_bytes(),
        );
    };
    match mode.load(Ordering::SeqCst) {
        1 => return error(&mut stream, "500 Internal Server Error", "boom"),
        2 => return,
        _ => {}
    }
    let object = files.lock().unwrap().get(&target).cloned();
    let Some(object) = object else {
        return error(&mut stream, "404 Not Found", "missing at the origin");
    };
    std::thread::sleep(object.delay);
    let etag = etag_of(&object.body);
    let header_value = |name: &str| {
        headers
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
    };
    let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let mut head = String::new();
    let cache_control = object
        .cache_control
        .map(|cc| format!("Cache-Control: {cc}\r\n"))
        .unwrap_or_default();
    if header_value("if-none-match").is_some_and(|v| v.contains(&etag)) {
        head.push_str(&format!(
            "{version} 304 Not Modified\r\nETag: {etag}\r\n{cache_control}Connection: close\r\n\r\n"
        ));
        let _ = stream.write_all(head.as_bytes());
        return;
    }
    let (status, body, range_header) = match header_value("range")
        .and_then(|r| r.strip_prefix("bytes=").map(str::to_string))
        .and_then(|r| {
            let (a, b) = r.split_once('-')?;
            Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?))
        }) {
        Some((start, end)) if start <= end && end < object.body.len() => (
            "206 Partial Content",
            object.body[start..=end].to_vec(),
            format!(
                "Content-Range: bytes {start}-{end}/{}\r\n",
                object.body.len()
            ),
        ),
        _ => ("200 OK", object.body.clone(), String::new()),
    };
    let length = if http10 {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    head.push_str(&format!(
        "{version} {status}\r\nContent-Type: application/octet-stream\r\nETag: {etag}\r\n\
         Set-Cookie: origin-session=1\r\n{cache_control}{range_header}{length}Connection: close\r\n\r\n"
    ));
    let _ = stream.write_all(head.as_bytes());
    // Written in pieces, so an HTTP/1.0 body really is delimited by the close alone.
    for chunk in body.chunks(64 * 1024) {
        if stream.write_all(chunk).is_err() {
            return;
        }
    }
    let _ = stream.flush();
    // Read nothing more: closing ends the body for HTTP/1.0.
    let mut sink = [0u8; 1];
    let _ = stream.set_read_timeout(Some(Duration::from_millis(1)));
    let _ = stream.read(&mut sink);
}

/// The body, with chunked framing removed when the edge used it (an origin without a length).
fn dechunked(response: &RawResponse) -> Vec<u8> {
    if !header(response, "transfer-encoding").eq_ignore_ascii_case("chunked") {
        return response.body.clone();
    }
    let mut body = Vec::new();
    let mut rest = &response.body[..];
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&rest[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

const CACHE: &str = "[cache]\nmax_object_bytes = 4194304\nsegment_cache_bytes = 67108864\n";

fn edge_with(origin: &Origin, extra: &str) -> Edge {
    Edge::start_opts(
        OriginSetup::Http(origin.url.clone()),
        &format!("http://127.0.0.1:{}", free_port()),
        &EdgeOptions {
            extra: extra.to_string(),
            ..EdgeOptions::default()
        },
    )
}

fn get(edge: &Edge, relative: &str, headers: &str) -> RawResponse {
    let token = edge.token();
    edge.raw_get_with(&format!("/hls/{VIDEO}/{relative}?hdnts={token}"), headers)
}

fn header(response: &RawResponse, name: &str) -> String {
    response.headers(name).first().cloned().unwrap_or_default()
}

#[test]
fn concurrent_misses_make_one_origin_fetch_and_later_requests_hit() {
    let origin = Origin::start(false);
    let body = pattern(300_000, 1);
    origin.put_slow(
        "720p/seg_001.ts",
        body.clone(),
        None,
        Duration::from_millis(400),
    );
    let edge = edge_with(&origin, CACHE);

    // Twenty viewers, each with their own token, ask at once.
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let token = edge.token_for(VIDEO, now() + 600 + i);
            let addr = edge.addr;
            std::thread::spawn(move || {
                raw_request(
                    addr,
                    "GET",
                    &format!("/hls/{VIDEO}/720p/seg_001.ts?hdnts={token}"),
                    "",
                )
            })
        })
        .collect();
    for thread in threads {
        let response = thread.join().unwrap();
        assert_eq!(response.status, 200, "{}", response.head);
        assert!(
            response.body == body,
            "every viewer gets the origin's bytes"
        );
    }
    assert_eq!(origin.asked("720p/seg_001.ts"), (1, 0), "one origin fetch");

    let hit = get(&edge, "720p/seg_001.ts", "");
    assert_eq!(hit.status, 200);
    assert_eq!(header(&hit, "x-cache-status"), "HIT");
    assert!(hit.body == body);
    assert!(!header(&hit, "age").is_empty(), "{}", hit.head);
    assert_eq!(header(&hit, "etag"), etag_of(&body));
    assert!(
        hit.headers("set-cookie").is_empty(),
        "origin cookies are never passed on"
    );
    let cache_control = header(&hit, "cache-control");
    assert!(
        cache_control.starts_with("private, max-age="),
        "{cache_control}"
    );
    assert!(cache_control.ends_with("immutable"), "{cache_control}");
    assert_eq!(origin.asked("720p/seg_001.ts").0, 1);

    // The token never reached the origin.
    for (target, headers) in origin.requests.lock().unwrap().iter() {
        assert!(!target.contains("hdnts"), "{target}");
        assert!(!headers.contains("hdnts"), "{headers}");
    }
    let metrics = String::from_utf8(edge.raw_get("/metrics").body).unwrap();
    assert!(
        metrics.contains("edge_segment_cache_total{result=\"hit\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edge_segment_cache_objects 1"),
        "{metrics}"
    );
}

#[test]
fn ranges_and_conditional_requests() {
    let origin = Origin::start(false);
    let cached = pattern(200_000, 2);
    let fresh = pattern(150_000, 3);
    // Over cache.max_object_bytes: never stored, streamed through, ranges by the origin.
    let huge = pattern(5 * 1024 * 1024, 4);
    origin.put("720p/a.ts", cached.clone(), None);
    origin.put("720p/b.ts", fresh.clone(), None);
    origin.put("720p/huge.ts", huge.clone(), None);
    let edge = edge_with(&origin, CACHE);

    // A range of a cached object.
    assert_eq!(get(&edge, "720p/a.ts", "").status, 200);
    let part = get(&edge, "720p/a.ts", "Range: bytes=1000-1999\r\n");
    assert_eq!(part.status, 206, "{}", part.head);
    assert_eq!(header(&part, "content-range"), "bytes 1000-1999/200000");
    assert!(part.body == cached[1000..2000]);
    let tail = get(&edge, "720p/a.ts", "Range: bytes=-100\r\n");
    assert_eq!(tail.status, 206);
    assert!(tail.body == cached[cached.len() - 100..]);
    let beyond = get(&edge, "720p/a.ts", "Range: bytes=900000-\r\n");
    assert_eq!(beyond.status, 416, "{}", beyond.head);
    assert_eq!(origin.asked("720p/a.ts").0, 1);

    // A range as the first request: the whole object is fetched and stored, the range served.
    let first = get(&edge, "720p/b.ts", "Range: bytes=10-19\r\n");
    assert_eq!(first.status, 206, "{}", first.head);
    assert!(first.body == fresh[10..20]);
    let whole = get(&edge, "720p/b.ts", "");
    assert_eq!(header(&whole, "x-cache-status"), "HIT");
    assert!(whole.body == fresh);
    assert_eq!(origin.asked("720p/b.ts").0, 1);

    // An object too large to store: the range goes to the origin.
    let far = get(&edge, "720p/huge.ts", "Range: bytes=5000000-5000099\r\n");
    assert_eq!(far.status, 206, "{}", far.head);
    assert!(far.body == huge[5_000_000..5_000_100]);
    let all = get(&edge, "720p/huge.ts", "");
    assert_eq!(all.status, 200);
    assert!(
        all.body == huge,
        "an uncacheable object streams through whole"
    );
    assert_eq!(header(&all, "x-cache-status"), "BYPASS");

    // 304 from the cache for a matching ETag, without asking the origin.
    let etag = etag_of(&cached);
    let not_modified = get(&edge, "720p/a.ts", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(not_modified.status, 304, "{}", not_modified.head);
    assert!(not_modified.body.is_empty());
    let other = get(&edge, "720p/a.ts", "If-None-Match: \"something-else\"\r\n");
    assert_eq!(other.status, 200);
    assert_eq!(origin.asked("720p/a.ts").0, 1);
}

#[test]
fn expired_objects_revalidate_and_stale_ones_answer_while_the_origin_fails() {
    let origin = Origin::start(false);
    let body = pattern(50_000, 5);
    origin.put(
        "720p/live.ts",
        body.clone(),
        Some("max-age=1, stale-if-error=60"),
    );
    origin.put("720p/never.ts", pattern(10, 6), None);
    let edge = edge_with(&origin, CACHE);

    let first = get(&edge, "720p/live.ts", "");
    assert_eq!(header(&first, "x-cache-status"), "MISS");
    let cache_control = header(&first, "cache-control");
    assert!(
        cache_control.starts_with("private, max-age="),
        "{cache_control}"
    );
    assert!(
        !cache_control.contains("immutable"),
        "the origin set a policy: {cache_control}"
    );
    std::thread::sleep(Duration::from_millis(2100));

    // Expired: the edge asks the origin with If-None-Match; its 304 refreshes the copy.
    let revalidated = get(&edge, "720p/live.ts", "");
    assert_eq!(revalidated.status, 200);
    assert_eq!(header(&revalidated, "x-cache-status"), "REVALIDATED");
    assert!(revalidated.body == body);
    assert_eq!(origin.asked("720p/live.ts"), (2, 1));
    std::thread::sleep(Duration::from_millis(2100));

    // Expired again, and the origin fails: the stale copy answers.
    origin.set_mode(Mode::Fail);
    let stale = get(&edge, "720p/live.ts", "");
    assert_eq!(stale.status, 200, "{}", stale.head);
    assert_eq!(header(&stale, "x-cache-status"), "STALE");
    assert!(stale.body == body);
    origin.set_mode(Mode::Drop);
    let stale = get(&edge, "720p/live.ts", "");
    assert_eq!(stale.status, 200, "{}", stale.head);
    assert!(stale.body == body);

    // Nothing stored: the failure shows.
    let missing = get(&edge, "720p/never.ts", "");
    assert_eq!(missing.status, 502, "{}", missing.head);
    assert_eq!(missing.error_code().as_deref(), Some("origin_unavailable"));
    origin.set_mode(Mode::Fail);
    let missing = get(&edge, "720p/never.ts", "");
    assert_eq!(missing.status, 502);
    assert_eq!(missing.error_code().as_deref(), Some("origin_unavailable"));
}

#[test]
fn http10_close_delimited_origins_stream_whole_bodies() {
    let origin = Origin::start(true);
    let big = pattern(BIG_SEGMENT_LEN, 7);
    origin.put("720p/seg_000.ts", big.clone(), None);
    origin.put("720p/seg_002.ts", big.clone(), None);
    for (extra, cached) in [(CACHE, true), ("[cache]\nsegment_cache_bytes = 0\n", false)] {
        let edge = edge_with(&origin, extra);
        let miss = get(&edge, "720p/seg_000.ts", "");
        assert_eq!(miss.status, 200, "{}", miss.head);
        let body = dechunked(&miss);
        assert_eq!(body.len(), big.len());
        assert!(body == big, "HTTP/1.0 body intact (cache on: {cached})");
        std::thread::sleep(Duration::from_millis(300));
        let again = get(&edge, "720p/seg_000.ts", "");
        assert!(dechunked(&again) == big);
        if cached {
            assert_eq!(header(&again, "content-length"), big.len().to_string());
        }
        assert_eq!(
            header(&again, "x-cache-status"),
            if cached { "HIT" } else { "" }
        );
        // Without a Content-Length, a range is served once the whole object is known: from
        // the cache (which fills in the length), or by the origin itself when nothing caches.
        assert!(dechunked(&get(&edge, "720p/seg_002.ts", "")) == big);
        let part = get(&edge, "720p/seg_002.ts", "Range: bytes=3000000-3000009\r\n");
        assert_eq!(part.status, 206, "{}", part.head);
        assert!(dechunked(&part) == big[3_000_000..3_000_010]);

        // The edge's JSON error replaces a close-delimited error body whole.
        let missing = get(&edge, "720p/none.ts", "");
        assert_eq!(missing.status, 404, "{}", missing.head);
        let body: serde_json::Value = serde_json::from_slice(&dechunked(&missing)).unwrap();
        assert_eq!(body["error"], "not_found");
        origin.set_mode(Mode::Fail);
        let failed = get(&edge, "720p/seg_003.ts", "");
        assert_eq!(failed.status, 502, "{}", failed.head);
        let body: serde_json::Value = serde_json::from_slice(&dechunked(&failed)).unwrap();
        assert_eq!(body["error"], "origin_unavailable");
        origin.set_mode(Mode::Ok);
    }
}

#[test]
fn origin_playlists_are_cached_and_every_viewer_copy_is_no_store() {
    let origin = Origin::start(false);
    origin.put(
        "720p/index.m3u8",
        b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg_000.ts\n#EXT-X-ENDLIST\n".to_vec(),
        None,
    );
    let edge = edge_with(&origin, CACHE);
    for i in 0..5 {
        let token = edge.token_for(VIDEO, now() + 600 + i);
        let response = edge.raw_get(&format!("/hls/{VIDEO}/720p/index.m3u8?hdnts={token}"));
        assert_eq!(response.status, 200, "{}", response.head);
        assert_eq!(header(&response, "cache-control"), "no-store");
        let text = String::from_utf8(response.body).unwrap();
        assert!(
            text.contains(&format!("seg_000.ts?hdnts={token}")),
            "{text}"
        );
    }
    assert_eq!(
        origin.asked("720p/index.m3u8").0,
        1,
        "one origin read for five viewers"
    );
}

#[test]
fn an_authenticated_cdn_gets_token_free_publicly_cacheable_answers() {
    let origin = Origin::start(false);
    let body = pattern(80_000, 8);
    origin.put("720p/seg_000.ts", body.clone(), None);
    origin.put(
        "720p/index.m3u8",
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg_000.ts\n#EXTINF:6.0,\n{}/{VIDEO}/720p/seg_001.ts\n",
            origin.url
        )
        .into_bytes(),
        Some("max-age=2"),
    );
    origin.put("720p/personal.ts", pattern(1000, 9), Some("no-store"));
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("cdn-secret");
    std::fs::write(
        &secret_file,
        "old-cdn-secret-0123456789\nnew-cdn-secret-0123456789\n",
    )
    .unwrap();
    let edge = edge_with(
        &origin,
        &format!(
            "{CACHE}\n[cdn]\nshared_secret_file = {:?}\nheader = \"x-cdn-auth\"\n",
            secret_file.display().to_string()
        ),
    );
    let cdn = |target: &str, extra: &str| {
        edge.raw_get_with(
            &format!("/hls/{VIDEO}/{target}"),
            &format!("X-CDN-Auth: new-cdn-secret-0123456789\r\n{extra}"),
        )
    };

    let segment = cdn("720p/seg_000.ts", "");
    assert_eq!(segment.status, 200, "{}", segment.head);
    assert!(segment.body == body);
    let cache_control = header(&segment, "cache-control");
    assert!(
        cache_control.starts_with("public, max-age="),
        "{cache_control}"
    );
    assert!(cache_control.ends_with("immutable"), "{cache_control}");
    assert_eq!(header(&segment, "etag"), etag_of(&body));
    let hit = cdn("720p/seg_000.ts", "");
    assert!(!header(&hit, "age").is_empty(), "{}", hit.head);
    assert_eq!(header(&hit, "x-cache-status"), "HIT");
    // What the origin refuses to have stored stays unstored, for the CDN too.
    for _ in 0..2 {
        let personal = cdn("720p/personal.ts", "");
        assert_eq!(personal.status, 200, "{}", personal.head);
        assert_eq!(header(&personal, "cache-control"), "no-store");
        assert_eq!(header(&personal, "x-cache-status"), "BYPASS");
    }
    assert_eq!(origin.asked("720p/personal.ts").0, 2);
    // The old secret still works during a rotation; anything else is a viewer without a token.
    let old = edge.raw_get_with(
        &format!("/hls/{VIDEO}/720p/seg_000.ts"),
        "X-CDN-Auth: old-cdn-secret-0123456789\r\n",
    );
    assert_eq!(old.status, 200);
    let wrong = edge.raw_get_with(
        &format!("/hls/{VIDEO}/720p/seg_000.ts"),
        "X-CDN-Auth: new-cdn-secret-012345678\r\n",
    );
    assert_eq!(wrong.status, 403, "{}", wrong.head);
    assert!(!edge.all_logs().contains("cdn-secret-0123456789"));

    // The playlist: no token stamped, the origin's absolute URI mapped onto the edge.
    let playlist = cdn("720p/index.m3u8", "");
    assert_eq!(playlist.status, 200, "{}", playlist.head);
    let text = String::from_utf8(playlist.body.clone()).unwrap();
    assert_eq!(
        playlist_uris(&text),
        vec![
            format!("/hls/{VIDEO}/720p/seg_000.ts"),
            format!("/hls/{VIDEO}/720p/seg_001.ts")
        ],
        "{text}"
    );
    let cache_control = header(&playlist, "cache-control");
    assert!(
        cache_control == "public, max-age=2" || cache_control == "public, max-age=1",
        "{cache_control}"
    );
    let etag = header(&playlist, "etag");
    assert!(etag.starts_with('"'), "{}", playlist.head);
    let unchanged = cdn("720p/index.m3u8", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(unchanged.status, 304, "{}", unchanged.head);
    assert!(unchanged.body.is_empty());
    assert_eq!(origin.asked("720p/index.m3u8").0, 1);
}
