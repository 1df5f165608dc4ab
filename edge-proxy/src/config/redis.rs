//! `[redis]` and `[revocation]`: the Redis every edge shares (revocations, L2 caches, limits,
//! events, invalidations) and the bounds of the deny-list.

use serde::{Deserialize, Serialize};

use super::error::{check_positive, invalid, ConfigError};

/// `[redis]`: shared revocations. Empty `url` = revocation is local to the process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key and channel this edge uses.
    pub key_prefix: String,
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

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: String::new(),
            key_prefix: "edge:".into(),
            timeout_ms: 1_000,
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

impl RedisConfig {
    /// A `redis://` or `rediss://` URL (or none) and a positive timeout.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.url;
        if !(url.is_empty() || url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(invalid(
                "redis.url",
                "is not a redis:// or rediss:// URL",
                "write e.g. \"redis://127.0.0.1:6379\", or \"\" for process-local revocation",
            ));
        }
        check_positive("redis.timeout_ms", self.timeout_ms)
    }
}

impl RevocationConfig {
    /// Positive lifetimes, the maximum at least the default, a bounded table.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_positive("revocation.default_ttl_secs", self.default_ttl_secs)?;
        if self.max_ttl_secs < self.default_ttl_secs {
            return Err(invalid(
                "revocation.max_ttl_secs",
                "is below revocation.default_ttl_secs",
                "raise it to at least the default",
            ));
        }
        check_positive("revocation.max_entries", self.max_entries)
    }
}
