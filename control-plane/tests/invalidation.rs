//! Invalidations through a real Redis (`TEST_REDIS_URL`, default `redis://127.0.0.1:6379`), as
//! an edge sees them: a key revocation or a subscription change through the admin API deletes
//! the L2 entries and is received on `{prefix}invalidations` within a second. Each test uses its
//! own random key prefix. A Redis outage never fails the change.

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, TestDb};
use futures::StreamExt;
use rand::RngCore;
use redis::AsyncCommands;
use serde_json::{json, Value};

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn random_prefix() -> String {
    let mut bytes = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("cp-test-{}:", hex::encode(bytes))
}

/// A ready title with one key, straight in the database.
async fn title_with_key(t: &TestApp) -> (uuid::Uuid, uuid::Uuid) {
    let db = &t.app.db;
    let now = control_plane::db::now();
    let video = common::new_title(db).await;
    let key = uuid::Uuid::new_v4();
    db.insert_content_key(key, video, "v1.wrapped", now)
        .await
        .unwrap();
    (video, key)
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
async fn edges_hear_revocations_and_subscription_changes_within_a_second() {
    let prefix = random_prefix();
    let t = TestApp::start(TestDb::sqlite().await, |c| {
        c.redis.url = redis_url();
        c.redis.key_prefix = prefix.clone();
    })
    .await;
    let (video, key) = title_with_key(&t).await;
    let other_key = uuid::Uuid::new_v4();

    let client = redis::Client::open(redis_url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(format!("{prefix}invalidations"))
        .await
        .unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // What an edge would have cached in L2.
    let wkey = format!("{prefix}l2:wkey:{video}:{key}");
    let untouched = format!("{prefix}l2:wkey:{video}:{other_key}");
    let ent = format!("{prefix}l2:ent:viewer");
    let _: () = conn.set(&wkey, "v1.cached").await.unwrap();
    let _: () = conn.set(&untouched, "v1.cached").await.unwrap();
    let _: () = conn
        .hset(&ent, video.to_string(), "{\"allowed\":true}")
        .await
        .unwrap();

    let admin = t.admin_token("root");
    let started = Instant::now();
    let res = t
        .client
        .post(t.url(&format!("/admin/v1/videos/{video}/keys/{key}/revoke")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["edgesNotified"], true, "{body}");
    let message = next_message(&mut pubsub, Duration::from_secs(1)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        message,
        json!({"kind": "key", "videoId": video.to_string(), "keyId": key.to_string()})
    );
    let exists: bool = conn.exists(&wkey).await.unwrap();
    assert!(!exists, "the L2 wrapped key is deleted before the publish");
    let exists: bool = conn.exists(&untouched).await.unwrap();
    assert!(exists, "other keys stay cached");

    let started = Instant::now();
    let res = t
        .client
        .put(t.url("/admin/v1/users/viewer/subscription"))
        .bearer_auth(&admin)
        .json(&json!({"tier": "pro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["edgesNotified"], true, "{body}");
    let message = next_message(&mut pubsub, Duration::from_secs(1)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        message,
        json!({"kind": "entitlement", "userId": "viewer", "videoId": null})
    );
    let exists: bool = conn.exists(&ent).await.unwrap();
    assert!(!exists, "every cached decision of the user is deleted");

    let _: () = conn.del(&untouched).await.unwrap();
}

#[tokio::test]
async fn a_redis_outage_never_fails_the_change() {
    // Port 1 refuses connections on loopback.
    let t = TestApp::start(TestDb::sqlite().await, |c| {
        c.redis.url = "redis://127.0.0.1:1".into();
        c.redis.key_prefix = random_prefix();
        c.redis.timeout_ms = 300;
    })
    .await;
    let (video, key) = title_with_key(&t).await;
    let admin = t.admin_token("root");
    let started = Instant::now();
    let res = t
        .client
        .post(t.url(&format!("/admin/v1/videos/{video}/keys/{key}/revoke")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (&body["edgesNotified"], &body["alreadyRevoked"]),
        (&json!(false), &json!(false))
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let stored = t.app.db.content_key(video, key).await.unwrap().unwrap();
    assert!(stored.revoked_at.is_some(), "the revocation is stored");

    let res = t
        .client
        .put(t.url("/admin/v1/users/viewer/subscription"))
        .bearer_auth(&admin)
        .json(&json!({"tier": "enterprise"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["edgesNotified"], false);
    let tier = t
        .app
        .db
        .active_tier("viewer", control_plane::db::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tier.name, "enterprise");
}
