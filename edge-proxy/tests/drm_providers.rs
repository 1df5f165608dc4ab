//! Widevine and PlayReady through the edge against the provider emulator: the edge enforces
//! entitlement, signs (Widevine) or annotates (PlayReady) the challenge with the viewer's terms,
//! relays the license, reuses its pooled provider connection, and maps provider failures to
//! clear client errors.

mod common;

use std::time::Duration;

use common::control_plane::{start_control_plane, Calls, PERSISTENT_USER, STRANGER};
use common::drm_provider::{
    expected_widevine_license, DrmProvider, Failure, WidevinePolicy, BAD_CHALLENGE,
    PLAYREADY_CHALLENGE,
};
use common::{Edge, EdgeOptions, Media, OriginSetup, USER, VIDEO};
use playback::license::widevine::WidevineCredentials;
use serde_json::Value;

const PROVIDER: &str = "widevine_test";
const KEY_HEX: &str = "1ae8ccd0e7985cc0b6203a55855a1034afc252980e970ca90e5202689f947ab9";
const IV_HEX: &str = "d58ce954203b7c9a9a9d467f59839249";
const PLAYREADY_KEY: &[u8] = b"playready custom data key 32 byt";

struct Setup {
    edge: Edge,
    provider: DrmProvider,
    calls: Calls,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    Media::create(&dir.path().join("media"));
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    let key = write("wv.key", KEY_HEX.as_bytes());
    let iv = write("wv.iv", IV_HEX.as_bytes());
    let custom = write("pr.key", PLAYREADY_KEY);
    let creds = WidevineCredentials::from_hex(PROVIDER, KEY_HEX, IV_HEX).unwrap();
    let provider = DrmProvider::start(creds, PLAYREADY_KEY).await;
    let (control_plane, calls) = start_control_plane().await;
    let options = EdgeOptions {
        drm: format!(
            "\n[drm.widevine]\nurl = {:?}\nprovider = {PROVIDER:?}\nsigning_key_file = {key:?}\nsigning_iv_file = {iv:?}\ntimeout_ms = 800\n\n\
             [drm.playready]\nurl = {:?}\ncustom_data_key_file = {custom:?}\ntimeout_ms = 800\n",
            provider.widevine_url(),
            provider.playready_url()
        ),
        ..EdgeOptions::default()
    };
    let edge = Edge::start_opts(
        OriginSetup::Directory(&dir.path().join("media")),
        &control_plane,
        &options,
    );
    Setup {
        edge,
        provider,
        calls,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Setup {
    async fn post(&self, system: &str, user: &str, body: &[u8]) -> reqwest::Response {
        self.http
            .post(self.edge.url(&format!("/drm/{system}/{VIDEO}")))
            .bearer_auth(self.edge.jwt(user))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
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
async fn widevine_is_signed_with_the_viewers_policy() {
    let s = setup().await;
    let challenge = b"\x08\x01\x12widevine-challenge-bytes";
    let response = s.post("widevine", USER, challenge).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        expected_widevine_license(challenge).as_slice()
    );
    let response = s.post("widevine", PERSISTENT_USER, challenge).await;
    assert_eq!(response.status(), 200);

    let seen = s.provider.widevine_requests();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| r.signature_valid));
    assert_eq!(seen[0].payload.as_deref(), Some(&challenge[..]));
    assert_eq!(seen[0].content_id.as_deref(), Some(VIDEO.as_bytes()));
    assert_eq!(seen[0].provider.as_deref(), Some(PROVIDER));
    assert_eq!(
        seen[0].policy,
        Some(WidevinePolicy {
            can_play: true,
            can_persist: false,
            can_renew: false,
            license_duration_seconds: 3600,
            rental_duration_seconds: 3600,
            playback_duration_seconds: 3600,
        })
    );
    let persistent = seen[1].policy.unwrap();
    assert!(persistent.can_persist);
    assert_eq!(persistent.license_duration_seconds, 7200);

    // Refusals before the provider is asked.
    let (status, code) = error_code(s.post("widevine", STRANGER, challenge).await).await;
    assert_eq!((status, code.as_str()), (403, "not_entitled"));
    let (status, code) = error_code(s.post("widevine", USER, b"").await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_license_request"));
    assert_eq!(s.provider.widevine_requests().len(), 2);

    // The provider's verdicts and failures.
    let (status, code) = error_code(s.post("widevine", USER, BAD_CHALLENGE).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_license_challenge"));
    s.provider.set_failure(Failure::Http500);
    let (status, code) = error_code(s.post("widevine", USER, challenge).await).await;
    assert_eq!((status, code.as_str()), (502, "drm_provider_error"));
    s.provider.set_failure(Failure::Hang);
    let (status, code) = error_code(s.post("widevine", USER, challenge).await).await;
    assert_eq!((status, code.as_str()), (502, "drm_provider_timeout"));
    s.provider.set_failure(Failure::None);
    assert_eq!(s.post("widevine", USER, challenge).await.status(), 200);
    for _ in 0..3 {
        assert_eq!(s.post("widevine", USER, challenge).await.status(), 200);
    }

    // Provider connections are kept warm: consecutive licenses reuse a pooled connection.
    let metrics = s
        .http
        .get(s.edge.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |connection: &str| -> u64 {
        let series =
            format!("edge_provider_exchanges{{connection=\"{connection}\",system=\"widevine\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in {metrics}"))
    };
    assert!(count("pooled") >= 3, "{metrics}");
    assert!(count("new") < count("pooled"), "{metrics}");

    // Only issued licenses are recorded.
    for _ in 0..100 {
        if s.calls.license_records().len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let records = s.calls.license_records();
    assert_eq!(records.len(), 6, "{records:?}");
    assert!(records
        .iter()
        .all(|r| r["drmSystem"] == "widevine" && r["keyId"].is_null()));
}

#[tokio::test]
async fn playready_carries_signed_custom_data() {
    let s = setup().await;
    let response = s
        .http
        .post(s.edge.url(&format!("/drm/playready/{VIDEO}")))
        .bearer_auth(s.edge.jwt(USER))
        .header("content-type", "text/xml; charset=utf-8")
        .body(PLAYREADY_CHALLENGE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("AcquireLicenseResponse"));
    let seen = s.provider.playready_requests();
    assert_eq!(seen.len(), 1);
    let claims = seen[0].claims.clone().expect("custom data verified");
    assert_eq!(claims.user_id, USER);
    assert_eq!(claims.video_id, VIDEO);
    assert_eq!(claims.license_type, "rental");
    assert_eq!(claims.duration_secs, 3600);
    assert_eq!(
        seen[0].soap_action.as_deref(),
        Some("\"http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense\"")
    );
    for _ in 0..100 {
        if !s.calls.license_records().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let records = s.calls.license_records();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["id"],
        claims.license_id.as_str(),
        "the custom data names the recorded license"
    );

    let (status, code) = error_code(s.post("playready", USER, b"<notsoap/>").await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_license_request"));
    let doctype = format!("<!DOCTYPE x [<!ENTITY a \"b\">]>{PLAYREADY_CHALLENGE}");
    let (status, code) = error_code(s.post("playready", USER, doctype.as_bytes()).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_license_request"));
    let bad =
        PLAYREADY_CHALLENGE.replace("<Version>1</Version>", "<Version>BAD-CHALLENGE</Version>");
    let (status, code) = error_code(s.post("playready", USER, bad.as_bytes()).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_license_challenge"));
    s.provider.set_failure(Failure::Http500);
    let (status, _) = error_code(
        s.post("playready", USER, PLAYREADY_CHALLENGE.as_bytes())
            .await,
    )
    .await;
    assert_eq!(status, 502);
}

#[tokio::test]
async fn unconfigured_systems_are_named() {
    let (control_plane, _calls) = start_control_plane().await;
    let dir = tempfile::tempdir().unwrap();
    Media::create(dir.path());
    let edge = Edge::start_with(OriginSetup::Directory(dir.path()), &control_plane);
    let http = reqwest::Client::new();
    for path in [
        format!("/drm/widevine/{VIDEO}"),
        format!("/drm/playready/{VIDEO}"),
        format!("/fps/license?contentId={VIDEO}"),
    ] {
        let response = http
            .post(edge.url(&path))
            .bearer_auth(edge.jwt(USER))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response).await,
            (404, "drm_system_unavailable".into()),
            "{path}"
        );
    }
    let response = http.get(edge.url("/fps/certificate")).send().await.unwrap();
    assert_eq!(error_code(response).await.0, 404);
    let response = http
        .get(edge.url(&format!("/drm/clearkey/{VIDEO}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (405, "method_not_allowed".into())
    );
}
