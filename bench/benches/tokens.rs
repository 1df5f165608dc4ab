//! Verification cost per token format and per JWT algorithm.
//!
//! Every case verifies one valid token for a segment request, the edge's hot path. Keys are
//! generated at start-up (nothing secret is committed). Run with `cargo bench -p bench`; the
//! method and the latest figures are in `bench/README.md`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use edge_proxy::app::secrets::jwt_keys;
use edge_proxy::config::{JwtConfig, JwtKeyConfig};
use edge_proxy::core::metrics::Metrics;
use edge_proxy::gate::cloudfront_memo::VerifiedSignatures;
use edge_proxy::gate::viewer::ViewerAuth;
use playback::jwt::{Algorithm, Claims, JwtRules, JwtSigner, JwtVerifier, KeyRing};
use playback::token::cloudfront::{
    params_from_query, CloudFrontSigner, CloudFrontVerifier, HashAlgorithm, Policy,
};
use playback::token::edgeauth::{self, EdgeAuth, EdgeAuthConfig, EdgeAuthFields, RequestFacts};
use rand::rngs::OsRng;
use rsa::pkcs8::LineEnding;

const NOW: u64 = 1_800_000_000;
const VIDEO_PATH: &str = "/hls/3f1c2a9e-5b7d-4c1e-9a2b-8d6f0e4c3b21/720p/seg_00042.ts";
const EDGE_URL: &str = "https://edge.example.com";

fn rsa_pem() -> String {
    let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA key generation");
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

fn p256_pem() -> String {
    let key = p256::SecretKey::random(&mut OsRng);
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

fn ed25519_pem() -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

fn edgeauth(c: &mut Criterion) {
    let mut group = c.benchmark_group("edgeauth_verify");
    for algorithm in [
        edgeauth::Algorithm::Sha256,
        edgeauth::Algorithm::Sha1,
        edgeauth::Algorithm::Md5,
    ] {
        let mut config = EdgeAuthConfig::new(rand::random::<[u8; 32]>().to_vec());
        config.algorithm = algorithm;
        let auth = EdgeAuth::new(config);
        let token = auth.mint(&EdgeAuthFields {
            expires_at: NOW + 3600,
            acl: vec![
                "/hls/3f1c2a9e-5b7d-4c1e-9a2b-8d6f0e4c3b21/*".into(),
                "/keys/3f1c2a9e-5b7d-4c1e-9a2b-8d6f0e4c3b21/*".into(),
            ],
            session_id: Some("2b5e0c9a7f3d4e1b".into()),
            data: Some("user-1".into()),
            ..Default::default()
        });
        let request = RequestFacts {
            path: VIDEO_PATH,
            client_ip: None,
            now_unix: NOW,
        };
        auth.verify(&token, &request).expect("valid token");
        group.bench_function(algorithm.name(), |b| {
            b.iter(|| auth.verify(black_box(&token), black_box(&request)))
        });
    }
    group.finish();
}

fn cloudfront(c: &mut Criterion) {
    let mut group = c.benchmark_group("cloudfront_verify");
    let url = format!("{EDGE_URL}{VIDEO_PATH}");
    let cases = [
        ("rsa2048_sha1_canned", rsa_pem(), HashAlgorithm::Sha1, false),
        (
            "rsa2048_sha256_custom",
            rsa_pem(),
            HashAlgorithm::Sha256,
            true,
        ),
        (
            "p256_sha256_canned",
            p256_pem(),
            HashAlgorithm::Sha256,
            false,
        ),
    ];
    for (name, pem, hash, custom) in cases {
        let signer = CloudFrontSigner::from_pem("K2JCJMDEHXQW5F", &pem, hash).unwrap();
        let mut verifier = CloudFrontVerifier::new();
        verifier.add_signer(&signer);
        let signed = if custom {
            signer.signed_url_custom(
                &url,
                &Policy {
                    resource: format!("{EDGE_URL}/hls/3f1c2a9e-5b7d-4c1e-9a2b-8d6f0e4c3b21/*"),
                    date_less_than: NOW + 3600,
                    date_greater_than: Some(NOW - 60),
                    ip_address: None,
                },
            )
        } else {
            signer.signed_url_canned(&url, NOW + 3600)
        };
        let query = signed.split_once('?').unwrap().1.to_string();
        let params = params_from_query(&query).unwrap();
        verifier
            .verify(&params, &url, None, NOW)
            .expect("valid URL");
        group.bench_function(name, |b| {
            b.iter(|| {
                let params = params_from_query(black_box(&query)).unwrap();
                verifier.verify(&params, black_box(&url), None, NOW)
            })
        });
        // What the edge pays per segment once the signature is in its memo.
        let memo = VerifiedSignatures::new(Arc::new(Metrics::new()));
        verifier
            .verify_memoized(&params, &url, None, NOW, &memo)
            .unwrap();
        group.bench_function(format!("{name}_memoized"), |b| {
            b.iter(|| {
                let params = params_from_query(black_box(&query)).unwrap();
                verifier.verify_memoized(&params, black_box(&url), None, NOW, &memo)
            })
        });
    }
    group.finish();
}

fn claims(now: u64) -> Claims {
    Claims {
        sub: "user-1".into(),
        iss: "https://auth.example.com".into(),
        aud: "streaming-edge".into(),
        exp: now + 3600,
        nbf: None,
        iat: Some(now),
        jti: Some("f8c96208-d89f-4385-80ab-9492e13aac37".into()),
        roles: vec![],
        device_id: None,
    }
}

fn jwt_signers(hs256_secret: &[u8]) -> Vec<JwtSigner> {
    vec![
        JwtSigner::hs256(hs256_secret),
        JwtSigner::from_pem(Algorithm::Rs256, &rsa_pem()).unwrap(),
        JwtSigner::from_pem(Algorithm::Es256, &p256_pem()).unwrap(),
        JwtSigner::from_pem(Algorithm::EdDsa, &ed25519_pem()).unwrap(),
    ]
    .into_iter()
    .map(|s| s.with_kid("bench"))
    .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Every algorithm verified from scratch: what the first request with a token costs.
fn jwt_cold(c: &mut Criterion) {
    let mut group = c.benchmark_group("jwt_verify_cold");
    let rules = JwtRules {
        issuer: "https://auth.example.com".into(),
        audience: "streaming-edge".into(),
        leeway_secs: 30,
    };
    let now = unix_now();
    for signer in jwt_signers(&rand::random::<[u8; 32]>()) {
        let mut ring = KeyRing::new();
        ring.push(signer.verification_key()).unwrap();
        let verifier = JwtVerifier::new(ring, rules.clone());
        let token = signer.sign(&claims(now));
        verifier.verify(&token, now).expect("valid JWT");
        group.bench_function(signer.algorithm().name(), |b| {
            b.iter(|| verifier.verify(black_box(&token), now))
        });
    }
    group.finish();
}

/// The edge's `ViewerAuth` with a warm verified-token cache: what every later request with the
/// same token costs (SHA-256 of the token, one moka lookup, the `exp` re-check).
fn jwt_cached(c: &mut Criterion) {
    let mut group = c.benchmark_group("jwt_verify_cached");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = tempfile::tempdir().unwrap();
    let now = unix_now();
    let secret = rand::random::<[u8; 32]>();
    for signer in jwt_signers(&secret) {
        let alg = signer.algorithm().name();
        let (hs256_secret, keys_config) = match signer.public_jwk() {
            Some(jwk) => {
                let path = keys.path().join(format!("{alg}.jwk"));
                std::fs::write(&path, jwk.to_string()).unwrap();
                let key = JwtKeyConfig {
                    kid: "bench".into(),
                    alg: alg.into(),
                    jwk_file: path,
                    ..Default::default()
                };
                (Vec::new(), vec![key])
            }
            None => (secret.to_vec(), Vec::new()),
        };
        let config = JwtConfig {
            issuer: "https://auth.example.com".into(),
            audience: "streaming-edge".into(),
            keys: keys_config,
            ..Default::default()
        };
        let keys = jwt_keys(&config, &hs256_secret).unwrap();
        let auth = ViewerAuth::new(&config, keys, Arc::new(Metrics::new())).unwrap();
        let token = signer.sign(&claims(now));
        runtime
            .block_on(auth.verify(&token, now))
            .expect("valid JWT");
        group.bench_function(alg, |b| {
            b.to_async(&runtime)
                .iter(|| auth.verify(black_box(&token), now))
        });
    }
    group.finish();
}

criterion_group!(benches, edgeauth, cloudfront, jwt_cold, jwt_cached);
criterion_main!(benches);
