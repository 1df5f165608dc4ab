//! What runs beside the request path, as Pingora background services: the revocation
//! follower (Redis pub/sub), stream heartbeats, the analytics writer, the license outbox
//! replay, the invalidation follower, and the HTTP origin's health checks.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};

use super::invalidation::Invalidations;
use crate::access::limits::Streams;
use crate::core::redis::RedisLink;
use crate::delivery::origin::OriginHealthService;
use crate::gate::revocation::Revocations;
use crate::records::analytics::Analytics;
use crate::records::ledger::LicenseLedger;

/// The background work of one edge, handed to the Pingora server by [`Tasks::add_to`].
pub struct Tasks {
    pub revocations: Arc<Revocations>,
    pub streams: Arc<Streams>,
    pub analytics: Analytics,
    pub ledger: Arc<LicenseLedger>,
    pub invalidations: Arc<Invalidations>,
    pub redis: Option<Arc<RedisLink>>,
    /// Several HTTP origin servers: discovery and health checks.
    pub origin_health: Option<OriginHealthService>,
}

impl Tasks {
    /// Loads persisted revocations before serving, so a restarted edge still denies; Redis
    /// being down is logged, not fatal (the follower keeps trying and loads them once it
    /// connects).
    pub fn load_revocations(&self) {
        if !self.revocations.is_shared() {
            return;
        }
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(error = %e, "cannot load revocations: no runtime");
                return;
            }
        };
        let loaded = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), self.revocations.load()).await
        });
        match loaded {
            Ok(Ok(count)) => tracing::info!(count, "revocations loaded from redis"),
            Ok(Err(e)) => tracing::warn!(error = %e, "revocations not loaded: redis unavailable"),
            Err(_) => tracing::warn!("revocations not loaded: redis timed out"),
        }
    }

    /// Adds every task to `server`.
    pub fn add_to(self, server: &mut Server) {
        if let Some(origin_health) = self.origin_health {
            server.add_service(background_service("origin health checks", origin_health));
        }
        if self.revocations.is_shared() {
            server.add_service(background_service(
                "revocation follower",
                RevocationFollower {
                    revocations: self.revocations,
                },
            ));
        }
        server.add_service(background_service(
            "drm background",
            DrmTasks {
                streams: self.streams,
                analytics: self.analytics,
                ledger: self.ledger,
                invalidations: self.invalidations,
                redis: self.redis,
            },
        ));
    }
}

/// Applies revocations announced by other edges (Redis pub/sub) for the life of the process.
struct RevocationFollower {
    revocations: Arc<Revocations>,
}

#[async_trait]
impl BackgroundService for RevocationFollower {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            () = self.revocations.clone().follow() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The license path's background work: stream heartbeats, the analytics writer, the license
/// outbox replay and, with Redis, the invalidation follower.
struct DrmTasks {
    streams: Arc<Streams>,
    analytics: Analytics,
    ledger: Arc<LicenseLedger>,
    invalidations: Arc<Invalidations>,
    redis: Option<Arc<RedisLink>>,
}

#[async_trait]
impl BackgroundService for DrmTasks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        self.streams.spawn_heartbeats();
        self.analytics.spawn();
        self.ledger.spawn();
        match &self.redis {
            Some(link) => {
                tokio::select! {
                    () = self.invalidations.clone().follow(link.clone()) => {}
                    _ = shutdown.changed() => {}
                }
            }
            None => {
                let _ = shutdown.changed().await;
            }
        }
        // Shutting down: deliver buffered events and make the outbox durable.
        self.analytics.flush().await;
        if let Err(e) = self.ledger.sync() {
            tracing::error!(error = %e, "license outbox could not be synced at shutdown");
        }
    }
}
