//! Entitlements as the edge caches them: whether a viewer may play a title, and their tier's
//! terms, in two layers in front of the control plane.
//!
//! Moka in process (L1) and, with `[redis]`, a hash `{prefix}l2:ent:{userId}` shared by every
//! edge (L2, field = video id, value = the answer and its expiry). Allowed answers live
//! `cache.entitlement_ttl_secs`, refusals the shorter `cache.negative_ttl_secs` so a fresh grant
//! is seen quickly. The control plane deletes the L2 hash and announces an invalidation when a
//! subscription changes; the edge's invalidation follower then drops the L1 entries here.
//! Failures to reach the control plane are never cached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;
use playback::Reason;
use serde::{Deserialize, Serialize};

use crate::config::CacheConfig;
use crate::control_plane::{ControlPlane, Entitlement, Terms, Unavailable};
use crate::core::metrics::Metrics;
use crate::core::redis::RedisLink;

/// An entitlement as kept in the shared L2 hash.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SharedEntitlement {
    terms: Option<Terms>,
    reason: Option<String>,
    /// Unix time after which the entry is stale.
    until: u64,
}

/// The cached entitlement answers of this edge.
pub struct Entitlements {
    control_plane: Arc<ControlPlane>,
    entitlements: Cache<(String, String), Entitlement>,
    shared: Option<Arc<RedisLink>>,
    allowed_ttl: Duration,
    denied_ttl: Duration,
    metrics: Arc<Metrics>,
}

/// Per-entry lifetimes: allowed answers live longer than refusals.
struct EntitlementExpiry {
    allowed: Duration,
    denied: Duration,
}

impl Expiry<(String, String), Entitlement> for EntitlementExpiry {
    fn expire_after_create(
        &self,
        _key: &(String, String),
        value: &Entitlement,
        _now: Instant,
    ) -> Option<Duration> {
        Some(match value {
            Entitlement::Allowed(_) => self.allowed,
            Entitlement::Denied(_) => self.denied,
        })
    }
}

impl Entitlements {
    /// The caches `[cache]` bounds, in front of `control_plane`, sharing L2 through `shared`.
    pub fn new(
        control_plane: Arc<ControlPlane>,
        cache: &CacheConfig,
        shared: Option<Arc<RedisLink>>,
        metrics: Arc<Metrics>,
    ) -> Entitlements {
        let allowed_ttl = Duration::from_secs(cache.entitlement_ttl_secs);
        let denied_ttl = Duration::from_secs(cache.negative_ttl_secs);
        let entitlements = Cache::builder()
            .max_capacity(cache.max_entries)
            .expire_after(EntitlementExpiry {
                allowed: allowed_ttl,
                denied: denied_ttl,
            })
            .support_invalidation_closures()
            .build();
        Entitlements {
            control_plane,
            entitlements,
            shared,
            allowed_ttl,
            denied_ttl,
            metrics,
        }
    }

    /// Drops cached answers for `user_id` (one title, or all of them) from L1.
    pub fn forget_entitlements(&self, user_id: &str, video_id: Option<&str>) {
        match video_id {
            Some(video) => {
                let key = (user_id.to_string(), video.to_string());
                self.entitlements
                    .invalidate_entries_if(move |k, _| *k == key)
            }
            None => {
                let user = user_id.to_string();
                self.entitlements
                    .invalidate_entries_if(move |k, _| k.0 == user)
            }
        }
        .map(|_| ())
        .unwrap_or_else(|e| tracing::error!(error = %e, "could not drop cached entitlements"));
    }

    /// Drops every cached answer from L1 (after missing invalidations while Redis was away).
    pub fn forget_all_entitlements(&self) {
        self.entitlements.invalidate_all();
    }

    /// Whether `user_id` may play `video_id` at `now_unix`, from the cache or the control
    /// plane.
    pub async fn entitlement(
        &self,
        user_id: &str,
        video_id: &str,
        now_unix: u64,
    ) -> Result<Entitlement, Unavailable> {
        let key = (user_id.to_string(), video_id.to_string());
        if let Some(hit) = self.entitlements.get(&key).await {
            self.metrics.cache_lookup("entitlement", true);
            return Ok(hit);
        }
        self.metrics.cache_lookup("entitlement", false);
        if let Some(hit) = self.shared_entitlement(user_id, video_id, now_unix).await {
            self.entitlements.insert(key, hit).await;
            return Ok(hit);
        }
        let answer = self.control_plane.entitlement(user_id, video_id).await?;
        self.entitlements.insert(key, answer).await;
        self.share_entitlement(user_id, video_id, answer, now_unix);
        Ok(answer)
    }

    /// The L2 answer, when Redis has a fresh one.
    async fn shared_entitlement(
        &self,
        user_id: &str,
        video_id: &str,
        now_unix: u64,
    ) -> Option<Entitlement> {
        let link = self.shared.as_ref()?;
        let hash = link.key(&format!("l2:ent:{user_id}"));
        let field = video_id.to_string();
        let raw: Option<String> = link
            .run("entitlement l2", |mut c| async move {
                redis::cmd("HGET")
                    .arg(hash)
                    .arg(field)
                    .query_async(&mut c)
                    .await
            })
            .await
            .ok()
            .flatten();
        let entry = raw.and_then(|raw| serde_json::from_str::<SharedEntitlement>(&raw).ok());
        let answer = match entry {
            Some(entry) if entry.until > now_unix => match (entry.terms, entry.reason) {
                (Some(terms), _) => Some(Entitlement::Allowed(terms)),
                (None, Some(code)) => Reason::from_code(&code).map(Entitlement::Denied),
                (None, None) => None,
            },
            _ => None,
        };
        self.metrics
            .cache_lookup("entitlement_l2", answer.is_some());
        answer
    }

    /// Writes `answer` to L2 in the background (the response does not wait for Redis).
    fn share_entitlement(&self, user_id: &str, video_id: &str, answer: Entitlement, now_unix: u64) {
        let Some(link) = self.shared.clone() else {
            return;
        };
        let ttl = match answer {
            Entitlement::Allowed(_) => self.allowed_ttl,
            Entitlement::Denied(_) => self.denied_ttl,
        };
        let entry = match answer {
            Entitlement::Allowed(terms) => SharedEntitlement {
                terms: Some(terms),
                reason: None,
                until: now_unix + ttl.as_secs(),
            },
            Entitlement::Denied(reason) => SharedEntitlement {
                terms: None,
                reason: Some(reason.code().to_string()),
                until: now_unix + ttl.as_secs(),
            },
        };
        let Ok(value) = serde_json::to_string(&entry) else {
            return;
        };
        let hash = link.key(&format!("l2:ent:{user_id}"));
        let field = video_id.to_string();
        // The hash outlives its longest entry; each entry carries its own expiry.
        let hash_ttl = self.allowed_ttl.max(self.denied_ttl).as_secs().max(1);
        tokio::spawn(async move {
            let _ = link
                .run("entitlement l2", |mut c| async move {
                    redis::pipe()
                        .hset(&hash, field, value)
                        .ignore()
                        .expire(&hash, hash_ttl as i64)
                        .ignore()
                        .query_async::<()>(&mut c)
                        .await
                })
                .await;
        });
    }
}
