//! Runs one transcoding job on MediaConvert: submission, then a monitoring loop until the job
//! completes or fails.
//!
//! What is made follows the job's protection: `aes-128` (and older rows) an HLS MPEG-TS group,
//! AES-128 with a static key or SPEKE as `drm` says; `cbcs`/`cenc` a CMAF group (HLS + DASH)
//! with SPEKE v2; `none` a clear CMAF group ([`super::mediaconvert::JobOutput`]). A CMAF job's
//! `master.mpd` is copied to `manifest.mpd` (the name the edge serves) before the title is
//! published.
//!
//! Submission (holding one of the runner's slots): count an attempt; for an `aes-128` DRM title
//! with `drm = "static_key"`, draw the content key from key custody *first* (custody down → the job
//! fails with a `key custody: ...` reason and nothing is uploaded or written) and record the
//! generation in the key audit trail ([`job::draw_key`], shared with the local runner); upload the source to the input bucket; store the wrapped
//! key; `CreateJob` (idempotent: the token is our job id and attempt, so a retried call never
//! starts a second job); record MediaConvert's job id on our job. A failure after the key row
//! was written deletes it again.
//!
//! Monitoring: `GetJob` every `poll_interval_ms`, `JobPercentComplete` → the job's progress
//! (capped at 99 until published). Retryable errors (throttling, 5xx, timeouts, no connection)
//! back off exponentially up to `max_poll_interval_ms` and never fail the job: MediaConvert keeps
//! working while we cannot see it. COMPLETE publishes the title ([`job::complete`]: manifest URL
//! on the edge, the content key from the job's `keyId` user metadata); ERROR/CANCELED or a non-retryable error
//! fails it with the service's reason (`ErrorCode` and `ErrorMessage`).
//!
//! A job in `processing` with a MediaConvert id (a restart, or a monitor that gave up with the
//! process) is resumed by [`super::runner::JobRunner::reconcile`]: monitoring only, no second
//! `CreateJob`, no new attempt counted.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::Semaphore;
use uuid::Uuid;

use super::job::{self, JobError};
use super::ladder::plan_renditions;
use super::mediaconvert::{
    job_settings, CallError, CmafSpeke, JobEncryption, JobOutput, JobSpec, JobState, MediaConvert,
    MEDIACONVERT_MPD, META_FILE_ID, META_JOB_ID, META_KEY_ID,
};
use super::protection::Protection;
use super::transcoder::DASH_MANIFEST;
use crate::db::jobs::JobRecord;
use crate::db::{now, Db};
use crate::keys::{GeneratedKey, KeyCustody};
/// Attempts of a submission call (upload, `CreateJob`) on retryable errors.
const SUBMIT_ATTEMPTS: u32 = 4;

/// What the MediaConvert path of the runner needs.
pub(crate) struct Context<'a> {
    pub db: &'a Db,
    pub custody: &'a dyn KeyCustody,
    pub mc: &'a MediaConvert,
    pub slots: &'a Semaphore,
}

/// Submits `job` unless MediaConvert already has it, then watches it to the end.
pub(crate) async fn run(ctx: &Context<'_>, job: &JobRecord) -> Result<(), JobError> {
    match job.job_id.as_deref() {
        Some(remote) => {
            tracing::info!(fileId = %job.file_id, jobId = %job.id, mediaconvertJob = %remote, "resuming a MediaConvert job");
            let remote = remote.to_string();
            watch(ctx, job, &remote, None).await
        }
        None => {
            let (remote, key_id) = submit(ctx, job).await?;
            watch(ctx, job, &remote, key_id).await
        }
    }
}

/// Everything up to and including `CreateJob`; returns MediaConvert's job id and our key id.
async fn submit(ctx: &Context<'_>, job: &JobRecord) -> Result<(String, Option<Uuid>), JobError> {
    let _slot = ctx
        .slots
        .acquire()
        .await
        .expect("the job semaphore is never closed");
    let db = ctx.db;
    let settings = ctx.mc.settings();
    let attempt = db.start_job_attempt(job.id, now()).await?;
    tracing::info!(fileId = %job.file_id, jobId = %job.id, attempt, drm = job.enable_drm, "MediaConvert submission started");
    let file = db
        .file(job.file_id)
        .await?
        .ok_or(JobError::MissingFile(job.file_id))?;
    let source = PathBuf::from(&file.storage_path);
    if !tokio::fs::try_exists(&source).await.unwrap_or(false) {
        return Err(JobError::MissingFile(job.file_id));
    }

    let static_key = uses_static_key(job, &settings.config.drm);
    let key = if static_key {
        let detail = "mediaconvert static key";
        Some(job::draw_key(db, ctx.custody, job.file_id, detail).await?)
    } else {
        None
    };

    let input_url = with_retries(ctx, "uploading the source", || {
        ctx.mc.upload_source(job.file_id, &source, &file.name)
    })
    .await?;

    if let Some((key_id, generated)) = &key {
        db.insert_content_key(*key_id, job.file_id, &generated.wrapped, now())
            .await?;
    }
    let created = create(ctx, job, attempt, &input_url, key.as_ref()).await;
    let key_id = key.as_ref().map(|(id, _)| *id);
    drop(key);
    match created {
        Ok(remote) => {
            tracing::info!(fileId = %job.file_id, jobId = %job.id, mediaconvertJob = %remote, "MediaConvert job created");
            Ok((remote, key_id))
        }
        Err(e) => {
            discard_key(db, key_id, job.file_id).await;
            Err(e)
        }
    }
}

async fn create(
    ctx: &Context<'_>,
    job: &JobRecord,
    attempt: i32,
    input_url: &str,
    key: Option<&(Uuid, GeneratedKey)>,
) -> Result<String, JobError> {
    let settings = ctx.mc.settings();
    let c = &settings.config;
    let renditions = plan_renditions(&settings.renditions, u32::MAX);
    let output_dir = settings.output_dir(job.file_id);
    let certificate_arn =
        (!c.speke_certificate_arn.is_empty()).then(|| c.speke_certificate_arn.clone());
    let protection = Protection::of_job(job.protection.as_deref(), job.enable_drm);
    let output = if protection.is_cmaf() {
        JobOutput::Cmaf(protection.encrypts().then(|| CmafSpeke {
            scheme: protection,
            resource_id: job.file_id.to_string(),
            url: c.speke_url.clone(),
            certificate_arn,
        }))
    } else {
        JobOutput::Hls(match key {
            Some((key_id, generated)) => JobEncryption::StaticKey {
                key: &generated.key,
                key_url: settings.key_url(job.file_id, *key_id),
            },
            None if job.enable_drm => JobEncryption::Speke {
                resource_id: job.file_id.to_string(),
                url: c.speke_url.clone(),
                system_ids: c.speke_system_ids.clone(),
                certificate_arn,
            },
            None => JobEncryption::None,
        })
    };
    let mut metadata = vec![
        (META_FILE_ID, job.file_id.to_string()),
        (META_JOB_ID, job.id.to_string()),
    ];
    if let Some((key_id, _)) = key {
        metadata.push((META_KEY_ID, key_id.to_string()));
    }
    // Holds the key in the clear when static: built here, dropped at the end of this function.
    let job_settings = job_settings(&JobSpec {
        input_url,
        output_dir: &output_dir,
        renditions: &renditions,
        segment_seconds: settings.segment_seconds,
        output,
    });
    let token = format!("{}-a{attempt}", job.id);
    let remote = with_retries(ctx, "creating the MediaConvert job", || {
        ctx.mc.create_job(job_settings.clone(), &metadata, &token)
    })
    .await?;
    ctx.db
        .set_job_external_id(job.id, &remote, &output_dir, now())
        .await?;
    Ok(remote)
}

/// Polls `remote` until it ends; publishes or fails the title.
async fn watch(
    ctx: &Context<'_>,
    job: &JobRecord,
    remote: &str,
    submitted_key: Option<Uuid>,
) -> Result<(), JobError> {
    let c = &ctx.mc.settings().config;
    let poll = Duration::from_millis(c.poll_interval_ms);
    let ceiling = Duration::from_millis(c.max_poll_interval_ms);
    let mut errors = 0u32;
    let mut last_progress = -1;
    loop {
        match ctx.mc.get_job(remote).await {
            Ok(report) => {
                errors = 0;
                let key_id = submitted_key.or(report.key_id);
                match report.state {
                    JobState::Running { percent } => {
                        if let Some(p) = percent.map(|p| p.clamp(0, 99)) {
                            if p != last_progress {
                                if let Err(e) = ctx.db.set_job_progress(job.id, p, now()).await {
                                    tracing::warn!(jobId = %job.id, error = %e, "could not record progress");
                                }
                                last_progress = p;
                            }
                        }
                        tokio::time::sleep(poll).await;
                    }
                    JobState::Complete => return publish(ctx, job, key_id).await,
                    JobState::Failed { reason } => {
                        discard_key(ctx.db, key_id, job.file_id).await;
                        return Err(JobError::MediaConvert(reason));
                    }
                }
            }
            Err(e) if e.retryable => {
                errors = errors.saturating_add(1);
                let delay = backoff(poll, ceiling, errors);
                tracing::warn!(jobId = %job.id, mediaconvertJob = %remote, error = %e, retryInMs = delay.as_millis() as u64, "MediaConvert GetJob failed; backing off");
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                discard_key(ctx.db, submitted_key, job.file_id).await;
                return Err(JobError::MediaConvert(e.message));
            }
        }
    }
}

/// Whether the job's key is drawn here and handed to MediaConvert as a static key: `aes-128`
/// DRM titles with `drm = "static_key"` (CMAF titles get their keys from SPEKE v2).
fn uses_static_key(job: &JobRecord, drm: &str) -> bool {
    let protection = Protection::of_job(job.protection.as_deref(), job.enable_drm);
    protection == Protection::Aes128 && drm == "static_key"
}

/// `poll × 2^errors`, at most `ceiling`.
pub fn backoff(poll: Duration, ceiling: Duration, errors: u32) -> Duration {
    let factor = 1u32 << errors.min(16);
    poll.saturating_mul(factor).min(ceiling)
}

async fn publish(ctx: &Context<'_>, job: &JobRecord, key_id: Option<Uuid>) -> Result<(), JobError> {
    let settings = ctx.mc.settings();
    let protection = Protection::of_job(job.protection.as_deref(), job.enable_drm);
    let content_key_id = if uses_static_key(job, &settings.config.drm) {
        let key_id = key_id.ok_or_else(|| {
            JobError::MediaConvert("the MediaConvert job names no content key (keyId)".into())
        })?;
        if ctx.db.content_key(job.file_id, key_id).await?.is_none() {
            return Err(JobError::MediaConvert(format!(
                "the content key {key_id} of this job is not stored"
            )));
        }
        Some(key_id)
    } else {
        None
    };
    if protection.is_cmaf() {
        with_retries(ctx, "copying the DASH manifest", || {
            ctx.mc
                .copy_output(job.file_id, MEDIACONVERT_MPD, DASH_MANIFEST)
        })
        .await?;
    }
    let encrypted_at = protection.encrypts().then(now);
    job::complete(
        ctx.db,
        &settings.edge_base,
        job,
        content_key_id,
        encrypted_at,
    )
    .await?;
    tracing::info!(fileId = %job.file_id, jobId = %job.id, "MediaConvert transcode completed");
    Ok(())
}

/// Runs a submission call, retrying retryable failures with back-off.
async fn with_retries<T, F, Fut>(ctx: &Context<'_>, what: &str, mut call: F) -> Result<T, JobError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    let c = &ctx.mc.settings().config;
    let poll = Duration::from_millis(c.poll_interval_ms);
    let ceiling = Duration::from_millis(c.max_poll_interval_ms);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if e.retryable && attempt < SUBMIT_ATTEMPTS => {
                let delay = backoff(poll, ceiling, attempt);
                tracing::warn!(error = %e, attempt, retryInMs = delay.as_millis() as u64, "{what} failed; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(e) => return Err(JobError::MediaConvert(e.message)),
        }
    }
}

/// Deletes a key row made for a job that will not publish (best effort: an orphan key is
/// harmless, it serves nothing).
async fn discard_key(db: &Db, key_id: Option<Uuid>, file_id: Uuid) {
    if let Some(key_id) = key_id {
        if let Err(e) = db.discard_unused_content_key(key_id, file_id).await {
            tracing::warn!(fileId = %file_id, keyId = %key_id, error = %e, "could not discard an unused content key");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let poll = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        assert_eq!(backoff(poll, max, 1), Duration::from_millis(200));
        assert_eq!(backoff(poll, max, 3), Duration::from_millis(800));
        assert_eq!(backoff(poll, max, 4), max);
        assert_eq!(backoff(poll, max, 1000), max);
    }
}
