//! The real binary's `import`, `revoke-key` and `subscribe` commands: a packaged title is
//! copied into the origin with its keys sealed (never printed), bad input is refused with
//! nothing left behind, and changes are published to edges through Redis
//! (`TEST_REDIS_URL`, random key prefix).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use control_plane::db::Db;
use control_plane::keys::local::LocalKeyCustody;
use control_plane::keys::KeyCustody;
use futures::StreamExt;
use rand::RngCore;
use serde_json::{json, Value};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_control-plane");

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

fn ok(config: &Path, args: &[&str]) -> (String, String) {
    let out = run(config, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

fn refused(config: &Path, args: &[&str]) -> String {
    let out = run(config, args);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

struct Setup {
    _root: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    prefix: String,
}

fn setup() -> Setup {
    let root_dir = tempfile::tempdir().unwrap();
    let root = root_dir.path().to_path_buf();
    let mut bytes = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let prefix = format!("cp-cli-{}:", hex::encode(bytes));
    control_plane::secrets::init_secrets(&root.join("secrets")).unwrap();
    let config = root.join("cp.toml");
    let r = root.display();
    std::fs::write(
        &config,
        format!(
            r#"[database]
url = "sqlite://{r}/cp.db?mode=rwc"
[storage]
uploads_dir = "{r}/uploads"
origin_dir = "{r}/origin"
[jwt]
hs256_secret_file = "{r}/secrets/jwt-hs256.key"
[keys]
master_key_file = "{r}/secrets/master.key"
[internal]
service_token_file = "{r}/secrets/service-token"
key_transport_key_file = "{r}/secrets/key-transport.key"
[signed_urls]
signing_key_file = "{r}/secrets/url-signing.key"
[redis]
url = "{url}"
key_prefix = "{prefix}"
"#,
            url = redis_url()
        ),
    )
    .unwrap();
    Setup {
        _root: root_dir,
        root,
        config,
        prefix,
    }
}

/// A directory as Shaka Packager leaves it: HLS master, DASH manifest, segments.
fn packaged(root: &Path) -> PathBuf {
    let dir = root.join("packaged");
    std::fs::create_dir_all(dir.join("video")).unwrap();
    std::fs::write(
        dir.join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nvideo/stream.m3u8\n",
    )
    .unwrap();
    std::fs::write(dir.join("manifest.mpd"), "<MPD/>").unwrap();
    std::fs::write(dir.join("video/stream.m3u8"), "#EXTM3U\n").unwrap();
    std::fs::write(dir.join("video/init.mp4"), vec![9u8; 2048]).unwrap();
    dir
}

fn origin_entries(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("origin"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn import_copies_the_title_and_seals_its_keys() {
    let s = setup();
    let dir = packaged(&s.root);
    let raw_key = [0xA5u8; 16];
    let hex_key = "00112233445566778899aabbccddeeff";
    std::fs::write(s.root.join("raw.key"), raw_key).unwrap();
    std::fs::write(s.root.join("hex.key"), format!("{hex_key}\n")).unwrap();
    let (k1, k2) = (Uuid::new_v4(), Uuid::new_v4());
    let dir_arg = dir.to_string_lossy().into_owned();
    let raw_arg = s.root.join("raw.key").to_string_lossy().into_owned();
    let hex_arg = s.root.join("hex.key").to_string_lossy().into_owned();
    let (k1s, k2s) = (k1.to_string(), k2.to_string());

    // Refusals leave nothing behind in the origin.
    let bad_key = s.root.join("bad.key");
    std::fs::write(&bad_key, [1u8; 15]).unwrap();
    let bad_arg = bad_key.to_string_lossy().into_owned();
    let base = [
        "import", "--owner", "studio", "--dir", &dir_arg, "--name", "Demo",
    ];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [base, extra].concat()
    }
    let err = refused(
        &s.config,
        &with(&base, &["--drm", "--key-id", &k1s, "--key-file", &bad_arg]),
    );
    assert!(err.contains("16 raw bytes or 32 hex"), "{err}");
    let err = refused(&s.config, &with(&base, &["--drm"]));
    assert!(err.contains("--drm"), "{err}");
    let err = refused(
        &s.config,
        &with(&base, &["--key-id", &k1s, "--key-file", &raw_arg]),
    );
    assert!(err.contains("--drm"), "{err}");
    let err = refused(&s.config, &with(&base, &["--drm", "--key-id", &k1s]));
    assert!(err.contains("pairs"), "{err}");
    let err = refused(
        &s.config,
        &with(
            &base,
            &[
                "--drm",
                "--key-id",
                &k1s,
                "--key-file",
                &raw_arg,
                "--key-id",
                &k1s,
                "--key-file",
                &hex_arg,
            ],
        ),
    );
    assert!(err.contains("twice"), "{err}");
    let empty = s.root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = refused(
        &s.config,
        &[
            "import",
            "--owner",
            "studio",
            "--dir",
            &empty.to_string_lossy(),
            "--name",
            "x",
        ],
    );
    assert!(err.contains("master.m3u8"), "{err}");
    assert!(
        origin_entries(&s.root).iter().all(|n| n == ".staging"),
        "{:?}",
        origin_entries(&s.root)
    );

    let (stdout, stderr) = ok(
        &s.config,
        &with(
            &base,
            &[
                "--drm",
                "--key-id",
                &k1s,
                "--key-file",
                &raw_arg,
                "--key-id",
                &k2s,
                "--key-file",
                &hex_arg,
            ],
        ),
    );
    let printed: Value = serde_json::from_str(stdout.trim()).unwrap();
    let video: Uuid = printed["videoId"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        printed,
        json!({"videoId": video.to_string(), "keyIds": [k1s, k2s]})
    );
    for secret in [hex_key.to_string(), hex::encode(raw_key)] {
        assert!(
            !stdout.contains(&secret) && !stderr.contains(&secret),
            "key bytes printed"
        );
    }

    // The tree is in the origin under the video id, staging is empty.
    let published = s.root.join("origin").join(video.to_string());
    assert_eq!(
        std::fs::read(published.join("master.m3u8")).unwrap(),
        std::fs::read(dir.join("master.m3u8")).unwrap()
    );
    assert_eq!(
        std::fs::read(published.join("video/init.mp4"))
            .unwrap()
            .len(),
        2048
    );
    assert_eq!(
        std::fs::read_dir(s.root.join("origin/.staging"))
            .unwrap()
            .count(),
        0
    );

    // Ready, DRM, owned; keys stored only sealed, opening to the files' bytes.
    let db = Db::connect(&format!("sqlite://{}/cp.db", s.root.display()), 1)
        .await
        .unwrap();
    let file = db.file(video).await.unwrap().unwrap();
    assert!(file.is_ready() && file.drm_protected);
    assert_eq!(
        (file.owner_id.as_str(), file.name.as_str()),
        ("studio", "Demo")
    );
    assert_eq!(file.content_key_id, Some(k1));
    let custody = LocalKeyCustody::open(&s.root.join("secrets/master.key")).unwrap();
    for (key_id, expected) in [(k1, raw_key.to_vec()), (k2, hex::decode(hex_key).unwrap())] {
        let stored = db.content_key(video, key_id).await.unwrap().unwrap();
        assert!(!stored.content_key.contains(&hex::encode(&expected)));
        let opened = custody
            .unwrap(&video.to_string(), &key_id.to_string(), &stored.content_key)
            .await
            .unwrap();
        assert_eq!(opened.bytes().as_slice(), expected.as_slice());
    }
    db.close().await;

    // revoke-key tells edges through Redis; a repeat is idempotent; unknown keys fail.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(format!("{}invalidations", s.prefix))
        .await
        .unwrap();
    let video_s = video.to_string();
    let (stdout, _) = ok(
        &s.config,
        &["revoke-key", "--video", &video_s, "--key", &k2s],
    );
    let revoked: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (
            &revoked["alreadyRevoked"],
            &revoked["edgesNotified"],
            &revoked["keyId"]
        ),
        (&json!(false), &json!(true), &json!(k2s))
    );
    let msg = tokio::time::timeout(Duration::from_secs(5), pubsub.on_message().next())
        .await
        .unwrap()
        .unwrap();
    let payload: Value = serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(
        payload,
        json!({"kind": "key", "videoId": video_s, "keyId": k2s})
    );
    let (stdout, _) = ok(
        &s.config,
        &["revoke-key", "--video", &video_s, "--key", &k2s],
    );
    let again: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (&again["alreadyRevoked"], &again["revokedAt"]),
        (&json!(true), &revoked["revokedAt"])
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), pubsub.on_message().next()).await;
    let err = refused(
        &s.config,
        &[
            "revoke-key",
            "--video",
            &video_s,
            "--key",
            &Uuid::new_v4().to_string(),
        ],
    );
    assert!(err.contains("no content key"), "{err}");

    // subscribe publishes an entitlement invalidation for every title of the user.
    let (stdout, _) = ok(
        &s.config,
        &["subscribe", "--user", "viewer", "--tier", "pro"],
    );
    assert_eq!(stdout.trim(), "viewer is now on the pro tier");
    let msg = tokio::time::timeout(Duration::from_secs(5), pubsub.on_message().next())
        .await
        .unwrap()
        .unwrap();
    let payload: Value = serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(
        payload,
        json!({"kind": "entitlement", "userId": "viewer", "videoId": null})
    );
}
