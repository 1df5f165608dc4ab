//! Transcoding jobs: creation, attempts, progress and outcome.
//!
//! A partial unique index allows one live (`pending`/`processing`) job per file, so two
//! concurrent transcode requests cannot both win. `attempts` counts executions started; the
//! runner uses it to decide whether a job interrupted by a crash is re-run or failed. `job_id`
//! holds a remote backend's job id (MediaConvert): a processing job with one is watched again
//! after a restart, never submitted twice.

use time::OffsetDateTime;
use uuid::Uuid;

use super::files::PublishedTitle;
use super::{with_pool, BeginWrite, Db, DbError};

/// Job states as stored in `transcoding_jobs.status`.
pub use super::status;

/// One row of `transcoding_jobs`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRecord {
    pub id: Uuid,
    pub file_id: Uuid,
    pub job_id: Option<String>,
    pub status: String,
    pub input_url: String,
    pub output_prefix: Option<String>,
    pub manifest_url: Option<String>,
    pub progress: i32,
    pub error_message: Option<String>,
    pub enable_drm: bool,
    /// The title's protection (`cbcs`, `cenc`, `aes-128`, `none`); `None` on older rows.
    pub protection: Option<String>,
    pub attempts: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const JOB_COLUMNS: &str = "id, file_id, job_id, status, input_url, output_prefix, manifest_url, \
     progress, error_message, enable_drm, protection, attempts, created_at, updated_at";

impl Db {
    /// Creates a `processing` job for `file_id` with its `protection` and marks the file
    /// `processing`. Fails with [`DbError::Conflict`] when the file already has a live job.
    pub async fn create_job(
        &self,
        file_id: Uuid,
        enable_drm: bool,
        protection: &str,
        input_url: &str,
        output_prefix: &str,
        now: OffsetDateTime,
    ) -> Result<JobRecord, DbError> {
        let sql = format!(
            "INSERT INTO transcoding_jobs (id, file_id, status, input_url, output_prefix, progress,
                                           enable_drm, protection, attempts, created_at, updated_at)
             VALUES ($1, $2, 'processing', $3, $4, 0, $5, $7, 0, $6, $6)
             RETURNING {JOB_COLUMNS}"
        );
        let result = with_pool!(self, pool => async {
            let mut tx = pool.begin_write().await?;
            let job = sqlx::query_as(&sql)
                .bind(Uuid::new_v4())
                .bind(file_id)
                .bind(input_url)
                .bind(output_prefix)
                .bind(enable_drm)
                .bind(now)
                .bind(protection)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query("UPDATE files SET transcoding_status = 'processing' WHERE id = $1")
                .bind(file_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<JobRecord, sqlx::Error>(job)
        }.await);
        match result {
            Ok(job) => Ok(job),
            Err(e) => {
                let e = DbError::from(e);
                if e.is_unique_violation() {
                    Err(DbError::Conflict(
                        "a transcoding job for this file is already running",
                    ))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The job with `id`, if any.
    pub async fn job(&self, id: Uuid) -> Result<Option<JobRecord>, DbError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM transcoding_jobs WHERE id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }

    /// The most recent job for a file, if any.
    pub async fn latest_job_for_file(&self, file_id: Uuid) -> Result<Option<JobRecord>, DbError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM transcoding_jobs WHERE file_id = $1
             ORDER BY created_at DESC, attempts DESC LIMIT 1"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(file_id)
            .fetch_optional(pool)
            .await)?)
    }

    /// Every job in `status`, oldest first.
    pub async fn jobs_with_status(&self, status: &str) -> Result<Vec<JobRecord>, DbError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM transcoding_jobs WHERE status = $1 ORDER BY created_at"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(status)
            .fetch_all(pool)
            .await)?)
    }

    /// Number of jobs per status.
    pub async fn count_jobs_by_status(&self) -> Result<Vec<(String, i64)>, DbError> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT status, COUNT(*) FROM transcoding_jobs GROUP BY status ORDER BY status",
        )
        .fetch_all(pool)
        .await)?)
    }

    /// Starts an execution: `processing`, progress 0, attempts + 1. Returns the attempt number.
    pub async fn start_job_attempt(&self, id: Uuid, now: OffsetDateTime) -> Result<i32, DbError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "UPDATE transcoding_jobs
             SET status = 'processing', progress = 0, error_message = NULL,
                 attempts = attempts + 1, updated_at = $2
             WHERE id = $1 RETURNING attempts",
        )
        .bind(id)
        .bind(now)
        .fetch_one(pool)
        .await)?)
    }

    /// Records progress (0-100) of a job that is still processing.
    pub async fn set_job_progress(
        &self,
        id: Uuid,
        progress: i32,
        now: OffsetDateTime,
    ) -> Result<(), DbError> {
        with_pool!(self, pool => sqlx::query(
            "UPDATE transcoding_jobs SET progress = $2, updated_at = $3
             WHERE id = $1 AND status = 'processing'",
        )
        .bind(id)
        .bind(progress)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records the backend's own job id (MediaConvert's) and where the output goes, once the
    /// backend accepted the job: from then on a restart resumes watching it instead of
    /// submitting it again.
    pub async fn set_job_external_id(
        &self,
        id: Uuid,
        external_id: &str,
        output_prefix: &str,
        now: OffsetDateTime,
    ) -> Result<(), DbError> {
        let updated = with_pool!(self, pool => sqlx::query(
            "UPDATE transcoding_jobs SET job_id = $2, output_prefix = $3, updated_at = $4
             WHERE id = $1 AND status = 'processing'",
        )
        .bind(id)
        .bind(external_id)
        .bind(output_prefix)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(DbError::Conflict("the job is no longer processing"));
        }
        Ok(())
    }

    /// Deletes content key `key_id` of `file_id` made for a job that did not publish, unless
    /// the file already serves with it. Returns whether a row went.
    pub async fn discard_unused_content_key(
        &self,
        key_id: Uuid,
        file_id: Uuid,
    ) -> Result<bool, DbError> {
        let deleted = with_pool!(self, pool => sqlx::query(
            "DELETE FROM content_keys WHERE id = $1 AND content_id = $2
               AND NOT EXISTS (SELECT 1 FROM files WHERE id = $2 AND content_key_id = $1)",
        )
        .bind(key_id)
        .bind(file_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(deleted > 0)
    }

    /// Marks the job completed and publishes the title, atomically.
    pub async fn complete_job(
        &self,
        job: &JobRecord,
        title: &PublishedTitle,
        now: OffsetDateTime,
    ) -> Result<(), DbError> {
        with_pool!(self, pool => async {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE transcoding_jobs SET status = 'completed', progress = 100,
                     manifest_url = $2, error_message = NULL, updated_at = $3
                 WHERE id = $1",
            )
            .bind(job.id)
            .bind(&title.hls_manifest_url)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE files SET transcoding_status = 'completed', drm_protected = $2,
                     hls_manifest_url = $3, content_key_id = $4, encrypted_at = $5
                 WHERE id = $1",
            )
            .bind(job.file_id)
            .bind(title.drm_protected)
            .bind(&title.hls_manifest_url)
            .bind(title.content_key_id)
            .bind(title.encrypted_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }.await)?;
        Ok(())
    }

    /// Marks the job failed with a reason and the file failed (or back to its previously
    /// published output), atomically.
    pub async fn fail_job(
        &self,
        job: &JobRecord,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<(), DbError> {
        with_pool!(self, pool => async {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE transcoding_jobs SET status = 'failed', error_message = $2, updated_at = $3
                 WHERE id = $1",
            )
            .bind(job.id)
            .bind(reason)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // A title that was published before keeps playing its previous output.
            sqlx::query(
                "UPDATE files SET transcoding_status =
                     CASE WHEN hls_manifest_url IS NULL THEN 'failed' ELSE 'completed' END
                 WHERE id = $1",
            )
            .bind(job.file_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }.await)?;
        Ok(())
    }
}
