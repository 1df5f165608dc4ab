//! `[cache]`: the in-process caches in front of the control plane, and the segment cache in
//! front of HTTP and S3 origins, with the storage limits it is built with.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{check_positive, invalid, ConfigError};

/// `[cache]`: in-process caches in front of the control plane, and the segment cache in front
/// of HTTP and S3 origins.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    pub entitlement_ttl_secs: u64,
    pub negative_ttl_secs: u64,
    pub content_key_ttl_secs: u64,
    pub max_entries: u64,
    /// Memory budget of the segment cache (headers + bodies); 0 turns the cache off.
    pub segment_cache_bytes: u64,
    /// Largest object the segment cache stores; larger ones stream through uncached.
    pub max_object_bytes: u64,
    /// Freshness of a segment whose origin sends no `Cache-Control`/`Expires`.
    pub segment_max_age_secs: u64,
    /// How long past freshness a stored object may answer when the origin fails.
    pub stale_if_error_secs: u64,
    /// How long concurrent misses for one object wait for the request fetching it.
    pub lock_timeout_ms: u64,
    /// Freshness of a live origin playlist (no `#EXT-X-ENDLIST`) whose origin says nothing.
    pub playlist_live_ttl_secs: u64,
    /// Freshness of a VOD origin playlist (`#EXT-X-ENDLIST`) whose origin says nothing.
    pub playlist_vod_ttl_secs: u64,
    /// Most origin playlists held at once.
    pub playlist_max_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            entitlement_ttl_secs: 300,
            negative_ttl_secs: 5,
            content_key_ttl_secs: 300,
            max_entries: 100_000,
            segment_cache_bytes: 512 * 1024 * 1024,
            max_object_bytes: 32 * 1024 * 1024,
            segment_max_age_secs: 24 * 3600,
            stale_if_error_secs: 3600,
            lock_timeout_ms: 5_000,
            playlist_live_ttl_secs: 1,
            playlist_vod_ttl_secs: 60,
            playlist_max_entries: 10_000,
        }
    }
}

/// Bytes charged per stored object on top of its meta and body: the object's allocations, the
/// key and moka's bookkeeping, so a flood of tiny objects cannot hide from the budget.
pub const OBJECT_OVERHEAD_BYTES: usize = 256;

/// The limits the segment cache's storage (`delivery::cache::storage`) enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageLimits {
    /// Budget for all committed objects (meta + body + [`OBJECT_OVERHEAD_BYTES`] each).
    pub capacity_bytes: u64,
    /// Largest object (meta + body) that is stored; larger ones are never cached.
    pub max_object_bytes: usize,
    /// Longest an object stays stored after its last commit or meta update, fresh or not.
    /// Make it longer than the longest fresh + stale-if-error window worth serving.
    pub max_age: Duration,
    /// Whether objects are readable while they are written (see the module docs).
    pub streaming_partial_write: bool,
}

impl Default for StorageLimits {
    /// 512 MiB, objects up to 32 MiB, a day, streaming partial writes on.
    fn default() -> Self {
        StorageLimits {
            capacity_bytes: 512 * 1024 * 1024,
            max_object_bytes: 32 * 1024 * 1024,
            max_age: Duration::from_secs(24 * 3600),
            streaming_partial_write: true,
        }
    }
}

/// Why a set of [`StorageLimits`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageLimitsError {
    #[error("capacity_bytes must be above zero")]
    ZeroCapacity,
    #[error("max_object_bytes must be above zero")]
    ZeroMaxObject,
    #[error(
        "max_object_bytes ({max_object_bytes}) must not exceed capacity_bytes ({capacity_bytes})"
    )]
    ObjectLargerThanCapacity {
        max_object_bytes: usize,
        capacity_bytes: u64,
    },
    #[error("max_object_bytes ({0}) must be under 4 GiB")]
    ObjectTooLargeToWeigh(usize),
    #[error("max_age must be above zero")]
    ZeroMaxAge,
}

impl StorageLimits {
    /// Checks the limits are usable together.
    pub fn validate(&self) -> Result<(), StorageLimitsError> {
        if self.capacity_bytes == 0 {
            return Err(StorageLimitsError::ZeroCapacity);
        }
        if self.max_object_bytes == 0 {
            return Err(StorageLimitsError::ZeroMaxObject);
        }
        if self.max_object_bytes as u64 > self.capacity_bytes {
            return Err(StorageLimitsError::ObjectLargerThanCapacity {
                max_object_bytes: self.max_object_bytes,
                capacity_bytes: self.capacity_bytes,
            });
        }
        if self.max_object_bytes > u32::MAX as usize - OBJECT_OVERHEAD_BYTES {
            return Err(StorageLimitsError::ObjectTooLargeToWeigh(
                self.max_object_bytes,
            ));
        }
        if self.max_age.is_zero() {
            return Err(StorageLimitsError::ZeroMaxAge);
        }
        Ok(())
    }
}

impl CacheConfig {
    /// Positive lifetimes and bounds; with a segment cache, usable storage limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_positive("cache.entitlement_ttl_secs", self.entitlement_ttl_secs)?;
        check_positive("cache.negative_ttl_secs", self.negative_ttl_secs)?;
        check_positive("cache.content_key_ttl_secs", self.content_key_ttl_secs)?;
        check_positive("cache.max_entries", self.max_entries)?;
        if self.segment_cache_bytes > 0 {
            if let Err(problem) = self.segment_storage_limits().validate() {
                return Err(invalid(
                    "cache.max_object_bytes",
                    problem.to_string(),
                    "keep cache.max_object_bytes between 1 and cache.segment_cache_bytes (under 4 GiB)",
                ));
            }
        }
        check_positive("cache.segment_max_age_secs", self.segment_max_age_secs)?;
        check_positive("cache.lock_timeout_ms", self.lock_timeout_ms)?;
        check_positive("cache.playlist_live_ttl_secs", self.playlist_live_ttl_secs)?;
        check_positive("cache.playlist_vod_ttl_secs", self.playlist_vod_ttl_secs)?;
        check_positive("cache.playlist_max_entries", self.playlist_max_entries)?;
        Ok(())
    }

    /// The segment cache's storage limits: objects stay stored through their stale-if-error
    /// window after the longest default freshness.
    pub fn segment_storage_limits(&self) -> StorageLimits {
        StorageLimits {
            capacity_bytes: self.segment_cache_bytes,
            max_object_bytes: usize::try_from(self.max_object_bytes).unwrap_or(usize::MAX),
            max_age: Duration::from_secs(
                self.segment_max_age_secs
                    .saturating_add(self.stale_if_error_secs),
            ),
            streaming_partial_write: true,
        }
    }
}
