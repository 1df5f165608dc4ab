//! The edge against a stub control plane that speaks the internal API contract: manifests,
//! entitlement outcomes and their caching, and the AES-128 key endpoint.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use common::*;
use playback::keywrap::{wrap, KeyBinding, Purpose};
use serde_json::json;

const NOT_READY_VIDEO: &str = "11111111-2222-4333-8444-555555555555";
const UNKNOWN_VIDEO: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const STRANGER: &str = "stranger";
const CONTENT_KEY: [u8; 16] = *b"0123456789abcdef";

#[derive(Clone, Default)]
struct Calls {
    entitlements: Arc<AtomicUsize>,
    keys: Arc<AtomicUsize>,
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

async fn start_control_plane() -> (String, Calls) {
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

async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_entitlement_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let (control_plane, calls) = start_control_plane().await;
    let edge = Edge::start_with(OriginSetup::Directory(&media.root), &control_plane);
    let client = reqwest::Client::new();
    let manifest = |video: &str, user: &str| {
        client
            .get(edge.url(&format!("/playback/{video}/manifest")))
            .bearer_auth(edge.jwt(user))
            .send()
    };

    // Manifest: signed master URL with an RFC 3339 expiry five minutes out.
    let r = manifest(VIDEO, USER).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: serde_json::Value = r.json().await.unwrap();
    let url = body["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/hls/{VIDEO}/master.m3u8?token=", edge.base)),
        "{url}"
    );
    let expires = time::OffsetDateTime::parse(
        body["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let lifetime = expires.unix_timestamp() - now() as i64;
    assert!((295..=300).contains(&lifetime), "{lifetime}");
    let master = client.get(url).send().await.unwrap();
    assert_eq!(master.status(), 200);
    let variant = playlist_uris(&master.text().await.unwrap()).remove(0);

    // The JWT may also travel in the query.
    let r = client
        .get(edge.url(&format!(
            "/playback/{VIDEO}/manifest?token={}",
            edge.jwt(USER)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Entitlement outcomes map to statuses and reason codes.
    let r = manifest(VIDEO, STRANGER).await.unwrap();
    assert_eq!(
        (r.status().as_u16(), error_code(r).await.as_str()),
        (403, "not_entitled")
    );
    let r = manifest(UNKNOWN_VIDEO, USER).await.unwrap();
    assert_eq!(
        (r.status().as_u16(), error_code(r).await.as_str()),
        (404, "not_found")
    );
    let r = manifest(NOT_READY_VIDEO, USER).await.unwrap();
    assert_eq!(
        (r.status().as_u16(), error_code(r).await.as_str()),
        (409, "not_ready")
    );

    // The key endpoint, reached through the rewritten playlist's EXT-X-KEY URI.
    let playlist = client
        .get(edge.url(&variant))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key_uri = playlist_uris(&playlist)
        .into_iter()
        .find(|u| u.starts_with("/keys/"))
        .expect("EXT-X-KEY rewritten to the edge");
    for _ in 0..2 {
        let r = client.get(edge.url(&key_uri)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert_eq!(r.headers()["cache-control"], "no-store, private");
        assert_eq!(r.bytes().await.unwrap().as_ref(), CONTENT_KEY);
    }
    assert_eq!(
        calls.keys.load(Ordering::SeqCst),
        1,
        "second key request served from cache"
    );
    // Manifest x2 and key x2 for (USER, VIDEO): one entitlement call, the rest cached.
    // (Plus one each for the stranger, the unknown and the not-ready video.)
    assert_eq!(calls.entitlements.load(Ordering::SeqCst), 4);

    let token = edge.token();
    let r = client
        .get(edge.url(&format!("/keys/{VIDEO}/revoked?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), error_code(r).await.as_str()),
        (410, "key_revoked")
    );
    let r = client
        .get(edge.url(&format!("/keys/{VIDEO}/nope?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), error_code(r).await.as_str()),
        (404, "not_found")
    );
    let stranger_token = edge.signer.mint(&playback::token::UrlTokenClaims {
        expires_at: now() + 600,
        acl: playback::token::video_acl(VIDEO),
        user_id: Some(STRANGER.into()),
    });
    let r = client
        .get(edge.url(&format!("/keys/{VIDEO}/key-1?token={stranger_token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), error_code(r).await.as_str()),
        (403, "not_entitled")
    );

    let r = client.get(edge.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let metrics = client
        .get(edge.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("edge_cache_total{cache=\"content_key\",result=\"hit\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edge_cache_total{cache=\"entitlement\",result=\"hit\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edge_denials_total{reason=\"key_revoked\"} 1"),
        "{metrics}"
    );
    scenarios_logs_clean(&edge);
}

fn scenarios_logs_clean(edge: &Edge) {
    let logs = edge.all_logs();
    assert!(!logs.contains("hmac="), "a token reached the logs");
    assert!(
        !logs.contains("0123456789abcdef"),
        "key bytes reached the logs"
    );
    assert!(
        logs.contains("\"userId\":\"user-42@example.com\""),
        "access log names the user"
    );
}
