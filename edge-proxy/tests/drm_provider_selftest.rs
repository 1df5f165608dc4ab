//! Self-tests of the DRM provider emulator: playback's Widevine and PlayReady builders against
//! the emulator's independent checks, so both sides are shown to agree on the formats, and
//! tampered or failing requests are shown to be refused the way the real services refuse them.

#[path = "common/drm_provider.rs"]
mod drm_provider;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use drm_provider::{
    expected_widevine_license, DrmProvider, Failure, WidevinePolicy, BAD_CHALLENGE,
    PLAYREADY_CHALLENGE,
};
use playback::license::playready::{self, CustomDataClaims, ServerError};
use playback::license::policy::{LicenseKind, LicensePolicy};
use playback::license::widevine::{self, ProviderError, WidevineCredentials};
use serde_json::Value;

const PLAYREADY_KEY: &[u8] = b"playready custom data key 32 byt";

fn creds() -> WidevineCredentials {
    WidevineCredentials::from_hex(
        "widevine_test",
        "1ae8ccd0e7985cc0b6203a55855a1034afc252980e970ca90e5202689f947ab9",
        "d58ce954203b7c9a9a9d467f59839249",
    )
    .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post_widevine(provider: &DrmProvider, body: Vec<u8>) -> (u16, Vec<u8>) {
    let response = reqwest::Client::new()
        .post(provider.widevine_url())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn widevine_signed_request_is_licensed_and_policy_recorded() {
    let provider = DrmProvider::start(creds(), PLAYREADY_KEY).await;
    let challenge = b"\x08\x01\x12\x80\x01CDM-CHALLENGE";
    let rental = LicensePolicy {
        kind: LicenseKind::Rental,
        duration_secs: 1800,
    };
    let body = widevine::build_proxy_request(&creds(), challenge, b"video-1", &rental).unwrap();
    let (status, answer) = post_widevine(&provider, body).await;
    assert_eq!(status, 200);
    let license = widevine::parse_proxy_response(&answer).unwrap();
    assert_eq!(license, expected_widevine_license(challenge));

    let persistent = LicensePolicy {
        kind: LicenseKind::Persistent,
        duration_secs: 86_400,
    };
    let body = widevine::build_proxy_request(&creds(), b"second", b"video-2", &persistent).unwrap();
    let (_, answer) = post_widevine(&provider, body).await;
    assert_eq!(
        widevine::parse_proxy_response(&answer).unwrap(),
        expected_widevine_license(b"second")
    );

    let seen = provider.widevine_requests();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| r.signature_valid && r.status == "OK"));
    assert_eq!(seen[0].payload.as_deref(), Some(&challenge[..]));
    assert_eq!(seen[0].content_id.as_deref(), Some(&b"video-1"[..]));
    assert_eq!(seen[0].provider.as_deref(), Some("widevine_test"));
    assert_eq!(seen[0].allowed_track_types.as_deref(), Some("SD_HD"));
    assert_eq!(
        seen[0].policy,
        Some(WidevinePolicy {
            can_play: true,
            can_persist: false,
            can_renew: false,
            license_duration_seconds: 1800,
            rental_duration_seconds: 1800,
            playback_duration_seconds: 1800,
        })
    );
    assert_eq!(
        seen[1].policy,
        Some(WidevinePolicy {
            can_play: true,
            can_persist: true,
            can_renew: false,
            license_duration_seconds: 86_400,
            rental_duration_seconds: 0,
            playback_duration_seconds: 0,
        })
    );
}

#[tokio::test]
async fn widevine_tampered_or_foreign_signatures_are_refused() {
    let provider = DrmProvider::start(creds(), PLAYREADY_KEY).await;
    let policy = LicensePolicy::DEFAULT;
    let body = widevine::build_proxy_request(&creds(), b"challenge", b"v", &policy).unwrap();
    let outer: Value = serde_json::from_slice(&body).unwrap();

    // One bit of the signature flipped.
    let mut signature = STANDARD
        .decode(outer["signature"].as_str().unwrap())
        .unwrap();
    signature[0] ^= 1;
    let mut tampered = outer.clone();
    tampered["signature"] = Value::String(STANDARD.encode(&signature));
    // The request swapped for another one under the original signature.
    let other = widevine::build_proxy_request(&creds(), b"other", b"v", &policy).unwrap();
    let other: Value = serde_json::from_slice(&other).unwrap();
    let mut swapped = outer.clone();
    swapped["request"] = other["request"].clone();
    // Signed with another provider's key.
    let mut foreign_creds = creds();
    foreign_creds.key[7] ^= 0x55;
    let foreign =
        widevine::build_proxy_request(&foreign_creds, b"challenge", b"v", &policy).unwrap();

    for body in [
        serde_json::to_vec(&tampered).unwrap(),
        serde_json::to_vec(&swapped).unwrap(),
        foreign,
    ] {
        let (status, answer) = post_widevine(&provider, body).await;
        assert_eq!(
            status, 200,
            "the service reports failures in the JSON status"
        );
        let err = widevine::parse_proxy_response(&answer).unwrap_err();
        assert_eq!(err, ProviderError::SignatureFailed);
        assert_eq!(err.http_status(), 502);
    }
    let seen = provider.widevine_requests();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|r| !r.signature_valid && r.status == "SIGNATURE_FAILED" && r.policy.is_none()));
}

#[tokio::test]
async fn widevine_bad_challenge_is_the_clients_fault() {
    let provider = DrmProvider::start(creds(), PLAYREADY_KEY).await;
    let body =
        widevine::build_proxy_request(&creds(), BAD_CHALLENGE, b"v", &LicensePolicy::DEFAULT)
            .unwrap();
    let (_, answer) = post_widevine(&provider, body).await;
    let err = widevine::parse_proxy_response(&answer).unwrap_err();
    assert_eq!(err, ProviderError::InvalidChallenge);
    assert!(err.is_client_fault());
    assert_eq!(
        provider.widevine_requests()[0].status,
        "INVALID_LICENSE_CHALLENGE"
    );

    // A correctly signed message missing its policy is the edge's bug, not the viewer's.
    let inner = br#"{"payload":"YQ==","content_id":"dg==","provider":"widevine_test","allowed_track_types":"SD_HD"}"#;
    let body = serde_json::json!({
        "request": STANDARD.encode(inner),
        "signature": STANDARD.encode(widevine::sign(&creds(), inner)),
        "signer": "widevine_test",
    });
    let (_, answer) = post_widevine(&provider, serde_json::to_vec(&body).unwrap()).await;
    let err = widevine::parse_proxy_response(&answer).unwrap_err();
    assert_eq!(
        err,
        ProviderError::Rejected {
            status: "MALFORMED_REQUEST".into()
        }
    );
    assert!(!err.is_client_fault());
}

fn claims(expires_at: u64) -> CustomDataClaims {
    CustomDataClaims {
        user_id: "user-42@example.com".into(),
        video_id: "0b6f2a8e-3c1d-4e5f-9a7b-112233445566".into(),
        license_id: "6f1c2b3a-0000-4000-8000-000000000001".into(),
        license_type: LicenseKind::Persistent,
        duration_secs: 7200,
        expires_at,
    }
}

async fn post_playready(
    provider: &DrmProvider,
    custom_data: &str,
    soap_action: Option<&str>,
    challenge: &str,
) -> (u16, Vec<u8>) {
    let mut request = reqwest::Client::new()
        .post(playready::license_url(
            &provider.playready_url(),
            custom_data,
        ))
        .header("content-type", playready::CONTENT_TYPE)
        .body(challenge.to_string());
    if let Some(action) = soap_action {
        request = request.header("SOAPAction", action);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn playready_challenge_with_custom_data_is_licensed_and_claims_recorded() {
    let provider = DrmProvider::start(creds(), PLAYREADY_KEY).await;
    playready::check_challenge(PLAYREADY_CHALLENGE.as_bytes()).unwrap();
    let custom_data = playready::custom_data(PLAYREADY_KEY, &claims(now() + 60));
    let (status, body) = post_playready(
        &provider,
        &custom_data,
        Some(playready::SOAP_ACTION),
        PLAYREADY_CHALLENGE,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(playready::classify_response(status, &body), Ok(()));
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("PR-LICENSE:6f1c2b3a-0000-4000-8000-000000000001:persistent:7200"),
        "{text}"
    );

    let seen = provider.playready_requests();
    assert_eq!(seen.len(), 1);
    let claims = seen[0].claims.clone().unwrap();
    assert_eq!(claims.user_id, "user-42@example.com");
    assert_eq!(claims.video_id, "0b6f2a8e-3c1d-4e5f-9a7b-112233445566");
    assert_eq!(claims.license_type, "persistent");
    assert_eq!(claims.duration_secs, 7200);
    assert_eq!(seen[0].challenge, PLAYREADY_CHALLENGE.as_bytes());
    assert_eq!(
        seen[0].content_type.as_deref(),
        Some(playready::CONTENT_TYPE)
    );
    assert_eq!(seen[0].soap_action.as_deref(), Some(playready::SOAP_ACTION));
}

#[tokio::test]
async fn playready_refuses_bad_custom_data_and_soap_action_as_server_faults() {
    let provider = DrmProvider::start(creds(), PLAYREADY_KEY).await;
    let good = playready::custom_data(PLAYREADY_KEY, &claims(now() + 60));
    let forged = playready::custom_data(b"not the shared key", &claims(now() + 60));
    let expired = playready::custom_data(PLAYREADY_KEY, &claims(now().saturating_sub(1)));
    let action = Some(playready::SOAP_ACTION);
    let cases = [
        (forged.as_str(), action, "MAC does not match"),
        (expired.as_str(), action, "expired"),
        ("", action, "no MAC"),
        (good.as_str(), None, "SOAPAction"),
        (good.as_str(), Some("\"urn:other\""), "SOAPAction"),
    ];
    for (custom_data, soap_action, why) in cases {
        let (status, body) =
            post_playready(&provider, custom_data, soap_action, PLAYREADY_CHALLENGE).await;
        assert_eq!(status, 500, "{why}");
        let err = playready::classify_response(status, &body).unwrap_err();
        assert!(
            matches!(&err, ServerError::Fault { fault_code, .. } if fault_code == "soap:Server"),
            "{why}: {err:?}"
        );
        assert_eq!(err.http_status(), 502);
        let seen = provider.playready_requests();
        let last = seen.last().unwrap();
        assert!(last.refusal.as_deref().unwrap().contains(why), "{last:?}");
        assert!(last.claims.is_none(), "{last:?}");
    }

    // A bad challenge with good custom data is the client's fault.
    let bad = PLAYREADY_CHALLENGE.replace("AAAA", "BAD-CHALLENGE");
    let (status, body) = post_playready(&provider, &good, action, &bad).await;
    let err = playready::classify_response(status, &body).unwrap_err();
    assert_eq!(err, ServerError::InvalidChallenge);
    assert_eq!(err.http_status(), 400);
}

#[tokio::test]
async fn failure_switch_makes_both_endpoints_fail_or_hang() {
    let provider = DrmProvider::start(creds(), PLAYREADY_KEY).await;
    let body =
        widevine::build_proxy_request(&creds(), b"c", b"v", &LicensePolicy::DEFAULT).unwrap();
    let custom_data = playready::custom_data(PLAYREADY_KEY, &claims(now() + 60));

    provider.set_failure(Failure::Http500);
    let (status, _) = post_widevine(&provider, body.clone()).await;
    assert_eq!(status, 500);
    let (status, body_500) = post_playready(
        &provider,
        &custom_data,
        Some(playready::SOAP_ACTION),
        PLAYREADY_CHALLENGE,
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        playready::classify_response(status, &body_500),
        Err(ServerError::UnexpectedResponse { http_status: 500 })
    );

    provider.set_failure(Failure::Hang);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = client
        .post(provider.widevine_url())
        .body(body.clone())
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let err = client
        .post(provider.playready_url())
        .body(PLAYREADY_CHALLENGE)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");

    provider.set_failure(Failure::None);
    let (status, answer) = post_widevine(&provider, body).await;
    assert_eq!(status, 200);
    assert!(widevine::parse_proxy_response(&answer).is_ok());

    let statuses: Vec<String> = provider
        .widevine_requests()
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, ["HTTP_500", "HANG", "OK"]);
    assert_eq!(provider.requests().len(), 5);
}
