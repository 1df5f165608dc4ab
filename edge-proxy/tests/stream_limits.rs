//! The concurrent-stream limit holds in every mode, for sessions opened the way a player opens
//! them: manifest (viewer JWT), master playlist (manifest token), media playlist and a segment
//! (session token), then the AES-128 key. The stub control plane gives the viewer a tier of 3
//! streams. Modes: no Redis; Redis; Redis configured but unreachable (an outage from the
//! start); and two edges sharing Redis.

mod common;

use common::control_plane::start_control_plane;
use common::{free_port, playlist_uris, Edge, EdgeOptions, Media, OriginSetup, VIDEO};
use serde_json::Value;

/// The stub's default tier for a user it does not single out.
const MAX_STREAMS: usize = 3;
const VIEWER: &str = "pro-viewer@example.com";

struct Session {
    id: String,
    /// The media playlist's URI, with the session token.
    media_uri: String,
    /// The key URI of the title's media playlist, with the session token.
    key_uri: String,
}

/// Opens a session like a player and stops before the key: manifest, master, media playlist,
/// first segment. None of these is refused, whatever the number of streams open.
async fn open_session(edge: &Edge, http: &reqwest::Client, jwt: &str) -> Session {
    let manifest = http
        .get(edge.url(&format!("/playback/{VIDEO}/manifest")))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), 200);
    let manifest: Value = manifest.json().await.unwrap();
    let id = manifest["sessionId"].as_str().unwrap().to_string();
    let master = http
        .get(manifest["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(master.status(), 200);
    let master = master.text().await.unwrap();
    let media_uri = playlist_uris(&master)[0].clone();
    let media = http.get(edge.url(&media_uri)).send().await.unwrap();
    assert_eq!(media.status(), 200);
    let media = media.text().await.unwrap();
    let uris = playlist_uris(&media);
    let key_uri = uris
        .iter()
        .find(|u| u.starts_with(&format!("/keys/{VIDEO}/")))
        .expect("the media playlist names the edge's key endpoint")
        .clone();
    let segment = uris.iter().find(|u| u.contains(".ts")).unwrap();
    let segment = http.get(edge.url(segment)).send().await.unwrap();
    assert_eq!(segment.status(), 200, "segments play without a slot check");
    Session {
        id,
        media_uri,
        key_uri,
    }
}

async fn key(edge: &Edge, http: &reqwest::Client, session: &Session) -> (u16, String) {
    let response = http.get(edge.url(&session.key_uri)).send().await.unwrap();
    let status = response.status().as_u16();
    let code = match status {
        200 => String::new(),
        _ => {
            let body: Value = response.json().await.unwrap();
            body["error"].as_str().unwrap_or_default().to_string()
        }
    };
    (status, code)
}

async fn stop(edge: &Edge, http: &reqwest::Client, jwt: &str, session: &Session) {
    let stopped = http
        .delete(edge.url(&format!("/drm/streams/{}", session.id)))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 204);
}

/// `edges[0]` opens the tier's streams; every further session, opened on any edge of `edges`
/// (a playlist and a segment fetched first), is refused its key with 429 `stream_limit`; a
/// stopped stream frees exactly one slot.
async fn the_limit_holds(mode: &str, edges: &[&Edge]) {
    let http = reqwest::Client::new();
    let jwt = edges[0].jwt(VIEWER);
    let mut open = Vec::new();
    for _ in 0..MAX_STREAMS {
        let session = open_session(edges[0], &http, &jwt).await;
        assert_eq!(
            key(edges[0], &http, &session).await,
            (200, String::new()),
            "{mode}"
        );
        open.push(session);
    }
    let mut refused = Vec::new();
    for attempt in 0..4 {
        let edge = edges[attempt % edges.len()];
        let session = open_session(edge, &http, &jwt).await;
        assert_eq!(
            key(edge, &http, &session).await,
            (429, "stream_limit".to_string()),
            "{mode}: session {} beyond the tier's {MAX_STREAMS}",
            MAX_STREAMS + attempt + 1
        );
        // Asking again, after fetching the playlist once more, changes nothing.
        let media = http.get(edge.url(&session.media_uri)).send().await.unwrap();
        assert_eq!(media.status(), 200);
        assert_eq!(key(edge, &http, &session).await.0, 429, "{mode}");
        refused.push(session);
    }
    // Open streams keep their keys.
    for session in &open {
        assert_eq!(key(edges[0], &http, session).await.0, 200, "{mode}");
    }
    stop(edges[0], &http, &jwt, &open[0]).await;
    let last = edges.len() - 1;
    assert_eq!(
        key(edges[last], &http, &refused[0]).await.0,
        200,
        "{mode}: a freed slot"
    );
    assert_eq!(
        key(edges[last], &http, &refused[1]).await,
        (429, "stream_limit".to_string()),
        "{mode}: only one slot was freed"
    );
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn options(redis: Option<(&str, &str)>) -> EdgeOptions {
    let extra = match redis {
        Some((url, prefix)) => {
            format!("[redis]\nurl = {url:?}\nkey_prefix = {prefix:?}\ntimeout_ms = 300\n")
        }
        None => String::new(),
    };
    EdgeOptions {
        drm: "stream_timeout_secs = 120\n".into(),
        extra,
        ..EdgeOptions::default()
    }
}

#[tokio::test]
async fn the_stream_limit_holds_with_and_without_redis() {
    let media = tempfile::tempdir().unwrap();
    Media::create(media.path());
    let (control_plane, _calls) = start_control_plane().await;
    let origin = || OriginSetup::Directory(media.path());

    let alone = Edge::start_opts(origin(), &control_plane, &options(None));
    the_limit_holds("no redis", &[&alone]).await;

    let prefix = format!("stream-limits-{}:", uuid::Uuid::new_v4().simple());
    let url = redis_url();
    let shared = Edge::start_opts(origin(), &control_plane, &options(Some((&url, &prefix))));
    the_limit_holds("redis", &[&shared]).await;

    let dead = format!("redis://127.0.0.1:{}", free_port());
    let outage = Edge::start_opts(origin(), &control_plane, &options(Some((&dead, "down:"))));
    the_limit_holds("redis unreachable", &[&outage]).await;

    let prefix = format!("stream-limits-{}:", uuid::Uuid::new_v4().simple());
    let a = Edge::start_opts(origin(), &control_plane, &options(Some((&url, &prefix))));
    let b = Edge::start_opts(origin(), &control_plane, &options(Some((&url, &prefix))));
    the_limit_holds("two edges, one redis", &[&a, &b]).await;
}
