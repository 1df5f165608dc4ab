//! The edge's HTTP caches for origin objects.
//!
//! - [`SegmentCache`]: segments of HTTP and S3 origins go through pingora-cache, stored in
//!   [`storage::BoundedMemoryStorage`] (a byte budget with LRU eviction, a per-object limit,
//!   stale entries kept for stale-if-error and 304 revalidation, readers that stream an object
//!   while it is written). Pingora decides freshness, revalidation, ranges, `Age` and request
//!   coalescing (its cache lock); this module decides what is cacheable and for how long.
//! - [`playlists::OriginPlaylists`]: the origin copy of each playlist, which the edge rewrites
//!   per viewer after the cache (the rewritten copy is `no-store`).
//!
//! Cache keys name the origin object only (`{videoId}/{asset path}?{origin query}`), never
//! the viewer's credentials: no token (query, path segment or cookie), no client address, so
//! every viewer of a segment shares one entry and no token is ever stored. The query the
//! origin gets (the request's query without the edge's token, e.g. `?part=1` from the
//! origin's own playlist) is part of the object, so it is part of the key.

pub mod playlists;
pub mod storage;

use std::time::{Duration, SystemTime};

use pingora::cache::cache_control::{CacheControl, Cacheable, InterpretCacheControl};
use pingora::cache::filters::{calculate_fresh_until, calculate_serve_stale_durations};
use pingora::cache::lock::{CacheKeyLockImpl, CacheLock};
use pingora::cache::{CacheKey, CacheMeta, CacheMetaDefaults, NoCacheReason, RespCacheable};
use pingora::http::ResponseHeader;

use crate::config::{CacheConfig, ConfigError};
use playback::hls::AssetPath;

pub use storage::{BoundedMemoryStorage, StorageLimits, StorageLimitsError};

/// pingora-cache for proxied segments: the storage, the cache lock and the freshness defaults.
pub struct SegmentCache {
    storage: &'static BoundedMemoryStorage,
    lock: &'static CacheKeyLockImpl,
    max_object_bytes: usize,
    default_fresh: Duration,
    stale_if_error_secs: u32,
}

/// Origins that say nothing get no default here; [`SegmentCache::cacheability`] applies its own.
const NO_DEFAULT_FRESHNESS: CacheMetaDefaults = CacheMetaDefaults::new(|_| None, 0, 0);

impl SegmentCache {
    /// The cache `[cache]` describes; `None` when `cache.segment_cache_bytes` is 0. Built once
    /// per process: pingora wants `'static` storage and lock, so both are leaked.
    pub fn from_config(cache: &CacheConfig) -> Result<Option<SegmentCache>, ConfigError> {
        if cache.segment_cache_bytes == 0 {
            return Ok(None);
        }
        let limits = cache.segment_storage_limits();
        let storage =
            BoundedMemoryStorage::new(limits).map_err(|problem| ConfigError::Invalid {
                key: "cache.max_object_bytes",
                problem: problem.to_string(),
                fix: "keep cache.max_object_bytes between 1 and cache.segment_cache_bytes".into(),
            })?;
        let lock: &'static CacheLock = Box::leak(CacheLock::new_boxed(Duration::from_millis(
            cache.lock_timeout_ms,
        )));
        Ok(Some(SegmentCache {
            storage: storage.into_static(),
            lock,
            max_object_bytes: limits.max_object_bytes,
            default_fresh: Duration::from_secs(cache.segment_max_age_secs),
            stale_if_error_secs: u32::try_from(cache.stale_if_error_secs).unwrap_or(u32::MAX),
        }))
    }

    /// The storage pingora-cache stores in (`'static`, as pingora wants).
    pub fn storage(&self) -> &'static BoundedMemoryStorage {
        self.storage
    }

    /// The cache lock that coalesces concurrent misses.
    pub fn lock(&self) -> &'static CacheKeyLockImpl {
        self.lock
    }

    /// The largest object stored; pingora refuses larger ones by `Content-Length`.
    pub fn max_object_bytes(&self) -> usize {
        self.max_object_bytes
    }

    /// The key of an origin object: the title, its proven asset path and the query the origin
    /// is sent (already without the edge's token).
    pub fn key(video_id: &str, path: &AssetPath, origin_query: Option<&str>) -> CacheKey {
        // Video ids never contain '/' and encoded paths never '?', so this is unambiguous.
        let mut key = format!("{video_id}/{}", path.encoded());
        if let Some(query) = origin_query.filter(|q| !q.is_empty()) {
            key.push('?');
            key.push_str(query);
        }
        CacheKey::new(key, "")
    }

    /// Whether the origin's answer may be stored, and until when it is fresh: the origin's
    /// `Cache-Control` (`s-maxage`, `max-age`, `no-store`, `private`, `stale-if-error`) or
    /// `Expires` when present, else `cache.segment_max_age_secs`. Only complete `200`s are
    /// stored; `Set-Cookie` and `private="..."` headers never are.
    pub fn cacheability(&self, response: &ResponseHeader) -> RespCacheable {
        if response.status.as_u16() != 200 {
            return RespCacheable::Uncacheable(NoCacheReason::OriginNotCache);
        }
        let control = CacheControl::from_resp_headers(response);
        if control
            .as_ref()
            .is_some_and(|cc| cc.is_cacheable() == Cacheable::No)
        {
            return RespCacheable::Uncacheable(NoCacheReason::OriginNotCache);
        }
        let now = SystemTime::now();
        let fresh_until = calculate_fresh_until(
            now,
            control.as_ref(),
            response,
            false,
            &NO_DEFAULT_FRESHNESS,
        )
        .unwrap_or(now + self.default_fresh);
        let defaults = CacheMetaDefaults::new(|_| None, 0, self.stale_if_error_secs);
        let (_, stale_if_error) = calculate_serve_stale_durations(control.as_ref(), &defaults);
        let mut stored = response.clone();
        if let Some(cc) = &control {
            cc.strip_private_headers(&mut stored);
        }
        stored.remove_header(&http::header::SET_COOKIE);
        // Stale-while-revalidate stays off: a stale segment answers only when the origin fails.
        RespCacheable::Cacheable(CacheMeta::new(fresh_until, now, 0, stale_if_error, stored))
    }

    /// Bytes held by stored objects (for `/metrics`).
    pub fn stored_bytes(&self) -> u64 {
        self.storage.stored_bytes()
    }

    /// Objects held (for `/metrics`).
    pub fn stored_objects(&self) -> u64 {
        self.storage.stored_objects()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> SegmentCache {
        let config = CacheConfig {
            segment_cache_bytes: 1024 * 1024,
            max_object_bytes: 1024,
            ..CacheConfig::default()
        };
        SegmentCache::from_config(&config).unwrap().unwrap()
    }

    fn response(status: u16, headers: &[(&str, &str)]) -> ResponseHeader {
        let mut r = ResponseHeader::build(status, None).unwrap();
        for (name, value) in headers {
            r.append_header(name.to_string(), *value).unwrap();
        }
        r
    }

    fn lifetime(meta: &CacheMeta) -> Duration {
        meta.fresh_until().duration_since(meta.created()).unwrap()
    }

    #[test]
    fn keys_name_the_object_only() {
        let path = AssetPath::parse("720p/seg%20001.ts").unwrap();
        let a = SegmentCache::key("v1", &path, None);
        assert_eq!(a.primary_key(), b"v1/720p/seg%20001.ts");
        assert_eq!(
            SegmentCache::key("v1", &path, Some("")).primary_key(),
            a.primary_key()
        );
        let other = SegmentCache::key("v2", &path, None);
        assert_ne!(a.primary_key(), other.primary_key());
        let part = SegmentCache::key("v1", &path, Some("part=1"));
        assert_eq!(part.primary_key(), b"v1/720p/seg%20001.ts?part=1");
    }

    #[test]
    fn defaults_apply_when_the_origin_says_nothing() {
        let RespCacheable::Cacheable(meta) = cache().cacheability(&response(200, &[])) else {
            panic!("a plain 200 is cacheable");
        };
        assert!(lifetime(&meta) >= Duration::from_secs(24 * 3600 - 1));
        assert_eq!(meta.stale_if_error_sec(), 3600);
    }

    #[test]
    fn the_origin_decides_when_it_says_something() {
        let c = cache();
        let RespCacheable::Cacheable(meta) = c.cacheability(&response(
            200,
            &[
                ("cache-control", "public, max-age=10, stale-if-error=20"),
                ("set-cookie", "a=b"),
            ],
        )) else {
            panic!("max-age=10 is cacheable");
        };
        assert!(lifetime(&meta) <= Duration::from_secs(10));
        assert_eq!(meta.stale_if_error_sec(), 20);
        assert!(meta.headers().get("set-cookie").is_none());
        for refused in ["no-store", "private"] {
            assert!(matches!(
                c.cacheability(&response(200, &[("cache-control", refused)])),
                RespCacheable::Uncacheable(_)
            ));
        }
        for status in [206, 404, 500] {
            assert!(matches!(
                c.cacheability(&response(status, &[])),
                RespCacheable::Uncacheable(_)
            ));
        }
    }
}
