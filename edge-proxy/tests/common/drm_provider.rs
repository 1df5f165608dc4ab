//! A DRM license provider emulator for tests: a Widevine license-proxy service and a PlayReady
//! license server on loopback, strict about what the edge sends.
//!
//! It re-implements every check with the primitives directly (`aes`, `cbc`, `sha1`, `hmac`)
//! rather than calling `playback::license`, so a test passing against it shows that the edge's
//! builders agree with an independent reading of the formats, not with themselves.
//!
//! - Widevine (`POST /cenc/getlicense/{provider}`): verifies the signature by *decrypting* it
//!   (AES-256-CBC, PKCS#7) and comparing with SHA-1 of `request` — the service's own method,
//!   where playback's verifier re-encrypts — then checks every field of the inner message and the
//!   types of `policy_overrides`. Answers HTTP 200 with a JSON `status` as the real service does:
//!   `OK` with `license` = base64 of `"WV-LICENSE:" + hex(sha256(payload))`
//!   ([`expected_widevine_license`]), `SIGNATURE_FAILED`, `INVALID_LICENSE_CHALLENGE` (for the
//!   payload [`BAD_CHALLENGE`]) or `MALFORMED_REQUEST`.
//! - PlayReady (`POST /pr/rightsmanager.asmx?customdata=...`): requires the `SOAPAction` header
//!   and the `customdata` parameter, verifies its HMAC-SHA256 and expiry, and answers an
//!   `AcquireLicenseResponse` naming the custom data's `licenseId`. Refusals are HTTP 500 SOAP
//!   faults as PlayReady servers send them: `soap:Server` for what the edge got wrong (custom
//!   data, SOAPAction), `soap:Client` for a challenge that is not an `AcquireLicense` envelope
//!   or contains [`BAD_CHALLENGE`].
//!
//! Every request is recorded ([`DrmProvider::requests`]) with what was parsed from it, and
//! [`DrmProvider::set_failure`] makes both endpoints answer HTTP 500 or never answer.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes::Aes256;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use playback::license::widevine::WidevineCredentials;
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A challenge payload the emulated services refuse as the CDM's fault.
pub const BAD_CHALLENGE: &[u8] = b"BAD-CHALLENGE";

/// The SOAPAction a PlayReady license server dispatches `AcquireLicense` on (unquoted).
pub const PLAYREADY_ACQUIRE_LICENSE: &str =
    "http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense";

/// A challenge shaped like a PlayReady CDM's (signature values shortened).
pub const PLAYREADY_CHALLENGE: &str = r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><AcquireLicense xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><challenge><Challenge xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols/messages"><LA xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols" Id="SignedData" xml:space="preserve"><Version>1</Version><ContentHeader><WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.0.0.0"><DATA><PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO><KID>f0Xo1vVv8UKyWqqBYCc8wA==</KID></DATA></WRMHEADER></ContentHeader></LA><Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignatureValue>AAAA</SignatureValue></Signature></Challenge></challenge></AcquireLicense></soap:Body></soap:Envelope>"#;

/// How both endpoints misbehave, for provider-failure tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Answer normally.
    None,
    /// Answer HTTP 500 with a plain-text body, before looking at the request.
    Http500,
    /// Accept the request and never answer (for an hour).
    Hang,
}

/// Widevine `policy_overrides` as the emulator parsed them (types checked strictly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WidevinePolicy {
    pub can_play: bool,
    pub can_persist: bool,
    pub can_renew: bool,
    pub license_duration_seconds: u64,
    pub rental_duration_seconds: u64,
    pub playback_duration_seconds: u64,
}

/// One Widevine request as received. Fields are `None` when absent or unreadable.
#[derive(Debug, Clone)]
pub struct WidevineRequest {
    /// The `{provider}` path segment.
    pub path_provider: String,
    pub signer: Option<String>,
    pub signature_valid: bool,
    pub payload: Option<Vec<u8>>,
    pub content_id: Option<Vec<u8>>,
    pub provider: Option<String>,
    pub allowed_track_types: Option<String>,
    pub policy: Option<WidevinePolicy>,
    /// The `status` answered, or `HTTP_500` / `HANG` under a [`Failure`].
    pub status: String,
}

/// PlayReady custom data claims as the emulator parsed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayReadyClaims {
    pub user_id: String,
    pub video_id: String,
    pub license_id: String,
    pub license_type: String,
    pub duration_secs: u64,
    pub expires_at: u64,
}

/// One PlayReady request as received.
#[derive(Debug, Clone)]
pub struct PlayReadyRequest {
    pub soap_action: Option<String>,
    pub content_type: Option<String>,
    pub custom_data: Option<String>,
    /// Set only when the custom data verified.
    pub claims: Option<PlayReadyClaims>,
    pub challenge: Vec<u8>,
    /// The HTTP status answered (0 under [`Failure::Hang`]).
    pub http_status: u16,
    /// Why it was refused, if it was.
    pub refusal: Option<String>,
}

/// A request either endpoint received, in arrival order.
#[derive(Debug, Clone)]
pub enum ProviderRequest {
    Widevine(WidevineRequest),
    PlayReady(PlayReadyRequest),
}

struct Shared {
    widevine: WidevineCredentials,
    playready_key: Vec<u8>,
    requests: Mutex<Vec<ProviderRequest>>,
    failure: Mutex<Failure>,
}

impl Shared {
    fn record(&self, request: ProviderRequest) {
        self.requests.lock().unwrap().push(request);
    }

    fn failure(&self) -> Failure {
        *self.failure.lock().unwrap()
    }
}

/// The running emulator; stops serving new connections when dropped.
pub struct DrmProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl DrmProvider {
    /// Starts both services on `127.0.0.1:0`, trusting `widevine` (the provider name, AES key
    /// and IV the edge signs with) and `playready_key` (the custom data HMAC key).
    pub async fn start(widevine: WidevineCredentials, playready_key: &[u8]) -> DrmProvider {
        let shared = Arc::new(Shared {
            widevine,
            playready_key: playready_key.to_vec(),
            requests: Mutex::new(Vec::new()),
            failure: Mutex::new(Failure::None),
        });
        let app = axum::Router::new()
            .route("/cenc/getlicense/{provider}", post(widevine_license))
            .route("/pr/rightsmanager.asmx", post(playready_license))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        DrmProvider { addr, shared, task }
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Widevine license-proxy URL for the configured provider.
    pub fn widevine_url(&self) -> String {
        format!(
            "{}/cenc/getlicense/{}",
            self.base_url(),
            self.shared.widevine.provider
        )
    }

    /// The PlayReady license server URL (the edge adds `?customdata=`).
    pub fn playready_url(&self) -> String {
        format!("{}/pr/rightsmanager.asmx", self.base_url())
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ProviderRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The Widevine requests received so far.
    pub fn widevine_requests(&self) -> Vec<WidevineRequest> {
        self.requests()
            .into_iter()
            .filter_map(|r| match r {
                ProviderRequest::Widevine(w) => Some(w),
                ProviderRequest::PlayReady(_) => None,
            })
            .collect()
    }

    /// The PlayReady requests received so far.
    pub fn playready_requests(&self) -> Vec<PlayReadyRequest> {
        self.requests()
            .into_iter()
            .filter_map(|r| match r {
                ProviderRequest::PlayReady(p) => Some(p),
                ProviderRequest::Widevine(_) => None,
            })
            .collect()
    }

    /// Makes both endpoints misbehave (or behave again with [`Failure::None`]).
    pub fn set_failure(&self, failure: Failure) {
        *self.shared.failure.lock().unwrap() = failure;
    }
}

impl Drop for DrmProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The license bytes the Widevine emulator returns for `payload`.
pub fn expected_widevine_license(payload: &[u8]) -> Vec<u8> {
    format!("WV-LICENSE:{}", hex::encode(Sha256::digest(payload))).into_bytes()
}

/// Fails the request per the failure switch (called after recording it).
async fn misbehave(failure: Failure) -> Response {
    if failure == Failure::Hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "emulated provider failure",
    )
        .into_response()
}

async fn widevine_license(
    State(shared): State<Arc<Shared>>,
    Path(path_provider): Path<String>,
    body: Bytes,
) -> Response {
    let mut record = WidevineRequest {
        path_provider,
        signer: None,
        signature_valid: false,
        payload: None,
        content_id: None,
        provider: None,
        allowed_track_types: None,
        policy: None,
        status: String::new(),
    };
    let failure = shared.failure();
    if failure != Failure::None {
        record.status = match failure {
            Failure::Http500 => "HTTP_500".into(),
            _ => "HANG".into(),
        };
        shared.record(ProviderRequest::Widevine(record));
        return misbehave(failure).await;
    }
    let answer = check_widevine(&shared.widevine, &body, &mut record);
    record.status = answer
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    shared.record(ProviderRequest::Widevine(record));
    Json(answer).into_response()
}

/// Checks a license-proxy body, filling `record`, and returns the JSON answer.
fn check_widevine(creds: &WidevineCredentials, body: &[u8], record: &mut WidevineRequest) -> Value {
    let status = |s: &str| json!({ "status": s, "status_message": s });
    let Ok(outer) = serde_json::from_slice::<Value>(body) else {
        return status("MALFORMED_REQUEST");
    };
    let (Some(request_b64), Some(signature_b64), Some(signer)) = (
        outer.get("request").and_then(Value::as_str),
        outer.get("signature").and_then(Value::as_str),
        outer.get("signer").and_then(Value::as_str),
    ) else {
        return status("MALFORMED_REQUEST");
    };
    record.signer = Some(signer.to_string());
    let (Ok(request), Ok(signature)) =
        (STANDARD.decode(request_b64), STANDARD.decode(signature_b64))
    else {
        return status("MALFORMED_REQUEST");
    };
    record.signature_valid = signer == creds.provider
        && record.path_provider == creds.provider
        && signature_decrypts_to_digest(creds, &request, &signature);
    if !record.signature_valid {
        return status("SIGNATURE_FAILED");
    }
    let Ok(inner) = serde_json::from_slice::<Value>(&request) else {
        return status("MALFORMED_REQUEST");
    };
    let b64_field = |name: &str| {
        inner
            .get(name)
            .and_then(Value::as_str)
            .and_then(|s| STANDARD.decode(s).ok())
    };
    record.payload = b64_field("payload");
    record.content_id = b64_field("content_id");
    record.provider = inner
        .get("provider")
        .and_then(Value::as_str)
        .map(String::from);
    record.allowed_track_types = inner
        .get("allowed_track_types")
        .and_then(Value::as_str)
        .map(String::from);
    record.policy = inner.get("policy_overrides").and_then(parse_policy);
    let complete = record.payload.as_ref().is_some_and(|p| !p.is_empty())
        && record.content_id.is_some()
        && record.provider.as_deref() == Some(signer)
        && record.allowed_track_types.is_some()
        && record.policy.is_some();
    if !complete {
        return status("MALFORMED_REQUEST");
    }
    let payload = record.payload.clone().unwrap_or_default();
    if payload == BAD_CHALLENGE {
        return status("INVALID_LICENSE_CHALLENGE");
    }
    let persist = record.policy.is_some_and(|p| p.can_persist);
    json!({
        "status": "OK",
        "status_message": "",
        "license": STANDARD.encode(expected_widevine_license(&payload)),
        "license_metadata": {
            "content_id": STANDARD.encode(record.content_id.clone().unwrap_or_default()),
            "license_type": if persist { "OFFLINE" } else { "STREAMING" },
            "request_type": "NEW",
        },
        "message_type": "LICENSE",
    })
}

/// The service's verification: AES-256-CBC-decrypt the signature, strip PKCS#7, and compare
/// with SHA-1 of the request bytes in constant time.
fn signature_decrypts_to_digest(
    creds: &WidevineCredentials,
    request: &[u8],
    signature: &[u8],
) -> bool {
    let mut buffer = signature.to_vec();
    let Ok(plain) = cbc::Decryptor::<Aes256>::new(&creds.key.into(), &creds.iv.into())
        .decrypt_padded_mut::<Pkcs7>(&mut buffer)
    else {
        return false;
    };
    let digest = Sha1::digest(request);
    bool::from(plain.ct_eq(digest.as_slice()))
}

/// `policy_overrides` with every field present and of the right JSON type.
fn parse_policy(value: &Value) -> Option<WidevinePolicy> {
    let flag = |name: &str| value.get(name)?.as_bool();
    let seconds = |name: &str| value.get(name)?.as_u64();
    Some(WidevinePolicy {
        can_play: flag("can_play")?,
        can_persist: flag("can_persist")?,
        can_renew: flag("can_renew")?,
        license_duration_seconds: seconds("license_duration_seconds")?,
        rental_duration_seconds: seconds("rental_duration_seconds")?,
        playback_duration_seconds: seconds("playback_duration_seconds")?,
    })
}

async fn playready_license(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let mut record = PlayReadyRequest {
        soap_action: header_text("soapaction"),
        content_type: header_text("content-type"),
        custom_data: query.get("customdata").cloned(),
        claims: None,
        challenge: body.to_vec(),
        http_status: 0,
        refusal: None,
    };
    let failure = shared.failure();
    if failure != Failure::None {
        record.http_status = if failure == Failure::Http500 { 500 } else { 0 };
        shared.record(ProviderRequest::PlayReady(record));
        return misbehave(failure).await;
    }
    let answer = check_playready(&shared.playready_key, &mut record);
    let (status, xml) = match answer {
        Ok(claims) => (StatusCode::OK, license_response(claims)),
        Err((fault_code, reason)) => {
            record.refusal = Some(reason.clone());
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                soap_fault(fault_code, &reason),
            )
        }
    };
    record.http_status = status.as_u16();
    shared.record(ProviderRequest::PlayReady(record));
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

type Fault = (&'static str, String);

fn check_playready(key: &[u8], record: &mut PlayReadyRequest) -> Result<PlayReadyClaims, Fault> {
    let server = |reason: &str| ("soap:Server", reason.to_string());
    let action = record
        .soap_action
        .as_deref()
        .map(|a| a.trim().trim_matches('"'));
    if action != Some(PLAYREADY_ACQUIRE_LICENSE) {
        return Err(server("missing or unknown SOAPAction"));
    }
    let custom_data = record
        .custom_data
        .as_deref()
        .ok_or_else(|| server("no customdata"))?;
    let claims = verify_custom_data(key, custom_data).map_err(|why| server(&why))?;
    record.claims = Some(claims.clone());
    let challenge = String::from_utf8_lossy(&record.challenge);
    let looks_like_challenge = challenge.contains("Envelope")
        && challenge.contains("<AcquireLicense")
        && !challenge.contains("BAD-CHALLENGE");
    if !looks_like_challenge {
        return Err((
            "soap:Client",
            "the challenge is not a valid AcquireLicense request".into(),
        ));
    }
    Ok(claims)
}

/// The license server's check of the custom data: HMAC-SHA256 of the first part, then the
/// claims, then expiry.
fn verify_custom_data(key: &[u8], custom_data: &str) -> Result<PlayReadyClaims, String> {
    let (body, tag) = custom_data
        .split_once('.')
        .ok_or("custom data has no MAC")?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| "custom data MAC is not base64url")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| "bad key")?;
    mac.update(body.as_bytes());
    mac.verify_slice(&tag)
        .map_err(|_| "custom data MAC does not match")?;
    let json = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| "custom data is not base64url")?;
    let value: Value = serde_json::from_slice(&json).map_err(|_| "custom data is not JSON")?;
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(String::from);
    let number = |name: &str| value.get(name).and_then(Value::as_u64);
    let claims = (|| {
        Some(PlayReadyClaims {
            user_id: text("userId")?,
            video_id: text("videoId")?,
            license_id: text("licenseId")?,
            license_type: text("licenseType")?,
            duration_secs: number("durationSecs")?,
            expires_at: number("expiresAt")?,
        })
    })()
    .ok_or("custom data lacks a claim")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now >= claims.expires_at {
        return Err("custom data expired".into());
    }
    Ok(claims)
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn license_response(claims: PlayReadyClaims) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>"#,
            r#"<AcquireLicenseResponse xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols">"#,
            "<AcquireLicenseResult><Response><LicenseResponse><Licenses>",
            "<License>PR-LICENSE:{}:{}:{}</License>",
            "</Licenses></LicenseResponse></Response></AcquireLicenseResult>",
            "</AcquireLicenseResponse></soap:Body></soap:Envelope>"
        ),
        xml_escape(&claims.license_id),
        xml_escape(&claims.license_type),
        claims.duration_secs
    )
}

fn soap_fault(fault_code: &str, reason: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>"#,
            "<soap:Fault><faultcode>{}</faultcode><faultstring>{}</faultstring></soap:Fault>",
            "</soap:Body></soap:Envelope>"
        ),
        fault_code,
        xml_escape(reason)
    )
}
