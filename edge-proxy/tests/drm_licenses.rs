//! License endpoints of one edge against the stub control plane: ClearKey (own endpoint and
//! the generic `/drm/license`), FairPlay SPC -> CKC with the test device, the AES-128 key as a
//! license, refusals with their reason codes, rate and stream limits without Redis, device
//! binding, and the license records that reach the control plane through the outbox.

mod common;

use std::time::Duration;

use common::control_plane::{
    start_control_plane, Calls, ONE_STREAM_USER, PERSISTENT_USER, STRANGER, UUID_CONTENT_KEY,
    UUID_KEY_ID,
};
use common::{Edge, EdgeOptions, Media, OriginSetup, USER, VIDEO};
use playback::license::clearkey::{self, KeyId};
use playback::license::fairplay::device::{
    test_credentials, DeviceRequest, TEST_ASK, TEST_CERTIFICATE_1024_DER,
};
use playback::license::fairplay::DevelopmentDerivation;
use serde_json::{json, Value};

struct Setup {
    edge: Edge,
    calls: Calls,
    http: reqwest::Client,
    _media: tempfile::TempDir,
    _fps: tempfile::TempDir,
}

/// An edge with FairPlay test credentials, a low rate limit and the stub control plane.
async fn setup(drm: &str) -> Setup {
    let media = tempfile::tempdir().unwrap();
    Media::create(media.path());
    let fps = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = fps.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    let certificate = write("fps.der", TEST_CERTIFICATE_1024_DER);
    let key = write(
        "fps.pem",
        playback::license::fairplay::device::TEST_PRIVATE_KEY_1024_PEM.as_bytes(),
    );
    let ask = write("ask.hex", hex::encode(TEST_ASK).as_bytes());
    let (control_plane, calls) = start_control_plane().await;
    let options = EdgeOptions {
        drm: format!(
            "{drm}\n\n[drm.fairplay]\ncertificate_file = {certificate:?}\nprivate_key_file = {key:?}\nask_file = {ask:?}\n"
        ),
        extra: "[debug]\ndenial_header = true\n".into(),
        ..EdgeOptions::default()
    };
    let edge = Edge::start_opts(
        OriginSetup::Directory(media.path()),
        &control_plane,
        &options,
    );
    Setup {
        edge,
        calls,
        http: reqwest::Client::new(),
        _media: media,
        _fps: fps,
    }
}

fn kid() -> KeyId {
    KeyId::from_uuid(UUID_KEY_ID).unwrap()
}

/// The content key as it appears in a ClearKey answer.
fn kid_key_b64() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(UUID_CONTENT_KEY)
}

fn clearkey_body(kids: &[KeyId]) -> String {
    let kids: Vec<String> = kids.iter().map(KeyId::to_base64url).collect();
    json!({ "kids": kids, "type": "temporary" }).to_string()
}

impl Setup {
    async fn post(
        &self,
        path: &str,
        jwt: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.edge.url(path)).body(body);
        if let Some(jwt) = jwt {
            request = request.bearer_auth(jwt);
        }
        request.send().await.unwrap()
    }

    async fn clearkey(&self, user: &str, session: &str) -> reqwest::Response {
        self.http
            .post(self.edge.url(&format!("/drm/clearkey/{VIDEO}")))
            .bearer_auth(self.edge.jwt(user))
            .header("x-playback-session-id", session)
            .body(clearkey_body(&[kid()]))
            .send()
            .await
            .unwrap()
    }

    /// Waits until the control plane has `count` distinct license records.
    async fn records(&self, count: usize) -> Vec<Value> {
        for _ in 0..100 {
            let records = self.calls.license_records();
            if records.len() >= count {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "expected {count} license records, got {:?}",
            self.calls.license_records()
        );
    }
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn clearkey_licenses_and_refusals() {
    let s = setup("").await;
    let response = s.clearkey(USER, "s-1").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.bytes().await.unwrap();
    let text = std::str::from_utf8(&body).unwrap();
    assert!(!text.contains('='), "strict base64url, no padding: {text}");
    let license = clearkey::parse_response(&body).unwrap();
    assert_eq!(license.keys.len(), 1);
    assert_eq!(license.keys[0].kid, kid());
    assert_eq!(license.keys[0].key, UUID_CONTENT_KEY);

    // The second answer comes from the caches: no new key call.
    let key_calls = s.calls.keys.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(s.clearkey(USER, "s-1").await.status(), 200);
    assert_eq!(
        s.calls.keys.load(std::sync::atomic::Ordering::SeqCst),
        key_calls
    );

    let unknown = KeyId([0x42; 16]);
    let jwt = s.edge.jwt(USER);
    let path = format!("/drm/clearkey/{VIDEO}");
    let refused = s
        .post(&path, Some(&jwt), clearkey_body(&[kid(), unknown]))
        .await;
    assert_eq!(error_code(refused).await, (404, "unknown_kid".into()));
    let refused = s.post(&path, Some(&jwt), r#"{"kids":["AAAA="]}"#).await;
    assert_eq!(
        error_code(refused).await,
        (400, "invalid_license_request".into())
    );
    let refused = s.post(&path, Some(&jwt), "not json").await;
    assert_eq!(
        error_code(refused).await,
        (400, "invalid_license_request".into())
    );
    let refused = s.post(&path, None, clearkey_body(&[kid()])).await;
    assert_eq!(error_code(refused).await, (401, "missing_token".into()));
    let stranger = s.edge.jwt(STRANGER);
    let refused = s
        .post(&path, Some(&stranger), clearkey_body(&[kid()]))
        .await;
    assert_eq!(error_code(refused).await, (403, "not_entitled".into()));
    let huge = vec![b' '; 70 * 1024];
    let refused = s.post(&path, Some(&jwt), huge).await;
    assert_eq!(error_code(refused).await, (413, "body_too_large".into()));
    let persistent =
        json!({"kids": [kid().to_base64url()], "type": "persistent-license"}).to_string();
    let refused = s.post(&path, Some(&jwt), persistent.clone()).await;
    assert_eq!(error_code(refused).await, (403, "not_entitled".into()));
    let allowed = s
        .post(&path, Some(&s.edge.jwt(PERSISTENT_USER)), persistent)
        .await;
    assert_eq!(allowed.status(), 200);
    let license = clearkey::parse_response(&allowed.bytes().await.unwrap()).unwrap();
    assert_eq!(
        license.session_type.map(|t| t.as_str()),
        Some("persistent-license")
    );

    // Every issued license reaches media_licenses through the outbox.
    let records = s.records(3).await;
    let clearkey: Vec<&Value> = records
        .iter()
        .filter(|r| r["drmSystem"] == "clearkey")
        .collect();
    assert_eq!(clearkey.len(), 3, "{records:?}");
    assert_eq!(clearkey[0]["videoId"], VIDEO);
    assert_eq!(clearkey[0]["keyId"], UUID_KEY_ID);
    assert_eq!(clearkey[0]["licenseType"], "rental");
    let issued = clearkey[0]["issuedAt"].as_u64().unwrap();
    assert_eq!(clearkey[0]["expiresAt"].as_u64().unwrap(), issued + 3600);
    assert!(records.iter().any(|r| r["userId"] == PERSISTENT_USER
        && r["licenseType"] == "persistent"
        && r["expiresAt"].as_u64().unwrap() == r["issuedAt"].as_u64().unwrap() + 7200));
}

#[tokio::test]
async fn generic_license_endpoint_speaks_every_configured_system() {
    let s = setup("").await;
    let jwt = s.edge.jwt(USER);
    let body = json!({
        "videoId": VIDEO,
        "drmSystem": "clearkey",
        "licenseRequest": {"kids": [kid().to_base64url()], "type": "temporary"},
    });
    let response = s.post("/drm/license", Some(&jwt), body.to_string()).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["drmSystem"], "clearkey");
    assert_eq!(answer["license"]["keys"][0]["kid"], kid().to_base64url());
    let license_id = answer["licenseId"].as_str().unwrap().to_string();
    assert_eq!(license_id.len(), 36);
    // The access log names the license (and never holds the key).
    for _ in 0..50 {
        if s.edge
            .all_logs()
            .contains(&format!("\"licenseId\":\"{license_id}\""))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logs = s.edge.all_logs();
    assert!(
        logs.contains(&format!("\"licenseId\":\"{license_id}\"")),
        "{logs}"
    );
    assert!(!logs.contains(&kid_key_b64()));
    assert!(answer["expiresAt"].as_str().unwrap().ends_with('Z'));

    // The spec's body without drmSystem: a JSON request is ClearKey.
    let body = json!({"videoId": VIDEO, "licenseRequest": {"kids": [kid().to_base64url()]}});
    let response = s.post("/drm/license", Some(&jwt), body.to_string()).await;
    assert_eq!(response.status(), 200);

    // FairPlay through the generic endpoint: base64 SPC in, base64 CKC out.
    let creds = test_credentials();
    let device = DeviceRequest::new(UUID_KEY_ID.as_bytes(), &[5; 32]);
    let spc = device.build_spc(&creds, &DevelopmentDerivation);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body =
        json!({"videoId": VIDEO, "drmSystem": "fairplay", "licenseRequest": b64.encode(&spc)});
    let response = s.post("/drm/license", Some(&jwt), body.to_string()).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let ckc = b64.decode(answer["license"].as_str().unwrap()).unwrap();
    assert_eq!(device.open_ckc(&ckc).unwrap().content_key, UUID_CONTENT_KEY);

    for (body, code) in [
        (
            json!({"videoId": VIDEO, "licenseRequest": "AAAA"}).to_string(),
            "invalid_request",
        ),
        (
            json!({"videoId": "nope", "licenseRequest": {}}).to_string(),
            "invalid_request",
        ),
        (
            json!({"videoId": VIDEO, "drmSystem": "nagra", "licenseRequest": "AAAA"}).to_string(),
            "invalid_request",
        ),
        (
            json!({"videoId": VIDEO, "drmSystem": "widevine", "licenseRequest": "AAAA"})
                .to_string(),
            "drm_system_unavailable",
        ),
        (
            json!({"videoId": VIDEO, "drmSystem": "fairplay", "licenseRequest": "%%%"}).to_string(),
            "invalid_license_request",
        ),
        ("[]".to_string(), "invalid_request"),
    ] {
        let response = s.post("/drm/license", Some(&jwt), body.clone()).await;
        let (status, got) = error_code(response).await;
        assert_eq!(got, code, "{body}");
        assert!((400..500).contains(&status), "{body}: {status}");
    }
}

#[tokio::test]
async fn fairplay_certificate_spc_and_ckc() {
    let s = setup("").await;
    let certificate = s
        .http
        .get(s.edge.url("/fps/certificate"))
        .send()
        .await
        .unwrap();
    assert_eq!(certificate.status(), 200);
    assert_eq!(
        certificate.bytes().await.unwrap().as_ref(),
        TEST_CERTIFICATE_1024_DER
    );

    let creds = test_credentials();
    let device = DeviceRequest::new(UUID_KEY_ID.as_bytes(), &[9; 32]);
    let spc = device.build_spc(&creds, &DevelopmentDerivation);
    let path = format!("/fps/license?contentId={VIDEO}");
    let jwt = s.edge.jwt(USER);
    let response = s.post(&path, Some(&jwt), spc.clone()).await;
    assert_eq!(response.status(), 200);
    let ckc = response.bytes().await.unwrap();
    let opened = device.open_ckc(&ckc).unwrap();
    assert_eq!(opened.content_key, UUID_CONTENT_KEY);
    assert_eq!(opened.duration.unwrap().rental_secs, 3600);

    // Safari's form encoding: spc=<base64>, answered as <ckc>base64</ckc>.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let form = format!("spc={}", b64.encode(&spc).replace('+', "%2B"));
    let response = s
        .http
        .post(s.edge.url(&path))
        .bearer_auth(&jwt)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let inner = text
        .strip_prefix("<ckc>")
        .unwrap()
        .strip_suffix("</ckc>")
        .unwrap();
    let opened = device.open_ckc(&b64.decode(inner).unwrap()).unwrap();
    assert_eq!(opened.content_key, UUID_CONTENT_KEY);

    // Malformed SPCs are refused with the parser's code, never a 5xx.
    let mut wrong_hash = spc.clone();
    wrong_hash[24 + 128] ^= 1;
    for (bad, code) in [
        (spc[..40].to_vec(), "spc_truncated"),
        (wrong_hash, "spc_certificate_mismatch"),
        ([&[0, 0, 0, 9][..], &spc[4..]].concat(), "spc_version"),
    ] {
        let (status, got) = error_code(s.post(&path, Some(&jwt), bad).await).await;
        assert_eq!((status, got.as_str()), (400, code));
    }
    let other_key = DeviceRequest::new(b"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", &[1; 32])
        .build_spc(&creds, &DevelopmentDerivation);
    let (status, code) = error_code(s.post(&path, Some(&jwt), other_key).await).await;
    assert_eq!((status, code.as_str()), (404, "unknown_kid"));
    let (status, code) = error_code(s.post("/fps/license", Some(&jwt), spc.clone()).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    let (status, code) = error_code(s.post(&path, None, spc).await).await;
    assert_eq!((status, code.as_str()), (401, "missing_token"));
    let records = s.records(2).await;
    assert!(records.iter().all(|r| r["drmSystem"] == "fairplay"));
}

#[tokio::test]
async fn rate_and_stream_limits_without_redis() {
    let s = setup("rate_limit_per_sec = 5").await;
    // One-stream user: a second session is refused until the first stops.
    assert_eq!(s.clearkey(ONE_STREAM_USER, "phone").await.status(), 200);
    assert_eq!(s.clearkey(ONE_STREAM_USER, "phone").await.status(), 200);
    let refused = s.clearkey(ONE_STREAM_USER, "tv").await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_eq!(error_code(refused).await.1, "stream_limit");
    let stop = s
        .http
        .delete(s.edge.url("/drm/streams/phone"))
        .bearer_auth(s.edge.jwt(ONE_STREAM_USER))
        .send()
        .await
        .unwrap();
    assert_eq!(stop.status(), 204);
    assert_eq!(s.clearkey(ONE_STREAM_USER, "tv").await.status(), 200);

    // Rate: 5 per second per user; the burst beyond is 429 rate_limited.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = s.clearkey(USER, "s-1").await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            assert_eq!(error_code(response).await.1, "rate_limited");
        }
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!((5..=10).contains(&ok), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    // Another user is not affected.
    assert_eq!(s.clearkey(PERSISTENT_USER, "p-1").await.status(), 200);
}

#[tokio::test]
async fn device_binding() {
    let s = setup("require_device_id = true").await;
    let jwt = s.edge.jwt(USER);
    let path = format!("/drm/clearkey/{VIDEO}");
    let (status, code) = error_code(s.post(&path, Some(&jwt), clearkey_body(&[kid()])).await).await;
    assert_eq!((status, code.as_str()), (403, "device_mismatch"));
    let response = s
        .http
        .post(s.edge.url(&path))
        .bearer_auth(&jwt)
        .header("x-device-id", "device-a")
        .body(clearkey_body(&[kid()]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let records = s.records(1).await;
    assert_eq!(records[0]["deviceId"], "device-a");
}

#[tokio::test]
async fn license_records_survive_a_control_plane_outage() {
    let s = setup("").await;
    s.calls
        .licenses_down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    for session in ["a", "b", "c"] {
        assert_eq!(s.clearkey(USER, session).await.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(s.calls.license_records().is_empty());
    s.calls
        .licenses_down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let records = s.records(3).await;
    assert_eq!(records.len(), 3);
    // Events went to the JSON-lines file (no Redis configured).
    let events_path = s.edge.config_path.parent().unwrap().join("events.jsonl");
    let mut events = String::new();
    for _ in 0..50 {
        events = std::fs::read_to_string(&events_path).unwrap_or_default();
        if events
            .lines()
            .filter(|l| l.contains("LicenseIssued"))
            .count()
            >= 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let issued: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["type"] == "LicenseIssued")
        .collect();
    assert_eq!(issued.len(), 3, "{events}");
    assert_eq!(issued[0]["videoId"], VIDEO);
    assert_eq!(issued[0]["drmSystem"], "clearkey");
}
