//! Content keys for the AES-128 key endpoint.
//!
//! The control plane sends each key wrapped under the shared transport key and bound to
//! (Transport, videoId, keyId); the edge unwraps it with [`playback::keywrap::unwrap`] and holds
//! the 16 plaintext bytes in process memory only, for `cache.content_key_ttl_secs`. Key bytes
//! are never logged, never put in errors, never in metrics labels.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use playback::keywrap::{self, KeyBinding, Purpose, CONTENT_KEY_LEN};
use playback::Reason;

use crate::config::CacheConfig;
use crate::control_plane::{ControlPlane, WrappedKey};
use crate::errors::EdgeError;
use crate::metrics::Metrics;

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
    metrics: Arc<Metrics>,
}

impl ContentKeys {
    pub fn new(
        control_plane: Arc<ControlPlane>,
        transport_key: [u8; 32],
        cache: &CacheConfig,
        metrics: Arc<Metrics>,
    ) -> ContentKeys {
        let plaintext = Cache::builder()
            .max_capacity(cache.max_entries)
            .time_to_live(Duration::from_secs(cache.content_key_ttl_secs))
            .build();
        ContentKeys {
            control_plane,
            transport_key,
            plaintext,
            metrics,
        }
    }

    /// The content key `key_id` of `video_id`.
    pub async fn get(&self, video_id: &str, key_id: &str) -> Result<ContentKey, EdgeError> {
        let cache_key = (video_id.to_string(), key_id.to_string());
        if let Some(key) = self.plaintext.get(&cache_key).await {
            self.metrics.cache_lookup("content_key", true);
            return Ok(key);
        }
        self.metrics.cache_lookup("content_key", false);
        let wrapped = match self.control_plane.wrapped_key(video_id, key_id).await {
            Ok(WrappedKey::Found(wrapped)) => wrapped,
            Ok(WrappedKey::NotFound) => return Err(EdgeError::Denied(Reason::NotFound)),
            Ok(WrappedKey::Revoked) => return Err(EdgeError::Denied(Reason::KeyRevoked)),
            Err(_) => return Err(EdgeError::ControlPlaneUnavailable),
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
