//! HTTP API tests against an in-process control plane (axum on 127.0.0.1:0, reqwest).

mod common;

use std::time::Duration;

use common::{test_video, TestApp, TestDb};
use control_plane::db::files::{ImportedTitle, NewFile};
use control_plane::db::now;
use control_plane::db::users::TierName;
use playback::keywrap::{self, KeyBinding, Purpose};
use playback::token::edgeauth::{EdgeAuth, EdgeAuthConfig, RequestFacts};
use playback::token::hls_master_path;
use playback::token::session::SessionSigner;
use serde_json::{json, Value};

async fn sqlite_app() -> TestApp {
    TestApp::start(TestDb::sqlite().await, |_| {}).await
}

async fn json_of(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| m.len() > 10),
        "{body}"
    );
}

#[tokio::test]
async fn health_ready_and_fallbacks() {
    let t = sqlite_app().await;
    let res = t.client.get(t.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = t.client.get(t.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(res).await["database"], "sqlite");
    let res = t.client.get(t.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_error(&json_of(res).await, "not_found");
    let res = t.client.delete(t.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_error(&json_of(res).await, "method_not_allowed");
}

#[tokio::test]
async fn jwt_is_required_and_checked() {
    let t = sqlite_app().await;
    let path = t.url("/media/transcode/6f1c7a8e-3b9f-4d3a-9c59-1f7f1d2f0a11");
    let res = t.client.get(&path).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_error(&json_of(res).await, "missing_token");

    let mut claims = t.claims("alice");
    let forged = playback::jwt::mint_hs256(b"another secret that is 32 bytes!", &claims);
    let res = t
        .client
        .get(&path)
        .bearer_auth(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_error(&json_of(res).await, "bad_signature");

    claims.exp = 1_000;
    let res = t
        .client
        .get(&path)
        .bearer_auth(t.mint(&claims))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_error(&json_of(res).await, "expired");

    let mut claims = t.claims("alice");
    claims.aud = "someone-else".into();
    let res = t
        .client
        .get(&path)
        .bearer_auth(t.mint(&claims))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_error(&json_of(res).await, "wrong_audience");

    let res = t
        .client
        .get(&path)
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // A valid token creates the user.
    let res = t
        .client
        .get(&path)
        .bearer_auth(t.token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(t.app.db.user_exists("alice").await.unwrap());
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_message() {
    let t = sqlite_app().await;
    let res = t
        .client
        .post(t.url("/media/transcode"))
        .bearer_auth(t.token("alice"))
        .header("content-type", "application/json")
        .body("{\"fileId\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body = json_of(res).await;
    assert_error(&body, "invalid_json");
    assert!(body["message"].as_str().unwrap().contains("not valid JSON"));

    let res = t
        .client
        .post(t.url("/media/transcode"))
        .bearer_auth(t.token("alice"))
        .json(&json!({"enableDrm": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body = json_of(res).await;
    assert_error(&body, "invalid_request");
    assert!(
        body["message"].as_str().unwrap().contains("fileId"),
        "{body}"
    );

    let res = t
        .client
        .post(t.url("/media/transcode"))
        .bearer_auth(t.token("alice"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert_error(&json_of(res).await, "unsupported_media_type");
}

#[tokio::test]
async fn oversized_uploads_are_refused_and_removed() {
    let t = TestApp::start(TestDb::sqlite().await, |c| {
        c.storage.max_upload_bytes = 64 * 1024
    })
    .await;
    let uploads = t.config.storage.uploads_dir.clone();
    let count = || std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);

    // Declared length far over the limit: refused before reading.
    let part = reqwest::multipart::Part::bytes(vec![0u8; 512 * 1024]).file_name("big.mp4");
    let res = t
        .client
        .post(t.url("/files/upload"))
        .bearer_auth(t.token("alice"))
        .multipart(reqwest::multipart::Form::new().part("files", part))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_error(&json_of(res).await, "payload_too_large");

    // Streamed (no length): refused part-way, partial file deleted.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..8).map(|_| Ok(vec![1u8; 16 * 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let part = reqwest::multipart::Part::stream(body).file_name("big.mp4");
    let res = t
        .client
        .post(t.url("/files/upload"))
        .bearer_auth(t.token("alice"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_error(&json_of(res).await, "payload_too_large");
    assert_eq!(count(), 0, "partial uploads are deleted");

    // Under the limit: stored, 201.
    let part = reqwest::multipart::Part::bytes(vec![7u8; 1000]).file_name("../small.mp4");
    let res = t
        .client
        .post(t.url("/files/upload"))
        .bearer_auth(t.token("alice"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body = json_of(res).await;
    let f = &body["files"][0];
    assert_eq!(
        (
            f["name"].as_str(),
            f["sizeBytes"].as_i64(),
            f["mimeType"].as_str()
        ),
        (Some("small.mp4"), Some(1000), Some("video/mp4"))
    );
    assert_eq!(count(), 1);

    // No file field.
    let res = t
        .client
        .post(t.url("/files/upload"))
        .bearer_auth(t.token("alice"))
        .multipart(reqwest::multipart::Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_error(&json_of(res).await, "no_file");
}

#[tokio::test]
async fn drm_needs_a_paid_tier() {
    let t = sqlite_app().await;
    let file = t.upload("alice", "a.mp4", vec![0u8; 100]).await;
    let start = |drm: bool| {
        t.client
            .post(t.url("/media/transcode"))
            .bearer_auth(t.token("alice"))
            .json(&json!({"fileId": file, "enableDrm": drm}))
            .send()
    };
    let res = start(true).await.unwrap();
    assert_eq!(res.status(), 403);
    let body = json_of(res).await;
    assert_error(&body, "tier_required");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("Pro or Enterprise"));

    t.app
        .db
        .subscribe("alice", TierName::Free, now())
        .await
        .unwrap();
    let res = start(true).await.unwrap();
    assert_eq!(res.status(), 403);
    let body = json_of(res).await;
    assert_error(&body, "tier_required");
    assert!(
        body["message"].as_str().unwrap().contains("free tier"),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_and_foreign_files() {
    let t = sqlite_app().await;
    let alice = t.token("alice");
    let unknown = "6f1c7a8e-3b9f-4d3a-9c59-1f7f1d2f0a11";
    for path in [
        format!("/media/transcode/{unknown}"),
        format!("/media/{unknown}/manifest"),
        "/media/transcode/not-a-uuid".into(),
        "/media/%20/manifest".into(),
    ] {
        let res = t
            .client
            .get(t.url(&path))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert_error(&json_of(res).await, "not_found");
    }
    for id in [unknown, "nope"] {
        let res = t
            .client
            .post(t.url("/media/transcode"))
            .bearer_auth(&alice)
            .json(&json!({"fileId": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }

    let file = t.upload("alice", "a.mp4", vec![0u8; 100]).await;
    // A stranger learns nothing.
    let res = t
        .client
        .post(t.url("/media/transcode"))
        .bearer_auth(t.token("mallory"))
        .json(&json!({"fileId": file}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = t
        .client
        .get(t.url(&format!("/media/transcode/{file}")))
        .bearer_auth(t.token("mallory"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = t
        .client
        .get(t.url(&format!("/media/{file}/manifest")))
        .bearer_auth(t.token("mallory"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_error(&json_of(res).await, "not_entitled");

    // An organization member may look but not transcode.
    let db = &t.app.db;
    let org = db.create_organization("acme", now()).await.unwrap();
    db.upsert_user("bob", None, now()).await.unwrap();
    db.add_organization_member(org, "bob", "member")
        .await
        .unwrap();
    db.share_file(file.parse().unwrap(), Some(org), None)
        .await
        .unwrap();
    let res = t
        .client
        .post(t.url("/media/transcode"))
        .bearer_auth(t.token("bob"))
        .json(&json!({"fileId": file}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_error(&json_of(res).await, "not_owner");
    let res = t
        .client
        .get(t.url(&format!("/media/transcode/{file}")))
        .bearer_auth(t.token("bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(
        (body["status"].as_str(), body["hlsManifestUrl"].as_null()),
        (Some("pending"), Some(()))
    );
    // Not transcoded yet.
    let res = t
        .client
        .get(t.url(&format!("/media/{file}/manifest")))
        .bearer_auth(t.token("bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_error(&json_of(res).await, "not_ready");
}

#[tokio::test]
async fn internal_api_needs_the_service_token() {
    let t = sqlite_app().await;
    let file = t.upload("alice", "a.mp4", vec![0u8; 100]).await;
    let ent = t.url(&format!("/internal/v1/entitlements/{file}?userId=alice"));
    let key = t.url(&format!(
        "/internal/v1/videos/{file}/keys/6f1c7a8e-3b9f-4d3a-9c59-1f7f1d2f0a11"
    ));
    for url in [&ent, &key] {
        let res = t.client.get(url).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert_error(&json_of(res).await, "unauthorized");
        let res = t
            .client
            .get(url)
            .bearer_auth(t.token("alice"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "a viewer JWT is not the service token");
    }
    let svc = t.service_token();
    let res = t.client.get(&ent).bearer_auth(&svc).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(
        body,
        json!({"videoId": file, "userId": "alice", "allowed": false, "reason": "not_ready", "drmProtected": false, "ready": false,
               "tier": "free", "maxConcurrentStreams": 1, "licenseDurationSecs": 3600, "licenseType": "rental"})
    );
    let res = t
        .client
        .get(t.url(&format!("/internal/v1/entitlements/{file}?userId=mallory")))
        .bearer_auth(&svc)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(res).await["reason"], "not_entitled");
    let res = t
        .client
        .get(t.url("/internal/v1/entitlements/nope?userId=alice"))
        .bearer_auth(&svc)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = t
        .client
        .get(t.url("/internal/v1/entitlements/6f1c7a8e-3b9f-4d3a-9c59-1f7f1d2f0a11?userId=a"))
        .bearer_auth(&svc)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_error(&json_of(res).await, "not_found");
    let res = t.client.get(&key).bearer_auth(&svc).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn monitor_jobs_is_admin_only() {
    let t = sqlite_app().await;
    let res = t
        .client
        .post(t.url("/media/monitor-jobs"))
        .bearer_auth(t.token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_error(&json_of(res).await, "admin_required");
    let res = t
        .client
        .post(t.url("/media/monitor-jobs"))
        .bearer_auth(t.admin_token("root"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(
        (body["requeued"].as_u64(), body["failed"].as_u64()),
        (Some(0), Some(0)),
        "{body}"
    );
}

#[tokio::test]
async fn restart_fails_jobs_out_of_attempts_and_reruns_others() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path(), &db.url);
    config.transcode.max_attempts = 1;
    let handle = db.connect().await;
    handle.upsert_user("alice", None, now()).await.unwrap();
    let file = uuid::Uuid::new_v4();
    handle
        .insert_file(
            &control_plane::db::files::NewFile {
                id: file,
                owner_id: "alice",
                name: "a",
                mime_type: "video/mp4",
                size_bytes: 1,
                storage_path: "/nonexistent",
            },
            now(),
        )
        .await
        .unwrap();
    let job = handle
        .create_job(file, false, "none", "/nonexistent", "x", now())
        .await
        .unwrap();
    handle.start_job_attempt(job.id, now()).await.unwrap();
    handle.close().await;

    let t = TestApp::start_with(db, dir, config).await;
    let read = t.app.db.job(job.id).await.unwrap().unwrap();
    assert_eq!(read.status, "failed");
    assert_eq!(
        read.error_message.as_deref(),
        Some("interrupted by a control-plane restart after 1 attempts")
    );
    let body = t
        .wait_for_job("alice", &file.to_string(), Duration::from_secs(5))
        .await;
    assert_eq!(body["status"], "failed");
    assert!(body["error"].as_str().unwrap().contains("restart"));
}

#[tokio::test]
async fn broken_sources_fail_with_a_reason() {
    let t = sqlite_app().await;
    let file = t
        .upload("alice", "junk.mp4", b"this is not a video".to_vec())
        .await;
    let res = t
        .client
        .post(t.url("/media/transcode"))
        .bearer_auth(t.token("alice"))
        .json(&json!({"fileId": file}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let body = t
        .wait_for_job("alice", &file, Duration::from_secs(30))
        .await;
    assert_eq!(body["status"], "failed", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("ffprobe"),
        "{body}"
    );
    assert!(body["hlsManifestUrl"].is_null());
}

/// Upload -> DRM transcode -> origin layout -> manifest URL -> key over the internal API,
/// on every configured database, on the AES-128 MPEG-TS pipeline (`transcode.protection =
/// "aes-128"`; the CMAF default is tests/transcode_cmaf.rs).
#[tokio::test]
async fn drm_title_end_to_end() {
    let video = std::fs::read(test_video(640, 360, 3)).unwrap();
    for db in TestDb::all().await {
        let label = db.label;
        let t = TestApp::start(db, |c| {
            c.transcode.renditions = vec![1080, 360, 240];
            c.transcode.protection = "aes-128".into();
        })
        .await;
        t.app
            .db
            .subscribe("alice", TierName::Pro, now())
            .await
            .unwrap();
        let file = t.upload("alice", "clip.mp4", video.clone()).await;
        let res = t
            .client
            .post(t.url("/media/transcode"))
            .bearer_auth(t.token("alice"))
            .json(&json!({"fileId": file, "enableDrm": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "{label}");
        let accepted = json_of(res).await;
        assert_eq!(
            (accepted["status"].as_str(), accepted["progress"].as_u64()),
            (Some("processing"), Some(0))
        );
        assert!(accepted["jobId"].is_string());
        let res = t
            .client
            .post(t.url("/media/transcode"))
            .bearer_auth(t.token("alice"))
            .json(&json!({"fileId": file, "enableDrm": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            409,
            "{label}: second transcode while processing"
        );

        let body = t
            .wait_for_job("alice", &file, Duration::from_secs(120))
            .await;
        assert_eq!(body["status"], "completed", "{label}: {body}");
        assert_eq!(body["progress"], 100);
        assert_eq!(
            body["hlsManifestUrl"],
            format!("http://127.0.0.1:8080/playback/{file}/manifest")
        );

        // Origin layout: 360p and 240p (1080 is above the 360-line source), both encrypted
        // with the one key ffmpeg read from the FIFO once per variant stream.
        let title = t.config.storage.origin_dir.join(&file);
        let master = std::fs::read_to_string(title.join("master.m3u8")).unwrap();
        assert!(master.contains("360p/index.m3u8"), "{master}");
        assert!(master.contains("240p/index.m3u8"), "{master}");
        assert!(
            !master.contains("1080p"),
            "never above the source: {master}"
        );
        let record = t.app.db.file(file.parse().unwrap()).await.unwrap().unwrap();
        let key_id = record.content_key_id.expect("content key id").to_string();
        // The key's generation is in the audit trail, by the transcoder.
        let events = t
            .app
            .db
            .list_key_events(Some(record.id), None, 10)
            .await
            .unwrap();
        assert!(
            events.iter().any(|e| e.action == "generate"
                && e.actor == "transcode"
                && e.ok
                && e.key_id.map(|k| k.to_string()) == Some(key_id.clone())),
            "{label}: {events:?}"
        );
        for rendition in ["360p", "240p"] {
            let media = std::fs::read_to_string(title.join(rendition).join("index.m3u8")).unwrap();
            let key_line = format!("#EXT-X-KEY:METHOD=AES-128,URI=\"key/{key_id}\"");
            assert!(media.contains(&key_line), "{media}");
        }
        assert!(record.drm_protected && record.encrypted_at.is_some());
        let staging: Vec<_> = std::fs::read_dir(t.config.storage.origin_dir.join(".staging"))
            .unwrap()
            .collect();
        assert!(staging.is_empty(), "staging is cleaned up");

        // Manifest URL with a signed token the edge will accept.
        let res = t
            .client
            .get(t.url(&format!("/media/{file}/manifest")))
            .bearer_auth(t.token("alice"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body = json_of(res).await;
        let url = body["url"].as_str().unwrap();
        let prefix = format!("http://127.0.0.1:8080/hls/{file}/master.m3u8?hdnts=");
        assert!(url.starts_with(&prefix), "{url}");
        let token = &url[prefix.len()..];
        let signer = SessionSigner::new(EdgeAuth::new(EdgeAuthConfig::new(
            std::fs::read(&t.config.signed_urls.signing_key_file).unwrap(),
        )));
        let unix = now().unix_timestamp() as u64;
        let master = hls_master_path(&file);
        let facts = RequestFacts {
            path: &master,
            client_ip: None,
            now_unix: unix,
        };
        let grant = signer.verify(token, &facts).unwrap();
        assert!(grant.is_manifest_for(&file), "admits the master only");
        assert_eq!(grant.subject.user_id.as_deref(), Some("alice"));
        assert!(grant.subject.session_id.is_some(), "opens a session");
        assert!(grant.expires_at > unix + 290 && grant.expires_at <= unix + 301);
        assert!(body["expiresAt"].as_str().unwrap().ends_with('Z'));

        // A free viewer in the organization is refused: the title is DRM-protected.
        let svc = t.service_token();
        let org = t.app.db.create_organization("o", now()).await.unwrap();
        t.app.db.upsert_user("bob", None, now()).await.unwrap();
        t.app
            .db
            .add_organization_member(org, "bob", "member")
            .await
            .unwrap();
        t.app
            .db
            .share_file(file.parse().unwrap(), Some(org), None)
            .await
            .unwrap();
        let res = t
            .client
            .get(t.url(&format!("/internal/v1/entitlements/{file}?userId=bob")))
            .bearer_auth(&svc)
            .send()
            .await
            .unwrap();
        assert_eq!(json_of(res).await["reason"], "tier_required");
        let res = t
            .client
            .get(t.url(&format!("/internal/v1/entitlements/{file}?userId=alice")))
            .bearer_auth(&svc)
            .send()
            .await
            .unwrap();
        let ent = json_of(res).await;
        assert_eq!(
            (
                ent["allowed"].as_bool(),
                ent["drmProtected"].as_bool(),
                ent["ready"].as_bool()
            ),
            (Some(true), Some(true), Some(true))
        );

        // The key, transport-wrapped for the edge, decrypts the segments.
        let res = t.internal_key(&file, &key_id).await;
        assert_eq!(res.status(), 200);
        let body = json_of(res).await;
        assert_eq!(body["algorithm"], "AES-128");
        let wrapped = body["wrappedKey"].as_str().unwrap();
        let binding = KeyBinding {
            purpose: Purpose::Transport,
            video_id: &file,
            key_id: &key_id,
        };
        let key = keywrap::unwrap(&t.transport_key(), wrapped, &binding).unwrap();
        let stored = t
            .app
            .db
            .content_key(file.parse().unwrap(), key_id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_ne!(
            stored.content_key, wrapped,
            "at-rest and transport envelopes differ"
        );
        assert!(!stored.content_key.contains(&hex::encode(key)));
        for rendition in ["360p", "240p"] {
            let segment = title.join(rendition).join("seg_00000.ts");
            let out = std::process::Command::new("openssl")
                .args([
                    "aes-128-cbc",
                    "-d",
                    "-K",
                    &hex::encode(key),
                    "-iv",
                    "00000000000000000000000000000000",
                    "-in",
                ])
                .arg(&segment)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{label}: segment decrypts with the released key"
            );
            assert_eq!(
                out.stdout.first(),
                Some(&0x47),
                "{label}: MPEG-TS sync byte after decryption"
            );
            assert_ne!(
                std::fs::read(&segment).unwrap().first(),
                Some(&0x47),
                "segments are encrypted on the origin"
            );
        }

        // Revoked keys are gone for edges.
        t.app
            .db
            .revoke_content_key(key_id.parse().unwrap(), now())
            .await
            .unwrap();
        let res = t.internal_key(&file, &key_id).await;
        assert_eq!(res.status(), 410);
        assert_error(&json_of(res).await, "key_revoked");
    }
}

/// The ladder is capped at the source height (1280x720 source, 1080/720/480 configured).
#[tokio::test]
async fn ladder_is_capped_at_the_source_height() {
    let video = std::fs::read(test_video(1280, 720, 2)).unwrap();
    let t = TestApp::start(TestDb::sqlite().await, |c| {
        c.transcode.renditions = vec![1080, 720, 480]
    })
    .await;
    let file = t.upload("alice", "hd.mp4", video).await;
    let res = t
        .client
        .post(t.url("/media/transcode"))
        .bearer_auth(t.token("alice"))
        .json(&json!({"fileId": file, "enableDrm": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let body = t
        .wait_for_job("alice", &file, Duration::from_secs(120))
        .await;
    assert_eq!(body["status"], "completed", "{body}");
    let master =
        std::fs::read_to_string(t.config.storage.origin_dir.join(&file).join("master.m3u8"))
            .unwrap();
    assert!(
        master.contains("RESOLUTION=1280x720") && master.contains("720p/index.m3u8"),
        "{master}"
    );
    assert!(master.contains("480p/index.m3u8"), "{master}");
    assert!(!master.contains("1080p"), "{master}");
    let media = std::fs::read_to_string(
        t.config
            .storage
            .origin_dir
            .join(&file)
            .join("720p/index.m3u8"),
    )
    .unwrap();
    assert!(!media.contains("EXT-X-KEY"), "no DRM, no key");
    // Free users may play unprotected titles they own.
    let res = t
        .client
        .get(t.url(&format!("/media/{file}/manifest")))
        .bearer_auth(t.token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// A ready DRM title owned by `owner` with one content key sealed by the app's custody.
async fn ready_drm_title(t: &TestApp, owner: &str) -> (uuid::Uuid, uuid::Uuid) {
    let video = uuid::Uuid::new_v4();
    let key = uuid::Uuid::new_v4();
    let sealed = t
        .app
        .custody
        .seal(
            &video.to_string(),
            &key.to_string(),
            &control_plane::keys::ContentKey::new([3; 16]),
        )
        .await
        .unwrap();
    let keys = vec![(key, sealed)];
    t.app
        .db
        .import_title(
            &ImportedTitle {
                file: NewFile {
                    id: video,
                    owner_id: owner,
                    name: "packaged",
                    mime_type: "application/vnd.apple.mpegurl",
                    size_bytes: 1,
                    storage_path: "/nowhere",
                },
                drm_protected: true,
                hls_manifest_url: "http://edge/playback/x/manifest",
                keys: &keys,
            },
            now(),
        )
        .await
        .unwrap();
    (video, key)
}

#[tokio::test]
async fn entitlement_answer_carries_the_viewers_tier() {
    let t = sqlite_app().await;
    let (video, _) = ready_drm_title(&t, "owner").await;
    let svc = t.service_token();
    let ask = || async {
        let res = t
            .client
            .get(t.url(&format!("/internal/v1/entitlements/{video}?userId=owner")))
            .bearer_auth(&svc)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        json_of(res).await
    };
    let body = ask().await;
    assert_eq!(
        body,
        json!({"videoId": video.to_string(), "userId": "owner", "allowed": false,
               "reason": "tier_required", "drmProtected": true, "ready": true, "tier": "free",
               "maxConcurrentStreams": 1, "licenseDurationSecs": 3600, "licenseType": "rental"})
    );
    t.app
        .db
        .subscribe("owner", TierName::Pro, now())
        .await
        .unwrap();
    let body = ask().await;
    assert_eq!(
        (
            &body["allowed"],
            &body["reason"],
            &body["tier"],
            &body["maxConcurrentStreams"],
            &body["licenseType"]
        ),
        (
            &json!(true),
            &json!(null),
            &json!("pro"),
            &json!(3),
            &json!("rental")
        )
    );
    t.app
        .db
        .subscribe("owner", TierName::Enterprise, now())
        .await
        .unwrap();
    let body = ask().await;
    assert_eq!(
        (
            &body["tier"],
            &body["maxConcurrentStreams"],
            &body["licenseDurationSecs"],
            &body["licenseType"]
        ),
        (
            &json!("enterprise"),
            &json!(10),
            &json!(3600),
            &json!("persistent")
        )
    );
}

fn license_json(id: &str, video: &str, user: &str, key: Option<String>) -> Value {
    json!({
        "id": id, "videoId": video, "userId": user, "keyId": key,
        "drmSystem": "clearkey", "licenseType": "rental",
        "issuedAt": 1_700_000_000u64, "expiresAt": 1_700_003_600u64, "deviceId": null
    })
}

#[tokio::test]
async fn licenses_are_recorded_idempotently_on_both_databases() {
    for db in TestDb::all().await {
        let label = db.label;
        let t = TestApp::start(db, |_| {}).await;
        let (video, key) = ready_drm_title(&t, "owner").await;
        let svc = t.service_token();
        let post = |body: Value, token: Option<String>| {
            let mut req = t.client.post(t.url("/internal/v1/licenses")).json(&body);
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            req.send()
        };
        let res = post(json!({"licenses": []}), None).await.unwrap();
        assert_eq!(res.status(), 401);
        assert_error(&json_of(res).await, "unauthorized");
        let res = post(json!({"licenses": []}), Some(t.token("owner")))
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "a viewer JWT is not the service token");

        let (a, b) = (
            uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v4().to_string(),
        );
        let unknown = uuid::Uuid::new_v4().to_string();
        let mut bad_type = license_json(
            &uuid::Uuid::new_v4().to_string(),
            &video.to_string(),
            "v",
            None,
        );
        bad_type["licenseType"] = json!("lease");
        let batch = json!({"licenses": [
            license_json(&a, &video.to_string(), "new-viewer", Some(key.to_string())),
            license_json(&b, &video.to_string(), "new-viewer", None),
            license_json(&unknown, &uuid::Uuid::new_v4().to_string(), "v", None),
            bad_type.clone(),
            {"id": "not-a-uuid"},
        ]});
        let res = post(batch.clone(), Some(svc.clone())).await.unwrap();
        assert_eq!(res.status(), 200, "{label}");
        let body = json_of(res).await;
        assert_eq!(body["recorded"], 2, "{label}: {body}");
        assert_eq!(body["duplicates"], 0);
        let rejected = body["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), 3, "{body}");
        assert!(rejected.contains(&json!({"id": unknown, "reason": "unknown_video"})));
        assert!(rejected.contains(&json!({"id": bad_type["id"], "reason": "unknown_license_type"})));
        assert!(rejected.contains(&json!({"id": "not-a-uuid", "reason": "invalid_record"})));
        assert!(t.app.db.user_exists("new-viewer").await.unwrap());
        let stored = t.app.db.license(a.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(stored.key_id, Some(key));
        assert_eq!(stored.issued_at.unix_timestamp(), 1_700_000_000);

        // The edge's outbox replays the batch: duplicates, not errors, nothing written twice.
        let res = post(batch, Some(svc.clone())).await.unwrap();
        assert_eq!(res.status(), 200);
        let body = json_of(res).await;
        assert_eq!(
            (&body["recorded"], &body["duplicates"]),
            (&json!(0), &json!(2)),
            "{label}: {body}"
        );
        assert_eq!(t.app.db.count_licenses_for(video).await.unwrap(), 2);

        // Bounds: 500 records per batch, 1 MiB per body; the shape is checked.
        let many: Vec<Value> = (0..501)
            .map(|_| {
                license_json(
                    &uuid::Uuid::new_v4().to_string(),
                    &video.to_string(),
                    "v",
                    None,
                )
            })
            .collect();
        let res = post(json!({"licenses": many}), Some(svc.clone()))
            .await
            .unwrap();
        assert_eq!(res.status(), 413);
        assert_error(&json_of(res).await, "payload_too_large");
        let huge = json!({"licenses": [], "padding": "x".repeat(2 * 1024 * 1024)});
        let res = post(huge, Some(svc.clone())).await.unwrap();
        assert_eq!(res.status(), 413);
        assert_error(&json_of(res).await, "payload_too_large");
        let res = post(json!({"records": []}), Some(svc.clone()))
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_error(&json_of(res).await, "invalid_request");
        let full: Vec<Value> = (0..500)
            .map(|_| {
                license_json(
                    &uuid::Uuid::new_v4().to_string(),
                    &video.to_string(),
                    "v",
                    None,
                )
            })
            .collect();
        let res = post(json!({"licenses": full}), Some(svc)).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(json_of(res).await["recorded"], 500, "{label}");
    }
}

#[tokio::test]
async fn admin_revokes_keys_and_sets_subscriptions() {
    let t = sqlite_app().await;
    let (video, key) = ready_drm_title(&t, "owner").await;
    let revoke_url = t.url(&format!("/admin/v1/videos/{video}/keys/{key}/revoke"));
    let res = t.client.post(&revoke_url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_error(&json_of(res).await, "missing_token");
    let res = t
        .client
        .post(&revoke_url)
        .bearer_auth(t.token("owner"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_error(&json_of(res).await, "admin_required");
    let admin = t.admin_token("root");
    for url in [
        format!(
            "/admin/v1/videos/{video}/keys/{}/revoke",
            uuid::Uuid::new_v4()
        ),
        format!(
            "/admin/v1/videos/{}/keys/{key}/revoke",
            uuid::Uuid::new_v4()
        ),
        format!("/admin/v1/videos/{video}/keys/nope/revoke"),
    ] {
        let res = t
            .client
            .post(t.url(&url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{url}");
        assert_error(&json_of(res).await, "not_found");
    }

    let res = t
        .client
        .post(&revoke_url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let first = json_of(res).await;
    assert_eq!(first["videoId"], video.to_string());
    assert_eq!(first["keyId"], key.to_string());
    assert_eq!(first["alreadyRevoked"], false);
    assert_eq!(first["edgesNotified"], false, "no [redis]: nobody was told");
    let revoked_at = first["revokedAt"].as_str().unwrap().to_string();
    time::OffsetDateTime::parse(&revoked_at, &time::format_description::well_known::Rfc3339)
        .unwrap();
    let res = t
        .client
        .post(&revoke_url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let again = json_of(res).await;
    assert_eq!(
        (&again["alreadyRevoked"], &again["revokedAt"]),
        (&json!(true), &json!(revoked_at))
    );
    // Edges now get 410 for it.
    let res = t.internal_key(&video.to_string(), &key.to_string()).await;
    assert_eq!(res.status(), 410);

    let sub_url = t.url("/admin/v1/users/new-user/subscription");
    let put =
        |body: Value, token: String| t.client.put(&sub_url).bearer_auth(token).json(&body).send();
    let res = put(json!({"tier": "pro"}), t.token("owner")).await.unwrap();
    assert_eq!(res.status(), 403);
    let res = put(json!({"tier": "gold"}), admin.clone()).await.unwrap();
    assert_eq!(res.status(), 422);
    assert_error(&json_of(res).await, "unknown_tier");
    assert!(!t.app.db.user_exists("new-user").await.unwrap());
    let res = put(json!({"tier": "enterprise"}), admin.clone())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        json_of(res).await,
        json!({"userId": "new-user", "tier": "enterprise", "edgesNotified": false})
    );
    let tier = t
        .app
        .db
        .active_tier("new-user", now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tier.name, "enterprise");
    let res = put(json!({"tier": "free"}), admin.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    let tier = t
        .app
        .db
        .active_tier("new-user", now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tier.name, "free");
    let res = t
        .client
        .put(t.url("/admin/v1/users/%0A/subscription"))
        .bearer_auth(&admin)
        .json(&json!({"tier": "pro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
