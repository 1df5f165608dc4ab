//! Test harness: runs the real `edge-proxy` binary on an ephemeral port with temporary
//! secrets, configuration and media, and gives tests a client, token minting and raw HTTP.
//! The control plane is absent (its URL points at an unused port) unless a test starts the
//! stub in [`control_plane`].

#![allow(dead_code)]

pub mod control_plane;
pub mod drm_provider;
pub mod envoy;
pub mod scenarios;
pub mod stack;
pub mod verdict_corpus;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use playback::token::edgeauth::{EdgeAuth, EdgeAuthConfig};
use playback::token::session::{SessionSigner, SessionSubject};

pub const VIDEO: &str = "0b6f2a8e-3c1d-4e5f-9a7b-112233445566";
pub const OTHER_VIDEO: &str = "9d8c7b6a-5f4e-4d3c-8b2a-665544332211";
pub const USER: &str = "user-42@example.com";
/// Size of the large segment, big enough to need many 64 KiB chunks.
pub const BIG_SEGMENT_LEN: usize = 3 * 1024 * 1024 + 12_345;
/// Bytes of a file placed next to the origin root that must never be served.
/// The transport key in the test secrets (`key-transport.key`).
pub const TRANSPORT_KEY: [u8; 32] = [9; 32];
/// The service token in the test secrets (`service-token`).
pub fn service_token() -> String {
    "ab".repeat(32)
}
pub const SECRET_CONTENT: &str = "TOP-SECRET-OUTSIDE-ORIGIN";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Temporary secret files, in the layout `control-plane init-secrets` writes.
pub struct SecretFiles {
    pub dir: PathBuf,
    pub url_signing_key: Vec<u8>,
    pub jwt_secret: Vec<u8>,
}

impl SecretFiles {
    pub fn create(dir: &Path) -> SecretFiles {
        std::fs::create_dir_all(dir).unwrap();
        let url_signing_key: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(7).wrapping_add(3))
            .collect();
        let jwt_secret: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(13).wrapping_add(1))
            .collect();
        std::fs::write(dir.join("url-signing.key"), &url_signing_key).unwrap();
        std::fs::write(dir.join("jwt-hs256.key"), &jwt_secret).unwrap();
        std::fs::write(dir.join("key-transport.key"), TRANSPORT_KEY).unwrap();
        std::fs::write(dir.join("service-token"), service_token()).unwrap();
        SecretFiles {
            dir: dir.to_path_buf(),
            url_signing_key,
            jwt_secret,
        }
    }
}

/// The media every origin serves: a master playlist, one AES-128 variant, segments.
pub struct Media {
    /// `{root}/{VIDEO}/...`
    pub root: PathBuf,
}

impl Media {
    pub fn create(root: &Path) -> Media {
        let title = root.join(VIDEO);
        std::fs::create_dir_all(title.join("720p")).unwrap();
        std::fs::write(
            title.join("master.m3u8"),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720\n720p/index.m3u8\n",
        )
        .unwrap();
        std::fs::write(
            title.join("720p/index.m3u8"),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.com/k/key-1\",IV=0x00000000000000000000000000000001\n\
             #EXTINF:6.0,\nseg_000.ts\n#EXTINF:6.0,\nseg_001.ts?part=1\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        std::fs::write(title.join("720p/seg_000.ts"), big_segment()).unwrap();
        std::fs::write(title.join("720p/seg_001.ts"), b"small segment bytes").unwrap();
        let mut big = String::from("#EXTM3U\n");
        while big.len() <= 70_000 {
            big.push_str("#EXT-X-COMMENT padding padding padding padding padding padding\n");
        }
        std::fs::write(title.join("big.m3u8"), big).unwrap();
        std::fs::write(root.parent().unwrap().join("secret.txt"), SECRET_CONTENT).unwrap();
        std::os::unix::fs::symlink(
            root.parent().unwrap().join("secret.txt"),
            title.join("720p/leak.ts"),
        )
        .unwrap();
        Media {
            root: root.to_path_buf(),
        }
    }

    pub fn file(&self, relative: &str) -> Vec<u8> {
        std::fs::read(self.root.join(VIDEO).join(relative)).unwrap()
    }
}

/// Deterministic, non-repeating-looking bytes.
pub fn big_segment() -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..BIG_SEGMENT_LEN)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// How the edge under test reaches its media.
pub enum OriginSetup<'a> {
    Directory(&'a Path),
    Http(String),
    /// Several HTTP origin servers (`origin.urls`) and their health checks.
    HttpServers {
        urls: Vec<String>,
        /// `origin.health_check_path` (`""` for a TCP check).
        health_check_path: String,
        health_check_interval_ms: u64,
    },
    /// An S3 bucket (`[origin.s3]`); the secret and token are written to files next to the
    /// other test secrets.
    S3 {
        endpoint: String,
        bucket: String,
        prefix: String,
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
}

/// A running edge process; killed on drop.
pub struct Edge {
    pub addr: SocketAddr,
    pub base: String,
    pub signer: SessionSigner,
    pub jwt_secret: Vec<u8>,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub config_path: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

/// A signer with the test secrets' url-signing key and the edge's defaults.
pub fn test_signer() -> SessionSigner {
    let key: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(3))
        .collect();
    SessionSigner::new(EdgeAuth::new(EdgeAuthConfig::new(key)))
}

/// Extra configuration for an edge under test.
#[derive(Default, Clone)]
pub struct EdgeOptions {
    /// Lines added to `[server]`.
    pub server: String,
    /// Lines added to `[signed_urls]`.
    pub signed_urls: String,
    /// Whole sections appended to the file (`[sessions]`, `[redis]`, ...).
    pub extra: String,
    /// Lines added to `[drm]` (which already names a temporary outbox and events file).
    pub drm: String,
}

impl Edge {
    /// An edge whose control plane is absent (its URL points at an unused port).
    pub fn start(origin: OriginSetup) -> Edge {
        Edge::start_with(origin, &format!("http://127.0.0.1:{}", free_port()))
    }

    /// An edge using the control plane at `control_plane_url`.
    pub fn start_with(origin: OriginSetup, control_plane_url: &str) -> Edge {
        Edge::start_opts(origin, control_plane_url, &EdgeOptions::default())
    }

    /// An edge with extra configuration.
    pub fn start_opts(origin: OriginSetup, control_plane_url: &str, options: &EdgeOptions) -> Edge {
        let dir = tempfile::tempdir().unwrap();
        let secrets = SecretFiles::create(&dir.path().join("secrets"));
        let port = free_port();
        let mut config = edge_config(port, &secrets.dir, &origin, control_plane_url);
        config = config.replace(
            "[signed_urls]\n",
            &format!("[signed_urls]\n{}\n", options.signed_urls),
        );
        config = config.replace(
            "threads = 1\n",
            &format!("threads = 1\n{}\n", options.server),
        );
        // `[drm]` is the last section of the base file, so its extra lines (and any
        // `[drm.*]` tables they open) follow it directly.
        config.push_str(&options.drm);
        config.push('\n');
        config.push_str(&options.extra);
        let config_path = dir.path().join("edge.toml");
        std::fs::write(&config_path, config).unwrap();

        let mut child = Command::new(env!("CARGO_BIN_EXE_edge-proxy"))
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("edge-proxy starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("\"edge listening\"") {
                    let _ = ready_tx.send(line.clone());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let line = match ready_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                // Let the readers collect what the process printed before it exited.
                std::thread::sleep(Duration::from_millis(300));
                panic!(
                    "edge did not log \"edge listening\"; status {:?}; logs: {:#?}",
                    child.wait(),
                    logs.lock().unwrap()
                );
            }
        };
        let announced: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        assert_eq!(announced["addr"], format!("127.0.0.1:{port}"));

        Edge {
            addr: ([127, 0, 0, 1], port).into(),
            base: format!("http://127.0.0.1:{port}"),
            signer: test_signer(),
            jwt_secret: secrets.jwt_secret,
            logs,
            config_path,
            child,
            _dir: dir,
        }
    }

    /// The process id of the edge.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A valid session token for `video` and `user` expiring at `expires_at`.
    pub fn session_token_for(&self, video: &str, user: &str, expires_at: u64) -> String {
        self.signer
            .mint_session(video, &subject(user), expires_at, None)
    }

    /// A valid session token for `video` expiring at `expires_at`.
    pub fn token_for(&self, video: &str, expires_at: u64) -> String {
        self.session_token_for(video, USER, expires_at)
    }

    /// A manifest token (master playlist only) for `video`, good for ten minutes.
    pub fn manifest_token(&self, video: &str) -> String {
        self.signer
            .mint_manifest(video, &subject(USER), now() + 600)
    }

    /// A viewer JWT for `user`, good for ten minutes.
    pub fn jwt(&self, user: &str) -> String {
        self.jwt_with(user, None, &[])
    }

    /// A viewer JWT for `user` with a `jti` and roles.
    pub fn jwt_with(&self, user: &str, jti: Option<&str>, roles: &[&str]) -> String {
        playback::jwt::mint_hs256(
            &self.jwt_secret,
            &playback::jwt::Claims {
                sub: user.into(),
                iss: "streaming-dev".into(),
                aud: "streaming-edge".into(),
                exp: now() + 600,
                nbf: None,
                iat: Some(now()),
                jti: jti.map(str::to_string),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                device_id: None,
            },
        )
    }

    /// A valid session token for [`VIDEO`], good for ten minutes.
    pub fn token(&self) -> String {
        self.token_for(VIDEO, now() + 600)
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// A request sent byte for byte, so paths are not normalized by a client library.
    pub fn raw_get(&self, target: &str) -> RawResponse {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        RawResponse::parse(&bytes)
    }

    /// A raw request with extra header lines (`"Cookie: a=b\r\n"`).
    pub fn raw_get_with(&self, target: &str, headers: &str) -> RawResponse {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: edge\r\n{headers}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        RawResponse::parse(&bytes)
    }

    pub fn all_logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request written byte for byte to `addr` (`headers` as `"Name: value\r\n"` lines).
pub fn raw_request(addr: SocketAddr, method: &str, target: &str, headers: &str) -> RawResponse {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return RawResponse {
            status: 0,
            head: String::new(),
            body: Vec::new(),
        };
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: edge\r\n{headers}Connection: close\r\n\r\n"
    );
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    RawResponse::parse(&bytes)
}

pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    fn parse(bytes: &[u8]) -> RawResponse {
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(bytes.len());
        let head = String::from_utf8_lossy(&bytes[..split]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = bytes.get(split + 4..).unwrap_or_default().to_vec();
        RawResponse { status, head, body }
    }

    /// Every value of header `name` (case-insensitive).
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    pub fn error_code(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        value["error"].as_str().map(str::to_string)
    }
}

/// The TOML configuration for an edge under test.
pub fn edge_config(
    port: u16,
    secrets: &Path,
    origin: &OriginSetup,
    control_plane_url: &str,
) -> String {
    let origin = match origin {
        OriginSetup::Directory(dir) => format!(
            "kind = \"directory\"\ndirectory = {:?}",
            dir.display().to_string()
        ),
        OriginSetup::Http(url) => format!("kind = \"http\"\nurl = {url:?}"),
        OriginSetup::HttpServers {
            urls,
            health_check_path,
            health_check_interval_ms,
        } => format!(
            "kind = \"http\"\nurls = {urls:?}\nhealth_check_path = {health_check_path:?}\n\
             health_check_interval_ms = {health_check_interval_ms}"
        ),
        OriginSetup::S3 {
            endpoint,
            bucket,
            prefix,
            access_key_id,
            secret_access_key,
            session_token,
        } => {
            let secret_file = secrets.join("s3-secret-access-key");
            std::fs::write(&secret_file, format!("{secret_access_key}\n")).unwrap();
            let token_file = match session_token {
                Some(token) => {
                    let file = secrets.join("s3-session-token");
                    std::fs::write(&file, token).unwrap();
                    file.display().to_string()
                }
                None => String::new(),
            };
            // An inline table, since `[origin]`'s other keys follow.
            format!(
                "kind = \"s3\"\ns3 = {{ endpoint = {endpoint:?}, bucket = {bucket:?}, prefix = {prefix:?}, \
                 access_key_id = {access_key_id:?}, secret_access_key_file = {:?}, \
                 session_token_file = {token_file:?} }}",
                secret_file.display().to_string()
            )
        }
    };
    let s = |name: &str| format!("{:?}", secrets.join(name).display().to_string());
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_base_url = \"http://127.0.0.1:{port}\"\nthreads = 1\n\n\
         [jwt]\nhs256_secret_file = {}\n\n\
         [signed_urls]\nsigning_key_file = {}\n\n\
         [origin]\n{origin}\nmax_playlist_bytes = 65536\ntimeout_ms = 3000\n\n\
         [control_plane]\nurl = {control_plane_url:?}\nservice_token_file = {}\nkey_transport_key_file = {}\ntimeout_ms = 500\n\n\
         [drm]\nlicense_outbox_dir = {}\nevents_file = {}\n",
        s("jwt-hs256.key"),
        s("url-signing.key"),
        s("service-token"),
        s("key-transport.key"),
        s("../license-outbox"),
        s("../events.jsonl"),
    )
}

/// Every URI in a playlist: plain URI lines and `URI="..."` attributes.
pub fn playlist_uris(playlist: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for line in playlist.lines() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            uris.push(line.to_string());
        } else if let Some(start) = line.find("URI=\"") {
            let rest = &line[start + 5..];
            uris.push(rest[..rest.find('"').unwrap()].to_string());
        }
    }
    uris
}

/// A session subject for `user` with a fixed session id.
pub fn subject(user: &str) -> SessionSubject {
    SessionSubject {
        session_id: Some("5e5510115e5510115e5510115e551011".into()),
        user_id: Some(user.into()),
        jti: None,
    }
}
