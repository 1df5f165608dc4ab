//! Zero-downtime operations with the real binary: the edge is upgraded twice under load
//! (`edge-proxy --upgrade`, then SIGQUIT to the running process: Pingora hands the listening
//! sockets over and the old process drains) and finally stopped with SIGTERM. No request of the
//! load fails, a large segment download that spans the hand-over completes byte for byte, and
//! a download in flight at SIGTERM completes while the closed listener refuses new connections.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// Waits for `pid` to exit (it is a child of the test process or of the harness).
fn wait_gone(pid: u32, within: Duration) {
    let deadline = Instant::now() + within;
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
    {
        assert!(Instant::now() < deadline, "process {pid} did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the successor with the same configuration; it waits for the sockets.
fn successor(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_edge-proxy"))
        .arg("--config")
        .arg(config)
        .arg("--upgrade")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("edge-proxy starts")
}

/// One request on a new connection: `Some(status)`, or `None` when it failed (refused, reset,
/// nothing read).
fn one_request(addr: std::net::SocketAddr, target: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).ok()?;
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned();
    head.split_whitespace().nth(1)?.parse().ok()
}

/// A GET on its own connection, read in 64 KiB steps 25 ms apart (about 1 s for the big
/// segment); the whole response.
fn slow_download(addr: std::net::SocketAddr, target: String) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("the download broke: {e}"),
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bytes
    })
}

/// The body of a whole `200` response.
fn body_of(response: &[u8]) -> &[u8] {
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "the download was answered"
    );
    let start = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    &response[start..]
}

#[test]
fn two_upgrades_under_load_and_a_drain_fail_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let sock = dir.path().join("upgrade.sock");
    let options = EdgeOptions {
        server: format!(
            "upgrade_sock = {:?}\nshutdown_grace_secs = 3",
            sock.display().to_string()
        ),
        ..EdgeOptions::default()
    };
    let edge = Edge::start_opts(
        OriginSetup::Directory(&media.root),
        &format!("http://127.0.0.1:{}", free_port()),
        &options,
    );
    let addr = edge.addr;
    let token = edge.token();
    let segment = format!("/hls/{VIDEO}/720p/seg_001.ts?hdnts={token}");
    assert_eq!(one_request(addr, &segment), Some(200));

    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, done, failed, segment) =
                (stop.clone(), done.clone(), failed.clone(), segment.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match one_request(addr, &segment) {
                        Some(200) => done.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();

    // A large download read slowly across the first hand-over.
    let big_target = format!("/hls/{VIDEO}/720p/seg_000.ts?hdnts={token}");
    let slow = slow_download(addr, big_target.clone());

    let mut current = edge.pid();
    let mut successors = Vec::new();
    for round in 0..2 {
        std::thread::sleep(Duration::from_millis(500));
        let next = successor(&edge.config_path);
        // The successor listens on the upgrade socket before it is told to take over.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(
                Instant::now() < deadline,
                "round {round}: no upgrade socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        let before = done.load(Ordering::Relaxed);
        signal(current, "QUIT");
        wait_gone(current, Duration::from_secs(15));
        let _ = std::fs::remove_file(&sock);
        current = next.id();
        successors.push(next);
        // The new process answers, and the load went on while the old one drained.
        assert_eq!(one_request(addr, &segment), Some(200), "round {round}");
        assert!(
            done.load(Ordering::Relaxed) > before,
            "round {round}: load stalled"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.join().unwrap();
    }
    let expected = media.file("720p/seg_000.ts");
    assert_eq!(body_of(&slow.join().unwrap()), &expected[..]);
    let (ok, bad) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(
        bad,
        0,
        "{bad} of {} requests failed across two upgrades",
        ok + bad
    );
    assert!(ok > 50, "the load ran ({ok} requests)");

    // SIGTERM: the listener closes at once (probes see the edge unready), and a download in
    // flight completes within the grace period.
    let slow = slow_download(addr, big_target);
    std::thread::sleep(Duration::from_millis(200));
    signal(current, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(addr).is_err(),
        "a draining edge takes no new connection"
    );
    assert_eq!(body_of(&slow.join().unwrap()), &expected[..]);
    wait_gone(current, Duration::from_secs(15));
    for mut child in successors {
        let _ = child.wait();
    }
}
