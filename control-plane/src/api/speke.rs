//! `POST /speke/v2/copyProtection`: the SPEKE v2.0 key provider AWS MediaConvert / MediaPackage
//! (and in-house encryptors) call for content keys, over the pure CPIX layer
//! [`playback::speke`].
//!
//! Order of checks (each bounded before the next): `[speke] enabled` (404 otherwise), the shared
//! credential (`Authorization: Bearer` or `X-Api-Key`, compared in constant time against every
//! line of `speke.credential_file`, so two values work during a rotation; 401), the body size
//! (256 KiB, 413), `Content-Type` (`application/xml` / `text/xml`, 415), `X-Speke-Version: 2.0`,
//! then the CPIX document. SPEKE refusals answer as SPEKE prescribes: `text/plain` with AWS's
//! wording and `X-Speke-Version` (400 XML faults, 422 SPEKE/CPIX semantics). Authentication and
//! custody failures are the API's usual JSON errors.
//!
//! Keys: `CPIX@contentId` is the title's file id (a UUID; unknown → 422). Each kid is a
//! `content_keys.id`: an existing key of the title is opened through custody, a new kid gets a
//! fresh key from custody and is stored, so the same request twice returns the same keys. A kid
//! stored under another title, or one retired or revoked, is refused (422). Every custody call
//! happens before anything is written: with custody down the answer is 503 naming the backend
//! and no row was added. Every key handed out (and every failed custody call) leaves a
//! `speke_issue` audit record.

use std::collections::HashSet;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use playback::speke::{
    self, ContentKeyMaterial, KeyId, Signaling, SpekeError, MAX_DOCUMENT_BYTES, SPEKE_VERSION,
    X_SPEKE_USER_AGENT, X_SPEKE_VERSION,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{bearer, content_length};
use super::AppState;
use crate::db::content_keys::{ContentKeyRecord, KeyInsert};
use crate::db::key_audit::{audit, KeyAction, KeyEvent};
use crate::db::now;
use crate::keys::{ContentKey, CustodyError};

/// The key provider's name in `X-Speke-User-Agent`.
pub const KEY_PROVIDER: &str = concat!("streaming-edge-control-plane/", env!("CARGO_PKG_VERSION"));
/// Longest encryptor user agent kept for the audit actor.
const MAX_AGENT_CHARS: usize = 100;

/// A SPEKE refusal: `text/plain` with the SPEKE message and `X-Speke-Version`.
fn speke_error(e: &SpekeError) -> Response {
    if let SpekeError::MalformedContract { reason } = e {
        tracing::info!(code = e.code(), reason, "SPEKE request refused");
    } else {
        tracing::info!(
            code = e.code(),
            status = e.status(),
            "SPEKE request refused"
        );
    }
    speke_text(
        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
        e.to_string(),
    )
}

/// A `text/plain` SPEKE answer with our own wording.
fn speke_text(status: StatusCode, message: String) -> Response {
    let mut res = (status, message).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(X_SPEKE_VERSION, HeaderValue::from_static(SPEKE_VERSION));
    res
}

/// True when `headers` carry one of the configured credentials. Digests are compared so the
/// comparison takes the same time whatever the lengths; every line is checked (no early exit).
fn authorized(headers: &HeaderMap, credentials: &[String]) -> bool {
    let presented = bearer(headers)
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .unwrap_or("")
        .trim();
    let digest = Sha256::digest(presented.as_bytes());
    let mut ok = subtle::Choice::from(0);
    for c in credentials {
        ok |= digest
            .as_slice()
            .ct_eq(Sha256::digest(c.as_bytes()).as_slice());
    }
    !presented.is_empty() && bool::from(ok)
}

/// The audit actor: `speke:` and the encryptor's user agent (printable, bounded).
fn actor(headers: &HeaderMap) -> String {
    let agent = headers
        .get(X_SPEKE_USER_AGENT)
        .or_else(|| headers.get(header::USER_AGENT))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    let clean: String = agent
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_AGENT_CHARS)
        .collect();
    format!("speke:{clean}")
}

/// The signaling for one title, from `[speke]` and the edge's public URL.
fn signaling(app: &AppState, video_id: Uuid) -> Signaling {
    let c = &app.config.speke;
    let edge = app.config.edge_base();
    let video = video_id.to_string();
    let fill = |template: &str, default: String| {
        if template.is_empty() {
            default
        } else {
            template.replace("{videoId}", &video)
        }
    };
    Signaling {
        widevine_provider: (!c.widevine_provider.is_empty()).then(|| c.widevine_provider.clone()),
        playready_la_url: Some(fill(
            &c.playready_la_url,
            format!("{edge}/drm/playready/{video}"),
        )),
        fairplay_key_uri_prefix: c.fairplay_key_uri_prefix.clone(),
        aes128_key_uri_prefix: Some(fill(
            &c.aes128_key_uri_prefix,
            format!("{edge}/keys/{video}/"),
        )),
    }
}

/// Where a requested kid stands before any custody call.
enum Planned {
    /// Stored for this title: open it.
    Existing(Box<ContentKeyRecord>),
    /// Not stored: generate it.
    New,
}

/// A key ready for the response, and whether it still has to be stored.
struct Issued {
    key_id: Uuid,
    kid: KeyId,
    key: ContentKey,
    /// The envelope to store, for a kid seen for the first time.
    wrapped: Option<String>,
}

/// `POST /speke/v2/copyProtection`.
#[utoipa::path(
    post,
    path = "/speke/v2/copyProtection",
    tag = "speke",
    request_body(content = String, content_type = "application/xml",
        description = "A SPEKE v2.0 CPIX 2.3 request document"),
    params(("X-Speke-Version" = String, Header, description = "Must be 2.0")),
    responses(
        (status = 200, description = "The filled CPIX document", content_type = "application/xml", body = String),
        (status = 400, description = "Not an acceptable XML document", content_type = "text/plain", body = String),
        (status = 401, description = "No or wrong SPEKE credential"),
        (status = 404, description = "The key provider is disabled (`speke.enabled = false`)"),
        (status = 413, description = "Body larger than 256 KiB", content_type = "text/plain", body = String),
        (status = 415, description = "Content-Type is not application/xml or text/xml", content_type = "text/plain", body = String),
        (status = 422, description = "SPEKE/CPIX refusal, e.g. `Unsupported SPEKE version`", content_type = "text/plain", body = String),
        (status = 503, description = "Key custody unavailable; nothing written"),
    ),
    security(("speke" = []))
)]
pub async fn copy_protection(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !app.config.speke.enabled {
        return Err(ApiError::not_found());
    }
    // Re-read per request, so a rotation needs no restart.
    let credentials = app.speke_credentials.read().map_err(ApiError::internal)?;
    if !authorized(&headers, &credentials) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "The SPEKE endpoint needs the shared credential in `Authorization: Bearer` or `X-Api-Key`.",
        ));
    }
    let too_large = SpekeError::TooLarge {
        limit: MAX_DOCUMENT_BYTES,
    };
    if content_length(&headers).is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
        return Ok(speke_error(&too_large));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/xml" && mime != "text/xml" {
        return Ok(speke_text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/xml".into(),
        ));
    }
    if let Err(e) =
        speke::check_speke_version(headers.get(X_SPEKE_VERSION).and_then(|v| v.to_str().ok()))
    {
        return Ok(speke_error(&e));
    }
    // Reading at most one byte past the limit tells "too large" apart without buffering more.
    let Ok(bytes) = to_bytes(body, MAX_DOCUMENT_BYTES + 1).await else {
        return Ok(speke_error(&too_large));
    };
    let request = match speke::parse_request(&bytes) {
        Ok(r) => r,
        Err(e) => return Ok(speke_error(&e)),
    };

    let Some(video_id) = Uuid::try_parse(&request.content_id)
        .ok()
        .filter(|id| id.hyphenated().to_string() == request.content_id.to_ascii_lowercase())
    else {
        return Ok(speke_text(
            StatusCode::UNPROCESSABLE_ENTITY,
            "CPIX@contentId must be the video id (a UUID) of a title known to this key provider"
                .into(),
        ));
    };
    if app.db.file(video_id).await?.is_none() {
        return Ok(speke_text(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Unknown CPIX@contentId {video_id}: no such video"),
        ));
    }

    // Phase 1, reads only: where each kid stands. Refusals happen before any custody call.
    let mut plan = Vec::new();
    let mut seen = HashSet::new();
    for kid in request.kids() {
        let key_id = Uuid::from_bytes(kid.0);
        if !seen.insert(key_id) {
            continue;
        }
        match app.db.content_key_by_id(key_id).await? {
            Some(row) if row.content_id != video_id => {
                return Ok(speke_text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("KID {key_id} is already used by another content"),
                ));
            }
            Some(row) if !row.in_service() => {
                return Ok(speke_text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("KID {key_id} is retired or revoked; use a new KID"),
                ));
            }
            Some(row) => plan.push((kid, key_id, Planned::Existing(Box::new(row)))),
            None => plan.push((kid, key_id, Planned::New)),
        }
    }

    // Phase 2, custody only: open or generate every key. Nothing is written yet.
    let actor = actor(&headers);
    let backend = app.custody.backend();
    let video = video_id.to_string();
    let mut issued = Vec::with_capacity(plan.len());
    for (kid, key_id, planned) in plan {
        let key = key_id.to_string();
        let result = match &planned {
            Planned::Existing(row) => app
                .custody
                .unwrap(&video, &key, &row.content_key)
                .await
                .map(|k| (k, None)),
            Planned::New => app
                .custody
                .generate(&video, &key)
                .await
                .map(|g| (ContentKey::new(*g.key.bytes()), Some(g.wrapped.clone()))),
        };
        match result {
            Ok((key, wrapped)) => issued.push(Issued {
                key_id,
                kid,
                key,
                wrapped,
            }),
            Err(e) => return Err(custody_failed(&app, &actor, video_id, key_id, e).await),
        }
    }

    // Phase 3, writes: store the new kids. A concurrent identical request may have stored one
    // first; then its stored key wins and is opened instead, so both answers agree.
    let at = now();
    for item in &mut issued {
        let Some(wrapped) = item.wrapped.take() else {
            continue;
        };
        match app
            .db
            .insert_key_if_absent(video_id, item.key_id, &wrapped, at)
            .await?
        {
            KeyInsert::Inserted => item.wrapped = Some(wrapped),
            KeyInsert::Exists(row) => {
                let key = item.key_id.to_string();
                match app.custody.unwrap(&video, &key, &row.content_key).await {
                    Ok(k) => item.key = k,
                    Err(e) => {
                        return Err(custody_failed(&app, &actor, video_id, item.key_id, e).await)
                    }
                }
            }
            KeyInsert::OtherTitle => {
                return Ok(speke_text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("KID {} is already used by another content", item.key_id),
                ));
            }
        }
    }

    let mut material: Vec<ContentKeyMaterial> = issued
        .iter()
        .map(|i| ContentKeyMaterial {
            kid: i.kid,
            key: *i.key.bytes(),
            explicit_iv: None,
        })
        .collect();
    let built = speke::build_response(&request, &material, &signaling(&app, video_id));
    // The plaintext copies go as soon as the document holds them.
    for m in &mut material {
        m.key.fill(0);
    }
    drop(material);
    let document = match built {
        Ok(d) => d,
        Err(e) => return Ok(speke_error(&e)),
    };
    for item in &issued {
        audit(
            &app.db,
            &KeyEvent {
                actor: &actor,
                action: KeyAction::SpekeIssue,
                content_id: Some(video_id),
                key_id: Some(item.key_id),
                backend,
                ok: true,
                detail: Some(if item.wrapped.is_some() {
                    "new key"
                } else {
                    "existing key"
                }),
            },
        )
        .await;
    }
    tracing::info!(fileId = %video_id, keys = issued.len(), actor = %actor, "SPEKE keys issued");
    drop(issued);

    let mut res = (StatusCode::OK, document).into_response();
    let out = res.headers_mut();
    for (name, value) in speke::response_headers(KEY_PROVIDER) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            out.insert(name, value);
        }
    }
    Ok(res)
}

/// Audits a failed custody call and maps it (a backend outage → 503 naming the backend).
async fn custody_failed(
    app: &AppState,
    actor: &str,
    video_id: Uuid,
    key_id: Uuid,
    e: CustodyError,
) -> ApiError {
    let detail = e.to_string();
    audit(
        &app.db,
        &KeyEvent {
            actor,
            action: KeyAction::SpekeIssue,
            content_id: Some(video_id),
            key_id: Some(key_id),
            backend: app.custody.backend(),
            ok: false,
            detail: Some(&detail),
        },
    )
    .await;
    ApiError::custody(app.custody.backend(), e)
}
