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
/// A content key with a UUID id, usable as a CENC/ClearKey/FairPlay key id.
pub const UUID_KEY_ID: &str = "00112233-4455-4677-8899-aabbccddeeff";
pub const UUID_CONTENT_KEY: [u8; 16] = *b"fedcba9876543210";
/// A user whose tier allows one stream.
pub const ONE_STREAM_USER: &str = "one-stream@example.com";
/// A user whose tier allows persistent licenses (two hours).
pub const PERSISTENT_USER: &str = "persistent@example.com";

#[derive(Clone, Default)]
pub struct Calls {
    pub entitlements: Arc<AtomicUsize>,
    pub keys: Arc<AtomicUsize>,
    /// License records received on `POST /internal/v1/licenses`, by id.
    pub licenses: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    /// While set, `POST /internal/v1/licenses` answers 503.
    pub licenses_down: Arc<std::sync::atomic::AtomicBool>,
    /// While set, entitlement and key calls answer 503 (the control plane is down).
    pub down: Arc<std::sync::atomic::AtomicBool>,
    /// Key ids answered as revoked (410).
    pub revoked_keys: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Calls {
    /// Distinct license records received.
    pub fn license_records(&self) -> Vec<serde_json::Value> {
        let mut seen = std::collections::HashSet::new();
        self.licenses
            .lock()
            .unwrap()
            .iter()
            .filter(|r| seen.insert(r["id"].as_str().unwrap_or_default().to_string()))
            .cloned()
            .collect()
    }
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
    if calls.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    calls.entitlements.fetch_add(1, Ordering::SeqCst);
    let user = query.get("userId").cloned().unwrap_or_default();
    let (max_streams, license_type, duration) = match user.as_str() {
        ONE_STREAM_USER => (1, "rental", 3600),
        PERSISTENT_USER => (3, "persistent", 7200),
        _ => (3, "rental", 3600),
    };
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
        "tier": "pro", "maxConcurrentStreams": max_streams, "licenseType": license_type,
        "licenseDurationSecs": duration,
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
    if calls.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    calls.keys.fetch_add(1, Ordering::SeqCst);
    if calls.revoked_keys.lock().unwrap().contains(&key_id) {
        return (StatusCode::GONE, Json(json!({"error": "key_revoked"}))).into_response();
    }
    let key = match key_id.as_str() {
        "key-1" => Some(CONTENT_KEY),
        UUID_KEY_ID => Some(UUID_CONTENT_KEY),
        _ => None,
    };
    match (key_id.as_str(), key) {
        (_, Some(key)) => {
            let binding = KeyBinding {
                purpose: Purpose::Transport,
                video_id: &video,
                key_id: &key_id,
            };
            let wrapped = wrap(&TRANSPORT_KEY, &[7; 12], &key, &binding);
            Json(json!({"videoId": video, "keyId": key_id, "algorithm": "AES-128", "wrappedKey": wrapped}))
                .into_response()
        }
        ("revoked", _) => (StatusCode::GONE, Json(json!({"error": "key_revoked"}))).into_response(),
        _ => (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response(),
    }
}

async fn licenses(
    State(calls): State<Calls>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if calls.licenses_down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let records = body["licenses"].as_array().cloned().unwrap_or_default();
    let mut stored = calls.licenses.lock().unwrap();
    let mut recorded = 0;
    let mut duplicates = 0;
    for record in records {
        if stored.iter().any(|r| r["id"] == record["id"]) {
            duplicates += 1;
        } else {
            recorded += 1;
        }
        stored.push(record);
    }
    Json(json!({"recorded": recorded, "duplicates": duplicates, "rejected": []})).into_response()
}

/// Starts the stub on an ephemeral port: `(base URL, call counters)`.
pub async fn start_control_plane() -> (String, Calls) {
    let calls = Calls::default();
    let app = axum::Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/internal/v1/entitlements/{video}", get(entitlement))
        .route("/internal/v1/videos/{video}/keys/{key}", get(content_key))
        .route("/internal/v1/licenses", axum::routing::post(licenses))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), calls)
}
