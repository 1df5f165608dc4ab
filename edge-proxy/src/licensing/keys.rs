//! Content keys for the AES-128 key endpoint and every license system.
//!
//! The control plane sends each key wrapped under the shared transport key and bound to
//! (Transport, videoId, keyId); the edge unwraps it with [`playback::keywrap::unwrap`] and holds
//! the 16 plaintext bytes in process memory only (L1), for `cache.content_key_ttl_secs`. With
//! `[redis]`, the *wrapped* form is shared by every edge (L2, `{prefix}l2:wkey:{video}:{key}`)
//! so a cold edge unwraps locally instead of asking the control plane; Redis never sees a
//! plaintext key. Revoking a key deletes the L2 entry and tells every edge to drop L1
//! (the application's invalidation follower). Key bytes are never logged, never put in errors, never in metrics
//! labels.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use playback::keywrap::{self, KeyBinding, Purpose, CONTENT_KEY_LEN};
use playback::Reason;

use crate::config::CacheConfig;
use crate::control_plane::{ControlPlane, WrappedKey};
use crate::core::errors::EdgeError;
use crate::core::metrics::Metrics;
use crate::core::redis::RedisLink;

/// A plaintext content key, whose `Debug` never shows the bytes.
#[derive(Clone, Copy)]
pub struct ContentKey(pub [u8; CONTENT_KEY_LEN]);

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(<redacted>)")
    }
}

/// Finds content keys: the plaintext cache first, then the control plane.
pub struct ContentKeys {
    control_plane: Arc<ControlPlane>,
    transport_key: [u8; 32],
    plaintext: Cache<(String, String), ContentKey>,
    shared: Option<Arc<RedisLink>>,
    shared_ttl_secs: u64,
    metrics: Arc<Metrics>,
}

impl ContentKeys {
    pub fn new(
        control_plane: Arc<ControlPlane>,
        transport_key: [u8; 32],
        cache: &CacheConfig,
        shared: Option<Arc<RedisLink>>,
        metrics: Arc<Metrics>,
    ) -> ContentKeys {
        let plaintext = Cache::builder()
            .max_capacity(cache.max_entries)
            .time_to_live(Duration::from_secs(cache.content_key_ttl_secs))
            .support_invalidation_closures()
            .build();
        ContentKeys {
            control_plane,
            transport_key,
            plaintext,
            shared,
            shared_ttl_secs: cache.content_key_ttl_secs,
            metrics,
        }
    }

    /// Drops one key from L1 (it was revoked or rotated).
    pub async fn forget(&self, video_id: &str, key_id: &str) {
        self.plaintext
            .invalidate(&(video_id.to_string(), key_id.to_string()))
            .await;
    }

    /// Drops every key of `video_id` from L1.
    pub fn forget_video(&self, video_id: &str) {
        let video = video_id.to_string();
        if let Err(e) = self
            .plaintext
            .invalidate_entries_if(move |k, _| k.0 == video)
        {
            tracing::error!(error = %e, "could not drop cached content keys");
        }
    }

    /// Drops every key from L1 (after missing invalidations while Redis was away).
    pub fn forget_all(&self) {
        self.plaintext.invalidate_all();
    }

    /// The wrapped key from L2, when Redis has it.
    async fn shared_wrapped(&self, video_id: &str, key_id: &str) -> Option<String> {
        let link = self.shared.as_ref()?;
        let key = link.key(&format!("l2:wkey:{video_id}:{key_id}"));
        let found: Option<String> = link
            .run("wrapped key l2", |mut c| async move {
                redis::cmd("GET").arg(key).query_async(&mut c).await
            })
            .await
            .ok()
            .flatten();
        self.metrics.cache_lookup("wrapped_key_l2", found.is_some());
        found
    }

    /// Shares a wrapped key through L2 in the background.
    fn share_wrapped(&self, video_id: &str, key_id: &str, wrapped: &str) {
        let Some(link) = self.shared.clone() else {
            return;
        };
        let key = link.key(&format!("l2:wkey:{video_id}:{key_id}"));
        let (value, ttl) = (wrapped.to_string(), self.shared_ttl_secs.max(1));
        tokio::spawn(async move {
            let _ = link
                .run("wrapped key l2", |mut c| async move {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(value)
                        .arg("EX")
                        .arg(ttl)
                        .query_async::<()>(&mut c)
                        .await
                })
                .await;
        });
    }

    /// The content key `key_id` of `video_id`.
    pub async fn get(&self, video_id: &str, key_id: &str) -> Result<ContentKey, EdgeError> {
        let cache_key = (video_id.to_string(), key_id.to_string());
        if let Some(key) = self.plaintext.get(&cache_key).await {
            self.metrics.cache_lookup("content_key", true);
            return Ok(key);
        }
        self.metrics.cache_lookup("content_key", false);
        let wrapped = match self.shared_wrapped(video_id, key_id).await {
            Some(wrapped) => wrapped,
            None => match self.control_plane.wrapped_key(video_id, key_id).await {
                Ok(WrappedKey::Found(wrapped)) => {
                    self.share_wrapped(video_id, key_id, &wrapped);
                    wrapped
                }
                Ok(WrappedKey::NotFound) => return Err(EdgeError::Denied(Reason::NotFound)),
                Ok(WrappedKey::Revoked) => return Err(EdgeError::Denied(Reason::KeyRevoked)),
                Err(_) => return Err(EdgeError::ControlPlaneUnavailable),
            },
        };
        let binding = KeyBinding {
            purpose: Purpose::Transport,
            video_id,
            key_id,
        };
        let key = keywrap::unwrap(&self.transport_key, &wrapped, &binding).map_err(|e| {
            tracing::error!(video_id, key_id, error = %e, "wrapped content key did not unwrap; check control_plane.key_transport_key_file matches the control plane");
            EdgeError::KeyUnavailable
        })?;
        let key = ContentKey(key);
        self.plaintext.insert(cache_key, key).await;
        Ok(key)
    }
}
