//! The edge against a stub control plane that speaks the internal API contract: manifests,
//! entitlement outcomes and their caching, and the AES-128 key endpoint.

mod common;

use std::sync::atomic::Ordering;

use common::control_plane::*;
use common::*;

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
        url.starts_with(&format!("{}/hls/{VIDEO}/master.m3u8?hdnts=", edge.base)),
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
        .get(edge.url(&format!("/keys/{VIDEO}/revoked?hdnts={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), error_code(r).await.as_str()),
        (410, "key_revoked")
    );
    let r = client
        .get(edge.url(&format!("/keys/{VIDEO}/nope?hdnts={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), error_code(r).await.as_str()),
        (404, "not_found")
    );
    let stranger_token = edge.session_token_for(VIDEO, STRANGER, now() + 600);
    let r = client
        .get(edge.url(&format!("/keys/{VIDEO}/key-1?hdnts={stranger_token}")))
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
