//! Checks every origin kind must pass, run against a started [`Edge`].

use super::*;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"].as_str().unwrap().to_string()
}

/// Master (manifest token) -> variant -> segments: every URI carries the session token the
/// master minted, the edge accepts it, and segment bytes match the origin exactly.
pub async fn signed_hls_round_trip(edge: &Edge, media: &Media) {
    let client = client();
    let token = edge.manifest_token(VIDEO);
    let r = client
        .get(edge.url(&format!("/hls/{VIDEO}/720p/index.m3u8?hdnts={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a manifest token admits the master only");
    assert_eq!(error_code(r).await, "acl_mismatch");
    let master = client
        .get(edge.url(&format!("/hls/{VIDEO}/master.m3u8?hdnts={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(master.status(), 200);
    assert_eq!(
        master.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(master.headers()["cache-control"], "no-store");
    let master = master.text().await.unwrap();
    let variants = playlist_uris(&master);
    assert_eq!(variants.len(), 1, "{master}");

    let mut child_token = None;
    let mut segments_seen = 0;
    for variant in &variants {
        assert!(
            variant.starts_with(&format!("/hls/{VIDEO}/720p/index.m3u8?")),
            "{variant}"
        );
        let this_token = variant
            .split("hdnts=")
            .nth(1)
            .expect("token on URI")
            .to_string();
        assert_ne!(
            this_token, token,
            "children get the freshly minted session token"
        );
        child_token.get_or_insert(this_token);
        let playlist = client.get(edge.url(variant)).send().await.unwrap();
        assert_eq!(playlist.status(), 200);
        let playlist = playlist.text().await.unwrap();
        let uris = playlist_uris(&playlist);
        assert_eq!(uris.len(), 3, "{playlist}");
        for uri in uris {
            assert!(
                uri.ends_with(&format!("hdnts={}", child_token.as_ref().unwrap())),
                "media playlists re-stamp the same session token: {uri}"
            );
            if uri.starts_with(&format!("/keys/{VIDEO}/key-1?")) {
                let key = client.get(edge.url(&uri)).send().await.unwrap();
                assert_eq!(key.status(), 503, "key needs the (absent) control plane");
                assert_eq!(error_code(key).await, "control_plane_unavailable");
                continue;
            }
            assert!(
                uri.starts_with(&format!("/hls/{VIDEO}/720p/seg_00")),
                "{uri}"
            );
            let response = client.get(edge.url(&uri)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{uri}");
            assert_eq!(response.headers()["content-type"], "video/mp2t");
            let name = uri.split('?').next().unwrap().rsplit('/').next().unwrap();
            let expected = media.file(&format!("720p/{name}"));
            assert_eq!(
                response.headers()["content-length"],
                expected.len().to_string().as_str()
            );
            let body = response.bytes().await.unwrap();
            assert!(
                body.as_ref() == expected.as_slice(),
                "segment {name} differs from origin"
            );
            segments_seen += 1;
        }
    }
    assert_eq!(segments_seen, 2);

    let token = edge.token();
    let head = client
        .head(edge.url(&format!("/hls/{VIDEO}/720p/seg_000.ts?hdnts={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        BIG_SEGMENT_LEN.to_string().as_str()
    );
}

/// Every refusal a signed URL can earn, plus the operational endpoints.
pub async fn refusals_and_ops(edge: &Edge) {
    let client = client();
    let hls = |query: &str| edge.url(&format!("/hls/{VIDEO}/master.m3u8{query}"));
    let get = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap() }
    };

    let r = get(hls("")).await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "missing_token");

    let mut tampered = edge.token();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let r = get(hls(&format!("?hdnts={tampered}"))).await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "bad_signature");

    let expired = edge.token_for(VIDEO, now() - 5);
    let r = get(hls(&format!("?hdnts={expired}"))).await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "expired");

    let other = edge.token_for(OTHER_VIDEO, now() + 600);
    let r = get(hls(&format!("?hdnts={other}"))).await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "acl_mismatch");
    let r = get(edge.url(&format!("/keys/{VIDEO}/key-1?hdnts={other}"))).await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "acl_mismatch");

    let token = edge.token();
    for missing in ["720p/nope.ts", "nope.m3u8", "720p"] {
        let r = get(edge.url(&format!("/hls/{VIDEO}/{missing}?hdnts={token}"))).await;
        assert_eq!(r.status(), 404, "{missing}");
        assert_eq!(error_code(r).await, "not_found");
    }
    let r = get(edge.url(&format!("/hls/{VIDEO}/big.m3u8?hdnts={token}"))).await;
    assert_eq!(r.status(), 502);
    assert_eq!(error_code(r).await, "playlist_too_large");

    // Manifest: JWT checks happen before the (absent) control plane is asked.
    let manifest = edge.url(&format!("/playback/{VIDEO}/manifest"));
    let r = get(manifest.clone()).await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "missing_token");
    let r = client
        .get(&manifest)
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let jwt = edge.jwt(USER);
    let r = client
        .get(&manifest)
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(error_code(r).await, "control_plane_unavailable");

    let r = get(edge.url("/health")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["status"], "ok");
    let r = client.post(edge.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(error_code(r).await, "method_not_allowed");
    let r = get(edge.url("/nothing/here")).await;
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "not_found");

    let r = get(edge.url("/ready")).await;
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["down"], serde_json::json!(["control_plane"]), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("control plane"),
        "{body}"
    );

    tokio::time::sleep(Duration::from_millis(100)).await;
    let metrics = get(edge.url("/metrics")).await.text().await.unwrap();
    for needle in [
        "edge_requests_total{route=\"hls\",status=\"200\"}",
        "edge_requests_total{route=\"hls\",status=\"403\"}",
        "edge_request_duration_seconds_bucket{route=\"hls\"",
        "edge_cache_total{cache=\"entitlement\",result=\"miss\"}",
        "edge_denials_total{reason=\"bad_signature\"} 1",
        "edge_denials_total{reason=\"expired\"} 1",
        // One more from the manifest token tried on a child playlist in the round trip.
        "edge_denials_total{reason=\"acl_mismatch\"} 3",
        "edge_denials_total{reason=\"ip_mismatch\"} 0",
        "edge_denials_total{reason=\"revoked\"} 0",
        "edge_denials_total{reason=\"unknown_key\"} 0",
    ] {
        assert!(
            metrics.contains(needle),
            "metrics lack {needle}:\n{metrics}"
        );
    }
}

/// Traversal and encoding tricks never reach outside the title's folder.
pub fn path_attacks(edge: &Edge) {
    let t = edge.token();
    let bad_path = [
        format!("/hls/{VIDEO}/../../secret.txt?hdnts={t}"),
        format!("/hls/{VIDEO}/720p/../../../secret.txt?hdnts={t}"),
        format!("/hls/{VIDEO}/..%2f..%2fsecret.txt?hdnts={t}"),
        format!("/hls/{VIDEO}/%2e%2e/%2e%2e/secret.txt?hdnts={t}"),
        format!("/hls/{VIDEO}/%2e%2e%2f%2e%2e%2fsecret.txt?hdnts={t}"),
        format!("/hls/{VIDEO}/720p%2Fseg_000.ts?hdnts={t}"),
        format!("/hls/{VIDEO}/%252e%252e%252f%252e%252e%252fsecret.txt?hdnts={t}"),
        format!("/hls/{VIDEO}/%5c..%5c..%5csecret.txt?hdnts={t}"),
        format!("/hls/{VIDEO}//etc/passwd?hdnts={t}"),
        format!("/hls/{VIDEO}/./master.m3u8?hdnts={t}"),
        format!("/hls/{VIDEO}/720p/seg%00.ts?hdnts={t}"),
    ];
    for target in &bad_path {
        let r = edge.raw_get(target);
        assert_eq!(r.status, 400, "{target}: {}", r.head);
        assert_eq!(r.error_code().as_deref(), Some("bad_path"), "{target}");
    }
    let refused = [
        format!("/hls/{VIDEO}/..\\..\\secret.txt?hdnts={t}"),
        format!("/hls/../{VIDEO}/master.m3u8?hdnts={t}"),
        format!("/hls/{VIDEO}/../../../../../../etc/passwd?hdnts={t}"),
        format!("/hls/{VIDEO}/../{OTHER_VIDEO}/master.m3u8?hdnts={t}"),
        format!("/hls/..%2f..%2fetc/passwd?hdnts={t}"),
    ];
    for target in bad_path.iter().chain(&refused) {
        let r = edge.raw_get(target);
        assert!(matches!(r.status, 400 | 404), "{target}: {}", r.head);
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            !body.contains(SECRET_CONTENT) && !body.contains("root:"),
            "{target} leaked"
        );
    }
}

/// No log line carries a whole token.
pub fn logs_hold_no_tokens(edge: &Edge) {
    let logs = edge.all_logs();
    assert!(logs.contains("\"request\""), "access log present:\n{logs}");
    assert!(!logs.contains("hmac="), "a token reached the logs:\n{logs}");
}

/// Browser players on another origin: every answer (including refusals and streamed segments)
/// carries `Access-Control-Allow-Origin`, and preflights for `Authorization` succeed.
pub async fn cors(edge: &Edge) {
    let client = client();
    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            edge.url(&format!("/playback/{VIDEO}/manifest")),
        )
        .header("origin", "https://player.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("GET"));

    let token = edge.token();
    for (path, status) in [
        (format!("/hls/{VIDEO}/720p/seg_001.ts?hdnts={token}"), 200),
        (format!("/hls/{VIDEO}/master.m3u8?hdnts={token}"), 200),
        (format!("/hls/{VIDEO}/master.m3u8?hdnts=bogus"), 403),
        ("/health".to_string(), 200),
    ] {
        let r = client
            .get(edge.url(&path))
            .header("origin", "https://player.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}");
    }
}
