//! Operational endpoints: `/health` (liveness), `/ready` (readiness), `/metrics` (Prometheus).

use serde_json::json;

use crate::core::errors::EdgeError;
use crate::delivery::Delivery;
use crate::http::reply::Reply;
use crate::http::{Edge, Ops};

/// `GET /health`: the process is up.
pub fn health() -> Reply {
    Reply::json(200, &json!({ "status": "ok" }))
}

/// `GET /ready`: 200 when the origin and the control plane both answer; otherwise 503 naming
/// each dependency that is down, or `draining` once a graceful shutdown or upgrade began. Redis is reported but never makes the edge unready: without it
/// the edge serves from L1 and the control plane, limits become per-edge, and `/ready` says
/// `"redis": "down"` with `"status": "degraded"`.
pub async fn ready(delivery: &Delivery, ops: &Ops) -> Reply {
    if ops.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Reply::json(
            503,
            &json!({
                "error": "draining",
                "message": "The edge is shutting down or handing over to a new process; send new requests elsewhere.",
                "down": [],
            }),
        );
    }
    let redis = redis_state(ops).await;
    let (origin, control_plane) = tokio::join!(
        delivery.origin.check_reachable(),
        ops.control_plane.check_healthy()
    );
    let down: Vec<(&str, String)> = [("origin", origin), ("control_plane", control_plane)]
        .into_iter()
        .filter_map(|(name, result)| result.err().map(|why| (name, why)))
        .collect();
    if down.is_empty() {
        let status = if redis == "down" { "degraded" } else { "ready" };
        return Reply::json(200, &json!({ "status": status, "redis": redis }));
    }
    let names: Vec<&str> = down.iter().map(|(name, _)| *name).collect();
    let reasons: Vec<&str> = down.iter().map(|(_, why)| why.as_str()).collect();
    Reply::json(
        503,
        &json!({
            "error": "not_ready",
            "message": format!("Not ready: {}.", reasons.join("; ")),
            "down": names,
            "redis": redis,
        }),
    )
}

/// "off" without `[redis]`, else "up" or "down" (a PING within `redis.timeout_ms`).
async fn redis_state(ops: &Ops) -> &'static str {
    let Some(link) = &ops.redis else {
        return "off";
    };
    let ping: Result<String, _> = link
        .run("ping", |mut c| async move {
            redis::cmd("PING").query_async(&mut c).await
        })
        .await;
    match ping {
        Ok(_) => "up",
        Err(_) => "down",
    }
}

/// `GET /metrics`: Prometheus text exposition, with the gauges of every part read now.
pub fn metrics(edge: &Edge) -> Reply {
    let metrics = &edge.ops.metrics;
    if let Some(link) = &edge.ops.redis {
        metrics.set_redis_up(link.is_up());
    }
    if let Some(widevine) = &edge.licensing.widevine {
        metrics.set_provider_exchanges("widevine", widevine.connection_counts());
    }
    if let Some(playready) = &edge.licensing.playready {
        metrics.set_provider_exchanges("playready", playready.connection_counts());
    }
    if let Some(cache) = &edge.delivery.segment_cache {
        metrics.set_segment_cache(cache.stored_bytes(), cache.stored_objects());
    }
    let records = &edge.records;
    metrics.set_delivery(
        records.ledger.pending(),
        records.analytics.written(),
        records.analytics.dropped(),
    );
    Reply::bytes(200, "text/plain; version=0.0.4", metrics.render())
        .header("cache-control", "no-store")
}

/// Answers a CORS preflight: browsers send one before a manifest or license request with an
/// `Authorization` header, a license POST with a JSON body, or a segment request with `Range`.
pub fn preflight(ops: &Ops) -> Result<Reply, EdgeError> {
    if ops.cors_allow_origin.is_none() {
        return Err(EdgeError::MethodNotAllowed);
    }
    Ok(Reply::bytes(200, "text/plain", "")
        .header(
            "access-control-allow-methods",
            "GET, HEAD, POST, DELETE, OPTIONS",
        )
        .header(
            "access-control-allow-headers",
            "authorization, range, content-type, x-playback-session-id, x-device-id",
        )
        .header("access-control-max-age", "600"))
}
