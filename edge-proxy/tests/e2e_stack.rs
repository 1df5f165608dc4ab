//! End-to-end: the whole walking skeleton with real parts on one machine.
//!
//! Starts the control plane and the edge as processes on loopback (embedded defaults: SQLite,
//! local master key, directory origin, ffmpeg), makes a 20 s test video with ffmpeg, uploads it,
//! transcodes it with DRM, asks the edge for a manifest URL with a JWT, and decodes every
//! rendition with ffprobe using nothing but that URL. Then walks the bad-input cases across both
//! services, and checks that no key or whole token reached either service's logs.
//!
//! Needs both binaries built (`cargo build --workspace --bins`, done by scripts/test.sh) and
//! ffmpeg/ffprobe on PATH.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use playback::jwt::{mint_hs256, Claims};
use playback::token::edgeauth::{EdgeAuth, EdgeAuthConfig, EdgeAuthFields};
use playback::token::session::{encode_data, SessionSubject};
use playback::token::video_acl;
use serde_json::{json, Value};

use common::stack::{make_testsrc_video, wait_healthy, Stack};

const RENDITION_HEIGHTS: [u64; 2] = [720, 480];
const SOURCE_SECONDS: u32 = 20;
const SOURCE_FPS: u32 = 25;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn make_source_video(path: &Path) {
    make_testsrc_video(path, "1280x720", SOURCE_SECONDS);
}

/// Decodes every video stream behind `url` and returns (height, decoded frames) per stream.
fn decode_all_renditions(url: &str) -> Vec<(u64, u64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v"])
        .args([
            "-show_entries",
            "stream=height,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(url)
        .output()
        .expect("ffprobe is installed");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Only the top-level stream list: HLS variants also appear once more under their programs.
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let frames = s["nb_read_frames"].as_str().unwrap().parse().unwrap();
            (s["height"].as_u64().unwrap(), frames)
        })
        .collect()
}

fn jwt(secret: &[u8], sub: &str, tweak: impl FnOnce(&mut Claims)) -> String {
    let mut claims = Claims {
        sub: sub.into(),
        iss: "streaming-dev".into(),
        aud: "streaming-edge".into(),
        exp: now() + 600,
        nbf: None,
        iat: Some(now()),
        jti: None,
        roles: vec![],
        device_id: None,
    };
    tweak(&mut claims);
    mint_hs256(secret, &claims)
}

async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error response without a message: {body}"
    );
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_transcode_play_with_aes128_and_refuse_bad_input() {
    let stack = Stack::start();
    let http = reqwest::Client::new();
    wait_healthy(&http, &stack.cp("/health")).await;
    wait_healthy(&http, &stack.edge("/health")).await;
    wait_healthy(&http, &stack.edge("/ready")).await;

    // A Pro viewer (DRM allowed) who owns the upload, a free one, and a stranger.
    let owner = "9b2f6a52-0f4e-4d43-9a61-6f0d7f0c1a01";
    let free_user = "9b2f6a52-0f4e-4d43-9a61-6f0d7f0c1a02";
    let stranger = "9b2f6a52-0f4e-4d43-9a61-6f0d7f0c1a03";
    stack.cli(&["subscribe", "--user", owner, "--tier", "pro"]);
    stack.cli(&["subscribe", "--user", free_user, "--tier", "free"]);
    let owner_jwt = stack.cli(&["token", "--sub", owner]);
    let free_jwt = stack.cli(&["token", "--sub", free_user]);
    let stranger_jwt = stack.cli(&["token", "--sub", stranger]);

    // Upload a 20 s 720p test video.
    let source = stack.dir.path().join("source.mp4");
    make_source_video(&source);
    let form = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(std::fs::read(&source).unwrap())
            .file_name("source.mp4")
            .mime_str("video/mp4")
            .unwrap(),
    );
    let resp = http
        .post(stack.cp("/files/upload"))
        .bearer_auth(&owner_jwt)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let file_id = body["files"][0]["fileId"].as_str().unwrap().to_string();

    // DRM on a free tier is refused with a sentence; so is a stranger's transcode.
    let resp = http
        .post(stack.cp("/media/transcode"))
        .bearer_auth(&free_jwt)
        .json(&json!({"fileId": file_id, "enableDrm": true}))
        .send()
        .await
        .unwrap();
    let (status, code) = error_code(resp).await;
    assert!(
        status == 403 || status == 404,
        "free tier DRM transcode: {status} {code}"
    );
    let resp = http
        .post(stack.cp("/media/transcode"))
        .bearer_auth(&owner_jwt)
        .header("content-type", "application/json")
        .body("{\"fileId\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await.0, 400, "malformed JSON");

    // Transcode with DRM as AES-128 HLS (MPEG-TS) and poll to completion.
    let resp = http
        .post(stack.cp("/media/transcode"))
        .bearer_auth(&owner_jwt)
        .json(&json!({"fileId": file_id, "enableDrm": true, "protection": "aes-128"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last_progress = 0;
    let status = loop {
        let s: Value = http
            .get(stack.cp(&format!("/media/transcode/{file_id}")))
            .bearer_auth(&owner_jwt)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let progress = s["progress"].as_i64().unwrap();
        assert!((0..=100).contains(&progress));
        assert!(progress >= last_progress, "progress went backwards: {s}");
        last_progress = progress;
        match s["status"].as_str().unwrap() {
            "completed" | "failed" => break s,
            _ => {}
        }
        assert!(Instant::now() < deadline, "transcode did not finish: {s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["progress"], 100);
    assert_eq!(
        status["hlsManifestUrl"],
        stack.edge(&format!("/playback/{file_id}/manifest"))
    );

    // Segments at rest are encrypted: no MPEG-TS sync byte where the first packet starts.
    let origin = stack.dir.path().join("data/origin").join(&file_id);
    let segment = walk(&origin)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "ts"))
        .expect("a .ts segment on the origin");
    let first = std::fs::read(&segment).unwrap();
    assert!(
        first.len() > 188 && !(first[0] == 0x47 && first[188] == 0x47),
        "segment is not encrypted"
    );

    // The manifest URL, with the JWT in the header and in ?token=.
    let manifest = http
        .get(stack.edge(&format!("/playback/{file_id}/manifest")))
        .bearer_auth(&owner_jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), 200);
    assert_eq!(manifest.headers()["cache-control"], "no-store");
    let manifest: Value = manifest.json().await.unwrap();
    let url = manifest["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&stack.edge(&format!("/hls/{file_id}/master.m3u8?hdnts="))),
        "{url}"
    );
    let expires = time::OffsetDateTime::parse(
        manifest["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let lifetime = expires.unix_timestamp() - now() as i64;
    assert!(
        (290..=301).contains(&lifetime),
        "manifest token lifetime {lifetime}s"
    );
    let via_query = http
        .get(stack.edge(&format!("/playback/{file_id}/manifest?token={owner_jwt}")))
        .send()
        .await
        .unwrap();
    assert_eq!(via_query.status(), 200);

    // Decode every rendition with nothing but the returned URL.
    let mut renditions = decode_all_renditions(&url);
    renditions.sort();
    let heights: Vec<u64> = renditions.iter().map(|(h, _)| *h).collect();
    let mut expected = RENDITION_HEIGHTS.to_vec();
    expected.sort();
    assert_eq!(heights, expected, "renditions never above the 720p source");
    let source_frames = u64::from(SOURCE_SECONDS * SOURCE_FPS);
    for (height, frames) in &renditions {
        assert!(
            frames.abs_diff(source_frames) <= 1,
            "{height}p decoded {frames} frames, source has {source_frames}"
        );
    }

    // The key endpoint: 16 raw bytes for the entitled owner.
    let master = http.get(&url).send().await.unwrap();
    assert_eq!(master.status(), 200);
    assert_eq!(master.headers()["cache-control"], "no-store");
    let master = master.text().await.unwrap();
    let variant = master.lines().find(|l| l.starts_with("/hls/")).unwrap();
    let media = http
        .get(stack.edge(variant))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key_uri = media
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-KEY:"))
        .and_then(|l| l.split("URI=\"").nth(1))
        .and_then(|l| l.split('"').next())
        .expect("media playlist has an EXT-X-KEY");
    assert!(
        key_uri.starts_with(&format!("/keys/{file_id}/")),
        "{key_uri}"
    );
    let key = http.get(stack.edge(key_uri)).send().await.unwrap();
    assert_eq!(key.status(), 200);
    let key = key.bytes().await.unwrap();
    assert_eq!(key.len(), 16);

    // ---- bad input ----
    let jwt_secret = stack.secret("jwt-hs256.key");
    let manifest_url = stack.edge(&format!("/playback/{file_id}/manifest"));
    let resp = http.get(&manifest_url).send().await.unwrap();
    assert_eq!(error_code(resp).await, (401, "missing_token".into()));
    for (bad, reason) in [
        (jwt(b"not the secret", owner, |_| {}), "bad_signature"),
        (jwt(&jwt_secret, owner, |c| c.exp = now() - 3600), "expired"),
        (
            jwt(&jwt_secret, owner, |c| c.aud = "another-service".into()),
            "wrong_audience",
        ),
    ] {
        let resp = http
            .get(&manifest_url)
            .bearer_auth(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(resp).await, (401, reason.into()));
    }
    let resp = http
        .get(&manifest_url)
        .bearer_auth(&stranger_jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (403, "not_entitled".into()));
    let resp = http
        .get(&manifest_url)
        .bearer_auth(&free_jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await.0, 403, "free viewer of a DRM title");
    let unknown = "00000000-0000-4000-8000-000000000000";
    let resp = http
        .get(stack.edge(&format!("/playback/{unknown}/manifest")))
        .bearer_auth(&owner_jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (404, "not_found".into()));

    // Signed URLs: A's token on B, tampered, expired.
    let token = url.split("hdnts=").nth(1).unwrap().to_string();
    let resp = http
        .get(stack.edge(&format!("/hls/{unknown}/master.m3u8?hdnts={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (403, "acl_mismatch".into()));
    let tampered = token.replacen("exp=", "exp=9", 1);
    let resp = http
        .get(stack.edge(&format!("/hls/{file_id}/master.m3u8?hdnts={tampered}")))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (403, "bad_signature".into()));
    // Edge tokens are EdgeAuth v2 with the url-signing key's bytes (sha256, `hdnts`).
    let signer = EdgeAuth::new(EdgeAuthConfig::new(stack.secret("url-signing.key")));
    let mint = |user: &str, expires_at: u64, acl: Vec<String>| {
        signer.mint(&EdgeAuthFields {
            expires_at,
            acl,
            data: encode_data(&SessionSubject {
                user_id: Some(user.into()),
                ..SessionSubject::default()
            }),
            ..EdgeAuthFields::default()
        })
    };
    let expired = mint(owner, now() - 1, video_acl(&file_id));
    let resp = http
        .get(stack.edge(&format!("/hls/{file_id}/master.m3u8?hdnts={expired}")))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (403, "expired".into()));
    // A validly signed URL for someone not entitled still gets no key.
    let strangers = mint(stranger, now() + 300, video_acl(&file_id));
    let key_path = key_uri.split('?').next().unwrap();
    let resp = http
        .get(stack.edge(&format!("{key_path}?hdnts={strangers}")))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (403, "not_entitled".into()));

    // Path traversal never leaves the origin.
    let wide = mint(owner, now() + 300, vec!["/*".into()]);
    for path in [
        format!("/hls/{file_id}/../../secrets/url-signing.key"),
        format!("/hls/{file_id}/%2e%2e/%2e%2e/secrets/url-signing.key"),
        format!("/hls/{file_id}/..%2f..%2fsecrets%2furl-signing.key"),
        format!("/hls/{file_id}/%252e%252e/secrets/url-signing.key"),
        format!("/hls/{file_id}/..\\..\\secrets\\url-signing.key"),
        format!("/hls/{file_id}//etc/passwd"),
    ] {
        let resp = http
            .get(stack.edge(&format!("{path}?hdnts={wide}")))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap();
        assert!(status == 400 || status == 404, "{path} -> {status}");
        assert!(!body
            .windows(16)
            .any(|w| w == &stack.secret("url-signing.key")[..16]));
    }

    // Secrets, keys and whole tokens never reach the logs.
    let logs = stack.logs();
    let b64 = base64::engine::general_purpose::STANDARD;
    for (what, needle) in [
        ("content key (hex)", hex_lower(&key)),
        ("content key (base64)", b64.encode(&key)),
        ("viewer JWT", owner_jwt.clone()),
        ("signed URL token", token.clone()),
        (
            "url signing key",
            hex_lower(&stack.secret("url-signing.key")),
        ),
    ] {
        assert!(!logs.contains(&needle), "{what} appears in the logs");
    }
    assert!(logs.contains(file_id.as_str()), "logs carry the video id");
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}
