//! SPEKE v2.0 key exchange: the CPIX 2.3 documents AWS MediaConvert and MediaPackage send to a
//! DRM key provider, and the filled documents the key provider answers with.
//!
//! SPEKE ("Secure Packager and Encoder Key Exchange", AWS's
//! `docs.aws.amazon.com/speke/latest/documentation/`) is a REST profile over DASH-IF CPIX: the
//! encryptor POSTs a CPIX document naming the content (`CPIX@contentId`), the key ids it chose
//! (`ContentKeyList/ContentKey@kid`, each with its `@commonEncryptionScheme`), the DRM systems it
//! needs signaling for (`DRMSystemList/DRMSystem@systemId@kid`, with empty `PSSH`,
//! `ContentProtectionData`, `HLSSignalingData`... placeholders) and the *encryption contract*
//! (`ContentKeyUsageRuleList`: which key protects which tracks, with `VideoFilter`/`AudioFilter`
//! and, for live key rotation, `KeyPeriodFilter` pointing into `ContentKeyPeriodList`). The key
//! provider answers with the same document, every content key's `cpix:Data/pskc:Secret/
//! pskc:PlainValue` and every placeholder filled.
//!
//! This module is the pure document layer; the control plane's `POST /speke/v2/copyProtection`
//! does authentication, key custody and HTTP:
//!
//! ```text
//! check_speke_version(headers.get(X_SPEKE_VERSION))?;        // "Unsupported SPEKE version"
//! let request = parse_request(&body)?;                       // bounded, DTD-free, validated
//! let keys = /* key custody: create or fetch one 16-byte key per request.kids() */;
//! let body = build_response(&request, &keys, &signaling)?;   // the filled CPIX
//! // 200, response_headers(user_agent), body; any SpekeError: err.status(), err.to_string()
//! ```
//!
//! - [`parse`]: [`parse_request`]: hard bounds ([`MAX_DOCUMENT_BYTES`], [`MAX_DEPTH`],
//!   [`MAX_CONTENT_KEYS`], [`MAX_DRM_SYSTEMS`], ...), no DTD, no entity other than XML's five and
//!   character references, namespaces checked, then SPEKE v2's rules.
//! - [`build`]: [`build_response`], with [`ContentKeyMaterial`] (keys from custody) and
//!   [`Signaling`] (the key provider's URLs).
//! - [`pssh`]: `pssh` boxes for Widevine (`WidevinePsshData` protobuf), PlayReady (a PlayReady
//!   Object carrying a WRMHEADER 4.3) and the W3C common system (version 1, key ids only).
//! - [`hls`]: `#EXT-X-KEY` / `#EXT-X-SESSION-KEY` lines for `HLSSignalingData`.
//!
//! ## HTTP contract (for the endpoint)
//!
//! - Request: `Content-Type: application/xml`, [`X_SPEKE_VERSION`]`: 2.0` (absent on SPEKE v1
//!   requests; v1 is not served, so absence is refused like any other version, as AWS says a v2
//!   key provider must: "Unsupported SPEKE version", and the document is not processed).
//! - Response: `Content-Type: application/xml`, `X-Speke-Version` echoing `2.0`, and
//!   `X-Speke-User-Agent` naming the key provider ([`response_headers`]; SPEKE v1 called it
//!   `Speke-User-Agent`, which is sent too, for encryptors that still read that name).
//! - Errors: never a 200. The body is the [`SpekeError`]'s text; where AWS fixed the wording
//!   (`Missing CPIX@contentId`, `Unsupported CPIX@version`, `Malformed encryption contract`,
//!   ...) it is used verbatim, so MediaConvert/MediaPackage show the operator the message the
//!   SPEKE documentation lists. [`SpekeError::status`]: 422 for a well-formed document SPEKE
//!   cannot serve (AWS's suggested catch-all), 400 for a body that is not acceptable XML
//!   (syntax, DTD, unknown entity, wrong root, bounds), 413 for an oversized body, 500 for the
//!   key provider's own faults (a key missing from custody's answer, signaling not configured).
//!
//! ## Decisions
//!
//! - **Unknown DRM system ids are refused** (422, `Unsupported DRMSystem@systemId <id>`), not
//!   echoed back unfilled: AWS requires every element the encryptor sent to come back with a
//!   valid value, and an encryptor packaging with a silently empty PSSH produces content no
//!   player can license. Supported: [`WIDEVINE_SYSTEM_ID`], [`PLAYREADY_SYSTEM_ID`],
//!   [`FAIRPLAY_SYSTEM_ID`], [`COMMON_SYSTEM_ID`] (W3C ClearKey / common PSSH) and
//!   [`CLEARKEY_AES128_SYSTEM_ID`] (HLS AES-128 with a key URL, the id AWS's reference key
//!   server and MediaPackage use for "Clear Key AES-128").
//! - **Content key encryption is refused** (a request with `DeliveryDataList`): answering its
//!   keys in the clear would break the encryptor's expectation, and the RSA/X.509 document-key
//!   scheme is not implemented. Keys travel in the clear inside TLS, which SPEKE allows.
//! - **Signaling placeholders that do not apply to a system are dropped** (a FairPlay
//!   `PSSH`, a common-system `HLSSignalingData`), as AWS's reference key server does; a
//!   `DRMSystem` with no placeholder at all gets that system's default set.
//! - `BitrateFilter` and `VideoFilter@wcg` are ignored, as AWS's constraints page says SPEKE
//!   does; `LabelFilter` (not SPEKE) makes the contract malformed.
//! - Key ids are echoed in their canonical lowercase form.
//! - The deprecated SPEKE v1 elements (`URIExtXKey`, `speke:KeyFormat`,
//!   `speke:KeyFormatVersions`, `speke:ProtectionHeader`) are filled when a request carries them.

pub mod build;
pub mod hls;
pub mod parse;
pub mod pssh;

#[cfg(test)]
mod tests;

use std::fmt;

pub use crate::license::clearkey::KeyId;
pub use build::{build_response, ContentKeyMaterial, Signaling};
pub use parse::parse_request;

/// The CPIX namespace (`cpix:` prefix).
pub const CPIX_NS: &str = "urn:dashif:org:cpix";
/// The PSKC namespace (`pskc:` prefix) of `Secret`/`PlainValue`.
pub const PSKC_NS: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
/// AWS's SPEKE v1 namespace (`speke:` prefix), still accepted for its deprecated elements.
pub const SPEKE_NS: &str = "urn:aws:amazon:com:speke";

/// The only `CPIX@version` SPEKE v2.0 uses.
pub const CPIX_VERSION: &str = "2.3";
/// The only `X-Speke-Version` served.
pub const SPEKE_VERSION: &str = "2.0";
/// Request (and response) header carrying the SPEKE version.
pub const X_SPEKE_VERSION: &str = "X-Speke-Version";
/// SPEKE v2's response header naming the key provider.
pub const X_SPEKE_USER_AGENT: &str = "X-Speke-User-Agent";
/// SPEKE v1's name for [`X_SPEKE_USER_AGENT`].
pub const SPEKE_USER_AGENT: &str = "Speke-User-Agent";
/// Request and response content type.
pub const CONTENT_TYPE: &str = "application/xml";

/// Largest request document accepted, in bytes. A 5-key, 3-DRM-system live request is ~9 KiB.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Deepest element nesting accepted (CPIX needs 7: `CPIX/DeliveryDataList/DeliveryData/
/// DeliveryKey/X509Data/X509Certificate`, `ContentKey/Data/Secret/EncryptedValue/CipherData/
/// CipherValue`).
pub const MAX_DEPTH: usize = 16;
/// Most elements in one document.
pub const MAX_ELEMENTS: usize = 8192;
/// Most attributes (namespace declarations included) on one element.
pub const MAX_ATTRIBUTES: usize = 32;
/// Most content keys in one request (MediaPackage's largest preset asks for 8 video and 3 audio
/// keys; live rotation multiplies by the periods requested at once).
pub const MAX_CONTENT_KEYS: usize = 64;
/// Most `DRMSystem` entries (one per key and system).
pub const MAX_DRM_SYSTEMS: usize = 320;
/// Most `ContentKeyPeriod` entries.
pub const MAX_KEY_PERIODS: usize = 64;
/// Most `ContentKeyUsageRule` entries.
pub const MAX_USAGE_RULES: usize = 128;
/// Most filters in one usage rule.
pub const MAX_FILTERS_PER_RULE: usize = 8;
/// Longest `CPIX@contentId` (it becomes the Widevine `content_id` and part of key URLs).
pub const MAX_CONTENT_ID_BYTES: usize = 256;
/// Longest `ContentKeyPeriod@id` or `ContentKeyUsageRule@intendedTrackType`.
pub const MAX_NAME_BYTES: usize = 128;

/// Widevine's system id.
pub const WIDEVINE_SYSTEM_ID: &str = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";
/// PlayReady's system id.
pub const PLAYREADY_SYSTEM_ID: &str = "9a04f079-9840-4286-ab92-e65be0885f95";
/// Apple FairPlay's system id (HLS `SAMPLE-AES` with `skd://` key URIs).
pub const FAIRPLAY_SYSTEM_ID: &str = "94ce86fb-07ff-4f43-adb8-93d2fa968ca2";
/// The W3C common PSSH system id (ClearKey / "CommonSystem"): a version 1 `pssh` listing kids.
pub const COMMON_SYSTEM_ID: &str = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b";
/// HLS AES-128 with a key URL ("Clear Key AES-128" in MediaPackage and AWS's reference server).
pub const CLEARKEY_AES128_SYSTEM_ID: &str = "3ea8778f-7742-4bf9-b18b-e834b2acbd47";

/// A DRM system this key provider signals for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DrmSystemKind {
    Widevine,
    PlayReady,
    FairPlay,
    /// W3C ClearKey through the common PSSH ([`COMMON_SYSTEM_ID`]).
    CommonSystem,
    /// HLS AES-128 whole-segment encryption with a key URL ([`CLEARKEY_AES128_SYSTEM_ID`]).
    ClearKeyAes128,
}

impl DrmSystemKind {
    /// Every supported system.
    pub const ALL: [DrmSystemKind; 5] = [
        DrmSystemKind::Widevine,
        DrmSystemKind::PlayReady,
        DrmSystemKind::FairPlay,
        DrmSystemKind::CommonSystem,
        DrmSystemKind::ClearKeyAes128,
    ];

    /// The system id in the lowercase spelling CPIX documents use.
    pub fn system_id(self) -> &'static str {
        match self {
            DrmSystemKind::Widevine => WIDEVINE_SYSTEM_ID,
            DrmSystemKind::PlayReady => PLAYREADY_SYSTEM_ID,
            DrmSystemKind::FairPlay => FAIRPLAY_SYSTEM_ID,
            DrmSystemKind::CommonSystem => COMMON_SYSTEM_ID,
            DrmSystemKind::ClearKeyAes128 => CLEARKEY_AES128_SYSTEM_ID,
        }
    }

    /// The system id's 16 bytes (as in a `pssh` box).
    pub fn system_id_bytes(self) -> [u8; 16] {
        // The constants above are well-formed UUIDs.
        KeyId::from_uuid(self.system_id())
            .map(|k| k.0)
            .unwrap_or([0; 16])
    }

    /// Recognises a system id (either hex case).
    pub fn from_system_id(id: &str) -> Option<DrmSystemKind> {
        let id = KeyId::from_uuid(id)?;
        DrmSystemKind::ALL
            .into_iter()
            .find(|kind| kind.system_id_bytes() == id.0)
    }

    /// Whether content encrypted with `scheme` can be signaled for this system. FairPlay is
    /// `cbcs` only; PlayReady (4.0+) plays `cenc` and `cbcs`; Widevine and the common system
    /// take all four CENC schemes; HLS AES-128 encrypts whole segments, whatever the scheme
    /// the encryptor names for its CENC outputs.
    pub fn supports(self, scheme: EncryptionScheme) -> bool {
        match self {
            DrmSystemKind::FairPlay => scheme == EncryptionScheme::Cbcs,
            DrmSystemKind::PlayReady => {
                matches!(scheme, EncryptionScheme::Cenc | EncryptionScheme::Cbcs)
            }
            DrmSystemKind::Widevine
            | DrmSystemKind::CommonSystem
            | DrmSystemKind::ClearKeyAes128 => true,
        }
    }
}

impl fmt::Display for DrmSystemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.system_id())
    }
}

/// `ContentKey@commonEncryptionScheme` (ISO/IEC 23001-7 protection schemes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncryptionScheme {
    /// AES-CTR, full sample and video NAL subsample.
    Cenc,
    /// AES-CBC, full sample and video NAL subsample.
    Cbc1,
    /// AES-CTR, partial video NAL pattern.
    Cens,
    /// AES-CBC, partial video NAL pattern (FairPlay, CMAF).
    Cbcs,
}

impl EncryptionScheme {
    /// The four-character code.
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionScheme::Cenc => "cenc",
            EncryptionScheme::Cbc1 => "cbc1",
            EncryptionScheme::Cens => "cens",
            EncryptionScheme::Cbcs => "cbcs",
        }
    }

    /// Parses the four-character code (exact, lowercase, as CPIX spells it).
    pub fn parse(text: &str) -> Option<EncryptionScheme> {
        match text {
            "cenc" => Some(EncryptionScheme::Cenc),
            "cbc1" => Some(EncryptionScheme::Cbc1),
            "cens" => Some(EncryptionScheme::Cens),
            "cbcs" => Some(EncryptionScheme::Cbcs),
            _ => None,
        }
    }

    /// The four-character code as a big-endian integer (Widevine's `protection_scheme`).
    pub fn fourcc(self) -> u32 {
        u32::from_be_bytes(self.as_str().as_bytes().try_into().unwrap_or([0; 4]))
    }

    /// Whether the scheme is AES-CBC based (`cbc1`, `cbcs`).
    pub fn is_cbc(self) -> bool {
        matches!(self, EncryptionScheme::Cbc1 | EncryptionScheme::Cbcs)
    }
}

/// A parsed, validated SPEKE v2.0 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpekeRequest {
    /// `CPIX@contentId`: the encryptor's resource id (MediaConvert's `ResourceId`).
    pub content_id: String,
    /// The content keys asked for, in document order; kids are unique.
    pub content_keys: Vec<ContentKey>,
    /// The DRM signaling asked for, in document order; `(kid, system)` pairs are unique and
    /// every kid is one of [`SpekeRequest::content_keys`].
    pub drm_systems: Vec<DrmSystem>,
    /// Live key rotation periods (empty for VOD and for live without rotation).
    pub key_periods: Vec<KeyPeriod>,
    /// The encryption contract, in document order.
    pub usage_rules: Vec<UsageRule>,
}

impl SpekeRequest {
    /// The key ids the key provider must supply keys for, in document order.
    pub fn kids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.content_keys.iter().map(|k| k.kid)
    }

    /// The content key entry for `kid`.
    pub fn content_key(&self, kid: &KeyId) -> Option<&ContentKey> {
        self.content_keys.iter().find(|k| &k.kid == kid)
    }

    /// The rotation period `kid` is used in (through its usage rule's `KeyPeriodFilter`).
    pub fn key_period(&self, kid: &KeyId) -> Option<&KeyPeriod> {
        let period_id = self
            .usage_rules
            .iter()
            .find(|r| &r.kid == kid)?
            .period_id
            .as_ref()?;
        self.key_periods.iter().find(|p| &p.id == period_id)
    }

    /// Whether this is a key-rotation request (it names `ContentKeyPeriod`s).
    pub fn is_key_rotation(&self) -> bool {
        !self.key_periods.is_empty()
    }

    /// The scheme every key of this document uses (SPEKE forbids mixing).
    pub fn scheme(&self) -> EncryptionScheme {
        self.content_keys
            .first()
            .map(|k| k.scheme)
            .unwrap_or(EncryptionScheme::Cenc)
    }
}

/// One `ContentKeyList/ContentKey`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentKey {
    pub kid: KeyId,
    pub scheme: EncryptionScheme,
    /// `@explicitIV` when the encryptor chose one (16 bytes, base64 in the document).
    pub explicit_iv: Option<[u8; 16]>,
}

/// One `DRMSystemList/DRMSystem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrmSystem {
    pub kid: KeyId,
    pub system: DrmSystemKind,
    /// The placeholders the encryptor sent, to be filled.
    pub requested: Signals,
}

/// Which signaling placeholders a `DRMSystem` carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    /// `cpix:PSSH`: the base64 `pssh` box.
    pub pssh: bool,
    /// `cpix:ContentProtectionData`: base64 of the DASH `ContentProtection` children.
    pub content_protection_data: bool,
    /// `cpix:HLSSignalingData playlist="media"`: base64 `#EXT-X-KEY` line.
    pub hls_media: bool,
    /// `cpix:HLSSignalingData playlist="master"`: base64 `#EXT-X-SESSION-KEY` line.
    pub hls_master: bool,
    /// `cpix:SmoothStreamingProtectionHeaderData`: base64 PlayReady Object.
    pub smooth_streaming: bool,
    /// SPEKE v1 `cpix:URIExtXKey`: base64 key URI.
    pub uri_ext_x_key: bool,
    /// SPEKE v1 `speke:KeyFormat`: base64 `KEYFORMAT`.
    pub key_format: bool,
    /// SPEKE v1 `speke:KeyFormatVersions`: base64 `KEYFORMATVERSIONS`.
    pub key_format_versions: bool,
    /// SPEKE v1 `speke:ProtectionHeader`: base64 PlayReady Object (MSS).
    pub protection_header: bool,
}

impl Signals {
    /// Whether no placeholder was sent.
    pub fn is_empty(&self) -> bool {
        *self == Signals::default()
    }
}

/// One `ContentKeyPeriodList/ContentKeyPeriod` (live key rotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPeriod {
    pub id: String,
    pub index: u64,
}

/// One `ContentKeyUsageRuleList/ContentKeyUsageRule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRule {
    pub kid: KeyId,
    /// `@intendedTrackType`, e.g. `VIDEO`, `AUDIO`, `ALL`, `SD+HD`, `STEREO_AUDIO`.
    pub intended_track_type: String,
    /// `KeyPeriodFilter@periodId` (key rotation only).
    pub period_id: Option<String>,
    /// The `VideoFilter`s and `AudioFilter`s, in document order (at least one).
    pub filters: Vec<TrackFilter>,
}

/// A `VideoFilter` or `AudioFilter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackFilter {
    Video(VideoFilter),
    Audio(AudioFilter),
}

/// `VideoFilter` with SPEKE's supported attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoFilter {
    pub min_pixels: Option<u64>,
    pub max_pixels: Option<u64>,
    pub hdr: Option<bool>,
    pub min_fps: Option<u32>,
    pub max_fps: Option<u32>,
}

/// `AudioFilter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AudioFilter {
    pub min_channels: Option<u32>,
    pub max_channels: Option<u32>,
}

impl VideoFilter {
    /// Whether no attribute is set (`<cpix:VideoFilter/>`).
    pub fn is_bare(&self) -> bool {
        *self == VideoFilter::default()
    }
}

impl AudioFilter {
    /// Whether no attribute is set (`<cpix:AudioFilter/>`).
    pub fn is_bare(&self) -> bool {
        *self == AudioFilter::default()
    }
}

/// Checks the `X-Speke-Version` request header: only `2.0` is served; a missing header (a
/// SPEKE v1 encryptor) is refused the same way.
pub fn check_speke_version(header: Option<&str>) -> Result<(), SpekeError> {
    match header.map(str::trim) {
        Some(SPEKE_VERSION) => Ok(()),
        _ => Err(SpekeError::UnsupportedSpekeVersion),
    }
}

/// The headers of a successful response: content type, `X-Speke-Version: 2.0`, and the key
/// provider's name under both SPEKE v2's and v1's header names.
pub fn response_headers(user_agent: &str) -> [(&'static str, String); 4] {
    [
        ("Content-Type", CONTENT_TYPE.to_owned()),
        (X_SPEKE_VERSION, SPEKE_VERSION.to_owned()),
        (X_SPEKE_USER_AGENT, user_agent.to_owned()),
        (SPEKE_USER_AGENT, user_agent.to_owned()),
    ]
}

/// Why a SPEKE request was refused, or a response could not be built. `Display` is the
/// response body: AWS's wording where SPEKE fixes one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpekeError {
    // --- the body is not an acceptable XML document (400/413) ---
    /// The body is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("CPIX document larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// Not well-formed XML, not UTF-8, or a construct refused outright.
    #[error("Malformed CPIX document: {0}")]
    MalformedXml(String),
    /// A `<!DOCTYPE`/`<!ENTITY` declaration: refused before any parsing.
    #[error("Malformed CPIX document: DTDs and entity declarations are not accepted")]
    Dtd,
    /// An entity reference other than XML's five predefined ones or a character reference.
    #[error("Malformed CPIX document: undefined entity reference")]
    UndefinedEntity,
    /// The root is not `{urn:dashif:org:cpix}CPIX`, or a prefix is unbound.
    #[error("Not a CPIX document: {0}")]
    Namespace(String),
    /// A hard bound ([`MAX_DEPTH`], [`MAX_ELEMENTS`], [`MAX_CONTENT_KEYS`], ...) was exceeded.
    #[error("CPIX document exceeds a limit: more than {limit} {what}")]
    LimitExceeded { what: &'static str, limit: usize },

    // --- SPEKE v2.0's own messages (AWS wording, 422) ---
    /// `X-Speke-Version` is not `2.0`.
    #[error("Unsupported SPEKE version")]
    UnsupportedSpekeVersion,
    #[error("Missing CPIX@contentId")]
    MissingContentId,
    #[error("Missing CPIX@version")]
    MissingCpixVersion,
    #[error("Unsupported CPIX@version")]
    UnsupportedCpixVersion,
    #[error("Missing ContentKey@commonEncryptionScheme for KID {kid}")]
    MissingEncryptionScheme { kid: String },
    /// Keys of one document use different schemes.
    #[error("Non compliant ContentKey@commonEncryptionScheme combination")]
    MixedEncryptionSchemes,
    /// The scheme cannot be signaled for a requested DRM system.
    #[error("ContentKey@commonEncryptionScheme non compatible with DRMSystem {system_id}")]
    SchemeIncompatible { system_id: String },
    /// The usage rules break SPEKE's contract rules; `reason` is for logs only (the body is
    /// AWS's fixed message).
    #[error("Malformed encryption contract")]
    MalformedContract { reason: &'static str },
    /// The contract is well-formed but refused by the key provider's policy (e.g. one key for
    /// audio and UHD video); for the endpoint's policy checks.
    #[error("Requested CPIX encryption contract not supported")]
    ContractNotSupported,
    /// No `ContentKeyUsageRuleList`, or no `VideoFilter`/`AudioFilter` anywhere.
    #[error("Missing CPIX encryption contract")]
    MissingContract,

    // --- other refusals of a well-formed document (own wording, 422) ---
    /// A structural CPIX rule outside AWS's list (missing/duplicate/invalid kid, missing list).
    #[error("{0}")]
    InvalidDocument(String),
    #[error("Unsupported DRMSystem@systemId {system_id}")]
    UnsupportedSystemId { system_id: String },
    #[error("Content key encryption (cpix:DeliveryDataList) is not supported")]
    DeliveryDataNotSupported,

    // --- the key provider's own faults (500) ---
    /// [`build_response`] was given no key for a requested kid.
    #[error("No content key available for KID {kid}")]
    MissingKeyMaterial { kid: KeyId },
    /// [`Signaling`] lacks what a requested system needs, or holds an unusable value.
    #[error("Key provider signaling not configured: {0}")]
    NotConfigured(&'static str),
}

impl SpekeError {
    /// The HTTP status the endpoint answers with.
    pub fn status(&self) -> u16 {
        match self {
            SpekeError::TooLarge { .. } => 413,
            SpekeError::MalformedXml(_)
            | SpekeError::Dtd
            | SpekeError::UndefinedEntity
            | SpekeError::Namespace(_)
            | SpekeError::LimitExceeded { .. } => 400,
            SpekeError::MissingKeyMaterial { .. } | SpekeError::NotConfigured(_) => 500,
            _ => 422,
        }
    }

    /// A stable machine code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SpekeError::TooLarge { .. } => "speke_too_large",
            SpekeError::MalformedXml(_) => "speke_malformed_xml",
            SpekeError::Dtd => "speke_dtd",
            SpekeError::UndefinedEntity => "speke_undefined_entity",
            SpekeError::Namespace(_) => "speke_namespace",
            SpekeError::LimitExceeded { .. } => "speke_limit_exceeded",
            SpekeError::UnsupportedSpekeVersion => "speke_unsupported_version",
            SpekeError::MissingContentId => "speke_missing_content_id",
            SpekeError::MissingCpixVersion => "speke_missing_cpix_version",
            SpekeError::UnsupportedCpixVersion => "speke_unsupported_cpix_version",
            SpekeError::MissingEncryptionScheme { .. } => "speke_missing_scheme",
            SpekeError::MixedEncryptionSchemes => "speke_mixed_schemes",
            SpekeError::SchemeIncompatible { .. } => "speke_scheme_incompatible",
            SpekeError::MalformedContract { .. } => "speke_malformed_contract",
            SpekeError::ContractNotSupported => "speke_contract_not_supported",
            SpekeError::MissingContract => "speke_missing_contract",
            SpekeError::InvalidDocument(_) => "speke_invalid_document",
            SpekeError::UnsupportedSystemId { .. } => "speke_unsupported_system_id",
            SpekeError::DeliveryDataNotSupported => "speke_delivery_data_not_supported",
            SpekeError::MissingKeyMaterial { .. } => "speke_missing_key_material",
            SpekeError::NotConfigured(_) => "speke_not_configured",
        }
    }
}
