//! Per-user request rate, shared by every edge: at most `per_sec` license and key requests per
//! user per one-second window.
//!
//! With Redis, every edge counts into one key per user and second,
//! `{prefix}rl:{user}:{unix_sec}`, with `INCR` and `EXPIRE 2` in one `MULTI`/`EXEC` round trip;
//! a count above `per_sec` is refused until the next second. Windows follow each edge's clock,
//! so edges are expected to be NTP-synchronised (a skew splits one second's count in two).
//!
//! Every edge also counts the same window in process. That count is a lower bound of the shared
//! one, so a user over the limit on this edge alone is refused without a Redis round trip; and
//! when Redis does not answer (or the link is marked down, see [`super::RedisGate`]) the local
//! count decides instead. That fallback is **per edge**: during an outage a user
//! spreading requests over N edges gets up to N × `per_sec`. Its memory is bounded: one small
//! atomic per recently active user in moka (capacity [`LOCAL_USERS`], idle entries dropped
//! after two seconds).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use super::{Limited, RedisGate};
use crate::core::redis::RedisLink;

/// Users tracked at once by the local fallback; the least recently seen are evicted beyond it.
pub const LOCAL_USERS: u64 = 100_000;

/// Enforces `per_sec` requests per user per second, across edges when Redis is configured.
pub struct RateLimiter {
    per_sec: u32,
    redis: Option<Arc<RedisLink>>,
    gate: RedisGate,
    /// user id -> current window, packed as `(unix_sec << 32) | count`.
    local: Cache<String, Arc<AtomicU64>>,
}

impl RateLimiter {
    /// `per_sec` 0 turns the limit off.
    pub fn new(per_sec: u32, redis: Option<Arc<RedisLink>>) -> RateLimiter {
        RateLimiter {
            per_sec,
            redis,
            gate: RedisGate::default(),
            local: Cache::builder()
                .max_capacity(LOCAL_USERS)
                .time_to_idle(Duration::from_secs(2))
                .build(),
        }
    }

    /// The configured limit (0 = off).
    pub fn per_sec(&self) -> u32 {
        self.per_sec
    }

    /// Counts one request of `user_id` arriving at `now_ms`; `Err` when it exceeds that
    /// second's allowance.
    pub async fn check(&self, user_id: &str, now_ms: u64) -> Result<(), Limited> {
        if self.per_sec == 0 {
            return Ok(());
        }
        // This edge's own count is a lower bound of the shared one: when it alone is over the
        // limit, refuse without asking Redis. It also keeps the fallback warm.
        self.check_local(user_id, now_ms)?;
        if let Some(link) = self
            .redis
            .as_deref()
            .filter(|link| self.gate.should_try(link))
        {
            if let Ok(count) = self.count_shared(link, user_id, now_ms / 1000).await {
                return self.verdict(count, now_ms);
            }
        }
        Ok(())
    }

    async fn count_shared(
        &self,
        link: &RedisLink,
        user_id: &str,
        second: u64,
    ) -> Result<u64, crate::core::redis::RedisDown> {
        let key = format!("{}rl:{user_id}:{second}", link.prefix());
        link.run("rate_limit", |mut conn| async move {
            let (count,): (u64,) = redis::pipe()
                .atomic()
                .incr(&key, 1u32)
                .expire(&key, 2)
                .ignore()
                .query_async(&mut conn)
                .await?;
            Ok(count)
        })
        .await
    }

    /// The in-process window: same rule, this edge's requests only.
    fn check_local(&self, user_id: &str, now_ms: u64) -> Result<(), Limited> {
        let window = self
            .local
            .get_with_by_ref(user_id, || Arc::new(AtomicU64::new(0)));
        // Unix seconds fit in 32 bits until 2106.
        let second = (now_ms / 1000) & u64::from(u32::MAX);
        let previous = window
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
                let count = if packed >> 32 == second {
                    (packed & u64::from(u32::MAX)).saturating_add(1)
                } else {
                    1
                };
                Some((second << 32) | count.min(u64::from(u32::MAX)))
            })
            .unwrap_or(0);
        let count = if previous >> 32 == second {
            (previous & u64::from(u32::MAX)) + 1
        } else {
            1
        };
        self.verdict(count, now_ms)
    }

    fn verdict(&self, count: u64, now_ms: u64) -> Result<(), Limited> {
        if count > u64::from(self.per_sec) {
            let next_second_ms = (now_ms / 1000 + 1) * 1000;
            Err(Limited::until(next_second_ms, now_ms))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::limits::test_support::{
        dead_link, link_to, live_link, redis_url, RedisOutage,
    };
    use crate::core::clock::unix_ms;

    /// Sleeps to just after the next second boundary, so a short burst stays in one window.
    async fn start_of_next_second() {
        let now = unix_ms();
        tokio::time::sleep(Duration::from_millis(1000 - now % 1000 + 20)).await;
    }

    async fn allowed_of(limiter: &RateLimiter, user: &str, requests: usize) -> usize {
        let mut allowed = 0;
        for _ in 0..requests {
            if limiter.check(user, unix_ms()).await.is_ok() {
                allowed += 1;
            }
        }
        allowed
    }

    #[tokio::test]
    async fn zero_means_off() {
        let limiter = RateLimiter::new(0, Some(dead_link()));
        assert_eq!(allowed_of(&limiter, "u", 1000).await, 1000);
    }

    #[test]
    fn local_window_counts_per_user_and_second() {
        let limiter = RateLimiter::new(3, None);
        let t = 1_700_000_000_250;
        for _ in 0..3 {
            assert_eq!(limiter.check_local("alice", t), Ok(()));
        }
        assert_eq!(
            limiter.check_local("alice", t + 100),
            Err(Limited {
                retry_after_secs: 1
            })
        );
        assert_eq!(
            limiter.check_local("bob", t),
            Ok(()),
            "users are independent"
        );
        assert_eq!(
            limiter.check_local("alice", t + 750),
            Ok(()),
            "a new second opens a new window"
        );
    }

    #[tokio::test]
    async fn local_only_limiter_enforces() {
        let limiter = RateLimiter::new(5, None);
        start_of_next_second().await;
        assert_eq!(allowed_of(&limiter, "u1", 8).await, 5);
        assert_eq!(
            limiter.check("u1", unix_ms()).await,
            Err(Limited {
                retry_after_secs: 1
            })
        );
    }

    #[tokio::test]
    async fn limit_is_shared_between_edges_through_redis() {
        let first = live_link();
        let second = link_to(&redis_url(), first.prefix());
        let edge_a = RateLimiter::new(10, Some(first.clone()));
        let edge_b = RateLimiter::new(10, Some(second));
        start_of_next_second().await;
        let allowed = allowed_of(&edge_a, "u1", 6).await + allowed_of(&edge_b, "u1", 6).await;
        assert_eq!(
            allowed, 10,
            "two edges together allow per_sec, not 2 × per_sec"
        );
        assert!(first.is_up());
        // The window key expires on its own.
        let key = format!("{}rl:u1:{}", first.prefix(), unix_ms() / 1000);
        let ttl: i64 = first
            .run("ttl", |mut c| async move {
                redis::cmd("TTL").arg(&key).query_async(&mut c).await
            })
            .await
            .unwrap();
        assert!((1..=2).contains(&ttl), "ttl {ttl}");
        // Next second, a fresh allowance.
        start_of_next_second().await;
        assert_eq!(allowed_of(&edge_b, "u1", 3).await, 3);
    }

    #[tokio::test]
    async fn falls_back_to_a_local_limit_while_redis_is_down() {
        let outage = RedisOutage::start().await;
        let limiter = RateLimiter::new(4, Some(outage.link()));
        start_of_next_second().await;
        assert_eq!(allowed_of(&limiter, "u1", 2).await, 2);
        outage.stop();
        let started = std::time::Instant::now();
        let allowed = allowed_of(&limiter, "u2", 50).await;
        assert_eq!(allowed, 4, "the local fallback still enforces the rate");
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "requests do not each wait for the redis timeout: {:?}",
            started.elapsed()
        );
    }
}
