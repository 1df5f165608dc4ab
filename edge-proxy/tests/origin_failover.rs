//! Several HTTP origin servers behind the edge (`origin.urls`): round robin while both are
//! healthy; a server answering 503 (health check included) is taken out of rotation by the
//! background health check and brought back when it recovers; a server that dies between two
//! health checks costs no request an error, because a connect failure is retried on the other
//! server within the same request; with none healthy the edge still tries them (fail open) and
//! answers 502 `origin_unavailable` when they all fail.
//!
//! The origins answer `Cache-Control: no-store`, so every edge request reaches an origin (the
//! segment and playlist caches would otherwise hide which server answers).

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::scenarios;
use common::*;

/// One test origin server: files under `/media/`, a switch to answer 503 to everything, and
/// counts of media requests (health checks apart).
#[derive(Clone)]
struct TestOrigin {
    root: PathBuf,
    failing: Arc<AtomicBool>,
    media_requests: Arc<AtomicUsize>,
    health_checks: Arc<AtomicUsize>,
}

async fn serve(State(origin): State<TestOrigin>, uri: Uri) -> Response {
    let no_store = [("cache-control", "no-store")];
    if uri.path() == "/media/healthz" {
        origin.health_checks.fetch_add(1, Ordering::SeqCst);
    } else {
        origin.media_requests.fetch_add(1, Ordering::SeqCst);
    }
    if origin.failing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, no_store, "overloaded").into_response();
    }
    let Some(relative) = uri.path().strip_prefix("/media/") else {
        return (StatusCode::NOT_FOUND, no_store, "no").into_response();
    };
    if relative == "healthz" {
        return (StatusCode::OK, no_store, "ok").into_response();
    }
    if relative.contains("..") || relative.contains('%') {
        return (StatusCode::BAD_REQUEST, no_store, "refused").into_response();
    }
    match tokio::fs::read(origin.root.join(relative)).await {
        Ok(bytes) => (no_store, bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, no_store, "missing").into_response(),
    }
}

struct RunningOrigin {
    url: String,
    state: TestOrigin,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningOrigin {
    async fn start(root: PathBuf) -> RunningOrigin {
        let state = TestOrigin {
            root,
            failing: Arc::new(AtomicBool::new(false)),
            media_requests: Arc::new(AtomicUsize::new(0)),
            health_checks: Arc::new(AtomicUsize::new(0)),
        };
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/media", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap()
        });
        RunningOrigin {
            url,
            state,
            stop: Some(stop),
            task,
        }
    }

    fn media_requests(&self) -> usize {
        self.state.media_requests.load(Ordering::SeqCst)
    }

    fn health_checks(&self) -> usize {
        self.state.health_checks.load(Ordering::SeqCst)
    }

    fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// Stops listening and closes its (idle) connections: connecting now fails.
    async fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("origin stops")
            .unwrap();
    }
}

const INTERVAL_MS: u64 = 200;

fn edge_for(origins: &[&RunningOrigin], interval_ms: u64) -> Edge {
    Edge::start(OriginSetup::HttpServers {
        urls: origins.iter().map(|o| o.url.clone()).collect(),
        health_check_path: "/healthz".into(),
        health_check_interval_ms: interval_ms,
    })
}

/// Waits until `condition` holds (checked every 50 ms), for at most 10 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A segment and a media playlist through the edge: both 200 with the origin's bytes.
async fn fetch_both(edge: &Edge, media: &Media, client: &reqwest::Client) {
    let token = edge.token();
    let segment = client
        .get(edge.url(&format!("/hls/{VIDEO}/720p/seg_001.ts?hdnts={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(segment.status(), 200, "segment");
    assert_eq!(
        segment.bytes().await.unwrap().as_ref(),
        media.file("720p/seg_001.ts").as_slice()
    );
    let playlist = client
        .get(edge.url(&format!("/hls/{VIDEO}/720p/index.m3u8?hdnts={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(playlist.status(), 200, "playlist");
    let playlist = playlist.text().await.unwrap();
    assert!(
        playlist.contains(&format!("seg_000.ts?hdnts={token}")),
        "{playlist}"
    );
}

async fn ready(edge: &Edge) -> (u16, serde_json::Value) {
    let r = reqwest::get(edge.url("/ready")).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// /ready lists what is down; only the (absent) control plane may be.
async fn origin_is_ready(edge: &Edge) -> bool {
    let (_, body) = ready(edge).await;
    body["down"] == serde_json::json!(["control_plane"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_origin_is_skipped_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let a = RunningOrigin::start(media.root.clone()).await;
    let b = RunningOrigin::start(media.root.clone()).await;
    let edge = edge_for(&[&a, &b], INTERVAL_MS);
    let client = reqwest::Client::new();

    // Both healthy: requests are spread over both.
    eventually("health checks of both servers", || {
        a.health_checks() > 0 && b.health_checks() > 0
    })
    .await;
    assert!(origin_is_ready(&edge).await);
    for _ in 0..6 {
        fetch_both(&edge, &media, &client).await;
    }
    assert!(
        a.media_requests() >= 3 && b.media_requests() >= 3,
        "round robin: a {} b {}",
        a.media_requests(),
        b.media_requests()
    );

    // A answers 503 to everything: once a health check has seen it, it gets no more traffic,
    // and nothing the viewer asks fails meanwhile or after.
    a.set_failing(true);
    let checks = a.health_checks();
    eventually("a health check of the failing server", || {
        a.health_checks() >= checks + 2
    })
    .await;
    let a_before = a.media_requests();
    let b_before = b.media_requests();
    for _ in 0..8 {
        fetch_both(&edge, &media, &client).await;
    }
    assert_eq!(
        a.media_requests(),
        a_before,
        "the unhealthy server was skipped"
    );
    assert!(b.media_requests() >= b_before + 16);
    assert!(origin_is_ready(&edge).await, "one healthy server is enough");

    // A recovers: the health check brings it back into rotation.
    a.set_failing(false);
    let checks = a.health_checks();
    eventually("a health check of the recovered server", || {
        a.health_checks() >= checks + 2
    })
    .await;
    let a_before = a.media_requests();
    for _ in 0..6 {
        fetch_both(&edge, &media, &client).await;
    }
    assert!(
        a.media_requests() > a_before,
        "the recovered server serves again"
    );

    // Both failing: the edge still tries them (fail open), then answers 502, and /ready says
    // no origin server is healthy.
    a.set_failing(true);
    b.set_failing(true);
    let (a_checks, b_checks) = (a.health_checks(), b.health_checks());
    eventually("health checks of both failing servers", || {
        a.health_checks() >= a_checks + 2 && b.health_checks() >= b_checks + 2
    })
    .await;
    let a_before = a.media_requests();
    let token = edge.token();
    let r = client
        .get(edge.url(&format!("/hls/{VIDEO}/720p/seg_001.ts?hdnts={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "origin_unavailable");
    assert!(
        a.media_requests() > a_before,
        "fail open: the sick servers were still asked"
    );
    let (status, body) = ready(&edge).await;
    assert_eq!(status, 503);
    assert_eq!(
        body["down"],
        serde_json::json!(["origin", "control_plane"]),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("0 of 2 HTTP origin servers healthy"),
        "{body}"
    );
    scenarios::logs_hold_no_tokens(&edge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_origin_fails_over_within_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let mut a = RunningOrigin::start(media.root.clone()).await;
    let b = RunningOrigin::start(media.root.clone()).await;
    // Health checks so rare that none runs after the first: only the requests themselves
    // can find out that A died.
    let edge = edge_for(&[&a, &b], 600_000);
    eventually("the first health checks", || {
        a.health_checks() > 0 && b.health_checks() > 0
    })
    .await;
    assert!(origin_is_ready(&edge).await);
    let client = reqwest::Client::new();
    fetch_both(&edge, &media, &client).await;

    a.kill().await;
    let b_before = b.media_requests();
    for _ in 0..6 {
        fetch_both(&edge, &media, &client).await;
    }
    assert_eq!(
        b.media_requests(),
        b_before + 12,
        "every segment and playlist came from the live server, once each"
    );
    // The load balancer still believed A healthy, so requests were sent there first and
    // retried on B after the connect failure.
    let logs = edge.all_logs();
    assert!(
        logs.contains("Fail to proxy") && logs.contains("retry: true"),
        "no connect failure was retried:\n{logs}"
    );
    assert!(
        logs.contains("trying the next origin server"),
        "no playlist failover:\n{logs}"
    );
    scenarios::logs_hold_no_tokens(&edge);
}
