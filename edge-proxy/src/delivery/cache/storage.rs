//! [`BoundedMemoryStorage`]: pingora-cache's [`Storage`] in process memory, with a byte budget.
//!
//! Pingora ships `MemCache` for tests only: it never evicts, copies the body on every hit and
//! panics on a few paths. This storage is what the edge caches segments and origin playlists in:
//!
//! - **Byte budget.** Committed objects live in a moka cache whose weigher counts the serialized
//!   meta (internal meta + response header), the body and a fixed per-object overhead
//!   ([`OBJECT_OVERHEAD_BYTES`]); `max_capacity` is [`StorageLimits::capacity_bytes`]. The
//!   eviction policy is plain LRU, not moka's default TinyLFU: a live segment is hot the moment
//!   it is written, and TinyLFU's admission filter would turn it away in favour of older,
//!   often-read segments. Moka evicts during its housekeeping, so a commit runs it at once and
//!   the budget holds after every commit, not only "eventually".
//! - **Per-object limit.** Objects over [`StorageLimits::max_object_bytes`] are never stored
//!   (see [`BoundedMemoryStorage::get_miss_handler`] for what happens to them on the way).
//! - **Stale entries stay.** Freshness is pingora-cache's business (it reads the meta); storage
//!   never drops an entry at `fresh_until`, so stale-while-revalidate, stale-if-error and 304
//!   revalidation can use it. Only the budget and [`StorageLimits::max_age`] (counted from the
//!   last commit or meta update, to keep memory honest) remove entries.
//! - **Streaming partial writes** (optional, [`StorageLimits::streaming_partial_write`]): an
//!   object being written is readable while it is written, so requests released by the cache
//!   lock start streaming from the first byte instead of waiting for the whole object. Readers
//!   of an in-flight write get its chunks without copies; a committed hit returns one
//!   zero-copy slice of the stored body, and supports single and multipart range seeks.
//! - **Bounded in-flight memory.** An in-flight write holds at most `max_object_bytes`.
//!
//! Lookups are keyed by pingora's combined (primary + variance) hash, so `Vary` variants are
//! separate objects. Entries carry no storage-defined identity, so purges with an identified
//! target find nothing; do not pass pingora an eviction manager (the budget is enforced here).

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use pingora::cache::key::{CacheHashKey, HashBinary};
use pingora::cache::max_file_size::ERR_RESPONSE_TOO_LARGE;
use pingora::cache::storage::streaming_write::U64WriteId;
use pingora::cache::storage::{
    HandleHit, HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget,
    PurgeType, Storage,
};
use pingora::cache::trace::SpanHandle;
use pingora::cache::{CacheEntryKey, CacheKey, CacheMeta};
use pingora::{Error, ErrorType, Result};
use tokio::sync::watch;

pub use crate::config::{StorageLimits, StorageLimitsError, OBJECT_OVERHEAD_BYTES};

/// `CacheMeta::serialize()`'s two parts: internal meta, response header.
type SerializedMeta = (Vec<u8>, Vec<u8>);

/// A committed object.
struct StoredObject {
    meta: SerializedMeta,
    body: Bytes,
}

impl StoredObject {
    fn weight(&self) -> usize {
        object_weight(&self.meta, self.body.len())
    }
}

fn object_weight(meta: &SerializedMeta, body_len: usize) -> usize {
    OBJECT_OVERHEAD_BYTES
        .saturating_add(meta.0.len())
        .saturating_add(meta.1.len())
        .saturating_add(body_len)
}

/// Where an in-flight write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteState {
    Writing,
    /// The whole body has been written; readers end at the last chunk.
    Complete,
    /// The writer failed or gave up; the body is truncated and readers must fail.
    Abandoned,
}

struct PartialBody {
    chunks: Vec<Bytes>,
    /// Body bytes received, whether kept or not.
    len: usize,
    state: WriteState,
    /// False once the object must not be committed (too large, or purged while in flight).
    commit: bool,
}

/// An object being written by one miss handler and read by any number of partial hits.
struct InFlight {
    key: HashBinary,
    write_id: U64WriteId,
    meta: SerializedMeta,
    body: Mutex<PartialBody>,
    /// Bumped after every change to `body`, to wake readers.
    changes: watch::Sender<u64>,
}

impl InFlight {
    fn notify(&self) {
        self.changes
            .send_modify(|version| *version = version.wrapping_add(1));
    }
}

/// In-flight writes: by write id (for the writer's own reader) and, for new readers, the one
/// write per key they may join.
#[derive(Default)]
struct InFlightIndex {
    by_write: HashMap<u64, Arc<InFlight>>,
    joinable: HashMap<HashBinary, u64>,
}

impl InFlightIndex {
    /// Forgets a write: no new reader finds it. Readers already attached keep their `Arc`.
    fn detach(&mut self, write: &InFlight) {
        let id = u64::from(write.write_id);
        self.by_write.remove(&id);
        if self.joinable.get(&write.key) == Some(&id) {
            self.joinable.remove(&write.key);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // every critical section leaves the data consistent, so a poisoned lock is still usable
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bounded in-memory [`Storage`] for pingora-cache. See the module docs.
pub struct BoundedMemoryStorage {
    limits: StorageLimits,
    stored: Cache<HashBinary, Arc<StoredObject>>,
    in_flight: Arc<Mutex<InFlightIndex>>,
    next_write_id: AtomicU64,
}

impl BoundedMemoryStorage {
    /// A storage enforcing `limits`.
    pub fn new(limits: StorageLimits) -> std::result::Result<Self, StorageLimitsError> {
        limits.validate()?;
        let stored = Cache::builder()
            .max_capacity(limits.capacity_bytes)
            .weigher(|_key: &HashBinary, object: &Arc<StoredObject>| {
                u32::try_from(object.weight()).unwrap_or(u32::MAX)
            })
            .eviction_policy(EvictionPolicy::lru())
            .time_to_live(limits.max_age)
            .build();
        Ok(BoundedMemoryStorage {
            limits,
            stored,
            in_flight: Arc::default(),
            next_write_id: AtomicU64::new(0),
        })
    }

    /// Pingora's cache wants `&'static` storage: make one at start-up and leak it (once).
    pub fn into_static(self) -> &'static Self {
        Box::leak(Box::new(self))
    }

    /// The limits this storage enforces. Give `max_object_bytes` to pingora too
    /// (`session.cache.set_max_file_size_bytes`) so it skips objects it knows are too large.
    pub fn limits(&self) -> StorageLimits {
        self.limits
    }

    /// Bytes charged to the budget by committed objects, after pending evictions have run.
    pub fn stored_bytes(&self) -> u64 {
        self.stored.run_pending_tasks();
        self.stored.weighted_size()
    }

    /// Committed objects, after pending evictions have run.
    pub fn stored_objects(&self) -> u64 {
        self.stored.run_pending_tasks();
        self.stored.entry_count()
    }

    /// Writes in flight (each holds at most `max_object_bytes`).
    pub fn writes_in_flight(&self) -> usize {
        lock(&self.in_flight).by_write.len()
    }

    fn complete_hit(object: Arc<StoredObject>) -> Result<(CacheMeta, HitHandler)> {
        let meta = CacheMeta::deserialize(&object.meta.0, &object.meta.1)?;
        let end = object.body.len();
        let hit = CompleteHit {
            object,
            start: 0,
            end,
            done: false,
        };
        Ok((meta, Box::new(hit)))
    }

    fn partial_hit(write: Arc<InFlight>) -> Result<(CacheMeta, HitHandler)> {
        let meta = CacheMeta::deserialize(&write.meta.0, &write.meta.1)?;
        let changes = write.changes.subscribe();
        let hit = PartialHit {
            write,
            changes,
            next_chunk: 0,
            offset: 0,
            start: 0,
            end: None,
        };
        Ok((meta, Box::new(hit)))
    }

    fn declared_too_large(&self, meta: &CacheMeta, serialized: &SerializedMeta) -> bool {
        let content_length = meta
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<usize>().ok())
            .unwrap_or(0);
        object_weight(serialized, content_length) - OBJECT_OVERHEAD_BYTES
            > self.limits.max_object_bytes
    }
}

#[async_trait]
impl Storage for BoundedMemoryStorage {
    /// An in-flight write of `key` when streaming partial writes are on (so readers released by
    /// the cache lock, and readers of a stale object being refetched, see the new body at once),
    /// else the committed object, fresh or stale.
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let hash = key.combined_bin();
        if self.limits.streaming_partial_write {
            let joinable = {
                let index = lock(&self.in_flight);
                index
                    .joinable
                    .get(&hash)
                    .and_then(|id| index.by_write.get(id))
                    .cloned()
            };
            if let Some(write) = joinable {
                return Self::partial_hit(write).map(Some);
            }
        }
        match self.stored.get(&hash) {
            Some(object) => Self::complete_hit(object).map(Some),
            None => Ok(None),
        }
    }

    /// The writer's own reader: exactly its write, even when no new reader may join it any more.
    /// An error (never `None`, on which pingora panics) if the write is gone.
    async fn lookup_streaming_write(
        &'static self,
        key: &CacheKey,
        streaming_write_tag: Option<&[u8]>,
        trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let Some(tag) = streaming_write_tag else {
            return self.lookup(key, trace).await;
        };
        let Ok(write_id) = U64WriteId::try_from(tag) else {
            return Error::e_explain(ErrorType::InternalError, "malformed streaming write tag");
        };
        let hash = key.combined_bin();
        let write = lock(&self.in_flight)
            .by_write
            .get(&u64::from(write_id))
            .filter(|write| write.key == hash)
            .cloned();
        match write {
            Some(write) => Self::partial_hit(write).map(Some),
            None => Error::e_explain(ErrorType::InternalError, "streaming write not in flight"),
        }
    }

    /// Starts writing an object.
    ///
    /// An object whose `Content-Length` (plus header) is over `max_object_bytes` is not stored:
    /// without streaming partial writes the handler takes the body and drops it (the viewer is
    /// served straight from the origin); with them this is an `ERR_RESPONSE_TOO_LARGE` error,
    /// on which pingora disables the cache for the request and still streams it through. An
    /// object with no length that grows past the limit is handled in
    /// [`HandleMiss::write_body`].
    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let serialized = meta.serialize()?;
        let too_large = self.declared_too_large(meta, &serialized);
        if too_large && self.limits.streaming_partial_write {
            return Error::e_explain(
                ERR_RESPONSE_TOO_LARGE,
                format!(
                    "declared size over the cache's {} byte object limit",
                    self.limits.max_object_bytes
                ),
            );
        }
        let header_bytes = serialized.0.len() + serialized.1.len();
        let id = self.next_write_id.fetch_add(1, Ordering::Relaxed);
        let (changes, _) = watch::channel(0);
        let write = Arc::new(InFlight {
            key: key.combined_bin(),
            write_id: U64WriteId::from(id),
            meta: serialized,
            body: Mutex::new(PartialBody {
                chunks: Vec::new(),
                len: 0,
                state: WriteState::Writing,
                commit: !too_large,
            }),
            changes,
        });
        {
            let mut index = lock(&self.in_flight);
            index.by_write.insert(id, write.clone());
            if !too_large {
                // the newest write of a key is the one new readers join
                index.joinable.insert(write.key, id);
            }
        }
        Ok(Box::new(BoundedMissHandler {
            write,
            storage: self,
            header_bytes,
            finished: false,
        }))
    }

    /// Removes the committed object and stops in-flight writes of the key from committing
    /// (their attached readers still get the whole body).
    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        _purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        if matches!(target, PurgeTarget::Exact(CacheEntryKey::Identified { .. })) {
            // entries carry no storage-defined identity, so an identified target is not ours
            return Ok(PurgeOutcome::NotFound);
        }
        let hash = target.key().combined_bin();
        let removed = self.stored.remove(&hash).is_some();
        let stopped = {
            let mut index = lock(&self.in_flight);
            index.joinable.remove(&hash);
            let mut stopped = false;
            for write in index.by_write.values().filter(|write| write.key == hash) {
                lock(&write.body).commit = false;
                stopped = true;
            }
            stopped
        };
        if removed || stopped {
            Ok(PurgeOutcome::Purged(None))
        } else {
            Ok(PurgeOutcome::NotFound)
        }
    }

    /// Marks the committed object stale (its meta expires now) and keeps its body for a 304.
    async fn expire(
        &'static self,
        target: PurgeTarget<'_>,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        if matches!(target, PurgeTarget::Exact(CacheEntryKey::Identified { .. })) {
            return Ok(PurgeOutcome::NotFound);
        }
        let hash = target.key().combined_bin();
        let Some(object) = self.stored.get(&hash) else {
            return Ok(PurgeOutcome::NotFound);
        };
        let mut meta = CacheMeta::deserialize(&object.meta.0, &object.meta.1)?;
        meta.expire_at(SystemTime::now());
        self.stored.insert(
            hash,
            Arc::new(StoredObject {
                meta: meta.serialize()?,
                body: object.body.clone(),
            }),
        );
        Ok(PurgeOutcome::Expired)
    }

    /// Replaces the committed object's meta (a 304 revalidation), keeping its body; the object's
    /// `max_age` starts again. `false` when the object is gone (evicted or purged meanwhile).
    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let hash = key.combined_bin();
        let Some(object) = self.stored.get(&hash) else {
            return Ok(false);
        };
        let updated = StoredObject {
            meta: meta.serialize()?,
            body: object.body.clone(),
        };
        if updated.weight() - OBJECT_OVERHEAD_BYTES > self.limits.max_object_bytes {
            self.stored.remove(&hash);
            return Ok(false);
        }
        self.stored.insert(hash, Arc::new(updated));
        Ok(true)
    }

    fn support_streaming_partial_write(&self) -> bool {
        self.limits.streaming_partial_write
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

/// Writes one object; see [`BoundedMemoryStorage::get_miss_handler`].
struct BoundedMissHandler {
    write: Arc<InFlight>,
    storage: &'static BoundedMemoryStorage,
    header_bytes: usize,
    finished: bool,
}

impl BoundedMissHandler {
    fn abandon(&self) {
        {
            let mut body = lock(&self.write.body);
            if body.state == WriteState::Writing {
                body.state = WriteState::Abandoned;
            }
            body.chunks = Vec::new();
            body.commit = false;
        }
        lock(&self.storage.in_flight).detach(&self.write);
        self.write.notify();
    }
}

#[async_trait]
impl HandleMiss for BoundedMissHandler {
    /// Appends a chunk. When the body outgrows `max_object_bytes`: without streaming partial
    /// writes the object is dropped and the rest passes through unstored; with them the write
    /// fails with `ERR_RESPONSE_TOO_LARGE` and so do its readers (pingora's own max-file-size
    /// behaviour), because they read the body from here and it cannot be held.
    async fn write_body(&mut self, data: Bytes, eof: bool) -> Result<()> {
        let streaming = self.storage.limits.streaming_partial_write;
        let max = self.storage.limits.max_object_bytes;
        let outgrown = {
            let mut body = lock(&self.write.body);
            if body.state != WriteState::Writing {
                return Error::e_explain(ErrorType::InternalError, "cache write already ended");
            }
            body.len = body.len.saturating_add(data.len());
            let outgrown = body.len.saturating_add(self.header_bytes) > max;
            if outgrown {
                body.commit = false;
                body.chunks = Vec::new();
            } else if (body.commit || streaming) && !data.is_empty() {
                body.chunks.push(data);
            }
            if eof && !(outgrown && streaming) {
                body.state = WriteState::Complete;
            }
            outgrown
        };
        if outgrown {
            if streaming {
                self.abandon();
                return Error::e_explain(
                    ERR_RESPONSE_TOO_LARGE,
                    format!("body over the cache's {max} byte object limit"),
                );
            }
            lock(&self.storage.in_flight).detach(&self.write);
        }
        self.write.notify();
        Ok(())
    }

    /// Commits the object (unless it was too large or purged meanwhile), evicting what the
    /// budget no longer holds, and lets readers reach the end.
    async fn finish(mut self: Box<Self>) -> Result<MissFinishType> {
        self.finished = true;
        let committed = {
            let mut body = lock(&self.write.body);
            match body.state {
                WriteState::Abandoned => {
                    return Error::e_explain(ErrorType::InternalError, "cache write was abandoned")
                }
                WriteState::Writing => body.state = WriteState::Complete,
                WriteState::Complete => {}
            }
            if body.commit {
                let mut joined = BytesMut::with_capacity(body.len);
                for chunk in &body.chunks {
                    joined.extend_from_slice(chunk);
                }
                Some(StoredObject {
                    meta: with_content_length(&self.write.meta, joined.len()),
                    body: joined.freeze(),
                })
            } else {
                None
            }
        };
        let size = match committed {
            Some(object) => {
                let size = object.weight();
                // commit before detaching, so a lookup in between finds one or the other
                self.storage.stored.insert(self.write.key, Arc::new(object));
                self.storage.stored.run_pending_tasks();
                size
            }
            None => 0,
        };
        lock(&self.storage.in_flight).detach(&self.write);
        self.write.notify();
        Ok(MissFinishType::Created(size))
    }

    fn streaming_write_tag(&self) -> Option<&[u8]> {
        Some(self.write.write_id.as_bytes())
    }
}

impl Drop for BoundedMissHandler {
    /// A write dropped before `finish` failed: readers must see an error, not a short body.
    fn drop(&mut self) {
        if !self.finished {
            self.abandon();
        }
    }
}

/// The meta of a complete body, with `Content-Length` filled in when the origin sent none (an
/// HTTP/1.0 close-delimited or chunked answer): hits then carry a length, so they are served
/// with ranges and without chunked framing. Left as it was if it cannot be re-encoded.
fn with_content_length(meta: &SerializedMeta, len: usize) -> SerializedMeta {
    let Ok(mut decoded) = CacheMeta::deserialize(&meta.0, &meta.1) else {
        return meta.clone();
    };
    let header = decoded.response_header_mut();
    if header.headers.contains_key(http::header::CONTENT_LENGTH) {
        return meta.clone();
    }
    header.remove_header(&http::header::TRANSFER_ENCODING);
    if header
        .insert_header(http::header::CONTENT_LENGTH, len.to_string())
        .is_err()
    {
        return meta.clone();
    }
    decoded.serialize().unwrap_or_else(|_| meta.clone())
}

/// A committed object: one zero-copy slice of the stored body per (sought) range.
struct CompleteHit {
    object: Arc<StoredObject>,
    start: usize,
    end: usize,
    done: bool,
}

#[async_trait]
impl HandleHit for CompleteHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        if self.done || self.start >= self.end {
            self.done = true;
            return Ok(None);
        }
        self.done = true;
        Ok(Some(self.object.body.slice(self.start..self.end)))
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    /// Reads `start..end` next (`end` exclusive, clamped to the body; `None` = to the end).
    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let len = self.object.body.len();
        let end = end.map_or(len, |end| end.min(len));
        if start >= len || start >= end {
            return Error::e_explain(
                ErrorType::InternalError,
                format!("seek {start}..{end} outside a {len} byte body"),
            );
        }
        self.start = start;
        self.end = end;
        // a seek rearms the reader, so one hit serves every part of a multipart range
        self.done = false;
        Ok(())
    }

    fn get_eviction_weight(&self) -> usize {
        self.object.weight()
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

/// A reader of an in-flight write: its chunks as they arrive, then the end, or an error if the
/// write is abandoned. Seeking narrows what it yields to `start..end` of the body, so a range
/// request arriving while the object is still being fetched gets its 206 too.
struct PartialHit {
    write: Arc<InFlight>,
    changes: watch::Receiver<u64>,
    next_chunk: usize,
    /// Body offset of the next chunk.
    offset: usize,
    start: usize,
    end: Option<usize>,
}

#[async_trait]
impl HandleHit for PartialHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        loop {
            // mark the current version seen before looking, so a later write always wakes us
            self.changes.borrow_and_update();
            {
                let body = lock(&self.write.body);
                if body.state == WriteState::Abandoned {
                    return Error::e_explain(
                        ErrorType::InternalError,
                        "cache write abandoned mid-body",
                    );
                }
                if self.end.is_some_and(|end| self.offset >= end) {
                    return Ok(None);
                }
                while let Some(chunk) = body.chunks.get(self.next_chunk) {
                    self.next_chunk += 1;
                    let chunk_start = self.offset;
                    self.offset += chunk.len();
                    let from = self.start.max(chunk_start) - chunk_start;
                    let to = self.end.unwrap_or(usize::MAX).min(self.offset) - chunk_start;
                    if from < to {
                        return Ok(Some(chunk.slice(from..to)));
                    }
                    if self.end.is_some_and(|end| self.offset >= end) {
                        return Ok(None);
                    }
                }
                if body.state == WriteState::Complete {
                    return Ok(None);
                }
            }
            if self.changes.changed().await.is_err() {
                // cannot happen while we hold the write, but never wait forever
                return Error::e_explain(ErrorType::InternalError, "cache write vanished");
            }
        }
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    /// Reads `start..end` next (`end` exclusive; `None` = to the end), from the first chunk.
    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        if end.is_some_and(|end| end < start) {
            return Error::e_explain(ErrorType::InternalError, "seek end before start");
        }
        self.next_chunk = 0;
        self.offset = 0;
        self.start = start;
        self.end = end;
        Ok(())
    }

    fn should_count_access(&self) -> bool {
        false
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use pingora::cache::trace::Span;
    use pingora::http::ResponseHeader;
    use std::time::Duration;

    const KIB: usize = 1024;

    fn span() -> SpanHandle {
        Span::inactive().handle()
    }

    fn storage(limits: StorageLimits) -> &'static BoundedMemoryStorage {
        BoundedMemoryStorage::new(limits)
            .expect("valid limits")
            .into_static()
    }

    fn limits(capacity_bytes: u64, max_object_bytes: usize) -> StorageLimits {
        StorageLimits {
            capacity_bytes,
            max_object_bytes,
            max_age: Duration::from_secs(3600),
            streaming_partial_write: true,
        }
    }

    fn meta_fresh_for(secs: i64, headers: &[(&'static str, String)]) -> CacheMeta {
        let now = SystemTime::now();
        let fresh_until = if secs >= 0 {
            now + Duration::from_secs(secs.unsigned_abs())
        } else {
            now - Duration::from_secs(secs.unsigned_abs())
        };
        let mut header = ResponseHeader::build(200, None).expect("header");
        for (name, value) in headers {
            header
                .insert_header(*name, value.as_str())
                .expect("header value");
        }
        CacheMeta::new(fresh_until, now - Duration::from_secs(1), 60, 600, header)
    }

    async fn store(
        cache: &'static BoundedMemoryStorage,
        key: &CacheKey,
        chunks: &[&[u8]],
    ) -> MissFinishType {
        let mut miss = cache
            .get_miss_handler(key, &meta_fresh_for(60, &[]), &span())
            .await
            .expect("miss handler");
        for (i, chunk) in chunks.iter().enumerate() {
            let eof = i + 1 == chunks.len();
            miss.write_body(Bytes::copy_from_slice(chunk), eof)
                .await
                .expect("write");
        }
        miss.finish().await.expect("finish")
    }

    async fn read_all(hit: &mut HitHandler) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = hit.read_body().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    async fn stored_body(cache: &'static BoundedMemoryStorage, key: &CacheKey) -> Option<Vec<u8>> {
        let (_, mut hit) = cache.lookup(key, &span()).await.expect("lookup")?;
        Some(read_all(&mut hit).await.expect("read"))
    }

    #[tokio::test]
    async fn a_written_object_reads_back_whole_and_by_range() {
        let cache = storage(limits(1 << 20, 64 * KIB));
        let key = CacheKey::new("/hls/v1/seg0.ts", "");
        assert!(cache.lookup(&key, &span()).await.unwrap().is_none());

        let meta = meta_fresh_for(60, &[("etag", "\"abc\"".into())]);
        let mut miss = cache.get_miss_handler(&key, &meta, &span()).await.unwrap();
        miss.write_body(Bytes::from_static(b"test1"), false)
            .await
            .unwrap();
        miss.write_body(Bytes::from_static(b"test2"), true)
            .await
            .unwrap();
        let MissFinishType::Created(size) = miss.finish().await.unwrap() else {
            panic!("a new object is created");
        };
        assert!(size >= 10 + OBJECT_OVERHEAD_BYTES);

        let (read_meta, mut hit) = cache.lookup(&key, &span()).await.unwrap().unwrap();
        assert_eq!(read_meta.fresh_until(), meta.fresh_until());
        assert_eq!(read_meta.headers().get("etag").unwrap(), "\"abc\"");
        assert_eq!(hit.get_eviction_weight(), size);
        assert_eq!(read_all(&mut hit).await.unwrap(), b"test1test2");

        assert!(hit.can_seek());
        assert!(hit.seek(10, None).is_err(), "start past the end");
        hit.seek(5, None).unwrap();
        assert_eq!(read_all(&mut hit).await.unwrap(), b"test2");
        hit.seek(4, Some(5)).unwrap();
        assert_eq!(read_all(&mut hit).await.unwrap(), b"1");
        hit.seek(8, Some(1000)).unwrap();
        assert_eq!(
            read_all(&mut hit).await.unwrap(),
            b"t2",
            "end clamps to the body"
        );
    }

    #[tokio::test]
    async fn the_byte_budget_evicts_the_least_recently_used() {
        let body = vec![7u8; 3000];
        let per_object = {
            let cache = storage(limits(1 << 20, 64 * KIB));
            let key = CacheKey::new("probe", "");
            let MissFinishType::Created(size) = store(cache, &key, &[&body]).await else {
                panic!("created");
            };
            size as u64
        };
        // room for three objects, not four
        let budget = per_object * 3 + per_object / 2;
        let cache = storage(limits(budget, 4 * KIB));
        let keys: Vec<CacheKey> = (0..5)
            .map(|i| CacheKey::new(format!("/hls/v1/seg{i}.ts"), ""))
            .collect();
        for key in &keys[..3] {
            store(cache, key, &[&body]).await;
        }
        // seg0 read recently, so seg1 is the least recently used
        assert!(stored_body(cache, &keys[0]).await.is_some());
        store(cache, &keys[3], &[&body]).await;
        assert!(cache.stored_bytes() <= budget);
        assert!(stored_body(cache, &keys[1]).await.is_none(), "LRU evicted");
        assert!(stored_body(cache, &keys[0]).await.is_some());

        store(cache, &keys[4], &[&body]).await;
        assert!(cache.stored_bytes() <= budget);
        assert_eq!(cache.stored_objects(), 3);
        assert_eq!(stored_body(cache, &keys[4]).await.unwrap(), body);
    }

    #[tokio::test]
    async fn an_object_declared_too_large_is_refused_before_any_body() {
        let cache = storage(limits(1 << 20, 4 * KIB));
        let key = CacheKey::new("/big.ts", "");
        let meta = meta_fresh_for(60, &[("content-length", (8 * KIB).to_string())]);
        let refused = cache.get_miss_handler(&key, &meta, &span()).await;
        let error = refused.err().expect("refused");
        assert_eq!(error.etype(), &ERR_RESPONSE_TOO_LARGE);
        assert_eq!(cache.writes_in_flight(), 0);
    }

    #[tokio::test]
    async fn without_streaming_a_too_large_object_streams_through_unstored() {
        let cache = storage(StorageLimits {
            streaming_partial_write: false,
            ..limits(1 << 20, 4 * KIB)
        });
        assert!(!cache.support_streaming_partial_write());
        let key = CacheKey::new("/big.ts", "");
        // declared too large: a handler that drops the body
        let meta = meta_fresh_for(60, &[("content-length", (8 * KIB).to_string())]);
        let mut miss = cache.get_miss_handler(&key, &meta, &span()).await.unwrap();
        miss.write_body(Bytes::from(vec![1u8; 8 * KIB]), true)
            .await
            .unwrap();
        assert!(matches!(
            miss.finish().await.unwrap(),
            MissFinishType::Created(0)
        ));
        // no length, outgrows the limit on the way
        let mut miss = cache
            .get_miss_handler(&key, &meta_fresh_for(60, &[]), &span())
            .await
            .unwrap();
        for _ in 0..8 {
            miss.write_body(Bytes::from(vec![1u8; KIB]), false)
                .await
                .unwrap();
        }
        miss.write_body(Bytes::new(), true).await.unwrap();
        assert!(matches!(
            miss.finish().await.unwrap(),
            MissFinishType::Created(0)
        ));
        assert!(cache.lookup(&key, &span()).await.unwrap().is_none());
        assert_eq!(cache.stored_bytes(), 0);
        assert_eq!(cache.writes_in_flight(), 0);
    }

    #[tokio::test]
    async fn with_streaming_an_object_outgrowing_the_limit_fails_its_readers() {
        let cache = storage(limits(1 << 20, 4 * KIB));
        let key = CacheKey::new("/unknown-length.ts", "");
        let mut miss = cache
            .get_miss_handler(&key, &meta_fresh_for(60, &[]), &span())
            .await
            .unwrap();
        let (_, mut reader) = cache.lookup(&key, &span()).await.unwrap().unwrap();
        miss.write_body(Bytes::from(vec![1u8; 2 * KIB]), false)
            .await
            .unwrap();
        assert_eq!(reader.read_body().await.unwrap().unwrap().len(), 2 * KIB);
        let error = miss
            .write_body(Bytes::from(vec![1u8; 4 * KIB]), false)
            .await
            .expect_err("too large");
        assert_eq!(error.etype(), &ERR_RESPONSE_TOO_LARGE);
        assert!(
            reader.read_body().await.is_err(),
            "a short body is an error"
        );
        drop(miss);
        assert!(cache.lookup(&key, &span()).await.unwrap().is_none());
        assert_eq!(cache.writes_in_flight(), 0);
    }

    #[tokio::test]
    async fn purge_removes_stored_and_in_flight_objects() {
        let cache = storage(limits(1 << 20, 64 * KIB));
        let key = CacheKey::new("/hls/v1/index.m3u8", "");
        store(cache, &key, &[b"#EXTM3U\n"]).await;
        let compact = key.to_compact();
        let purged = cache
            .purge(
                PurgeTarget::Active(&compact),
                PurgeType::Invalidation,
                &span(),
            )
            .await
            .unwrap();
        assert_eq!(purged, PurgeOutcome::Purged(None));
        assert!(cache.lookup(&key, &span()).await.unwrap().is_none());
        let again = cache
            .purge(
                PurgeTarget::Active(&compact),
                PurgeType::Invalidation,
                &span(),
            )
            .await
            .unwrap();
        assert_eq!(again, PurgeOutcome::NotFound);

        // purged while in flight: attached readers finish, nothing is committed
        let mut miss = cache
            .get_miss_handler(&key, &meta_fresh_for(60, &[]), &span())
            .await
            .unwrap();
        let (_, mut reader) = cache.lookup(&key, &span()).await.unwrap().unwrap();
        miss.write_body(Bytes::from_static(b"old "), false)
            .await
            .unwrap();
        let purged = cache
            .purge(
                PurgeTarget::Active(&compact),
                PurgeType::Invalidation,
                &span(),
            )
            .await
            .unwrap();
        assert_eq!(purged, PurgeOutcome::Purged(None));
        assert!(
            cache.lookup(&key, &span()).await.unwrap().is_none(),
            "no new reader joins a purged write"
        );
        miss.write_body(Bytes::from_static(b"body"), true)
            .await
            .unwrap();
        assert!(matches!(
            miss.finish().await.unwrap(),
            MissFinishType::Created(0)
        ));
        assert_eq!(read_all(&mut reader).await.unwrap(), b"old body");
        assert!(cache.lookup(&key, &span()).await.unwrap().is_none());

        // identified targets are never ours
        store(cache, &key, &[b"x"]).await;
        let identified =
            CacheEntryKey::identified(compact.clone(), pingora::cache::CacheEntryId::new(1));
        let outcome = cache
            .purge(
                PurgeTarget::Exact(&identified),
                PurgeType::Eviction,
                &span(),
            )
            .await
            .unwrap();
        assert_eq!(outcome, PurgeOutcome::NotFound);
        assert!(cache.lookup(&key, &span()).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn update_meta_replaces_the_meta_and_keeps_the_body() {
        let cache = storage(limits(1 << 20, 64 * KIB));
        let key = CacheKey::new("/hls/v1/seg0.ts", "");
        store(cache, &key, &[b"segment bytes"]).await;

        let revalidated = meta_fresh_for(3600, &[("etag", "\"v2\"".into())]);
        assert!(cache
            .update_meta(&key, &revalidated, &span())
            .await
            .unwrap());
        let (meta, mut hit) = cache.lookup(&key, &span()).await.unwrap().unwrap();
        assert_eq!(meta.fresh_until(), revalidated.fresh_until());
        assert_eq!(meta.headers().get("etag").unwrap(), "\"v2\"");
        assert_eq!(read_all(&mut hit).await.unwrap(), b"segment bytes");

        let absent = CacheKey::new("/never-stored", "");
        assert!(!cache
            .update_meta(&absent, &revalidated, &span())
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn stale_objects_stay_readable_until_max_age() {
        let cache = storage(StorageLimits {
            max_age: Duration::from_millis(300),
            ..limits(1 << 20, 64 * KIB)
        });
        let key = CacheKey::new("/hls/v1/seg0.ts", "");
        let stale = meta_fresh_for(-30, &[]);
        let mut miss = cache.get_miss_handler(&key, &stale, &span()).await.unwrap();
        miss.write_body(Bytes::from_static(b"still useful"), true)
            .await
            .unwrap();
        miss.finish().await.unwrap();

        let (meta, mut hit) = cache.lookup(&key, &span()).await.unwrap().unwrap();
        assert!(!meta.is_fresh(SystemTime::now()));
        assert!(meta.serve_stale_if_error(SystemTime::now()));
        assert_eq!(read_all(&mut hit).await.unwrap(), b"still useful");

        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(cache.lookup(&key, &span()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn expire_makes_the_object_stale_and_keeps_its_body() {
        let cache = storage(limits(1 << 20, 64 * KIB));
        let key = CacheKey::new("/hls/v1/seg0.ts", "");
        store(cache, &key, &[b"body"]).await;
        let compact = key.to_compact();
        let outcome = cache
            .expire(PurgeTarget::Active(&compact), &span())
            .await
            .unwrap();
        assert_eq!(outcome, PurgeOutcome::Expired);
        let (meta, mut hit) = cache.lookup(&key, &span()).await.unwrap().unwrap();
        assert!(!meta.is_fresh(SystemTime::now() + Duration::from_secs(1)));
        assert_eq!(read_all(&mut hit).await.unwrap(), b"body");
    }

    #[tokio::test]
    async fn readers_stream_an_object_while_it_is_written() {
        let cache = storage(limits(1 << 20, 64 * KIB));
        assert!(cache.support_streaming_partial_write());
        let key = CacheKey::new("/hls/v1/live/seg100.ts", "");
        let mut miss = cache
            .get_miss_handler(&key, &meta_fresh_for(60, &[]), &span())
            .await
            .unwrap();
        let tag = miss.streaming_write_tag().expect("tag").to_vec();
        let (_, mut own) = cache
            .lookup_streaming_write(&key, Some(&tag), &span())
            .await
            .unwrap()
            .unwrap();
        let (_, mut early) = cache.lookup(&key, &span()).await.unwrap().unwrap();
        // range readers of the write get only their bytes, across chunk boundaries
        assert!(early.can_seek());
        let (_, mut ranged) = cache.lookup(&key, &span()).await.unwrap().unwrap();
        ranged.seek(3, Some(9)).unwrap();
        assert!(ranged.seek(5, Some(4)).is_err());
        let (_, mut tail) = cache.lookup(&key, &span()).await.unwrap().unwrap();
        tail.seek(7, None).unwrap();
        assert!(
            early.read_body().now_or_never().is_none(),
            "waits for bytes"
        );

        // a reader on another task gets every chunk as it lands
        let concurrent = {
            let (_, mut hit) = cache.lookup(&key, &span()).await.unwrap().unwrap();
            tokio::spawn(async move { read_all(&mut hit).await })
        };
        miss.write_body(Bytes::from_static(b"part1 "), false)
            .await
            .unwrap();
        assert_eq!(early.read_body().await.unwrap().unwrap(), "part1 ");
        assert!(early.read_body().now_or_never().is_none());
        tokio::task::yield_now().await;
        miss.write_body(Bytes::from_static(b"part2"), false)
            .await
            .unwrap();
        let (_, mut late) = cache.lookup(&key, &span()).await.unwrap().unwrap();
        assert_eq!(late.read_body().await.unwrap().unwrap(), "part1 ");
        assert_eq!(late.read_body().await.unwrap().unwrap(), "part2");

        miss.write_body(Bytes::new(), true).await.unwrap();
        miss.finish().await.unwrap();
        assert_eq!(read_all(&mut own).await.unwrap(), b"part1 part2");
        assert_eq!(read_all(&mut early).await.unwrap(), b"part2");
        assert!(late.read_body().await.unwrap().is_none());
        assert_eq!(concurrent.await.unwrap().unwrap(), b"part1 part2");
        assert_eq!(read_all(&mut ranged).await.unwrap(), b"t1 par");
        assert_eq!(read_all(&mut tail).await.unwrap(), b"art2");

        // committed: now a complete, seekable hit
        let (_, hit) = cache.lookup(&key, &span()).await.unwrap().unwrap();
        assert!(hit.can_seek());
        assert_eq!(cache.writes_in_flight(), 0);
        // the tag no longer names a write: an error, never a panic in pingora
        assert!(cache
            .lookup_streaming_write(&key, Some(&tag), &span())
            .await
            .is_err());
    }

    #[tokio::test]
    async fn a_dropped_writer_fails_its_readers_instead_of_ending_them() {
        let cache = storage(limits(1 << 20, 64 * KIB));
        let key = CacheKey::new("/hls/v1/seg1.ts", "");
        let mut miss = cache
            .get_miss_handler(&key, &meta_fresh_for(60, &[]), &span())
            .await
            .unwrap();
        let (_, mut reader) = cache.lookup(&key, &span()).await.unwrap().unwrap();
        miss.write_body(Bytes::from_static(b"half"), false)
            .await
            .unwrap();
        let waiting = tokio::spawn(async move { read_all(&mut reader).await });
        tokio::task::yield_now().await;
        drop(miss); // the origin connection died
        assert!(waiting.await.unwrap().is_err());
        assert!(cache.lookup(&key, &span()).await.unwrap().is_none());
        assert_eq!(cache.writes_in_flight(), 0);
    }

    #[tokio::test]
    async fn vary_variants_are_separate_objects() {
        let cache = storage(limits(1 << 20, 64 * KIB));
        let mut gzip = CacheKey::new("/hls/v1/index.m3u8", "");
        gzip.set_variance_key(pingora::cache::key::hash_key("gzip"));
        let plain = CacheKey::new("/hls/v1/index.m3u8", "");
        store(cache, &gzip, &[b"compressed"]).await;
        store(cache, &plain, &[b"plain"]).await;
        assert_eq!(stored_body(cache, &gzip).await.unwrap(), b"compressed");
        assert_eq!(stored_body(cache, &plain).await.unwrap(), b"plain");
    }

    #[test]
    fn limits_are_validated() {
        assert!(StorageLimits::default().validate().is_ok());
        let zero = StorageLimits {
            capacity_bytes: 0,
            ..StorageLimits::default()
        };
        assert_eq!(zero.validate(), Err(StorageLimitsError::ZeroCapacity));
        let larger = StorageLimits {
            capacity_bytes: 10,
            max_object_bytes: 11,
            ..StorageLimits::default()
        };
        assert!(matches!(
            larger.validate(),
            Err(StorageLimitsError::ObjectLargerThanCapacity { .. })
        ));
        let no_age = StorageLimits {
            max_age: Duration::ZERO,
            ..StorageLimits::default()
        };
        assert_eq!(no_age.validate(), Err(StorageLimitsError::ZeroMaxAge));
    }
}
