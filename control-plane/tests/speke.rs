//! `POST /speke/v2/copyProtection` through HTTP with the CPIX fixtures of
//! `playback/src/speke/testdata` (their `contentId` replaced by a real title's id): filled
//! answers and headers, idempotency, the keys stored and audited, and every refusal — auth,
//! version, size, content type, DTD/entity, unknown content, a kid of another title, custody down.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::{TestApp, TestDb};
use control_plane::db::key_audit::KeyAction;
use reqwest::header::CONTENT_TYPE;
use uuid::Uuid;

const CRED_CURRENT: &str = "speke-credential-current-0123456789abcdef";
const CRED_NEXT: &str = "speke-credential-next-0123456789abcdef0000";
const FIXTURES: [&str; 6] = [
    "vod_single_key.xml",
    "vod_video_audio.xml",
    "v1_style_elements.xml",
    "clearkey_common_aes128.xml",
    "live_key_rotation.xml",
    "live_presets_video3_audio2.xml",
];

fn fixture(name: &str, content_id: &str) -> String {
    let path = format!(
        "{}/../playback/src/speke/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("contentId=\"").unwrap() + "contentId=\"".len();
    let end = start + text[start..].find('"').unwrap();
    format!("{}{content_id}{}", &text[..start], &text[end..])
}

/// The app, and the directory holding its credential file (re-read per request: keep it).
async fn start(
    tweak: impl FnOnce(&mut control_plane::config::Config),
) -> (TestApp, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let cred = root.path().join("speke-credential");
    // Two lines: the current credential and the next one (a rotation in progress).
    std::fs::write(&cred, format!("{CRED_CURRENT}\n{CRED_NEXT}\n")).unwrap();
    let t = TestApp::start(TestDb::sqlite().await, |c| {
        c.speke.enabled = true;
        c.speke.credential_file = cred.clone();
        c.speke.widevine_provider = "streaming-edge".into();
        tweak(c);
    })
    .await;
    (t, root)
}

async fn new_title(t: &TestApp) -> Uuid {
    common::new_title(&t.app.db).await
}

fn request(t: &TestApp, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
    t.client
        .post(t.url("/speke/v2/copyProtection"))
        .header(CONTENT_TYPE, "application/xml")
        .header("X-Speke-Version", "2.0")
        .header("X-Speke-User-Agent", "MediaConvert-test")
        .body(body)
}

/// `(kid, base64 key)` of every `ContentKey` in an answer, in document order.
fn plain_values(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find("<cpix:ContentKey ") {
        rest = &rest[i..];
        let end = rest.find("</cpix:ContentKey>").unwrap();
        let element = &rest[..end];
        let kid_at = element.find("kid=\"").unwrap() + 5;
        let kid = element[kid_at..kid_at + 36].to_string();
        let v_at = element.find("PlainValue>").unwrap() + "PlainValue>".len();
        let v_end = v_at + element[v_at..].find('<').unwrap();
        out.push((kid, element[v_at..v_end].to_string()));
        rest = &rest[end..];
    }
    out
}

/// The decoded playlist lines of every `HLSSignalingData` of an answer.
fn hls_signaling(doc: &str) -> Vec<String> {
    doc.split("<cpix:HLSSignalingData")
        .skip(1)
        .filter_map(|part| {
            let start = part.find('>')? + 1;
            let end = part.find("</cpix:HLSSignalingData>")?;
            let bytes = STANDARD.decode(part[start..end].trim()).ok()?;
            String::from_utf8(bytes).ok()
        })
        .collect()
}

#[tokio::test]
async fn every_fixture_is_filled_idempotently_and_keys_match_custody() {
    for name in FIXTURES {
        // A fresh control plane per fixture: the fixtures share kids.
        let (t, _cred) = start(|_| {}).await;
        let video = new_title(&t).await;
        let body = fixture(name, &video.to_string());
        let res = request(&t, body.clone())
            .bearer_auth(CRED_CURRENT)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}");
        let h = res.headers();
        assert_eq!(h["content-type"], "application/xml", "{name}");
        assert_eq!(h["x-speke-version"], "2.0");
        assert!(h["x-speke-user-agent"]
            .to_str()
            .unwrap()
            .starts_with("streaming-edge-control-plane/"));
        let doc = res.text().await.unwrap();
        let keys = plain_values(&doc);
        assert!(!keys.is_empty(), "{name}: {doc}");
        assert!(
            !doc.contains("<cpix:PSSH></cpix:PSSH>"),
            "{name}: PSSH filled"
        );
        if name == "clearkey_common_aes128.xml" {
            let uri = format!("{}/keys/{video}/", t.config.edge_base());
            assert!(
                hls_signaling(&doc).iter().any(|h| h.contains(&uri)),
                "{name}: AES-128 key URI points at the edge's key route"
            );
        }

        // Every key is stored for this title, and is the key custody opens.
        for (kid, value) in &keys {
            let key_id = Uuid::parse_str(kid).unwrap();
            let row = t.app.db.content_key_by_id(key_id).await.unwrap().unwrap();
            assert_eq!(row.content_id, video, "{name}");
            assert!(!row.content_key.contains(value.as_str()));
            let opened = t
                .app
                .custody
                .unwrap(&video.to_string(), kid, &row.content_key)
                .await
                .unwrap();
            assert_eq!(STANDARD.decode(value).unwrap(), opened.bytes(), "{name}");
        }

        // The same request again: the same keys (AWS's verification checks this).
        let again = request(&t, body)
            .header("X-Api-Key", CRED_NEXT)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 200, "{name}: the next credential works too");
        assert_eq!(plain_values(&again.text().await.unwrap()), keys, "{name}");

        let trail = t
            .app
            .db
            .list_key_events(Some(video), None, 1000)
            .await
            .unwrap();
        let distinct: std::collections::HashSet<_> = keys.iter().map(|(k, _)| k).collect();
        assert_eq!(
            trail.len(),
            2 * distinct.len(),
            "{name}: one record per key per call"
        );
        assert!(trail.iter().all(|e| e.ok
            && e.action.parse::<KeyAction>().unwrap() == KeyAction::SpekeIssue
            && e.actor == "speke:MediaConvert-test"));
        assert!(trail.iter().any(|e| e.detail.as_deref() == Some("new key")));
        assert!(trail
            .iter()
            .any(|e| e.detail.as_deref() == Some("existing key")));
    }
}

#[tokio::test]
async fn refusals() {
    let (t, _cred) = start(|_| {}).await;
    let video = new_title(&t).await;
    let good = fixture("vod_single_key.xml", &video.to_string());

    // Authentication (JSON errors, nothing parsed).
    for auth in [
        None,
        Some("wrong"),
        Some(&CRED_CURRENT[..CRED_CURRENT.len() - 1]),
    ] {
        let mut req = request(&t, good.clone());
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{auth:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }

    // SPEKE version handshake: missing (v1) or wrong.
    for version in [None, Some("1.0"), Some("2.1")] {
        let mut req = t
            .client
            .post(t.url("/speke/v2/copyProtection"))
            .header(CONTENT_TYPE, "application/xml")
            .bearer_auth(CRED_CURRENT)
            .body(good.clone());
        if let Some(v) = version {
            req = req.header("X-Speke-Version", v);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 422, "{version:?}");
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        assert_eq!(res.headers()["x-speke-version"], "2.0");
        assert_eq!(res.text().await.unwrap(), "Unsupported SPEKE version");
    }

    let send = |body: String, content_type: &'static str| {
        t.client
            .post(t.url("/speke/v2/copyProtection"))
            .header(CONTENT_TYPE, content_type)
            .header("X-Speke-Version", "2.0")
            .bearer_auth(CRED_CURRENT)
            .body(body)
            .send()
    };
    let res = send(good.clone(), "application/json").await.unwrap();
    assert_eq!(res.status(), 415);
    let res = send(good.clone(), "text/xml; charset=utf-8").await.unwrap();
    assert_eq!(res.status(), 200, "text/xml is accepted");

    // Size: one byte over 256 KiB.
    let mut big = good.clone();
    big.push_str(&" ".repeat(256 * 1024 + 1 - big.len()));
    let res = send(big, "application/xml").await.unwrap();
    assert_eq!(res.status(), 413);

    // DTD and entity tricks: 400 before any parsing of their content.
    let dtd = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE cpix [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
        good
    );
    let res = send(dtd, "application/xml").await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(!res.text().await.unwrap().contains("root:"));
    let entity = good.replacen("<cpix:ContentKeyList>", "<cpix:ContentKeyList>&xxe;", 1);
    let res = send(entity, "application/xml").await.unwrap();
    assert_eq!(res.status(), 400);

    // contentId: not a UUID, or not a title here.
    let res = send(fixture("vod_single_key.xml", "abc123"), "application/xml")
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("CPIX@contentId"));
    let unknown = Uuid::new_v4();
    let res = send(
        fixture("vod_single_key.xml", &unknown.to_string()),
        "application/xml",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("Unknown CPIX@contentId"));

    // The fixture's kid now belongs to `video` (the text/xml call above): another title is refused.
    let other = new_title(&t).await;
    let res = send(
        fixture("vod_single_key.xml", &other.to_string()),
        "application/xml",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("another content"));
    assert!(t.app.db.content_keys_for(other).await.unwrap().is_empty());

    // A revoked kid is not handed out again.
    let kid = Uuid::parse_str("98ee5596-cd3e-a20d-163a-e382420c6eff").unwrap();
    t.app
        .db
        .revoke_video_key(video, kid, control_plane::db::now())
        .await
        .unwrap()
        .unwrap();
    let res = send(good, "application/xml").await.unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("retired or revoked"));
}

#[tokio::test]
async fn disabled_is_404() {
    let (t, _cred) = start(|c| c.speke.enabled = false).await;
    let video = new_title(&t).await;
    let res = request(&t, fixture("vod_single_key.xml", &video.to_string()))
        .bearer_auth(CRED_CURRENT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn custody_down_is_503_naming_the_backend_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let token = root.path().join("bao-token");
    std::fs::write(&token, "s.0123456789abcdef0123456789abcdef").unwrap();
    let (t, _cred) = start(|c| {
        c.keys.backend = "openbao".into();
        c.keys.openbao.address = "http://127.0.0.1:1".into();
        c.keys.openbao.key = "content".into();
        c.keys.openbao.token_file = token.clone();
        c.keys.openbao.connect_timeout_ms = 300;
        c.keys.openbao.request_timeout_ms = 300;
    })
    .await;
    let video = new_title(&t).await;
    let res = request(&t, fixture("vod_video_audio.xml", &video.to_string()))
        .bearer_auth(CRED_CURRENT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "custody_unavailable");
    assert!(body["message"].as_str().unwrap().contains("openbao"));
    assert!(
        t.app.db.content_keys_for(video).await.unwrap().is_empty(),
        "nothing written"
    );
    let trail = t
        .app
        .db
        .list_key_events(Some(video), None, 10)
        .await
        .unwrap();
    assert_eq!(trail.len(), 1);
    assert!(!trail[0].ok && trail[0].backend == "openbao");
}

#[test]
fn config_block_is_validated_when_enabled() {
    let mut c = control_plane::config::Config::default();
    c.validate().expect("disabled by default, nothing to check");
    c.speke.enabled = true;
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("speke.credential_file"), "{err}");
    c.speke.credential_file = "/etc/cp/speke-credential".into();
    c.validate().unwrap();
    c.speke.playready_la_url = "ftp://x".into();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("speke.playready_la_url"), "{err}");
    c.speke.playready_la_url = "https://edge.example/drm/playready/{videoId}".into();
    c.speke.fairplay_key_uri_prefix.clear();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("speke.fairplay_key_uri_prefix"), "{err}");
}

#[tokio::test]
async fn concurrent_identical_requests_agree_on_the_keys() {
    let (t, _cred) = start(|_| {}).await;
    let video = new_title(&t).await;
    let body = fixture("vod_video_audio.xml", &video.to_string());
    let calls = (0..8).map(|_| {
        let req = request(&t, body.clone()).bearer_auth(CRED_CURRENT);
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 200);
            plain_values(&res.text().await.unwrap())
        }
    });
    let answers = futures::future::join_all(calls).await;
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "every racing request got the same keys"
    );
    let stored = t.app.db.content_keys_for(video).await.unwrap();
    let distinct: std::collections::HashSet<_> = answers[0].iter().map(|(k, _)| k).collect();
    assert_eq!(stored.len(), distinct.len(), "one row per kid");
}

#[tokio::test]
async fn documented_in_openapi() {
    let (t, _cred) = start(|_| {}).await;
    let doc: serde_json::Value = t
        .client
        .get(t.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = &doc["paths"];
    for (path, method) in [
        ("/speke/v2/copyProtection", "post"),
        ("/admin/v1/videos/{videoId}/keys", "get"),
        ("/admin/v1/videos/{videoId}/keys", "post"),
        ("/admin/v1/videos/{videoId}/keys/rotate", "post"),
        ("/admin/v1/videos/{videoId}/keys/{keyId}/retire", "post"),
        ("/admin/v1/videos/{videoId}/keys/{keyId}/revoke", "post"),
        ("/admin/v1/audit/key-events", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} documented"
        );
    }
    assert_eq!(
        paths["/speke/v2/copyProtection"]["post"]["security"][0]["speke"],
        serde_json::json!([])
    );
}
