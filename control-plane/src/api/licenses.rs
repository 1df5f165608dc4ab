//! `POST /internal/v1/licenses` (service token): edges report the licenses they issued.
//!
//! Body `{"licenses": [LicenseRecord, ...]}`, at most [`MAX_LICENSES_PER_BATCH`] records and
//! [`MAX_BATCH_BYTES`] bytes (more is 413 `payload_too_large`). A record (camelCase):
//! `{id: uuid, videoId: uuid, userId, keyId: uuid|null, drmSystem: "clearkey"|"aes128"|
//! "fairplay"|"widevine"|"playready", licenseType: "rental"|"persistent", issuedAt: unix secs,
//! expiresAt: unix secs >= issuedAt, deviceId: string|null}`.
//!
//! Answer 200 `{"recorded": n, "duplicates": n, "rejected": [{"id", "reason"}]}`. Each record
//! is checked on its own, so one bad record never costs the others: an invalid one is rejected
//! with a reason (`invalid_record`, `invalid_id`, `invalid_user_id`, `invalid_device_id`,
//! `unknown_drm_system`, `unknown_license_type`, `invalid_times`), as is one naming a title that
//! does not exist (`unknown_video`); rejected records must not be retried. A record whose id is
//! already stored is a duplicate (a replay from the edge's outbox), not an error. Valid records
//! are stored in one transaction (see [`crate::db::licenses`], also for unmatched key ids).

use axum::extract::State;
use axum::Json;
use playback::license::policy::LicenseKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiJson, EdgeService, JsonBody};
use super::AppState;
use crate::db::licenses::{DrmSystem, LicenseOutcome, NewLicense};
use crate::db::now;
use crate::db::users::valid_user_id;

/// Most records in one batch.
pub const MAX_LICENSES_PER_BATCH: usize = 500;
/// Largest accepted body: 500 records with maximal user and device ids fit with room to spare.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Longest device id stored.
pub const MAX_DEVICE_ID_LEN: usize = 255;
/// How much of an unparseable record id is echoed back in `rejected`.
const MAX_ECHOED_ID_LEN: usize = 64;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LicenseBatchBody {
    /// Each record is validated on its own (see [`LicenseRecordWire`]).
    #[schema(value_type = Vec<LicenseRecordWire>)]
    licenses: Vec<Value>,
}

impl JsonBody for LicenseBatchBody {
    const MAX_BYTES: usize = MAX_BATCH_BYTES;
}

/// One record as sent by an edge, before validation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct LicenseRecordWire {
    id: String,
    video_id: String,
    user_id: String,
    #[serde(default)]
    key_id: Option<String>,
    drm_system: String,
    license_type: String,
    issued_at: i64,
    expires_at: i64,
    #[serde(default)]
    device_id: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Rejected {
    id: String,
    reason: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LicenseBatchAnswer {
    recorded: u32,
    duplicates: u32,
    rejected: Vec<Rejected>,
}

/// `POST /internal/v1/licenses`.
#[utoipa::path(
    post,
    path = "/internal/v1/licenses",
    tag = "internal",
    request_body = LicenseBatchBody,
    responses(
        (status = 200, description = "Recorded, duplicates and per-record rejections", body = LicenseBatchAnswer),
        (status = 400, description = "Malformed JSON"),
        (status = 413, description = "Too many records or bytes (`payload_too_large`)"),
        (status = 415, description = "Not JSON"),
    ),
    security(("edge_token" = []))
)]
pub async fn record(
    State(app): State<AppState>,
    _edge: EdgeService,
    ApiJson(body): ApiJson<LicenseBatchBody>,
) -> Result<Json<LicenseBatchAnswer>, ApiError> {
    if body.licenses.len() > MAX_LICENSES_PER_BATCH {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("Send at most {MAX_LICENSES_PER_BATCH} licenses per batch."),
        ));
    }
    let mut rejected = Vec::new();
    let mut valid = Vec::with_capacity(body.licenses.len());
    for raw in body.licenses {
        match parse_record(raw) {
            Ok(license) => valid.push(license),
            Err(r) => rejected.push(r),
        }
    }
    let batch = app.db.record_licenses(&valid, now()).await?;
    let (mut recorded, mut duplicates) = (0u32, 0u32);
    for (license, outcome) in valid.iter().zip(&batch.outcomes) {
        match outcome {
            LicenseOutcome::Recorded => recorded += 1,
            LicenseOutcome::Duplicate => duplicates += 1,
            LicenseOutcome::UnknownVideo => rejected.push(Rejected {
                id: license.id.to_string(),
                reason: "unknown_video",
            }),
        }
    }
    if batch.keys_unmatched > 0 {
        tracing::warn!(
            count = batch.keys_unmatched,
            "licenses named a key id their title does not have; stored without key_id"
        );
    }
    tracing::info!(
        recorded,
        duplicates,
        rejected = rejected.len(),
        "license batch recorded"
    );
    Ok(Json(LicenseBatchAnswer {
        recorded,
        duplicates,
        rejected,
    }))
}

/// Validates one record, or says why it is rejected.
fn parse_record(raw: Value) -> Result<NewLicense, Rejected> {
    let echoed_id: String = raw
        .get("id")
        .and_then(Value::as_str)
        .map(|id| id.chars().take(MAX_ECHOED_ID_LEN).collect())
        .unwrap_or_default();
    let reject = |reason| Rejected {
        id: echoed_id.clone(),
        reason,
    };
    let wire: LicenseRecordWire =
        serde_json::from_value(raw).map_err(|_| reject("invalid_record"))?;
    let uuid = |s: &str| Uuid::parse_str(s).map_err(|_| reject("invalid_id"));
    let id = uuid(&wire.id)?;
    let video_id = uuid(&wire.video_id)?;
    let key_id = wire.key_id.as_deref().map(uuid).transpose()?;
    if !valid_user_id(&wire.user_id) {
        return Err(reject("invalid_user_id"));
    }
    if let Some(device) = &wire.device_id {
        if device.is_empty()
            || device.len() > MAX_DEVICE_ID_LEN
            || device.chars().any(char::is_control)
        {
            return Err(reject("invalid_device_id"));
        }
    }
    let drm_system =
        DrmSystem::parse(&wire.drm_system).ok_or_else(|| reject("unknown_drm_system"))?;
    let license_type =
        LicenseKind::parse(&wire.license_type).ok_or_else(|| reject("unknown_license_type"))?;
    let time = |secs: i64| {
        (secs >= 0)
            .then(|| OffsetDateTime::from_unix_timestamp(secs).ok())
            .flatten()
            .ok_or_else(|| reject("invalid_times"))
    };
    let issued_at = time(wire.issued_at)?;
    let expires_at = time(wire.expires_at)?;
    if expires_at < issued_at {
        return Err(reject("invalid_times"));
    }
    Ok(NewLicense {
        id,
        video_id,
        user_id: wire.user_id,
        key_id,
        drm_system,
        license_type,
        issued_at,
        expires_at,
        device_id: wire.device_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Value {
        json!({
            "id": "6f1c7a8e-3b9f-4d3a-9c59-1f7f1d2f0a11",
            "videoId": "0d3c1f4e-2a6b-4c8d-9e0f-112233445566",
            "userId": "alice",
            "keyId": null,
            "drmSystem": "clearkey",
            "licenseType": "rental",
            "issuedAt": 1_700_000_000,
            "expiresAt": 1_700_003_600,
            "deviceId": null
        })
    }

    fn reason_for(change: impl FnOnce(&mut Value)) -> &'static str {
        let mut r = record();
        change(&mut r);
        parse_record(r).unwrap_err().reason
    }

    #[test]
    fn valid_records_parse() {
        let license = parse_record(record()).unwrap();
        assert_eq!(license.user_id, "alice");
        assert_eq!(license.drm_system, DrmSystem::ClearKey);
        assert_eq!(license.license_type, LicenseKind::Rental);
        assert_eq!(license.key_id, None);
        assert_eq!(license.issued_at.unix_timestamp(), 1_700_000_000);
        let mut r = record();
        r["keyId"] = json!("11111111-2222-4333-8444-555555555555");
        r["deviceId"] = json!("device-1");
        r["licenseType"] = json!("persistent");
        r["expiresAt"] = json!(1_700_000_000);
        let license = parse_record(r).unwrap();
        assert!(license.key_id.is_some());
        assert_eq!(license.device_id.as_deref(), Some("device-1"));
        // Optional fields may be absent.
        let mut r = record();
        r.as_object_mut().unwrap().remove("keyId");
        r.as_object_mut().unwrap().remove("deviceId");
        assert!(parse_record(r).is_ok());
    }

    #[test]
    fn each_problem_has_its_reason() {
        assert_eq!(reason_for(|r| r["id"] = json!("nope")), "invalid_id");
        assert_eq!(reason_for(|r| r["videoId"] = json!("x")), "invalid_id");
        assert_eq!(reason_for(|r| r["keyId"] = json!("x")), "invalid_id");
        assert_eq!(reason_for(|r| r["userId"] = json!("")), "invalid_user_id");
        assert_eq!(
            reason_for(|r| r["deviceId"] = json!("a\u{7}")),
            "invalid_device_id"
        );
        assert_eq!(
            reason_for(|r| r["drmSystem"] = json!("primetime")),
            "unknown_drm_system"
        );
        assert_eq!(
            reason_for(|r| r["licenseType"] = json!("lease")),
            "unknown_license_type"
        );
        assert_eq!(reason_for(|r| r["expiresAt"] = json!(1)), "invalid_times");
        assert_eq!(reason_for(|r| r["issuedAt"] = json!(-5)), "invalid_times");
        assert_eq!(
            reason_for(|r| r["expiresAt"] = json!(i64::MAX)),
            "invalid_times"
        );
        assert_eq!(reason_for(|r| r["issuedAt"] = json!(1.5)), "invalid_record");
        assert_eq!(reason_for(|r| r["userId"] = json!(7)), "invalid_record");
        assert_eq!(parse_record(json!("text")).unwrap_err().id, "");
        let long = "z".repeat(500);
        let rejected = parse_record(json!({"id": long})).unwrap_err();
        assert_eq!(
            (rejected.id.len(), rejected.reason),
            (MAX_ECHOED_ID_LEN, "invalid_record")
        );
    }
}
