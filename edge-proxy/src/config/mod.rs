//! The edge's configuration, data only: one TOML file plus `EDGE_*` environment overrides,
//! validated once at start-up. One file per TOML section, each with its defaults and its
//! checks; nothing here reads a secret file (the application's builder does, `app::secrets`)
//! or imports another part of the edge.
//!
//! Loading order (later wins): built-in dev defaults, the TOML file given by `--config`, then
//! environment variables prefixed `EDGE_` with nested keys split by `__`
//! (`EDGE_ORIGIN__KIND=http`, `EDGE_SERVER__LISTEN=0.0.0.0:8080`). Secrets are never inline: the
//! config names files. Every validation error names the offending key and says how to fix it.

pub mod cache;
pub mod cdn;
pub mod cloudfront;
pub mod control_plane;
pub mod drm;
pub mod error;
pub mod jwt;
pub mod origin;
pub mod redis;
pub mod route_groups;
pub mod server;
pub mod sessions;
pub mod signed_urls;
pub mod tls;

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use cache::{CacheConfig, StorageLimits, StorageLimitsError, OBJECT_OVERHEAD_BYTES};
pub use cdn::{CdnConfig, DebugConfig};
pub use cloudfront::CloudFrontConfig;
pub use control_plane::ControlPlaneConfig;
pub use drm::{DrmConfig, EventsSink, FairPlayConfig, PlayReadyConfig, WidevineConfig};
pub use error::{invalid, ConfigError};
pub use jwt::{JwtConfig, JwtKeyConfig};
pub use origin::{OriginConfig, OriginKind, OriginS3Config, S3Addressing, MAX_ORIGIN_URLS};
pub use redis::{RedisConfig, RevocationConfig};
pub use route_groups::{RouteGroupConfig, RouteGroupsConfig};
pub use server::ServerConfig;
pub use sessions::{BindIp, CookiesConfig, SessionMode, SessionsConfig};
pub use signed_urls::SignedUrlConfig;
pub use tls::{CertificateFiles, TlsConfig};

/// The whole edge configuration, one field per TOML section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub route_groups: RouteGroupsConfig,
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

    /// Checks every value that the types alone cannot, section by section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.tls.validate(&self.server.listen)?;
        self.route_groups
            .validate(self.tls.enabled() && !self.tls.client_ca_file.as_os_str().is_empty())?;
        self.jwt.validate()?;
        self.signed_urls.validate()?;
        self.sessions.validate()?;
        self.cookies.validate()?;
        self.cloudfront.validate()?;
        self.redis.validate()?;
        self.revocation.validate()?;
        self.origin.validate()?;
        self.control_plane.validate()?;
        self.cache.validate()?;
        self.cdn.validate()?;
        self.drm.validate(!self.redis.url.is_empty())?;
        Ok(())
    }
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
        let rule = config.server.client_address_rule().unwrap();
        assert!(rule.reads_header());
        assert_eq!(
            rule.client_address("10.0.0.1".parse().unwrap(), &["for=203.0.113.7"]),
            "203.0.113.7".parse::<std::net::IpAddr>().unwrap()
        );
        assert!(!from_toml("")
            .unwrap()
            .server
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
        assert_eq!(config.origin.s3.addressing, S3Addressing::Path);
        let config = from_toml(&format!(
            "{base}addressing = \"virtual-hosted\"\nprefix = \"hls/v1\"\nregion = \"eu-west-1\"\nsession_token_file = \"/run/secrets/token\""
        ))
        .unwrap();
        assert_eq!(config.origin.s3.addressing, S3Addressing::VirtualHosted);
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
}
