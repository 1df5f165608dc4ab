//! Transcoding and playback endpoints kept from the service this product replaces:
//! `POST /media/transcode`, `GET /media/transcode/{fileId}`, `POST /media/monitor-jobs`,
//! `GET /media/{fileId}/manifest`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use playback::entitlement::decide_drm_packaging;
use playback::token::hls_master_path;
use playback::token::session::SessionSubject;
use playback::Reason;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{path_uuid, unix_now, Admin, ApiJson, JsonBody, Viewer, SMALL_JSON_BODY};
use super::AppState;
use crate::db::files::FileRecord;
use crate::db::jobs::status as job_status;
use crate::db::{now, DbError};
use crate::entitlements;
use crate::transcode::protection::{Protection, ProtectionRefusal};
use crate::transcode::Backend;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranscodeBody {
    /// The uploaded file (a UUID).
    file_id: String,
    /// Encrypt the title; needs a Pro or Enterprise subscription.
    #[serde(default)]
    enable_drm: bool,
    /// How: `cbcs` or `cenc` (CMAF with HLS and DASH, multi-DRM), `aes-128` (MPEG-TS HLS) with
    /// DRM on, `none` (clear CMAF) with DRM off. Omitted: `transcode.protection` (default
    /// `cbcs`) with DRM on, `none` with DRM off.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "cbcs")]
    protection: Option<String>,
}

impl JsonBody for TranscodeBody {
    const MAX_BYTES: usize = SMALL_JSON_BODY;
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranscodeAccepted {
    file_id: Uuid,
    job_id: Uuid,
    status: &'static str,
    progress: u8,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranscodeStatus {
    file_id: Uuid,
    /// `pending`, `processing`, `completed` or `failed`.
    status: String,
    /// 0-100 (MediaConvert: its `JobPercentComplete`, 100 once published).
    progress: i32,
    hls_manifest_url: Option<String>,
    /// Why the job failed (for MediaConvert the service's error code and message).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MonitorReport {
    requeued: u32,
    failed: u32,
    /// MediaConvert jobs watched again (never submitted twice).
    resumed: u32,
    live: usize,
    jobs: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestUrl {
    url: String,
    expires_at: String,
}

/// `POST /media/transcode {"fileId","enableDrm","protection"}` -> 202; the owner only.
#[utoipa::path(
    post,
    path = "/media/transcode",
    tag = "media",
    request_body = TranscodeBody,
    responses(
        (status = 202, description = "Queued; poll GET /media/transcode/{fileId}", body = TranscodeAccepted),
        (status = 400, description = "Malformed body, or a protection that is unknown (`invalid_protection`), does not fit `enableDrm` (`protection_mismatch`) or that the backend cannot make (`protection_unsupported`: cbcs/cenc on MediaConvert without SPEKE)"),
        (status = 401, description = "No or bad token"),
        (status = 403, description = "Not the owner, or DRM without a paid tier"),
        (status = 404, description = "No such file"),
        (status = 409, description = "Already being transcoded"),
        (status = 413, description = "Body too large"),
        (status = 415, description = "Not JSON"),
    ),
    security(("bearer" = []))
)]
pub async fn start_transcode(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiJson(body): ApiJson<TranscodeBody>,
) -> Result<(StatusCode, Json<TranscodeAccepted>), ApiError> {
    let file_id = Uuid::parse_str(&body.file_id).map_err(|_| ApiError::unknown_file())?;
    let protection = title_protection(&app, &body)?;
    let file = app
        .db
        .file(file_id)
        .await?
        .ok_or_else(ApiError::unknown_file)?;
    if file.owner_id != viewer.user_id() {
        return Err(
            if entitlements::can_see(&app.db, &file, viewer.user_id()).await? {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "not_owner",
                    "Only the file's owner can start a transcode.",
                )
            } else {
                ApiError::unknown_file()
            },
        );
    }
    if body.enable_drm {
        let tier = app.db.active_tier(viewer.user_id(), now()).await?;
        if decide_drm_packaging(tier.as_ref()).is_err() {
            let on = tier.map_or("no subscription".to_string(), |t| {
                format!("the {} tier", t.name)
            });
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                Reason::TierRequired.code(),
                format!(
                    "DRM packaging needs a Pro or Enterprise subscription; this account has {on}."
                ),
            ));
        }
    }
    let output_prefix = app.runner.output_prefix(file_id);
    let job = app
        .db
        .create_job(
            file_id,
            body.enable_drm,
            protection.as_str(),
            &file.storage_path,
            &output_prefix,
            now(),
        )
        .await
        .map_err(|e| match e {
            DbError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "already_processing",
                "This file is already being transcoded; poll GET /media/transcode/{fileId}.",
            ),
            other => other.into(),
        })?;
    tracing::info!(userId = %viewer.user_id(), fileId = %file_id, jobId = %job.id, drm = body.enable_drm, protection = %protection, "transcode queued");
    let accepted = TranscodeAccepted {
        file_id,
        job_id: job.id,
        status: job_status::PROCESSING,
        progress: 0,
    };
    app.runner.submit(job);
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// The protection of the title `body` asks for ([`Protection::resolve`], the default from
/// `transcode.protection`). On MediaConvert, `cbcs`/`cenc` need SPEKE
/// (`transcode.mediaconvert.drm = "speke"`): static keys make AES-128 HLS only.
fn title_protection(app: &AppState, body: &TranscodeBody) -> Result<Protection, ApiError> {
    let transcode = &app.config.transcode;
    let default = Protection::configured(transcode);
    let protection = Protection::resolve(body.protection.as_deref(), body.enable_drm, default)
        .map_err(|refusal| {
            let code = match refusal {
                ProtectionRefusal::Unknown(_) => "invalid_protection",
                ProtectionRefusal::NeedsDrm(_) | ProtectionRefusal::NoneWithDrm => {
                    "protection_mismatch"
                }
            };
            ApiError::bad_request(code, refusal.to_string())
        })?;
    let static_keys = matches!(app.runner.backend(), Backend::MediaConvert(_))
        && transcode.mediaconvert.drm != "speke";
    if static_keys && protection.encrypts() && protection.is_cmaf() {
        return Err(ApiError::bad_request(
            "protection_unsupported",
            format!(
                "MediaConvert with static keys makes aes-128 HLS; {protection} needs SPEKE \
                 (transcode.mediaconvert.drm = \"speke\")."
            ),
        ));
    }
    Ok(protection)
}

/// `GET /media/transcode/{fileId}`: the latest job's state; visible to the owner and members.
#[utoipa::path(
    get,
    path = "/media/transcode/{fileId}",
    tag = "media",
    params(("fileId" = String, Path, description = "The file (a UUID)")),
    responses(
        (status = 200, description = "The latest job, with the failure reason if it failed", body = TranscodeStatus),
        (status = 401, description = "No or bad token"),
        (status = 404, description = "No such file visible to this viewer (or not a UUID)"),
    ),
    security(("bearer" = []))
)]
pub async fn transcode_status(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(raw_id): Path<String>,
) -> Result<Json<TranscodeStatus>, ApiError> {
    let file = visible_file(&app, &viewer, &raw_id).await?;
    let job = app.db.latest_job_for_file(file.id).await?;
    let hls_manifest_url = file.is_ready().then(|| app.runner.manifest_url(file.id));
    let status = match job {
        Some(job) => TranscodeStatus {
            file_id: file.id,
            error: job
                .error_message
                .filter(|_| job.status == job_status::FAILED),
            status: job.status,
            progress: job.progress,
            hls_manifest_url,
        },
        None => TranscodeStatus {
            file_id: file.id,
            status: file.transcoding_status.clone(),
            progress: if file.is_ready() { 100 } else { 0 },
            hls_manifest_url,
            error: None,
        },
    };
    Ok(Json(status))
}

/// `POST /media/monitor-jobs` (admin): re-runs or fails jobs no live worker owns, watches
/// MediaConvert jobs again; job counts.
#[utoipa::path(
    post,
    path = "/media/monitor-jobs",
    tag = "admin",
    responses(
        (status = 200, description = "What was reconciled, and job counts by status", body = MonitorReport),
        (status = 401, description = "No or bad token"),
        (status = 403, description = "Not an admin"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn monitor_jobs(
    State(app): State<AppState>,
    Admin(viewer): Admin,
) -> Result<Json<MonitorReport>, ApiError> {
    let done = app
        .runner
        .reconcile("the loss of its worker (found by monitor-jobs)")
        .await?;
    tracing::info!(userId = %viewer.user_id(), requeued = done.requeued, failed = done.failed, "jobs reconciled");
    Ok(Json(MonitorReport {
        requeued: done.requeued,
        failed: done.failed,
        resumed: done.resumed,
        live: app.runner.live_count(),
        jobs: app.runner.counts().await?,
    }))
}

/// `GET /media/{fileId}/manifest`: a signed master playlist URL on the edge for an entitled
/// viewer.
#[utoipa::path(
    get,
    path = "/media/{fileId}/manifest",
    tag = "media",
    params(("fileId" = String, Path, description = "The title (a UUID)")),
    responses(
        (status = 200, description = "A signed master-playlist URL on the edge", body = ManifestUrl),
        (status = 401, description = "No or bad token"),
        (status = 403, description = "Not entitled (the reason code says why)"),
        (status = 404, description = "No such file (or not a UUID)"),
        (status = 409, description = "Not transcoded yet (`not_ready`)"),
        (status = 410, description = "The title's key was revoked"),
    ),
    security(("bearer" = []))
)]
pub async fn manifest(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(raw_id): Path<String>,
) -> Result<Json<ManifestUrl>, ApiError> {
    let file_id = path_uuid(&raw_id)?;
    let file = app
        .db
        .file(file_id)
        .await?
        .ok_or_else(ApiError::unknown_file)?;
    entitlements::decide(&app.db, &file, viewer.user_id(), now())
        .await?
        .map_err(|reason| {
            tracing::info!(userId = %viewer.user_id(), fileId = %file_id, reason = reason.code(), "manifest refused");
            ApiError::denied(reason)
        })?;
    let expires_at = unix_now() + app.config.signed_urls.manifest_ttl_secs;
    let video_id = file_id.to_string();
    // A manifest token opening a new playback session (the edge's format: EdgeAuth v2).
    let session = SessionSubject {
        session_id: Some(Uuid::new_v4().simple().to_string()),
        user_id: Some(viewer.user_id().to_string()),
        jti: viewer.claims.jti.clone(),
    };
    let token = app
        .url_signer
        .mint_manifest(&video_id, &session, expires_at);
    // The token travels exactly as minted (the edge does not percent-decode it).
    let url = format!(
        "{}{}?hdnts={token}",
        app.config.edge_base(),
        hls_master_path(&video_id)
    );
    let expires =
        OffsetDateTime::from_unix_timestamp(i64::try_from(expires_at).unwrap_or(i64::MAX))
            .map_err(ApiError::internal)?
            .format(&Rfc3339)
            .map_err(ApiError::internal)?;
    tracing::info!(userId = %viewer.user_id(), fileId = %file_id, "manifest url issued");
    Ok(Json(ManifestUrl {
        url,
        expires_at: expires,
    }))
}

/// The file behind a path id if the viewer may see it; 404 otherwise (existence is not leaked).
async fn visible_file(
    app: &AppState,
    viewer: &Viewer,
    raw_id: &str,
) -> Result<FileRecord, ApiError> {
    let id = path_uuid(raw_id)?;
    let file = app.db.file(id).await?.ok_or_else(ApiError::unknown_file)?;
    if entitlements::can_see(&app.db, &file, viewer.user_id()).await? {
        Ok(file)
    } else {
        Err(ApiError::unknown_file())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn statuses_agree() {
        use crate::db::files::status as file_status;
        assert_eq!(file_status::PROCESSING, super::job_status::PROCESSING);
        assert_eq!(file_status::COMPLETED, super::job_status::COMPLETED);
    }
}
