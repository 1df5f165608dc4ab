//! The edge's configuration: one TOML file plus `EDGE_*` environment overrides, validated once
//! at start-up.
//!
//! Loading order (later wins): built-in dev defaults, the TOML file given by `--config`, then
//! environment variables prefixed `EDGE_` with nested keys split by `__`
//! (`EDGE_ORIGIN__KIND=http`, `EDGE_SERVER__LISTEN=0.0.0.0:8080`). Secrets are never inline: the
//! config names files, and [`Secrets::load`] reads them at start-up. Every validation error names
//! the offending key and says how to fix it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use playback::client_address::{ClientAddressRule, ForwardedHeader};
use serde::{Deserialize, Serialize};

/// The whole edge configuration, one field per TOML section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    pub server: ServerConfig,
    pub jwt: JwtConfig,
    pub signed_urls: SignedUrlConfig,
    pub origin: OriginConfig,
    pub control_plane: ControlPlaneConfig,
    pub cache: CacheConfig,
    pub cdn: CdnConfig,
    pub sessions: SessionsConfig,
    pub cookies: CookiesConfig,
    pub cloudfront: CloudFrontConfig,
    pub redis: RedisConfig,
    pub revocation: RevocationConfig,
    pub drm: DrmConfig,
    pub debug: DebugConfig,
}

/// `[server]`: where the edge listens and how it names itself in URLs it hands out.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub public_base_url: String,
    pub threads: usize,
    pub shutdown_grace_secs: u64,
    /// `Access-Control-Allow-Origin` on every response (`*`, one origin, or empty for none), so
    /// browser players (hls.js, Shaka) on another origin can fetch manifests, playlists and keys.
    pub cors_allow_origin: String,
    /// Proxies (addresses or CIDRs) whose forwarding header is believed: when the peer is one,
    /// the client is the rightmost untrusted address of `forwarded_header`
    /// (`playback::client_address`). Empty (the default): the peer is the client and
    /// forwarding headers are ignored.
    pub trusted_proxies: Vec<String>,
    /// The header the trusted proxies write: `x-forwarded-for` or `forwarded` (RFC 7239).
    pub forwarded_header: String,
}

/// `[jwt]`: how viewer JWTs presented to `/playback/{videoId}/manifest` are checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// An unnamed HS256 key shared with the control plane; `""` for none.
    pub hs256_secret_file: PathBuf,
    pub issuer: String,
    pub audience: String,
    pub leeway_secs: u64,
    /// Longest viewer JWT accepted, bytes.
    pub max_token_bytes: usize,
    /// More verification keys, each pinned to one algorithm (`[[jwt.keys]]`).
    pub keys: Vec<JwtKeyConfig>,
    /// A JWKS document of the auth service (`""` for none), fetched at start-up and refetched
    /// when a token names an unknown `kid`.
    pub jwks_url: String,
    /// At most one JWKS refetch per this many seconds.
    pub jwks_min_refetch_secs: u64,
    pub jwks_timeout_ms: u64,
    /// Longest a verified token stays in the verified-token cache (never past its `exp`).
    pub verified_cache_ttl_secs: u64,
    pub verified_cache_max_entries: u64,
}

/// One `[[jwt.keys]]` entry: an algorithm and exactly one of `secret_file` (HS256),
/// `public_key_file` (PEM; RS256, ES256, EdDSA) or `jwk_file`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtKeyConfig {
    /// The `kid` tokens select this key by; `""` for an unnamed key.
    pub kid: String,
    /// `HS256`, `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    pub secret_file: PathBuf,
    pub public_key_file: PathBuf,
    pub jwk_file: PathBuf,
}

/// `[signed_urls]`: the EdgeAuth v2 tokens on playlist, segment and key URLs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignedUrlConfig {
    /// Raw key bytes; an Akamai property needs the same bytes in hex (`edge-proxy explain`).
    pub signing_key_file: PathBuf,
    /// Lifetime of the manifest token (admits the master playlist only).
    pub manifest_ttl_secs: u64,
    /// Token name: query parameter, path-segment prefix and cookie name (`hdnts`, `__token__`).
    pub token_name: String,
    /// EdgeAuth HMAC: `sha256`, `sha1` or `md5`.
    pub algorithm: String,
    /// EdgeAuth field delimiter (`~`).
    pub field_delimiter: char,
    /// EdgeAuth escape-early (percent-encode `acl`/`data` values before hashing).
    pub escape_early: bool,
}

/// How the session token travels on child requests (`sessions.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    /// `?{token_name}=<token>` on every child URI.
    Query,
    /// `/hls/{v}/{token_name}=<token>/...`: relative URIs inherit it; AVPlayer-safe.
    Path,
    /// A path-scoped cookie set with the master playlist; child URIs carry nothing.
    Cookie,
}

/// Binding of the session token to the client address (`sessions.bind_ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindIp {
    Off,
    Exact,
    Subnet,
}

/// `[sessions]`: the session token minted when a master playlist is served.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    pub mode: SessionMode,
    /// Added to the content's duration.
    pub grace_secs: u64,
    /// Content duration assumed when the first media playlist gives none (live, unreadable).
    pub default_duration_secs: u64,
    /// Upper bound on a session token's lifetime, whatever the playlists claim.
    pub max_lifetime_secs: u64,
    pub bind_ip: BindIp,
}

/// `[cookies]`: attributes of the session cookie (`sessions.mode = "cookie"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CookiesConfig {
    /// `Secure` attribute; turn off only for plain-http development.
    pub secure: bool,
    /// `SameSite`: `None` (cross-site players; needs `secure`), `Lax` or `Strict`.
    pub same_site: String,
}

/// `[cloudfront]`: accept CloudFront signed URLs and cookies. Empty = off.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudFrontConfig {
    /// Key-Pair-Id -> PEM public key file (RSA-2048 or ECDSA P-256).
    pub public_keys: std::collections::BTreeMap<String, PathBuf>,
}

/// `[redis]`: shared revocations. Empty `url` = revocation is local to the process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key and channel this edge uses.
    pub key_prefix: String,
    pub timeout_ms: u64,
}

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

/// `[revocation]`: the deny-list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RevocationConfig {
    /// How long a revocation lasts when the request names no `ttlSecs`.
    pub default_ttl_secs: u64,
    /// Longest `ttlSecs` accepted.
    pub max_ttl_secs: u64,
    pub max_entries: u64,
}

/// `[debug]`: operator aids, off in production.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebugConfig {
    /// Adds `X-Edge-Denial: <code>; <detail>` to refusals.
    pub denial_header: bool,
}

/// Where media comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginKind {
    /// A local folder laid out as `{directory}/{videoId}/...`.
    Directory,
    /// HTTP(S) servers laid out as `{url}/{videoId}/...` (`url`, or several `urls`).
    Http,
    /// An S3 bucket laid out as `{prefix}/{videoId}/...` (`[origin.s3]`).
    S3,
}

/// `[origin]`: the source of playlists and segments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginConfig {
    pub kind: OriginKind,
    pub directory: PathBuf,
    /// The HTTP origin's base URL (`kind = "http"`); or use `urls`, not both.
    pub url: String,
    /// Several HTTP origin base URLs with the same layout, load-balanced round-robin among the
    /// healthy ones, failing over on connect errors (`kind = "http"`).
    pub urls: Vec<String>,
    /// HTTP health check: `GET {base URL}{health_check_path}` must answer 2xx; `""` (default)
    /// checks only that a TCP (or TLS) connection opens.
    pub health_check_path: String,
    /// How often every HTTP backend is checked.
    pub health_check_interval_ms: u64,
    pub max_playlist_bytes: u64,
    pub timeout_ms: u64,
    pub s3: OriginS3Config,
}

/// `[origin.s3]`: the bucket of `kind = "s3"`. The secret key and session token are read
/// from files at start-up, never written inline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginS3Config {
    /// `http(s)://host[:port]`, no path, e.g. `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: String,
    /// The signing region.
    pub region: String,
    pub bucket: String,
    /// Key prefix in front of `{videoId}/`, e.g. `media/hls`; `""` for the bucket's root.
    pub prefix: String,
    /// `"path"` (`{endpoint}/{bucket}/...`, default) or `"virtual-hosted"`
    /// (`{bucket}.{endpoint host}/...`).
    pub addressing: crate::origin::s3::S3Addressing,
    pub access_key_id: String,
    pub secret_access_key_file: PathBuf,
    /// The session token of temporary (STS) credentials; `""` for long-term keys.
    pub session_token_file: PathBuf,
}

/// `[control_plane]`: the internal API that answers entitlement and key questions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlPlaneConfig {
    pub url: String,
    pub service_token_file: PathBuf,
    pub key_transport_key_file: PathBuf,
    pub timeout_ms: u64,
}

/// `[cache]`: in-process caches in front of the control plane, and the segment cache in front
/// of HTTP and S3 origins.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    pub entitlement_ttl_secs: u64,
    pub negative_ttl_secs: u64,
    pub content_key_ttl_secs: u64,
    pub max_entries: u64,
    /// Memory budget of the segment cache (headers + bodies); 0 turns the cache off.
    pub segment_cache_bytes: u64,
    /// Largest object the segment cache stores; larger ones stream through uncached.
    pub max_object_bytes: u64,
    /// Freshness of a segment whose origin sends no `Cache-Control`/`Expires`.
    pub segment_max_age_secs: u64,
    /// How long past freshness a stored object may answer when the origin fails.
    pub stale_if_error_secs: u64,
    /// How long concurrent misses for one object wait for the request fetching it.
    pub lock_timeout_ms: u64,
    /// Freshness of a live origin playlist (no `#EXT-X-ENDLIST`) whose origin says nothing.
    pub playlist_live_ttl_secs: u64,
    /// Freshness of a VOD origin playlist (`#EXT-X-ENDLIST`) whose origin says nothing.
    pub playlist_vod_ttl_secs: u64,
    /// Most origin playlists held at once.
    pub playlist_max_entries: u64,
}

/// `[cdn]`: a CDN pulling from the edge. A request carrying one of the shared secrets in
/// `header` skips viewer tokens and gets a token-free, publicly cacheable answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CdnConfig {
    /// File holding the shared secret(s), one per line (two during a rotation); `""` = off.
    pub shared_secret_file: PathBuf,
    /// The request header that carries the secret.
    pub header: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_base_url: "http://127.0.0.1:8080".into(),
            threads: 2,
            shutdown_grace_secs: 1,
            cors_allow_origin: "*".into(),
            trusted_proxies: Vec::new(),
            forwarded_header: "x-forwarded-for".into(),
        }
    }
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            hs256_secret_file: "data/secrets/jwt-hs256.key".into(),
            issuer: "streaming-dev".into(),
            audience: "streaming-edge".into(),
            leeway_secs: 30,
            max_token_bytes: playback::jwt::MAX_JWT_LEN,
            keys: Vec::new(),
            jwks_url: String::new(),
            jwks_min_refetch_secs: 30,
            jwks_timeout_ms: 2_000,
            verified_cache_ttl_secs: 300,
            verified_cache_max_entries: 100_000,
        }
    }
}

impl Default for SignedUrlConfig {
    fn default() -> Self {
        SignedUrlConfig {
            signing_key_file: "data/secrets/url-signing.key".into(),
            manifest_ttl_secs: 300,
            token_name: "hdnts".into(),
            algorithm: "sha256".into(),
            field_delimiter: '~',
            escape_early: false,
        }
    }
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            mode: SessionMode::Query,
            grace_secs: 600,
            default_duration_secs: 14_400,
            max_lifetime_secs: 86_400,
            bind_ip: BindIp::Off,
        }
    }
}

impl Default for CookiesConfig {
    fn default() -> Self {
        CookiesConfig {
            secure: true,
            same_site: "None".into(),
        }
    }
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

impl Default for RevocationConfig {
    fn default() -> Self {
        RevocationConfig {
            default_ttl_secs: 86_400,
            max_ttl_secs: 30 * 86_400,
            max_entries: 1_000_000,
        }
    }
}

impl Default for OriginConfig {
    fn default() -> Self {
        OriginConfig {
            kind: OriginKind::Directory,
            directory: "data/origin".into(),
            url: String::new(),
            urls: Vec::new(),
            health_check_path: String::new(),
            health_check_interval_ms: 5_000,
            max_playlist_bytes: 4 * 1024 * 1024,
            timeout_ms: 5_000,
            s3: OriginS3Config::default(),
        }
    }
}

impl Default for OriginS3Config {
    fn default() -> Self {
        OriginS3Config {
            endpoint: String::new(),
            region: "us-east-1".into(),
            bucket: String::new(),
            prefix: String::new(),
            addressing: crate::origin::s3::S3Addressing::Path,
            access_key_id: String::new(),
            secret_access_key_file: PathBuf::new(),
            session_token_file: PathBuf::new(),
        }
    }
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        ControlPlaneConfig {
            url: "http://127.0.0.1:8081".into(),
            service_token_file: "data/secrets/service-token".into(),
            key_transport_key_file: "data/secrets/key-transport.key".into(),
            timeout_ms: 2_000,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            entitlement_ttl_secs: 300,
            negative_ttl_secs: 5,
            content_key_ttl_secs: 300,
            max_entries: 100_000,
            segment_cache_bytes: 512 * 1024 * 1024,
            max_object_bytes: 32 * 1024 * 1024,
            segment_max_age_secs: 24 * 3600,
            stale_if_error_secs: 3600,
            lock_timeout_ms: 5_000,
            playlist_live_ttl_secs: 1,
            playlist_vod_ttl_secs: 60,
            playlist_max_entries: 10_000,
        }
    }
}

impl Default for CdnConfig {
    fn default() -> Self {
        CdnConfig {
            shared_secret_file: PathBuf::new(),
            header: "x-edge-cdn-auth".into(),
        }
    }
}

/// A configuration problem, naming the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path} does not exist; pass --config <path> to an existing file (see config/edge.dev.toml)")]
    MissingFile { path: String },
    #[error("could not read the configuration: {0}")]
    Parse(String),
    #[error("config key `{key}` {problem}; fix: {fix}")]
    Invalid {
        key: &'static str,
        problem: String,
        fix: String,
    },
    #[error("config key `{key}`: cannot read secret file {path}: {cause}; fix: run `control-plane init-secrets --dir data/secrets` or point `{key}` at the right file")]
    SecretFile {
        key: &'static str,
        path: String,
        cause: String,
    },
}

fn invalid(key: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
        fix: fix.into(),
    }
}

impl EdgeConfig {
    /// Loads defaults, then `path` (which must exist), then `EDGE_*` variables, and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        if !path.is_file() {
            return Err(ConfigError::MissingFile {
                path: path.display().to_string(),
            });
        }
        Self::from_figment(
            Figment::from(Serialized::defaults(EdgeConfig::default()))
                .merge(Toml::file(path))
                .merge(Env::prefixed("EDGE_").split("__")),
        )
    }

    /// Extracts and validates a configuration from any figment (used by tests with TOML strings).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: EdgeConfig = figment
            .extract()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value that the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if self.server.threads == 0 {
            return Err(invalid("server.threads", "is 0", "set at least 1"));
        }
        if !self
            .server
            .cors_allow_origin
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(invalid(
                "server.cors_allow_origin",
                "is not a valid header value",
                "use \"*\", one origin such as \"https://player.example.com\", or \"\" to send none",
            ));
        }
        check_http_url("server.public_base_url", &self.server.public_base_url)?;
        self.client_address_rule()?;
        if self.jwt.issuer.is_empty() {
            return Err(invalid(
                "jwt.issuer",
                "is empty",
                "set the issuer your JWTs carry in `iss`",
            ));
        }
        if self.jwt.audience.is_empty() {
            return Err(invalid(
                "jwt.audience",
                "is empty",
                "set the audience your JWTs carry in `aud`",
            ));
        }
        self.validate_jwt_keys()?;
        check_positive(
            "signed_urls.manifest_ttl_secs",
            self.signed_urls.manifest_ttl_secs,
        )?;
        self.validate_tokens()?;
        self.validate_origin()?;
        check_http_url("control_plane.url", &self.control_plane.url)?;
        check_positive("control_plane.timeout_ms", self.control_plane.timeout_ms)?;
        check_positive(
            "cache.entitlement_ttl_secs",
            self.cache.entitlement_ttl_secs,
        )?;
        check_positive("cache.negative_ttl_secs", self.cache.negative_ttl_secs)?;
        check_positive(
            "cache.content_key_ttl_secs",
            self.cache.content_key_ttl_secs,
        )?;
        check_positive("cache.max_entries", self.cache.max_entries)?;
        self.validate_segment_cache()?;
        if !self.cdn.shared_secret_file.as_os_str().is_empty()
            && http::HeaderName::from_bytes(self.cdn.header.as_bytes()).is_err()
        {
            return Err(invalid(
                "cdn.header",
                format!("{:?} is not a header name", self.cdn.header),
                "use a header name such as \"x-edge-cdn-auth\"",
            ));
        }
        self.validate_drm()?;
        Ok(())
    }

    /// Who the client of a request is (`server.trusted_proxies`, `server.forwarded_header`).
    pub fn client_address_rule(&self) -> Result<ClientAddressRule, ConfigError> {
        let header =
            ForwardedHeader::from_name(&self.server.forwarded_header).ok_or_else(|| {
                invalid(
                "server.forwarded_header",
                format!("is {:?}", self.server.forwarded_header),
                "use \"x-forwarded-for\" or \"forwarded\": the header your trusted proxies write",
            )
            })?;
        ClientAddressRule::new(&self.server.trusted_proxies, header).map_err(|e| {
            invalid(
                "server.trusted_proxies",
                e.to_string(),
                "list the addresses or CIDR networks of the proxies in front of the edge, e.g. [\"10.0.0.0/8\"], or [] when clients connect directly",
            )
        })
    }

    /// The segment cache's limits and freshness defaults.
    fn validate_segment_cache(&self) -> Result<(), ConfigError> {
        let cache = &self.cache;
        if cache.segment_cache_bytes > 0 {
            if let Err(problem) = self.segment_storage_limits().validate() {
                return Err(invalid(
                    "cache.max_object_bytes",
                    problem.to_string(),
                    "keep cache.max_object_bytes between 1 and cache.segment_cache_bytes (under 4 GiB)",
                ));
            }
        }
        check_positive("cache.segment_max_age_secs", cache.segment_max_age_secs)?;
        check_positive("cache.lock_timeout_ms", cache.lock_timeout_ms)?;
        check_positive("cache.playlist_live_ttl_secs", cache.playlist_live_ttl_secs)?;
        check_positive("cache.playlist_vod_ttl_secs", cache.playlist_vod_ttl_secs)?;
        check_positive("cache.playlist_max_entries", cache.playlist_max_entries)?;
        Ok(())
    }

    /// The segment cache's storage limits: objects stay stored through their stale-if-error
    /// window after the longest default freshness.
    pub fn segment_storage_limits(&self) -> crate::cache::StorageLimits {
        let cache = &self.cache;
        crate::cache::StorageLimits {
            capacity_bytes: cache.segment_cache_bytes,
            max_object_bytes: usize::try_from(cache.max_object_bytes).unwrap_or(usize::MAX),
            max_age: std::time::Duration::from_secs(
                cache
                    .segment_max_age_secs
                    .saturating_add(cache.stale_if_error_secs),
            ),
            streaming_partial_write: true,
        }
    }

    /// The `[origin]` kind's settings: one of `url`/`urls` for HTTP, `[origin.s3]` for S3.
    fn validate_origin(&self) -> Result<(), ConfigError> {
        let origin = &self.origin;
        check_positive("origin.max_playlist_bytes", origin.max_playlist_bytes)?;
        check_positive("origin.timeout_ms", origin.timeout_ms)?;
        match origin.kind {
            OriginKind::Directory => Ok(()),
            OriginKind::Http => validate_http_origin(origin),
            OriginKind::S3 => crate::origin::s3::S3Origin::check_config(origin),
        }
    }

    /// The `[drm]` limits, sinks and license systems.
    fn validate_drm(&self) -> Result<(), ConfigError> {
        let drm = &self.drm;
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
        if drm.events == EventsSink::Redis && self.redis.url.is_empty() {
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

    /// Token, session, cookie, Redis and revocation settings.
    fn validate_tokens(&self) -> Result<(), ConfigError> {
        let name = &self.signed_urls.token_name;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "signed_urls.token_name",
                format!("is {name:?}"),
                "use a plain name such as \"hdnts\" or \"__token__\" (letters, digits, `_`, `-`)",
            ));
        }
        if playback::token::edgeauth::Algorithm::from_name(&self.signed_urls.algorithm).is_none() {
            return Err(invalid(
                "signed_urls.algorithm",
                format!("is {:?}", self.signed_urls.algorithm),
                "use \"sha256\", \"sha1\" or \"md5\"",
            ));
        }
        let delimiter = self.signed_urls.field_delimiter;
        if !delimiter.is_ascii_punctuation() || matches!(delimiter, '=' | '&' | '/' | '%' | '!') {
            return Err(invalid(
                "signed_urls.field_delimiter",
                format!("is {delimiter:?}"),
                "use \"~\" (EdgeAuth's default)",
            ));
        }
        check_positive("sessions.grace_secs", self.sessions.grace_secs)?;
        check_positive(
            "sessions.default_duration_secs",
            self.sessions.default_duration_secs,
        )?;
        check_positive(
            "sessions.max_lifetime_secs",
            self.sessions.max_lifetime_secs,
        )?;
        if !matches!(self.cookies.same_site.as_str(), "None" | "Lax" | "Strict") {
            return Err(invalid(
                "cookies.same_site",
                format!("is {:?}", self.cookies.same_site),
                "use \"None\", \"Lax\" or \"Strict\"",
            ));
        }
        if self.cookies.same_site == "None" && !self.cookies.secure {
            return Err(invalid(
                "cookies.same_site",
                "is \"None\" while cookies.secure = false (browsers drop such cookies)",
                "set cookies.secure = true, or cookies.same_site = \"Lax\" for plain-http development",
            ));
        }
        for id in self.cloudfront.public_keys.keys() {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(
                    "cloudfront.public_keys",
                    format!("has the Key-Pair-Id {id:?}"),
                    "use the alphanumeric id CloudFront shows for the public key (e.g. \"K2JCJMDEHXQW5F\")",
                ));
            }
        }
        let redis = &self.redis.url;
        if !(redis.is_empty() || redis.starts_with("redis://") || redis.starts_with("rediss://")) {
            return Err(invalid(
                "redis.url",
                "is not a redis:// or rediss:// URL",
                "write e.g. \"redis://127.0.0.1:6379\", or \"\" for process-local revocation",
            ));
        }
        check_positive("redis.timeout_ms", self.redis.timeout_ms)?;
        check_positive(
            "revocation.default_ttl_secs",
            self.revocation.default_ttl_secs,
        )?;
        if self.revocation.max_ttl_secs < self.revocation.default_ttl_secs {
            return Err(invalid(
                "revocation.max_ttl_secs",
                "is below revocation.default_ttl_secs",
                "raise it to at least the default",
            ));
        }
        check_positive("revocation.max_entries", self.revocation.max_entries)?;
        Ok(())
    }

    /// The `[jwt]` key sources, sizes and cache bounds.
    fn validate_jwt_keys(&self) -> Result<(), ConfigError> {
        let jwt = &self.jwt;
        if !(512..=65_536).contains(&jwt.max_token_bytes) {
            return Err(invalid(
                "jwt.max_token_bytes",
                format!("is {}", jwt.max_token_bytes),
                "choose between 512 and 65536 (default 8192)",
            ));
        }
        if jwt.hs256_secret_file.as_os_str().is_empty()
            && jwt.keys.is_empty()
            && jwt.jwks_url.is_empty()
        {
            return Err(invalid(
                "jwt",
                "names no verification key",
                "set `hs256_secret_file`, add `[[jwt.keys]]`, or set `jwks_url`",
            ));
        }
        for key in &jwt.keys {
            let alg = playback::jwt::Algorithm::from_name(&key.alg).ok_or_else(|| {
                invalid(
                    "jwt.keys.alg",
                    format!("is {:?}", key.alg),
                    "use \"HS256\", \"RS256\", \"ES256\" or \"EdDSA\"",
                )
            })?;
            if !key.kid.is_empty() && !playback::jwt::kid_is_valid(&key.kid) {
                return Err(invalid(
                    "jwt.keys.kid",
                    format!("is {:?}", key.kid),
                    "use 1-128 characters of A-Z a-z 0-9 - _ . : + / =",
                ));
            }
            let sources = [&key.secret_file, &key.public_key_file, &key.jwk_file]
                .iter()
                .filter(|p| !p.as_os_str().is_empty())
                .count();
            let hs = alg == playback::jwt::Algorithm::Hs256;
            let right_kind = if hs {
                key.public_key_file.as_os_str().is_empty()
            } else {
                key.secret_file.as_os_str().is_empty()
            };
            if sources != 1 || !right_kind {
                return Err(invalid(
                    "jwt.keys",
                    format!("entry for {} (kid {:?}) names {sources} key files", key.alg, key.kid),
                    "give HS256 keys one `secret_file` (or `jwk_file`) and RS256/ES256/EdDSA keys one `public_key_file` (PEM) or `jwk_file`",
                ));
            }
        }
        if !jwt.jwks_url.is_empty() {
            check_http_url("jwt.jwks_url", &jwt.jwks_url)?;
        }
        check_positive("jwt.jwks_min_refetch_secs", jwt.jwks_min_refetch_secs)?;
        check_positive("jwt.jwks_timeout_ms", jwt.jwks_timeout_ms)?;
        check_positive("jwt.verified_cache_ttl_secs", jwt.verified_cache_ttl_secs)?;
        check_positive(
            "jwt.verified_cache_max_entries",
            jwt.verified_cache_max_entries,
        )?;
        Ok(())
    }

    /// The socket address from `server.listen`.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        let addr: SocketAddr = self.server.listen.parse().map_err(|_| {
            invalid(
                "server.listen",
                format!("is {:?}, not an address", self.server.listen),
                "write IP:port, e.g. \"127.0.0.1:8080\"",
            )
        })?;
        if addr.port() == 0 {
            return Err(invalid(
                "server.listen",
                "has port 0",
                "choose a fixed port, e.g. 8080",
            ));
        }
        Ok(addr)
    }

    /// `server.public_base_url` without a trailing slash.
    pub fn public_base_url(&self) -> &str {
        self.server.public_base_url.trim_end_matches('/')
    }
}

fn check_positive(key: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(invalid(key, "is 0", "set a positive number"));
    }
    Ok(())
}

/// Most backends `origin.urls` may list.
pub const MAX_ORIGIN_URLS: usize = 16;

/// `origin.url` xor `origin.urls`, each an http(s) URL without credentials or query; the
/// health check settings.
fn validate_http_origin(origin: &OriginConfig) -> Result<(), ConfigError> {
    let fix_one = "set `url = \"http://media.internal:9000/media\"` for one server, or `urls = [...]` for several";
    match (origin.url.is_empty(), origin.urls.is_empty()) {
        (false, false) => {
            return Err(invalid(
                "origin.urls",
                "is set together with origin.url",
                "keep one: `url` for one server, `urls` for several",
            ))
        }
        (true, true) => {
            return Err(invalid(
                "origin.url",
                "is empty (and so is origin.urls)",
                fix_one,
            ))
        }
        (false, true) => check_origin_url("origin.url", &origin.url)?,
        (true, false) => {
            if origin.urls.len() > MAX_ORIGIN_URLS {
                return Err(invalid(
                    "origin.urls",
                    format!("lists {} URLs", origin.urls.len()),
                    format!("list at most {MAX_ORIGIN_URLS}"),
                ));
            }
            for (i, url) in origin.urls.iter().enumerate() {
                check_origin_url("origin.urls", url)?;
                let same =
                    |other: &String| other.trim_end_matches('/') == url.trim_end_matches('/');
                if origin.urls[..i].iter().any(same) {
                    return Err(invalid(
                        "origin.urls",
                        format!("lists {url:?} twice"),
                        "list every origin server once",
                    ));
                }
            }
        }
    }
    let path = &origin.health_check_path;
    if !path.is_empty()
        && (!path.starts_with('/')
            || path.len() > 1024
            || !path.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(invalid(
            "origin.health_check_path",
            format!("is {path:?}"),
            "write a path relative to each origin URL starting with '/', e.g. \"/healthz\", or \"\" for a TCP check",
        ));
    }
    if origin.health_check_interval_ms < 100 {
        return Err(invalid(
            "origin.health_check_interval_ms",
            format!("is {}", origin.health_check_interval_ms),
            "check at most every 100 ms (default 5000)",
        ));
    }
    Ok(())
}

/// An origin base URL: http(s), no query, no `user:password@` (it would end up in logs).
fn check_origin_url(key: &'static str, value: &str) -> Result<(), ConfigError> {
    check_http_url(key, value)?;
    let has_userinfo = value
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.authority().map(|a| a.as_str().contains('@')))
        .unwrap_or(false);
    if has_userinfo || value.contains('#') {
        return Err(invalid(
            key,
            "holds credentials or a fragment",
            "write a plain URL such as \"http://media.internal:9000/media\" (the edge sends no origin credentials)",
        ));
    }
    Ok(())
}

fn check_http_url(key: &'static str, value: &str) -> Result<(), ConfigError> {
    let parsed: Result<http::Uri, _> = value.parse();
    let ok = match &parsed {
        Ok(uri) => {
            matches!(uri.scheme_str(), Some("http") | Some("https"))
                && uri.host().is_some_and(|h| !h.is_empty())
                && uri.query().is_none()
        }
        Err(_) => false,
    };
    if !ok {
        return Err(invalid(
            key,
            format!("is {value:?}, not an http(s) URL"),
            "write an absolute URL such as \"http://127.0.0.1:8081\" (no query string)",
        ));
    }
    Ok(())
}

/// Secret material read from the files the configuration names. `Debug` never shows it.
pub struct Secrets {
    /// Empty when `jwt.hs256_secret_file` is `""`.
    pub jwt_hs256_secret: Vec<u8>,
    pub url_signing_key: Vec<u8>,
    pub service_token: String,
    pub key_transport_key: [u8; 32],
    /// `cdn.shared_secret_file`'s secrets (empty when CDN pulls are off).
    pub cdn_secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { <redacted> }")
    }
}

/// Shortest HMAC key or JWT secret accepted from a file.
const MIN_SECRET_LEN: usize = 16;

impl Secrets {
    /// Reads every secret file named in `config`; a missing or malformed file names its key.
    pub fn load(config: &EdgeConfig) -> Result<Self, ConfigError> {
        let jwt_hs256_secret = if config.jwt.hs256_secret_file.as_os_str().is_empty() {
            Vec::new()
        } else {
            read_secret("jwt.hs256_secret_file", &config.jwt.hs256_secret_file)?
        };
        let url_signing_key = read_secret(
            "signed_urls.signing_key_file",
            &config.signed_urls.signing_key_file,
        )?;
        let token_bytes = read_secret(
            "control_plane.service_token_file",
            &config.control_plane.service_token_file,
        )?;
        let service_token = String::from_utf8(token_bytes)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                invalid(
                    "control_plane.service_token_file",
                    "does not hold a printable token",
                    "run `control-plane init-secrets --dir data/secrets` to write a hex service token",
                )
            })?;
        let transport = read_secret(
            "control_plane.key_transport_key_file",
            &config.control_plane.key_transport_key_file,
        )?;
        let key_transport_key: [u8; 32] = transport.as_slice().try_into().map_err(|_| {
            invalid(
                "control_plane.key_transport_key_file",
                format!("holds {} bytes, not 32", transport.len()),
                "use the 32-byte key written by `control-plane init-secrets --dir data/secrets`",
            )
        })?;
        let cdn_secrets = if config.cdn.shared_secret_file.as_os_str().is_empty() {
            Vec::new()
        } else {
            cdn_secrets(&read_secret(
                "cdn.shared_secret_file",
                &config.cdn.shared_secret_file,
            )?)?
        };
        Ok(Secrets {
            jwt_hs256_secret,
            url_signing_key,
            service_token,
            key_transport_key,
            cdn_secrets,
        })
    }
}

/// The CDN secrets: one per non-empty line, printable (they travel in a header), 16+ bytes.
fn cdn_secrets(file: &[u8]) -> Result<Vec<Vec<u8>>, ConfigError> {
    let secrets: Vec<Vec<u8>> = file
        .split(|b| *b == b'\n')
        .map(|line| line.trim_ascii().to_vec())
        .filter(|line| !line.is_empty())
        .collect();
    let usable = |s: &Vec<u8>| s.len() >= MIN_SECRET_LEN && s.iter().all(u8::is_ascii_graphic);
    if secrets.is_empty() || !secrets.iter().all(usable) {
        return Err(invalid(
            "cdn.shared_secret_file",
            "must hold one printable secret of at least 16 characters per line",
            "write e.g. `openssl rand -hex 32` into it (two lines while rotating)",
        ));
    }
    Ok(secrets)
}

pub(crate) fn read_secret(key: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| ConfigError::SecretFile {
        key,
        path: path.display().to_string(),
        cause: e.to_string(),
    })?;
    if bytes.len() < MIN_SECRET_LEN {
        return Err(invalid(
            key,
            format!("file {} holds only {} bytes", path.display(), bytes.len()),
            "use a secret of at least 16 bytes, e.g. from `control-plane init-secrets --dir data/secrets`",
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(toml: &str) -> Result<EdgeConfig, ConfigError> {
        EdgeConfig::from_figment(
            Figment::from(Serialized::defaults(EdgeConfig::default())).merge(Toml::string(toml)),
        )
    }

    fn invalid_key(result: Result<EdgeConfig, ConfigError>) -> &'static str {
        match result {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_gives_dev_defaults() {
        let config = from_toml("").unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.origin.kind, OriginKind::Directory);
        assert_eq!(config.signed_urls.manifest_ttl_secs, 300);
        assert_eq!(config.signed_urls.token_name, "hdnts");
        assert_eq!(config.sessions.mode, SessionMode::Query);
        assert!(config.redis.url.is_empty());
        assert_eq!(config.cache.entitlement_ttl_secs, 300);
        assert_eq!(config.jwt.issuer, "streaming-dev");
        assert_eq!(config.drm.rate_limit_per_sec, 200);
        assert_eq!(config.drm.events, EventsSink::Auto);
        assert!(config.drm.fairplay.certificate_file.as_os_str().is_empty());
    }

    #[test]
    fn drm_settings_name_their_key() {
        assert_eq!(
            invalid_key(from_toml("[drm.fairplay]\ncertificate_file = \"a.der\"")),
            "drm.fairplay"
        );
        assert_eq!(
            invalid_key(from_toml(
                "[drm.fairplay]\ncertificate_file = \"a\"\nprivate_key_file = \"b\"\nask_file = \"c\"\nderivation = \"apple\""
            )),
            "drm.fairplay.derivation"
        );
        assert_eq!(
            invalid_key(from_toml("[drm]\nevents = \"redis\"")),
            "drm.events"
        );
        assert_eq!(
            invalid_key(from_toml("[drm.widevine]\nurl = \"ftp://x\"")),
            "drm.widevine.url"
        );
        assert_eq!(
            invalid_key(from_toml(
                "[drm.widevine]\nurl = \"https://wv.example/proxy\""
            )),
            "drm.widevine.provider"
        );
        assert_eq!(
            invalid_key(from_toml("[drm]\nmax_request_bytes = 10")),
            "drm.max_request_bytes"
        );
        assert!(from_toml("[drm]\nevents = \"bogus\"").is_err());
    }

    #[test]
    fn committed_configs_are_valid() {
        for file in ["edge.dev.toml", "edge.production.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../config")
                .join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            from_toml(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }

    #[test]
    fn trusted_proxies_are_checked_at_start_up() {
        assert_eq!(
            invalid_key(from_toml(
                "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"lb\"]"
            )),
            "server.trusted_proxies"
        );
        assert_eq!(
            invalid_key(from_toml("[server]\nforwarded_header = \"x-real-ip\"")),
            "server.forwarded_header"
        );
        let config = from_toml(
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"2001:db8::/32\"]\nforwarded_header = \"Forwarded\"",
        )
        .unwrap();
        let rule = config.client_address_rule().unwrap();
        assert!(rule.reads_header());
        assert_eq!(
            rule.client_address("10.0.0.1".parse().unwrap(), &["for=203.0.113.7"]),
            "203.0.113.7".parse::<std::net::IpAddr>().unwrap()
        );
        assert!(!from_toml("")
            .unwrap()
            .client_address_rule()
            .unwrap()
            .reads_header());
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(
            invalid_key(from_toml("[server]\nlisten = \"localhost\"")),
            "server.listen"
        );
        assert_eq!(
            invalid_key(from_toml("[server]\nlisten = \"127.0.0.1:0\"")),
            "server.listen"
        );
        assert_eq!(
            invalid_key(from_toml("[server]\nthreads = 0")),
            "server.threads"
        );
        assert_eq!(
            invalid_key(from_toml("[server]\npublic_base_url = \"ftp://x\"")),
            "server.public_base_url"
        );
        assert_eq!(
            invalid_key(from_toml("[origin]\nkind = \"http\"")),
            "origin.url"
        );
        assert_eq!(
            invalid_key(from_toml("[signed_urls]\ntoken_name = \"a&b\"")),
            "signed_urls.token_name"
        );
        assert_eq!(
            invalid_key(from_toml("[signed_urls]\nalgorithm = \"sha512\"")),
            "signed_urls.algorithm"
        );
        assert_eq!(
            invalid_key(from_toml("[cookies]\nsecure = false")),
            "cookies.same_site"
        );
        assert_eq!(
            invalid_key(from_toml("[redis]\nurl = \"http://x\"")),
            "redis.url"
        );
        assert!(from_toml("[sessions]\nmode = \"carrier-pigeon\"").is_err());
        assert_eq!(
            invalid_key(from_toml("[cache]\ncontent_key_ttl_secs = 0")),
            "cache.content_key_ttl_secs"
        );
    }

    #[test]
    fn unknown_keys_and_kinds_are_refused() {
        let err = from_toml("[origin]\nkind = \"ftp\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("kind"), "{err}");
        let err = from_toml("[server]\nlisten_addr = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_addr"), "{err}");
    }

    #[test]
    fn http_origins_name_their_key() {
        let http = |lines: &str| from_toml(&format!("[origin]\nkind = \"http\"\n{lines}"));
        let config = http("urls = [\"http://a:9000/media\", \"https://b.example/media/\"]\nhealth_check_path = \"/healthz\"\nhealth_check_interval_ms = 250").unwrap();
        assert_eq!(config.origin.urls.len(), 2);
        assert_eq!(config.origin.health_check_path, "/healthz");
        assert_eq!(config.origin.health_check_interval_ms, 250);
        assert_eq!(
            invalid_key(http("url = \"http://a/m\"\nurls = [\"http://b/m\"]")),
            "origin.urls"
        );
        assert_eq!(invalid_key(http("urls = []")), "origin.url");
        assert_eq!(
            invalid_key(http("urls = [\"http://a/m\", \"ftp://b/m\"]")),
            "origin.urls"
        );
        assert_eq!(
            invalid_key(http("urls = [\"http://a/m\", \"http://a/m/\"]")),
            "origin.urls"
        );
        let many: Vec<String> = (0..=MAX_ORIGIN_URLS)
            .map(|i| format!("\"http://h{i}/m\""))
            .collect();
        assert_eq!(
            invalid_key(http(&format!("urls = [{}]", many.join(", ")))),
            "origin.urls"
        );
        assert_eq!(
            invalid_key(http("url = \"http://user:pass@a/m\"")),
            "origin.url"
        );
        let err = http("url = \"http://user:hunter2@a/m\"")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert_eq!(
            invalid_key(http(
                "url = \"http://a/m\"\nhealth_check_path = \"healthz\""
            )),
            "origin.health_check_path"
        );
        assert_eq!(
            invalid_key(http("url = \"http://a/m\"\nhealth_check_path = \"/a b\"")),
            "origin.health_check_path"
        );
        assert_eq!(
            invalid_key(http("url = \"http://a/m\"\nhealth_check_interval_ms = 10")),
            "origin.health_check_interval_ms"
        );
        // Directory origins ignore the HTTP settings.
        assert!(from_toml("[origin]\nurls = [\"ftp://x\"]").is_ok());
    }

    #[test]
    fn s3_origin_settings_name_their_key() {
        let base = "[origin]\nkind = \"s3\"\n[origin.s3]\nendpoint = \"http://127.0.0.1:9000\"\nbucket = \"media\"\naccess_key_id = \"AKIAEXAMPLE\"\nsecret_access_key_file = \"/run/secrets/s3\"\n";
        let config = from_toml(base).unwrap();
        assert_eq!(config.origin.kind, OriginKind::S3);
        assert_eq!(config.origin.s3.region, "us-east-1");
        assert_eq!(
            config.origin.s3.addressing,
            crate::origin::s3::S3Addressing::Path
        );
        let config = from_toml(&format!(
            "{base}addressing = \"virtual-hosted\"\nprefix = \"hls/v1\"\nregion = \"eu-west-1\"\nsession_token_file = \"/run/secrets/token\""
        ))
        .unwrap();
        assert_eq!(
            config.origin.s3.addressing,
            crate::origin::s3::S3Addressing::VirtualHosted
        );
        assert!(from_toml(&format!("{base}addressing = \"dns\"")).is_err());
        let spoiled = |old: &str, new: &str| invalid_key(from_toml(&base.replace(old, new)));
        assert_eq!(
            spoiled("http://127.0.0.1:9000", "ftp://x"),
            "origin.s3.endpoint"
        );
        assert_eq!(
            spoiled("http://127.0.0.1:9000", "http://x/media"),
            "origin.s3.endpoint"
        );
        assert_eq!(spoiled("\"media\"", "\"Media_Bucket\""), "origin.s3.bucket");
        assert_eq!(spoiled("AKIAEXAMPLE", ""), "origin.s3.access_key_id");
        assert_eq!(
            spoiled("/run/secrets/s3", ""),
            "origin.s3.secret_access_key_file"
        );
        assert_eq!(
            invalid_key(from_toml(&format!("{base}prefix = \"a/../b\""))),
            "origin.s3.prefix"
        );
        assert_eq!(
            invalid_key(from_toml(&format!("{base}region = \"EU West\""))),
            "origin.s3.region"
        );
        assert!(from_toml(&format!("{base}secret_access_key = \"inline\"")).is_err());
    }

    #[test]
    fn http_origin_accepts_a_url() {
        let config =
            from_toml("[origin]\nkind = \"http\"\nurl = \"http://127.0.0.1:9000/media\"").unwrap();
        assert_eq!(config.origin.kind, OriginKind::Http);
    }

    #[test]
    fn missing_secret_names_key_and_init_command() {
        let mut config = EdgeConfig::default();
        config.jwt.hs256_secret_file = "/nonexistent/jwt.key".into();
        let err = Secrets::load(&config).unwrap_err().to_string();
        assert!(err.contains("jwt.hs256_secret_file"), "{err}");
        assert!(
            err.contains("control-plane init-secrets --dir data/secrets"),
            "{err}"
        );
    }

    #[test]
    fn secrets_debug_is_redacted() {
        let secrets = Secrets {
            jwt_hs256_secret: vec![1; 32],
            url_signing_key: vec![2; 32],
            service_token: "abc".into(),
            key_transport_key: [3; 32],
            cdn_secrets: vec![b"0123456789abcdef".to_vec()],
        };
        assert_eq!(format!("{secrets:?}"), "Secrets { <redacted> }");
    }
}
