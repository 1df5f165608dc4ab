//! A stub control plane that speaks the internal API contract (entitlements, wrapped content
//! keys), counting calls so tests can check the edge's caching.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use playback::keywrap::{wrap, KeyBinding, Purpose};
use serde_json::json;

use super::{service_token, TRANSPORT_KEY};

pub const NOT_READY_VIDEO: &str = "11111111-2222-4333-8444-555555555555";
pub const UNKNOWN_VIDEO: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
pub const STRANGER: &str = "stranger";
pub const CONTENT_KEY: [u8; 16] = *b"0123456789abcdef";

#[derive(Clone, Default)]
pub struct Calls {
    pub entitlements: Arc<AtomicUsize>,
    pub keys: Arc<AtomicUsize>,
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {}", service_token()).as_str())
}

async fn entitlement(
    State(calls): State<Calls>,
    Path(video): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        )
            .into_response();
    }
    calls.entitlements.fetch_add(1, Ordering::SeqCst);
    let user = query.get("userId").cloned().unwrap_or_default();
    let reason = match (video.as_str(), user.as_str()) {
        (UNKNOWN_VIDEO, _) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "not_found", "message": "no such video"})),
            )
                .into_response()
        }
        (_, STRANGER) => Some("not_entitled"),
        (NOT_READY_VIDEO, _) => Some("not_ready"),
        _ => None,
    };
    Json(json!({
        "videoId": video, "userId": user, "allowed": reason.is_none(), "reason": reason,
        "drmProtected": false, "ready": reason != Some("not_ready"),
    }))
    .into_response()
}

async fn content_key(
    State(calls): State<Calls>,
    Path((video, key_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        )
            .into_response();
    }
    calls.keys.fetch_add(1, Ordering::SeqCst);
    match key_id.as_str() {
        "key-1" => {
            let binding = KeyBinding {
                purpose: Purpose::Transport,
                video_id: &video,
                key_id: &key_id,
            };
            let wrapped = wrap(&TRANSPORT_KEY, &[7; 12], &CONTENT_KEY, &binding);
            Json(json!({"videoId": video, "keyId": key_id, "algorithm": "AES-128", "wrappedKey": wrapped}))
                .into_response()
        }
        "revoked" => (StatusCode::GONE, Json(json!({"error": "key_revoked"}))).into_response(),
        _ => (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response(),
    }
}

/// Starts the stub on an ephemeral port: `(base URL, call counters)`.
pub async fn start_control_plane() -> (String, Calls) {
    let calls = Calls::default();
    let app = axum::Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/internal/v1/entitlements/{video}", get(entitlement))
        .route("/internal/v1/videos/{video}/keys/{key}", get(content_key))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), calls)
}
