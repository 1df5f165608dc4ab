//! The license ledger: every license the edge issues is recorded in the control plane's
//! `media_licenses` without blocking the response and without loss while the control plane
//! is down or the edge restarts. It is a durable outbox on local disk, replayed in order.
//!
//! ## Writing ([`LicenseLedger::record`])
//!
//! One JSON line ([`LicenseRecord`], camelCase) appended with a single `write` to the current
//! segment file `outbox-{seq}.jsonl` (opened `O_APPEND`). Once `record` returns, the line is in
//! the kernel's page cache: it survives a crash of the process. The background task `fsync`s
//! the segment every [`FSYNC_INTERVAL`] when something was written, so a power loss costs at
//! most that window. No network, no fsync on the request path: microseconds.
//!
//! ## Replaying (the task started by [`LicenseLedger::spawn`])
//!
//! Reads complete lines from the oldest segment on, POSTs batches of up to [`BATCH`] to
//! `{control_plane}/internal/v1/licenses` (the edge's one control-plane client), and on 200
//! advances a cursor persisted in `cursor` (written to a temporary file, then renamed). A
//! segment fully acknowledged and no longer written to is deleted. The control plane is
//! idempotent by record id, so the only effect of a crash between its answer and the cursor
//! write is a replayed batch counted there as duplicates: delivery is exactly once by id.
//! - Failures (network, timeouts, 5xx, 401/403, 404, 429) are retried with capped exponential
//!   backoff ([`BACKOFF_MIN`] → [`BACKOFF_MAX`]), forever: nothing is dropped for being late.
//! - Records the control plane `rejected` (e.g. `unknown_video`) are logged, counted and copied
//!   to `rejected.jsonl` in the same directory; they are not retried.
//! - A batch refused as a whole (400, 413, 422) is split in halves until the offending record
//!   is alone; that record is handled as rejected, the others are delivered.
//!
//! ## Restarts, torn lines, disk
//!
//! [`LicenseLedger::open`] resumes from the cursor (earlier runs' segments included) and always
//! writes to a fresh segment, so a line torn by a crash is the tail of an old segment: the
//! replayer skips it (counted in [`LicenseLedger::unreadable`], logged) and so skips corrupt
//! lines. Disk use is bounded by `max_outbox_bytes` (default [`MAX_OUTBOX_BYTES`]): beyond it
//! `record` refuses with `StorageFull` and the refusal is logged at error level and counted
//! ([`LicenseLedger::refused`]); the caller decides whether to still answer the license.
//!
//! One directory per edge process: two processes must not share an outbox directory.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::Notify;

pub use crate::control_plane::LicenseRecord;
use crate::control_plane::{ControlPlane, PostFailure, Rejection};

/// Records per POST (the control plane accepts at most 500).
pub const BATCH: usize = 500;
/// A segment is closed and a new one started once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// Default bound of the outbox on disk (about 700,000 records).
pub const MAX_OUTBOX_BYTES: u64 = 256 * 1024 * 1024;
/// Longest accepted record line; records are a few hundred bytes.
pub const MAX_RECORD_BYTES: usize = 16 * 1024;
/// How often written segments are fsynced.
pub const FSYNC_INTERVAL: Duration = Duration::from_millis(200);
/// First retry delay after a failed delivery; doubled up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Bytes read from a segment at a time (more than a full batch).
const READ_CHUNK: usize = 1024 * 1024;
/// How long the replayer sleeps when caught up, unless a record wakes it.
const IDLE_WAIT: Duration = Duration::from_secs(1);

const SEGMENT_PREFIX: &str = "outbox-";
const SEGMENT_SUFFIX: &str = ".jsonl";
const CURSOR_FILE: &str = "cursor";
const REJECTED_FILE: &str = "rejected.jsonl";

/// Where the replayer is: the next unacknowledged byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    segment: u64,
    offset: u64,
}

/// The segment records are appended to.
struct SegmentWriter {
    segment: u64,
    file: Arc<File>,
    len: u64,
    /// A write failed part-way: start a new segment before the next record.
    broken: bool,
}

#[derive(Default)]
struct Counters {
    pending: AtomicU64,
    delivered: AtomicU64,
    rejected: AtomicU64,
    refused: AtomicU64,
    unreadable: AtomicU64,
}

/// The durable outbox of issued licenses.
pub struct LicenseLedger {
    dir: PathBuf,
    control_plane: Arc<ControlPlane>,
    writer: Mutex<SegmentWriter>,
    /// Where replay starts; read once by the replay task.
    resume_at: Mutex<Cursor>,
    spawned: AtomicBool,
    outbox_bytes: AtomicU64,
    segment_bytes: u64,
    max_outbox_bytes: u64,
    unsynced: AtomicBool,
    /// Segments closed since the last fsync.
    closed: Mutex<Vec<Arc<File>>>,
    wake: Notify,
    counters: Counters,
}

/// A run of lines read from a segment.
struct Batch {
    records: Vec<(LicenseRecord, Vec<u8>)>,
    /// Lines consumed, records and unreadable ones.
    lines: u64,
    /// The offset after the last consumed line.
    end: u64,
}

impl LicenseLedger {
    /// Opens (creating) the outbox in `dir`, resuming what earlier runs left, and starts a
    /// fresh segment. Delivery starts with [`LicenseLedger::spawn`].
    pub fn open(dir: &Path, control_plane: Arc<ControlPlane>) -> Result<LicenseLedger, io::Error> {
        std::fs::create_dir_all(dir)?;
        let segments = list_segments(dir)?;
        let mut cursor = read_cursor(dir).unwrap_or(Cursor {
            segment: segments.first().copied().unwrap_or(1),
            offset: 0,
        });
        let mut outbox_bytes = 0;
        let mut pending = 0;
        for &segment in &segments {
            let path = segment_path(dir, segment);
            if segment < cursor.segment {
                // Acknowledged before a crash prevented its deletion.
                std::fs::remove_file(&path)?;
                continue;
            }
            let content = std::fs::read(&path)?;
            outbox_bytes += content.len() as u64;
            let from = if segment == cursor.segment {
                usize::try_from(cursor.offset)
                    .unwrap_or(usize::MAX)
                    .min(content.len())
            } else {
                0
            };
            pending += content
                .get(from..)
                .unwrap_or_default()
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
        }
        let remaining: Vec<u64> = segments
            .iter()
            .copied()
            .filter(|&s| s >= cursor.segment)
            .collect();
        // Always write to a fresh segment: a torn tail stays the tail of an old one.
        let fresh = match remaining.last() {
            Some(&last) => {
                if !remaining.contains(&cursor.segment) {
                    cursor = Cursor {
                        segment: remaining.first().copied().unwrap_or(last),
                        offset: 0,
                    };
                }
                last + 1
            }
            None => {
                cursor = Cursor {
                    segment: cursor.segment.max(1),
                    offset: 0,
                };
                cursor.segment
            }
        };
        let file = open_segment(dir, fresh)?;
        if pending > 0 {
            tracing::info!(pending, "license outbox has records from an earlier run");
        }
        let counters = Counters::default();
        counters.pending.store(pending, Ordering::Relaxed);
        Ok(LicenseLedger {
            dir: dir.to_path_buf(),
            control_plane,
            writer: Mutex::new(SegmentWriter {
                segment: fresh,
                file: Arc::new(file),
                len: 0,
                broken: false,
            }),
            resume_at: Mutex::new(cursor),
            spawned: AtomicBool::new(false),
            outbox_bytes: AtomicU64::new(outbox_bytes),
            segment_bytes: SEGMENT_BYTES,
            max_outbox_bytes: MAX_OUTBOX_BYTES,
            unsynced: AtomicBool::new(false),
            closed: Mutex::new(Vec::new()),
            wake: Notify::new(),
            counters,
        })
    }

    /// Closes segments at `bytes` instead of [`SEGMENT_BYTES`].
    pub fn with_segment_bytes(mut self, bytes: u64) -> LicenseLedger {
        self.segment_bytes = bytes.max(1);
        self
    }

    /// Refuses records beyond `bytes` on disk instead of [`MAX_OUTBOX_BYTES`].
    pub fn with_max_outbox_bytes(mut self, bytes: u64) -> LicenseLedger {
        self.max_outbox_bytes = bytes;
        self
    }

    /// Appends `record` to the outbox (one `write`, no network, no fsync). Errors: the record
    /// is oversized (`InvalidInput`), the outbox is full (`StorageFull`), or the disk failed.
    pub fn record(&self, record: LicenseRecord) -> Result<(), io::Error> {
        let mut line = serde_json::to_vec(&record)?;
        line.push(b'\n');
        if line.len() > MAX_RECORD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "license record too large",
            ));
        }
        let size = line.len() as u64;
        let mut writer = self.lock_writer();
        if self.outbox_bytes.load(Ordering::Relaxed) + size > self.max_outbox_bytes {
            let refused = self.counters.refused.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(
                license_id = %record.id,
                refused,
                max_bytes = self.max_outbox_bytes,
                "license outbox full: the control plane has not acknowledged records for a \
                 while; this license is NOT recorded"
            );
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "license outbox full",
            ));
        }
        if writer.broken || writer.len >= self.segment_bytes {
            self.rotate(&mut writer)?;
        }
        // Counted before the write so the replayer can never see the line first.
        self.counters.pending.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = (&*writer.file).write_all(&line) {
            self.counters.pending.fetch_sub(1, Ordering::Relaxed);
            writer.broken = true;
            tracing::error!(license_id = %record.id, error = %e, "license outbox write failed");
            return Err(e);
        }
        writer.len += size;
        self.outbox_bytes.fetch_add(size, Ordering::Relaxed);
        drop(writer);
        self.unsynced.store(true, Ordering::Release);
        self.wake.notify_one();
        Ok(())
    }

    /// Records written and not yet acknowledged by the control plane.
    pub fn pending(&self) -> u64 {
        self.counters.pending.load(Ordering::Relaxed)
    }

    /// Records the control plane acknowledged (recorded or already known).
    pub fn delivered(&self) -> u64 {
        self.counters.delivered.load(Ordering::Relaxed)
    }

    /// Records the control plane rejected (in `rejected.jsonl`).
    pub fn rejected(&self) -> u64 {
        self.counters.rejected.load(Ordering::Relaxed)
    }

    /// Records refused because the outbox was full (not recorded anywhere).
    pub fn refused(&self) -> u64 {
        self.counters.refused.load(Ordering::Relaxed)
    }

    /// Lines skipped as torn by a crash or corrupt.
    pub fn unreadable(&self) -> u64 {
        self.counters.unreadable.load(Ordering::Relaxed)
    }

    /// Bytes the outbox occupies on disk.
    pub fn outbox_bytes(&self) -> u64 {
        self.outbox_bytes.load(Ordering::Relaxed)
    }

    /// Fsyncs the current segment now (at shutdown).
    pub fn sync(&self) -> Result<(), io::Error> {
        let closed = std::mem::take(&mut *self.closed.lock().unwrap_or_else(|p| p.into_inner()));
        for file in closed {
            file.sync_data()?;
        }
        self.lock_writer().file.sync_data()
    }

    /// Starts the replayer and the periodic fsync on the current runtime (once: later calls
    /// start nothing). Stops when the task is aborted; records left are replayed by the next
    /// run.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        if self.spawned.swap(true, Ordering::AcqRel) {
            return tokio::spawn(async {});
        }
        let ledger = self.clone();
        tokio::spawn(async move {
            tokio::join!(ledger.replay(), ledger.sync_periodically());
        })
    }

    async fn sync_periodically(&self) {
        let mut ticks = tokio::time::interval(FSYNC_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if !self.unsynced.swap(false, Ordering::AcqRel) {
                continue;
            }
            let mut files =
                std::mem::take(&mut *self.closed.lock().unwrap_or_else(|p| p.into_inner()));
            files.push(self.lock_writer().file.clone());
            let synced = tokio::task::spawn_blocking(move || {
                files.iter().try_for_each(|file| file.sync_data())
            })
            .await;
            match synced {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "license outbox fsync failed"),
                Err(e) => tracing::error!(error = %e, "license outbox fsync task failed"),
            }
        }
    }

    async fn replay(&self) {
        let mut cursor = *self.resume_at.lock().unwrap_or_else(|p| p.into_inner());
        let mut backoff = BACKOFF_MIN;
        loop {
            // Read before looking at the segment: if it was already closed then, this read saw
            // all of it.
            let writing = self.lock_writer().segment;
            let batch = match self.read_batch(cursor).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(error = %e, segment = cursor.segment, "license outbox read failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            if batch.lines == 0 {
                if cursor.segment < writing {
                    match self.finish_segment(cursor).await {
                        Ok(next) => cursor = next,
                        Err(e) => {
                            tracing::error!(error = %e, "license outbox segment cleanup failed");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                        }
                    }
                } else {
                    let _ = tokio::time::timeout(IDLE_WAIT, self.wake.notified()).await;
                }
                continue;
            }
            match self.deliver_batch(&batch).await {
                Ok(()) => {
                    backoff = BACKOFF_MIN;
                    cursor.offset = batch.end;
                    self.counters
                        .pending
                        .fetch_sub(batch.lines, Ordering::Relaxed);
                    if let Err(e) = write_cursor(&self.dir, cursor).await {
                        // Replaying from the old cursor only yields duplicates.
                        tracing::warn!(error = %e, "license outbox cursor not saved");
                    }
                }
                Err(cause) => {
                    tracing::warn!(
                        cause,
                        records = batch.records.len(),
                        retry_in_ms = backoff.as_millis() as u64,
                        "license records not delivered; will retry"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Delivers every record of `batch`, or fails without having skipped any.
    async fn deliver_batch(&self, batch: &Batch) -> Result<(), String> {
        if batch.records.is_empty() {
            return Ok(());
        }
        let mut rejections = self.deliver(&batch.records).await?;
        rejections.retain(|r| batch.records.iter().any(|(record, _)| r.is(record)));
        let rejected = rejections.len() as u64;
        self.counters.delivered.fetch_add(
            (batch.records.len() as u64).saturating_sub(rejected),
            Ordering::Relaxed,
        );
        if rejected > 0 {
            self.counters
                .rejected
                .fetch_add(rejected, Ordering::Relaxed);
            self.keep_rejected(&batch.records, &rejections).await;
        }
        Ok(())
    }

    /// POSTs `records`, halving a batch the control plane refuses as a whole until the culprit
    /// is alone. Returns the rejections.
    async fn deliver(
        &self,
        records: &[(LicenseRecord, Vec<u8>)],
    ) -> Result<Vec<Rejection>, String> {
        let batch: Vec<&LicenseRecord> = records.iter().map(|(record, _)| record).collect();
        match self.control_plane.post_licenses(&batch).await {
            Ok(answer) => {
                tracing::debug!(
                    recorded = answer.recorded,
                    duplicates = answer.duplicates,
                    rejected = answer.rejected.len(),
                    "license records delivered"
                );
                Ok(answer.rejected)
            }
            Err(PostFailure::Retry(cause)) => Err(cause),
            Err(PostFailure::Unacceptable(status)) => match records {
                [] => Ok(Vec::new()),
                [(record, _)] => Ok(vec![Rejection {
                    id: record.id.clone(),
                    reason: format!("http_{status}"),
                }]),
                _ => {
                    let (first, second) = records.split_at(records.len() / 2);
                    let mut rejected = Box::pin(self.deliver(first)).await?;
                    rejected.extend(Box::pin(self.deliver(second)).await?);
                    Ok(rejected)
                }
            },
        }
    }

    /// Logs rejections and copies the rejected records to `rejected.jsonl`.
    async fn keep_rejected(&self, records: &[(LicenseRecord, Vec<u8>)], rejections: &[Rejection]) {
        let mut lines = Vec::new();
        for rejection in rejections {
            tracing::warn!(
                license_id = %rejection.id,
                reason = %rejection.reason,
                "control plane rejected a license record; kept in rejected.jsonl, not retried"
            );
            if let Some((_, line)) = records.iter().find(|(record, _)| rejection.is(record)) {
                lines.extend_from_slice(line);
            }
        }
        let path = self.dir.join(REJECTED_FILE);
        let write = tokio::task::spawn_blocking(move || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?
                .write_all(&lines)
        })
        .await;
        if !matches!(write, Ok(Ok(()))) {
            tracing::error!("could not write rejected license records to rejected.jsonl");
        }
    }

    /// Reads up to [`BATCH`] complete lines from `cursor`.
    async fn read_batch(&self, cursor: Cursor) -> Result<Batch, io::Error> {
        let mut file = tokio::fs::File::open(segment_path(&self.dir, cursor.segment)).await?;
        file.seek(io::SeekFrom::Start(cursor.offset)).await?;
        let mut chunk = Vec::with_capacity(READ_CHUNK);
        (&mut file)
            .take(READ_CHUNK as u64)
            .read_to_end(&mut chunk)
            .await?;
        let mut batch = Batch {
            records: Vec::new(),
            lines: 0,
            end: cursor.offset,
        };
        let mut consumed = 0;
        let mut rest = chunk.as_slice();
        while batch.records.len() < BATCH {
            let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
                break;
            };
            let (line, after) = rest.split_at(newline + 1);
            rest = after;
            consumed += line.len();
            batch.lines += 1;
            match serde_json::from_slice::<LicenseRecord>(line) {
                Ok(record) => batch.records.push((record, line.to_vec())),
                Err(_) => self.skip_unreadable(cursor.segment, "corrupt line"),
            }
        }
        if consumed == 0 && chunk.len() == READ_CHUNK {
            // No line end in a whole chunk: not a record; skip it (its tail is skipped later).
            consumed = chunk.len();
            batch.lines = 1;
            self.skip_unreadable(cursor.segment, "oversized line");
            self.counters.pending.fetch_add(1, Ordering::Relaxed);
        }
        batch.end = cursor.offset + consumed as u64;
        Ok(batch)
    }

    fn skip_unreadable(&self, segment: u64, what: &'static str) {
        self.counters.unreadable.fetch_add(1, Ordering::Relaxed);
        tracing::error!(segment, what, "license outbox: skipping an unreadable line");
    }

    /// Deletes a fully replayed, closed segment and moves the cursor to the next one. A
    /// trailing line without its end (a crash mid-write) is skipped.
    async fn finish_segment(&self, cursor: Cursor) -> Result<Cursor, io::Error> {
        let path = segment_path(&self.dir, cursor.segment);
        let size = tokio::fs::metadata(&path).await?.len();
        if size > cursor.offset {
            self.skip_unreadable(cursor.segment, "torn last line");
        }
        let dir = self.dir.clone();
        let segments = tokio::task::spawn_blocking(move || list_segments(&dir))
            .await
            .map_err(io::Error::other)??;
        let next = Cursor {
            segment: segments
                .into_iter()
                .find(|&s| s > cursor.segment)
                .unwrap_or(cursor.segment + 1),
            offset: 0,
        };
        write_cursor(&self.dir, next).await?;
        tokio::fs::remove_file(&path).await?;
        self.outbox_bytes.fetch_sub(
            size.min(self.outbox_bytes.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        Ok(next)
    }

    /// Closes the current segment (the sync task fsyncs it) and opens the next.
    fn rotate(&self, writer: &mut SegmentWriter) -> Result<(), io::Error> {
        let next = writer.segment + 1;
        let closed = std::mem::replace(&mut writer.file, Arc::new(open_segment(&self.dir, next)?));
        self.closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(closed);
        self.unsynced.store(true, Ordering::Release);
        writer.segment = next;
        writer.len = 0;
        writer.broken = false;
        Ok(())
    }

    fn lock_writer(&self) -> MutexGuard<'_, SegmentWriter> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{segment:020}{SEGMENT_SUFFIX}"))
}

fn open_segment(dir: &Path, segment: u64) -> Result<File, io::Error> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, segment))
}

/// Sequence numbers of the segment files in `dir`, ascending.
fn list_segments(dir: &Path) -> Result<Vec<u64>, io::Error> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SEGMENT_PREFIX))
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
        else {
            continue;
        };
        if let Ok(segment) = number.parse() {
            segments.push(segment);
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

fn read_cursor(dir: &Path) -> Option<Cursor> {
    let text = std::fs::read(dir.join(CURSOR_FILE)).ok()?;
    let cursor = serde_json::from_slice(&text);
    if cursor.is_err() {
        tracing::warn!("license outbox cursor unreadable; replaying from the oldest segment");
    }
    cursor.ok()
}

async fn write_cursor(dir: &Path, cursor: Cursor) -> Result<(), io::Error> {
    let temporary = dir.join(format!("{CURSOR_FILE}.tmp"));
    tokio::fs::write(&temporary, serde_json::to_vec(&cursor)?).await?;
    tokio::fs::rename(&temporary, dir.join(CURSOR_FILE)).await
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::AtomicUsize;

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::Json;
    use serde_json::{json, Value};

    use super::*;

    const TOKEN: &str = "test-service-token";
    const UNKNOWN_VIDEO: &str = "00000000-0000-4000-8000-00000000dead";

    /// A control plane stand-in: idempotent by id, can be "down" (503), rejects an unknown
    /// video per record and answers 400 to any batch holding a "poison" user.
    #[derive(Default)]
    struct FakeControlPlane {
        up: AtomicBool,
        /// id -> how many times it arrived in an accepted batch.
        arrivals: Mutex<HashMap<String, u32>>,
        posts: AtomicU64,
        largest_batch: AtomicUsize,
    }

    impl FakeControlPlane {
        fn arrivals(&self) -> HashMap<String, u32> {
            self.arrivals.lock().unwrap().clone()
        }
    }

    async fn licenses(
        State(cp): State<Arc<FakeControlPlane>>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        cp.posts.fetch_add(1, Ordering::SeqCst);
        let authorized = headers
            .get("authorization")
            .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
        if !authorized {
            return (StatusCode::UNAUTHORIZED, Json(json!({})));
        }
        if !cp.up.load(Ordering::SeqCst) {
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
        }
        let records = body["licenses"].as_array().cloned().unwrap_or_default();
        cp.largest_batch.fetch_max(records.len(), Ordering::SeqCst);
        if records.len() > BATCH {
            return (StatusCode::PAYLOAD_TOO_LARGE, Json(json!({})));
        }
        if records.iter().any(|r| r["userId"] == "poison") {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "bad_request"})),
            );
        }
        let (mut recorded, mut duplicates, mut rejected) = (0, 0, Vec::new());
        let mut arrivals = cp.arrivals.lock().unwrap();
        for record in records {
            let id = record["id"].as_str().unwrap_or_default().to_string();
            let count = arrivals.entry(id.clone()).or_default();
            *count += 1;
            if record["videoId"] == UNKNOWN_VIDEO {
                rejected.push(json!({"id": id, "reason": "unknown_video"}));
            } else if *count == 1 {
                recorded += 1;
            } else {
                duplicates += 1;
            }
        }
        (
            StatusCode::OK,
            Json(json!({"recorded": recorded, "duplicates": duplicates, "rejected": rejected})),
        )
    }

    async fn control_plane(up: bool) -> (Arc<FakeControlPlane>, String) {
        let cp = Arc::new(FakeControlPlane::default());
        cp.up.store(up, Ordering::SeqCst);
        let app = axum::Router::new()
            .route("/internal/v1/licenses", axum::routing::post(licenses))
            .with_state(cp.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (cp, url)
    }

    fn ledger(dir: &Path, url: &str) -> LicenseLedger {
        let config = crate::config::ControlPlaneConfig {
            url: url.to_string(),
            timeout_ms: 2_000,
            ..crate::config::ControlPlaneConfig::default()
        };
        let control_plane = ControlPlane::new(&config, TOKEN).unwrap();
        LicenseLedger::open(dir, Arc::new(control_plane)).unwrap()
    }

    fn license(user_id: &str, video_id: &str) -> LicenseRecord {
        LicenseRecord {
            id: uuid::Uuid::new_v4().to_string(),
            video_id: video_id.to_string(),
            user_id: user_id.to_string(),
            key_id: Some(uuid::Uuid::new_v4().to_string()),
            drm_system: "clearkey".into(),
            license_type: "rental".into(),
            issued_at: 1_700_000_000,
            expires_at: 1_700_003_600,
            device_id: None,
        }
    }

    fn record_many(ledger: &LicenseLedger, n: usize) -> Vec<String> {
        let video = uuid::Uuid::new_v4().to_string();
        (0..n)
            .map(|i| {
                let record = license(&format!("user-{i}"), &video);
                let id = record.id.clone();
                ledger.record(record).unwrap();
                id
            })
            .collect()
    }

    async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
        for _ in 0..300 {
            if condition() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    fn segment_files(dir: &Path) -> usize {
        list_segments(dir).unwrap().len()
    }

    fn assert_each_arrived_once(cp: &FakeControlPlane, ids: &[String]) {
        let arrivals = cp.arrivals();
        let expected: HashSet<&String> = ids.iter().collect();
        let arrived: HashSet<&String> = arrivals.keys().collect();
        assert_eq!(arrived, expected, "exactly the recorded ids arrived");
        assert!(arrivals.values().all(|&n| n == 1), "each once");
    }

    #[tokio::test]
    async fn records_survive_a_control_plane_outage_and_arrive_once() {
        let dir = tempfile::tempdir().unwrap();
        let (cp, url) = control_plane(false).await;
        let ledger = Arc::new(ledger(dir.path(), &url).with_segment_bytes(8 * 1024));
        let task = ledger.spawn();
        let ids = record_many(&ledger, 1_200);
        assert!(segment_files(dir.path()) > 10, "segments rotated");
        let refused_posts = cp.posts.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(cp.posts.load(Ordering::SeqCst) > refused_posts, "retried");
        assert_eq!(
            ledger.pending(),
            1_200,
            "nothing lost or skipped while down"
        );
        assert!(cp.arrivals().is_empty());

        cp.up.store(true, Ordering::SeqCst);
        eventually("every record delivered", || ledger.pending() == 0).await;
        assert_each_arrived_once(&cp, &ids);
        assert_eq!(ledger.delivered(), 1_200);
        assert!(cp.largest_batch.load(Ordering::SeqCst) <= BATCH);
        eventually("acknowledged segments deleted", || {
            segment_files(dir.path()) == 1
        })
        .await;
        assert!(ledger.outbox_bytes() <= 8 * 1024 + MAX_RECORD_BYTES as u64);
        assert_eq!((ledger.unreadable(), ledger.rejected()), (0, 0));
        task.abort();
    }

    #[tokio::test]
    async fn a_restart_replays_what_was_left_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let (cp, url) = control_plane(false).await;
        let first_run = Arc::new(ledger(dir.path(), &url));
        let task = first_run.spawn();
        let mut ids = record_many(&first_run, 100);
        tokio::time::sleep(Duration::from_millis(300)).await;
        task.abort();
        drop(first_run);

        cp.up.store(true, Ordering::SeqCst);
        let second_run = Arc::new(ledger(dir.path(), &url));
        assert_eq!(
            second_run.pending(),
            100,
            "the earlier run's records are found"
        );
        ids.extend(record_many(&second_run, 50));
        let task = second_run.spawn();
        eventually("both runs' records delivered", || second_run.pending() == 0).await;
        assert_each_arrived_once(&cp, &ids);
        task.abort();
        drop(second_run);

        let posts = cp.posts.load(Ordering::SeqCst);
        let third_run = Arc::new(ledger(dir.path(), &url));
        assert_eq!(
            third_run.pending(),
            0,
            "acknowledged records are not replayed"
        );
        let task = third_run.spawn();
        eventually("old segments cleaned up", || segment_files(dir.path()) == 1).await;
        assert_eq!(cp.posts.load(Ordering::SeqCst), posts, "nothing re-sent");
        assert_eq!(third_run.unreadable(), 0);
        task.abort();
    }

    #[tokio::test]
    async fn a_torn_last_line_and_a_corrupt_line_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let video = uuid::Uuid::new_v4().to_string();
        let (first, second, torn) = (
            license("u1", &video),
            license("u2", &video),
            license("u3", &video),
        );
        let mut content = Vec::new();
        for record in [&first, &second] {
            content.extend(serde_json::to_vec(record).unwrap());
            content.push(b'\n');
            if record == &first {
                content.extend(b"{\"id\": garbage\n");
            }
        }
        let torn_line = serde_json::to_vec(&torn).unwrap();
        content.extend(&torn_line[..torn_line.len() / 2]);
        std::fs::write(segment_path(dir.path(), 7), content).unwrap();

        let (cp, url) = control_plane(true).await;
        let ledger = Arc::new(ledger(dir.path(), &url));
        assert_eq!(
            ledger.pending(),
            3,
            "two records and one corrupt line to go"
        );
        let after = record_many(&ledger, 1);
        let task = ledger.spawn();
        eventually("readable records delivered", || ledger.pending() == 0).await;
        let mut expected = vec![first.id.clone(), second.id.clone()];
        expected.extend(after);
        assert_each_arrived_once(&cp, &expected);
        eventually("the torn segment is done", || {
            !segment_path(dir.path(), 7).exists()
        })
        .await;
        assert_eq!(ledger.unreadable(), 2, "the corrupt line and the torn tail");
        task.abort();
    }

    #[tokio::test]
    async fn rejected_records_are_kept_aside_and_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        let (cp, url) = control_plane(true).await;
        let ledger = Arc::new(ledger(dir.path(), &url));
        let video = uuid::Uuid::new_v4().to_string();
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for i in 0..10 {
            let record = match i {
                3 => license("u", UNKNOWN_VIDEO),
                6 => license("poison", &video),
                _ => license("u", &video),
            };
            if matches!(i, 3 | 6) {
                bad.push(record.id.clone());
            } else {
                good.push(record.id.clone());
            }
            ledger.record(record).unwrap();
        }
        let task = ledger.spawn();
        eventually("all settled", || ledger.pending() == 0).await;
        assert_eq!((ledger.delivered(), ledger.rejected()), (8, 2));
        let arrivals = cp.arrivals();
        for id in &good {
            assert_eq!(arrivals.get(id), Some(&1), "good records delivered once");
        }
        assert_eq!(
            arrivals.get(&bad[0]),
            Some(&1),
            "the unknown video was sent once"
        );
        assert_eq!(
            arrivals.get(&bad[1]),
            None,
            "the poison record was never accepted"
        );
        let kept = std::fs::read_to_string(dir.path().join(REJECTED_FILE)).unwrap();
        let kept: Vec<LicenseRecord> = kept
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let mut kept_ids: Vec<String> = kept.into_iter().map(|r| r.id).collect();
        kept_ids.sort();
        let mut bad_sorted = bad.clone();
        bad_sorted.sort();
        assert_eq!(kept_ids, bad_sorted);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(cp.arrivals().get(&bad[0]), Some(&1), "not retried");
        task.abort();
    }

    #[tokio::test]
    async fn a_full_outbox_refuses_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(dir.path(), "http://127.0.0.1:1").with_max_outbox_bytes(2_000);
        let mut accepted = 0;
        let refusal = loop {
            match ledger.record(license("u", UNKNOWN_VIDEO)) {
                Ok(()) => accepted += 1,
                Err(e) => break e,
            }
            assert!(accepted < 100, "the bound holds");
        };
        assert_eq!(refusal.kind(), io::ErrorKind::StorageFull);
        assert!(accepted > 0);
        assert_eq!((ledger.pending(), ledger.refused()), (accepted, 1));
        assert!(ledger.outbox_bytes() <= 2_000);

        let mut huge = license("u", UNKNOWN_VIDEO);
        huge.device_id = Some("d".repeat(MAX_RECORD_BYTES));
        assert_eq!(
            ledger.record(huge).unwrap_err().kind(),
            io::ErrorKind::InvalidInput,
            "oversized records are refused before anything else"
        );
        assert_eq!(ledger.pending(), accepted);
    }

    #[test]
    fn records_serialize_to_the_contract_shape() {
        let record = LicenseRecord {
            device_id: Some("device-1".into()),
            key_id: None,
            ..license("u1", UNKNOWN_VIDEO)
        };
        let value = serde_json::to_value(&record).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "deviceId",
                "drmSystem",
                "expiresAt",
                "id",
                "issuedAt",
                "keyId",
                "licenseType",
                "userId",
                "videoId"
            ]
        );
        assert_eq!(value["keyId"], Value::Null);
        assert_eq!(value["issuedAt"], 1_700_000_000);
        assert_eq!(value["licenseType"], "rental");
    }
}
