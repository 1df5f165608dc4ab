//! Prometheus metrics for the edge, exposed at `/metrics`.
//!
//! - `edge_requests_total{route,status}` and `edge_request_duration_seconds{route}`: every
//!   request, recorded once in the `logging` phase.
//! - `edge_cache_total{cache,result}`: hit/miss per cache and layer: in process (L1)
//!   `entitlement`, `content_key`, `verified_jwt`, `cloudfront_signature`, `license_response`;
//!   shared in Redis (L2) `entitlement_l2`, `wrapped_key_l2`.
//! - `edge_denials_total{reason}`: refusals by machine reason code.
//! - `edge_licenses_total{system}`: licenses and keys issued, by DRM system.
//! - `edge_redis_up`: 1 while the shared Redis answers, 0 while the edge serves from L1 and
//!   the control plane alone.
//! - `edge_license_outbox_pending`: issued licenses not yet acknowledged by the control plane.
//! - `edge_events_written` / `edge_events_dropped`: analytics events delivered / dropped since
//!   start.
//! - `edge_provider_exchanges{system,connection}`: requests to the Widevine / PlayReady service
//!   on a `new` or a `pooled` (warm) upstream connection, since start.
//! - `edge_segment_cache_total{result}`: proxied segment requests by segment-cache outcome
//!   (`hit`, `miss`, `stale` = served stale because the origin failed, `revalidated` = a 304
//!   from the origin refreshed it, `expired`, `bypass` = not cacheable or too large).
//! - `edge_connections_refused_total{reason}`: connections dropped before their handshake
//!   (`ip_not_allowed`: every route group refuses the peer).
//! - `edge_tls_reloads_total{result}`: certificate and client-CA reloads (`ok`, `failed` = the
//!   old certificates kept serving).
//! - `edge_segment_cache_bytes` / `edge_segment_cache_objects`: what the segment cache holds.
//!
//! Labels are bounded sets (route labels, status codes, reason codes); never ids or tokens.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The edge's metric families, registered in their own registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    cache: IntCounterVec,
    denials: IntCounterVec,
    licenses: IntCounterVec,
    redis_up: IntGauge,
    outbox_pending: IntGauge,
    events_written: IntGauge,
    events_dropped: IntGauge,
    provider_exchanges: prometheus::IntGaugeVec,
    segment_cache: IntCounterVec,
    segment_cache_bytes: IntGauge,
    segment_cache_objects: IntGauge,
    connections_refused: IntCounterVec,
    tls_reloads: IntCounterVec,
}

/// Outcomes in `edge_segment_cache_total{result}`.
pub const SEGMENT_CACHE_RESULTS: [&str; 6] =
    ["hit", "miss", "stale", "revalidated", "expired", "bypass"];

/// Names of the caches, as used in the `cache` label (`_l2` = shared in Redis).
pub const CACHES: [&str; 7] = [
    "entitlement",
    "content_key",
    "verified_jwt",
    "cloudfront_signature",
    "license_response",
    "entitlement_l2",
    "wrapped_key_l2",
];

/// DRM systems, as used in the `system` label.
pub const DRM_SYSTEMS: [&str; 5] = ["clearkey", "aes128", "fairplay", "widevine", "playready"];

impl Metrics {
    /// Registers every family and pre-creates the cache and denial series at zero.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "edge_requests_total",
                "Requests served, by route and status.",
            ),
            &["route", "status"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "edge_request_duration_seconds",
                "Time from request start to the last response byte, by route.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )
        .expect("valid metric");
        let cache = IntCounterVec::new(
            Opts::new(
                "edge_cache_total",
                "Cache lookups, by cache and result (hit|miss).",
            ),
            &["cache", "result"],
        )
        .expect("valid metric");
        let denials = IntCounterVec::new(
            Opts::new("edge_denials_total", "Requests refused, by reason code."),
            &["reason"],
        )
        .expect("valid metric");
        let licenses = IntCounterVec::new(
            Opts::new(
                "edge_licenses_total",
                "Licenses and content keys issued, by DRM system.",
            ),
            &["system"],
        )
        .expect("valid metric");
        let redis_up = IntGauge::new(
            "edge_redis_up",
            "1 while the shared Redis answers; 0 while the edge serves from local state.",
        )
        .expect("valid metric");
        let gauge = |name: &str, help: &str| {
            let gauge = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(gauge.clone()))
                .expect("unique metric");
            gauge
        };
        let outbox_pending = gauge(
            "edge_license_outbox_pending",
            "Issued licenses not yet acknowledged by the control plane.",
        );
        let events_written = gauge(
            "edge_events_written",
            "Analytics events delivered since start.",
        );
        let events_dropped = gauge(
            "edge_events_dropped",
            "Analytics events dropped since start (full buffer or bus unavailable).",
        );
        let segment_cache_bytes = gauge(
            "edge_segment_cache_bytes",
            "Bytes held by the segment cache (headers and bodies).",
        );
        let segment_cache_objects = gauge(
            "edge_segment_cache_objects",
            "Objects held by the segment cache.",
        );
        let segment_cache = IntCounterVec::new(
            Opts::new(
                "edge_segment_cache_total",
                "Proxied segment requests, by segment-cache outcome.",
            ),
            &["result"],
        )
        .expect("valid metric");
        for result in SEGMENT_CACHE_RESULTS {
            segment_cache.with_label_values(&[result]);
        }
        registry
            .register(Box::new(segment_cache.clone()))
            .expect("unique metric");
        let provider_exchanges = prometheus::IntGaugeVec::new(
            Opts::new(
                "edge_provider_exchanges",
                "Requests to a license provider since start, by system and connection (new|pooled).",
            ),
            &["system", "connection"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(provider_exchanges.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(redis_up.clone()))
            .expect("unique metric");
        for system in DRM_SYSTEMS {
            licenses.with_label_values(&[system]);
        }
        for collector in [&requests, &cache, &denials, &licenses] {
            registry
                .register(Box::new(collector.clone()))
                .expect("unique metric");
        }
        registry
            .register(Box::new(duration.clone()))
            .expect("unique metric");
        for name in CACHES {
            for result in ["hit", "miss"] {
                cache.with_label_values(&[name, result]);
            }
        }
        for reason in playback::Reason::ALL {
            denials.with_label_values(&[reason.code()]);
        }
        let counter = |name: &str, help: &str, label: &str, values: &[&str]| {
            let family = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            for value in values {
                family.with_label_values(&[value]);
            }
            registry
                .register(Box::new(family.clone()))
                .expect("unique metric");
            family
        };
        let connections_refused = counter(
            "edge_connections_refused_total",
            "Connections dropped before their handshake, by reason.",
            "reason",
            &["ip_not_allowed"],
        );
        let tls_reloads = counter(
            "edge_tls_reloads_total",
            "Certificate and client-CA reloads, by result (ok|failed; failed keeps the old ones).",
            "result",
            &["ok", "failed"],
        );
        Metrics {
            registry,
            requests,
            duration,
            cache,
            denials,
            licenses,
            redis_up,
            outbox_pending,
            events_written,
            events_dropped,
            provider_exchanges,
            segment_cache,
            segment_cache_bytes,
            segment_cache_objects,
            connections_refused,
            tls_reloads,
        }
    }

    /// Records one connection dropped before its handshake.
    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused.with_label_values(&[reason]).inc();
    }

    /// Records one certificate reload.
    pub fn tls_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.tls_reloads.with_label_values(&[result]).inc();
    }

    /// Records one proxied segment request's cache outcome (one of [`SEGMENT_CACHE_RESULTS`]).
    pub fn segment_cache(&self, result: &'static str) {
        self.segment_cache.with_label_values(&[result]).inc();
    }

    /// Sets what the segment cache holds.
    pub fn set_segment_cache(&self, bytes: u64, objects: u64) {
        self.segment_cache_bytes.set(bytes as i64);
        self.segment_cache_objects.set(objects as i64);
    }

    /// Sets `edge_provider_exchanges` for `system` from its (new, pooled) counts.
    pub fn set_provider_exchanges(&self, system: &str, (new, pooled): (u64, u64)) {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.provider_exchanges
            .with_label_values(&[system, "new"])
            .set(clamp(new));
        self.provider_exchanges
            .with_label_values(&[system, "pooled"])
            .set(clamp(pooled));
    }

    /// Sets the outbox and analytics gauges (read from their owners at scrape time).
    pub fn set_delivery(&self, outbox_pending: u64, events_written: u64, events_dropped: u64) {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.outbox_pending.set(clamp(outbox_pending));
        self.events_written.set(clamp(events_written));
        self.events_dropped.set(clamp(events_dropped));
    }

    /// Records one issued license or key (`system` from [`DRM_SYSTEMS`]).
    pub fn license_issued(&self, system: &'static str) {
        self.licenses.with_label_values(&[system]).inc();
    }

    /// Sets `edge_redis_up`.
    pub fn set_redis_up(&self, up: bool) {
        self.redis_up.set(i64::from(up));
    }

    /// Records one finished request.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// Records one cache lookup.
    pub fn cache_lookup(&self, cache: &'static str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache.with_label_values(&[cache, result]).inc();
    }

    /// Records one refusal.
    pub fn denial(&self, reason: playback::Reason) {
        self.denials.with_label_values(&[reason.code()]).inc();
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("text exposition is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_contains_every_family() {
        let metrics = Metrics::new();
        metrics.request("hls", 200, Duration::from_millis(3));
        metrics.cache_lookup("entitlement", true);
        metrics.denial(playback::Reason::Expired);
        let text = metrics.render();
        assert!(text.contains("edge_requests_total{route=\"hls\",status=\"200\"} 1"));
        assert!(text.contains("edge_request_duration_seconds_bucket{route=\"hls\""));
        assert!(text.contains("edge_cache_total{cache=\"entitlement\",result=\"hit\"} 1"));
        assert!(text.contains("edge_cache_total{cache=\"content_key\",result=\"miss\"} 0"));
        assert!(text.contains("edge_denials_total{reason=\"expired\"} 1"));
    }
}
