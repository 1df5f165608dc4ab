//! Runs transcoding jobs in the background and makes sure none is ever left in `processing`.
//!
//! A submitted job waits for one of `transcode.max_concurrent_jobs` slots, then: counts an
//! attempt, probes the source, plans the ladder, draws a content key from custody when the
//! job's protection encrypts ([`job::draw_key`], audited), transcodes (CMAF or MPEG-TS, as the
//! job's [`Protection`] says) into a staging directory
//! (`origin/.staging/{fileId}-{jobId}-a{attempt}`), stores the wrapped key, renames the staging
//! tree to `origin/{fileId}` (so the edge never sees half a title) and marks the job and file
//! completed in one transaction ([`job::complete`]). Any error or panic marks the job failed
//! with a reason and removes the staging tree.
//!
//! With the MediaConvert backend ([`Backend::MediaConvert`]) a job is submitted to AWS and
//! watched instead ([`super::monitor`]); the slot is held only while submitting.
//!
//! [`JobRunner::reconcile`] handles jobs no worker in this process owns (after a restart, or
//! when an admin calls `POST /media/monitor-jobs`): a MediaConvert job that already has its
//! MediaConvert id is watched again (never submitted twice); any other is re-run from scratch
//! while `attempts < max_attempts`, else failed. The runner assumes one control plane runs jobs
//! for a database; replicas would need a lease per job.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use uuid::Uuid;

use super::backend::Backend;
use super::job::{self, JobError};
use super::ladder::plan_renditions;
use super::monitor;
use super::protection::Protection;
use super::transcoder::{TitleKey, TranscodeError, TranscodeRequest, Transcoder};
use crate::config::TranscodeConfig;
use crate::db::jobs::{status, JobRecord};
use crate::db::{now, Db, DbError};
use crate::keys::KeyCustody;
use crate::origin::{self, STAGING_DIR};

/// Minimum time between two progress writes of one job.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(750);

/// What the runner keeps of its configuration.
#[derive(Debug, Clone)]
struct Settings {
    origin_dir: PathBuf,
    edge_base: String,
    renditions: Vec<u32>,
    max_attempts: u32,
}

/// What a reconciliation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub requeued: u32,
    pub failed: u32,
    /// MediaConvert jobs watched again (not resubmitted).
    pub resumed: u32,
}

/// The background job runner. Cheap to clone.
#[derive(Clone)]
pub struct JobRunner {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    custody: Arc<dyn KeyCustody>,
    backend: Backend,
    settings: Settings,
    slots: Semaphore,
    live: Mutex<HashSet<Uuid>>,
}

impl JobRunner {
    /// A runner for `config` (`[transcode]`: the ladder, attempts, concurrency) publishing into
    /// `origin_dir` (`[storage]`) for viewers who reach the edge at `edge_base` (`[server]`).
    pub fn new(
        config: &TranscodeConfig,
        origin_dir: PathBuf,
        edge_base: &str,
        db: Db,
        custody: Arc<dyn KeyCustody>,
        backend: Backend,
    ) -> Self {
        let settings = Settings {
            origin_dir,
            edge_base: edge_base.to_string(),
            renditions: config.renditions.clone(),
            max_attempts: config.max_attempts,
        };
        JobRunner {
            inner: Arc::new(Inner {
                db,
                custody,
                backend,
                settings,
                slots: Semaphore::new(config.max_concurrent_jobs),
                live: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The backend jobs run on.
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Where a job's output goes: `origin/{fileId}` locally, `s3://.../{fileId}/` on MediaConvert.
    pub fn output_prefix(&self, file_id: Uuid) -> String {
        match &self.inner.backend {
            Backend::Local(_) => self
                .inner
                .settings
                .origin_dir
                .join(file_id.to_string())
                .to_string_lossy()
                .into_owned(),
            Backend::MediaConvert(mc) => mc.settings().output_dir(file_id),
        }
    }

    /// The manifest URL clients use once a title is ready.
    pub fn manifest_url(&self, file_id: Uuid) -> String {
        origin::manifest_url(&self.inner.settings.edge_base, file_id)
    }

    /// True while a worker in this process owns the job (queued or running).
    pub fn is_live(&self, job_id: Uuid) -> bool {
        self.live().contains(&job_id)
    }

    /// Number of jobs owned by workers in this process.
    pub fn live_count(&self) -> usize {
        self.live().len()
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `job` in the background unless a worker already owns it.
    pub fn submit(&self, job: JobRecord) {
        if !self.live().insert(job.id) {
            return;
        }
        let runner = self.clone();
        tokio::spawn(async move {
            let worker = runner.clone();
            let attempt_job = job.clone();
            let outcome = tokio::spawn(async move { worker.run(&attempt_job).await }).await;
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) if e.is_panic() => Some("the transcoding worker crashed".to_string()),
                Err(_) => Some("the transcoding worker was cancelled".to_string()),
            };
            if let Some(reason) = failure {
                tracing::warn!(fileId = %job.file_id, jobId = %job.id, reason = %reason, "transcode failed");
                runner.cleanup_staging(&job).await;
                if let Err(e) = runner.inner.db.fail_job(&job, &reason, now()).await {
                    tracing::error!(jobId = %job.id, error = %e, "could not record a failed job");
                }
            }
            runner.live().remove(&job.id);
        });
    }

    /// Re-runs or fails every `processing`/`pending` job no worker here owns. `cause` completes
    /// the failure reason: "interrupted by {cause} after N attempts".
    pub async fn reconcile(&self, cause: &str) -> Result<Reconciled, DbError> {
        let mut done = Reconciled::default();
        let db = &self.inner.db;
        let mut orphans = db.jobs_with_status(status::PROCESSING).await?;
        orphans.extend(db.jobs_with_status(status::PENDING).await?);
        for job in orphans {
            if self.is_live(job.id) {
                continue;
            }
            if job.job_id.is_some() && matches!(self.inner.backend, Backend::MediaConvert(_)) {
                tracing::info!(fileId = %job.file_id, jobId = %job.id, "watching a MediaConvert job again");
                self.submit(job);
                done.resumed += 1;
                continue;
            }
            let attempts = u32::try_from(job.attempts).unwrap_or(0);
            if attempts < self.inner.settings.max_attempts {
                tracing::info!(fileId = %job.file_id, jobId = %job.id, attempts, "re-running an interrupted transcode");
                self.cleanup_staging(&job).await;
                self.submit(job);
                done.requeued += 1;
            } else {
                let reason = format!("interrupted by {cause} after {attempts} attempts");
                tracing::warn!(fileId = %job.file_id, jobId = %job.id, reason = %reason, "giving up on a transcode");
                self.cleanup_staging(&job).await;
                db.fail_job(&job, &reason, now()).await?;
                done.failed += 1;
            }
        }
        Ok(done)
    }

    /// Job counts by status, for the monitor endpoint.
    pub async fn counts(&self) -> Result<BTreeMap<String, i64>, DbError> {
        Ok(self
            .inner
            .db
            .count_jobs_by_status()
            .await?
            .into_iter()
            .collect())
    }

    async fn run(&self, job: &JobRecord) -> Result<(), JobError> {
        match &self.inner.backend {
            Backend::Local(transcoder) => self.run_local(job, transcoder.as_ref()).await,
            Backend::MediaConvert(mc) => {
                let ctx = monitor::Context {
                    db: &self.inner.db,
                    custody: self.inner.custody.as_ref(),
                    mc,
                    slots: &self.inner.slots,
                };
                monitor::run(&ctx, job).await
            }
        }
    }

    async fn run_local(
        &self,
        job: &JobRecord,
        transcoder: &dyn Transcoder,
    ) -> Result<(), JobError> {
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .expect("the job semaphore is never closed");
        let db = &self.inner.db;
        let attempt = db.start_job_attempt(job.id, now()).await?;
        tracing::info!(fileId = %job.file_id, jobId = %job.id, attempt, drm = job.enable_drm, "transcode started");
        let file = db
            .file(job.file_id)
            .await?
            .ok_or(JobError::MissingFile(job.file_id))?;
        self.cleanup_staging(job).await;
        let staging = self
            .staging_root()
            .join(format!("{}-{}-a{attempt}", job.file_id, job.id));
        tokio::fs::create_dir_all(&staging)
            .await
            .map_err(TranscodeError::from)?;

        let source = PathBuf::from(&file.storage_path);
        let info = transcoder.probe(&source).await?;
        let renditions = plan_renditions(&self.inner.settings.renditions, info.height);

        let protection = Protection::of_job(job.protection.as_deref(), job.enable_drm);
        let (encryption, wrapped) = if protection.encrypts() {
            let custody = self.inner.custody.as_ref();
            let detail = if protection.is_cmaf() {
                format!("ffmpeg + shaka packager {protection}")
            } else {
                format!("ffmpeg {protection}")
            };
            let (key_id, generated) = job::draw_key(db, custody, job.file_id, &detail).await?;
            let key = TitleKey {
                key_id,
                key: generated.key,
            };
            (Some(key), Some(generated.wrapped))
        } else {
            (None, None)
        };

        let (progress, progress_rx) = watch::channel(0u8);
        let writer = tokio::spawn(write_progress(db.clone(), job.id, progress_rx));
        let result = transcoder
            .transcode(TranscodeRequest {
                source: &source,
                source_info: &info,
                renditions: &renditions,
                output_dir: &staging,
                protection,
                encryption: encryption.as_ref(),
                progress,
            })
            .await;
        writer.abort();
        result?;

        let content_key_id = encryption.as_ref().map(|key| key.key_id);
        drop(encryption);
        let encrypted_at = match (content_key_id, &wrapped) {
            (Some(key_id), Some(wrapped)) => {
                db.insert_content_key(key_id, job.file_id, wrapped, now())
                    .await?;
                Some(now())
            }
            _ => None,
        };
        self.publish(job.file_id, job.id, &staging)
            .await
            .map_err(JobError::Publish)?;
        let edge_base = &self.inner.settings.edge_base;
        job::complete(db, edge_base, job, content_key_id, encrypted_at).await?;
        tracing::info!(fileId = %job.file_id, jobId = %job.id, renditions = renditions.len(), protection = %protection, "transcode completed");
        Ok(())
    }

    fn staging_root(&self) -> PathBuf {
        self.inner.settings.origin_dir.join(STAGING_DIR)
    }

    /// Swaps the staging tree in as `origin/{fileId}`; a previous output is replaced.
    async fn publish(&self, file_id: Uuid, job_id: Uuid, staging: &Path) -> std::io::Result<()> {
        let target = self.inner.settings.origin_dir.join(file_id.to_string());
        if tokio::fs::try_exists(&target).await? {
            let old = self
                .staging_root()
                .join(format!("{file_id}-{job_id}-replaced"));
            tokio::fs::rename(&target, &old).await?;
            tokio::fs::rename(staging, &target).await?;
            tokio::fs::remove_dir_all(&old).await?;
        } else {
            tokio::fs::rename(staging, &target).await?;
        }
        Ok(())
    }

    /// Removes every staging tree of `job` (all attempts).
    async fn cleanup_staging(&self, job: &JobRecord) {
        let prefix = format!("{}-{}-", job.file_id, job.id);
        let Ok(mut entries) = tokio::fs::read_dir(self.staging_root()).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                if let Err(e) = tokio::fs::remove_dir_all(entry.path()).await {
                    tracing::warn!(jobId = %job.id, error = %e, "could not remove a staging directory");
                }
            }
        }
    }
}

async fn write_progress(db: Db, job_id: Uuid, mut progress: watch::Receiver<u8>) {
    while progress.changed().await.is_ok() {
        let value = i32::from(*progress.borrow_and_update());
        if let Err(e) = db.set_job_progress(job_id, value, now()).await {
            tracing::warn!(jobId = %job_id, error = %e, "could not record progress");
        }
        tokio::time::sleep(PROGRESS_INTERVAL).await;
    }
}
