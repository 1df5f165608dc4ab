//! Per-user limits enforced at the edge on manifest, license and key requests: a request rate
//! ([`rate`]) and a number of concurrent streams ([`streams`]), both shared by every edge
//! through Redis and both falling back to a per-process table when Redis is unreachable, so a
//! Redis outage never turns into 5xx or into no limit at all.
//!
//! A refusal is a [`Limited`] carrying the `Retry-After` the caller sends with its 429; the
//! caller picks the reason code (`rate_limited` or `stream_limit`).
//!
//! While the shared link is marked down, [`RedisGate`] lets one request per interval probe
//! Redis and sends the others straight to the local table, so the hot path does not pay the
//! Redis timeout on every request during an outage.

pub mod rate;
pub mod streams;

use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use crate::core::clock::unix_ms;
use crate::core::redis::RedisLink;

pub use rate::RateLimiter;
pub use streams::Streams;

/// A limit was hit; retry after `retry_after_secs` (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_secs: u64,
}

impl Limited {
    /// A refusal lasting until `until_ms` (unix ms), rounded up to whole seconds, at least 1.
    pub(crate) fn until(until_ms: u64, now_ms: u64) -> Limited {
        Limited {
            retry_after_secs: until_ms.saturating_sub(now_ms).div_ceil(1000).max(1),
        }
    }

    /// The 429 refusal for this limit, with `reason` (`rate_limited`, `stream_limit`).
    pub fn refusal(self, reason: playback::Reason) -> crate::core::errors::EdgeError {
        crate::core::errors::EdgeError::Limited {
            reason,
            retry_after_secs: self.retry_after_secs,
        }
    }
}

/// How often, at most, a limiter probes a Redis link that is marked down.
const PROBE_INTERVAL_MS: u64 = 500;

/// Decides whether a request should try Redis: always while the link is up; while it is down,
/// one caller per [`PROBE_INTERVAL_MS`] (the probe that marks it up again), the rest go local.
#[derive(Debug, Default)]
pub(crate) struct RedisGate {
    last_probe_ms: AtomicU64,
}

impl RedisGate {
    pub(crate) fn should_try(&self, link: &RedisLink) -> bool {
        if link.is_up() {
            return true;
        }
        let now = unix_ms();
        let last = self.last_probe_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= PROBE_INTERVAL_MS
            && self
                .last_probe_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Redis links for tests: a real one under a random prefix, a dead one, and one through a
    //! relay that can be cut ([`RedisOutage`]).
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    use crate::config::RedisConfig;
    use crate::core::redis::RedisLink;

    pub fn redis_url() -> String {
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    /// A link to the test Redis with a fresh key prefix (tests run in parallel).
    pub fn live_link() -> Arc<RedisLink> {
        link_to(
            &redis_url(),
            &format!("test:{}:", uuid::Uuid::new_v4().simple()),
        )
    }

    /// A link to `url` under `prefix`, so two "edges" can share keys.
    pub fn link_to(url: &str, prefix: &str) -> Arc<RedisLink> {
        let config = RedisConfig {
            url: url.into(),
            key_prefix: prefix.into(),
            timeout_ms: 300,
        };
        Arc::new(
            crate::core::redis::from_config(&config)
                .expect("valid redis url")
                .expect("url is set"),
        )
    }

    /// A link nothing answers on (port 1 refuses connections on loopback).
    pub fn dead_link() -> Arc<RedisLink> {
        link_to("redis://127.0.0.1:1", "dead:")
    }

    /// A TCP relay in front of the test Redis that a test can cut and restore, to simulate
    /// Redis going down mid-test without touching the shared server.
    pub struct RedisOutage {
        addr: SocketAddr,
        target: String,
        prefix: String,
        running: Mutex<Vec<Relay>>,
    }

    impl RedisOutage {
        /// A relay on an ephemeral loopback port, passing traffic.
        pub async fn start() -> RedisOutage {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
            let outage = RedisOutage {
                addr: listener.local_addr().expect("relay address"),
                target: redis_target(),
                prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
                running: Mutex::new(Vec::new()),
            };
            outage.serve(listener);
            outage
        }

        /// A link through the relay; every link of one relay shares the key prefix.
        pub fn link(&self) -> Arc<RedisLink> {
            link_to(&format!("redis://{}", self.addr), &self.prefix)
        }

        /// A link straight to Redis with the relay's prefix, to look at keys during an outage.
        pub fn direct_link(&self) -> Arc<RedisLink> {
            link_to(&redis_url(), &self.prefix)
        }

        /// Cuts every relayed connection and stops listening (connections are refused).
        pub fn stop(&self) {
            self.running.lock().expect("relay lock").clear();
        }

        /// Listens again on the same port.
        pub async fn resume(&self) {
            // The aborted listener closes on its task's next poll; retry briefly until it has.
            for _ in 0..100 {
                if let Ok(listener) = TcpListener::bind(self.addr).await {
                    self.serve(listener);
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("could not rebind the relay on {}", self.addr);
        }

        fn serve(&self, listener: TcpListener) {
            let target = self.target.clone();
            let relays: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
            let accepted = relays.clone();
            let accept = tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let target = target.clone();
                    let relay = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    accepted.lock().expect("relay lock").push(relay);
                }
            });
            self.running
                .lock()
                .expect("relay lock")
                .push(Relay { accept, relays });
        }
    }

    /// One listening period of the relay; dropping it closes the listener and every connection.
    struct Relay {
        accept: JoinHandle<()>,
        relays: Arc<Mutex<Vec<JoinHandle<()>>>>,
    }

    impl Drop for Relay {
        fn drop(&mut self) {
            self.accept.abort();
            if let Ok(mut relays) = self.relays.lock() {
                relays.drain(..).for_each(|relay| relay.abort());
            }
        }
    }

    impl Drop for RedisOutage {
        fn drop(&mut self) {
            self.stop();
        }
    }

    fn redis_target() -> String {
        let client = redis::Client::open(redis_url()).expect("valid TEST_REDIS_URL");
        match client.get_connection_info().addr.clone() {
            redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            other => panic!("the outage relay needs a TCP redis, not {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(Limited::until(10_000, 10_000).retry_after_secs, 1);
        assert_eq!(Limited::until(9_000, 10_000).retry_after_secs, 1);
        assert_eq!(Limited::until(10_001, 10_000).retry_after_secs, 1);
        assert_eq!(Limited::until(11_001, 10_000).retry_after_secs, 2);
        assert_eq!(Limited::until(130_000, 10_000).retry_after_secs, 120);
    }

    #[tokio::test]
    async fn a_down_link_is_probed_once_per_interval() {
        let link = test_support::dead_link();
        let gate = RedisGate::default();
        assert!(gate.should_try(&link), "an up link is always tried");
        let _: Result<(), _> = link
            .run("ping", |mut c| async move {
                redis::cmd("PING").query_async(&mut c).await
            })
            .await;
        assert!(!link.is_up());
        assert!(gate.should_try(&link), "the first caller probes");
        assert!(!gate.should_try(&link), "the others go local");
        gate.last_probe_ms.store(0, Ordering::Relaxed);
        assert!(gate.should_try(&link), "after the interval, probe again");
    }
}
