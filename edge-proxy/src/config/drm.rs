//! `[drm]`: the license and key endpoints, their limits, events and license records, and each
//! DRM system's settings (`[drm.fairplay]`, `[drm.widevine]`, `[drm.playready]`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{check_http_url, check_positive, invalid, ConfigError};

/// Where analytics events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventsSink {
    /// A Redis Stream when `redis.url` is set, else the JSON-lines file.
    Auto,
    Redis,
    File,
    Off,
}

/// `[drm]`: license and key endpoints, their limits, events and license records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DrmConfig {
    /// Largest license request body accepted (bytes).
    pub max_request_bytes: usize,
    /// Requests per second per user on manifest, key and license endpoints, across all edges
    /// sharing Redis (per edge while Redis is down); 0 turns the limit off.
    pub rate_limit_per_sec: u32,
    /// A stream counts against `max_concurrent_streams` until this long after its last
    /// license, key, playlist or segment request (or an explicit stop).
    pub stream_timeout_secs: u64,
    /// Require an `X-Device-Id` header on license requests; when the viewer JWT carries a
    /// `device_id` claim the header must equal it.
    pub require_device_id: bool,
    /// How long a built ClearKey/AES-128 answer is reused for the same (user, video, kids).
    pub response_ttl_secs: u64,
    /// Analytics events: "auto" (Redis Stream when Redis is configured, else the file),
    /// "redis", "file" or "off".
    pub events: EventsSink,
    pub events_file: PathBuf,
    /// Stream name (after `redis.key_prefix`).
    pub events_stream: String,
    /// Approximate cap on the stream's length (`XADD MAXLEN ~`).
    pub events_max_len: u64,
    /// Directory of the durable outbox of issued licenses, replayed to the control plane.
    pub license_outbox_dir: PathBuf,
    pub fairplay: FairPlayConfig,
    pub widevine: WidevineConfig,
    pub playready: PlayReadyConfig,
}

/// `[drm.fairplay]`: FairPlay Streaming credentials; all three files or none (disabled).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FairPlayConfig {
    /// The FPS certificate (DER) served at `GET /fps/certificate`.
    pub certificate_file: PathBuf,
    /// The FPS private key (PEM, PKCS#1 or PKCS#8).
    pub private_key_file: PathBuf,
    /// The Application Secret Key (32 hex characters).
    pub ask_file: PathBuf,
    /// The R2 -> session-key derivation. Only "development" is built in (see README: a
    /// production deployment plugs in Apple's D function).
    pub derivation: String,
}

/// `[drm.widevine]`: the Widevine license service the edge forwards challenges to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WidevineConfig {
    /// License proxy URL (http or https); empty disables Widevine.
    pub url: String,
    /// The provider name the service issued.
    pub provider: String,
    /// The provider's 32-byte AES signing key, 64 hex characters.
    pub signing_key_file: PathBuf,
    /// The provider's 16-byte signing IV, 32 hex characters.
    pub signing_iv_file: PathBuf,
    pub timeout_ms: u64,
}

/// `[drm.playready]`: the PlayReady license server the edge forwards challenges to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlayReadyConfig {
    /// License server URL; empty disables PlayReady.
    pub url: String,
    /// HMAC key (at least 16 bytes) signing the custom data the server trusts.
    pub custom_data_key_file: PathBuf,
    pub timeout_ms: u64,
}

impl Default for DrmConfig {
    fn default() -> Self {
        DrmConfig {
            max_request_bytes: 64 * 1024,
            rate_limit_per_sec: 200,
            stream_timeout_secs: 120,
            require_device_id: false,
            response_ttl_secs: 300,
            events: EventsSink::Auto,
            events_file: "data/edge-events.jsonl".into(),
            events_stream: "events".into(),
            events_max_len: 100_000,
            license_outbox_dir: "data/edge-license-outbox".into(),
            fairplay: FairPlayConfig::default(),
            widevine: WidevineConfig::default(),
            playready: PlayReadyConfig::default(),
        }
    }
}

impl Default for FairPlayConfig {
    fn default() -> Self {
        FairPlayConfig {
            certificate_file: PathBuf::new(),
            private_key_file: PathBuf::new(),
            ask_file: PathBuf::new(),
            derivation: "development".into(),
        }
    }
}

impl Default for WidevineConfig {
    fn default() -> Self {
        WidevineConfig {
            url: String::new(),
            provider: String::new(),
            signing_key_file: PathBuf::new(),
            signing_iv_file: PathBuf::new(),
            timeout_ms: 2_000,
        }
    }
}

impl Default for PlayReadyConfig {
    fn default() -> Self {
        PlayReadyConfig {
            url: String::new(),
            custom_data_key_file: PathBuf::new(),
            timeout_ms: 2_000,
        }
    }
}

impl DrmConfig {
    /// Limits, the events sink (`redis_configured`: whether `redis.url` is set) and every
    /// license system's settings.
    pub fn validate(&self, redis_configured: bool) -> Result<(), ConfigError> {
        let drm = self;
        if !(1024..=1024 * 1024).contains(&drm.max_request_bytes) {
            return Err(invalid(
                "drm.max_request_bytes",
                format!("is {}", drm.max_request_bytes),
                "choose between 1024 and 1048576 (default 65536)",
            ));
        }
        check_positive("drm.stream_timeout_secs", drm.stream_timeout_secs)?;
        check_positive("drm.response_ttl_secs", drm.response_ttl_secs)?;
        check_positive("drm.events_max_len", drm.events_max_len)?;
        if drm.events == EventsSink::Redis && !redis_configured {
            return Err(invalid(
                "drm.events",
                "is \"redis\" but redis.url is empty",
                "set redis.url, or use \"auto\" / \"file\"",
            ));
        }
        if drm.events_stream.is_empty() {
            return Err(invalid(
                "drm.events_stream",
                "is empty",
                "name the stream, e.g. \"events\"",
            ));
        }
        let fairplay = &drm.fairplay;
        let named = [
            &fairplay.certificate_file,
            &fairplay.private_key_file,
            &fairplay.ask_file,
        ]
        .iter()
        .filter(|p| !p.as_os_str().is_empty())
        .count();
        if named != 0 && named != 3 {
            return Err(invalid(
                "drm.fairplay",
                "names only some of certificate_file, private_key_file, ask_file",
                "set all three to enable FairPlay, or none to disable it",
            ));
        }
        if named == 3 && fairplay.derivation != "development" {
            return Err(invalid(
                "drm.fairplay.derivation",
                format!("is {:?}", fairplay.derivation),
                "only \"development\" is built in; production needs Apple's D function (see README, FairPlay)",
            ));
        }
        if !drm.widevine.url.is_empty() {
            check_http_url("drm.widevine.url", &drm.widevine.url)?;
            if drm.widevine.provider.is_empty() {
                return Err(invalid(
                    "drm.widevine.provider",
                    "is empty",
                    "set the provider name your Widevine license service issued",
                ));
            }
            check_positive("drm.widevine.timeout_ms", drm.widevine.timeout_ms)?;
        }
        if !drm.playready.url.is_empty() {
            check_http_url("drm.playready.url", &drm.playready.url)?;
            check_positive("drm.playready.timeout_ms", drm.playready.timeout_ms)?;
        }
        Ok(())
    }
}
