//! Start-up failures: the binary exits non-zero with one line naming the key and the fix.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn run_to_exit(mut command: Command) -> (i32, String) {
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status.code().unwrap_or(-1), stderr);
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("edge-proxy kept running with a bad configuration");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn edge(config: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edge-proxy"));
    command.arg("--config").arg(config);
    command
}

#[test]
fn missing_secret_file_names_the_key_and_the_init_command() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edge.toml");
    let origin = dir.path().join("origin");
    std::fs::write(
        &config,
        edge_config(
            free_port(),
            &dir.path().join("no-secrets"),
            &OriginSetup::Directory(&origin),
            "http://127.0.0.1:9",
        ),
    )
    .unwrap();
    let (code, stderr) = run_to_exit(edge(&config));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("jwt.hs256_secret_file"), "{stderr}");
    assert!(
        stderr.contains("control-plane init-secrets --dir data/secrets"),
        "{stderr}"
    );
}

#[test]
fn invalid_value_from_the_environment_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretFiles::create(&dir.path().join("secrets"));
    let config = dir.path().join("edge.toml");
    let origin = dir.path().join("origin");
    std::fs::write(
        &config,
        edge_config(
            free_port(),
            &secrets.dir,
            &OriginSetup::Directory(&origin),
            "http://127.0.0.1:9",
        ),
    )
    .unwrap();
    let mut command = edge(&config);
    command.env("EDGE_SERVER__THREADS", "0");
    let (code, stderr) = run_to_exit(command);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("server.threads"), "{stderr}");
}

#[test]
fn missing_config_file_is_an_error() {
    let (code, stderr) = run_to_exit(edge(std::path::Path::new("/nonexistent/edge.toml")));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/nonexistent/edge.toml"), "{stderr}");
}
