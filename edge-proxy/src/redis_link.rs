//! The edge's shared Redis connection for caches (L2), limits, streams and events.
//!
//! One auto-reconnecting [`ConnectionManager`] per process, opened lazily so an edge starts and
//! serves while Redis is down. Every command runs under `redis.timeout_ms`; a failure or timeout
//! marks the link degraded (shown by `/ready` and the `edge_redis_up` gauge) and the caller
//! falls back to its local behaviour. The next success marks it up again. Revocations keep their
//! own subscription (see [`crate::revocation`]); this link is for request-path commands.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::config::RedisConfig;

/// Redis could not answer in time; callers degrade to local behaviour.
#[derive(Debug, Clone, thiserror::Error)]
#[error("redis unavailable ({0})")]
pub struct RedisDown(pub &'static str);

/// A lazily opened, shared, timeout-bounded Redis connection.
pub struct RedisLink {
    client: redis::Client,
    prefix: String,
    timeout: Duration,
    connection: OnceCell<ConnectionManager>,
    up: AtomicBool,
}

impl RedisLink {
    /// The link `[redis]` describes; `None` when `redis.url` is empty.
    pub fn from_config(config: &RedisConfig) -> Result<Option<RedisLink>, redis::RedisError> {
        if config.url.is_empty() {
            return Ok(None);
        }
        Ok(Some(RedisLink {
            client: redis::Client::open(config.url.as_str())?,
            prefix: config.key_prefix.clone(),
            timeout: Duration::from_millis(config.timeout_ms),
            connection: OnceCell::new(),
            up: AtomicBool::new(true),
        }))
    }

    /// `{redis.key_prefix}{name}`: every key and channel the edge uses is namespaced.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The configured key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The client, for pub/sub subscriptions (which need their own connection).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// False after the last command failed or timed out, until one succeeds.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Records the state seen by another connection to the same Redis (the invalidation
    /// subscriber notices a lost server even when no command runs).
    pub fn mark(&self, up: bool) {
        if self.up.swap(up, Ordering::Relaxed) != up {
            match up {
                true => tracing::info!("redis is reachable again"),
                false => tracing::warn!("redis unavailable; serving from local state"),
            }
        }
    }

    /// Runs `command` on the shared connection within the timeout. `what` names the command
    /// family in the (rate-limited by state change) log line.
    pub async fn run<T, F, Fut>(&self, what: &'static str, command: F) -> Result<T, RedisDown>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let connection = self.connection().await?;
            command(connection).await
        };
        let outcome = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err((e.is_timeout(), e.to_string())),
            Err(_) => Err((true, "timed out".to_string())),
        };
        match outcome {
            Ok(value) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!(what, "redis is reachable again");
                }
                Ok(value)
            }
            Err((timed_out, cause)) => {
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(what, cause, "redis unavailable; serving from local state");
                }
                Err(RedisDown(if timed_out { "timed out" } else { "failed" }))
            }
        }
    }

    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(1);
        self.connection
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(url: &str) -> RedisLink {
        let config = RedisConfig {
            url: url.into(),
            key_prefix: "t:".into(),
            timeout_ms: 200,
        };
        RedisLink::from_config(&config).unwrap().unwrap()
    }

    #[test]
    fn no_url_no_link() {
        assert!(RedisLink::from_config(&RedisConfig::default())
            .unwrap()
            .is_none());
        assert_eq!(link("redis://127.0.0.1:1").key("streams:u"), "t:streams:u");
    }

    #[tokio::test]
    async fn unreachable_redis_degrades_quickly() {
        // Port 1 refuses connections on loopback.
        let link = link("redis://127.0.0.1:1");
        assert!(link.is_up());
        let started = std::time::Instant::now();
        let result: Result<(), RedisDown> = link
            .run("ping", |mut c| async move {
                redis::cmd("PING").query_async(&mut c).await
            })
            .await;
        assert!(result.is_err());
        assert!(!link.is_up());
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn reachable_redis_answers() {
        let url = std::env::var("TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
        let link = link(&url);
        let pong: String = link
            .run("ping", |mut c| async move {
                redis::cmd("PING").query_async(&mut c).await
            })
            .await
            .expect("TEST_REDIS_URL (or 127.0.0.1:6379) must answer");
        assert_eq!(pong, "PONG");
        assert!(link.is_up());
    }
}
