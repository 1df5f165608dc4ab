//! Viewer JWT keys at the edge: RS256/ES256 keys from a real JWKS served over HTTP, an EdDSA
//! key from a PEM file, the legacy HS256 secret, the verified-token cache, rate-limited JWKS
//! refetching on an unknown `kid`, key rotation, and HS/RS confusion refused with 401.
//!
//! Self-contained: it starts the real `edge-proxy` binary with its own small configuration.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::Json;
use playback::jwt::{Algorithm, JwtSigner};
use serde_json::{json, Value};

const VIDEO: &str = "0b6f2a8e-3c1d-4e5f-9a7b-112233445566";
const USER: &str = "viewer-7@example.com";
const HS256_SECRET: &[u8] = b"jwt-keys-test-hs256-secret-32byt";

/// The JWKS refetch rate limit configured for the edge under test.
const MIN_REFETCH_SECS: u64 = 2;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../playback/tests/fixtures/jwt")
        .join(name)
}

fn signer(alg: Algorithm, file: &str, kid: &str) -> JwtSigner {
    let pem = std::fs::read_to_string(fixture(file)).unwrap();
    JwtSigner::from_pem(alg, &pem).unwrap().with_kid(kid)
}

#[derive(Clone)]
struct Provider {
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks(State(provider): State<Provider>) -> Json<Value> {
    provider.fetches.fetch_add(1, Ordering::SeqCst);
    Json(provider.jwks.lock().unwrap().clone())
}

async fn entitlement(
    Path(video): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    Json(json!({
        "videoId": video, "userId": query.get("userId"), "allowed": true, "reason": null,
        "drmProtected": false, "ready": true,
    }))
}

/// The auth service's JWKS plus a control plane that entitles everyone, on one port.
async fn start_provider(keys: Vec<Value>) -> (String, Provider) {
    let provider = Provider {
        jwks: Arc::new(Mutex::new(json!({ "keys": keys }))),
        fetches: Arc::new(AtomicUsize::new(0)),
    };
    let app = axum::Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/internal/v1/entitlements/{video}", get(entitlement))
        .with_state(provider.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), provider)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> Value {
    json!({
        "sub": USER, "iss": "https://auth.example.com", "aud": "streaming-edge",
        "iat": now(), "exp": now() + 600,
    })
}

/// A running edge process with JSON logs captured; killed on drop.
struct RunningEdge {
    base: String,
    logs: Arc<Mutex<Vec<String>>>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RunningEdge {
    /// An edge whose control plane and JWKS live at `provider`, with an extra EdDSA key
    /// (`ed-cfg`) from a PEM file and the HS256 secret file.
    fn start(provider: &str) -> RunningEdge {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(path("jwt-hs256.key"), HS256_SECRET).unwrap();
        std::fs::write(path("url-signing.key"), [7u8; 32]).unwrap();
        std::fs::write(path("key-transport.key"), [9u8; 32]).unwrap();
        std::fs::write(path("service-token"), "ab".repeat(32)).unwrap();
        std::fs::create_dir_all(path("origin")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_base_url = \"http://127.0.0.1:{port}\"\nthreads = 1\n\n\
             [jwt]\nhs256_secret_file = {:?}\nissuer = \"https://auth.example.com\"\n\
             jwks_url = \"{provider}/.well-known/jwks.json\"\njwks_min_refetch_secs = {MIN_REFETCH_SECS}\n\n\
             [[jwt.keys]]\nkid = \"ed-cfg\"\nalg = \"EdDSA\"\npublic_key_file = {:?}\n\n\
             [signed_urls]\nsigning_key_file = {:?}\n\n\
             [origin]\nkind = \"directory\"\ndirectory = {:?}\n\n\
             [control_plane]\nurl = \"{provider}\"\nservice_token_file = {:?}\nkey_transport_key_file = {:?}\ntimeout_ms = 2000\n\n\
             [drm]\nlicense_outbox_dir = {:?}\nevents_file = {:?}\n",
            path("jwt-hs256.key"),
            fixture("ed25519.pub.pem").display().to_string(),
            path("url-signing.key"),
            path("origin"),
            path("service-token"),
            path("key-transport.key"),
            path("license-outbox"),
            path("events.jsonl"),
        );
        std::fs::write(path("edge.toml"), config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_edge-proxy"))
            .arg("--config")
            .arg(path("edge.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("edge-proxy starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (stream, ready) in [
            (
                Box::new(stdout) as Box<dyn std::io::Read + Send>,
                Some(ready_tx),
            ),
            (Box::new(stderr), None),
        ] {
            let sink = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains("\"edge listening\"") {
                        if let Some(ready) = &ready {
                            let _ = ready.send(());
                        }
                    }
                    sink.lock().unwrap().push(line);
                }
            });
        }
        if ready_rx.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = child.kill();
            panic!("edge did not start; logs: {:#?}", logs.lock().unwrap());
        }
        RunningEdge {
            base: format!("http://127.0.0.1:{port}"),
            logs,
            child,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn all_logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for RunningEdge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status and error code of a manifest request with `token` as the bearer.
async fn manifest(edge: &RunningEdge, token: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(edge.url(&format!("/playback/{VIDEO}/manifest")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error"].as_str().unwrap_or("").to_string())
}

async fn metric(edge: &RunningEdge, series: &str) -> u64 {
    let text = reqwest::get(edge.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_and_configured_keys_rotation_and_confusion() {
    let rsa_a = signer(Algorithm::Rs256, "rsa-2048-a.pem", "rsa-a");
    let rsa_b = signer(Algorithm::Rs256, "rsa-2048-b.pem", "rsa-b");
    let ec = signer(Algorithm::Es256, "p256.pem", "ec-1");
    let ed = signer(Algorithm::EdDsa, "ed25519.pem", "ed-cfg");
    let (base, provider) =
        start_provider(vec![rsa_a.public_jwk().unwrap(), ec.public_jwk().unwrap()]).await;

    let started = Instant::now();
    let edge = RunningEdge::start(&base);
    assert_eq!(
        provider.fetches.load(Ordering::SeqCst),
        1,
        "fetched at start-up"
    );

    // Every key source admits its tokens.
    let rs_token = rsa_a.sign_json(&claims());
    assert_eq!(manifest(&edge, &rs_token).await, (200, String::new()));
    assert_eq!(manifest(&edge, &ec.sign_json(&claims())).await.0, 200);
    assert_eq!(manifest(&edge, &ed.sign_json(&claims())).await.0, 200);
    let legacy = JwtSigner::hs256(HS256_SECRET).sign_json(&claims());
    assert_eq!(manifest(&edge, &legacy).await.0, 200, "legacy HS256");

    // The second use of a token comes from the verified-token cache.
    let hits = "edge_cache_total{cache=\"verified_jwt\",result=\"hit\"}";
    let before = metric(&edge, hits).await;
    assert_eq!(manifest(&edge, &rs_token).await.0, 200);
    assert_eq!(metric(&edge, hits).await, before + 1);

    // HS/RS confusion: HS256 keyed with the RSA public key PEM.
    let pem = std::fs::read(fixture("rsa-2048-a.pub.pem")).unwrap();
    let hmac = JwtSigner::hs256(&pem);
    let payload = claims().to_string();
    let named = hmac.sign_raw(br#"{"alg":"HS256","kid":"rsa-a"}"#, payload.as_bytes());
    assert_eq!(
        manifest(&edge, &named).await,
        (401, "unsupported_algorithm".into())
    );
    let unnamed = hmac.sign_raw(br#"{"alg":"HS256"}"#, payload.as_bytes());
    assert_eq!(
        manifest(&edge, &unnamed).await,
        (401, "bad_signature".into())
    );
    let none = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none"}"#),
        base64_url(payload.as_bytes())
    );
    assert_eq!(
        manifest(&edge, &none).await,
        (401, "unsupported_algorithm".into())
    );
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 1);

    // An unknown kid refetches the JWKS, at most once per MIN_REFETCH_SECS.
    let wait = Duration::from_millis(MIN_REFETCH_SECS * 1000 + 300);
    tokio::time::sleep(wait.saturating_sub(started.elapsed())).await;
    let rotated = rsa_b.sign_json(&claims());
    assert_eq!(manifest(&edge, &rotated).await, (401, "unknown_key".into()));
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(manifest(&edge, &rotated).await, (401, "unknown_key".into()));
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 2, "rate-limited");

    // The provider rotates: the new key works once the rate limit allows a refetch.
    provider.jwks.lock().unwrap()["keys"] = json!([
        rsa_a.public_jwk().unwrap(),
        rsa_b.public_jwk().unwrap(),
        ec.public_jwk().unwrap()
    ]);
    assert_eq!(manifest(&edge, &rotated).await, (401, "unknown_key".into()));
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 2);
    tokio::time::sleep(wait).await;
    assert_eq!(manifest(&edge, &rotated).await, (200, String::new()));
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 3);
    assert_eq!(
        manifest(&edge, &rs_token).await.0,
        200,
        "old key still served"
    );

    let logs = edge.all_logs();
    assert!(logs.contains("jwks refetched"), "{logs}");
    for token in [&rs_token, &rotated, &named] {
        assert!(!logs.contains(token.as_str()), "a token reached the logs");
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
