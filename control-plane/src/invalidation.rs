//! Telling every edge at once that something it caches is stale.
//!
//! Edges keep entitlement decisions and wrapped content keys in moka (L1) and in a shared Redis
//! (L2). When `[redis] url` is set, a change here (a revoked key, a new subscription) deletes the
//! L2 entries it affects and then PUBLISHes one JSON message on `{key_prefix}invalidations`;
//! every edge drops its L1 entries on receipt, so the change holds everywhere within a second.
//!
//! | change | L2 entry deleted | message |
//! |---|---|---|
//! | key revoked | `{prefix}l2:wkey:{videoId}:{keyId}` (string) | `{"kind":"key","videoId","keyId"}` |
//! | entitlement of a user | `{prefix}l2:ent:{userId}` (hash; one field `videoId` when given) | `{"kind":"entitlement","userId","videoId":null\|".."}` |
//!
//! The database change always comes first and never depends on Redis: a failed or timed-out
//! notification is logged and reported to the caller (`edgesNotified: false`); edges then see
//! the change when their cached entries expire.

use std::time::Duration;

use redis_link::RedisLink;
use serde_json::json;
use uuid::Uuid;

use crate::config::RedisConfig;

/// Name of the pub/sub channel, after the key prefix.
pub const CHANNEL: &str = "invalidations";

/// A change edges must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// A content key was revoked.
    Key { video_id: Uuid, key_id: Uuid },
    /// What `user_id` may watch changed: one title, or every title when `video_id` is `None`.
    Entitlement {
        user_id: String,
        video_id: Option<Uuid>,
    },
}

impl Invalidation {
    /// The JSON message published to edges.
    pub fn message(&self) -> String {
        match self {
            Invalidation::Key { video_id, key_id } => json!({
                "kind": "key",
                "videoId": video_id.to_string(),
                "keyId": key_id.to_string(),
            }),
            Invalidation::Entitlement { user_id, video_id } => json!({
                "kind": "entitlement",
                "userId": user_id,
                "videoId": video_id.map(|v| v.to_string()),
            }),
        }
        .to_string()
    }

    /// `kind` of the message, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Invalidation::Key { .. } => "key",
            Invalidation::Entitlement { .. } => "entitlement",
        }
    }

    /// The L2 entry this change makes stale: a key, and a hash field when only part of it is.
    pub fn l2_entry(&self, prefix: &str) -> (String, Option<String>) {
        match self {
            Invalidation::Key { video_id, key_id } => {
                (format!("{prefix}l2:wkey:{video_id}:{key_id}"), None)
            }
            Invalidation::Entitlement { user_id, video_id } => (
                format!("{prefix}l2:ent:{user_id}"),
                video_id.map(|v| v.to_string()),
            ),
        }
    }
}

/// Publishes invalidations to edges through Redis, or does nothing when `[redis]` is off.
pub struct Invalidator {
    link: Option<RedisLink>,
}

impl std::fmt::Debug for Invalidator {
    // The URL may carry a password: only say whether the link exists.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invalidator")
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

impl Invalidator {
    /// An invalidator that notifies nobody (`[redis] url` empty).
    pub fn disabled() -> Invalidator {
        Invalidator { link: None }
    }

    /// The invalidator `[redis]` describes. Nothing connects until the first notification, so
    /// the control plane starts while Redis is down.
    pub fn from_config(config: &RedisConfig) -> Result<Invalidator, redis::RedisError> {
        let link = RedisLink::open(
            &config.url,
            &config.key_prefix,
            Duration::from_millis(config.timeout_ms),
        )?;
        Ok(Invalidator { link })
    }

    /// True when `[redis] url` is set.
    pub fn is_enabled(&self) -> bool {
        self.link.is_some()
    }

    /// `{key_prefix}invalidations`, when enabled.
    pub fn channel(&self) -> Option<String> {
        self.link.as_ref().map(|l| l.key(CHANNEL))
    }

    /// Deletes the L2 entry `change` makes stale, then publishes it. True when both were done
    /// within `redis.timeout_ms`; false when Redis is off, failed or timed out (logged).
    pub async fn notify(&self, change: &Invalidation) -> bool {
        let Some(link) = &self.link else {
            return false;
        };
        let (key, field) = change.l2_entry(link.prefix());
        let channel = link.key(CHANNEL);
        let message = change.message();
        // DEL/HDEL then PUBLISH, pipelined on one connection (Redis runs them in order); the
        // answer is the number of subscribers that received the message.
        let sent = link
            .run("invalidation", |mut connection| async move {
                let mut pipe = redis::pipe();
                match field {
                    Some(field) => pipe.hdel(key, field).ignore(),
                    None => pipe.del(key).ignore(),
                };
                pipe.publish(channel, message);
                let (receivers,): (i64,) = pipe.query_async(&mut connection).await?;
                Ok(receivers)
            })
            .await;
        match sent {
            Ok(receivers) => {
                tracing::info!(
                    kind = change.kind(),
                    receivers,
                    "invalidation published to edges"
                );
                true
            }
            Err(down) => {
                tracing::warn!(
                    kind = change.kind(),
                    error = %down,
                    timeout_ms = link.timeout().as_millis() as u64,
                    "could not publish an invalidation; edges will see the change when their caches expire"
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_the_contract() {
        let video_id = Uuid::parse_str("6f1c7a8e-3b9f-4d3a-9c59-1f7f1d2f0a11").unwrap();
        let key_id = Uuid::parse_str("0d3c1f4e-2a6b-4c8d-9e0f-112233445566").unwrap();
        let key = Invalidation::Key { video_id, key_id };
        let parsed: serde_json::Value = serde_json::from_str(&key.message()).unwrap();
        assert_eq!(
            parsed,
            json!({"kind": "key", "videoId": video_id.to_string(), "keyId": key_id.to_string()})
        );
        assert_eq!(
            key.l2_entry("edge:"),
            (format!("edge:l2:wkey:{video_id}:{key_id}"), None)
        );

        let all = Invalidation::Entitlement {
            user_id: "alice".into(),
            video_id: None,
        };
        let parsed: serde_json::Value = serde_json::from_str(&all.message()).unwrap();
        assert_eq!(
            parsed,
            json!({"kind": "entitlement", "userId": "alice", "videoId": null})
        );
        assert_eq!(all.l2_entry("p:"), ("p:l2:ent:alice".into(), None));

        let one = Invalidation::Entitlement {
            user_id: "alice".into(),
            video_id: Some(video_id),
        };
        assert_eq!(
            one.l2_entry("p:"),
            ("p:l2:ent:alice".into(), Some(video_id.to_string()))
        );
    }

    #[tokio::test]
    async fn disabled_or_unreachable_redis_reports_false_quickly() {
        let off = Invalidator::from_config(&RedisConfig::default()).unwrap();
        assert!(!off.is_enabled());
        assert_eq!(off.channel(), None);
        let change = Invalidation::Entitlement {
            user_id: "u".into(),
            video_id: None,
        };
        assert!(!off.notify(&change).await);

        // Port 1 refuses connections on loopback.
        let down = Invalidator::from_config(&RedisConfig {
            url: "redis://127.0.0.1:1".into(),
            key_prefix: "t:".into(),
            timeout_ms: 300,
        })
        .unwrap();
        assert_eq!(down.channel().as_deref(), Some("t:invalidations"));
        let started = std::time::Instant::now();
        assert!(!down.notify(&change).await);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(format!("{down:?}"), "Invalidator { enabled: true }");
    }
}
