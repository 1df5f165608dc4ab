//! Two edges sharing one Redis (a private `redis-server` this test can stop): concurrent
//! streams and the rate limit hold across edges, L2 spares the control plane, a key
//! invalidation reaches both edges within a second, events land in a Redis Stream a consumer
//! group can read, and with Redis stopped mid-test warm sessions keep playing with no 5xx while
//! `/ready` and `/metrics` say Redis is down.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::control_plane::{start_control_plane, Calls, ONE_STREAM_USER, UUID_KEY_ID};
use common::{free_port, Edge, EdgeOptions, Media, OriginSetup, USER, VIDEO};
use playback::license::clearkey::KeyId;
use serde_json::{json, Value};

/// A redis-server of this test's own, so it can be stopped and started again.
struct Redis {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let mut redis = Redis {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        redis.resume();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/lib.sh ensure_redis installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Pair {
    a: Edge,
    b: Edge,
    calls: Calls,
    redis: Redis,
    prefix: String,
    http: reqwest::Client,
    _media: tempfile::TempDir,
}

async fn pair(rate_limit: u32) -> Pair {
    let redis = Redis::start();
    let media = tempfile::tempdir().unwrap();
    Media::create(media.path());
    let (control_plane, calls) = start_control_plane().await;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("drm-shared-{nanos}:");
    let options = EdgeOptions {
        drm: format!("rate_limit_per_sec = {rate_limit}\nstream_timeout_secs = 60\n"),
        extra: format!(
            "[redis]\nurl = {:?}\nkey_prefix = {prefix:?}\ntimeout_ms = 300\n\n[cache]\nentitlement_ttl_secs = 300\n",
            redis.url()
        ),
        ..EdgeOptions::default()
    };
    let a = Edge::start_opts(
        OriginSetup::Directory(media.path()),
        &control_plane,
        &options,
    );
    let b = Edge::start_opts(
        OriginSetup::Directory(media.path()),
        &control_plane,
        &options,
    );
    Pair {
        a,
        b,
        calls,
        redis,
        prefix,
        http: reqwest::Client::new(),
        _media: media,
    }
}

fn body() -> String {
    json!({"kids": [KeyId::from_uuid(UUID_KEY_ID).unwrap().to_base64url()]}).to_string()
}

impl Pair {
    async fn clearkey(&self, edge: &Edge, user: &str, session: &str) -> reqwest::Response {
        self.http
            .post(edge.url(&format!("/drm/clearkey/{VIDEO}")))
            .bearer_auth(edge.jwt(user))
            .header("x-playback-session-id", session)
            .body(body())
            .send()
            .await
            .unwrap()
    }

    async fn status(&self, edge: &Edge, user: &str, session: &str) -> u16 {
        self.clearkey(edge, user, session).await.status().as_u16()
    }

    async fn code(&self, edge: &Edge, user: &str, session: &str) -> (u16, String) {
        let response = self.clearkey(edge, user, session).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or_default();
        (status, body["error"].as_str().unwrap_or("").to_string())
    }
}

#[tokio::test]
async fn streams_and_rate_hold_across_edges() {
    let p = pair(10).await;
    // One stream for this user across both edges.
    assert_eq!(p.status(&p.a, ONE_STREAM_USER, "phone").await, 200);
    let (status, code) = p.code(&p.b, ONE_STREAM_USER, "tv").await;
    assert_eq!((status, code.as_str()), (429, "stream_limit"));
    assert_eq!(
        p.status(&p.b, ONE_STREAM_USER, "phone").await,
        200,
        "same stream, other edge"
    );
    let stop = p
        .http
        .delete(p.b.url("/drm/streams/phone"))
        .bearer_auth(p.b.jwt(ONE_STREAM_USER))
        .send()
        .await
        .unwrap();
    assert_eq!(stop.status(), 204);
    assert_eq!(p.status(&p.b, ONE_STREAM_USER, "tv").await, 200);

    // 10 requests per second per user, counted across both edges: start at the top of a
    // second and alternate edges; each edge alone would have allowed 10.
    let mut ok = 0;
    for attempt in 0..3 {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_millis();
        tokio::time::sleep(Duration::from_millis(u64::from(1000 - millis) + 5)).await;
        let started = Instant::now();
        ok = 0;
        for i in 0..30 {
            let edge = if i % 2 == 0 { &p.a } else { &p.b };
            match p.code(edge, USER, "s-1").await {
                (200, _) => ok += 1,
                (429, code) => assert_eq!(code, "rate_limited"),
                other => panic!("unexpected {other:?}"),
            }
        }
        if started.elapsed() < Duration::from_millis(900) {
            break;
        }
        assert!(
            attempt < 2,
            "30 requests never fit in one second on this machine"
        );
    }
    assert_eq!(ok, 10, "the shared limit counts both edges");
}

#[tokio::test]
async fn shared_caches_invalidation_events_and_redis_outage() {
    let mut p = pair(1000).await;
    // A fills L1 and L2; B gets the wrapped key and the entitlement from L2.
    assert_eq!(p.status(&p.a, USER, "s-1").await, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (keys, entitlements) = (
        p.calls.keys.load(Ordering::SeqCst),
        p.calls.entitlements.load(Ordering::SeqCst),
    );
    assert_eq!(p.status(&p.b, USER, "s-1").await, 200);
    assert_eq!(
        p.calls.keys.load(Ordering::SeqCst),
        keys,
        "B unwrapped the L2 key"
    );
    assert_eq!(
        p.calls.entitlements.load(Ordering::SeqCst),
        entitlements,
        "B used the L2 entitlement"
    );
    let mut redis = p.redis.connection().await;
    let wrapped: Option<String> = redis::cmd("GET")
        .arg(format!("{}l2:wkey:{VIDEO}:{UUID_KEY_ID}", p.prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    let wrapped = wrapped.expect("the wrapped key is in L2");
    assert!(
        wrapped.starts_with("v1."),
        "only the wrapped form reaches Redis"
    );

    // Events: a consumer group reads LicenseIssued from the stream.
    let stream = format!("{}events", p.prefix);
    let () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("analytics")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut redis)
        .await
        .unwrap();
    let read: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("analytics")
        .arg("test-consumer")
        .arg("COUNT")
        .arg(100)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut redis)
        .await
        .unwrap();
    let text = format!("{read:?}");
    assert!(text.contains("LicenseIssued"), "{text}");

    // The control plane revokes the key: it drops L2 and announces it; both edges refuse
    // within a second although A holds the answer in L1.
    p.calls
        .revoked_keys
        .lock()
        .unwrap()
        .insert(UUID_KEY_ID.into());
    let () = redis::cmd("DEL")
        .arg(format!("{}l2:wkey:{VIDEO}:{UUID_KEY_ID}", p.prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    let message = json!({"kind": "key", "videoId": VIDEO, "keyId": UUID_KEY_ID}).to_string();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg(format!("{}invalidations", p.prefix))
        .arg(message)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(receivers >= 2, "both edges follow the channel");
    let announced = Instant::now();
    for edge in [&p.a, &p.b] {
        loop {
            let (status, code) = p.code(edge, USER, "s-1").await;
            if status == 410 {
                assert_eq!(code, "key_revoked");
                break;
            }
            assert!(
                announced.elapsed() < Duration::from_secs(1),
                "still {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    p.calls.revoked_keys.lock().unwrap().clear();
    let message = json!({"kind": "key", "videoId": VIDEO, "keyId": UUID_KEY_ID}).to_string();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{}invalidations", p.prefix))
        .arg(message)
        .query_async(&mut redis)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(p.status(&p.a, USER, "s-1").await, 200);
    assert_eq!(p.status(&p.b, USER, "s-1").await, 200);

    // Redis stops mid-playback: warm sessions keep playing on both edges, never a 5xx.
    drop(redis);
    p.redis.stop();
    let stopped = Instant::now();
    let mut statuses = Vec::new();
    while stopped.elapsed() < Duration::from_secs(3) {
        for edge in [&p.a, &p.b] {
            statuses.push(p.status(edge, USER, "s-1").await);
        }
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for edge in [&p.a, &p.b] {
        let ready: Value = p
            .http
            .get(edge.url("/ready"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["redis"], "down", "{ready}");
        assert_eq!(ready["status"], "degraded", "{ready}");
        let metrics = p
            .http
            .get(edge.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("edge_redis_up 0"), "{metrics}");
    }
    // A new viewer is served from the control plane, with per-edge limits.
    let fresh = p.status(&p.b, "someone-new@example.com", "n-1").await;
    assert_eq!(fresh, 200);

    // Redis comes back: the edges notice and report it.
    p.redis.resume();
    let back = Instant::now();
    loop {
        let ready: Value = p
            .http
            .get(p.a.url("/ready"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ready["redis"] == "up" {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(10), "{ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(p.status(&p.a, USER, "s-1").await, 200);
}
