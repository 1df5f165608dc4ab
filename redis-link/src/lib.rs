//! The one Redis link shape of the project, used by the edge (revocations, L2 caches, limits,
//! streams, events, invalidations) and the control plane (publishing invalidations).
//!
//! One auto-reconnecting [`ConnectionManager`] per process, opened lazily so a service starts
//! and serves while Redis is down. Every command runs under the configured timeout; a failure or
//! timeout marks the link degraded and the caller falls back to its local behaviour. The next
//! success marks it up again. Pub/sub followers open their own subscription from
//! [`RedisLink::client`] and report what they see with [`RedisLink::mark`].
//!
//! Written here rather than taken from a crate: `redis`'s `ConnectionManager` already does the
//! reconnecting; what is ours is only the lazy open, the one timeout around connect + command,
//! the key prefix and the up/degraded flag with its state-change log line.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

/// Redis could not answer in time; callers degrade to local behaviour. The cause is a fixed
/// word, never the server's text (which may echo a key or the URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

impl std::fmt::Debug for RedisLink {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("up", &self.is_up())
            .finish()
    }
}

impl RedisLink {
    /// The link to `url` with every key under `key_prefix` and every command bounded by
    /// `timeout`; `None` when `url` is empty (Redis not configured). Nothing connects yet.
    pub fn open(
        url: &str,
        key_prefix: &str,
        timeout: Duration,
    ) -> Result<Option<RedisLink>, redis::RedisError> {
        if url.is_empty() {
            return Ok(None);
        }
        Ok(Some(RedisLink {
            client: redis::Client::open(url)?,
            prefix: key_prefix.to_string(),
            timeout,
            connection: OnceCell::new(),
            up: AtomicBool::new(true),
        }))
    }

    /// `{key_prefix}{name}`: every key and channel is namespaced.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The configured key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The per-command timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The client, for pub/sub subscriptions (which need their own connection).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// False after the last command failed or timed out, until one succeeds.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Records the state seen by another connection to the same Redis (a subscriber notices a
    /// lost server even when no command runs).
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
        RedisLink::open(url, "t:", Duration::from_millis(200))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn no_url_no_link() {
        assert!(RedisLink::open("", "t:", Duration::from_millis(200))
            .unwrap()
            .is_none());
        assert_eq!(link("redis://127.0.0.1:1").key("streams:u"), "t:streams:u");
    }

    #[test]
    fn debug_never_shows_the_url() {
        let link = link("redis://user:s3cret-pass@127.0.0.1:1");
        let shown = format!("{link:?}");
        assert!(!shown.contains("s3cret-pass"), "{shown}");
        assert!(shown.contains("t:"), "{shown}");
    }

    #[tokio::test]
    async fn unreachable_redis_degrades_quickly_and_marks_itself_down() {
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
        link.mark(true);
        assert!(link.is_up());
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
