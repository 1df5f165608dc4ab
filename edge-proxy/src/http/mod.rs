//! The HTTP layer: Pingora's request phases ([`proxy`]), the route table ([`route`]), what a
//! request presents, read once ([`facts`]), one handler per route family ([`handlers`]), the
//! replies the edge writes itself ([`reply`]), the upstream request an origin asked for
//! ([`upstream`]), and the access log, metrics and error events, written in one place
//! ([`log`]).
//!
//! Only this layer (and the application that builds it) names Pingora's `Session` and
//! `RequestHeader`; every layer below gets the values it needs.

pub mod facts;
pub mod handlers;
pub mod log;
pub mod proxy;
pub mod reply;
pub mod route;
pub mod upstream;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use playback::client_address::ClientAddressRule;

use crate::access::Access;
use crate::control_plane::ControlPlane;
use crate::core::metrics::Metrics;
use crate::core::redis::RedisLink;
use crate::delivery::Delivery;
use crate::gate::Gate;
use crate::licensing::Licensing;
use crate::records::Records;
use crate::transport::perimeter::Perimeter;

/// Everything a request may need, each part behind its own handle; one per process, built by
/// the application (`app::build`) and handed to Pingora.
pub struct Edge {
    pub gate: Gate,
    pub access: Access,
    pub delivery: Delivery,
    pub licensing: Licensing,
    pub records: Records,
    pub ops: Ops,
}

/// What the operational endpoints and the request phases themselves use.
pub struct Ops {
    pub metrics: Arc<Metrics>,
    /// The shared Redis (`None` without `[redis] url`), for `/ready` and `edge_redis_up`.
    pub redis: Option<Arc<RedisLink>>,
    /// The control plane, for `/ready`.
    pub control_plane: Arc<ControlPlane>,
    /// `server.public_base_url` without a trailing slash.
    pub public_base_url: String,
    /// `server.cors_allow_origin`; `None` sends no CORS headers.
    pub cors_allow_origin: Option<String>,
    /// Who a request's client is behind trusted proxies (`server.trusted_proxies`).
    pub client_addresses: ClientAddressRule,
    /// Who may use each route group (`[route_groups]`), checked before any handler.
    pub perimeter: Arc<Perimeter>,
    /// `Strict-Transport-Security` for HTTPS responses (`tls.hsts_max_age_secs`).
    pub hsts: Option<String>,
    /// Set when a graceful shutdown or upgrade starts: `/ready` answers 503 from then on.
    pub draining: Arc<AtomicBool>,
    /// `debug.denial_header`: add `X-Edge-Denial` to refusals.
    pub denial_header: bool,
    /// SHA-256 of the service token (`control_plane.service_token_file`), which internal
    /// endpoints require; compared in constant time.
    pub service_token_digest: [u8; 32],
}
