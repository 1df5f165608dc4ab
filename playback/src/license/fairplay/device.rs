//! Test support: the device side of FairPlay, for tests, the fuzz corpus and the benchmark.
//!
//! [`DeviceRequest::build_spc`] does what an Apple device does when it asks for a key: picks the
//! session key, R1, R2 and the anti-replay seed, encrypts `[SK..R1]` under the key derived from
//! R2, lays out the TLLVs (asset id, transaction id, return request, ...), encrypts the payload
//! with a fresh SPC key and wraps that key to the FPS certificate with RSA-OAEP.
//! [`DeviceRequest::open_ckc`] reads the key server's answer back.
//!
//! Unlike a real device, which embeds Apple's secrets, this one borrows the server's credentials
//! and derivation: with [`DevelopmentDerivation`](super::DevelopmentDerivation) it is the
//! counterpart of the development key server, nothing more. Randomness comes in as bytes
//! ([`DeviceRequest::new`] expands a seed), so runs are reproducible.
//!
//! The test credentials below are self-generated (openssl), **not Apple's**, and exist only for
//! tests: `testdata/README.md`.

use rsa::{Oaep, RsaPublicKey};
use sha1::Sha1;
use sha2::Sha256;

use super::ckc::{payload_key, KeyDuration, CKC_HEADER_LEN, CKC_VERSION};
use super::credentials::{FairPlayCredentials, ASK_LEN};
use super::crypto::{cbc_decrypt_in_place, cbc_encrypt_whole_blocks, ecb_decrypt_block, SeededRng};
use super::derivation::SessionKeyDerivation;
use super::spc::{MediaPlaybackState, HU_LEN, R1_LEN, R2_LEN, SPC_VERSION_1};
use super::tllv::{parse_tllvs, tag, write_tllv, Tllv, TllvError};
use rsa::rand_core::RngCore;

/// Test-only RSA-1024 FPS private key (PKCS#1 PEM). Not Apple's.
pub const TEST_PRIVATE_KEY_1024_PEM: &str = include_str!("testdata/test_fps_1024_key.pem");
/// Test-only self-signed certificate for [`TEST_PRIVATE_KEY_1024_PEM`].
pub const TEST_CERTIFICATE_1024_DER: &[u8] = include_bytes!("testdata/test_fps_1024_cert.der");
/// Test-only RSA-2048 FPS private key (PKCS#8 PEM), for SPC v2. Not Apple's.
pub const TEST_PRIVATE_KEY_2048_PEM: &str = include_str!("testdata/test_fps_2048_key.pem");
/// Test-only self-signed certificate for [`TEST_PRIVATE_KEY_2048_PEM`].
pub const TEST_CERTIFICATE_2048_DER: &[u8] = include_bytes!("testdata/test_fps_2048_cert.der");
/// Test-only Application Secret Key.
pub const TEST_ASK: [u8; ASK_LEN] = *b"test-only-ask!!!";
/// A tag FairPlay does not define, which test devices send and ask to have echoed (real devices
/// do the same with tags the server need not understand).
pub const OPAQUE_ECHO_TAG: u64 = 0x5e5e_0000_0000_0001;

/// The test credentials (RSA-1024, SPC v1).
pub fn test_credentials() -> FairPlayCredentials {
    FairPlayCredentials::from_pem_and_der(
        TEST_PRIVATE_KEY_1024_PEM,
        TEST_CERTIFICATE_1024_DER,
        TEST_ASK,
    )
    .expect("the committed test credentials load")
}

/// The RSA-2048 test credentials (SPC v2).
pub fn test_credentials_2048() -> FairPlayCredentials {
    FairPlayCredentials::from_pem_and_der(
        TEST_PRIVATE_KEY_2048_PEM,
        TEST_CERTIFICATE_2048_DER,
        TEST_ASK,
    )
    .expect("the committed test credentials load")
}

/// Everything a device chooses for one SPC. Public so tests can vary any field.
#[derive(Clone)]
pub struct DeviceRequest {
    /// SPC version: [`SPC_VERSION_1`] for 1024-bit credentials,
    /// [`SPC_VERSION_2`](super::spc::SPC_VERSION_2) for 2048-bit ones.
    pub version: u32,
    pub asset_id: Vec<u8>,
    pub session_key: [u8; 16],
    pub hu: [u8; HU_LEN],
    pub r1: [u8; R1_LEN],
    pub r2: [u8; R2_LEN],
    pub anti_replay_seed: [u8; 16],
    pub transaction_id: u64,
    pub sk_r1_iv: [u8; 16],
    /// The AES key the payload is encrypted with, wrapped to the certificate.
    pub spc_key: [u8; 16],
    pub spc_iv: [u8; 16],
    /// Seeds the OAEP padding randomness.
    pub oaep_seed: [u8; 32],
    pub protocol_version_used: u32,
    pub protocol_versions_supported: Vec<u32>,
    /// Tags to echo; each must be in the SPC for it to parse.
    pub return_request: Vec<u64>,
    pub streaming_indicator: Option<u64>,
    pub capabilities: Option<u64>,
    pub media_playback_state: Option<MediaPlaybackState>,
    /// More TLLVs, written after the standard ones.
    pub extra_tllvs: Vec<Tllv>,
}

impl std::fmt::Debug for DeviceRequest {
    // Session secrets stay out of Debug here too, so test logs look like production ones.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRequest")
            .field("version", &self.version)
            .field("asset_id", &String::from_utf8_lossy(&self.asset_id))
            .field(
                "transaction_id",
                &format_args!("{:#018x}", self.transaction_id),
            )
            .field("return_request", &self.return_request)
            .finish_non_exhaustive()
    }
}

impl DeviceRequest {
    /// A v1 request for `asset_id` with every random field expanded from `seed`. It asks for the
    /// asset id, the transaction id and an opaque tag ([`OPAQUE_ECHO_TAG`]) to be echoed, and
    /// sends a media playback state and capabilities like a current Apple device.
    pub fn new(asset_id: &[u8], seed: &[u8; 32]) -> DeviceRequest {
        let mut rng = SeededRng::new(seed);
        let mut bytes = |n: usize| {
            let mut out = vec![0u8; n];
            rng.fill_bytes(&mut out);
            out
        };
        fn array<const N: usize>(bytes: Vec<u8>) -> [u8; N] {
            bytes.try_into().expect("asked for exactly N bytes")
        }
        DeviceRequest {
            version: SPC_VERSION_1,
            asset_id: asset_id.to_vec(),
            session_key: array(bytes(16)),
            hu: array(bytes(HU_LEN)),
            r1: array(bytes(R1_LEN)),
            r2: array(bytes(R2_LEN)),
            anti_replay_seed: array(bytes(16)),
            transaction_id: u64::from_be_bytes(array(bytes(8))),
            sk_r1_iv: array(bytes(16)),
            spc_key: array(bytes(16)),
            spc_iv: array(bytes(16)),
            oaep_seed: array(bytes(32)),
            protocol_version_used: 1,
            protocol_versions_supported: vec![1],
            return_request: vec![tag::ASSET_ID, tag::TRANSACTION_ID, OPAQUE_ECHO_TAG],
            streaming_indicator: None,
            capabilities: Some(0b11_0001),
            media_playback_state: Some(MediaPlaybackState {
                creation_date: 1_700_000_000,
                state: super::spc::playback_state::READY_TO_START,
                session_id: 0x0102_0304_0506_0708,
            }),
            extra_tllvs: vec![Tllv {
                tag: OPAQUE_ECHO_TAG,
                value: b"echo me back".to_vec(),
            }],
        }
    }

    /// The `[SK..R1]` TLLV value: IV || CBC(DASk, SK | HU | R1 | integrity).
    pub fn sk_r1(&self, ask: &[u8; ASK_LEN], derivation: &dyn SessionKeyDerivation) -> Vec<u8> {
        let dask = derivation
            .derive(ask, &self.r2)
            .expect("the test derivation accepts R2");
        let mut sealed = Vec::with_capacity(96);
        sealed.extend_from_slice(&self.session_key);
        sealed.extend_from_slice(&self.hu);
        sealed.extend_from_slice(&self.r1);
        sealed.extend_from_slice(&self.integrity());
        cbc_encrypt_whole_blocks(&dask, &self.sk_r1_iv, &mut sealed);
        let mut value = self.sk_r1_iv.to_vec();
        value.extend_from_slice(&sealed);
        value
    }

    /// The integrity bytes: any 16 bytes the device chooses; here derived from SK and R1.
    pub fn integrity(&self) -> [u8; 16] {
        let mut integrity = self.session_key;
        for (byte, r1) in integrity.iter_mut().zip(self.r1) {
            *byte ^= r1;
        }
        integrity
    }

    /// The TLLVs a device sends, as `(tag, value)` in order, before encryption.
    pub fn tllvs(&self, ask: &[u8; ASK_LEN], derivation: &dyn SessionKeyDerivation) -> Vec<Tllv> {
        let mut tllvs = vec![
            tllv(tag::SESSION_KEY_R1, self.sk_r1(ask, derivation)),
            tllv(tag::SESSION_KEY_R1_INTEGRITY, self.integrity().to_vec()),
            tllv(tag::ANTI_REPLAY_SEED, self.anti_replay_seed.to_vec()),
            tllv(tag::R2, self.r2.to_vec()),
            tllv(tag::ASSET_ID, self.asset_id.clone()),
            tllv(
                tag::TRANSACTION_ID,
                self.transaction_id.to_be_bytes().to_vec(),
            ),
            tllv(
                tag::PROTOCOL_VERSION_USED,
                self.protocol_version_used.to_be_bytes().to_vec(),
            ),
            tllv(
                tag::PROTOCOL_VERSIONS_SUPPORTED,
                self.protocol_versions_supported
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect(),
            ),
            tllv(
                tag::RETURN_REQUEST,
                self.return_request
                    .iter()
                    .flat_map(|t| t.to_be_bytes())
                    .collect(),
            ),
        ];
        if let Some(indicator) = self.streaming_indicator {
            tllvs.push(tllv(
                tag::STREAMING_INDICATOR,
                indicator.to_be_bytes().to_vec(),
            ));
        }
        if let Some(flags) = self.capabilities {
            let mut value = vec![0u8; 8];
            value.extend_from_slice(&flags.to_be_bytes());
            tllvs.push(tllv(tag::CAPABILITIES, value));
        }
        if let Some(state) = self.media_playback_state {
            let mut value = state.creation_date.to_be_bytes().to_vec();
            value.extend_from_slice(&state.state.to_be_bytes());
            value.extend_from_slice(&state.session_id.to_be_bytes());
            tllvs.push(tllv(tag::MEDIA_PLAYBACK_STATE, value));
        }
        tllvs.extend(self.extra_tllvs.iter().cloned());
        tllvs
    }

    /// The plaintext SPC payload: [`DeviceRequest::tllvs`] serialized, whole AES blocks.
    pub fn payload(&self, ask: &[u8; ASK_LEN], derivation: &dyn SessionKeyDerivation) -> Vec<u8> {
        encode_tllvs(&self.tllvs(ask, derivation))
    }

    /// A complete SPC for `creds` (its certificate hash, public key and ASk).
    pub fn build_spc(
        &self,
        creds: &FairPlayCredentials,
        derivation: &dyn SessionKeyDerivation,
    ) -> Vec<u8> {
        let payload = self.payload(creds.ask(), derivation);
        self.seal(&creds.public_key(), creds.certificate_sha1(), &payload)
    }

    /// Wraps a plaintext `payload` (whole AES blocks) into an SPC container: encrypts it with
    /// [`DeviceRequest::spc_key`] and wraps that key to `public_key` with OAEP (SHA-1 for v1,
    /// SHA-256 otherwise). Tests pass a foreign key or hash to build refusals.
    ///
    /// # Panics
    /// If `payload` is not whole AES blocks or the key is too small for OAEP.
    pub fn seal(
        &self,
        public_key: &RsaPublicKey,
        certificate_sha1: [u8; 20],
        payload: &[u8],
    ) -> Vec<u8> {
        assert_eq!(payload.len() % 16, 0, "an SPC payload is whole AES blocks");
        let mut rng = SeededRng::new(&self.oaep_seed);
        let wrapped = if self.version == SPC_VERSION_1 {
            public_key.encrypt(&mut rng, Oaep::new::<Sha1>(), &self.spc_key)
        } else {
            public_key.encrypt(&mut rng, Oaep::new::<Sha256>(), &self.spc_key)
        }
        .expect("OAEP wraps 16 bytes under any FPS-sized key");
        let mut encrypted = payload.to_vec();
        cbc_encrypt_whole_blocks(&self.spc_key, &self.spc_iv, &mut encrypted);

        let mut spc = Vec::with_capacity(72 + wrapped.len() + encrypted.len());
        spc.extend_from_slice(&self.version.to_be_bytes());
        spc.extend_from_slice(&[0; 4]);
        spc.extend_from_slice(&self.spc_iv);
        spc.extend_from_slice(&wrapped);
        spc.extend_from_slice(&certificate_sha1);
        spc.extend_from_slice(&(encrypted.len() as u32).to_be_bytes());
        spc.extend_from_slice(&encrypted);
        spc
    }

    /// Opens a CKC built for this request, as the device would.
    pub fn open_ckc(&self, ckc: &[u8]) -> Result<OpenedCkc, CkcOpenError> {
        let header = ckc.get(..CKC_HEADER_LEN).ok_or(CkcOpenError::Truncated)?;
        let version = u32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
        if version != CKC_VERSION {
            return Err(CkcOpenError::Version(version));
        }
        let ckc_iv: [u8; 16] = header[8..24].try_into().expect("16 bytes");
        let payload_len = u32::from_be_bytes(header[24..28].try_into().expect("4 bytes")) as usize;
        let mut payload = ckc[CKC_HEADER_LEN..].to_vec();
        if payload.len() != payload_len {
            return Err(CkcOpenError::Length);
        }
        let key = payload_key(&self.r1, &self.anti_replay_seed);
        cbc_decrypt_in_place(&key, &ckc_iv, &mut payload).map_err(|_| CkcOpenError::Padding)?;

        let mut content = None;
        let mut r1 = None;
        let mut duration = None;
        let mut returned = Vec::new();
        for tllv in parse_tllvs(&payload).map_err(CkcOpenError::Tllv)? {
            match tllv.tag {
                tag::ENCRYPTED_CONTENT_KEY => {
                    let value: [u8; 32] = tllv
                        .value
                        .try_into()
                        .map_err(|_| CkcOpenError::ContentKey)?;
                    let iv: [u8; 16] = value[..16].try_into().expect("16 bytes");
                    let sealed: [u8; 16] = value[16..].try_into().expect("16 bytes");
                    content = Some((ecb_decrypt_block(&self.session_key, &sealed), iv));
                }
                tag::R1 => r1 = Some(tllv.value.try_into().map_err(|_| CkcOpenError::R1)?),
                tag::CONTENT_KEY_DURATION => {
                    duration =
                        Some(KeyDuration::from_value(&tllv.value).ok_or(CkcOpenError::Duration)?)
                }
                _ => returned.push(tllv),
            }
        }
        let (content_key, content_iv) = content.ok_or(CkcOpenError::ContentKey)?;
        Ok(OpenedCkc {
            ckc_iv,
            content_key,
            content_iv,
            r1: r1.ok_or(CkcOpenError::R1)?,
            duration,
            returned,
        })
    }
}

/// Serializes TLLVs back to back, each padded to whole AES blocks.
pub fn encode_tllvs(tllvs: &[Tllv]) -> Vec<u8> {
    let mut out = Vec::new();
    for tllv in tllvs {
        write_tllv(&mut out, tllv.tag, &tllv.value);
    }
    out
}

fn tllv(tag: u64, value: Vec<u8>) -> Tllv {
    Tllv { tag, value }
}

/// A CKC as the device reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedCkc {
    pub ckc_iv: [u8; 16],
    pub content_key: [u8; 16],
    pub content_iv: [u8; 16],
    /// The R1 the server echoed.
    pub r1: [u8; R1_LEN],
    pub duration: Option<KeyDuration>,
    /// Every other TLLV, in CKC order: the echoed return-request TLLVs.
    pub returned: Vec<Tllv>,
}

/// Why a test device could not read a CKC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CkcOpenError {
    #[error("the CKC is shorter than its header")]
    Truncated,
    #[error("CKC version {0} is not 1")]
    Version(u32),
    #[error("the CKC payload length does not match")]
    Length,
    #[error("the CKC payload is not whole AES blocks")]
    Padding,
    #[error("the CKC payload does not parse: {0}")]
    Tllv(TllvError),
    #[error("no valid encrypted content key TLLV")]
    ContentKey,
    #[error("no valid R1 TLLV")]
    R1,
    #[error("the key duration TLLV is malformed")]
    Duration,
}
