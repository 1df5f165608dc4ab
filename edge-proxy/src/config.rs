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
    /// An HTTP(S) server laid out as `{url}/{videoId}/...`.
    Http,
}

/// `[origin]`: the source of playlists and segments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginConfig {
    pub kind: OriginKind,
    pub directory: PathBuf,
    pub url: String,
    pub max_playlist_bytes: u64,
    pub timeout_ms: u64,
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

/// `[cache]`: in-process caches in front of the control plane.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    pub entitlement_ttl_secs: u64,
    pub negative_ttl_secs: u64,
    pub content_key_ttl_secs: u64,
    pub max_entries: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_base_url: "http://127.0.0.1:8080".into(),
            threads: 2,
            shutdown_grace_secs: 1,
            cors_allow_origin: "*".into(),
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
            max_playlist_bytes: 4 * 1024 * 1024,
            timeout_ms: 5_000,
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
        if self.origin.kind == OriginKind::Http {
            check_http_url("origin.url", &self.origin.url)?;
        }
        check_positive("origin.max_playlist_bytes", self.origin.max_playlist_bytes)?;
        check_positive("origin.timeout_ms", self.origin.timeout_ms)?;
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
        self.validate_drm()?;
        Ok(())
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
        Ok(Secrets {
            jwt_hs256_secret,
            url_signing_key,
            service_token,
            key_transport_key,
        })
    }
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
        let err = from_toml("[origin]\nkind = \"s3\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("kind"), "{err}");
        let err = from_toml("[server]\nlisten_addr = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_addr"), "{err}");
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
        };
        assert_eq!(format!("{secrets:?}"), "Secrets { <redacted> }");
    }
}
