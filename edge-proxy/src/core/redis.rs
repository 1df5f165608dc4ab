//! The edge's one Redis link, shared by everything that uses Redis: revocations, L2 caches,
//! limits, streams, events and invalidations. The shape ([`RedisLink`]: lazy connection, one
//! timeout per command, up/degraded state shown by `/ready` and the `edge_redis_up` gauge) is
//! the `redis-link` crate the control plane uses too; this module opens it from `[redis]`.

use std::time::Duration;

pub use redis_link::{RedisDown, RedisLink};

use crate::config::RedisConfig;

/// The link `[redis]` describes; `None` when `redis.url` is empty.
pub fn from_config(config: &RedisConfig) -> Result<Option<RedisLink>, redis::RedisError> {
    RedisLink::open(
        &config.url,
        &config.key_prefix,
        Duration::from_millis(config.timeout_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_names_the_link() {
        let config = RedisConfig {
            url: "redis://127.0.0.1:1".into(),
            key_prefix: "t:".into(),
            timeout_ms: 200,
        };
        let link = from_config(&config).unwrap().unwrap();
        assert_eq!(link.key("streams:u"), "t:streams:u");
        assert_eq!(link.timeout(), Duration::from_millis(200));
        assert!(from_config(&RedisConfig::default()).unwrap().is_none());
    }
}
