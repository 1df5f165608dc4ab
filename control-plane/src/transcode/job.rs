//! The steps of a job both backends share, written once: drawing the title's content key from
//! custody (with its audit record) and completing the job (job and file rows, progress 100 and
//! the manifest URL viewers get), and the error a failed attempt records.
//!
//! The local runner ([`super::runner`]) and the MediaConvert path ([`super::monitor`]) differ in
//! how a title gets made; what a key drawn for it and a finished job look like in the database
//! is the same for both.

use time::OffsetDateTime;
use uuid::Uuid;

use super::transcoder::TranscodeError;
use crate::db::files::PublishedTitle;
use crate::db::jobs::JobRecord;
use crate::db::key_audit::{KeyAction, KeyEvent};
use crate::db::{now, Db, DbError};
use crate::keys::{CustodyError, GeneratedKey, KeyCustody};
use crate::origin;

/// Audit actor of keys drawn for transcoding.
pub const AUDIT_ACTOR: &str = "transcode";

/// Why an attempt failed; the message becomes the job's `error_message`.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Transcode(#[from] TranscodeError),
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("key custody: {0}")]
    Custody(#[from] CustodyError),
    #[error("the uploaded file {0} no longer exists")]
    MissingFile(Uuid),
    #[error("publishing the output failed: {0}")]
    Publish(std::io::Error),
    /// MediaConvert or S3 refused or failed the job; the service's reason.
    #[error("{0}")]
    MediaConvert(String),
}

/// Draws a fresh content key for title `file_id` from custody, under a new key id, and records
/// the generation in the key audit trail, failures included; `detail` says what the key is
/// for (`"ffmpeg aes-128"`). Nothing else is written: storing the wrapped key is the caller's
/// next step.
///
/// A custody failure is the attempt's error even when its audit record could not be written
/// either (the job fails with `key custody: …`, the cause, not with the database's echo of
/// it); a key whose generation could not be recorded is not used (the audit write's error).
pub async fn draw_key(
    db: &Db,
    custody: &dyn KeyCustody,
    file_id: Uuid,
    detail: &str,
) -> Result<(Uuid, GeneratedKey), JobError> {
    let key_id = Uuid::new_v4();
    let result = custody
        .generate(&file_id.to_string(), &key_id.to_string())
        .await;
    let failure = result.as_ref().err().map(|e| e.to_string());
    let recorded = db
        .record_key_event(&KeyEvent {
            actor: AUDIT_ACTOR,
            action: KeyAction::Generate,
            content_id: Some(file_id),
            key_id: Some(key_id),
            backend: custody.backend(),
            ok: result.is_ok(),
            detail: Some(failure.as_deref().unwrap_or(detail)),
        })
        .await;
    let generated = result?;
    recorded?;
    Ok((key_id, generated))
}

/// Marks `job` and its title completed in one transaction: progress 100, the title playable at
/// the edge's manifest route for it ([`origin::manifest_url`] on `edge_base`), with its
/// current content key (`content_key_id`, when one was stored for it) and when its encrypted
/// output was made (`encrypted_at`).
pub async fn complete(
    db: &Db,
    edge_base: &str,
    job: &JobRecord,
    content_key_id: Option<Uuid>,
    encrypted_at: Option<OffsetDateTime>,
) -> Result<(), JobError> {
    let title = PublishedTitle {
        drm_protected: job.enable_drm,
        hls_manifest_url: origin::manifest_url(edge_base, job.file_id),
        content_key_id,
        encrypted_at,
    };
    db.complete_job(job, &title, now()).await?;
    Ok(())
}
