//! Revocation: a deny-list of session ids, JWT ids (`jti`) and users, checked on every
//! token-admitted request (and on manifest and license JWTs) before anything is served. The
//! rule and its order are `playback::token::admission::check_revocation`; this module keeps
//! the list.
//!
//! The list lives in moka, each entry expiring with its revocation. With `[redis] url` set, a
//! revocation is also persisted as `SET {prefix}revoked:{kind}:{id} 1 EX {ttl}` and announced on
//! `PUBLISH {prefix}revocations` over the edge's Redis link; every edge subscribes to that
//! channel (applied in milliseconds) and loads the existing keys with `SCAN` at start and after
//! every reconnect, so a restarted or partitioned edge still denies. Without Redis the list is
//! local to this process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use moka::sync::Cache;
use moka::Expiry;
use playback::token::admission::{check_revocation, DenyLookup};
use playback::token::session::SessionSubject;
use playback::Reason;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::config::RevocationConfig;
use crate::core::clock::now_unix;
use crate::core::redis::RedisLink;

/// Pause between attempts to reach Redis again after losing it.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

pub use playback::token::admission::RevokedKind;

/// One entry of the deny-list, as published to other edges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    pub kind: RevokedKind,
    pub id: String,
    /// Unix time the revocation lapses (by then every token it targets has expired).
    pub expires_at: u64,
}

/// Redis could not take the revocation (it is applied on this edge regardless).
#[derive(Debug, thiserror::Error)]
#[error("redis unavailable: {0}")]
pub struct StoreUnavailable(pub String);

/// The deny-list: moka, optionally shared through Redis.
pub struct Revocations {
    local: Cache<(RevokedKind, String), u64>,
    redis: Option<Arc<RedisLink>>,
    pub default_ttl_secs: u64,
    pub max_ttl_secs: u64,
}

/// Expires each entry at its own `expires_at`.
struct UntilExpiry;

impl Expiry<(RevokedKind, String), u64> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &(RevokedKind, String),
        expires_at: &u64,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(expires_at.saturating_sub(now_unix())))
    }

    fn expire_after_update(
        &self,
        key: &(RevokedKind, String),
        expires_at: &u64,
        updated_at: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, expires_at, updated_at)
    }
}

impl DenyLookup for Revocations {
    fn is_revoked(&self, kind: RevokedKind, id: &str, now_unix: u64) -> bool {
        self.local
            .get(&(kind, id.to_string()))
            .is_some_and(|expires_at| expires_at > now_unix)
    }
}

impl Revocations {
    /// A deny-list bounded by `[revocation]`, shared through `redis` when there is one.
    pub fn new(config: &RevocationConfig, redis: Option<Arc<RedisLink>>) -> Revocations {
        Revocations {
            local: Cache::builder()
                .max_capacity(config.max_entries)
                .expire_after(UntilExpiry)
                .build(),
            redis,
            default_ttl_secs: config.default_ttl_secs,
            max_ttl_secs: config.max_ttl_secs,
        }
    }

    /// True when revocations are shared through Redis.
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Fails with `Revoked` when the session, the JWT or the user is on the list at `now_unix`
    /// (`playback`'s order: session, jti, user).
    pub fn check(&self, subject: &SessionSubject, now_unix: u64) -> Result<(), Revoked> {
        check_revocation(self, subject, now_unix).map_err(|kind| Revoked { kind })
    }

    /// Every entry on the list now (lapsed ones left out), ordered by kind and id.
    pub fn snapshot(&self) -> Vec<Revocation> {
        let now = now_unix();
        let mut list: Vec<Revocation> = self
            .local
            .iter()
            .filter(|(_, expires_at)| *expires_at > now)
            .map(|(key, expires_at)| Revocation {
                kind: key.0,
                id: key.1.clone(),
                expires_at,
            })
            .collect();
        list.sort_by(|a, b| (a.kind.label(), &a.id).cmp(&(b.kind.label(), &b.id)));
        list
    }

    /// Applies a revocation here at `now_unix`, then persists and announces it when Redis is
    /// configured.
    pub async fn revoke(
        &self,
        revocation: Revocation,
        now_unix: u64,
    ) -> Result<(), StoreUnavailable> {
        self.apply(&revocation, now_unix);
        let Some(link) = &self.redis else {
            return Ok(());
        };
        let ttl = revocation.expires_at.saturating_sub(now_unix).max(1);
        let key = revoked_key(link, revocation.kind, &revocation.id);
        let message = serde_json::to_string(&revocation).unwrap_or_default();
        let channel = link.key("revocations");
        link.run("revocation", |mut con| async move {
            let () = con.set_ex(&key, 1, ttl).await?;
            let _receivers: i64 = con.publish(&channel, message).await?;
            Ok(())
        })
        .await
        .map_err(|down| StoreUnavailable(down.0.to_string()))
    }

    fn apply(&self, revocation: &Revocation, now_unix: u64) {
        if revocation.expires_at > now_unix {
            self.local.insert(
                (revocation.kind, revocation.id.clone()),
                revocation.expires_at,
            );
        }
    }

    /// Loads every persisted revocation (`SCAN`, on a connection of its own: a long list
    /// outlasts the link's per-command timeout); returns how many were applied.
    pub async fn load(&self) -> Result<usize, redis::RedisError> {
        let Some(link) = &self.redis else {
            return Ok(0);
        };
        let mut con = link.client().get_multiplexed_async_connection().await?;
        let pattern = link.key("revoked:*");
        let keys: Vec<String> = {
            let mut iter = con.scan_match::<_, String>(&pattern).await?;
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key);
            }
            keys
        };
        let now = now_unix();
        let mut applied = 0;
        for key in keys {
            let Some((kind, id)) = parse_revoked_key(link.prefix(), &key) else {
                continue;
            };
            let ttl: i64 = con.ttl(&key).await?;
            if ttl > 0 {
                self.apply(
                    &Revocation {
                        kind,
                        id,
                        expires_at: now + ttl as u64,
                    },
                    now,
                );
                applied += 1;
            }
        }
        Ok(applied)
    }

    /// Follows the revocation channel for the life of the process: subscribe, reload with
    /// `SCAN` (covering anything missed while disconnected), apply every message; on loss,
    /// reconnect after a short pause. Returns at once without Redis.
    pub async fn follow(self: Arc<Self>) {
        let Some(link) = self.redis.clone() else {
            return;
        };
        let mut was_down = false;
        loop {
            match self.follow_once(&link).await {
                Ok(()) => tracing::warn!("redis revocation channel closed; reconnecting"),
                Err(e) if !was_down => {
                    tracing::warn!(error = %e, "redis revocation channel lost; reconnecting")
                }
                Err(_) => {}
            }
            was_down = true;
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    }

    async fn follow_once(&self, link: &RedisLink) -> Result<(), redis::RedisError> {
        let mut pubsub = link.client().get_async_pubsub().await?;
        pubsub.subscribe(link.key("revocations")).await?;
        let loaded = self.load().await?;
        tracing::info!(loaded, "following revocations in redis");
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let payload: String = message.get_payload()?;
            match serde_json::from_str::<Revocation>(&payload) {
                Ok(revocation) => self.apply(&revocation, now_unix()),
                Err(e) => tracing::warn!(error = %e, "ignoring a malformed revocation message"),
            }
        }
        Ok(())
    }

    /// Whether a persisted revocation exists for `kind`/`id` (the `explain` CLI asks Redis
    /// directly). `None` without Redis.
    pub async fn persisted(&self, kind: RevokedKind, id: &str) -> Option<Result<bool, String>> {
        let link = self.redis.as_ref()?;
        let key = revoked_key(link, kind, id);
        Some(
            link.run("revocation lookup", |mut con| async move {
                con.exists::<_, bool>(key).await
            })
            .await
            .map_err(|down| down.0.to_string()),
        )
    }
}

/// The subject named a revoked session, JWT or user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revoked {
    pub kind: RevokedKind,
}

impl From<Revoked> for Reason {
    fn from(_: Revoked) -> Reason {
        Reason::Revoked
    }
}

/// `{prefix}revoked:{kind}:{id}`.
fn revoked_key(link: &RedisLink, kind: RevokedKind, id: &str) -> String {
    link.key(&format!("revoked:{}:{id}", kind.label()))
}

/// The kind and id of a `{prefix}revoked:{kind}:{id}` key (ids may hold colons).
fn parse_revoked_key(prefix: &str, key: &str) -> Option<(RevokedKind, String)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix("revoked:")?;
    let (kind, id) = rest.split_once(':')?;
    Some((RevokedKind::from_label(kind)?, id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Revocations {
        Revocations::new(&RevocationConfig::default(), None)
    }

    fn subject(session: &str, user: &str, jti: Option<&str>) -> SessionSubject {
        SessionSubject {
            session_id: Some(session.into()),
            user_id: Some(user.into()),
            jti: jti.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn denies_by_session_jti_and_user_until_expiry() {
        let list = local();
        assert!(!list.is_shared());
        let s = subject("s1", "u1", Some("j1"));
        assert_eq!(list.check(&s, now_unix()), Ok(()));
        for (kind, id) in [
            (RevokedKind::Session, "s1"),
            (RevokedKind::Jti, "j1"),
            (RevokedKind::User, "u1"),
        ] {
            let list = local();
            list.revoke(
                Revocation {
                    kind,
                    id: id.into(),
                    expires_at: now_unix() + 60,
                },
                now_unix(),
            )
            .await
            .unwrap();
            assert_eq!(list.check(&s, now_unix()), Err(Revoked { kind }));
            assert_eq!(list.check(&subject("s2", "u2", None), now_unix()), Ok(()));
        }
        list.revoke(
            Revocation {
                kind: RevokedKind::Session,
                id: "s1".into(),
                expires_at: now_unix().saturating_sub(1),
            },
            now_unix(),
        )
        .await
        .unwrap();
        assert_eq!(
            list.check(&s, now_unix()),
            Ok(()),
            "lapsed revocations are ignored"
        );
        assert!(
            list.snapshot().is_empty(),
            "lapsed revocations are not listed"
        );
        list.revoke(
            Revocation {
                kind: RevokedKind::User,
                id: "u9".into(),
                expires_at: now_unix() + 60,
            },
            now_unix(),
        )
        .await
        .unwrap();
        let listed = list.snapshot();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].kind, listed[0].id.as_str()),
            (RevokedKind::User, "u9")
        );
    }

    #[test]
    fn keys_round_trip_with_colons_in_ids() {
        let config = crate::config::RedisConfig {
            url: "redis://127.0.0.1:1".into(),
            key_prefix: "t1:".into(),
            timeout_ms: 300,
        };
        let link = crate::core::redis::from_config(&config).unwrap().unwrap();
        let key = revoked_key(&link, RevokedKind::User, "a:b@example.com");
        assert_eq!(key, "t1:revoked:user:a:b@example.com");
        assert_eq!(
            parse_revoked_key(link.prefix(), &key),
            Some((RevokedKind::User, "a:b@example.com".into()))
        );
        assert_eq!(parse_revoked_key(link.prefix(), "t1:revoked:other:x"), None);
        assert_eq!(parse_revoked_key(link.prefix(), "t2:revoked:user:x"), None);
        assert_eq!(link.key("revocations"), "t1:revocations");
    }
}
