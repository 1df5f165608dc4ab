//! Operational endpoints: `/health` (liveness), `/ready` (readiness), `/metrics` (Prometheus).

use serde_json::json;

use crate::edge::Edge;
use crate::errors::EdgeError;
use crate::reply::Reply;

/// `GET /health`: the process is up.
pub fn health() -> Reply {
    Reply::json(200, &json!({ "status": "ok" }))
}

/// `GET /ready`: 200 when the origin and the control plane both answer; otherwise 503 naming
/// each dependency that is down.
pub async fn ready(edge: &Edge) -> Reply {
    let (origin, control_plane) = tokio::join!(
        edge.origin.check_reachable(),
        edge.control_plane.check_healthy()
    );
    let down: Vec<(&str, String)> = [("origin", origin), ("control_plane", control_plane)]
        .into_iter()
        .filter_map(|(name, result)| result.err().map(|why| (name, why)))
        .collect();
    if down.is_empty() {
        return Reply::json(200, &json!({ "status": "ready" }));
    }
    let names: Vec<&str> = down.iter().map(|(name, _)| *name).collect();
    let reasons: Vec<&str> = down.iter().map(|(_, why)| why.as_str()).collect();
    Reply::json(
        503,
        &json!({
            "error": "not_ready",
            "message": format!("Not ready: {}.", reasons.join("; ")),
            "down": names,
        }),
    )
}

/// `GET /metrics`: Prometheus text exposition.
pub fn metrics(edge: &Edge) -> Reply {
    Reply::bytes(200, "text/plain; version=0.0.4", edge.metrics.render())
        .header("cache-control", "no-store")
}

/// Answers a CORS preflight: browsers send one before a manifest request with an
/// `Authorization` header, or a segment request with `Range`.
pub fn preflight(edge: &Edge) -> Result<Reply, EdgeError> {
    if edge.cors_allow_origin.is_none() {
        return Err(EdgeError::MethodNotAllowed);
    }
    Ok(Reply::bytes(200, "text/plain", "")
        .header("access-control-allow-methods", "GET, HEAD, OPTIONS")
        .header("access-control-allow-headers", "authorization, range")
        .header("access-control-max-age", "600"))
}
