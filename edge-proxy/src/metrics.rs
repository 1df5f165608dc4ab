//! Prometheus metrics for the edge, exposed at `/metrics`.
//!
//! - `edge_requests_total{route,status}` and `edge_request_duration_seconds{route}`: every
//!   request, recorded once in the `logging` phase.
//! - `edge_cache_total{cache,result}`: hit/miss per in-process cache (`entitlement`,
//!   `content_key`, `verified_jwt`, `cloudfront_signature`).
//! - `edge_denials_total{reason}`: refusals by machine reason code.
//!
//! Labels are bounded sets (route labels, status codes, reason codes); never ids or tokens.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The edge's metric families, registered in their own registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    cache: IntCounterVec,
    denials: IntCounterVec,
}

/// Names of the in-process caches, as used in the `cache` label.
pub const CACHES: [&str; 4] = [
    "entitlement",
    "content_key",
    "verified_jwt",
    "cloudfront_signature",
];

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
        for collector in [&requests, &cache, &denials] {
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
        Metrics {
            registry,
            requests,
            duration,
            cache,
            denials,
        }
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
