//! The edge with an HTTP origin (a small static file server started by the test): signed HLS
//! end to end, refusals, path safety, and what the origin actually gets asked.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::scenarios;
use common::*;

#[derive(Clone)]
struct StaticOrigin {
    root: PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
    /// Every `Cookie` and `Authorization` header value the origin received.
    credentials: Arc<Mutex<Vec<String>>>,
}

/// Serves `{root}/{path}` under `/media/`; records every request target and credential header.
async fn serve_file(
    State(origin): State<StaticOrigin>,
    uri: Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    origin.requests.lock().unwrap().push(uri.to_string());
    for name in ["cookie", "authorization"] {
        for value in headers.get_all(name) {
            let value = String::from_utf8_lossy(value.as_bytes()).to_string();
            origin
                .credentials
                .lock()
                .unwrap()
                .push(format!("{name}: {value}"));
        }
    }
    let Some(relative) = uri.path().strip_prefix("/media/") else {
        return (StatusCode::NOT_FOUND, "no").into_response();
    };
    if relative.is_empty() {
        return (StatusCode::OK, "origin").into_response();
    }
    if relative.contains("..") || relative.contains('%') {
        return (StatusCode::BAD_REQUEST, "refused").into_response();
    }
    match tokio::fs::read(origin.root.join(relative)).await {
        Ok(bytes) => ([("content-type", "application/octet-stream")], bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "missing").into_response(),
    }
}

type Recorded = Arc<Mutex<Vec<String>>>;

/// The origin's URL, the request targets it saw and the credential headers it received.
async fn start_origin(root: PathBuf) -> (String, Recorded, Recorded) {
    let requests = Recorded::default();
    let credentials = Recorded::default();
    let app = axum::Router::new()
        .fallback(serve_file)
        .with_state(StaticOrigin {
            root,
            requests: requests.clone(),
            credentials: credentials.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/media"), requests, credentials)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_origin() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let (origin_url, requests, credentials) = start_origin(media.root.clone()).await;
    // A playlist that names segments by the origin's absolute URL.
    std::fs::write(
        media.root.join(VIDEO).join("720p/absolute.m3u8"),
        format!("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\n{origin_url}/{VIDEO}/720p/seg_001.ts\n#EXT-X-ENDLIST\n"),
    )
    .unwrap();
    let edge = Edge::start(OriginSetup::Http(origin_url.clone()));

    scenarios::signed_hls_round_trip(&edge, &media).await;
    scenarios::refusals_and_ops(&edge).await;
    scenarios::path_attacks(&edge);
    scenarios::cors(&edge).await;

    let token = edge.token();
    let absolute =
        reqwest::get(edge.url(&format!("/hls/{VIDEO}/720p/absolute.m3u8?hdnts={token}")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    let uris = playlist_uris(&absolute);
    assert_eq!(uris.len(), 1, "{absolute}");
    assert!(
        uris[0].starts_with(&format!("/hls/{VIDEO}/720p/seg_001.ts?hdnts=")),
        "{absolute}"
    );
    let segment = reqwest::get(edge.url(&uris[0])).await.unwrap();
    assert_eq!(segment.status(), 200);
    assert_eq!(
        segment.bytes().await.unwrap().as_ref(),
        b"small segment bytes"
    );

    // Admitted by the query while two Cookie headers (and Authorization) carry tokens too:
    // none of them reaches the origin.
    std::fs::write(media.root.join(VIDEO).join("720p/probe.ts"), b"probe").unwrap();
    let probe = edge.raw_get_with(
        &format!("/hls/{VIDEO}/720p/probe.ts?hdnts={token}"),
        &format!(
            "Cookie: a=1\r\nCookie: hdnts={token}; CloudFront-Policy=p\r\nCookie: hdnts={token}\r\n\
             Authorization: Bearer viewer-jwt\r\n"
        ),
    );
    assert_eq!(probe.status, 200, "{}", probe.head);
    assert_eq!(probe.body, b"probe");
    let received = credentials.lock().unwrap().clone();
    assert!(
        received.is_empty(),
        "credentials reached the origin: {received:?}"
    );

    // The origin saw plain paths under /media/{VIDEO}/, never a token or a traversal.
    let seen = requests.lock().unwrap().clone();
    assert!(
        seen.iter().any(|r| r.ends_with("/720p/seg_000.ts")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|r| r.ends_with("/720p/seg_001.ts?part=1")),
        "{seen:#?}"
    );
    for target in &seen {
        assert!(
            !target.contains("token") && !target.contains("hdnts"),
            "token forwarded: {target}"
        );
        assert!(!target.contains(".."), "traversal forwarded: {target}");
        assert!(
            !target.to_ascii_lowercase().contains("%2e"),
            "traversal forwarded: {target}"
        );
        assert!(
            !target.contains("secret"),
            "outside file requested: {target}"
        );
        assert!(
            *target == "/media/" || target.starts_with(&format!("/media/{VIDEO}/")),
            "unexpected origin request {target}"
        );
    }

    scenarios::logs_hold_no_tokens(&edge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_origin_down() {
    let edge = Edge::start(OriginSetup::Http(format!(
        "http://127.0.0.1:{}/media",
        free_port()
    )));
    let token = edge.token();
    for file in ["master.m3u8", "720p/seg_000.ts"] {
        let r = reqwest::get(edge.url(&format!("/hls/{VIDEO}/{file}?hdnts={token}")))
            .await
            .unwrap();
        assert_eq!(r.status(), 502, "{file}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "origin_unavailable", "{file}");
    }
    let r = reqwest::get(edge.url("/ready")).await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["down"],
        serde_json::json!(["origin", "control_plane"]),
        "{body}"
    );
}
