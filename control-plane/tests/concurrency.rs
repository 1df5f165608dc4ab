//! Concurrent writers on every write endpoint, on SQLite and (with `DATABASE_URL`) Postgres.
//!
//! The write operations are enumerated from the OpenAPI document (every `POST`, `PUT`,
//! `DELETE`, `PATCH`), and each must have a scenario in [`race_operation`]: a new write endpoint
//! without one fails this test. A scenario fires [`N`] requests at once at one resource and
//! checks that none answered 5xx, that the answers are the ones the README promises (one
//! winner and 409 for the others where only one can win) and that the final state is
//! consistent (one row where one is expected, the last owner kept, a chain of key rotations).

mod common;

use std::collections::{HashMap, HashSet};

use common::{TestApp, TestDb};
use control_plane::db::Db;
use futures::future::join_all;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use uuid::Uuid;

/// Concurrent requests per scenario.
const N: usize = 6;
const SPEKE_CREDENTIAL: &str = "concurrency-speke-credential-0123456789abcdef";

/// One answer of a race.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

/// Sends the `N` requests `make(0..N)` at once; no answer may be a 5xx.
async fn race(label: &str, make: impl Fn(usize) -> RequestBuilder) -> Vec<Answer> {
    let answers = join_all((0..N).map(|i| {
        let req = make(i);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            Answer { status, body }
        }
    }))
    .await;
    for a in &answers {
        assert!(a.status < 500, "{label}: {} {}", a.status, a.body);
    }
    answers
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

/// Every answer is `ok`, or `other` with error `code`; returns how many were `ok`.
fn winners(label: &str, answers: &[Answer], ok: u16, other: u16, code: &str) -> usize {
    for a in answers {
        assert!(
            a.status == ok || (a.status == other && a.code() == code),
            "{label}: {} {}",
            a.status,
            a.body
        );
    }
    count(answers, ok)
}

fn all(label: &str, answers: &[Answer], status: u16) {
    for a in answers {
        assert_eq!(a.status, status, "{label}: {}", a.body);
    }
}

/// `SELECT COUNT(*) ...` with one text parameter, on either database.
async fn count_where(db: &Db, sql: &str, arg: &str) -> i64 {
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql)
            .bind(arg)
            .fetch_one(pool)
            .await
            .unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar(sql)
            .bind(arg)
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}

fn req(t: &TestApp, method: Method, path: &str, token: &str) -> RequestBuilder {
    t.client.request(method, t.url(path)).bearer_auth(token)
}

/// A title with a current key made through the API; returns both ids.
async fn title_with_key(t: &TestApp) -> (Uuid, String) {
    let video = common::new_title(&t.app.db).await;
    let res = req(
        t,
        Method::POST,
        &format!("/admin/v1/videos/{video}/keys"),
        &t.admin_token("root"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    (video, body["keyId"].as_str().unwrap().to_string())
}

/// An organization created by `owner` through the API.
async fn org_of(t: &TestApp, owner: &str) -> String {
    let res = req(t, Method::POST, "/orgs", &t.token(owner))
        .json(&json!({"name": format!("org of {owner}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

async fn set_role(t: &TestApp, org: &str, user: &str, role: &str) {
    t.app
        .db
        .upsert_user(user, None, control_plane::db::now())
        .await
        .unwrap();
    let res = req(
        t,
        Method::PUT,
        &format!("/orgs/{org}/members/{user}"),
        &t.admin_token("root"),
    )
    .json(&json!({"role": role}))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
}

async fn owners(t: &TestApp, org: &str) -> usize {
    let members = t
        .app
        .db
        .list_organization_members(org.parse().unwrap(), None, 100)
        .await
        .unwrap();
    members.iter().filter(|m| m.role == "owner").count()
}

async fn project_in(t: &TestApp, org: &str, name: &str) -> String {
    let res = req(
        t,
        Method::POST,
        &format!("/orgs/{org}/projects"),
        &t.admin_token("root"),
    )
    .json(&json!({"name": name}))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

fn tier_body(name: &str, streams: usize) -> Value {
    json!({
        "name": name,
        "maxConcurrentStreams": streams,
        "canUseDrm": false,
        "priceMonthlyCents": 0,
        "licenseDurationSecs": 3600,
        "persistentLicenses": false
    })
}

fn speke_fixture(content_id: &str) -> String {
    let path = format!(
        "{}/../playback/src/speke/testdata/vod_single_key.xml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("contentId=\"").unwrap() + "contentId=\"".len();
    let end = start + text[start..].find('"').unwrap();
    format!("{}{content_id}{}", &text[..start], &text[end..])
}

/// The `PlainValue` contents of a CPIX answer, in document order.
fn plain_values(doc: &str) -> Vec<String> {
    doc.split("PlainValue>")
        .skip(1)
        .step_by(2)
        .map(|v| v.split('<').next().unwrap_or("").to_string())
        .collect()
}

/// Checks the rotations that answered 201 form one chain from `start` to the current key:
/// no two name the same `previousKeyId` (one winner per starting state).
async fn assert_rotation_chain(
    t: &TestApp,
    label: &str,
    video: Uuid,
    start: &str,
    answers: &[Answer],
) {
    let mut next: HashMap<String, String> = HashMap::new();
    for a in answers.iter().filter(|a| a.status == 201) {
        let previous = a.body["previousKeyId"].as_str().unwrap().to_string();
        let key = a.body["keyId"].as_str().unwrap().to_string();
        assert!(
            next.insert(previous.clone(), key).is_none(),
            "{label}: two rotations both replaced {previous}"
        );
    }
    let mut at = start.to_string();
    let mut steps = 0;
    while let Some(key) = next.get(&at) {
        at = key.clone();
        steps += 1;
    }
    assert_eq!(steps, next.len(), "{label}: the 201s are not one chain");
    let current = t.app.db.current_key_id(video).await.unwrap().unwrap();
    assert_eq!(
        current.to_string(),
        at,
        "{label}: the chain ends at the current key"
    );
    let keys = t.app.db.content_keys_for(video).await.unwrap();
    assert_eq!(keys.len(), 1 + next.len(), "{label}: a loser stored a key");
}

/// Races one write operation; panics for an operation without a scenario.
async fn race_operation(t: &TestApp, method: &str, path: &str) {
    let label = format!("{} {method} {path}", t.db.label);
    let label = label.as_str();
    let admin = t.admin_token("root");
    let db = &t.app.db;
    match (method, path) {
        ("post", "/files/upload") => {
            let token = t.token("race-uploader");
            let answers = race(label, |i| {
                let part = reqwest::multipart::Part::bytes(vec![i as u8; 1024]).file_name("a.mp4");
                req(t, Method::POST, "/files/upload", &token)
                    .multipart(reqwest::multipart::Form::new().part("files", part))
            })
            .await;
            all(label, &answers, 201);
            let files = db
                .list_owned_files("race-uploader", None, 100)
                .await
                .unwrap();
            assert_eq!(files.len(), N, "{label}");
            for f in files {
                assert!(std::path::Path::new(&f.storage_path).exists(), "{label}");
            }
        }
        ("post", "/media/transcode") => {
            let video = std::fs::read(common::test_video(160, 120, 2)).unwrap();
            let file = t.upload("race-transcoder", "v.mp4", video).await;
            let token = t.token("race-transcoder");
            let answers = race(label, |_| {
                req(t, Method::POST, "/media/transcode", &token)
                    .json(&json!({"fileId": file, "enableDrm": false}))
            })
            .await;
            let won = winners(label, &answers, 202, 409, "already_processing");
            assert_eq!(won, 1, "{label}: {answers:?}");
            let job = db.latest_job_for_file(file.parse().unwrap()).await.unwrap();
            assert!(job.is_some(), "{label}");
        }
        ("post", "/media/monitor-jobs") => {
            let answers = race(label, |_| {
                req(t, Method::POST, "/media/monitor-jobs", &admin)
            })
            .await;
            all(label, &answers, 200);
        }
        ("post", "/internal/v1/licenses") => {
            let video = common::new_title(db).await;
            let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
            let batch = json!({"licenses": ids.iter().map(|id| json!({
                "id": id, "videoId": video, "userId": "race-viewer", "keyId": null,
                "drmSystem": "clearkey", "licenseType": "rental",
                "issuedAt": 1_700_000_000, "expiresAt": 1_700_003_600, "deviceId": null
            })).collect::<Vec<_>>()});
            let token = t.service_token();
            let answers = race(label, |_| {
                req(t, Method::POST, "/internal/v1/licenses", &token).json(&batch)
            })
            .await;
            all(label, &answers, 200);
            let recorded: u64 = answers
                .iter()
                .map(|a| a.body["recorded"].as_u64().unwrap())
                .sum();
            assert_eq!(recorded, 3, "{label}: each license recorded exactly once");
            for a in &answers {
                let seen =
                    a.body["recorded"].as_u64().unwrap() + a.body["duplicates"].as_u64().unwrap();
                assert_eq!(seen, 3, "{label}: {}", a.body);
            }
            assert_eq!(db.count_licenses_for(video).await.unwrap(), 3, "{label}");
        }
        ("post", "/admin/v1/videos/{videoId}/keys") => {
            let video = common::new_title(db).await;
            let path = format!("/admin/v1/videos/{video}/keys");
            let answers = race(label, |_| req(t, Method::POST, &path, &admin)).await;
            assert_eq!(
                winners(label, &answers, 201, 409, "key_state_conflict"),
                1,
                "{label}"
            );
            let winner = answers.iter().find(|a| a.status == 201).unwrap();
            let current = db.current_key_id(video).await.unwrap().unwrap();
            assert_eq!(winner.body["keyId"], current.to_string(), "{label}");
            assert_eq!(
                db.content_keys_for(video).await.unwrap().len(),
                1,
                "{label}"
            );
        }
        ("post", "/admin/v1/videos/{videoId}/keys/rotate") => {
            let (video, start) = title_with_key(t).await;
            let path = format!("/admin/v1/videos/{video}/keys/rotate");
            let answers = race(label, |_| req(t, Method::POST, &path, &admin)).await;
            assert!(
                winners(label, &answers, 201, 409, "key_state_conflict") >= 1,
                "{label}"
            );
            assert_rotation_chain(t, label, video, &start, &answers).await;
        }
        ("post", "/admin/v1/videos/{videoId}/keys/{keyId}/retire") => {
            let (video, old) = title_with_key(t).await;
            let rotate = format!("/admin/v1/videos/{video}/keys/rotate");
            let res = req(t, Method::POST, &rotate, &admin).send().await.unwrap();
            assert_eq!(res.status(), 201);
            let path = format!("/admin/v1/videos/{video}/keys/{old}/retire");
            let answers = race(label, |_| req(t, Method::POST, &path, &admin)).await;
            all(label, &answers, 200);
            let first: Vec<_> = answers
                .iter()
                .filter(|a| a.body["alreadyRetired"] == false)
                .collect();
            assert_eq!(first.len(), 1, "{label}: one call retired it: {answers:?}");
            let times: HashSet<_> = answers
                .iter()
                .map(|a| a.body["retiredAt"].to_string())
                .collect();
            assert_eq!(times.len(), 1, "{label}: one retiredAt");
            let row = db
                .content_key(video, old.parse().unwrap())
                .await
                .unwrap()
                .unwrap();
            assert!(row.retired_at.is_some(), "{label}");
        }
        ("post", "/admin/v1/videos/{videoId}/keys/{keyId}/revoke") => {
            let (video, key) = title_with_key(t).await;
            let path = format!("/admin/v1/videos/{video}/keys/{key}/revoke");
            let answers = race(label, |_| req(t, Method::POST, &path, &admin)).await;
            all(label, &answers, 200);
            let first = answers
                .iter()
                .filter(|a| a.body["alreadyRevoked"] == false)
                .count();
            assert_eq!(first, 1, "{label}: one call revoked it: {answers:?}");
            let times: HashSet<_> = answers
                .iter()
                .map(|a| a.body["revokedAt"].to_string())
                .collect();
            assert_eq!(times.len(), 1, "{label}: one revokedAt");
        }
        ("put", "/admin/v1/users/{userId}/subscription") => {
            let tiers = ["free", "pro", "enterprise"];
            let answers = race(label, |i| {
                req(
                    t,
                    Method::PUT,
                    "/admin/v1/users/race-subscriber/subscription",
                    &admin,
                )
                .json(&json!({"tier": tiers[i % tiers.len()]}))
            })
            .await;
            all(label, &answers, 200);
            let active = count_where(
                db,
                "SELECT COUNT(*) FROM user_subscriptions WHERE user_id = $1 AND status = 'active'",
                "race-subscriber",
            )
            .await;
            assert_eq!(active, 1, "{label}: one active subscription");
            let sub = db
                .active_subscription("race-subscriber")
                .await
                .unwrap()
                .unwrap();
            assert!(tiers.contains(&sub.tier.name.as_str()), "{label}");
        }
        ("post", "/admin/v1/tiers") => {
            let answers = race(label, |_| {
                req(t, Method::POST, "/admin/v1/tiers", &admin).json(&tier_body("race-tier", 2))
            })
            .await;
            assert_eq!(
                winners(label, &answers, 201, 409, "duplicate_tier"),
                1,
                "{label}"
            );
            let rows = count_where(
                db,
                "SELECT COUNT(*) FROM subscription_tiers WHERE name = $1",
                "race-tier",
            )
            .await;
            assert_eq!(rows, 1, "{label}");
        }
        ("put", "/admin/v1/tiers/{tierId}") => {
            let res = req(t, Method::POST, "/admin/v1/tiers", &admin)
                .json(&tier_body("race-update", 1))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            let id = res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
            let path = format!("/admin/v1/tiers/{id}");
            let answers = race(label, |i| {
                req(t, Method::PUT, &path, &admin).json(&tier_body("race-update", i + 1))
            })
            .await;
            all(label, &answers, 200);
            let tier = db.tier(id.parse().unwrap()).await.unwrap().unwrap();
            assert!(
                (1..=N as i32).contains(&tier.max_concurrent_streams),
                "{label}"
            );
            assert_eq!(tier.name, "race-update", "{label}");
        }
        ("post", "/orgs") => {
            let token = t.token("race-founder");
            let answers = race(label, |i| {
                req(t, Method::POST, "/orgs", &token).json(&json!({"name": format!("org {i}")}))
            })
            .await;
            all(label, &answers, 201);
            let orgs = db
                .list_user_organizations("race-founder", None, 100)
                .await
                .unwrap();
            assert_eq!(orgs.len(), N, "{label}");
            for o in orgs {
                assert_eq!(
                    owners(t, &o.organization.id.to_string()).await,
                    1,
                    "{label}"
                );
            }
        }
        ("put", "/orgs/{orgId}/members/{userId}") => {
            // Two owners demoted at once: the last-owner rule must hold under the race.
            let org = org_of(t, "race-owner-a").await;
            set_role(t, &org, "race-owner-b", "owner").await;
            let answers = race(label, |i| {
                let user = if i % 2 == 0 {
                    "race-owner-a"
                } else {
                    "race-owner-b"
                };
                req(
                    t,
                    Method::PUT,
                    &format!("/orgs/{org}/members/{user}"),
                    &admin,
                )
                .json(&json!({"role": "member"}))
            })
            .await;
            assert!(
                winners(label, &answers, 200, 409, "last_owner") >= 1,
                "{label}"
            );
            assert_eq!(owners(t, &org).await, 1, "{label}: exactly one owner left");
            // The same member re-roled at once: one row, with one of the roles asked for.
            set_role(t, &org, "race-member", "member").await;
            let roles = ["admin", "member"];
            let answers = race(label, |i| {
                req(
                    t,
                    Method::PUT,
                    &format!("/orgs/{org}/members/race-member"),
                    &admin,
                )
                .json(&json!({"role": roles[i % 2]}))
            })
            .await;
            all(label, &answers, 200);
            let role = db
                .organization_role(org.parse().unwrap(), "race-member")
                .await
                .unwrap();
            assert!(role.is_some_and(|r| roles.contains(&r.as_str())), "{label}");
        }
        ("delete", "/orgs/{orgId}/members/{userId}") => {
            let org = org_of(t, "race-leaver-a").await;
            set_role(t, &org, "race-leaver-b", "owner").await;
            let answers = race(label, |i| {
                let user = if i % 2 == 0 {
                    "race-leaver-a"
                } else {
                    "race-leaver-b"
                };
                req(
                    t,
                    Method::DELETE,
                    &format!("/orgs/{org}/members/{user}"),
                    &admin,
                )
            })
            .await;
            for a in &answers {
                assert!(
                    a.status == 204
                        || (a.status == 409 && a.code() == "last_owner")
                        || (a.status == 404 && a.code() == "not_a_member"),
                    "{label}: {a:?}"
                );
            }
            assert_eq!(
                count(&answers, 204),
                1,
                "{label}: one owner removed: {answers:?}"
            );
            assert_eq!(owners(t, &org).await, 1, "{label}: exactly one owner left");
        }
        ("post", "/orgs/{orgId}/projects") => {
            let org = org_of(t, "race-projects").await;
            let path = format!("/orgs/{org}/projects");
            let answers = race(label, |_| {
                req(t, Method::POST, &path, &admin).json(&json!({"name": "same name"}))
            })
            .await;
            assert_eq!(
                winners(label, &answers, 201, 409, "duplicate_project"),
                1,
                "{label}"
            );
            let projects = db
                .list_projects(org.parse().unwrap(), None, 100)
                .await
                .unwrap();
            assert_eq!(projects.len(), 1, "{label}");
        }
        ("put", "/projects/{projectId}/members/{userId}") => {
            let org = org_of(t, "race-pm-owner").await;
            set_role(t, &org, "race-pm", "member").await;
            let project = project_in(t, &org, "p").await;
            let path = format!("/projects/{project}/members/race-pm");
            let answers = race(label, |_| req(t, Method::PUT, &path, &admin)).await;
            all(label, &answers, 200);
            let members = db
                .list_project_members(project.parse().unwrap(), None, 100)
                .await
                .unwrap();
            assert_eq!(members, vec!["race-pm".to_string()], "{label}");
        }
        ("delete", "/projects/{projectId}/members/{userId}") => {
            let org = org_of(t, "race-pd-owner").await;
            set_role(t, &org, "race-pd", "member").await;
            let project = project_in(t, &org, "p").await;
            let path = format!("/projects/{project}/members/race-pd");
            let res = req(t, Method::PUT, &path, &admin).send().await.unwrap();
            assert_eq!(res.status(), 200);
            let answers = race(label, |_| req(t, Method::DELETE, &path, &admin)).await;
            assert_eq!(
                winners(label, &answers, 204, 404, "not_a_member"),
                1,
                "{label}"
            );
            let members = db
                .list_project_members(project.parse().unwrap(), None, 100)
                .await
                .unwrap();
            assert!(members.is_empty(), "{label}");
        }
        ("put", "/files/{fileId}/sharing") => {
            let owner = "race-sharer";
            let orgs = [org_of(t, owner).await, org_of(t, owner).await];
            let file = t.upload(owner, "s.mp4", vec![1; 64]).await;
            let token = t.token(owner);
            let path = format!("/files/{file}/sharing");
            let answers = race(label, |i| {
                req(t, Method::PUT, &path, &token).json(&json!({"organizationId": orgs[i % 2]}))
            })
            .await;
            all(label, &answers, 200);
            let row = db.file(file.parse().unwrap()).await.unwrap().unwrap();
            let shared = row.organization_id.unwrap().to_string();
            assert!(orgs.contains(&shared), "{label}");
        }
        ("post", "/speke/v2/copyProtection") => {
            let video = common::new_title(db).await;
            let doc = speke_fixture(&video.to_string());
            let answers = race(label, |_| {
                req(
                    t,
                    Method::POST,
                    "/speke/v2/copyProtection",
                    SPEKE_CREDENTIAL,
                )
                .header("Content-Type", "application/xml")
                .header("X-Speke-Version", "2.0")
                .body(doc.clone())
            })
            .await;
            all(label, &answers, 200);
            let keys: HashSet<_> = answers
                .iter()
                .map(|a| plain_values(a.body.as_str().unwrap()))
                .collect();
            assert_eq!(keys.len(), 1, "{label}: every answer carries the same keys");
            let issued = keys.into_iter().next().unwrap().len();
            let stored = db.content_keys_for(video).await.unwrap().len();
            assert_eq!(stored, issued, "{label}: one row per kid");
        }
        _ => panic!(
            "{method} {path} writes but has no concurrency scenario: add one to \
             tests/concurrency.rs"
        ),
    }
}

/// The write operations of the OpenAPI document, as `(method, path)`.
fn write_operations() -> Vec<(String, String)> {
    let doc = serde_json::to_value(control_plane::api::openapi_document()).unwrap();
    let mut ops = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if matches!(method.as_str(), "post" | "put" | "delete" | "patch") {
                ops.push((method.clone(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_every_write_endpoint() {
    let ops = write_operations();
    assert!(ops.len() >= 19, "only {} write operations found", ops.len());
    for db in TestDb::all().await {
        let root = tempfile::tempdir().unwrap();
        let credential = root.path().join("speke-credential");
        std::fs::write(&credential, SPEKE_CREDENTIAL).unwrap();
        let t = TestApp::start(db, |c| {
            c.speke.enabled = true;
            c.speke.credential_file = credential.clone();
        })
        .await;
        for (method, path) in &ops {
            race_operation(&t, method, path).await;
        }
    }
}
