//! The content-key lifecycle through the admin API: generate, rotate, retire, revoke, the key
//! list and the audit trail; edges refused retired keys; custody down → 503 with nothing
//! written; and (with Redis at `TEST_REDIS_URL`, default `redis://127.0.0.1:6379`) edges hearing
//! about a retirement or a revocation within a second.

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, TestDb};
use futures::StreamExt;
use rand::RngCore;
use redis::AsyncCommands;
use serde_json::{json, Value};
use uuid::Uuid;

async fn new_title(t: &TestApp) -> Uuid {
    common::new_title(&t.app.db).await
}

async fn post(t: &TestApp, path: &str, token: &str) -> (u16, Value) {
    send(t, reqwest::Method::POST, path, token).await
}

async fn get(t: &TestApp, path: &str, token: &str) -> (u16, Value) {
    send(t, reqwest::Method::GET, path, token).await
}

async fn send(t: &TestApp, method: reqwest::Method, path: &str, token: &str) -> (u16, Value) {
    let res = t
        .client
        .request(method, t.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn generate_rotate_retire_revoke_and_audit() {
    let t = TestApp::start(TestDb::sqlite().await, |_| {}).await;
    let video = new_title(&t).await;
    let admin = t.admin_token("root");
    let viewer = t.token("viewer");
    let edge = t.service_token();

    // Admin role required everywhere.
    for path in [
        format!("/admin/v1/videos/{video}/keys"),
        format!("/admin/v1/videos/{video}/keys/rotate"),
    ] {
        assert_eq!(post(&t, &path, &viewer).await.0, 403, "{path}");
    }
    assert_eq!(
        get(&t, &format!("/admin/v1/videos/{video}/keys"), &viewer)
            .await
            .0,
        403
    );
    assert_eq!(get(&t, "/admin/v1/audit/key-events", &viewer).await.0, 403);

    // Generate the first key; a second generate is a conflict.
    let (status, first) = post(&t, &format!("/admin/v1/videos/{video}/keys"), &admin).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["previousKeyId"], Value::Null);
    let k1 = first["keyId"].as_str().unwrap().to_string();
    let (status, body) = post(&t, &format!("/admin/v1/videos/{video}/keys"), &admin).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("key_state_conflict"))
    );
    let (status, body) = post(
        &t,
        &format!("/admin/v1/videos/{}/keys", Uuid::new_v4()),
        &admin,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        post(&t, "/admin/v1/videos/not-a-uuid/keys/rotate", &admin)
            .await
            .0,
        404
    );

    // Rotate: k2 current, k1 still served to edges.
    let (status, second) = post(&t, &format!("/admin/v1/videos/{video}/keys/rotate"), &admin).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["previousKeyId"], json!(k1));
    let k2 = second["keyId"].as_str().unwrap().to_string();
    let (status, list) = get(&t, &format!("/admin/v1/videos/{video}/keys"), &admin).await;
    assert_eq!(status, 200);
    let statuses: Vec<(&str, &str)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["keyId"].as_str().unwrap(), k["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        vec![(k1.as_str(), "active"), (k2.as_str(), "current")]
    );
    assert!(
        !list.to_string().contains("v1."),
        "no envelope in the list: {list}"
    );
    let (status, _) = get(&t, &format!("/internal/v1/videos/{video}/keys/{k1}"), &edge).await;
    assert_eq!(
        status, 200,
        "the previous key still serves after a rotation"
    );

    // Retire: never the current key; the old key then stops serving (410), idempotently.
    let (status, body) = post(
        &t,
        &format!("/admin/v1/videos/{video}/keys/{k2}/retire"),
        &admin,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("key_state_conflict"))
    );
    let (status, retired) = post(
        &t,
        &format!("/admin/v1/videos/{video}/keys/{k1}/retire"),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{retired}");
    assert_eq!(retired["alreadyRetired"], false);
    let (_, again) = post(
        &t,
        &format!("/admin/v1/videos/{video}/keys/{k1}/retire"),
        &admin,
    )
    .await;
    assert_eq!(again["alreadyRetired"], true);
    assert_eq!(again["retiredAt"], retired["retiredAt"]);
    let (status, _) = get(&t, &format!("/internal/v1/videos/{video}/keys/{k1}"), &edge).await;
    assert_eq!(status, 410, "a retired key is refused to edges");
    let (status, _) = post(
        &t,
        &format!("/admin/v1/videos/{video}/keys/{}/retire", Uuid::new_v4()),
        &admin,
    )
    .await;
    assert_eq!(status, 404);

    // Revoke the current key: edges refused at once.
    let (status, _) = post(
        &t,
        &format!("/admin/v1/videos/{video}/keys/{k2}/revoke"),
        &admin,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = get(&t, &format!("/internal/v1/videos/{video}/keys/{k2}"), &edge).await;
    assert_eq!(status, 410);

    // The audit trail: every operation, newest first, paged.
    let (status, page) = get(
        &t,
        &format!("/admin/v1/audit/key-events?videoId={video}&limit=100"),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let actions: Vec<(&str, &str, bool)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("revoke", "admin:root", true),
            ("retire", "admin:root", true),
            ("retire", "admin:root", true),
            ("unwrap", "edge", true),
            ("rotate", "admin:root", true),
            ("generate", "admin:root", true),
        ]
    );
    assert_eq!(page["nextCursor"], Value::Null);
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["backend"] == "local" && e["videoId"] == json!(video.to_string())));

    let (_, p1) = get(
        &t,
        &format!("/admin/v1/audit/key-events?videoId={video}&limit=4"),
        &admin,
    )
    .await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 4);
    let cursor = p1["nextCursor"].as_str().unwrap();
    let (_, p2) = get(
        &t,
        &format!("/admin/v1/audit/key-events?videoId={video}&limit=4&cursor={cursor}"),
        &admin,
    )
    .await;
    let p2_actions: Vec<&str> = p2["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(p2_actions, vec!["rotate", "generate"]);
    assert_eq!(p2["nextCursor"], Value::Null);

    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("cursor=%21%21", "invalid_cursor"),
        ("cursor=YWJj", "invalid_cursor"),
        ("limit=abc", "invalid_query"),
    ] {
        let (status, body) = get(&t, &format!("/admin/v1/audit/key-events?{query}"), &admin).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(code)),
            "{query}"
        );
    }
    let (status, body) = get(&t, "/admin/v1/audit/key-events?videoId=nope", &admin).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_video_id"))
    );
    let (status, all) = get(&t, "/admin/v1/audit/key-events", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(all["items"].as_array().unwrap().len(), 6);
}

/// A custody backend that is down: OpenBao on a port nobody listens on.
fn custody_down(c: &mut control_plane::config::Config, root: &std::path::Path) {
    let token = root.join("bao-token");
    std::fs::write(&token, "s.0123456789abcdef0123456789abcdef").unwrap();
    c.keys.backend = "openbao".into();
    c.keys.openbao.address = "http://127.0.0.1:1".into();
    c.keys.openbao.key = "content".into();
    c.keys.openbao.token_file = token;
    c.keys.openbao.connect_timeout_ms = 300;
    c.keys.openbao.request_timeout_ms = 300;
}

#[tokio::test]
async fn custody_down_is_503_naming_the_backend_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let t = TestApp::start(TestDb::sqlite().await, |c| custody_down(c, root.path())).await;
    let video = new_title(&t).await;
    let admin = t.admin_token("root");
    for path in [
        format!("/admin/v1/videos/{video}/keys"),
        format!("/admin/v1/videos/{video}/keys/rotate"),
    ] {
        let (status, body) = post(&t, &path, &admin).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("custody_unavailable")),
            "{path}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains("openbao"),
            "{body}"
        );
    }
    assert!(t.app.db.content_keys_for(video).await.unwrap().is_empty());
    assert_eq!(t.app.db.current_key_id(video).await.unwrap(), None);
    let trail = t
        .app
        .db
        .list_key_events(Some(video), None, 10)
        .await
        .unwrap();
    assert_eq!(trail.len(), 2, "failed custody calls are audited");
    assert!(trail.iter().all(|e| !e.ok && e.backend == "openbao"));
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn next_message(pubsub: &mut redis::aio::PubSub, within: Duration) -> Value {
    let msg = tokio::time::timeout(within, pubsub.on_message().next())
        .await
        .expect("no invalidation within the deadline")
        .expect("the subscription closed");
    let payload: String = msg.get_payload().unwrap();
    serde_json::from_str(&payload).unwrap()
}

#[tokio::test]
async fn edges_stop_retired_and_revoked_keys_within_a_second() {
    let mut bytes = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let prefix = format!("cp-test-{}:", hex::encode(bytes));
    let t = TestApp::start(TestDb::sqlite().await, |c| {
        c.redis.url = redis_url();
        c.redis.key_prefix = prefix.clone();
    })
    .await;
    let video = new_title(&t).await;
    let admin = t.admin_token("root");
    let edge = t.service_token();
    let (_, first) = post(&t, &format!("/admin/v1/videos/{video}/keys"), &admin).await;
    let k1 = first["keyId"].as_str().unwrap().to_string();
    let (_, second) = post(&t, &format!("/admin/v1/videos/{video}/keys/rotate"), &admin).await;
    let k2 = second["keyId"].as_str().unwrap().to_string();

    let client = redis::Client::open(redis_url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(format!("{prefix}invalidations"))
        .await
        .unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();

    for (key, action) in [(&k1, "retire"), (&k2, "revoke")] {
        // What an edge holds in L2 for this key.
        let wkey = format!("{prefix}l2:wkey:{video}:{key}");
        let _: () = conn.set(&wkey, "v1.cached").await.unwrap();
        let started = Instant::now();
        let (status, body) = post(
            &t,
            &format!("/admin/v1/videos/{video}/keys/{key}/{action}"),
            &admin,
        )
        .await;
        assert_eq!(status, 200, "{action}: {body}");
        assert_eq!(body["edgesNotified"], true, "{action}: {body}");
        let message = next_message(&mut pubsub, Duration::from_secs(1)).await;
        assert!(started.elapsed() < Duration::from_secs(1), "{action}");
        assert_eq!(
            message,
            json!({"kind": "key", "videoId": video.to_string(), "keyId": key})
        );
        let exists: bool = conn.exists(&wkey).await.unwrap();
        assert!(!exists, "{action}: the L2 copy is gone");
        // And a refetch through the control plane is refused.
        let (status, _) = get(
            &t,
            &format!("/internal/v1/videos/{video}/keys/{key}"),
            &edge,
        )
        .await;
        assert_eq!(status, 410, "{action}");
        assert!(started.elapsed() < Duration::from_secs(1), "{action}");
    }
}

#[tokio::test]
async fn import_seals_are_audited() {
    use control_plane::import::{import_title, ImportKey, ImportRequest, ImportTarget};
    use control_plane::keys::ContentKey;

    let t = TestApp::start(TestDb::sqlite().await, |_| {}).await;
    let packaged = tempfile::tempdir().unwrap();
    std::fs::write(
        packaged.path().join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nv/index.m3u8\n",
    )
    .unwrap();
    let key_id = Uuid::new_v4();
    let target = ImportTarget {
        db: &t.app.db,
        custody: t.app.custody.clone(),
        origin_dir: &t.config.storage.origin_dir,
        edge_base: t.config.edge_base(),
    };
    let imported = import_title(
        &target,
        ImportRequest {
            owner: "owner",
            dir: packaged.path(),
            name: "imported",
            drm: true,
            keys: vec![ImportKey {
                key_id,
                key: ContentKey::new([7u8; 16]),
            }],
        },
    )
    .await
    .unwrap();
    let video: Uuid = imported.video_id.parse().unwrap();
    let trail = t
        .app
        .db
        .list_key_events(Some(video), None, 10)
        .await
        .unwrap();
    assert_eq!(trail.len(), 1);
    let e = &trail[0];
    assert_eq!(
        (e.action.as_str(), e.actor.as_str(), e.key_id, e.ok),
        ("seal", "cli", Some(key_id), true)
    );
    assert!(
        !e.detail.as_deref().unwrap_or("").contains("0707"),
        "no key material"
    );
}

#[tokio::test]
async fn cli_rotate_and_retire_are_audited() {
    let t = TestApp::start(TestDb::sqlite().await, |_| {}).await;
    let video = new_title(&t).await;
    // The same configuration the app runs with, for the real binary.
    let c = &t.config;
    let config = t.dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            r#"[database]
url = "{}"
[storage]
uploads_dir = "{}"
origin_dir = "{}"
[jwt]
hs256_secret_file = "{}"
[keys]
master_key_file = "{}"
[internal]
service_token_file = "{}"
key_transport_key_file = "{}"
[signed_urls]
signing_key_file = "{}"
"#,
            c.database.url,
            c.storage.uploads_dir.display(),
            c.storage.origin_dir.display(),
            c.jwt.hs256_secret_file.display(),
            c.keys.master_key_file.display(),
            c.internal.service_token_file.display(),
            c.internal.key_transport_key_file.display(),
            c.signed_urls.signing_key_file.display(),
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_control-plane"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let v = video.to_string();
    let (ok, first, err) = run(&["rotate-key", "--video", &v]);
    assert!(ok, "{err}");
    let first: Value = serde_json::from_str(first.trim()).unwrap();
    assert_eq!(first["previousKeyId"], Value::Null);
    let (ok, second, err) = run(&["rotate-key", "--video", &v]);
    assert!(ok, "{err}");
    let second: Value = serde_json::from_str(second.trim()).unwrap();
    assert_eq!(second["previousKeyId"], first["keyId"]);
    let k1 = first["keyId"].as_str().unwrap();
    let (ok, retired, err) = run(&["retire-key", "--video", &v, "--key", k1]);
    assert!(ok, "{err}");
    let retired: Value = serde_json::from_str(retired.trim()).unwrap();
    assert_eq!(retired["alreadyRetired"], false);
    let k2 = second["keyId"].as_str().unwrap();
    let (ok, _, err) = run(&["retire-key", "--video", &v, "--key", k2]);
    assert!(!ok && err.contains("current key"), "{err}");

    let trail = t
        .app
        .db
        .list_key_events(Some(video), None, 10)
        .await
        .unwrap();
    let got: Vec<(&str, &str)> = trail
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![("retire", "cli"), ("rotate", "cli"), ("rotate", "cli")]
    );
}
