//! Concurrent streams per user, shared by every edge: a stream is "open" while its heartbeat
//! is fresh, and a user may have at most the tier's `max_concurrent_streams` open at once.
//! The rule is `playback::streams::admit_stream`; this module applies it to Redis (the same
//! rule in Lua) or to the edge's own table. Only [`Streams::admit`] (a key or license request)
//! opens a stream: playlist and segment requests ([`Streams::touch`]) keep an admitted stream
//! alive but never admit one, with or without Redis.
//!
//! ## Shared state (Redis)
//!
//! One sorted set per user, `{prefix}streams:{user}`: member = stream id (the playback session),
//! score = the unix ms the stream expires unless refreshed. [`Streams::admit`] runs one Lua
//! script (`EVALSHA`, loaded on first use) that atomically prunes expired members, refreshes the
//! stream if it is already open, else opens it if fewer than `max` are open, else answers the
//! oldest expiry (the `Retry-After`). The key itself carries a `PEXPIRE` of the timeout, so
//! abandoned users leave nothing behind.
//!
//! ## Heartbeats
//!
//! Playlist and segment requests call [`Streams::touch`]: synchronous, no I/O, it marks the
//! stream active in the local table. So does `admit` for a warm stream Redis confirmed open
//! within the last heartbeat period, which then costs no round trip (a release on another edge
//! reaches this edge with its next heartbeat). A background task ([`Streams::spawn_heartbeats`]) flushes
//! the marks every `timeout / 4` in one pipeline: `ZADD XX GT` for streams Redis already knows
//! (refresh only, never backwards; a stream released or expired meanwhile is not resurrected
//! and is dropped locally), `ZADD GT` for streams this edge admitted while Redis was down (see
//! below), each followed by `ZSCORE` to learn whether the stream is open in Redis. A
//! stream with no request for `timeout` seconds expires everywhere; [`Streams::release`] ends one
//! at once on an explicit stop.
//!
//! ## Local table and Redis outages
//!
//! Every edge keeps the streams it has seen (admitted here, through Redis or not, or touched
//! here) in a bounded moka table. When Redis does not answer, `admit` applies the rule to the
//! streams of that table that were admitted (a stream only touched here counts for nothing and
//! must be admitted like a new one), so:
//! - a warm stream (admitted through Redis before the outage, or playing through this edge) keeps
//!   being admitted: no 5xx, no interruption;
//! - new streams are limited **per edge** during the outage (a user could open up to `max` on
//!   each edge);
//! - streams admitted during the outage are marked unregistered; the first successful heartbeat
//!   writes them to Redis with a plain `ZADD` (without a limit check: they are already playing),
//!   and likewise re-creates warm streams whose Redis entry lapsed while heartbeats failed.
//!
//! Edges compare expiries with their own clocks, so they are expected to be NTP-synchronised.
//! `ZADD GT` needs Redis 6.2 or later.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use moka::sync::Cache;
use playback::streams::{admit_stream, OpenStream, SlotDecision};

use super::{unix_ms, Limited, RedisGate};
use crate::core::redis::{RedisDown, RedisLink};

/// Users tracked at once in the local table; the least recently seen are evicted beyond it.
pub const LOCAL_USERS: u64 = 100_000;

/// Streams remembered per user locally. Streams only touched here give way to admitted ones, so
/// a limit up to this many is always enforced locally; an unlimited tier (or a larger limit) can
/// open more, which are admitted but not all remembered.
const LOCAL_STREAMS_PER_USER: usize = 64;

/// Heartbeat entries written per pipeline.
const HEARTBEATS_PER_PIPELINE: usize = 1_000;

/// `playback::streams::admit_stream` on the shared set: prunes, then refreshes, opens or
/// refuses; returns 0 when admitted, else the oldest expiry. Only admissions write members
/// (heartbeats refresh with `XX`), so every member was admitted.
/// KEYS[1] = the user's set; ARGV = now_ms, expires_ms, stream id, max (0 = unlimited), key ttl.
const ADMIT_SCRIPT: &str = r"
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
local open = redis.call('ZSCORE', key, ARGV[3])
local max = tonumber(ARGV[4])
if open or max == 0 or redis.call('ZCARD', key) < max then
  redis.call('ZADD', key, 'GT', ARGV[2], ARGV[3])
  redis.call('PEXPIRE', key, ARGV[5])
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return tonumber(oldest[2])
";

/// Tracks open streams per user, across edges when Redis is configured.
pub struct Streams {
    timeout_ms: u64,
    redis: Option<Arc<RedisLink>>,
    gate: RedisGate,
    admit_script: redis::Script,
    local: Cache<String, Arc<Mutex<Vec<LocalStream>>>>,
}

/// What this edge knows about one stream.
#[derive(Debug, Clone)]
struct LocalStream {
    id: String,
    expires_ms: u64,
    known: Known,
    /// Activity since the last heartbeat flush.
    touched: bool,
    /// Unix ms Redis last confirmed the stream open (admit or heartbeat); 0 = never.
    confirmed_ms: u64,
}

/// How the stream relates to Redis, which decides its heartbeat command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Redis had it after the last admit or heartbeat: refresh with `ZADD XX GT`.
    InRedis,
    /// Admitted here while Redis was down, or its heartbeat failed: write with `ZADD`.
    LocalOnly,
    /// Only seen through `touch` (admitted by another edge, or not at all): refresh with
    /// `ZADD XX GT`; the `ZSCORE` after it tells whether it is really open. Never counts as
    /// admitted locally.
    Seen,
}

impl LocalStream {
    /// Admitted through Redis or by this edge (not merely touched).
    fn admitted(&self) -> bool {
        self.known != Known::Seen
    }
}

/// One stream's heartbeat in a flush.
struct Heartbeat {
    user_id: String,
    stream_id: String,
    expires_ms: u64,
    create: bool,
}

impl Streams {
    /// Streams expire `timeout_secs` (at least 1) after their last admit or heartbeat.
    pub fn new(timeout_secs: u64, redis: Option<Arc<RedisLink>>) -> Streams {
        let timeout_ms = timeout_secs.max(1).saturating_mul(1000);
        Streams {
            timeout_ms,
            redis,
            gate: RedisGate::default(),
            admit_script: redis::Script::new(ADMIT_SCRIPT),
            local: Cache::builder()
                .max_capacity(LOCAL_USERS)
                .time_to_idle(Duration::from_millis(timeout_ms))
                .build(),
        }
    }

    /// Admits `stream_id` for `user_id` if it is already open or fewer than `max_streams` are
    /// (0 = unlimited); otherwise refuses until the oldest open stream would expire.
    /// `now` is the request's clock, in Unix ms.
    pub async fn admit(
        &self,
        user_id: &str,
        stream_id: &str,
        max_streams: u32,
        now: u64,
    ) -> Result<(), Limited> {
        let expires_ms = now.saturating_add(self.timeout_ms);
        if self.recently_confirmed(user_id, stream_id, now) {
            // Warm stream: Redis confirmed it within one heartbeat period; the activity mark
            // refreshes it there with the next flush, so no round trip on this request.
            self.touch(user_id, stream_id, now);
            return Ok(());
        }
        if let Some(link) = self.shared() {
            match self
                .admit_shared(link, user_id, stream_id, max_streams, now, expires_ms)
                .await
            {
                Ok(0) => {
                    self.remember(user_id, stream_id, expires_ms, Known::InRedis, false, now);
                    return Ok(());
                }
                Ok(oldest_expiry_ms) => return Err(Limited::until(oldest_expiry_ms, now)),
                Err(RedisDown(_)) => {}
            }
        }
        self.admit_local(user_id, stream_id, max_streams, now)
    }

    /// True when Redis confirmed this stream open less than a heartbeat period (`timeout / 4`)
    /// ago. Such a stream is admitted from the local table: a release on another edge is then
    /// seen here within that period (the next heartbeat finds it gone).
    fn recently_confirmed(&self, user_id: &str, stream_id: &str, now: u64) -> bool {
        self.local.get(user_id).is_some_and(|entry| {
            lock(&entry).iter().any(|s| {
                s.id == stream_id
                    && s.known == Known::InRedis
                    && s.expires_ms > now
                    && now.saturating_sub(s.confirmed_ms) < self.timeout_ms / 4
            })
        })
    }

    async fn admit_shared(
        &self,
        link: &RedisLink,
        user_id: &str,
        stream_id: &str,
        max_streams: u32,
        now: u64,
        expires_ms: u64,
    ) -> Result<u64, RedisDown> {
        let key = self.key(link, user_id);
        let key_ttl_ms = self.timeout_ms + 1_000;
        link.run("streams_admit", |mut conn| async move {
            self.admit_script
                .key(key)
                .arg(now)
                .arg(expires_ms)
                .arg(stream_id)
                .arg(max_streams)
                .arg(key_ttl_ms)
                .invoke_async(&mut conn)
                .await
        })
        .await
    }

    /// The same rule on this edge's table (Redis absent or down), over the streams admitted
    /// here or confirmed by Redis; a stream only touched here is admitted like a new one.
    fn admit_local(
        &self,
        user_id: &str,
        stream_id: &str,
        max_streams: u32,
        now: u64,
    ) -> Result<(), Limited> {
        let entry = self.user_entry(user_id);
        let mut streams = lock(&entry);
        streams.retain(|s| s.expires_ms > now);
        let admitted = streams.iter().filter(|s| s.admitted()).map(|s| OpenStream {
            id: &s.id,
            expires_ms: s.expires_ms,
        });
        let expires_ms = now.saturating_add(self.timeout_ms);
        match admit_stream(admitted, stream_id, max_streams, now) {
            SlotDecision::Full { retry_at_ms } => Err(Limited::until(retry_at_ms, now)),
            SlotDecision::Refresh | SlotDecision::Open => {
                match streams.iter_mut().find(|s| s.id == stream_id) {
                    Some(stream) => {
                        stream.expires_ms = expires_ms;
                        stream.touched = true;
                        if stream.known == Known::Seen {
                            // Admitted here now; make sure Redis learns of it.
                            stream.known = Known::LocalOnly;
                        }
                    }
                    None => insert_bounded(
                        &mut streams,
                        LocalStream {
                            id: stream_id.to_string(),
                            expires_ms,
                            known: Known::LocalOnly,
                            touched: true,
                            confirmed_ms: 0,
                        },
                    ),
                }
                Ok(())
            }
        }
    }

    /// Records activity on a stream (a playlist or segment request at `now`, Unix ms): no I/O,
    /// refreshed in Redis by the next heartbeat flush.
    pub fn touch(&self, user_id: &str, stream_id: &str, now: u64) {
        let expires_ms = now.saturating_add(self.timeout_ms);
        self.remember(user_id, stream_id, expires_ms, Known::Seen, true, now);
    }

    /// Upserts a stream in the local table. `known` applies to new or lapsed entries and
    /// upgrades `Seen`; a stream already tracked keeps what it knows otherwise.
    fn remember(
        &self,
        user_id: &str,
        stream_id: &str,
        expires_ms: u64,
        known: Known,
        touched: bool,
        now: u64,
    ) {
        let entry = self.user_entry(user_id);
        let mut streams = lock(&entry);
        if let Some(stream) = streams.iter_mut().find(|s| s.id == stream_id) {
            if stream.expires_ms <= now || known == Known::InRedis {
                stream.known = known;
            }
            if known == Known::InRedis {
                stream.confirmed_ms = now;
            }
            stream.expires_ms = expires_ms;
            stream.touched |= touched;
            return;
        }
        streams.retain(|s| s.expires_ms > now);
        insert_bounded(
            &mut streams,
            LocalStream {
                id: stream_id.to_string(),
                expires_ms,
                known,
                touched,
                confirmed_ms: if known == Known::InRedis { now } else { 0 },
            },
        );
    }

    /// Ends a stream now (explicit stop). True when it was open here or in Redis.
    pub async fn release(&self, user_id: &str, stream_id: &str) -> bool {
        let released_here = self.local.get(user_id).is_some_and(|entry| {
            let mut streams = lock(&entry);
            let before = streams.len();
            streams.retain(|s| s.id != stream_id);
            streams.len() != before
        });
        let Some(link) = self.shared() else {
            return released_here;
        };
        let key = self.key(link, user_id);
        let removed = link
            .run("streams_release", |mut conn| async move {
                redis::cmd("ZREM")
                    .arg(key)
                    .arg(stream_id)
                    .query_async::<u64>(&mut conn)
                    .await
            })
            .await;
        // While Redis is down the shared entry lapses after the timeout instead.
        removed.is_ok_and(|n| n > 0) || released_here
    }

    /// Streams of `user_id` open now: across edges from Redis, else from this edge's table.
    pub async fn open_count(&self, user_id: &str) -> usize {
        let now = unix_ms();
        if let Some(link) = self.shared() {
            let key = self.key(link, user_id);
            let counted = link
                .run("streams_count", |mut conn| async move {
                    redis::cmd("ZCOUNT")
                        .arg(key)
                        .arg(format!("({now}"))
                        .arg("+inf")
                        .query_async::<usize>(&mut conn)
                        .await
                })
                .await;
            if let Ok(count) = counted {
                return count;
            }
        }
        self.local.get(user_id).map_or(0, |entry| {
            lock(&entry)
                .iter()
                .filter(|s| s.admitted() && s.expires_ms > now)
                .count()
        })
    }

    /// Starts the heartbeat flusher (every `timeout / 4`); it stops when `self` is dropped.
    pub fn spawn_heartbeats(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let streams = Arc::downgrade(self);
        let period = Duration::from_millis((self.timeout_ms / 4).max(250));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(streams) = streams.upgrade() else {
                    return;
                };
                streams.flush_heartbeats().await;
            }
        })
    }

    /// Writes the heartbeats of every stream touched since the last flush (and of streams Redis
    /// does not know yet) in pipelines; what the answers say updates the local table. The
    /// background task calls this; tests call it directly.
    pub async fn flush_heartbeats(&self) {
        let now = unix_ms();
        let Some(link) = self.redis.as_deref() else {
            // Nothing to share; just keep the table small.
            for (_, entry) in self.local.iter() {
                lock(&entry).retain(|s| s.expires_ms > now);
            }
            return;
        };
        let heartbeats = self.take_heartbeats(now);
        for batch in heartbeats.chunks(HEARTBEATS_PER_PIPELINE) {
            match self.send_heartbeats(link, batch).await {
                Ok(scores) => {
                    for (beat, score) in batch.iter().zip(scores) {
                        self.settle(beat, score.is_some_and(|expiry| expiry > now as f64));
                    }
                }
                Err(RedisDown(cause)) => {
                    tracing::debug!(cause, streams = batch.len(), "stream heartbeats deferred");
                    for beat in batch {
                        self.defer(beat);
                    }
                }
            }
        }
    }

    /// Collects the streams to flush and clears their activity marks.
    fn take_heartbeats(&self, now: u64) -> Vec<Heartbeat> {
        let mut heartbeats = Vec::new();
        for (user_id, entry) in self.local.iter() {
            let mut streams = lock(&entry);
            streams.retain(|s| s.expires_ms > now);
            for stream in streams.iter_mut().filter(|s| s.touched) {
                stream.touched = false;
                heartbeats.push(Heartbeat {
                    user_id: user_id.as_ref().clone(),
                    stream_id: stream.id.clone(),
                    expires_ms: stream.expires_ms,
                    create: stream.known == Known::LocalOnly,
                });
            }
        }
        heartbeats
    }

    /// One round trip per batch: per stream `ZADD [XX] GT` (never moves an expiry backwards,
    /// another edge may have refreshed it later) and `ZSCORE` (is it open in Redis now?).
    async fn send_heartbeats(
        &self,
        link: &RedisLink,
        batch: &[Heartbeat],
    ) -> Result<Vec<Option<f64>>, RedisDown> {
        let mut pipe = redis::pipe();
        for beat in batch {
            let key = self.key(link, &beat.user_id);
            let zadd = pipe.cmd("ZADD").arg(&key);
            if !beat.create {
                zadd.arg("XX");
            }
            zadd.arg("GT")
                .arg(beat.expires_ms)
                .arg(&beat.stream_id)
                .ignore();
            pipe.cmd("PEXPIRE")
                .arg(&key)
                .arg(self.timeout_ms + 1_000)
                .ignore();
            pipe.cmd("ZSCORE").arg(&key).arg(&beat.stream_id);
        }
        link.run("streams_heartbeat", |mut conn| async move {
            pipe.query_async(&mut conn).await
        })
        .await
    }

    /// Applies Redis's answer to one heartbeat: open there (now known), or gone (forget it).
    fn settle(&self, beat: &Heartbeat, open_in_redis: bool) {
        let Some(entry) = self.local.get(&beat.user_id) else {
            return;
        };
        let mut streams = lock(&entry);
        if open_in_redis {
            if let Some(stream) = streams.iter_mut().find(|s| s.id == beat.stream_id) {
                stream.known = Known::InRedis;
                stream.confirmed_ms = unix_ms();
            }
        } else {
            // Released or expired in Redis (or never admitted): no longer open anywhere.
            streams.retain(|s| s.id != beat.stream_id || s.touched);
        }
    }

    /// A heartbeat that did not reach Redis: retry next flush, creating the entry if needed.
    fn defer(&self, beat: &Heartbeat) {
        let Some(entry) = self.local.get(&beat.user_id) else {
            return;
        };
        let mut streams = lock(&entry);
        if let Some(stream) = streams.iter_mut().find(|s| s.id == beat.stream_id) {
            stream.touched = true;
            if stream.known == Known::InRedis {
                stream.known = Known::LocalOnly;
            }
        }
    }

    /// The link when Redis is configured and worth trying now.
    fn shared(&self) -> Option<&RedisLink> {
        self.redis
            .as_deref()
            .filter(|link| self.gate.should_try(link))
    }

    fn key(&self, link: &RedisLink, user_id: &str) -> String {
        format!("{}streams:{user_id}", link.prefix())
    }

    fn user_entry(&self, user_id: &str) -> Arc<Mutex<Vec<LocalStream>>> {
        self.local.get_with_by_ref(user_id, Arc::default)
    }
}

/// Adds `stream` to a user's table within [`LOCAL_STREAMS_PER_USER`]. When the table is full, an
/// admitted stream takes the place of the touched-only stream that expires first, so touching
/// many sessions can never crowd admitted streams out of the count (and past the limit); a
/// touched-only stream finds room only by replacing another touched-only one.
fn insert_bounded(streams: &mut Vec<LocalStream>, stream: LocalStream) {
    if streams.len() < LOCAL_STREAMS_PER_USER {
        streams.push(stream);
        return;
    }
    let evictable = streams
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.admitted())
        .min_by_key(|(_, s)| s.expires_ms)
        .map(|(at, _)| at);
    if let Some(at) = evictable {
        streams[at] = stream;
    }
}

/// The table's lock; a panic while holding it cannot leave a half-updated entry worth
/// refusing over, so a poisoned lock is used as is.
fn lock(entry: &Mutex<Vec<LocalStream>>) -> MutexGuard<'_, Vec<LocalStream>> {
    entry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::limits::test_support::{
        dead_link, link_to, live_link, redis_url, RedisOutage,
    };

    /// Two "edges" sharing one Redis key space.
    fn two_edges(timeout_secs: u64) -> (Streams, Streams, Arc<RedisLink>) {
        let first = live_link();
        let second = link_to(&redis_url(), first.prefix());
        (
            Streams::new(timeout_secs, Some(first.clone())),
            Streams::new(timeout_secs, Some(second)),
            first,
        )
    }

    async fn score(link: &RedisLink, user: &str, stream: &str) -> Option<f64> {
        let key = format!("{}streams:{user}", link.prefix());
        link.run("zscore", |mut c| async move {
            redis::cmd("ZSCORE")
                .arg(key)
                .arg(stream)
                .query_async(&mut c)
                .await
        })
        .await
        .expect("test redis answers")
    }

    async fn limit_semantics(edge: &Streams) {
        assert_eq!(edge.admit("u1", "s1", 2, unix_ms()).await, Ok(()));
        assert_eq!(edge.admit("u1", "s2", 2, unix_ms()).await, Ok(()));
        assert_eq!(
            edge.admit("u1", "s1", 2, unix_ms()).await,
            Ok(()),
            "an open stream is refreshed"
        );
        let refused = edge.admit("u1", "s3", 2, unix_ms()).await.unwrap_err();
        assert!(
            (119..=120).contains(&refused.retry_after_secs),
            "retry when the oldest expires: {refused:?}"
        );
        assert_eq!(
            edge.admit("u2", "s3", 2, unix_ms()).await,
            Ok(()),
            "users are independent"
        );
        assert_eq!(
            edge.admit("u1", "s9", 0, unix_ms()).await,
            Ok(()),
            "0 means unlimited"
        );
        assert_eq!(edge.open_count("u1").await, 3);
        assert!(edge.release("u1", "s9").await);
        assert!(edge.release("u1", "s1").await);
        assert!(!edge.release("u1", "s1").await, "already released");
        assert_eq!(
            edge.admit("u1", "s3", 2, unix_ms()).await,
            Ok(()),
            "a released slot is free"
        );
        assert_eq!(edge.open_count("u1").await, 2);
    }

    #[tokio::test]
    async fn local_table_limits_refreshes_and_releases() {
        limit_semantics(&Streams::new(120, None)).await;
    }

    #[tokio::test]
    async fn redis_limits_refreshes_and_releases() {
        let link = live_link();
        limit_semantics(&Streams::new(120, Some(link.clone()))).await;
        assert!(link.is_up(), "the redis path was used");
        assert!(score(&link, "u1", "s3").await.is_some());
        assert!(score(&link, "u1", "s1").await.is_none());
    }

    #[tokio::test]
    async fn the_limit_holds_across_edges() {
        let (edge_a, edge_b, _) = two_edges(120);
        assert_eq!(edge_a.admit("u1", "s1", 2, unix_ms()).await, Ok(()));
        assert_eq!(edge_b.admit("u1", "s2", 2, unix_ms()).await, Ok(()));
        assert!(edge_b.admit("u1", "s3", 2, unix_ms()).await.is_err());
        assert!(edge_a.admit("u1", "s3", 2, unix_ms()).await.is_err());
        assert_eq!(edge_a.open_count("u1").await, 2);
        assert_eq!(
            edge_b.admit("u1", "s1", 2, unix_ms()).await,
            Ok(()),
            "s1 is open, wherever"
        );
        assert!(
            edge_b.release("u1", "s1").await,
            "released from another edge"
        );
        assert_eq!(edge_a.admit("u1", "s3", 2, unix_ms()).await, Ok(()));
        assert_eq!(edge_b.open_count("u1").await, 2);
    }

    #[tokio::test]
    async fn streams_expire_without_heartbeats() {
        for edge in [Streams::new(1, None), Streams::new(1, Some(live_link()))] {
            assert_eq!(edge.admit("u1", "s1", 1, unix_ms()).await, Ok(()));
            let refused = edge.admit("u1", "s2", 1, unix_ms()).await.unwrap_err();
            assert_eq!(refused.retry_after_secs, 1);
            tokio::time::sleep(Duration::from_millis(1_100)).await;
            assert_eq!(edge.open_count("u1").await, 0);
            assert_eq!(
                edge.admit("u1", "s2", 1, unix_ms()).await,
                Ok(()),
                "s1 expired"
            );
        }
    }

    #[tokio::test]
    async fn heartbeats_keep_a_touched_stream_open_on_every_edge() {
        let (edge_a, edge_b, link) = two_edges(1);
        assert_eq!(edge_a.admit("u1", "s1", 1, unix_ms()).await, Ok(()));
        // Segments are served by edge B: its heartbeats keep the stream open.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            edge_b.touch("u1", "s1", unix_ms());
            edge_b.flush_heartbeats().await;
        }
        assert!(
            edge_a.admit("u1", "s2", 1, unix_ms()).await.is_err(),
            "s1 is still open"
        );
        // A touch never opens a stream that was not admitted.
        edge_b.touch("u1", "ghost", unix_ms());
        edge_b.flush_heartbeats().await;
        assert!(score(&link, "u1", "ghost").await.is_none());
        // Heartbeats stop: the stream lapses.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert_eq!(edge_a.admit("u1", "s2", 1, unix_ms()).await, Ok(()));
    }

    #[tokio::test]
    async fn a_released_stream_is_not_resurrected_by_a_heartbeat() {
        let (edge_a, edge_b, link) = two_edges(60);
        assert_eq!(edge_a.admit("u1", "s1", 1, unix_ms()).await, Ok(()));
        assert!(edge_b.release("u1", "s1").await);
        edge_a.touch("u1", "s1", unix_ms());
        edge_a.flush_heartbeats().await;
        assert!(score(&link, "u1", "s1").await.is_none());
        assert_eq!(edge_b.admit("u1", "s2", 1, unix_ms()).await, Ok(()));
    }

    #[tokio::test]
    async fn the_background_flusher_sends_heartbeats() {
        let link = live_link();
        let edge = Arc::new(Streams::new(1, Some(link.clone())));
        let flusher = edge.spawn_heartbeats();
        assert_eq!(edge.admit("u1", "s1", 1, unix_ms()).await, Ok(()));
        let admitted_until = score(&link, "u1", "s1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        edge.touch("u1", "s1", unix_ms());
        tokio::time::sleep(Duration::from_millis(600)).await;
        let refreshed_until = score(&link, "u1", "s1").await.unwrap();
        assert!(refreshed_until > admitted_until);
        drop(edge);
        tokio::time::timeout(Duration::from_secs(2), flusher)
            .await
            .expect("the flusher stops with its Streams")
            .unwrap();
    }

    #[tokio::test]
    async fn warm_streams_keep_playing_while_redis_is_down() {
        let outage = RedisOutage::start().await;
        let edge = Streams::new(120, Some(outage.link()));
        assert_eq!(edge.admit("u1", "warm", 1, unix_ms()).await, Ok(()));
        outage.stop();
        let started = std::time::Instant::now();
        assert!(
            edge.admit("u1", "other", 1, unix_ms()).await.is_err(),
            "the local table knows the stream admitted through redis"
        );
        for _ in 0..20 {
            assert_eq!(
                edge.admit("u1", "warm", 1, unix_ms()).await,
                Ok(()),
                "warm stays admitted"
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // New streams while Redis is down are admitted locally and registered afterwards.
        assert_eq!(edge.admit("u2", "offline", 1, unix_ms()).await, Ok(()));
        edge.touch("u1", "warm", unix_ms());
        edge.flush_heartbeats().await;
        let direct = outage.direct_link();
        assert!(score(&direct, "u2", "offline").await.is_none());
        outage.resume().await;
        // The gate lets a probe through at most every 500 ms; the flush marks the link up.
        let mut registered = false;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            edge.flush_heartbeats().await;
            if score(&direct, "u2", "offline").await.is_some() {
                registered = true;
                break;
            }
        }
        assert!(registered, "the offline admission reached redis");
        assert!(score(&direct, "u1", "warm").await.is_some());
        let other_edge = Streams::new(120, Some(outage.link()));
        assert!(other_edge
            .admit("u2", "another", 1, unix_ms())
            .await
            .is_err());
    }

    #[tokio::test]
    async fn touched_sessions_are_not_admitted_by_that_alone() {
        // No Redis, Redis, Redis configured but unreachable: the same answers.
        for edge in [
            Streams::new(120, None),
            Streams::new(120, Some(live_link())),
            Streams::new(120, Some(dead_link())),
        ] {
            for s in ["s1", "s2", "s3"] {
                assert_eq!(edge.admit("u1", s, 3, unix_ms()).await, Ok(()));
            }
            // Further sessions fetched playlists and segments before their key request.
            for s in ["p1", "p2", "p3"] {
                edge.touch("u1", s, unix_ms());
            }
            edge.flush_heartbeats().await;
            for s in ["p1", "p2", "p3"] {
                edge.touch("u1", s, unix_ms());
                assert!(
                    edge.admit("u1", s, 3, unix_ms()).await.is_err(),
                    "{s} is a fourth stream"
                );
            }
            assert_eq!(edge.open_count("u1").await, 3);
            assert!(edge.release("u1", "s1").await);
            assert_eq!(
                edge.admit("u1", "p1", 3, unix_ms()).await,
                Ok(()),
                "a freed slot"
            );
            assert!(edge.admit("u1", "p2", 3, unix_ms()).await.is_err());
            assert_eq!(edge.open_count("u1").await, 3);
        }
    }

    #[tokio::test]
    async fn touched_sessions_cannot_crowd_admitted_ones_out_of_the_table() {
        let edge = Streams::new(120, None);
        for i in 0..LOCAL_STREAMS_PER_USER * 2 {
            edge.touch("u1", &format!("t{i}"), unix_ms());
        }
        assert_eq!(edge.admit("u1", "a", 2, unix_ms()).await, Ok(()));
        assert_eq!(edge.admit("u1", "b", 2, unix_ms()).await, Ok(()));
        for i in 0..LOCAL_STREAMS_PER_USER * 2 {
            assert!(
                edge.admit("u1", &format!("t{i}"), 2, unix_ms())
                    .await
                    .is_err(),
                "t{i}"
            );
        }
        assert_eq!(edge.open_count("u1").await, 2);
        assert_eq!(
            edge.admit("u1", "a", 2, unix_ms()).await,
            Ok(()),
            "still open"
        );
    }

    #[tokio::test]
    async fn without_redis_an_unreachable_link_falls_back() {
        let edge = Streams::new(120, Some(dead_link()));
        assert_eq!(edge.admit("u1", "s1", 1, unix_ms()).await, Ok(()));
        assert!(edge.admit("u1", "s2", 1, unix_ms()).await.is_err());
        assert_eq!(edge.open_count("u1").await, 1);
        assert!(edge.release("u1", "s1").await);
        assert_eq!(edge.admit("u1", "s2", 1, unix_ms()).await, Ok(()));
    }
}
