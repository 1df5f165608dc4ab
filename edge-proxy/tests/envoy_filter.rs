//! The proxy-wasm filter (`wasm-filter/`) in a real Envoy 1.40 (V8), on loopback in front of a
//! test upstream: valid tokens reach the upstream with the token stripped; tampered, expired,
//! wrong-path and revoked ones get 403 with the reason; a rotated key takes effect by
//! reconfiguration; and a shared corpus gets the same verdicts from Envoy + filter as from the
//! Pingora edge.
//!
//! Needs Envoy (`ENVOY_BIN`, else `~/.cache/streaming-edge-venv/bin/envoy`) and the built
//! `.wasm`; scripts/test.sh provides both.

mod common;

use std::time::{Duration, Instant};

use common::control_plane::start_control_plane;
use common::envoy::{Envoy, RevocationSource, Upstream};
use common::verdict_corpus::{self, Case, CorpusKeys, Expect};
use common::*;
use playback::token::cloudfront::{CloudFrontSigner, HashAlgorithm};
use playback::token::edgeauth::{EdgeAuth, EdgeAuthConfig};
use playback::token::session::SessionSigner;
use serde_json::{json, Value};

/// How often the filter refreshes the deny-list in these tests.
const REFRESH_MS: u64 = 300;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The contract's plugin configuration for the test secrets.
fn plugin_config(url_signing_key: &[u8], jwt_secret: &[u8], public_base_url: &str) -> Value {
    let public_pem =
        std::fs::read_to_string(fixtures().join("cloudfront-test-public.pem")).unwrap();
    json!({
        "edgeauth": {"key_hex": hex(url_signing_key), "algorithm": "sha256", "token_name": "hdnts",
                     "field_delimiter": "~", "escape_early": false},
        "cloudfront": {"public_base_url": public_base_url, "public_keys": {"KTESTKEYPAIR1": public_pem}},
        "jwt": {"issuer": "streaming-dev", "audience": "streaming-edge",
                "keys": [{"kid": "k1", "alg": "HS256", "secret_hex": hex(jwt_secret)}]},
        "rules": [{"prefix": "/hls/", "check": "session"}, {"prefix": "/keys/", "check": "session"},
                  {"prefix": "/playback/", "check": "jwt"}],
        "leeway_secs": 0,
        "strip_token": true,
        "fail_open": false,
        "revocation": {"cluster": "edge_admin", "authority": "edge", "path": "/internal/v1/revocations",
                       "service_token": service_token(), "refresh_ms": REFRESH_MS}
    })
}

fn url_signing_key() -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(3))
        .collect()
}

/// A Pingora edge (directory origin, control-plane stub, CloudFront key, denial header), the
/// test upstream and Envoy + filter fetching revocations from that edge.
struct Stack {
    edge: Edge,
    upstream: Upstream,
    envoy: Envoy,
    _dir: tempfile::TempDir,
}

async fn stack() -> Stack {
    stack_trusting(&[]).await
}

/// [`stack`] with the edge (`server.trusted_proxies`) and the filter (`client_address`) both
/// trusting `proxies` to write `X-Forwarded-For`.
async fn stack_trusting(proxies: &[&str]) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let (control_plane, _calls) = start_control_plane().await;
    let edge =
        Edge::start_opts(
            OriginSetup::Directory(&media.root),
            &control_plane,
            &EdgeOptions {
                server: format!(
                    "trusted_proxies = {proxies:?}\nforwarded_header = \"x-forwarded-for\""
                ),
                extra: format!(
                "[debug]\ndenial_header = true\n\n[cloudfront.public_keys]\nKTESTKEYPAIR1 = {:?}\n",
                fixtures().join("cloudfront-test-public.pem").display().to_string()
            ),
                ..EdgeOptions::default()
            },
        );
    let upstream = Upstream::start(&media.root).await;
    let mut config = plugin_config(&url_signing_key(), &edge.jwt_secret, &edge.base);
    config["client_address"] = json!({"trusted_proxies": proxies, "header": "x-forwarded-for"});
    let envoy = tokio::task::block_in_place(|| {
        Envoy::start(
            upstream.addr,
            Some(&config),
            Some(&RevocationSource {
                edge_addr: edge.addr,
            }),
        )
    });
    Stack {
        edge,
        upstream,
        envoy,
        _dir: dir,
    }
}

async fn revoke(edge: &Edge, body: Value) {
    let admin = edge.jwt_with("ops@example.com", None, &["admin"]);
    let r = reqwest::Client::new()
        .post(edge.url("/admin/revocations"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "revocation {body}");
}

fn get(envoy: &Envoy, target: &str, headers: &str) -> RawResponse {
    tokio::task::block_in_place(|| envoy.raw_get_with(target, headers))
}

fn assert_denied(r: &RawResponse, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.head);
    let header = r.headers("x-edge-denial");
    assert!(
        header.first().is_some_and(|h| h.starts_with(code)),
        "{what}: x-edge-denial {header:?}"
    );
    let body: Value = serde_json::from_slice(&r.body).unwrap_or_else(|_| {
        panic!(
            "{what}: JSON body, got {:?}",
            String::from_utf8_lossy(&r.body)
        )
    });
    assert_eq!(body["error"], code, "{what}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_filter_admits_valid_tokens_and_refuses_the_rest() {
    let s = stack().await;
    let token = s.edge.token();
    let seg = format!("/hls/{VIDEO}/720p/seg_001.ts");

    for (what, target, headers) in [
        ("query", format!("{seg}?hdnts={token}"), String::new()),
        (
            "query among others",
            format!("{seg}?part=1&hdnts={token}"),
            String::new(),
        ),
        (
            "path",
            format!(
                "/hls/{VIDEO}/hdnts={}/720p/seg_001.ts",
                playback::token::session::escape_segment(&token)
            ),
            String::new(),
        ),
        (
            "cookie",
            seg.clone(),
            format!("Cookie: a=1; hdnts={token}\r\n"),
        ),
    ] {
        let r = get(&s.envoy, &target, &headers);
        assert_eq!(r.status, 200, "{what}: {}\n{}", r.head, s.envoy.all_logs());
        assert_eq!(r.body, b"small segment bytes", "{what}");
    }
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for request in &seen {
        assert!(
            !request.path_and_query.contains("hdnts"),
            "token reached upstream: {request:?}"
        );
        assert!(
            !request
                .cookie
                .as_deref()
                .unwrap_or_default()
                .contains("hdnts"),
            "token cookie reached upstream: {request:?}"
        );
        assert!(request.path_and_query.starts_with(&seg), "{request:?}");
    }
    assert!(
        seen.iter()
            .any(|r| r.path_and_query == format!("{seg}?part=1")),
        "{seen:?}"
    );

    let mut bad = token.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    let r = get(&s.envoy, &format!("{seg}?hdnts={bad}"), "");
    assert_denied(&r, 403, "bad_signature", "tampered");
    let r = get(
        &s.envoy,
        &format!("{seg}?hdnts={}", s.edge.token_for(VIDEO, now() - 5)),
        "",
    );
    assert_denied(&r, 403, "expired", "expired");
    let r = get(
        &s.envoy,
        &format!("/hls/{OTHER_VIDEO}/720p/seg_001.ts?hdnts={token}"),
        "",
    );
    assert_denied(&r, 403, "acl_mismatch", "wrong path");
    let r = get(&s.envoy, &seg, "");
    assert_denied(&r, 403, "missing_token", "no token");
    let r = get(&s.envoy, &format!("/playback/{VIDEO}/manifest"), "");
    assert_denied(&r, 401, "missing_token", "no JWT");
    let r = get(
        &s.envoy,
        &format!("/playback/{VIDEO}/manifest"),
        &format!("Authorization: Bearer {}\r\n", s.edge.jwt(USER)),
    );
    assert_eq!(r.status, 200, "JWT: {}", r.head);
    assert_eq!(s.upstream.seen().len(), 5, "refusals never reach upstream");

    // Revocation on the Pingora edge reaches the filter within its refresh.
    let victim = s
        .edge
        .signer
        .mint_session(VIDEO, &subject("victim-user"), now() + 600, None);
    let r = get(&s.envoy, &format!("{seg}?hdnts={victim}"), "");
    assert_eq!(r.status, 200, "before revocation: {}", r.head);
    revoke(&s.edge, json!({"userId": "victim-user", "ttlSecs": 600})).await;
    let revoked_at = Instant::now();
    loop {
        let r = get(&s.envoy, &format!("{seg}?hdnts={victim}"), "");
        if r.status == 403 {
            assert_denied(&r, 403, "revoked", "revoked user");
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_millis(REFRESH_MS * 10 + 3000),
            "revocation not applied by the filter after {:?}: {}\n{}",
            revoked_at.elapsed(),
            r.head,
            s.envoy.all_logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "revocation seen by the filter after {:?}",
        revoked_at.elapsed()
    );
    // Both workers (concurrency 2) share the list: every try is refused now.
    for _ in 0..10 {
        let r = get(&s.envoy, &format!("{seg}?hdnts={victim}"), "");
        assert_eq!(r.status, 403);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_filter_key_rotation_by_reconfiguration() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let upstream = Upstream::start(&media.root).await;
    let old_key = url_signing_key();
    let new_key: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(11).wrapping_add(5))
        .collect();
    let mint = |key: &[u8]| {
        SessionSigner::new(EdgeAuth::new(EdgeAuthConfig::new(key.to_vec()))).mint_session(
            VIDEO,
            &subject(USER),
            now() + 600,
            None,
        )
    };
    let config = |key: &[u8]| {
        let mut c = plugin_config(key, &[1u8; 32], "http://127.0.0.1:1");
        c.as_object_mut().unwrap().remove("revocation");
        c
    };
    let seg = format!("/hls/{VIDEO}/720p/seg_001.ts");
    let old =
        tokio::task::block_in_place(|| Envoy::start(upstream.addr, Some(&config(&old_key)), None));
    assert_eq!(
        get(&old, &format!("{seg}?hdnts={}", mint(&old_key)), "").status,
        200
    );
    assert_denied(
        &get(&old, &format!("{seg}?hdnts={}", mint(&new_key)), ""),
        403,
        "bad_signature",
        "new key before rotation",
    );
    // Rotation: a new Envoy process with the new plugin configuration (the listener's
    // configuration is static; see bench/README.md for the xDS note).
    let new =
        tokio::task::block_in_place(|| Envoy::start(upstream.addr, Some(&config(&new_key)), None));
    drop(old);
    assert_eq!(
        get(&new, &format!("{seg}?hdnts={}", mint(&new_key)), "").status,
        200
    );
    assert_denied(
        &get(&new, &format!("{seg}?hdnts={}", mint(&old_key)), ""),
        403,
        "bad_signature",
        "old key after rotation",
    );

    // An invalid configuration is refused in on_configure: Envoy does not come up with it.
    let mut broken = config(&new_key);
    broken["edgeauth"]["key_hex"] = json!("not hex");
    let refused =
        tokio::task::block_in_place(|| Envoy::try_start(upstream.addr, Some(&broken), None));
    let logs = refused
        .err()
        .expect("Envoy must not start with an invalid filter configuration");
    assert!(
        logs.contains("key_hex"),
        "the log line names the bad key:\n{logs}"
    );
}

/// (status, reason code) of a response; the code from the JSON body of a refusal.
fn verdict(r: &RawResponse) -> (u16, Option<String>) {
    if r.status == 200 {
        (200, None)
    } else {
        (r.status, r.error_code())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_verdicts_match_the_pingora_edge() {
    let s = stack().await;
    revoke(
        &s.edge,
        json!({"sessionId": verdict_corpus::REVOKED_SESSION, "ttlSecs": 600}),
    )
    .await;
    revoke(
        &s.edge,
        json!({"userId": verdict_corpus::REVOKED_USER, "ttlSecs": 600}),
    )
    .await;
    revoke(
        &s.edge,
        json!({"jti": verdict_corpus::REVOKED_JTI, "ttlSecs": 600}),
    )
    .await;
    // Let the filter pick the list up (a few refreshes).
    tokio::time::sleep(Duration::from_millis(REFRESH_MS * 4)).await;

    let cloudfront = cloudfront_signer();
    let corpus: Vec<Case> = verdict_corpus::build(&CorpusKeys {
        signer: &s.edge.signer,
        jwt_secret: &s.edge.jwt_secret,
        cloudfront: &cloudfront,
        public_base_url: &s.edge.base,
    });
    assert!(corpus.len() >= 50, "corpus has {} cases", corpus.len());
    same_verdicts(&s, &corpus);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_verdicts_behind_a_trusted_proxy_match_the_pingora_edge() {
    let s = stack_trusting(&[verdict_corpus::TRUSTED_PROXY]).await;
    let cloudfront = cloudfront_signer();
    let corpus = verdict_corpus::build_behind_trusted_proxy(&CorpusKeys {
        signer: &s.edge.signer,
        jwt_secret: &s.edge.jwt_secret,
        cloudfront: &cloudfront,
        public_base_url: &s.edge.base,
    });
    same_verdicts(&s, &corpus);
}

/// The README's Envoy example is a valid bootstrap for this Envoy, and it is the safe one: the
/// connection manager uses the TCP peer, not the client's X-Forwarded-For.
#[test]
fn the_readme_envoy_example_is_valid_and_uses_the_peer() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-filter/README.md"),
    )
    .unwrap();
    let section = readme
        .split("## Envoy example")
        .nth(1)
        .expect("the README has an Envoy example");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a yaml block");
    assert!(yaml.contains("use_remote_address: true"), "{yaml}");
    let yaml = yaml.replace(
        "/path/to/wasm32-wasip1/wasm-release/wasm_filter.wasm",
        &common::envoy::filter_wasm().display().to_string(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("readme-envoy.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = std::process::Command::new(common::envoy::envoy_bin())
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "envoy --mode validate refused the README example:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cloudfront_signer() -> CloudFrontSigner {
    let private = std::fs::read_to_string(fixtures().join("cloudfront-test-private.pem")).unwrap();
    CloudFrontSigner::from_pem("KTESTKEYPAIR1", &private, HashAlgorithm::Sha256).unwrap()
}

/// Sends every case to the Pingora edge and to Envoy + filter: same (status, reason) on both,
/// the expected status, a denial header on Envoy's refusals, and no token upstream in any
/// carrier (path, query, any Cookie header).
fn same_verdicts(s: &Stack, corpus: &[Case]) {
    let mut report = Vec::new();
    let mut mismatches = Vec::new();
    for case in corpus {
        let pingora =
            tokio::task::block_in_place(|| s.edge.raw_get_with(&case.target, &case.headers));
        let envoy = get(&s.envoy, &case.target, &case.headers);
        let (p, e) = (verdict(&pingora), verdict(&envoy));
        let expected_status = match case.expect {
            Expect::Allow => 200,
            Expect::Deny(status) => status,
        };
        let line = format!("{:<48} pingora {:?} envoy {:?}", case.name, p, e);
        if p != e || p.0 != expected_status {
            mismatches.push(format!(
                "{line} (expected {expected_status})\n    pingora head: {}\n    envoy head: {}",
                pingora.head.lines().next().unwrap_or_default(),
                envoy.head.lines().next().unwrap_or_default()
            ));
        }
        if e.0 != 200 {
            assert!(
                !envoy.headers("x-edge-denial").is_empty(),
                "{}: Envoy refusal without x-edge-denial: {}",
                case.name,
                envoy.head
            );
        }
        report.push(line);
    }
    eprintln!("{} corpus cases:\n{}", corpus.len(), report.join("\n"));
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ:\n{}",
        mismatches.len(),
        corpus.len(),
        mismatches.join("\n")
    );
    for request in s.upstream.seen() {
        assert!(!request.path_and_query.contains("hdnts="), "{request:?}");
        assert!(
            !request
                .cookie
                .as_deref()
                .is_some_and(|c| c.contains("hdnts=") || c.contains("CloudFront-")),
            "a token cookie reached the upstream: {request:?}"
        );
    }
}
