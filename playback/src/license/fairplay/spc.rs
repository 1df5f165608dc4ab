//! SPC (server playback context) parsing: what a FairPlay device sends the key server.
//!
//! Container (big-endian integers):
//!
//! ```text
//! offset  size       field
//! 0       4          version: 1 (RSA-1024 certificate) or 2 (RSA-2048 certificate)
//! 4       4          reserved
//! 8       16         IV of the payload
//! 24      128 | 256  SPC key (AES-128), RSA-OAEP-wrapped to the FPS certificate
//!                    (v1: OAEP with SHA-1, v2: OAEP with SHA-256)
//! +0      20         SHA-1 of the FPS certificate DER
//! +20     4          payload length
//! +24     n          payload: TLLVs, AES-128-CBC under the SPC key, no padding
//! ```
//!
//! Inside the payload, `[SK..R1]` (IV + 96 encrypted bytes) is AES-128-CBC under
//! `DASk = D(ASk, R2)` and holds the session key SK (16), the device's hashed id HU (20), R1 (44)
//! and 16 integrity bytes that must equal the `[SK..R1]` integrity TLLV.
//!
//! Checks run cheapest first (size, version, certificate hash) so junk never costs an RSA
//! operation, and every length is bounded before use: no input panics or allocates more than
//! [`MAX_SPC_BYTES`].

use std::fmt;

use rsa::Oaep;
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::credentials::FairPlayCredentials;
use super::crypto::{cbc_decrypt_in_place, SeededRng, AES_BLOCK};
use super::derivation::{DerivationError, SessionKeyDerivation};
use super::tllv::{parse_tllvs, tag, Tllv, TllvError};

/// Largest SPC accepted. Real ones are 2–4 KiB.
pub const MAX_SPC_BYTES: usize = 16 * 1024;
/// SPC made for a 1024-bit FPS certificate.
pub const SPC_VERSION_1: u32 = 1;
/// SPC made for a 2048-bit FPS certificate.
pub const SPC_VERSION_2: u32 = 2;

/// Bytes before the wrapped SPC key: version, reserved, IV.
pub(crate) const PREFIX_LEN: usize = 24;
/// Bytes after the wrapped SPC key: certificate hash and payload length.
pub(crate) const SUFFIX_LEN: usize = 24;

pub(crate) const R1_LEN: usize = 44;
pub(crate) const R2_LEN: usize = 21;
pub(crate) const HU_LEN: usize = 20;
pub(crate) const SK_R1_LEN: usize = 112;
const ASSET_ID_LEN: std::ops::RangeInclusive<usize> = 2..=200;
const MAX_PROTOCOL_VERSIONS: usize = 100;

/// Client capability flags (the last 8 bytes of the capabilities TLLV).
pub mod capability {
    /// The client can enforce HDCP type 1.
    pub const HDCP_TYPE1_ENFORCEMENT: u64 = 1;
    /// The client can enforce dual expiry (offline keys).
    pub const OFFLINE_KEY: u64 = 1 << 1;
    /// The client supports check-in (secure delete) requests.
    pub const CHECK_IN: u64 = 1 << 2;
    /// The client supports the offline key TLLV, version 2.
    pub const OFFLINE_KEY_V2: u64 = 1 << 3;
    /// The client can enforce security level Baseline.
    pub const SECURITY_LEVEL_BASELINE: u64 = 1 << 4;
    /// The client can enforce security level Main.
    pub const SECURITY_LEVEL_MAIN: u64 = 1 << 5;
}

/// Playback states a media playback state TLLV reports.
pub mod playback_state {
    /// First playback; a content key is required.
    pub const READY_TO_START: u32 = 0xf4dee5a2;
    /// Playing; a content key is required (lease renewal).
    pub const PLAYING_KEY_REQUIRED: u32 = 0x4f834330;
    /// Playing or paused; no new content key required.
    pub const PLAYING_KEY_NOT_REQUIRED: u32 = 0xa5d6739e;
    /// Playback halted.
    pub const HALTED: u32 = 0x5991bf20;
}

/// Why an SPC was refused. Messages are safe to log: they never carry key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpcError {
    #[error("the SPC is larger than {MAX_SPC_BYTES} bytes")]
    TooLarge,
    #[error("the SPC is cut short")]
    Truncated,
    #[error("the SPC carries bytes after its payload")]
    TrailingBytes,
    #[error("the SPC version is not supported, or does not fit the FPS key size")]
    Version,
    #[error("the SPC was made for another FPS certificate")]
    CertificateMismatch,
    #[error("the SPC key does not unwrap with the FPS private key")]
    KeyUnwrap,
    #[error("the SPC payload or a TLLV block is not a whole number of AES blocks")]
    Padding,
    #[error("malformed TLLV: {0}")]
    Tllv(&'static str),
    #[error("the SPC lacks TLLV {0:#018x}")]
    MissingTag(u64),
    #[error(transparent)]
    Derivation(DerivationError),
    #[error("the [SK..R1] block fails its integrity check")]
    Integrity,
}

impl SpcError {
    /// Stable machine code for responses, events and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            SpcError::TooLarge => "spc_too_large",
            SpcError::Truncated => "spc_truncated",
            SpcError::TrailingBytes => "spc_length",
            SpcError::Version => "spc_version",
            SpcError::CertificateMismatch => "spc_certificate_mismatch",
            SpcError::KeyUnwrap => "spc_key_unwrap",
            SpcError::Padding => "spc_padding",
            SpcError::Tllv(_) => "spc_tllv",
            SpcError::MissingTag(_) => "spc_missing_tag",
            SpcError::Derivation(_) => "spc_derivation",
            SpcError::Integrity => "spc_integrity",
        }
    }
}

impl From<TllvError> for SpcError {
    fn from(error: TllvError) -> SpcError {
        match error {
            TllvError::Misaligned => SpcError::Padding,
            TllvError::TruncatedHeader => SpcError::Tllv("a TLLV header is cut short"),
            TllvError::BlockOverrun => SpcError::Tllv("a TLLV block runs past the payload"),
            TllvError::ValueExceedsBlock => SpcError::Tllv("a TLLV value is longer than its block"),
        }
    }
}

/// The media playback state TLLV: where the device is in playback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaPlaybackState {
    /// SPC creation time, seconds since the Unix epoch (device clock).
    pub creation_date: u32,
    /// One of [`playback_state`].
    pub state: u32,
    pub session_id: u64,
}

/// A parsed, decrypted and verified SPC.
///
/// The session key, R1 and the anti-replay seed stay private (they key the CKC) and are redacted
/// from `Debug`; [`super::build_ckc`] uses them.
#[derive(Clone)]
pub struct Spc {
    /// [`SPC_VERSION_1`] or [`SPC_VERSION_2`].
    pub version: u32,
    /// The asset id the app passed (2 to 200 bytes); see [`Spc::asset_id_str`].
    pub asset_id: Vec<u8>,
    pub transaction_id: u64,
    pub protocol_version_used: u32,
    pub protocol_versions_supported: Vec<u32>,
    /// HU: the device's hashed identifier, stable per device and FPS certificate. Usable for
    /// device binding.
    pub device_hu: [u8; HU_LEN],
    /// The streaming indicator TLLV, if sent (e.g. content going to AirPlay).
    pub streaming_indicator: Option<u64>,
    /// Capability flags ([`capability`]), if the capabilities TLLV was sent.
    pub capabilities: Option<u64>,
    pub media_playback_state: Option<MediaPlaybackState>,
    /// Tags the device asked to have echoed, in request order, without repeats.
    pub return_request: Vec<u64>,
    returned: Vec<Tllv>,
    session_key: [u8; 16],
    r1: [u8; R1_LEN],
    anti_replay_seed: [u8; 16],
}

impl Spc {
    /// The asset id as a key id: `Some` when it is a UUID string (36 ASCII characters,
    /// 8-4-4-4-12 hex groups), the form this product's players send (the content key id).
    pub fn asset_id_str(&self) -> Option<&str> {
        let text = std::str::from_utf8(&self.asset_id).ok()?;
        let shaped = text.len() == 36
            && text.char_indices().all(|(at, c)| match at {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
        shaped.then_some(text)
    }

    /// The TLLVs the CKC must echo, as the SPC carried them, in return-request order.
    pub fn returned_tllvs(&self) -> &[Tllv] {
        &self.returned
    }

    /// True when the capability `flag` ([`capability`]) was advertised.
    pub fn has_capability(&self, flag: u64) -> bool {
        self.capabilities.is_some_and(|flags| flags & flag == flag)
    }

    pub(crate) fn session_key(&self) -> &[u8; 16] {
        &self.session_key
    }

    pub(crate) fn r1(&self) -> &[u8; R1_LEN] {
        &self.r1
    }

    pub(crate) fn anti_replay_seed(&self) -> &[u8; 16] {
        &self.anti_replay_seed
    }
}

impl fmt::Debug for Spc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spc")
            .field("version", &self.version)
            .field("asset_id", &String::from_utf8_lossy(&self.asset_id))
            .field(
                "transaction_id",
                &format_args!("{:#018x}", self.transaction_id),
            )
            .field("protocol_version_used", &self.protocol_version_used)
            .field(
                "protocol_versions_supported",
                &self.protocol_versions_supported,
            )
            .field("device_hu", &hex::encode(self.device_hu))
            .field("streaming_indicator", &self.streaming_indicator)
            .field("capabilities", &self.capabilities)
            .field("media_playback_state", &self.media_playback_state)
            .field("returned", &self.returned)
            .field("session_key", &"<redacted>")
            .field("r1", &"<redacted>")
            .field("anti_replay_seed", &"<redacted>")
            .finish()
    }
}

/// Parses, decrypts and verifies an SPC.
///
/// `blinding_seed` is 32 fresh random bytes from the caller's CSPRNG: the RSA private-key
/// operation is blinded with randomness expanded from it (the `rsa` crate's arithmetic is not
/// constant-time; blinding keeps its timing independent of the attacker's ciphertext). The crate
/// draws no randomness itself.
pub fn parse_spc(
    creds: &FairPlayCredentials,
    derivation: &dyn SessionKeyDerivation,
    spc: &[u8],
    blinding_seed: &[u8; 32],
) -> Result<Spc, SpcError> {
    let (version, payload) = open_container(creds, spc, blinding_seed)?;
    parse_payload(version, creds, derivation, &payload)
}

/// Checks the container and returns the version and the decrypted payload.
fn open_container(
    creds: &FairPlayCredentials,
    spc: &[u8],
    blinding_seed: &[u8; 32],
) -> Result<(u32, Vec<u8>), SpcError> {
    if spc.len() > MAX_SPC_BYTES {
        return Err(SpcError::TooLarge);
    }
    let version = read_u32(spc, 0).ok_or(SpcError::Truncated)?;
    let wrapped_len = wrapped_key_len(version).ok_or(SpcError::Version)?;
    let header_len = PREFIX_LEN + wrapped_len + SUFFIX_LEN;
    let header = spc.get(..header_len).ok_or(SpcError::Truncated)?;
    let iv: [u8; 16] = read_array(header, 8).ok_or(SpcError::Truncated)?;
    let wrapped_key = header
        .get(PREFIX_LEN..PREFIX_LEN + wrapped_len)
        .ok_or(SpcError::Truncated)?;
    let hash_at = PREFIX_LEN + wrapped_len;
    let certificate_hash: [u8; 20] = read_array(header, hash_at).ok_or(SpcError::Truncated)?;
    let payload_len = read_u32(header, hash_at + 20).ok_or(SpcError::Truncated)? as usize;

    if !bool::from(certificate_hash.ct_eq(&creds.certificate_sha1())) {
        return Err(SpcError::CertificateMismatch);
    }
    if creds.key_len() != wrapped_len {
        return Err(SpcError::Version);
    }
    let encrypted = spc.get(header_len..).unwrap_or_default();
    if encrypted.len() < payload_len {
        return Err(SpcError::Truncated);
    }
    if encrypted.len() > payload_len {
        return Err(SpcError::TrailingBytes);
    }
    if payload_len == 0 || payload_len % AES_BLOCK != 0 {
        return Err(SpcError::Padding);
    }

    let mut rng = SeededRng::new(blinding_seed);
    let padding = if version == SPC_VERSION_1 {
        Oaep::new::<Sha1>()
    } else {
        Oaep::new::<Sha256>()
    };
    let spc_key: [u8; 16] = creds
        .private_key()
        .decrypt_blinded(&mut rng, padding, wrapped_key)
        .ok()
        .and_then(|key| <[u8; 16]>::try_from(key.as_slice()).ok())
        .ok_or(SpcError::KeyUnwrap)?;

    let mut payload = encrypted.to_vec();
    cbc_decrypt_in_place(&spc_key, &iv, &mut payload).map_err(|_| SpcError::Padding)?;
    Ok((version, payload))
}

/// Size of the wrapped SPC key for an SPC version.
pub(crate) fn wrapped_key_len(version: u32) -> Option<usize> {
    match version {
        SPC_VERSION_1 => Some(128),
        SPC_VERSION_2 => Some(256),
        _ => None,
    }
}

/// Parses the decrypted TLLV payload: required tags, their sizes, `[SK..R1]` and its integrity.
pub(crate) fn parse_payload(
    version: u32,
    creds: &FairPlayCredentials,
    derivation: &dyn SessionKeyDerivation,
    payload: &[u8],
) -> Result<Spc, SpcError> {
    let tllvs = parse_tllvs(payload)?;
    let mut tags: Vec<u64> = tllvs.iter().map(|t| t.tag).collect();
    tags.sort_unstable();
    if tags.windows(2).any(|pair| matches!(pair, [a, b] if a == b)) {
        return Err(SpcError::Tllv("a tag appears twice"));
    }

    // Presence first, so a missing tag is reported as such rather than as a size problem.
    for required in [
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
        if find(&tllvs, required).is_none() {
            return Err(SpcError::MissingTag(required));
        }
    }

    let sk_r1: [u8; SK_R1_LEN] = fixed(&tllvs, tag::SESSION_KEY_R1, "[SK..R1] must be 112 bytes")?;
    let integrity: [u8; 16] = fixed(
        &tllvs,
        tag::SESSION_KEY_R1_INTEGRITY,
        "[SK..R1] integrity must be 16 bytes",
    )?;
    let anti_replay_seed: [u8; 16] = fixed(
        &tllvs,
        tag::ANTI_REPLAY_SEED,
        "the anti-replay seed must be 16 bytes",
    )?;
    let r2: [u8; R2_LEN] = fixed(&tllvs, tag::R2, "R2 must be 21 bytes")?;
    let transaction_id = u64::from_be_bytes(fixed(
        &tllvs,
        tag::TRANSACTION_ID,
        "the transaction id must be 8 bytes",
    )?);
    let protocol_version_used = u32::from_be_bytes(fixed(
        &tllvs,
        tag::PROTOCOL_VERSION_USED,
        "the protocol version used must be 4 bytes",
    )?);

    let asset_id = find(&tllvs, tag::ASSET_ID).unwrap_or_default();
    if !ASSET_ID_LEN.contains(&asset_id.len()) {
        return Err(SpcError::Tllv("the asset id must be 2 to 200 bytes"));
    }

    let versions = find(&tllvs, tag::PROTOCOL_VERSIONS_SUPPORTED).unwrap_or_default();
    if versions.is_empty() || versions.len() % 4 != 0 || versions.len() / 4 > MAX_PROTOCOL_VERSIONS
    {
        return Err(SpcError::Tllv(
            "the supported protocol versions must be 1 to 100 four-byte values",
        ));
    }
    let protocol_versions_supported = versions
        .chunks_exact(4)
        .filter_map(|chunk| chunk.try_into().ok().map(u32::from_be_bytes))
        .collect();

    let streaming_indicator = optional::<8>(
        &tllvs,
        tag::STREAMING_INDICATOR,
        "the streaming indicator must be 8 bytes",
    )?
    .map(u64::from_be_bytes);
    let capabilities = optional::<16>(&tllvs, tag::CAPABILITIES, "capabilities must be 16 bytes")?
        .and_then(|bytes| read_array::<8>(&bytes, 8))
        .map(u64::from_be_bytes);
    let media_playback_state = optional::<16>(
        &tllvs,
        tag::MEDIA_PLAYBACK_STATE,
        "the media playback state must be 16 bytes",
    )?
    .and_then(|bytes| {
        Some(MediaPlaybackState {
            creation_date: read_u32(&bytes, 0)?,
            state: read_u32(&bytes, 4)?,
            session_id: u64::from_be_bytes(read_array(&bytes, 8)?),
        })
    });

    let (return_request, returned) = collect_returned(&tllvs)?;

    // [SK..R1]: IV, then SK | HU | R1 | integrity under DASk.
    let dask = derivation
        .derive(creds.ask(), &r2)
        .map_err(SpcError::Derivation)?;
    let (sk_r1_iv, sealed) = sk_r1.split_at(AES_BLOCK);
    let sk_r1_iv: [u8; 16] = sk_r1_iv.try_into().map_err(|_| SpcError::Integrity)?;
    let mut opened = sealed.to_vec();
    cbc_decrypt_in_place(&dask, &sk_r1_iv, &mut opened).map_err(|_| SpcError::Integrity)?;
    let session_key: [u8; 16] = read_array(&opened, 0).ok_or(SpcError::Integrity)?;
    let device_hu: [u8; HU_LEN] = read_array(&opened, 16).ok_or(SpcError::Integrity)?;
    let r1: [u8; R1_LEN] = read_array(&opened, 16 + HU_LEN).ok_or(SpcError::Integrity)?;
    let integrity_bytes: [u8; 16] =
        read_array(&opened, 16 + HU_LEN + R1_LEN).ok_or(SpcError::Integrity)?;
    // A wrong DASk (wrong ASk or D function) or a tampered block both land here.
    if !bool::from(integrity_bytes.ct_eq(&integrity)) {
        return Err(SpcError::Integrity);
    }

    Ok(Spc {
        version,
        asset_id: asset_id.to_vec(),
        transaction_id,
        protocol_version_used,
        protocol_versions_supported,
        device_hu,
        streaming_indicator,
        capabilities,
        media_playback_state,
        return_request,
        returned,
        session_key,
        r1,
        anti_replay_seed,
    })
}

/// The return request's tags (deduplicated) and the TLLVs they name, which must all be present.
fn collect_returned(tllvs: &[Tllv]) -> Result<(Vec<u64>, Vec<Tllv>), SpcError> {
    let request = find(tllvs, tag::RETURN_REQUEST).unwrap_or_default();
    if request.len() % 8 != 0 {
        return Err(SpcError::Tllv(
            "the return request must be a whole number of 8-byte tags",
        ));
    }
    let mut tags = Vec::new();
    let mut returned = Vec::new();
    for chunk in request.chunks_exact(8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            continue;
        };
        let wanted = u64::from_be_bytes(bytes);
        if tags.contains(&wanted) {
            continue;
        }
        let tllv = tllvs
            .iter()
            .find(|t| t.tag == wanted)
            .ok_or(SpcError::MissingTag(wanted))?;
        tags.push(wanted);
        returned.push(tllv.clone());
    }
    Ok((tags, returned))
}

fn find(tllvs: &[Tllv], wanted: u64) -> Option<&[u8]> {
    tllvs
        .iter()
        .find(|t| t.tag == wanted)
        .map(|t| t.value.as_slice())
}

/// A required TLLV whose value has exactly `N` bytes.
fn fixed<const N: usize>(
    tllvs: &[Tllv],
    wanted: u64,
    wrong_size: &'static str,
) -> Result<[u8; N], SpcError> {
    let value = find(tllvs, wanted).ok_or(SpcError::MissingTag(wanted))?;
    value.try_into().map_err(|_| SpcError::Tllv(wrong_size))
}

/// An optional TLLV whose value, when present, has exactly `N` bytes.
fn optional<const N: usize>(
    tllvs: &[Tllv],
    wanted: u64,
    wrong_size: &'static str,
) -> Result<Option<[u8; N]>, SpcError> {
    find(tllvs, wanted)
        .map(|value| value.try_into().map_err(|_| SpcError::Tllv(wrong_size)))
        .transpose()
}

fn read_array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    read_array(bytes, at).map(u32::from_be_bytes)
}

/// Runs the payload half of [`parse_spc`] on already-decrypted bytes: the fuzz target uses it
/// to reach the TLLV parser, which random bytes almost never reach through RSA-OAEP.
#[cfg(any(test, feature = "test-support"))]
pub fn parse_decrypted_payload(
    creds: &FairPlayCredentials,
    derivation: &dyn SessionKeyDerivation,
    payload: &[u8],
) -> Result<Spc, SpcError> {
    if payload.len() > MAX_SPC_BYTES {
        return Err(SpcError::TooLarge);
    }
    parse_payload(SPC_VERSION_1, creds, derivation, payload)
}
