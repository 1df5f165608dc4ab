//! End-to-end in a real browser: Debian's Chromium, driven by playwright-core, plays protected
//! titles through the edge, and pixels from screenshots prove the frames were decrypted.
//!
//! Starts the control plane and the edge as processes on loopback (as `e2e_stack.rs` does),
//! then:
//! 1. DASH with Shaka Player, nothing added by the page: a lavfi test pattern (four solid
//!    quadrants) is uploaded and transcoded by the control plane's default pipeline (ffmpeg,
//!    then Shaka Packager: CMAF, cbcs, keys from custody). The page asks the edge for the
//!    manifest answer and hands `dashUrl` to Shaka Player as it is: no request filter, no
//!    `drm.servers`. The MPD's URLs carry the session token, and its `clearkey:Laurl` names the
//!    edge's ClearKey endpoint with the token, so the license needs no JWT either.
//!    A second edge carrying the session token as a path segment plays the same way (the
//!    edge injects one MPD-level `BaseURL` with the token; the page still adds nothing).
//! 2. The same playback with every key in the license swapped for a random one must fail the
//!    same pixel check: the check can fail, and passing it means the real key decrypted.
//!    dash.js then plays the same MPD the same way, and fails the same check with a wrong key.
//!    hls.js plays the CMAF HLS side of the same title with ClearKey EME: the key system from
//!    the playlist's `org.w3.clearkey` key tag, the license URL and the JWT from the page
//!    (hls.js reads no license URL from a playlist), and fails with a wrong key too.
//! 3. hls.js plays an AES-128 title (`protection = "aes-128"`, MPEG-TS) from the same
//!    pipeline, keys from the edge's `/keys/{videoId}/{keyId}` URIs; a wrong key fails it too.
//!
//! Needs: both binaries (`cargo build --workspace --bins`), ffmpeg, node, /usr/bin/chromium,
//! `npm ci` in `edge-proxy/tests/browser`, and Shaka Packager (`SHAKA_PACKAGER_BIN`). All are
//! installed by `ensure_browser_tools` in scripts/lib.sh (scripts/test.sh calls it). A missing
//! tool fails the test; only `SKIP_BROWSER_TESTS=1` outside CI turns that into a skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};

use common::stack::{get_text, manifest_answer, wait_healthy, Stack};

/// The test pattern: four solid quadrants (with a moving `testsrc2` inset in the middle, so the
/// encoder has real motion to code). Each entry: name, the region sampled (fractions of the
/// picture: x, y, width, height, clear of the inset and of quadrant edges), nominal RGB.
const QUADRANTS: [(&str, [f64; 4], [f64; 3]); 4] = [
    ("red", [0.05, 0.08, 0.25, 0.20], [255.0, 0.0, 0.0]),
    ("green", [0.70, 0.08, 0.25, 0.20], [0.0, 255.0, 0.0]),
    ("blue", [0.05, 0.72, 0.25, 0.20], [0.0, 0.0, 255.0]),
    ("white", [0.70, 0.72, 0.25, 0.20], [255.0, 255.0, 255.0]),
];
/// Largest distance of a region's mean from the nominal colour, per channel. YUV round trips
/// and the colour matrix Chromium assumes move a pure primary by up to ~40 (green shows as
/// (0, 216, 2)); a black frame misses by 255 and decoder garbage averages to mid-grey.
const MEAN_TOLERANCE: f64 = 64.0;
/// Largest standard deviation inside a region, per channel: a decoded solid area is flat
/// (measured 0), decoder garbage is mottled.
const MAX_STD: f64 = 24.0;
/// Playback must pass this position before the screenshot.
const PLAY_SECONDS: f64 = 3.0;
const SOURCE_SECONDS: u32 = 10;

struct Tools {
    chromium: PathBuf,
}

/// Finds every external tool, or names the first one missing.
fn find_tools() -> Result<Tools, String> {
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if !chromium.is_file() {
        return Err(format!("Chromium at {}", chromium.display()));
    }
    for (tool, arg) in [("node", "--version"), ("ffmpeg", "-version")] {
        let runs = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !runs {
            return Err(format!("`{tool}` on PATH"));
        }
    }
    for module in [
        "playwright-core/package.json",
        "shaka-player/dist/shaka-player.compiled.js",
        "hls.js/dist/hls.min.js",
        "dashjs/dist/modern/umd/dash.all.min.js",
    ] {
        if !browser_dir().join("node_modules").join(module).is_file() {
            return Err(format!(
                "node_modules/{module} (run `npm ci` in edge-proxy/tests/browser)"
            ));
        }
    }
    if !common::stack::shaka_packager().is_file() {
        return Err("Shaka Packager (SHAKA_PACKAGER_BIN) for the control plane".into());
    }
    Ok(Tools { chromium })
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Runs a tool to completion, failing the test with its stderr when it fails.
async fn run(what: &str, cmd: &mut tokio::process::Command) -> String {
    let out = cmd.output().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// 10 s of the test pattern, 640x360 H.264 with a 2 s GOP, plus a tone.
async fn make_source_video(path: &Path) {
    let pattern = "color=c=red:s=320x180:r=25[a];color=c=lime:s=320x180:r=25[b];\
                   color=c=blue:s=320x180:r=25[c];color=c=white:s=320x180:r=25[d];\
                   [a][b][c][d]xstack=inputs=4:layout=0_0|w0_0|0_h0|w0_h0[q];\
                   testsrc2=s=160x90:r=25[t];[q][t]overlay=x=240:y=135[v]";
    run(
        "ffmpeg (test pattern)",
        tokio::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-filter_complex", pattern])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-map", "[v]", "-map", "0:a", "-t"])
            .arg(SOURCE_SECONDS.to_string())
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
            .args(["-c:a", "aac", "-shortest"])
            .arg(path),
    )
    .await;
}

/// Serves the player page and the players' dist files from `edge-proxy/tests/browser` on
/// `http://127.0.0.1:{port}`: Chromium offers EME only to a secure context, which a loopback
/// http origin is and `file://` is not.
async fn serve_page() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(static_file);
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

async fn static_file(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let allowed = path == "player.html"
        || path.starts_with("node_modules/shaka-player/dist/")
        || path.starts_with("node_modules/hls.js/dist/")
        || path.starts_with("node_modules/dashjs/dist/");
    let safe = path
        .split('/')
        .all(|s| !s.is_empty() && s != "." && s != "..");
    if !allowed || !safe {
        return StatusCode::NOT_FOUND.into_response();
    }
    let content_type = match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript",
        Some("map") => "application/json",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(browser_dir().join(path)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// One playback in a fresh Chromium (tests/browser/drive.mjs); its JSON report.
async fn drive(tools: &Tools, options: Value) -> Value {
    let out = tokio::process::Command::new("node")
        .current_dir(browser_dir())
        .arg("drive.mjs")
        .arg(options.to_string())
        .env("CHROMIUM_BIN", &tools.chromium)
        .output()
        .await
        .expect("node runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "drive.mjs failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let mut report: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("drive.mjs printed {stdout:?} ({e})\n{stderr}"));
    // The page's console and failed requests, shown with the report when an assertion fails.
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    report["driverLog"] = tail.into_iter().rev().collect::<Vec<_>>().into();
    report
}

/// The regions `drive.mjs` measures, as it expects them.
fn regions() -> Value {
    QUADRANTS
        .iter()
        .map(|(name, [x, y, w, h], _)| json!({"name": name, "x": x, "y": y, "w": w, "h": h}))
        .collect()
}

/// Whether the screenshot shows the test pattern: every quadrant's mean colour near its
/// nominal colour and flat. Err names the first region that does not.
fn shows_pattern(report: &Value) -> Result<(), String> {
    let measured = report["regions"].as_array().ok_or("no regions measured")?;
    for (name, _, nominal) in QUADRANTS {
        let region = measured
            .iter()
            .find(|r| r["name"] == name)
            .ok_or_else(|| format!("{name}: not measured"))?;
        let channel = |field: &str, c: usize| region[field][c].as_f64().unwrap_or(f64::NAN);
        for (c, expected) in nominal.iter().enumerate() {
            let (mean, std) = (channel("mean", c), channel("std", c));
            // Written so that NaN (a missing value) fails too.
            let near = (mean - expected).abs() <= MEAN_TOLERANCE;
            if !near {
                return Err(format!(
                    "{name}: channel {c} mean {mean:.0}, expected {expected:.0}"
                ));
            }
            let flat = std <= MAX_STD;
            if !flat {
                return Err(format!("{name}: channel {c} standard deviation {std:.1}"));
            }
        }
    }
    Ok(())
}

/// A compact line about a playback, for the test output.
fn summary(label: &str, report: &Value) -> String {
    let means: Vec<String> = report["regions"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    let m = |c: usize| r["mean"][c].as_f64().unwrap_or(f64::NAN);
                    format!(
                        "{}=({:.0},{:.0},{:.0})",
                        r["name"].as_str().unwrap_or("?"),
                        m(0),
                        m(1),
                        m(2)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{label}: t={} frames={} licenses={} keys={} tampered={} errors={} | {}",
        report["currentTime"],
        report["decodedFrames"],
        report["report"]["licenseStatuses"],
        report["report"]["keysLoaded"],
        report["tamperedKeys"],
        report["report"]["errors"],
        means.join(" ")
    )
}

/// Asserts a playback that must have shown the decrypted pattern.
/// A playback whose keys the driver swapped for random ones: the swap happened, and the pixel
/// check fails (else passing it would prove nothing).
fn assert_wrong_key_fails(label: &str, report: &Value) {
    eprintln!("{}", summary(label, report));
    assert!(
        report["tamperedKeys"].as_u64().is_some_and(|n| n >= 1),
        "{label}: the key was not intercepted: {report}"
    );
    assert!(
        shows_pattern(report).is_err(),
        "{label}: a wrong key still showed the pattern: {report}"
    );
}

fn assert_played(label: &str, report: &Value) {
    eprintln!("{}", summary(label, report));
    assert_eq!(
        report["report"]["errors"],
        json!([]),
        "{label}: player errors: {report}"
    );
    assert_eq!(report["startError"], Value::Null, "{label}: {report}");
    assert_eq!(
        report["reachedMinSeconds"], true,
        "{label}: never reached {PLAY_SECONDS}s: {report}"
    );
    assert!(
        report["decodedFrames"].as_u64().is_some_and(|n| n > 0),
        "{label}: no decoded frames: {report}"
    );
    if let Err(why) = shows_pattern(report) {
        panic!("{label}: the screenshot does not show the test pattern ({why}): {report}");
    }
    assert_eq!(
        report["stopStatus"], 204,
        "{label}: stopping the stream: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_clearkey_and_aes128_through_the_edge() {
    let tools = match find_tools() {
        Ok(tools) => tools,
        Err(missing) => {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            if !ci && std::env::var("SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
                eprintln!("SKIPPED browser_playback: missing {missing} (SKIP_BROWSER_TESTS=1)");
                return;
            }
            panic!(
                "browser_playback needs {missing}. Install the browser tools with \
                 `. scripts/lib.sh && ensure_browser_tools` (scripts/test.sh does), or set \
                 SKIP_BROWSER_TESTS=1 to skip this test locally (never in CI)."
            );
        }
    };
    let started = Instant::now();
    let mut stack = Stack::start();
    // An edge that carries the session token as a path segment: the MPD's injected BaseURL.
    let path_edge = stack.spawn_edge("edge-path", &[("EDGE_SESSIONS__MODE", "path")]);
    let http = reqwest::Client::new();
    wait_healthy(&http, &stack.cp("/health")).await;
    wait_healthy(&http, &stack.edge("/ready")).await;
    wait_healthy(&http, &format!("{path_edge}/ready")).await;

    // A Pro viewer (DRM allowed) who owns both titles.
    let viewer = "6a1c0de2-5b7e-4f3a-9c2d-b10b5e7ab001";
    stack.cli(&["subscribe", "--user", viewer, "--tier", "pro"]);
    let jwt = stack.cli(&["token", "--sub", viewer]);

    let source = stack.path("source.mp4");
    make_source_video(&source).await;

    // Both titles through the control plane's pipeline: the default (cbcs CMAF, HLS + DASH)
    // and AES-128 MPEG-TS HLS.
    let cbcs_video = stack.publish_title(&http, &jwt, &source, None).await;
    let aes_video = stack
        .publish_title(&http, &jwt, &source, Some("aes-128"))
        .await;
    eprintln!(
        "prepared both titles in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let page = format!("http://127.0.0.1:{}/player.html", serve_page().await);
    let dash_player_at = |edge: &str, player: &str, wrong_key: bool| {
        json!({
            "pageUrl": page,
            "player": player,
            "manifestApi": format!("{edge}/playback/{cbcs_video}/manifest"),
            "jwt": jwt,
            "wrongKey": wrong_key,
            "minSeconds": PLAY_SECONDS,
            "timeoutMs": 20000,
            "regions": regions(),
        })
    };
    let dash_player =
        |player: &str, wrong_key: bool| dash_player_at(&stack.edge(""), player, wrong_key);
    let hls = |wrong_key: bool| {
        json!({
            "pageUrl": page,
            "player": "hls",
            "manifestApi": stack.edge(&format!("/playback/{aes_video}/manifest")),
            "jwt": jwt,
            "wrongKey": wrong_key,
            "minSeconds": PLAY_SECONDS,
            "timeoutMs": 20000,
            "regions": regions(),
        })
    };

    // 1. Shaka Player, cbcs DASH from the manifest answer alone, ClearKey from the MPD.
    let report = drive(&tools, dash_player("shaka", false)).await;
    assert_played("shaka cbcs dash clearkey", &report);
    assert_eq!(
        report["report"]["licenseStatuses"],
        json!([200]),
        "{report}"
    );
    assert_eq!(report["report"]["keySystem"], "org.w3.clearkey", "{report}");
    let dash = report["report"]["dashUrl"].as_str().unwrap_or_default();
    assert!(
        dash.starts_with(&stack.edge(&format!("/hls/{cbcs_video}/manifest.mpd?hdnts="))),
        "{dash}"
    );

    // 1b. The same from the path-mode edge: the token rides in the MPD's BaseURL.
    let report = drive(&tools, dash_player_at(&path_edge, "shaka", false)).await;
    assert_played("shaka cbcs dash clearkey, path token", &report);
    assert_eq!(
        report["report"]["licenseStatuses"],
        json!([200]),
        "{report}"
    );
    let dash = report["report"]["dashUrl"].as_str().unwrap_or_default();
    assert!(
        dash.starts_with(&format!("{path_edge}/hls/{cbcs_video}/hdnts=")) && !dash.contains('?'),
        "the path edge's dashUrl: {dash}"
    );

    // 2. The same with every key in that license replaced: the pixel check must fail.
    let report = drive(&tools, dash_player("shaka", true)).await;
    assert_wrong_key_fails("shaka cbcs, wrong key", &report);
    assert_eq!(
        report["report"]["licenseStatuses"],
        json!([200]),
        "{report}"
    );

    // 2b. dash.js plays the same MPD the same way, and fails the same check with a wrong key.
    let report = drive(&tools, dash_player("dashjs", false)).await;
    assert_played("dash.js cbcs dash clearkey", &report);
    assert_eq!(
        report["report"]["licenseStatuses"],
        json!([200]),
        "{report}"
    );
    assert_eq!(report["report"]["keySystem"], "org.w3.clearkey", "{report}");
    let report = drive(&tools, dash_player("dashjs", true)).await;
    assert_wrong_key_fails("dash.js cbcs, wrong key", &report);

    // 2c. hls.js on the CMAF HLS side of the same title, ClearKey EME from the playlist's
    // org.w3.clearkey key tag (the license URL and JWT from the page: hls.js reads no license
    // URL from a playlist); a wrong key fails the same check.
    let hls_clearkey = |wrong_key: bool| dash_player("hls-clearkey", wrong_key);
    let report = drive(&tools, hls_clearkey(false)).await;
    assert_played("hls.js cbcs cmaf hls clearkey", &report);
    assert_eq!(
        report["report"]["licenseStatuses"],
        json!([200]),
        "{report}"
    );
    let report = drive(&tools, hls_clearkey(true)).await;
    assert_wrong_key_fails("hls.js cbcs, wrong key", &report);

    // 3. hls.js, AES-128 from the transcoder, keys from the edge's /keys/ URIs; and a wrong key.
    let report = drive(&tools, hls(false)).await;
    assert_played("hls.js aes-128", &report);
    assert!(
        report["report"]["keysLoaded"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{report}"
    );
    let report = drive(&tools, hls(true)).await;
    assert_wrong_key_fails("hls.js aes-128, wrong key", &report);

    // Every request reached the edge and was admitted: manifests and segments by the signed
    // session token, the licenses and keys by the viewer's entitlement.
    let cenc = edge_requests(&stack, &cbcs_video);
    let aes = edge_requests(&stack, &aes_video);
    for (what, requests, wanted) in [
        ("cbcs DASH manifest", &cenc, "/manifest.mpd"),
        ("cbcs init segment", &cenc, "/init.mp4"),
        ("cbcs media segment", &cenc, ".m4s"),
        ("ClearKey license", &cenc, "/drm/clearkey/"),
        ("AES-128 media playlist", &aes, ".m3u8"),
        ("AES-128 segment", &aes, ".ts"),
        ("AES-128 key", &aes, "/keys/"),
    ] {
        assert!(
            requests
                .iter()
                .any(|r| r.path.contains(wanted) && r.status == 200),
            "the edge served no {what}: {requests:#?}"
        );
    }
    let refused: Vec<_> = cenc
        .iter()
        .chain(&aes)
        .filter(|r| r.status >= 400)
        .collect();
    assert!(
        refused.is_empty(),
        "the edge refused requests: {refused:#?}"
    );

    // The content key never reached either service's logs (asked for here with the JWT and
    // the MPD's key id, after the playbacks).
    let logs = stack.logs();
    let key_bytes = clearkey_key(&stack, &http, &jwt, &cbcs_video).await;
    let key_hex: String = key_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key_bytes);
    assert!(
        !logs.contains(&key_hex),
        "the content key (hex) is in the logs"
    );
    assert!(
        !logs.contains(&b64url),
        "the content key (base64url) is in the logs"
    );
    assert!(!logs.contains(&jwt), "the viewer JWT is in the logs");
    eprintln!(
        "browser playback test took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// The title's content key, as a ClearKey license with the viewer's JWT gives it for the key
/// id its MPD names.
async fn clearkey_key(stack: &Stack, http: &reqwest::Client, jwt: &str, video: &str) -> Vec<u8> {
    let answer = manifest_answer(http, &stack.edge(""), jwt, video).await;
    let mpd = get_text(http, answer["dashUrl"].as_str().unwrap()).await;
    let at = mpd.find("cenc:default_KID=\"").expect("default_KID") + 18;
    let kid = hex_decode(&mpd[at..at + 36].replace('-', ""));
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let license: Value = http
        .post(stack.edge(&format!("/drm/clearkey/{video}")))
        .bearer_auth(jwt)
        .json(&json!({"kids": [b64.encode(&kid)]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    b64.decode(license["keys"][0]["k"].as_str().expect("a key"))
        .unwrap()
}

/// One line of the edge's access log.
#[derive(Debug)]
#[allow(dead_code)] // read through Debug in failure messages
struct EdgeRequest {
    route: String,
    method: String,
    path: String,
    status: u64,
}

/// The edge's access-log lines about `video_id` (JSON lines with the fields at top level).
fn edge_requests(stack: &Stack, video_id: &str) -> Vec<EdgeRequest> {
    let log = std::fs::read_to_string(stack.path("edge-proxy.log")).unwrap_or_default();
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|l| l["message"] == "request" && l["videoId"] == video_id)
        .map(|l| EdgeRequest {
            route: l["route"].as_str().unwrap_or_default().to_string(),
            method: l["method"].as_str().unwrap_or_default().to_string(),
            path: l["path"].as_str().unwrap_or_default().to_string(),
            status: l["status"].as_u64().unwrap_or_default(),
        })
        .collect()
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}
