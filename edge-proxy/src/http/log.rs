//! The one place a request is written down, in Pingora's `logging` phase: the request
//! metrics (`edge_requests_total`, the latency histogram), the denial counter by reason, the
//! `PlaybackError` event of a refused manifest, key or license request, and the JSON access
//! log line (never tokens or query strings).

use std::time::Instant;

use crate::core::errors::Failure;
use crate::core::metrics::Metrics;
use crate::http::handlers::Ids;
use crate::records::analytics::{Analytics, Event};

/// What a request's log line and counters are made of, filled in as the phases learn it.
pub struct RequestLog {
    pub started: Instant,
    /// The route's label (`hls`, `key`, ...).
    pub route: &'static str,
    /// Refused manifest, key and license requests emit a `PlaybackError` event.
    pub reports_errors: bool,
    pub ids: Ids,
    /// Why the request was refused or failed, when it was.
    pub failure: Option<Failure>,
    /// The client certificate's identity (`cn=…;sha256=…`, `verified` or why not), over TLS.
    pub client_certificate: Option<String>,
}

impl RequestLog {
    /// A log for a request that arrived at `started`.
    pub fn new(started: Instant) -> RequestLog {
        RequestLog {
            started,
            route: "not_found",
            reports_errors: false,
            ids: Ids::default(),
            failure: None,
            client_certificate: None,
        }
    }

    /// Counts and writes the request, answered with `status` (0 when nothing was sent).
    pub fn write(
        &self,
        metrics: &Metrics,
        analytics: &Analytics,
        method: &http::Method,
        redacted_path: &str,
        status: u16,
        at_ms: u64,
    ) {
        let elapsed = self.started.elapsed();
        metrics.request(self.route, status, elapsed);
        let denial = self.failure.as_ref().and_then(|f| f.error.denial());
        if let Some(reason) = denial {
            metrics.denial(reason);
        }
        if let (Some(failure), true) = (&self.failure, self.reports_errors) {
            analytics.emit(Event::playback_error(
                at_ms,
                self.ids.user_id.as_deref(),
                self.ids.video_id.as_deref(),
                self.ids.session_id.as_deref(),
                failure.error.code(),
                failure.error.status(),
            ));
        }
        let detail = self.failure.as_ref().and_then(|f| f.detail.as_deref());
        tracing::info!(
            route = self.route,
            status,
            latencyMs = elapsed.as_secs_f64() * 1000.0,
            method = %method,
            path = %redacted_path,
            videoId = self.ids.video_id.as_deref(),
            userId = self.ids.user_id.as_deref(),
            sessionId = self.ids.session_id.as_deref(),
            licenseId = self.ids.license_id.as_deref(),
            denial = denial.map(|r| r.code()),
            denialDetail = detail,
            clientCert = self.client_certificate.as_deref(),
            "request"
        );
    }
}
