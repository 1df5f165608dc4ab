//! The origin copy of each playlist, cached so that N viewers of a title make one origin read
//! per freshness period; every viewer's copy is rewritten from it afterwards (and `no-store`).
//!
//! MPDs are cached the same way. Freshness is the origin's (`OriginPlaylist::max_age_secs`)
//! when it says so, else `cache.playlist_vod_ttl_secs` for a finished playlist
//! (`#EXT-X-ENDLIST`) or a static MPD, and `cache.playlist_live_ttl_secs` for a live one. That
//! a title has no MPD is remembered for `cache.playlist_vod_ttl_secs` too, so a manifest
//! request for an HLS-only title asks the origin once per period, not every time. Concurrent refreshes of one playlist are
//! serialized per key, so the first fetches and the rest find it fresh. When a refresh fails,
//! the last good copy keeps answering for `cache.stale_if_error_secs`.
//!
//! A directory origin is read on every request (it is local, and a live playlist there may
//! change at any moment); its freshness is still computed, for `Cache-Control` on CDN pulls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::ops::compute::Op;

use crate::config::CacheConfig;
use crate::delivery::origin::{Origin, OriginError};
use playback::dash::mpd_facts;
use playback::hls::AssetPath;

/// A playlist as the origin serves it, with how long it stays fresh.
#[derive(Debug, Clone)]
pub struct CachedPlaylist {
    pub body: Arc<str>,
    /// Its freshness lifetime (what a CDN pulling it may cache it for).
    pub ttl: Duration,
    /// How long ago it was fetched from the origin.
    pub age: Duration,
    /// Served past its freshness because the origin failed.
    pub stale: bool,
}

#[derive(Debug, Clone)]
struct Stored {
    body: Arc<str>,
    fetched: Instant,
    ttl: Duration,
}

impl Stored {
    fn answer(&self, stale: bool) -> CachedPlaylist {
        CachedPlaylist {
            body: self.body.clone(),
            ttl: self.ttl,
            age: self.fetched.elapsed(),
            stale,
        }
    }
}

/// The origin playlists this edge holds.
pub struct OriginPlaylists {
    entries: Cache<(String, String), Stored>,
    /// Manifests the origin answered 404 for.
    absent: Cache<(String, String), ()>,
    live_ttl: Duration,
    vod_ttl: Duration,
    stale_if_error: Duration,
}

impl OriginPlaylists {
    pub fn new(config: &CacheConfig) -> OriginPlaylists {
        let live_ttl = Duration::from_secs(config.playlist_live_ttl_secs);
        let vod_ttl = Duration::from_secs(config.playlist_vod_ttl_secs);
        let stale_if_error = Duration::from_secs(config.stale_if_error_secs);
        OriginPlaylists {
            // Entries outlive freshness by the stale-if-error window; moka drops them after.
            entries: Cache::builder()
                .max_capacity(config.playlist_max_entries)
                .time_to_live(live_ttl.max(vod_ttl) + stale_if_error)
                .build(),
            absent: Cache::builder()
                .max_capacity(config.playlist_max_entries)
                .time_to_live(vod_ttl)
                .build(),
            live_ttl,
            vod_ttl,
            stale_if_error,
        }
    }

    /// The playlist `path` of `video_id`, from the cache while fresh.
    pub async fn get(
        &self,
        origin: &Origin,
        video_id: &str,
        path: &AssetPath,
    ) -> Result<CachedPlaylist, OriginError> {
        if !origin.is_proxied() {
            let fetched = origin.playlist(video_id, path).await?;
            return Ok(self
                .stored(fetched.body, fetched.max_age_secs)
                .answer(false));
        }
        let key = (video_id.to_string(), path.encoded().to_string());
        if let Some(stored) = self.entries.get(&key).await {
            if stored.fetched.elapsed() < stored.ttl {
                return Ok(stored.answer(false));
            }
        }
        let mut outcome: Result<CachedPlaylist, OriginError> = Err(OriginError::NotFound);
        self.entries
            .entry(key)
            .and_compute_with(|existing| {
                let outcome = &mut outcome;
                async move {
                    let existing = existing.map(|entry| entry.into_value());
                    if let Some(stored) = existing.as_ref() {
                        // Another request refreshed it while this one waited.
                        if stored.fetched.elapsed() < stored.ttl {
                            *outcome = Ok(stored.answer(false));
                            return Op::Nop;
                        }
                    }
                    match origin.playlist(video_id, path).await {
                        Ok(fetched) => {
                            let stored = self.stored(fetched.body, fetched.max_age_secs);
                            *outcome = Ok(stored.answer(false));
                            Op::Put(stored)
                        }
                        Err(OriginError::NotFound) => {
                            *outcome = Err(OriginError::NotFound);
                            Op::Remove
                        }
                        Err(error) => {
                            *outcome = match existing {
                                Some(stored) if self.within_stale_window(&stored) => {
                                    tracing::warn!(video_id, cause = %error, "origin failed; serving a stale playlist");
                                    Ok(stored.answer(true))
                                }
                                _ => Err(error),
                            };
                            Op::Nop
                        }
                    }
                }
            })
            .await;
        outcome
    }

    /// True when the origin has the manifest at `path` (its copy is then cached), even one
    /// too large or not text (the viewer then gets that error with its reason); false when it
    /// answers 404 (remembered) or cannot be reached.
    pub async fn exists(&self, origin: &Origin, video_id: &str, path: &AssetPath) -> bool {
        let key = (video_id.to_string(), path.encoded().to_string());
        if origin.is_proxied() && self.absent.contains_key(&key) {
            return false;
        }
        match self.get(origin, video_id, path).await {
            Ok(_) => true,
            Err(OriginError::NotFound) => {
                if origin.is_proxied() {
                    self.absent.insert(key, ()).await;
                }
                false
            }
            Err(OriginError::TooLarge { .. } | OriginError::NotText) => true,
            Err(OriginError::Failed(_)) => false,
        }
    }

    fn within_stale_window(&self, stored: &Stored) -> bool {
        stored.fetched.elapsed() < stored.ttl + self.stale_if_error
    }

    fn stored(&self, body: String, origin_max_age: Option<u64>) -> Stored {
        let ttl = match origin_max_age {
            Some(secs) => Duration::from_secs(secs).min(self.vod_ttl.max(self.live_ttl)),
            None if body.contains("#EXT-X-ENDLIST") => self.vod_ttl,
            None if mpd_facts(&body).is_some_and(|f| !f.dynamic) => self.vod_ttl,
            None => self.live_ttl,
        };
        Stored {
            body: body.into(),
            fetched: Instant::now(),
            ttl,
        }
    }
}
