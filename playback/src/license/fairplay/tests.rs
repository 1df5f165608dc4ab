//! SPC -> CKC round trips through the test device, and every malformed SPC refused by code.

use std::sync::OnceLock;

use rsa::RsaPrivateKey;

use super::crypto::SeededRng;
use super::device::{
    encode_tllvs, test_credentials, test_credentials_2048, DeviceRequest, OPAQUE_ECHO_TAG,
    TEST_ASK, TEST_CERTIFICATE_1024_DER, TEST_PRIVATE_KEY_1024_PEM,
};
use super::spc::{capability, playback_state, SPC_VERSION_2};
use super::tllv::{tag, Tllv};
use super::*;
use crate::license::policy::{LicenseKind, LicensePolicy};

const ASSET: &[u8] = b"0f8fad5b-d9cb-469f-a165-70867728950e";
const BLINDING: [u8; 32] = [0x5a; 32];
const CONTENT_KEY: [u8; 16] = *b"content-key-0001";
const CONTENT_IV: [u8; 16] = *b"content-iv-00001";
const CKC_IV: [u8; 16] = *b"ckc-iv-000000001";

fn creds() -> &'static FairPlayCredentials {
    static CREDS: OnceLock<FairPlayCredentials> = OnceLock::new();
    CREDS.get_or_init(test_credentials)
}

fn creds_2048() -> &'static FairPlayCredentials {
    static CREDS: OnceLock<FairPlayCredentials> = OnceLock::new();
    CREDS.get_or_init(test_credentials_2048)
}

fn request(seed: u8) -> DeviceRequest {
    DeviceRequest::new(ASSET, &[seed; 32])
}

fn parse(creds: &FairPlayCredentials, spc: &[u8]) -> Result<Spc, SpcError> {
    parse_spc(creds, &DevelopmentDerivation, spc, &BLINDING)
}

/// Seals hand-edited TLLVs the way `request` would, for payload-level refusals.
fn spc_with_tllvs(request: &DeviceRequest, edit: impl FnOnce(&mut Vec<Tllv>)) -> Vec<u8> {
    let mut tllvs = request.tllvs(&TEST_ASK, &DevelopmentDerivation);
    edit(&mut tllvs);
    let creds = creds();
    request.seal(
        &creds.public_key(),
        creds.certificate_sha1(),
        &encode_tllvs(&tllvs),
    )
}

fn set_value(tllvs: &mut [Tllv], wanted: u64, value: Vec<u8>) {
    tllvs
        .iter_mut()
        .find(|t| t.tag == wanted)
        .expect("the test device sends this tag")
        .value = value;
}

fn code_of(result: Result<Spc, SpcError>) -> &'static str {
    match result {
        Ok(spc) => panic!("expected a refusal, parsed {spc:?}"),
        Err(error) => error.code(),
    }
}

#[test]
fn spc_to_ckc_round_trip_v1_rental() {
    let device = request(1);
    let spc_bytes = device.build_spc(creds(), &DevelopmentDerivation);
    let spc = parse(creds(), &spc_bytes).unwrap();

    assert_eq!(spc.version, 1);
    assert_eq!(spc.asset_id, ASSET);
    assert_eq!(
        spc.asset_id_str(),
        Some("0f8fad5b-d9cb-469f-a165-70867728950e")
    );
    assert_eq!(spc.transaction_id, device.transaction_id);
    assert_eq!(spc.device_hu, device.hu);
    assert_eq!(spc.protocol_version_used, 1);
    assert_eq!(spc.protocol_versions_supported, vec![1]);
    assert_eq!(spc.capabilities, Some(0b11_0001));
    assert!(spc.has_capability(capability::HDCP_TYPE1_ENFORCEMENT));
    assert!(spc.has_capability(capability::SECURITY_LEVEL_MAIN));
    assert!(!spc.has_capability(capability::OFFLINE_KEY));
    assert_eq!(
        spc.media_playback_state.map(|s| s.state),
        Some(playback_state::READY_TO_START)
    );
    assert_eq!(spc.streaming_indicator, None);
    assert_eq!(
        spc.return_request,
        vec![tag::ASSET_ID, tag::TRANSACTION_ID, OPAQUE_ECHO_TAG]
    );

    let ckc = build_ckc(
        &spc,
        &CONTENT_KEY,
        &CONTENT_IV,
        &LicensePolicy::DEFAULT,
        CKC_IV,
    );
    assert_eq!(&ckc[..4], &[0, 0, 0, 1], "CKC version 1");
    assert_eq!(&ckc[4..8], &[0, 0, 0, 0], "reserved");
    assert_eq!(&ckc[8..24], &CKC_IV);
    let payload_len = u32::from_be_bytes(ckc[24..28].try_into().unwrap()) as usize;
    assert_eq!(payload_len, ckc.len() - 28);
    assert_eq!(payload_len % 16, 0);
    // The content key never appears in the clear.
    assert!(!ckc.windows(16).any(|w| w == CONTENT_KEY));

    let opened = device.open_ckc(&ckc).unwrap();
    assert_eq!(opened.ckc_iv, CKC_IV);
    assert_eq!(opened.content_key, CONTENT_KEY);
    assert_eq!(opened.content_iv, CONTENT_IV);
    assert_eq!(opened.r1, device.r1);
    assert_eq!(
        opened.duration,
        Some(KeyDuration {
            lease_secs: 0,
            rental_secs: 3600,
            key_type: KeyType::Rental
        })
    );
    assert_eq!(
        opened.returned,
        vec![
            Tllv {
                tag: tag::ASSET_ID,
                value: ASSET.to_vec()
            },
            Tllv {
                tag: tag::TRANSACTION_ID,
                value: device.transaction_id.to_be_bytes().to_vec()
            },
            Tllv {
                tag: OPAQUE_ECHO_TAG,
                value: b"echo me back".to_vec()
            },
        ]
    );
}

#[test]
fn spc_to_ckc_round_trip_v2_persistent() {
    let mut device = request(2);
    device.version = SPC_VERSION_2;
    device.streaming_indicator = Some(0xabcd_ef01_2345_6789);
    let spc = parse(
        creds_2048(),
        &device.build_spc(creds_2048(), &DevelopmentDerivation),
    )
    .unwrap();
    assert_eq!(spc.version, 2);
    assert_eq!(spc.streaming_indicator, Some(0xabcd_ef01_2345_6789));

    let policy = LicensePolicy {
        kind: LicenseKind::Persistent,
        duration_secs: 7 * 86_400,
    };
    let opened = device
        .open_ckc(&build_ckc(&spc, &CONTENT_KEY, &CONTENT_IV, &policy, CKC_IV))
        .unwrap();
    assert_eq!(opened.content_key, CONTENT_KEY);
    assert_eq!(opened.r1, device.r1);
    assert_eq!(
        opened.duration,
        Some(KeyDuration {
            lease_secs: 0,
            rental_secs: 604_800,
            key_type: KeyType::PersistenceAndDuration
        })
    );
}

#[test]
fn a_ckc_opens_only_for_its_own_spc() {
    let device = request(3);
    let spc = parse(creds(), &device.build_spc(creds(), &DevelopmentDerivation)).unwrap();
    let ckc = build_ckc(
        &spc,
        &CONTENT_KEY,
        &CONTENT_IV,
        &LicensePolicy::DEFAULT,
        CKC_IV,
    );
    // Another session (other R1, seed, SK) cannot read it.
    let other = request(4);
    assert!(other
        .open_ckc(&ckc)
        .map_or(true, |opened| opened.content_key != CONTENT_KEY));
    // A fresh CKC IV changes every payload byte block, and still opens.
    let again = build_ckc(
        &spc,
        &CONTENT_KEY,
        &CONTENT_IV,
        &LicensePolicy::DEFAULT,
        [7; 16],
    );
    assert_ne!(again[28..44], ckc[28..44]);
    assert_eq!(device.open_ckc(&again).unwrap().content_key, CONTENT_KEY);
}

#[test]
fn return_request_is_echoed_in_order_without_repeats() {
    let mut device = request(5);
    device.return_request = vec![OPAQUE_ECHO_TAG, tag::ASSET_ID, OPAQUE_ECHO_TAG];
    device.media_playback_state = None;
    device.capabilities = None;
    let spc = parse(creds(), &device.build_spc(creds(), &DevelopmentDerivation)).unwrap();
    assert_eq!(spc.return_request, vec![OPAQUE_ECHO_TAG, tag::ASSET_ID]);
    assert_eq!(spc.capabilities, None);
    assert_eq!(spc.media_playback_state, None);
    let opened = device
        .open_ckc(&build_ckc(
            &spc,
            &CONTENT_KEY,
            &CONTENT_IV,
            &LicensePolicy::DEFAULT,
            CKC_IV,
        ))
        .unwrap();
    let echoed: Vec<u64> = opened.returned.iter().map(|t| t.tag).collect();
    assert_eq!(echoed, vec![OPAQUE_ECHO_TAG, tag::ASSET_ID]);
    // An empty return request echoes nothing, and the duration still goes out.
    device.return_request.clear();
    let spc = parse(creds(), &device.build_spc(creds(), &DevelopmentDerivation)).unwrap();
    let opened = device
        .open_ckc(&build_ckc(
            &spc,
            &CONTENT_KEY,
            &CONTENT_IV,
            &LicensePolicy::DEFAULT,
            CKC_IV,
        ))
        .unwrap();
    assert!(opened.returned.is_empty());
    assert!(opened.duration.is_some());
}

#[test]
fn asset_id_str_only_for_uuid_shaped_ids() {
    for (asset, expected) in [
        (&b"0F8FAD5B-D9CB-469F-A165-70867728950E"[..], true),
        (b"skd://0f8fad5b-d9cb-469f-a165-70867728950e", false),
        (b"0f8fad5bxd9cb-469f-a165-70867728950e", false),
        (b"0f8fad5b-d9cb-469f-a165-70867728950g", false),
        (b"ab", false),
    ] {
        let device = DeviceRequest::new(asset, &[6; 32]);
        let spc = parse(creds(), &device.build_spc(creds(), &DevelopmentDerivation)).unwrap();
        assert_eq!(spc.asset_id, asset);
        assert_eq!(spc.asset_id_str().is_some(), expected, "{asset:?}");
    }
}

#[test]
fn debug_output_redacts_session_secrets() {
    let device = request(7);
    let spc = parse(creds(), &device.build_spc(creds(), &DevelopmentDerivation)).unwrap();
    let shown = format!("{spc:?}");
    assert!(
        shown.contains("0f8fad5b-d9cb-469f-a165-70867728950e"),
        "{shown}"
    );
    assert!(shown.contains("<redacted>"));
    for secret in [
        hex::encode(device.session_key),
        hex::encode(device.r1),
        hex::encode(device.anti_replay_seed),
    ] {
        assert!(!shown.contains(&secret), "{shown}");
    }
    assert!(!shown.contains(&format!("{:?}", device.session_key)));
}

#[test]
fn truncated_at_every_length_is_refused() {
    let spc = request(8).build_spc(creds(), &DevelopmentDerivation);
    for len in 0..spc.len() {
        assert_eq!(
            code_of(parse(creds(), &spc[..len])),
            "spc_truncated",
            "len {len}"
        );
    }
}

#[test]
fn trailing_bytes_and_oversized_input_are_refused() {
    let mut spc = request(9).build_spc(creds(), &DevelopmentDerivation);
    spc.extend_from_slice(&[0; 16]);
    assert_eq!(code_of(parse(creds(), &spc)), "spc_length");
    assert_eq!(
        code_of(parse(creds(), &vec![0; MAX_SPC_BYTES + 1])),
        "spc_too_large"
    );
}

#[test]
fn wrong_versions_are_refused() {
    let spc = request(10).build_spc(creds(), &DevelopmentDerivation);
    for version in [0u32, 3, 0x0100_0000, u32::MAX] {
        let mut bad = spc.clone();
        bad[..4].copy_from_slice(&version.to_be_bytes());
        assert_eq!(code_of(parse(creds(), &bad)), "spc_version", "{version}");
    }
    // A v2 SPC (256-byte wrapped key) naming the 1024-bit certificate does not fit its key.
    let mut device = request(10);
    device.version = SPC_VERSION_2;
    let mismatched = device.seal(
        &creds_2048().public_key(),
        creds().certificate_sha1(),
        &device.payload(&TEST_ASK, &DevelopmentDerivation),
    );
    assert_eq!(code_of(parse(creds(), &mismatched)), "spc_version");
}

#[test]
fn another_certificate_hash_is_refused() {
    let spc = request(11).build_spc(creds(), &DevelopmentDerivation);
    let hash_at = 24 + 128;
    for flip in [hash_at, hash_at + 10, hash_at + 19] {
        let mut bad = spc.clone();
        bad[flip] ^= 0x01;
        assert_eq!(code_of(parse(creds(), &bad)), "spc_certificate_mismatch");
    }
    // An SPC for the 2048-bit certificate, offered to the 1024-bit server.
    let mut device = request(11);
    device.version = SPC_VERSION_2;
    let foreign = device.build_spc(creds_2048(), &DevelopmentDerivation);
    assert_eq!(
        code_of(parse(creds(), &foreign)),
        "spc_certificate_mismatch"
    );
}

#[test]
fn a_key_wrapped_to_another_rsa_key_does_not_unwrap() {
    let device = request(12);
    let payload = device.payload(&TEST_ASK, &DevelopmentDerivation);
    let stranger = RsaPrivateKey::new(&mut SeededRng::new(&[12; 32]), 1024).unwrap();
    let wrong_key = device.seal(
        &stranger.to_public_key(),
        creds().certificate_sha1(),
        &payload,
    );
    assert_eq!(code_of(parse(creds(), &wrong_key)), "spc_key_unwrap");
    // A corrupted OAEP block fails the same way.
    let mut corrupted = device.build_spc(creds(), &DevelopmentDerivation);
    corrupted[24 + 40] ^= 0x80;
    assert_eq!(code_of(parse(creds(), &corrupted)), "spc_key_unwrap");
}

#[test]
fn payloads_that_are_not_whole_blocks_are_refused() {
    let spc = request(13).build_spc(creds(), &DevelopmentDerivation);
    let length_at = 24 + 128 + 20;
    let declared = u32::from_be_bytes(spc[length_at..length_at + 4].try_into().unwrap());
    let mut ragged = spc.clone();
    ragged.extend_from_slice(&[0; 7]);
    ragged[length_at..length_at + 4].copy_from_slice(&(declared + 7).to_be_bytes());
    assert_eq!(code_of(parse(creds(), &ragged)), "spc_padding");
    let mut empty = spc[..length_at + 4].to_vec();
    empty[length_at..].copy_from_slice(&[0; 4]);
    assert_eq!(code_of(parse(creds(), &empty)), "spc_padding");
    // A TLLV block length that is not a multiple of 16.
    let mut misaligned = request(13).payload(&TEST_ASK, &DevelopmentDerivation);
    misaligned.extend_from_slice(&0x1111u64.to_be_bytes());
    misaligned.extend_from_slice(&20u32.to_be_bytes());
    misaligned.extend_from_slice(&4u32.to_be_bytes());
    misaligned.extend_from_slice(&[0; 32]);
    let device = request(13);
    let sealed = device.seal(
        &creds().public_key(),
        creds().certificate_sha1(),
        &misaligned,
    );
    assert_eq!(code_of(parse(creds(), &sealed)), "spc_padding");
}

#[test]
fn tllv_length_overruns_are_refused() {
    let device = request(14);
    let base = device.payload(&TEST_ASK, &DevelopmentDerivation);
    for (block_len, value_len) in [
        (0x40u32, 4u32),
        (0xffff_fff0, 4),
        (16, 17),
        (32, 0xffff_ffff),
    ] {
        let mut payload = base.clone();
        payload.extend_from_slice(&0x2222u64.to_be_bytes());
        payload.extend_from_slice(&block_len.to_be_bytes());
        payload.extend_from_slice(&value_len.to_be_bytes());
        payload.extend_from_slice(&[0; 16]);
        let sealed = device.seal(&creds().public_key(), creds().certificate_sha1(), &payload);
        assert_eq!(
            code_of(parse(creds(), &sealed)),
            "spc_tllv",
            "block {block_len:#x} value {value_len:#x}"
        );
    }
    // A final header whose 16-byte block is missing.
    let mut payload = base.clone();
    payload.extend_from_slice(&[0; 16]);
    payload[base.len() + 8..base.len() + 12].copy_from_slice(&16u32.to_be_bytes());
    let sealed = device.seal(&creds().public_key(), creds().certificate_sha1(), &payload);
    assert_eq!(code_of(parse(creds(), &sealed)), "spc_tllv");
}

#[test]
fn every_mandatory_tag_is_required() {
    let device = request(15);
    for missing in [
        tag::SESSION_KEY_R1,
        tag::SESSION_KEY_R1_INTEGRITY,
        tag::ANTI_REPLAY_SEED,
        tag::R2,
        tag::ASSET_ID,
        tag::TRANSACTION_ID,
        tag::PROTOCOL_VERSION_USED,
        tag::PROTOCOL_VERSIONS_SUPPORTED,
        tag::RETURN_REQUEST,
    ] {
        let mut without = device.clone();
        without.return_request.retain(|t| *t != missing);
        let spc = spc_with_tllvs(&without, |tllvs| tllvs.retain(|t| t.tag != missing));
        assert_eq!(
            parse(creds(), &spc).unwrap_err(),
            SpcError::MissingTag(missing),
            "{missing:#x}"
        );
    }
    // The return request may only name tags the SPC carries.
    let mut asks_for_absent = device.clone();
    asks_for_absent.return_request.push(0x0bad_0bad_0bad_0bad);
    let spc = asks_for_absent.build_spc(creds(), &DevelopmentDerivation);
    assert_eq!(
        parse(creds(), &spc).unwrap_err(),
        SpcError::MissingTag(0x0bad_0bad_0bad_0bad)
    );
    assert_eq!(SpcError::MissingTag(1).code(), "spc_missing_tag");
}

#[test]
fn wrong_sized_or_duplicate_tllvs_are_refused() {
    let device = request(16);
    type Edit = Box<dyn Fn(&mut Vec<Tllv>)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("short R2", Box::new(|t| set_value(t, tag::R2, vec![1; 20]))),
        (
            "one-byte asset id",
            Box::new(|t| set_value(t, tag::ASSET_ID, vec![b'a'])),
        ),
        (
            "201-byte asset id",
            Box::new(|t| set_value(t, tag::ASSET_ID, vec![b'a'; 201])),
        ),
        (
            "7-byte return request",
            Box::new(|t| set_value(t, tag::RETURN_REQUEST, vec![0; 7])),
        ),
        (
            "short [SK..R1]",
            Box::new(|t| set_value(t, tag::SESSION_KEY_R1, vec![0; 96])),
        ),
        (
            "short integrity",
            Box::new(|t| set_value(t, tag::SESSION_KEY_R1_INTEGRITY, vec![0; 15])),
        ),
        (
            "long anti-replay seed",
            Box::new(|t| set_value(t, tag::ANTI_REPLAY_SEED, vec![0; 32])),
        ),
        (
            "short transaction id",
            Box::new(|t| set_value(t, tag::TRANSACTION_ID, vec![0; 4])),
        ),
        (
            "odd versions",
            Box::new(|t| set_value(t, tag::PROTOCOL_VERSIONS_SUPPORTED, vec![0; 6])),
        ),
        (
            "no versions",
            Box::new(|t| set_value(t, tag::PROTOCOL_VERSIONS_SUPPORTED, vec![])),
        ),
        (
            "short capabilities",
            Box::new(|t| set_value(t, tag::CAPABILITIES, vec![0; 8])),
        ),
        (
            "duplicate tag",
            Box::new(|t| {
                let copy = t[3].clone();
                t.push(copy);
            }),
        ),
    ];
    for (name, edit) in cases {
        let spc = spc_with_tllvs(&device, |tllvs| edit(tllvs));
        assert_eq!(code_of(parse(creds(), &spc)), "spc_tllv", "{name}");
    }
}

#[test]
fn sk_r1_integrity_and_derivation_failures_are_refused() {
    let device = request(17);
    let tampered = spc_with_tllvs(&device, |tllvs| {
        set_value(tllvs, tag::SESSION_KEY_R1_INTEGRITY, vec![0x33; 16])
    });
    assert_eq!(code_of(parse(creds(), &tampered)), "spc_integrity");

    // A server with another ASk derives another DASk: the integrity check catches it.
    let spc = device.build_spc(creds(), &DevelopmentDerivation);
    let other_ask = FairPlayCredentials::from_pem_and_der(
        TEST_PRIVATE_KEY_1024_PEM,
        TEST_CERTIFICATE_1024_DER,
        [0x42; 16],
    )
    .unwrap();
    assert_eq!(code_of(parse(&other_ask, &spc)), "spc_integrity");

    struct Refusing;
    impl SessionKeyDerivation for Refusing {
        fn derive(&self, _: &[u8; 16], _: &[u8]) -> Result<[u8; 16], DerivationError> {
            Err(DerivationError("not provisioned"))
        }
    }
    let refused = parse_spc(creds(), &Refusing, &spc, &BLINDING).unwrap_err();
    assert_eq!(
        refused,
        SpcError::Derivation(DerivationError("not provisioned"))
    );
    assert_eq!(refused.code(), "spc_derivation");
}

#[test]
fn garbage_never_panics() {
    let valid = request(18).build_spc(creds(), &DevelopmentDerivation);
    let mut rng = SeededRng::new(&[18; 32]);
    for len in [0usize, 1, 7, 100, 175, 176, 177, 600, 4096] {
        let mut junk = vec![0u8; len];
        rsa::rand_core::RngCore::fill_bytes(&mut rng, &mut junk);
        assert!(parse(creds(), &junk).is_err());
        // The same junk behind a valid header reaches the RSA and payload stages.
        let mut behind_header = valid[..176].to_vec();
        behind_header.extend_from_slice(&junk);
        let declared = (junk.len() as u32).to_be_bytes();
        behind_header[172..176].copy_from_slice(&declared);
        assert!(parse(creds(), &behind_header).is_err());
        assert!(spc::parse_decrypted_payload(creds(), &DevelopmentDerivation, &junk).is_err());
    }
}

#[test]
fn error_codes_are_stable_and_distinct() {
    let all = [
        SpcError::TooLarge,
        SpcError::Truncated,
        SpcError::TrailingBytes,
        SpcError::Version,
        SpcError::CertificateMismatch,
        SpcError::KeyUnwrap,
        SpcError::Padding,
        SpcError::Tllv("x"),
        SpcError::MissingTag(0),
        SpcError::Derivation(DerivationError("x")),
        SpcError::Integrity,
    ];
    let mut codes: Vec<&str> = all.iter().map(SpcError::code).collect();
    assert!(codes
        .iter()
        .all(|c| c.starts_with("spc_") && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
}

/// Writes the fuzz seed corpus (`fuzz/corpus/fairplay_spc/`). Run on demand:
/// `cargo test -p playback --features test-support write_fairplay_fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes the fuzz seed corpus into the source tree"]
fn write_fairplay_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/fairplay_spc");
    std::fs::create_dir_all(&dir).unwrap();
    let rental = request(101);
    let mut streaming = request(102);
    streaming.streaming_indicator = Some(0x5f9c_8132_b59f_2fde);
    let mut minimal = request(103);
    minimal.return_request.clear();
    minimal.extra_tllvs.clear();
    minimal.capabilities = None;
    minimal.media_playback_state = None;
    for (name, device) in [
        ("seed-spc-v1-rental", &rental),
        ("seed-spc-v1-streaming", &streaming),
        ("seed-spc-v1-minimal", &minimal),
    ] {
        let spc = device.build_spc(creds(), &DevelopmentDerivation);
        assert!(parse(creds(), &spc).is_ok());
        std::fs::write(dir.join(name), spc).unwrap();
    }
    // A decrypted payload: the fuzz target also feeds its input to the payload parser.
    let payload = rental.payload(&TEST_ASK, &DevelopmentDerivation);
    assert!(spc::parse_decrypted_payload(creds(), &DevelopmentDerivation, &payload).is_ok());
    std::fs::write(dir.join("seed-payload-v1"), payload).unwrap();
}
