//! Session tokens end to end against the stub control plane and a directory origin: every
//! propagation mode with an AVPlayer-like client, IP binding, CloudFront signed URLs, the debug
//! denial header, the `explain` CLI, and a long session on two edges sharing Redis (manifest
//! TTL 2 s, revocation seen by the other edge within 1 s, still denied after a restart).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::control_plane::*;
use common::*;
use playback::token::cloudfront::{CloudFrontSigner, HashAlgorithm};

/// A short title: two 2-second segments, so its session lasts 4 s + grace.
const SHORT_VIDEO: &str = "5a5a5a5a-1b1b-4c2c-8d3d-4e4e4e4e4e4e";

fn sessions_options(mode: &str, extra: &str) -> EdgeOptions {
    EdgeOptions {
        signed_urls: String::new(),
        extra: format!("[sessions]\nmode = \"{mode}\"\n{extra}\n"),
        ..EdgeOptions::default()
    }
}

/// The manifest URL the edge hands a viewer.
async fn manifest_url(edge: &Edge, jwt: &str) -> String {
    let r = reqwest::Client::new()
        .get(edge.url(&format!("/playback/{VIDEO}/manifest")))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    body["url"].as_str().unwrap().to_string()
}

/// A player that behaves like AVPlayer: it requests exactly the URIs it is given (resolving
/// relative ones against the playlist URL), adds no query and no custom header, and keeps the
/// cookies the edge sets (scoped by path) like `HTTPCookieStorage`.
struct AvPlayerLike<'a> {
    edge: &'a Edge,
    cookies: Vec<(String, String)>, // (path prefix, "name=value")
}

impl<'a> AvPlayerLike<'a> {
    fn new(edge: &'a Edge) -> Self {
        AvPlayerLike {
            edge,
            cookies: Vec::new(),
        }
    }

    fn get(&mut self, target: &str) -> RawResponse {
        let path = target.split('?').next().unwrap();
        let cookie_header: Vec<&str> = self
            .cookies
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, pair)| pair.as_str())
            .collect();
        let headers = if cookie_header.is_empty() {
            String::new()
        } else {
            format!("Cookie: {}\r\n", cookie_header.join("; "))
        };
        let r = self.edge.raw_get_with(target, &headers);
        for set in r.headers("set-cookie") {
            let pair = set.split(';').next().unwrap().trim().to_string();
            let prefix = set
                .split(';')
                .find_map(|a| a.trim().strip_prefix("Path="))
                .unwrap()
                .to_string();
            self.cookies.retain(|(p, _)| *p != prefix);
            self.cookies.push((prefix, pair));
        }
        r
    }

    /// Plays the whole title: master, every variant, every segment, the key. Returns the
    /// number of segments and the key bytes.
    fn play(&mut self, master_target: &str) -> (usize, Vec<u8>) {
        let master = self.get(master_target);
        assert_eq!(master.status, 200, "master: {}", master.head);
        let master_body = String::from_utf8(master.body).unwrap();
        let mut segments = 0;
        let mut key = Vec::new();
        for variant in playlist_uris(&master_body) {
            let variant = resolve(master_target, &variant);
            let media = self.get(&variant);
            assert_eq!(media.status, 200, "{variant}: {}", media.head);
            let media_body = String::from_utf8(media.body).unwrap();
            for uri in playlist_uris(&media_body) {
                let uri = resolve(&variant, &uri);
                let r = self.get(&uri);
                assert_eq!(r.status, 200, "{uri}: {}", r.head);
                if uri.starts_with("/keys/") {
                    key = r.body;
                } else {
                    segments += 1;
                }
            }
        }
        (segments, key)
    }
}

/// RFC 3986 resolution of a playlist URI against the playlist's own path (no scheme/host).
fn resolve(base: &str, uri: &str) -> String {
    if uri.starts_with('/') {
        return uri.to_string();
    }
    let base = base.split('?').next().unwrap();
    let dir = &base[..=base.rfind('/').unwrap()];
    format!("{dir}{uri}")
}

fn target_of(edge: &Edge, url: &str) -> String {
    url.strip_prefix(&edge.base).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_plays_with_an_avplayer_like_client() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let (control_plane, _calls) = start_control_plane().await;
    for mode in ["query", "path", "cookie"] {
        let edge = Edge::start_opts(
            OriginSetup::Directory(&media.root),
            &control_plane,
            &sessions_options(mode, ""),
        );
        let url = manifest_url(&edge, &edge.jwt(USER)).await;
        let target = target_of(&edge, &url);
        match mode {
            "path" => {
                assert!(!url.contains('?'), "path mode needs no query: {url}");
                assert!(target.starts_with(&format!("/hls/{VIDEO}/hdnts=")), "{url}");
                assert!(target.ends_with("/master.m3u8"), "{url}");
            }
            _ => assert!(
                target.starts_with(&format!("/hls/{VIDEO}/master.m3u8?hdnts=")),
                "{url}"
            ),
        }
        let mut player = AvPlayerLike::new(&edge);
        let master = player.get(&target);
        assert_eq!(master.status, 200, "{mode}: {}", master.head);
        let body = String::from_utf8(master.body.clone()).unwrap();
        let variant = &playlist_uris(&body)[0];
        match mode {
            "query" => assert!(variant.contains("?hdnts="), "{variant}"),
            "path" => {
                assert!(
                    variant.starts_with(&format!("/hls/{VIDEO}/hdnts=")),
                    "{variant}"
                );
                assert!(!variant.contains('?'), "{variant}");
            }
            _ => {
                assert_eq!(variant, &format!("/hls/{VIDEO}/720p/index.m3u8"));
                let cookies = master.headers("set-cookie");
                assert_eq!(cookies.len(), 2, "{}", master.head);
                for (cookie, path) in cookies.iter().zip(["/hls/", "/keys/"]) {
                    assert!(cookie.starts_with("hdnts=exp="), "{cookie}");
                    assert!(
                        cookie.ends_with(&format!(
                            "; Path={path}{VIDEO}/; HttpOnly; Secure; SameSite=None"
                        )),
                        "{cookie}"
                    );
                }
            }
        }
        let (segments, key) = AvPlayerLike::new(&edge).play(&target);
        assert_eq!(segments, 2, "{mode}");
        assert_eq!(key, CONTENT_KEY, "{mode}");
        if mode == "cookie" {
            // Without the cookie nothing below the master is admitted.
            let r = edge.raw_get(&format!("/hls/{VIDEO}/720p/seg_001.ts"));
            assert_eq!(r.status, 403);
            assert_eq!(r.error_code().as_deref(), Some("missing_token"));
        }
        scenarios::logs_hold_no_tokens(&edge);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_tokens_bind_the_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let (control_plane, _calls) = start_control_plane().await;
    for (bind, same_subnet_status) in [("exact", 403), ("subnet", 200)] {
        let edge = Edge::start_opts(
            OriginSetup::Directory(&media.root),
            &control_plane,
            &sessions_options("query", &format!("bind_ip = \"{bind}\"")),
        );
        let url = manifest_url(&edge, &edge.jwt(USER)).await;
        let master = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let variant = edge.url(&playlist_uris(&master)[0]);
        let from = |ip: [u8; 4]| {
            reqwest::Client::builder()
                .local_address(std::net::IpAddr::from(ip))
                .build()
                .unwrap()
        };
        let r = from([127, 0, 0, 1]).get(&variant).send().await.unwrap();
        assert_eq!(r.status(), 200, "{bind}: same client");
        let r = from([127, 0, 0, 2]).get(&variant).send().await.unwrap();
        assert_eq!(r.status().as_u16(), same_subnet_status, "{bind}: same /24");
        let r = from([127, 0, 1, 2]).get(&variant).send().await.unwrap();
        assert_eq!(r.status(), 403, "{bind}: another /24");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "ip_mismatch");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudfront_signed_urls_and_cookies_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let public = fixtures.join("cloudfront-test-public.pem");
    let private = std::fs::read_to_string(fixtures.join("cloudfront-test-private.pem")).unwrap();
    let (control_plane, _calls) = start_control_plane().await;
    let edge = Edge::start_opts(
        OriginSetup::Directory(&media.root),
        &control_plane,
        &EdgeOptions {
            extra: format!(
                "[cloudfront.public_keys]\nKTESTKEYPAIR1 = {:?}\n",
                public.display().to_string()
            ),
            ..EdgeOptions::default()
        },
    );
    let signer =
        CloudFrontSigner::from_pem("KTESTKEYPAIR1", &private, HashAlgorithm::Sha256).unwrap();
    let segment = format!("{}/hls/{VIDEO}/720p/seg_001.ts", edge.base);
    let signed = signer.signed_url_canned(&segment, now() + 60);
    let r = reqwest::get(&signed).await.unwrap();
    assert_eq!(r.status(), 200, "canned CloudFront URL");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"small segment bytes");

    let expired = signer.signed_url_canned(&segment, now() - 5);
    let r = reqwest::get(&expired).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "expired"
    );
    let other = signer.signed_url_canned(
        &format!("{}/hls/{VIDEO}/720p/seg_000.ts", edge.base),
        now() + 60,
    );
    let moved = other.replace("seg_000.ts", "seg_001.ts");
    let r = reqwest::get(&moved).await.unwrap();
    assert_eq!(r.status(), 403, "a signature for another resource");

    // A custom policy with a wildcard: the master's children carry the same parameters.
    let policy = playback::token::cloudfront::Policy {
        resource: format!("{}/hls/{VIDEO}/*", edge.base),
        date_less_than: now() + 60,
        date_greater_than: None,
        ip_address: None,
    };
    let master =
        signer.signed_url_custom(&format!("{}/hls/{VIDEO}/master.m3u8", edge.base), &policy);
    let r = reqwest::get(&master).await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let variant = &playlist_uris(&body)[0];
    assert!(
        variant.contains("Policy=") && variant.contains("Key-Pair-Id=KTESTKEYPAIR1"),
        "{variant}"
    );
    let r = reqwest::get(edge.url(variant)).await.unwrap();
    assert_eq!(r.status(), 200, "child playlist on the same policy");
    // The same policy and signature on every child: one public-key operation, then the memo.
    let metrics = reqwest::get(edge.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let hits = metrics
        .lines()
        .find(|l| l.starts_with(r#"edge_cache_total{cache="cloudfront_signature",result="hit"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        hits >= 1,
        "the child reused the verified signature:\n{metrics}"
    );

    // Signed cookies.
    let cookie: Vec<String> = signer
        .cookies(&policy)
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let r = edge.raw_get_with(
        &format!("/hls/{VIDEO}/720p/seg_001.ts"),
        &format!("Cookie: {}\r\n", cookie.join("; ")),
    );
    assert_eq!(r.status, 200, "CloudFront cookies: {}", r.head);

    // botocore signs the whole address, query included (canned, and a custom policy whose
    // Resource is that exact address); the edge and `explain` check it the same way.
    let with_query = format!("{segment}?part=1&lang=en");
    let signed_by_botocore = botocore_signed_urls(&private, &with_query, now() + 60);
    for (kind, url) in &signed_by_botocore {
        let r = reqwest::get(url).await.unwrap();
        assert_eq!(r.status(), 200, "botocore {kind} URL with a query: {url}");
        let out = Command::new(env!("CARGO_BIN_EXE_edge-proxy"))
            .args(["explain", url, "--config"])
            .arg(&edge.config_path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "explain {kind}:\n{report}");
        assert!(report.contains("?part=1&lang=en"), "{report}");
        let changed = url.replace("part=1", "part=2");
        let r = reqwest::get(&changed).await.unwrap();
        assert_eq!(r.status(), 403, "{kind}: another query is another address");
        let dropped = url.replace("part=1&lang=en&", "");
        let r = reqwest::get(&dropped).await.unwrap();
        assert_eq!(r.status(), 403, "{kind}: without its query");
    }

    // Unknown Key-Pair-Id.
    let unknown = signed.replace("Key-Pair-Id=KTESTKEYPAIR1", "Key-Pair-Id=KOTHER");
    let r = reqwest::get(&unknown).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "unknown_key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_header_only_when_enabled_and_explain_cli() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let quiet = Edge::start(OriginSetup::Directory(&media.root));
    let debug = Edge::start_opts(
        OriginSetup::Directory(&media.root),
        &format!("http://127.0.0.1:{}", free_port()),
        &EdgeOptions {
            extra: "[debug]\ndenial_header = true\n".into(),
            ..EdgeOptions::default()
        },
    );
    let expired = quiet.token_for(VIDEO, 1_700_000_000);
    let target = format!("/hls/{VIDEO}/master.m3u8?hdnts={expired}");
    let r = quiet.raw_get(&target);
    assert_eq!(r.status, 403);
    assert!(r.headers("x-edge-denial").is_empty(), "{}", r.head);
    let r = debug.raw_get(&target);
    assert_eq!(r.status, 403);
    let header = r.headers("x-edge-denial").pop().expect("X-Edge-Denial");
    assert!(
        header.starts_with("expired; exp=1700000000 < now="),
        "{header}"
    );
    assert!(
        !header.contains("hmac") && !header.contains(&expired),
        "{header}"
    );
    let other = debug.token_for(OTHER_VIDEO, now() + 60);
    let r = debug.raw_get(&format!("/hls/{VIDEO}/master.m3u8?hdnts={other}"));
    let header = r.headers("x-edge-denial").pop().unwrap();
    assert!(header.starts_with("acl_mismatch; acl=/hls/"), "{header}");
    let r = debug.raw_get(&format!("/hls/{VIDEO}/master.m3u8"));
    assert!(
        r.headers("x-edge-denial")[0].starts_with("missing_token; "),
        "{}",
        r.head
    );
    // The access line is written after the response is sent; give the log reader a moment.
    let explained = |logs: String| logs.contains("\"denialDetail\":\"exp=1700000000 < now=");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !explained(debug.all_logs()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        explained(debug.all_logs()),
        "denials are explained in the logs"
    );

    // explain: a good URL passes (exit 0), a tampered one fails (exit 1), naming the check.
    let good = format!(
        "{}/hls/{VIDEO}/720p/seg_001.ts?hdnts={}",
        quiet.base,
        quiet.token()
    );
    let explain = |input: &str, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_edge-proxy"))
            .arg("explain")
            .arg(input)
            .args(extra)
            .arg("--config")
            .arg(&quiet.config_path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, report) = explain(&good, &[]);
    assert_eq!(code, Some(0), "{report}");
    for needle in [
        "format",
        "signature   ok",
        "times       ok",
        "acl         ok",
        "verdict     PASS",
    ] {
        assert!(report.contains(needle), "{needle}:\n{report}");
    }
    assert!(
        !report.contains("hmac="),
        "the MAC is never printed:\n{report}"
    );
    let tampered = good.replacen("exp=", "exp=1", 1);
    let (code, report) = explain(&tampered, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains("signature   FAIL bad_signature"),
        "{report}"
    );
    assert!(
        report.contains("verdict     FAIL bad_signature"),
        "{report}"
    );
    let (code, report) = explain(&expired, &["--path", &format!("/hls/{VIDEO}/a.ts")]);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains("times       FAIL expired: exp=1700000000"),
        "{report}"
    );
    let (code, report) = explain(
        &format!(
            "{}/hls/{OTHER_VIDEO}/a.ts?hdnts={}",
            quiet.base,
            quiet.token()
        ),
        &[],
    );
    assert_eq!(code, Some(1));
    assert!(report.contains("FAIL acl_mismatch"), "{report}");
}

/// `url` signed by botocore's `CloudFrontSigner` (RSA-SHA1, Key-Pair-Id `KTESTKEYPAIR1`):
/// `[("canned", …), ("custom", …)]`, the custom policy's `Resource` being `url` exactly.
fn botocore_signed_urls(private_pem: &str, url: &str, expires: u64) -> Vec<(String, String)> {
    const SCRIPT: &str = r#"
import datetime, json, sys
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
req = json.load(sys.stdin)
key = serialization.load_pem_private_key(req["pem"].encode(), None)
signer = CloudFrontSigner("KTESTKEYPAIR1", lambda m: key.sign(m, padding.PKCS1v15(), hashes.SHA1()))
exp = datetime.datetime.fromtimestamp(req["expires"], datetime.timezone.utc)
policy = signer.build_policy(req["url"], exp)
print(json.dumps([["canned", signer.generate_presigned_url(req["url"], date_less_than=exp)],
                  ["custom", signer.generate_presigned_url(req["url"], policy=policy)]]))
"#;
    let python = std::env::var("INTEROP_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/streaming-edge-venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let mut child = Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python} (botocore; scripts/test.sh installs it): {e}"));
    let input = serde_json::json!({"pem": private_pem, "url": url, "expires": expires});
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        input.to_string().as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "botocore signing failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Redis for the long-session test: `TEST_REDIS_URL` (default redis://127.0.0.1:6379).
fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn short_title(root: &std::path::Path) {
    let title = root.join(SHORT_VIDEO);
    std::fs::create_dir_all(title.join("v")).unwrap();
    std::fs::write(
        title.join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nv/index.m3u8\n",
    )
    .unwrap();
    std::fs::write(
        title.join("v/index.m3u8"),
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\na.ts\n#EXTINF:2.0,\nb.ts\n#EXT-X-ENDLIST\n",
    )
    .unwrap();
    std::fs::write(title.join("v/a.ts"), b"segment a").unwrap();
    std::fs::write(title.join("v/b.ts"), b"segment b").unwrap();
}

async fn status(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

/// Polls `url` until it is refused as revoked; panics after `within`.
async fn refused_within(url: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if status(url).await == (403, "revoked".into()) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{url} still admitted after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_sessions_expire_and_revoke_across_edges_sharing_redis() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    short_title(&media.root);
    let (control_plane, _calls) = start_control_plane().await;
    let prefix = format!(
        "edge-test-{}-{}:",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let options = EdgeOptions {
        signed_urls: "manifest_ttl_secs = 2".into(),
        extra: format!(
            "[sessions]\ngrace_secs = 1\n\n[redis]\nurl = {:?}\nkey_prefix = {prefix:?}\n",
            redis_url()
        ),
        ..EdgeOptions::default()
    };
    let start = || {
        Edge::start_opts(
            OriginSetup::Directory(&media.root),
            &control_plane,
            &options,
        )
    };
    let edge_a = start();
    let mut edge_b = start();
    let client = reqwest::Client::new();

    // Manifest TTL 2 s; the session (4 s of content + 1 s grace) outlives it.
    let r = client
        .get(edge_a.url(&format!("/playback/{SHORT_VIDEO}/manifest")))
        .bearer_auth(edge_a.jwt(USER))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let master_url = body["url"].as_str().unwrap().to_string();
    let opened = Instant::now();
    let master = reqwest::get(&master_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let variant = playlist_uris(&master)[0].clone();
    let media_playlist = reqwest::get(edge_b.url(&variant))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let segment_b = edge_b.url(&playlist_uris(&media_playlist)[1]);
    tokio::time::sleep(Duration::from_millis(2_500).saturating_sub(opened.elapsed())).await;
    assert_eq!(
        status(&master_url).await,
        (403, "expired".into()),
        "manifest token lapsed"
    );
    assert_eq!(
        status(&segment_b).await.0,
        200,
        "playback continues on the session token"
    );
    tokio::time::sleep(Duration::from_millis(6_200).saturating_sub(opened.elapsed())).await;
    assert_eq!(
        status(&segment_b).await,
        (403, "expired".into()),
        "the session expired"
    );

    // Revocation by session id on edge A is enforced by edge B within 1 s.
    let open_session = |edge: &Edge, jwt: String| {
        let client = client.clone();
        let url = edge.url(&format!("/playback/{VIDEO}/manifest"));
        async move {
            let r = client.get(url).bearer_auth(jwt).send().await.unwrap();
            let body: serde_json::Value = r.json().await.unwrap();
            let url = body["url"].as_str().unwrap().to_string();
            let master = reqwest::get(&url).await.unwrap().text().await.unwrap();
            playlist_uris(&master)[0].clone()
        }
    };
    let variant = open_session(&edge_a, edge_a.jwt(USER)).await;
    let session_id = variant
        .split('~')
        .find_map(|f| f.strip_prefix("id="))
        .unwrap()
        .to_string();
    let on_b = edge_b.url(&variant);
    assert_eq!(status(&on_b).await.0, 200);
    let admin = edge_a.jwt_with("ops@example.com", None, &["admin"]);
    let revoke = |edge: &Edge, body: serde_json::Value, jwt: &str| {
        client
            .post(edge.url("/admin/revocations"))
            .bearer_auth(jwt)
            .json(&body)
            .send()
    };
    let r = revoke(
        &edge_a,
        serde_json::json!({"sessionId": session_id}),
        &edge_a.jwt(USER),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403, "viewers cannot revoke");
    let r = revoke(
        &edge_a,
        serde_json::json!({"sessionId": session_id, "ttlSecs": 120}),
        &admin,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["shared"], true, "{answer}");
    let took = refused_within(&on_b, Duration::from_secs(1)).await;
    eprintln!("edge B enforced the revocation after {took:?}");
    assert_eq!(status(&edge_a.url(&variant)).await, (403, "revoked".into()));
    let other_session = open_session(&edge_a, edge_a.jwt(USER)).await;
    assert_eq!(
        status(&edge_b.url(&other_session)).await.0,
        200,
        "only that session"
    );

    // A restarted edge loads the revocation from Redis.
    drop(edge_b);
    edge_b = start();
    assert_eq!(status(&edge_b.url(&variant)).await, (403, "revoked".into()));

    // Revocation by jti (posted to B) reaches A; the JWT can no longer open sessions either.
    let jwt = edge_a.jwt_with(USER, Some("jti-leaked-1"), &[]);
    let variant = open_session(&edge_a, jwt.clone()).await;
    assert_eq!(status(&edge_a.url(&variant)).await.0, 200);
    let r = revoke(&edge_b, serde_json::json!({"jti": "jti-leaked-1"}), &admin)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    refused_within(&edge_a.url(&variant), Duration::from_secs(1)).await;
    let r = client
        .get(edge_a.url(&format!("/playback/{VIDEO}/manifest")))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "revoked"
    );

    // Revocation by user.
    let variant = open_session(&edge_a, edge_a.jwt("someone-else")).await;
    let r = revoke(
        &edge_a,
        serde_json::json!({"userId": "someone-else"}),
        &admin,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    refused_within(&edge_b.url(&variant), Duration::from_secs(1)).await;
    let r = revoke(
        &edge_a,
        serde_json::json!({"userId": "x", "jti": "y"}),
        &admin,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);

    let metrics = reqwest::get(edge_a.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for reason in ["ip_mismatch", "revoked", "unknown_key"] {
        assert!(
            metrics.contains(&format!("edge_denials_total{{reason=\"{reason}\"}}")),
            "{reason}"
        );
    }
}
