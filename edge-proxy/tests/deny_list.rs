//! `GET /internal/v1/revocations`: the deny-list proxy-wasm filters fetch, behind the service
//! token.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_revocations_to_holders_of_the_service_token() {
    let dir = tempfile::tempdir().unwrap();
    let media = Media::create(&dir.path().join("origin"));
    let edge = Edge::start(OriginSetup::Directory(&media.root));
    let client = reqwest::Client::new();
    let url = edge.url("/internal/v1/revocations");

    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    for wrong in [
        "",
        "Bearer ",
        "Bearer nope",
        &format!("Basic {}", service_token()),
    ] {
        let r = client
            .get(&url)
            .header("authorization", wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{wrong:?}");
    }
    let r = client
        .post(&url)
        .bearer_auth(service_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);

    let list = |client: reqwest::Client| {
        let url = url.clone();
        async move {
            let r = client
                .get(&url)
                .bearer_auth(service_token())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["cache-control"], "no-store");
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let empty = list(client.clone()).await;
    assert_eq!(empty["revocations"], serde_json::json!([]));
    assert!(empty["generatedAt"].as_u64().unwrap() >= now() - 5);

    let admin = edge.jwt_with("ops@example.com", None, &["admin"]);
    for body in [
        serde_json::json!({"sessionId": "s-1", "ttlSecs": 120}),
        serde_json::json!({"jti": "j-1", "ttlSecs": 60}),
        serde_json::json!({"userId": "u:1@example.com"}),
    ] {
        let r = client
            .post(edge.url("/admin/revocations"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{body}");
    }
    let listed = list(client.clone()).await;
    let entries = listed["revocations"].as_array().unwrap();
    let mut seen: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            let expires = e["expiresAt"].as_u64().unwrap();
            assert!(expires > now(), "{e}");
            (
                e["kind"].as_str().unwrap().to_string(),
                e["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("jti".to_string(), "j-1".to_string()),
            ("session".into(), "s-1".into()),
            ("user".into(), "u:1@example.com".into()),
        ]
    );
    let session = entries.iter().find(|e| e["kind"] == "session").unwrap();
    let expires = session["expiresAt"].as_u64().unwrap();
    assert!(
        expires >= now() + 110 && expires <= now() + 121,
        "{session}"
    );
}
