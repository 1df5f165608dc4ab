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
