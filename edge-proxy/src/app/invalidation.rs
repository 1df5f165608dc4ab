//! Invalidations from the control plane: a revoked key or a changed entitlement leaves every
//! edge's in-process caches within a second. Part of the application's wiring because it
//! reaches into two layers' caches (entitlements in access, keys and ClearKey answers in
//! licensing).
//!
//! The control plane deletes the shared L2 entries, then publishes on
//! `{redis.key_prefix}invalidations`:
//! `{"kind":"key","videoId","keyId"}` or `{"kind":"entitlement","userId","videoId":null|id}`.
//! Every edge subscribes and drops the matching L1 entries: plaintext keys and built ClearKey
//! answers of the title, or the user's entitlement answers and ClearKey answers. After (re)
//! connecting, messages may have been missed, so the follower drops every L1 entry those
//! messages could concern: warm entries are refetched from L2 or the control plane at the cost
//! of one miss each.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;

use crate::access::entitlements::Entitlements;
use crate::core::redis::RedisLink;
use crate::licensing::keys::ContentKeys;
use crate::licensing::responses::ResponseCache;

/// Pause between attempts to reach Redis again.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// One message on the invalidation channel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Invalidation {
    #[serde(rename_all = "camelCase")]
    Key { video_id: String, key_id: String },
    #[serde(rename_all = "camelCase")]
    Entitlement {
        user_id: String,
        #[serde(default)]
        video_id: Option<String>,
    },
}

/// The caches an invalidation reaches.
pub struct Invalidations {
    pub entitlements: Arc<Entitlements>,
    pub keys: Arc<ContentKeys>,
    pub responses: Arc<ResponseCache>,
}

impl Invalidations {
    /// Drops what `message` names from L1.
    pub async fn apply(&self, message: &Invalidation) {
        match message {
            Invalidation::Key { video_id, key_id } => {
                self.keys.forget(video_id, key_id).await;
                self.responses.forget_video(video_id);
                tracing::info!(videoId = %video_id, keyId = %key_id, "content key invalidated");
            }
            Invalidation::Entitlement { user_id, video_id } => {
                self.entitlements
                    .forget_entitlements(user_id, video_id.as_deref());
                self.responses.forget_user(user_id, video_id.as_deref());
                tracing::info!(userId = %user_id, videoId = video_id.as_deref(), "entitlement invalidated");
            }
        }
    }

    /// Drops every L1 entry an invalidation could concern.
    fn forget_everything(&self) {
        self.entitlements.forget_all_entitlements();
        self.keys.forget_all();
        self.responses.forget_all();
    }

    /// Follows the channel for the life of the process, reconnecting after a pause; the link's
    /// up/down state (`/ready`, `edge_redis_up`) follows the subscription.
    pub async fn follow(self: Arc<Self>, link: Arc<RedisLink>) {
        let channel = link.key("invalidations");
        let mut was_down = false;
        loop {
            match self.follow_once(&link, &channel).await {
                Ok(()) => tracing::warn!("redis invalidation channel closed; reconnecting"),
                Err(e) if !was_down => {
                    tracing::warn!(error = %e, "redis invalidation channel lost; reconnecting")
                }
                Err(_) => {}
            }
            link.mark(false);
            was_down = true;
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    }

    async fn follow_once(&self, link: &RedisLink, channel: &str) -> redis::RedisResult<()> {
        let mut pubsub = link.client().get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        self.forget_everything();
        link.mark(true);
        tracing::info!("following invalidations in redis");
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let payload: String = message.get_payload()?;
            match serde_json::from_str::<Invalidation>(&payload) {
                Ok(invalidation) => self.apply(&invalidation).await,
                Err(e) => tracing::warn!(error = %e, "ignoring a malformed invalidation"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse() {
        let key: Invalidation =
            serde_json::from_str(r#"{"kind":"key","videoId":"v","keyId":"k"}"#).unwrap();
        assert_eq!(
            key,
            Invalidation::Key {
                video_id: "v".into(),
                key_id: "k".into()
            }
        );
        let user: Invalidation =
            serde_json::from_str(r#"{"kind":"entitlement","userId":"u","videoId":null}"#).unwrap();
        assert_eq!(
            user,
            Invalidation::Entitlement {
                user_id: "u".into(),
                video_id: None
            }
        );
        assert!(serde_json::from_str::<Invalidation>(r#"{"kind":"other"}"#).is_err());
    }
}
