//! What the license formats cost per request, without the network: ClearKey request parsing and
//! license building, FairPlay SPC parsing (RSA-OAEP unwrap, payload decryption, TLLVs) and CKC
//! building for both certificate sizes, and the signed Widevine license-proxy request.
//!
//! Inputs are built at start-up with the test FairPlay device and credentials (self-generated,
//! not Apple's) and random keys. Run with `cargo bench -p bench --bench licenses`; the method and
//! the latest figures are in `bench/README.md`, next to the end-to-end figures of
//! `bench/licenses/run.sh`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use playback::license::clearkey::{self, KeyId};
use playback::license::fairplay::device::{test_credentials, test_credentials_2048, DeviceRequest};
use playback::license::fairplay::spc::SPC_VERSION_2;
use playback::license::fairplay::{
    build_ckc, parse_spc, DevelopmentDerivation, FairPlayCredentials,
};
use playback::license::policy::LicensePolicy;
use playback::license::widevine::{build_proxy_request, WidevineCredentials};

/// A content key id as the control plane names it.
const KEY_ID: &str = "3f1c2a9e-5b7d-4c1e-9a2b-8d6f0e4c3b21";
/// Size of the Widevine challenge forwarded (a typical CDM license request is 2-5 KiB).
const WIDEVINE_CHALLENGE_BYTES: usize = 4096;

/// `POST /drm/clearkey/{videoId}` minus I/O and caches: parse the W3C request, build the JWK set.
fn clearkey(c: &mut Criterion) {
    let kid = KeyId::from_uuid(KEY_ID).expect("a UUID");
    let key: [u8; 16] = rand::random();
    let body = serde_json::json!({"kids": [kid.to_base64url()], "type": "temporary"}).to_string();
    let request = clearkey::parse_request(body.as_bytes()).expect("a valid request");
    assert_eq!(request.kids, vec![kid]);
    c.bench_function("clearkey/parse_request_build_response_1kid", |b| {
        b.iter(|| {
            clearkey::parse_request(black_box(body.as_bytes())).map(|request| {
                let keys: Vec<(KeyId, [u8; 16])> =
                    request.kids.iter().map(|kid| (*kid, key)).collect();
                clearkey::build_response(&keys, request.session_type)
            })
        })
    });
}

/// `POST /fps/license` minus I/O and caches: parse the SPC, build the CKC.
fn fairplay(c: &mut Criterion) {
    let mut group = c.benchmark_group("fairplay");
    let content_key: [u8; 16] = rand::random();
    let blinding_seed: [u8; 32] = rand::random();
    let cases: [(&str, FairPlayCredentials, Option<u32>); 2] = [
        ("rsa1024_spc_v1", test_credentials(), None),
        (
            "rsa2048_spc_v2",
            test_credentials_2048(),
            Some(SPC_VERSION_2),
        ),
    ];
    for (name, credentials, version) in cases {
        let mut device = DeviceRequest::new(KEY_ID.as_bytes(), &[3; 32]);
        if let Some(version) = version {
            device.version = version;
        }
        let spc = device.build_spc(&credentials, &DevelopmentDerivation);
        let parsed = parse_spc(&credentials, &DevelopmentDerivation, &spc, &blinding_seed)
            .expect("the device's SPC parses");
        let ckc = build_ckc(
            &parsed,
            &content_key,
            &[0; 16],
            &LicensePolicy::DEFAULT,
            [1; 16],
        );
        assert_eq!(
            device.open_ckc(&ckc).expect("the CKC opens").content_key,
            content_key
        );

        group.bench_function(format!("parse_spc_build_ckc/{name}"), |b| {
            b.iter(|| {
                parse_spc(
                    &credentials,
                    &DevelopmentDerivation,
                    black_box(&spc),
                    &blinding_seed,
                )
                .map(|parsed| {
                    build_ckc(
                        &parsed,
                        &content_key,
                        &[0; 16],
                        &LicensePolicy::DEFAULT,
                        [1; 16],
                    )
                })
            })
        });
        // The CKC alone: what is left once the RSA private-key operation is done.
        group.bench_function(format!("build_ckc/{name}"), |b| {
            b.iter(|| {
                build_ckc(
                    black_box(&parsed),
                    &content_key,
                    &[0; 16],
                    &LicensePolicy::DEFAULT,
                    [1; 16],
                )
            })
        });
    }
    group.finish();
}

/// `POST /drm/widevine/{videoId}` before the provider call: the signed license-proxy body.
fn widevine(c: &mut Criterion) {
    let credentials = WidevineCredentials::from_hex(
        "bench-provider",
        &hex::encode(rand::random::<[u8; 32]>()),
        &hex::encode(rand::random::<[u8; 16]>()),
    )
    .expect("valid credentials");
    let challenge: Vec<u8> = (0..WIDEVINE_CHALLENGE_BYTES)
        .map(|_| rand::random::<u8>())
        .collect();
    let content_id = KeyId::from_uuid(KEY_ID).expect("a UUID").0;
    build_proxy_request(
        &credentials,
        &challenge,
        &content_id,
        &LicensePolicy::DEFAULT,
    )
    .expect("a valid challenge");
    c.bench_function("widevine/build_proxy_request_4KiB", |b| {
        b.iter(|| {
            build_proxy_request(
                &credentials,
                black_box(&challenge),
                &content_id,
                &LicensePolicy::DEFAULT,
            )
        })
    });
}

criterion_group!(benches, clearkey, fairplay, widevine);
criterion_main!(benches);
