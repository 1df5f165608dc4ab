//! The control plane's configuration: one TOML file plus environment overrides.
//!
//! Sources, later ones winning: the TOML file given with `--config`, environment variables
//! prefixed `CP_` with nested keys split by `__` (`CP_DATABASE__URL`, `CP_SERVER__LISTEN`), and
//! `DATABASE_URL` for `database.url`. Secrets are never inline: the file names paths to them and
//! [`crate::secrets`] reads them. [`Config::validate`] checks everything that can be checked
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

/// `[keys]`: the key custody backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub backend: String,
    pub master_key_file: PathBuf,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            backend: "local".into(),
            master_key_file: "data/secrets/master.key".into(),
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

/// `[transcode]`: the local ffmpeg pipeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranscodeConfig {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    pub renditions: Vec<u32>,
    pub segment_seconds: u32,
    pub preset: String,
    pub max_attempts: u32,
    pub max_concurrent_jobs: usize,
}

impl Default for TranscodeConfig {
    fn default() -> Self {
        TranscodeConfig {
            ffmpeg: "/usr/bin/ffmpeg".into(),
            ffprobe: "/usr/bin/ffprobe".into(),
            renditions: vec![1080, 720, 480],
            segment_seconds: 4,
            preset: "veryfast".into(),
            max_attempts: 2,
            max_concurrent_jobs: 1,
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
        if self.keys.backend != "local" {
            return Err(ConfigError::invalid(
                "keys.backend",
                format!(
                    "{:?} is not available in this build; use \"local\" (a master key file)",
                    self.keys.backend
                ),
            ));
        }
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

    /// Checks that the ffmpeg tools exist (only `serve` needs them).
    pub fn validate_tools(&self) -> Result<(), ConfigError> {
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
        c.keys.backend = "kms".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("keys.backend:"));
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
