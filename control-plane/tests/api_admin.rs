//! The admin and organization API over HTTP, on SQLite and (with `DATABASE_URL`) Postgres:
//! the OpenAPI document, admin-role enforcement on every `/admin` route, pagination, tiers and
//! subscriptions, organizations/projects/membership, and the edges' entitlement answers for
//! shared titles.

mod common;

use common::{TestApp, TestDb};
use control_plane::db::files::{ImportedTitle, NewFile};
use control_plane::db::now;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

async fn apps() -> Vec<TestApp> {
    let mut out = vec![];
    for db in TestDb::all().await {
        out.push(TestApp::start(db, |_| {}).await);
    }
    out
}

async fn call(
    t: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = t.client.request(method, t.url(path));
    if let Some(tok) = token {
        req = req.bearer_auth(tok);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, value)
}

fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["error"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

#[tokio::test]
async fn openapi_document_lists_every_route_with_security_and_errors() {
    let t = TestApp::start(TestDb::sqlite().await, |_| {}).await;
    let (status, doc) = call(&t, Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/files/upload", "post"),
        ("/files", "get"),
        ("/files/{fileId}/sharing", "put"),
        ("/internal/v1/licenses", "post"),
        ("/orgs", "post"),
        ("/orgs", "get"),
        ("/orgs/{orgId}", "get"),
        ("/orgs/{orgId}/members", "get"),
        ("/orgs/{orgId}/members/{userId}", "put"),
        ("/orgs/{orgId}/members/{userId}", "delete"),
        ("/orgs/{orgId}/projects", "post"),
        ("/orgs/{orgId}/projects", "get"),
        ("/projects/{projectId}", "get"),
        ("/projects/{projectId}/members", "get"),
        ("/projects/{projectId}/members/{userId}", "put"),
        ("/projects/{projectId}/members/{userId}", "delete"),
        ("/tiers", "get"),
        ("/me/subscription", "get"),
        ("/admin/v1/tiers", "post"),
        ("/admin/v1/tiers/{tierId}", "put"),
        ("/admin/v1/users", "get"),
        ("/admin/v1/orgs", "get"),
        ("/admin/v1/jobs", "get"),
        ("/admin/v1/videos/{videoId}/keys/{keyId}/revoke", "post"),
        ("/admin/v1/users/{userId}/subscription", "put"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/internal/v1/entitlements/{videoId}", "get"),
        ("/internal/v1/videos/{videoId}/keys/{keyId}", "get"),
        ("/media/transcode", "post"),
        ("/media/transcode/{fileId}", "get"),
        ("/media/monitor-jobs", "post"),
        ("/media/{fileId}/manifest", "get"),
        ("/speke/v2/copyProtection", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from /openapi.json"
        );
    }
    let schemes = &doc["components"]["securitySchemes"];
    for name in ["bearer", "edge_token", "speke"] {
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
    }
    assert_eq!(
        doc["components"]["schemas"]["ErrorResponse"]["required"],
        json!(["error", "message"])
    );
    // Every operation: error responses carry the error body; authenticated ones list 401.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path}");
            // An error is JSON unless documented with another format (SPEKE's text/plain).
            for (status, r) in responses {
                let other_format = r["content"]
                    .as_object()
                    .is_some_and(|c| !c.contains_key("application/json"));
                if !other_format && (status.starts_with('4') || status.starts_with('5')) {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorResponse",
                        "{method} {path} {status}"
                    );
                }
            }
            if op.get("security").is_some_and(|s| s != &json!([])) {
                assert!(responses.contains_key("401"), "{method} {path}");
            }
            if path.starts_with("/admin/") {
                assert_eq!(
                    op["security"],
                    json!([{"bearer": ["admin"]}]),
                    "{method} {path}"
                );
                assert!(responses.contains_key("403"), "{method} {path}");
            }
        }
    }
    // The document served equals the one built without a server.
    let built = serde_json::to_value(control_plane::api::openapi_document()).unwrap();
    assert_eq!(built, doc);
}

#[tokio::test]
async fn every_admin_route_needs_the_admin_role() {
    let t = TestApp::start(TestDb::sqlite().await, |_| {}).await;
    let (_, doc) = call(&t, Method::GET, "/openapi.json", None, None).await;
    let viewer = t.token("viewer-1");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/admin/") {
            continue;
        }
        // Any id will do: the role is checked before the id is looked up.
        let concrete: String = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    Uuid::new_v4().to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (m != Method::GET).then(|| json!({}));
            let (status, v) = call(&t, m.clone(), &concrete, None, body.clone()).await;
            assert_eq!(status, 401, "{method} {path} without JWT: {v}");
            assert_error(&v, "missing_token");
            let (status, v) = call(&t, m, &concrete, Some(&viewer), body).await;
            assert_eq!(status, 403, "{method} {path} without the admin role: {v}");
            assert_error(&v, "admin_required");
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} admin operations found");
}

#[tokio::test]
async fn tiers_subscriptions_and_admin_lists() {
    for t in apps().await {
        let admin = t.admin_token("root");
        // Public tier list, paginated by name.
        let (s, page) = call(&t, Method::GET, "/tiers?limit=2", None, None).await;
        assert_eq!(s, 200, "{page}");
        let names: Vec<_> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, vec!["enterprise", "free"]);
        let cursor = page["nextCursor"].as_str().unwrap().to_string();
        let (_, page2) = call(
            &t,
            Method::GET,
            &format!("/tiers?cursor={cursor}"),
            None,
            None,
        )
        .await;
        assert_eq!(page2["items"][0]["name"], "pro");
        assert!(page2["nextCursor"].is_null());
        for bad in [
            "/tiers?limit=0",
            "/tiers?limit=101",
            "/tiers?limit=abc",
            "/tiers?cursor=%25%25",
        ] {
            let (s, v) = call(&t, Method::GET, bad, None, None).await;
            assert_eq!(s, 400, "{bad}: {v}");
            assert!(
                ["invalid_limit", "invalid_cursor", "invalid_query"]
                    .contains(&v["error"].as_str().unwrap()),
                "{v}"
            );
        }

        let studio = json!({"name": "studio", "maxConcurrentStreams": 4, "canUseDrm": true,
            "priceMonthlyCents": 2999, "licenseDurationSecs": 7200, "persistentLicenses": false});
        let (s, created) = call(
            &t,
            Method::POST,
            "/admin/v1/tiers",
            Some(&admin),
            Some(studio.clone()),
        )
        .await;
        assert_eq!(s, 201, "{created}");
        let (s, v) = call(
            &t,
            Method::POST,
            "/admin/v1/tiers",
            Some(&admin),
            Some(studio.clone()),
        )
        .await;
        assert_eq!(s, 409);
        assert_error(&v, "duplicate_tier");
        let mut bad = studio.clone();
        bad["name"] = json!("Not Valid!");
        let (s, v) = call(&t, Method::POST, "/admin/v1/tiers", Some(&admin), Some(bad)).await;
        assert_eq!(s, 422);
        assert_error(&v, "invalid_name");
        let mut bad = studio.clone();
        bad["priceMonthlyCents"] = json!(-1);
        let (s, v) = call(&t, Method::POST, "/admin/v1/tiers", Some(&admin), Some(bad)).await;
        assert_eq!(s, 422);
        assert_error(&v, "invalid_value");
        let (s, v) = call(
            &t,
            Method::POST,
            "/admin/v1/tiers",
            Some(&admin),
            Some(json!({"name": 1})),
        )
        .await;
        assert_eq!(s, 400, "{v}");

        let id = created["id"].as_str().unwrap();
        let mut changed = studio.clone();
        changed["priceMonthlyCents"] = json!(1999);
        let (s, v) = call(
            &t,
            Method::PUT,
            &format!("/admin/v1/tiers/{id}"),
            Some(&admin),
            Some(changed.clone()),
        )
        .await;
        assert_eq!(
            (s, v["priceMonthlyCents"].as_i64()),
            (StatusCode::OK, Some(1999))
        );
        let (s, _) = call(
            &t,
            Method::PUT,
            &format!("/admin/v1/tiers/{}", Uuid::new_v4()),
            Some(&admin),
            Some(changed.clone()),
        )
        .await;
        assert_eq!(s, 404);
        // The seeded tiers keep their names.
        let free_id = "00000000-0000-4000-8000-000000000001";
        let mut renamed = changed.clone();
        renamed["name"] = json!("gratis");
        let (s, v) = call(
            &t,
            Method::PUT,
            &format!("/admin/v1/tiers/{free_id}"),
            Some(&admin),
            Some(renamed),
        )
        .await;
        assert_eq!(s, 409);
        assert_error(&v, "tier_name_reserved");

        // A created tier can be given to a user; an unknown one is refused, writing nothing.
        let (s, v) = call(
            &t,
            Method::PUT,
            "/admin/v1/users/studio-viewer/subscription",
            Some(&admin),
            Some(json!({"tier": "studio"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["tier"], "studio");
        let facts = t
            .app
            .db
            .active_tier("studio-viewer", control_plane::db::now())
            .await
            .unwrap()
            .expect("an active subscription");
        assert_eq!(facts.max_concurrent_streams, 4);
        let (s, v) = call(
            &t,
            Method::PUT,
            "/admin/v1/users/nobody-yet/subscription",
            Some(&admin),
            Some(json!({"tier": "platinum"})),
        )
        .await;
        assert_eq!(s, 422, "{v}");
        assert_error(&v, "unknown_tier");
        assert!(!t.app.db.user_exists("nobody-yet").await.unwrap());

        // A viewer's own subscription: free until an admin sets one.
        let viewer = t.token("vera");
        let (s, v) = call(&t, Method::GET, "/me/subscription", Some(&viewer), None).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["subscribed"].as_bool(), v["tier"]["name"].as_str()),
            (Some(false), Some("free"))
        );
        let (s, _) = call(
            &t,
            Method::PUT,
            "/admin/v1/users/vera/subscription",
            Some(&admin),
            Some(json!({"tier": "pro"})),
        )
        .await;
        assert_eq!(s, 200);
        let (_, v) = call(&t, Method::GET, "/me/subscription", Some(&viewer), None).await;
        assert_eq!(
            (v["subscribed"].as_bool(), v["tier"]["name"].as_str()),
            (Some(true), Some("pro"))
        );
        let (s, _) = call(&t, Method::GET, "/me/subscription", None, None).await;
        assert_eq!(s, 401);

        // Admin lists.
        let (s, users) = call(
            &t,
            Method::GET,
            "/admin/v1/users?limit=1",
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(users["items"].as_array().unwrap().len(), 1);
        assert!(users["nextCursor"].is_string(), "{users}");
        let (s, jobs) = call(
            &t,
            Method::GET,
            "/admin/v1/jobs?status=failed",
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, 200, "{jobs}");
        assert_eq!(jobs["items"], json!([]));
        let (s, v) = call(
            &t,
            Method::GET,
            "/admin/v1/jobs?status=bogus",
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, 400);
        assert_error(&v, "invalid_query");
    }
}

#[tokio::test]
async fn organizations_projects_and_membership() {
    for t in apps().await {
        let (alice, bob, carol) = (t.token("alice"), t.token("bob"), t.token("carol"));
        // bob and carol exist once they have called the API.
        for tok in [&bob, &carol] {
            let (s, v) = call(&t, Method::GET, "/orgs", Some(tok), None).await;
            assert_eq!((s, v["items"].clone()), (StatusCode::OK, json!([])));
        }
        let (s, org) = call(
            &t,
            Method::POST,
            "/orgs",
            Some(&alice),
            Some(json!({"name": "  Acme  "})),
        )
        .await;
        assert_eq!(s, 201, "{org}");
        assert_eq!(
            (org["name"].as_str(), org["role"].as_str()),
            (Some("Acme"), Some("owner"))
        );
        let org_id = org["id"].as_str().unwrap().to_string();
        for bad in [
            json!({"name": ""}),
            json!({"name": "x".repeat(101)}),
            json!({"name": "a\u{0}b"}),
        ] {
            let (s, v) = call(&t, Method::POST, "/orgs", Some(&alice), Some(bad)).await;
            assert_eq!(s, 422);
            assert_error(&v, "invalid_name");
        }
        let (s, _) = call(
            &t,
            Method::POST,
            "/orgs",
            Some(&alice),
            Some(json!({"name": "x", "extra": 1})),
        )
        .await;
        assert_eq!(s, 400);

        // Non-members do not see it.
        let (s, v) = call(
            &t,
            Method::GET,
            &format!("/orgs/{org_id}"),
            Some(&bob),
            None,
        )
        .await;
        assert_eq!(s, 404);
        assert_error(&v, "unknown_organization");
        let (s, _) = call(&t, Method::GET, "/orgs/not-a-uuid", Some(&bob), None).await;
        assert_eq!(s, 404);

        // Members.
        let members = format!("/orgs/{org_id}/members");
        let (s, v) = call(
            &t,
            Method::PUT,
            &format!("{members}/nobody"),
            Some(&alice),
            Some(json!({"role": "member"})),
        )
        .await;
        assert_eq!(s, 404);
        assert_error(&v, "unknown_user");
        let (s, v) = call(
            &t,
            Method::PUT,
            &format!("{members}/bob"),
            Some(&alice),
            Some(json!({"role": "member"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = call(
            &t,
            Method::PUT,
            &format!("{members}/bob"),
            Some(&alice),
            Some(json!({"role": "king"})),
        )
        .await;
        assert_eq!(s, 400, "{v}");
        let (_, mine) = call(&t, Method::GET, "/orgs", Some(&bob), None).await;
        assert_eq!(mine["items"][0]["role"], "member");
        // A plain member cannot manage.
        let (s, v) = call(
            &t,
            Method::PUT,
            &format!("{members}/carol"),
            Some(&bob),
            Some(json!({"role": "member"})),
        )
        .await;
        assert_eq!(s, 403);
        assert_error(&v, "org_admin_required");
        // An admin can, but cannot make owners.
        call(
            &t,
            Method::PUT,
            &format!("{members}/bob"),
            Some(&alice),
            Some(json!({"role": "admin"})),
        )
        .await;
        let (s, v) = call(
            &t,
            Method::PUT,
            &format!("{members}/carol"),
            Some(&bob),
            Some(json!({"role": "owner"})),
        )
        .await;
        assert_eq!(s, 403);
        assert_error(&v, "org_owner_required");
        let (s, _) = call(
            &t,
            Method::PUT,
            &format!("{members}/carol"),
            Some(&bob),
            Some(json!({"role": "member"})),
        )
        .await;
        assert_eq!(s, 200);
        let (s, page) = call(
            &t,
            Method::GET,
            &format!("{members}?limit=2"),
            Some(&carol),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(
            page["items"],
            json!([{"userId": "alice", "role": "owner"}, {"userId": "bob", "role": "admin"}])
        );
        let (_, rest) = call(
            &t,
            Method::GET,
            &format!("{members}?cursor={}", page["nextCursor"].as_str().unwrap()),
            Some(&carol),
            None,
        )
        .await;
        assert_eq!(
            rest["items"],
            json!([{"userId": "carol", "role": "member"}])
        );
        // The last owner stays.
        let (s, v) = call(
            &t,
            Method::DELETE,
            &format!("{members}/alice"),
            Some(&alice),
            None,
        )
        .await;
        assert_eq!(s, 409);
        assert_error(&v, "last_owner");

        // Projects.
        let projects = format!("/orgs/{org_id}/projects");
        let (s, v) = call(
            &t,
            Method::POST,
            &projects,
            Some(&carol),
            Some(json!({"name": "Trailer"})),
        )
        .await;
        assert_eq!(s, 403, "{v}");
        let (s, project) = call(
            &t,
            Method::POST,
            &projects,
            Some(&bob),
            Some(json!({"name": "Trailer"})),
        )
        .await;
        assert_eq!(s, 201, "{project}");
        let (s, v) = call(
            &t,
            Method::POST,
            &projects,
            Some(&alice),
            Some(json!({"name": "Trailer"})),
        )
        .await;
        assert_eq!(s, 409);
        assert_error(&v, "duplicate_project");
        let (s, list) = call(&t, Method::GET, &projects, Some(&carol), None).await;
        assert_eq!(
            (s, list["items"].as_array().unwrap().len()),
            (StatusCode::OK, 1)
        );
        let pid = project["id"].as_str().unwrap().to_string();
        let pmembers = format!("/projects/{pid}/members");
        let dave = t.token("dave");
        call(&t, Method::GET, "/orgs", Some(&dave), None).await;
        let (s, v) = call(
            &t,
            Method::PUT,
            &format!("{pmembers}/dave"),
            Some(&alice),
            None,
        )
        .await;
        assert_eq!(s, 422);
        assert_error(&v, "not_org_member");
        let (s, _) = call(
            &t,
            Method::PUT,
            &format!("{pmembers}/carol"),
            Some(&alice),
            None,
        )
        .await;
        assert_eq!(s, 200);
        let (s, v) = call(&t, Method::GET, &pmembers, Some(&carol), None).await;
        assert_eq!(
            (s, v["items"].clone()),
            (StatusCode::OK, json!([{"userId": "carol"}]))
        );
        let (s, _) = call(&t, Method::GET, &pmembers, Some(&dave), None).await;
        assert_eq!(s, 404);
        let (s, _) = call(
            &t,
            Method::GET,
            &format!("/projects/{pid}"),
            Some(&carol),
            None,
        )
        .await;
        assert_eq!(s, 200);

        // Global admins see every organization; members leave on their own.
        let (s, all) = call(
            &t,
            Method::GET,
            "/admin/v1/orgs",
            Some(&t.admin_token("root")),
            None,
        )
        .await;
        assert_eq!(
            (s, all["items"].as_array().unwrap().len()),
            (StatusCode::OK, 1)
        );
        let (s, _) = call(
            &t,
            Method::DELETE,
            &format!("{members}/carol"),
            Some(&carol),
            None,
        )
        .await;
        assert_eq!(s, 204);
        let (s, _) = call(
            &t,
            Method::DELETE,
            &format!("{members}/carol"),
            Some(&alice),
            None,
        )
        .await;
        assert_eq!(s, 404);
        let (s, v) = call(&t, Method::GET, &pmembers, Some(&alice), None).await;
        assert_eq!(
            (s, v["items"].clone()),
            (StatusCode::OK, json!([])),
            "leaving the org left its projects"
        );
    }
}

async fn ready_title(t: &TestApp, owner: &str, drm: bool) -> Uuid {
    let id = Uuid::new_v4();
    t.app.db.upsert_user(owner, None, now()).await.unwrap();
    t.app
        .db
        .import_title(
            &ImportedTitle {
                file: NewFile {
                    id,
                    owner_id: owner,
                    name: "film.mp4",
                    mime_type: "video/mp4",
                    size_bytes: 1,
                    storage_path: "/nonexistent",
                },
                drm_protected: drm,
                hls_manifest_url: "/hls/x/master.m3u8",
                keys: &[],
            },
            now(),
        )
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn shared_titles_and_the_edges_entitlement_answers() {
    for t in apps().await {
        let edge = t.service_token();
        let (owner, member, outsider) = (t.token("olga"), t.token("pete"), t.token("xavier"));
        for tok in [&member, &outsider] {
            call(&t, Method::GET, "/orgs", Some(tok), None).await;
        }
        let (_, org) = call(
            &t,
            Method::POST,
            "/orgs",
            Some(&owner),
            Some(json!({"name": "Studio"})),
        )
        .await;
        let org_id = org["id"].as_str().unwrap().to_string();
        let (_, project) = call(
            &t,
            Method::POST,
            &format!("/orgs/{org_id}/projects"),
            Some(&owner),
            Some(json!({"name": "Cut"})),
        )
        .await;
        let pid = project["id"].as_str().unwrap().to_string();
        call(
            &t,
            Method::PUT,
            &format!("/orgs/{org_id}/members/pete"),
            Some(&owner),
            Some(json!({"role": "member"})),
        )
        .await;
        let title = ready_title(&t, "olga", false).await;
        let ask = |user: &str| format!("/internal/v1/entitlements/{title}?userId={user}");

        // Not shared: only the owner.
        let (s, v) = call(&t, Method::GET, &ask("pete"), Some(&edge), None).await;
        assert_eq!(s, 200);
        assert_eq!(
            (v["allowed"].as_bool(), v["reason"].as_str()),
            (Some(false), Some("not_entitled"))
        );

        // Shared with the project: its members (not the whole organization).
        let sharing = format!("/files/{title}/sharing");
        let (s, v) = call(
            &t,
            Method::PUT,
            &sharing,
            Some(&member),
            Some(json!({"projectId": pid})),
        )
        .await;
        assert_eq!(s, 404, "only the owner shares: {v}");
        let (s, v) = call(
            &t,
            Method::PUT,
            &sharing,
            Some(&owner),
            Some(json!({"projectId": pid})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["projectId"], pid.as_str());
        let (_, v) = call(&t, Method::GET, &ask("pete"), Some(&edge), None).await;
        assert_eq!(
            v["allowed"], false,
            "an org member outside the project: {v}"
        );
        call(
            &t,
            Method::PUT,
            &format!("/projects/{pid}/members/pete"),
            Some(&owner),
            None,
        )
        .await;
        let (_, v) = call(&t, Method::GET, &ask("pete"), Some(&edge), None).await;
        assert_eq!(v["allowed"], true, "a project member: {v}");
        let (_, v) = call(&t, Method::GET, &ask("xavier"), Some(&edge), None).await;
        assert_eq!(v["allowed"], false);

        // Shared with the organization: every member.
        call(
            &t,
            Method::DELETE,
            &format!("/projects/{pid}/members/pete"),
            Some(&owner),
            None,
        )
        .await;
        let (s, _) = call(
            &t,
            Method::PUT,
            &sharing,
            Some(&owner),
            Some(json!({"organizationId": org_id})),
        )
        .await;
        assert_eq!(s, 200);
        let (_, v) = call(&t, Method::GET, &ask("pete"), Some(&edge), None).await;
        assert_eq!(v["allowed"], true, "an org member: {v}");
        // Leaving the organization ends it.
        call(
            &t,
            Method::DELETE,
            &format!("/orgs/{org_id}/members/pete"),
            Some(&member),
            None,
        )
        .await;
        let (_, v) = call(&t, Method::GET, &ask("pete"), Some(&edge), None).await;
        assert_eq!(v["allowed"], false);

        // An id no user can have (a NUL byte, which Postgres refuses; over 255 bytes) is a
        // 400, not a 500.
        let (s, v) = call(
            &t,
            Method::GET,
            &format!("/internal/v1/entitlements/{title}?userId=a%00b"),
            Some(&edge),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_error(&v, "invalid_user_id");
        let long = "u".repeat(300);
        let (s, v) = call(&t, Method::GET, &ask(&long), Some(&edge), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_error(&v, "invalid_user_id");
        // A signed JWT whose subject cannot be a user id is refused, with one code for every
        // such subject: empty, 256 or 300 bytes, control characters.
        for sub in [
            String::new(),
            "x".repeat(256),
            "x".repeat(300),
            "a\u{0}b".into(),
        ] {
            let bad = t.claims(&sub);
            let (s, v) = call(&t, Method::GET, "/orgs", Some(&t.mint(&bad)), None).await;
            assert_eq!(s, 401, "sub of {} bytes: {v}", sub.len());
            assert_error(&v, "invalid_subject");
        }
        // A JWT "issued" years from now is not valid yet.
        let mut future = t.claims("future-user");
        future.iat = Some(future.exp + 5 * 365 * 86_400);
        let (s, v) = call(&t, Method::GET, "/orgs", Some(&t.mint(&future)), None).await;
        assert_eq!(s, 401, "{v}");
        assert_error(&v, "not_yet_valid");

        // Sharing is checked: an organization the owner is not in, a project of another one.
        let (s, v) = call(
            &t,
            Method::PUT,
            &sharing,
            Some(&owner),
            Some(json!({"organizationId": Uuid::new_v4()})),
        )
        .await;
        assert_eq!(s, 422);
        assert_error(&v, "invalid_organization");
        let (_, other) = call(
            &t,
            Method::POST,
            "/orgs",
            Some(&owner),
            Some(json!({"name": "Other"})),
        )
        .await;
        let (s, v) = call(
            &t,
            Method::PUT,
            &sharing,
            Some(&owner),
            Some(json!({"organizationId": other["id"], "projectId": pid})),
        )
        .await;
        assert_eq!(s, 422);
        assert_error(&v, "project_not_in_organization");

        // A DRM title shared with a member still needs a DRM tier.
        let drm = ready_title(&t, "olga", true).await;
        call(
            &t,
            Method::PUT,
            &format!("/orgs/{org_id}/members/pete"),
            Some(&owner),
            Some(json!({"role": "member"})),
        )
        .await;
        call(
            &t,
            Method::PUT,
            &format!("/files/{drm}/sharing"),
            Some(&owner),
            Some(json!({"organizationId": org_id})),
        )
        .await;
        let drm_ask = format!("/internal/v1/entitlements/{drm}?userId=pete");
        let (_, v) = call(&t, Method::GET, &drm_ask, Some(&edge), None).await;
        assert_eq!(
            (v["allowed"].as_bool(), v["reason"].as_str()),
            (Some(false), Some("tier_required"))
        );
        call(
            &t,
            Method::PUT,
            "/admin/v1/users/pete/subscription",
            Some(&t.admin_token("root")),
            Some(json!({"tier": "pro"})),
        )
        .await;
        let (_, v) = call(&t, Method::GET, &drm_ask, Some(&edge), None).await;
        assert_eq!(v["allowed"], true, "{v}");

        // The owner's file list shows both, paged.
        let (s, files) = call(&t, Method::GET, "/files?limit=1", Some(&owner), None).await;
        assert_eq!(s, 200);
        assert_eq!(files["items"].as_array().unwrap().len(), 1);
        let (_, rest) = call(
            &t,
            Method::GET,
            &format!("/files?cursor={}", files["nextCursor"].as_str().unwrap()),
            Some(&owner),
            None,
        )
        .await;
        assert_eq!(rest["items"].as_array().unwrap().len(), 1);
        assert_ne!(files["items"][0]["fileId"], rest["items"][0]["fileId"]);
    }
}
