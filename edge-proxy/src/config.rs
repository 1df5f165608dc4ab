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
    pub hs256_secret_file: PathBuf,
    pub issuer: String,
    pub audience: String,
    pub leeway_secs: u64,
}

/// `[signed_urls]`: the HMAC tokens on playlist, segment and key URLs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignedUrlConfig {
    pub signing_key_file: PathBuf,
    pub manifest_ttl_secs: u64,
    pub child_ttl_secs: u64,
    pub query_param: String,
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
        }
    }
}

impl Default for SignedUrlConfig {
    fn default() -> Self {
        SignedUrlConfig {
            signing_key_file: "data/secrets/url-signing.key".into(),
            manifest_ttl_secs: 300,
            child_ttl_secs: 14_400,
            query_param: "token".into(),
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
            entitlement_ttl_secs: 30,
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
        check_positive(
            "signed_urls.manifest_ttl_secs",
            self.signed_urls.manifest_ttl_secs,
        )?;
        check_positive(
            "signed_urls.child_ttl_secs",
            self.signed_urls.child_ttl_secs,
        )?;
        let param = &self.signed_urls.query_param;
        if param.is_empty()
            || !param
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "signed_urls.query_param",
                format!("is {param:?}"),
                "use a plain query parameter name such as \"token\" (letters, digits, `_`, `-`)",
            ));
        }
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
        let jwt_hs256_secret = read_secret("jwt.hs256_secret_file", &config.jwt.hs256_secret_file)?;
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

fn read_secret(key: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
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
        assert_eq!(config.signed_urls.child_ttl_secs, 14_400);
        assert_eq!(config.cache.entitlement_ttl_secs, 30);
        assert_eq!(config.jwt.issuer, "streaming-dev");
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
            invalid_key(from_toml("[signed_urls]\nquery_param = \"a&b\"")),
            "signed_urls.query_param"
        );
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
