//! Playback analytics: `PlaybackStarted`, `LicenseIssued` and `PlaybackError` events sent to
//! the analytics bus, a Redis Stream (readable with consumer groups) or a JSON-lines file.
//!
//! [`Analytics::emit`] never blocks and never fails the request: it puts the event on a bounded
//! channel ([`CHANNEL_CAPACITY`]) and returns. A writer task, started with [`Analytics::spawn`]
//! (it needs a tokio runtime, so the caller starts it where it owns one), drains the channel in
//! batches of up to [`BATCH`]:
//! - Redis: one pipeline of `XADD {prefix}{stream} MAXLEN ~ {max_len} * event <json>` per batch;
//! - file: the batch's JSON lines appended in one write (parent directories created).
//!
//! The bus is **best-effort**: a full channel drops the event, and a batch that still fails
//! after [`WRITE_ATTEMPTS`] attempts is dropped; both are counted ([`Analytics::dropped`]) and
//! logged. The durable record of an issued license is the ledger ([`super::ledger`]),
//! not this bus.
//!
//! Event JSON (camelCase, every field present, `null` when unknown):
//! `{"type","eventId","at" (unix ms),"edgeId","userId","videoId","sessionId","licenseId",
//! "drmSystem","reason","status"}`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::core::redis::RedisLink;

/// Events waiting for the writer; beyond this, new events are dropped.
pub const CHANNEL_CAPACITY: usize = 10_000;
/// Events written per pipeline or file append.
pub const BATCH: usize = 500;
/// Attempts per batch before it is dropped.
pub const WRITE_ATTEMPTS: u32 = 3;
/// Pause before the second attempt; doubled for each later one.
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// Where events go.
pub enum AnalyticsSink {
    /// The Redis Stream `stream_key` (the full key, prefix included: `link.key("events")`),
    /// trimmed to about `max_len` entries.
    Redis {
        link: Arc<RedisLink>,
        stream_key: String,
        max_len: u64,
    },
    /// One JSON object per line, appended.
    File(PathBuf),
    /// Events are discarded (not counted as dropped).
    Off,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    PlaybackStarted,
    LicenseIssued,
    PlaybackError,
}

/// One analytics event. The edge id is added when it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub event_id: Uuid,
    /// Unix milliseconds.
    pub at: u64,
    pub user_id: Option<String>,
    pub video_id: Option<String>,
    pub session_id: Option<String>,
    pub license_id: Option<String>,
    pub drm_system: Option<String>,
    /// The machine reason code of an error.
    pub reason: Option<String>,
    /// The HTTP status of an error.
    pub status: Option<u16>,
}

impl Event {
    fn new(kind: EventKind, at_ms: u64) -> Event {
        Event {
            kind,
            event_id: Uuid::new_v4(),
            at: at_ms,
            user_id: None,
            video_id: None,
            session_id: None,
            license_id: None,
            drm_system: None,
            reason: None,
            status: None,
        }
    }

    /// A viewer started playing a title (its master playlist was served) at `at_ms`.
    pub fn playback_started(
        at_ms: u64,
        user_id: Option<&str>,
        video_id: &str,
        session_id: Option<&str>,
    ) -> Event {
        Event {
            user_id: user_id.map(Into::into),
            video_id: Some(video_id.into()),
            session_id: session_id.map(Into::into),
            ..Event::new(EventKind::PlaybackStarted, at_ms)
        }
    }

    /// A license or key was issued in playback session `session_id` (`drm_system`: clearkey,
    /// aes128, fairplay, widevine, playready) at `at_ms`.
    pub fn license_issued(
        at_ms: u64,
        user_id: &str,
        video_id: &str,
        session_id: &str,
        license_id: &str,
        drm_system: &str,
    ) -> Event {
        Event {
            user_id: Some(user_id.into()),
            video_id: Some(video_id.into()),
            session_id: Some(session_id.into()),
            license_id: Some(license_id.into()),
            drm_system: Some(drm_system.into()),
            ..Event::new(EventKind::LicenseIssued, at_ms)
        }
    }

    /// A playback, key or license request was refused or failed, with its reason code and
    /// status. User, video and session are absent when the request did not get far enough to
    /// know them. `at_ms`: when the request arrived.
    pub fn playback_error(
        at_ms: u64,
        user_id: Option<&str>,
        video_id: Option<&str>,
        session_id: Option<&str>,
        reason: &str,
        status: u16,
    ) -> Event {
        Event {
            user_id: user_id.map(Into::into),
            video_id: video_id.map(Into::into),
            session_id: session_id.map(Into::into),
            reason: Some(reason.into()),
            status: Some(status),
            ..Event::new(EventKind::PlaybackError, at_ms)
        }
    }

    /// Adds the playback session.
    pub fn with_session(mut self, session_id: &str) -> Event {
        self.session_id = Some(session_id.into());
        self
    }

    /// Adds the DRM system.
    pub fn with_drm_system(mut self, drm_system: &str) -> Event {
        self.drm_system = Some(drm_system.into());
        self
    }

    /// The event as the bus carries it.
    pub fn to_json(&self, edge_id: &str) -> String {
        let wire = Wire {
            kind: self.kind,
            event_id: self.event_id,
            at: self.at,
            edge_id,
            user_id: self.user_id.as_deref(),
            video_id: self.video_id.as_deref(),
            session_id: self.session_id.as_deref(),
            license_id: self.license_id.as_deref(),
            drm_system: self.drm_system.as_deref(),
            reason: self.reason.as_deref(),
            status: self.status,
        };
        // Only strings and numbers: serialization cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

/// The JSON shape of an event (contract: every field present, camelCase).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: EventKind,
    event_id: Uuid,
    at: u64,
    edge_id: &'a str,
    user_id: Option<&'a str>,
    video_id: Option<&'a str>,
    session_id: Option<&'a str>,
    license_id: Option<&'a str>,
    drm_system: Option<&'a str>,
    reason: Option<&'a str>,
    status: Option<u16>,
}

enum Command {
    Event(Event),
    /// Answered once every event queued before it has been written or dropped.
    Flush(oneshot::Sender<()>),
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
}

/// The event emitter; cheap to call from any request. Clones share the queue and the writer.
#[derive(Clone)]
pub struct Analytics {
    sender: Option<mpsc::Sender<Command>>,
    writer: Arc<Mutex<Option<Writer>>>,
    started: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

/// The writer task's state, moved into it by [`Analytics::spawn`].
struct Writer {
    receiver: mpsc::Receiver<Command>,
    target: Target,
    edge_id: String,
    counters: Arc<Counters>,
}

enum Target {
    Redis {
        link: Arc<RedisLink>,
        key: String,
        max_len: u64,
    },
    File {
        path: PathBuf,
        file: Option<tokio::fs::File>,
    },
}

impl Analytics {
    /// An emitter for `sink`, stamping events with `edge_id`. Events queue until
    /// [`Analytics::spawn`] starts the writer.
    pub fn new(sink: AnalyticsSink, edge_id: String) -> Analytics {
        let counters = Arc::new(Counters::default());
        let target = match sink {
            AnalyticsSink::Off => None,
            AnalyticsSink::Redis {
                link,
                stream_key,
                max_len,
            } => Some(Target::Redis {
                key: stream_key,
                link,
                max_len,
            }),
            AnalyticsSink::File(path) => Some(Target::File { path, file: None }),
        };
        let (sender, writer) = match target {
            None => (None, None),
            Some(target) => {
                let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
                let writer = Writer {
                    receiver,
                    target,
                    edge_id,
                    counters: counters.clone(),
                };
                (Some(sender), Some(writer))
            }
        };
        Analytics {
            sender,
            writer: Arc::new(Mutex::new(writer)),
            started: Arc::new(AtomicBool::new(false)),
            counters,
        }
    }

    /// Starts the writer task on the current tokio runtime; `None` when events are off or it
    /// already runs (from any clone). It ends when every clone is dropped, after writing what
    /// was queued.
    pub fn spawn(&self) -> Option<tokio::task::JoinHandle<()>> {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()?;
        self.started.store(true, Ordering::Release);
        Some(tokio::spawn(writer.run()))
    }

    /// Queues `event` without waiting; drops (and counts) it when the queue is full.
    pub fn emit(&self, event: Event) {
        let Some(sender) = &self.sender else {
            return;
        };
        if sender.try_send(Command::Event(event)).is_err() {
            let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "analytics queue full; events dropped");
            }
        }
    }

    /// Waits until every event emitted before this call is written or dropped (for shutdown
    /// and tests). Returns at once when the writer is not running.
    pub async fn flush(&self) {
        let Some(sender) = &self.sender else {
            return;
        };
        if !self.started.load(Ordering::Acquire) {
            return;
        }
        let (done, written) = oneshot::channel();
        if sender.send(Command::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Events written to the bus so far.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Events lost so far (queue full, or the bus failing past the retries).
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// True when events go somewhere.
    pub fn is_on(&self) -> bool {
        self.sender.is_some()
    }
}

impl Writer {
    async fn run(mut self) {
        let mut commands = Vec::with_capacity(BATCH);
        loop {
            if self.receiver.recv_many(&mut commands, BATCH).await == 0 {
                return; // every sender dropped and the queue is empty
            }
            let mut lines = Vec::with_capacity(commands.len());
            let mut flushes = Vec::new();
            for command in commands.drain(..) {
                match command {
                    Command::Event(event) => lines.push(event.to_json(&self.edge_id)),
                    Command::Flush(done) => flushes.push(done),
                }
            }
            if !lines.is_empty() {
                self.write(&lines).await;
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    async fn write(&mut self, lines: &[String]) {
        let mut delay = RETRY_DELAY;
        for attempt in 1..=WRITE_ATTEMPTS {
            match self.target.write(lines).await {
                Ok(()) => {
                    self.counters
                        .written
                        .fetch_add(lines.len() as u64, Ordering::Relaxed);
                    return;
                }
                Err(cause) if attempt == WRITE_ATTEMPTS => {
                    let dropped = self
                        .counters
                        .dropped
                        .fetch_add(lines.len() as u64, Ordering::Relaxed)
                        + lines.len() as u64;
                    tracing::warn!(
                        cause,
                        events = lines.len(),
                        dropped,
                        "analytics bus unavailable; events dropped"
                    );
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
}

impl Target {
    async fn write(&mut self, lines: &[String]) -> Result<(), String> {
        match self {
            Target::Redis { link, key, max_len } => {
                let mut pipe = redis::pipe();
                for line in lines {
                    pipe.cmd("XADD")
                        .arg(&*key)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(*max_len)
                        .arg("*")
                        .arg("event")
                        .arg(line)
                        .ignore();
                }
                link.run("events", |mut conn| async move {
                    pipe.query_async::<()>(&mut conn).await
                })
                .await
                .map_err(|e| e.to_string())
            }
            Target::File { path, file } => {
                let mut buffer = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
                for line in lines {
                    buffer.push_str(line);
                    buffer.push('\n');
                }
                let result = async {
                    if file.is_none() {
                        *file = Some(open_append(path).await?);
                    }
                    match file.as_mut() {
                        Some(open) => {
                            open.write_all(buffer.as_bytes()).await?;
                            open.flush().await
                        }
                        None => Ok(()),
                    }
                }
                .await;
                result.map_err(|e| {
                    // Reopen next time (the file may have been rotated or its disk replaced).
                    *file = None;
                    format!("{}: {e}", path.display())
                })
            }
        }
    }
}

async fn open_append(path: &Path) -> std::io::Result<tokio::fs::File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent).await?;
    }
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::limits::test_support::{dead_link, live_link};
    use crate::core::clock::unix_ms;
    use redis::streams::{StreamReadOptions, StreamReadReply};
    use serde_json::Value;

    const FIELDS: [&str; 11] = [
        "type",
        "eventId",
        "at",
        "edgeId",
        "userId",
        "videoId",
        "sessionId",
        "licenseId",
        "drmSystem",
        "reason",
        "status",
    ];

    fn sample_events() -> Vec<Event> {
        vec![
            Event::playback_started(unix_ms(), Some("u1"), "v1", Some("sess1")),
            Event::license_issued(unix_ms(), "u1", "v1", "sess1", "lic1", "clearkey"),
            Event::playback_error(unix_ms(), None, Some("v1"), None, "rate_limited", 429)
                .with_drm_system("aes128"),
        ]
    }

    fn check_event(json: &str, expected: &Event) {
        let value: Value = serde_json::from_str(json).expect("valid JSON");
        let object = value.as_object().expect("an object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut fields = FIELDS.to_vec();
        fields.sort_unstable();
        assert_eq!(keys, fields, "exactly the contract's fields");
        assert_eq!(value["edgeId"], "edge-7");
        assert_eq!(value["eventId"], expected.event_id.to_string());
        assert_eq!(value["at"], expected.at);
        let kind = serde_json::to_value(expected.kind).unwrap();
        assert_eq!(value["type"], kind);
        assert_eq!(value["userId"].as_str(), expected.user_id.as_deref());
        assert_eq!(value["reason"].as_str(), expected.reason.as_deref());
        assert_eq!(
            value["status"].as_u64(),
            expected.status.map(u64::from),
            "status"
        );
    }

    #[test]
    fn events_serialize_to_the_contract_shape() {
        let events = sample_events();
        let started: Value = serde_json::from_str(&events[0].to_json("edge-7")).unwrap();
        assert_eq!(started["type"], "PlaybackStarted");
        assert_eq!(started["sessionId"], "sess1");
        assert_eq!(started["licenseId"], Value::Null);
        assert_eq!(started["status"], Value::Null);
        let issued: Value = serde_json::from_str(&events[1].to_json("edge-7")).unwrap();
        assert_eq!(issued["type"], "LicenseIssued");
        assert_eq!(issued["drmSystem"], "clearkey");
        assert_eq!(issued["licenseId"], "lic1");
        let error: Value = serde_json::from_str(&events[2].to_json("edge-7")).unwrap();
        assert_eq!(error["type"], "PlaybackError");
        assert_eq!(error["userId"], Value::Null);
        assert_eq!(error["status"], 429);
        assert_eq!(
            Uuid::parse_str(error["eventId"].as_str().unwrap())
                .unwrap()
                .get_version_num(),
            4
        );
        for (event, json) in events
            .iter()
            .zip(events.iter().map(|e| e.to_json("edge-7")))
        {
            check_event(&json, event);
        }
    }

    #[tokio::test]
    async fn redis_stream_events_are_readable_by_a_consumer_group() {
        let link = live_link();
        let key = link.key("events");
        let group_key = key.clone();
        let () = link
            .run("xgroup", |mut c| async move {
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(group_key)
                    .arg("billing")
                    .arg("$")
                    .arg("MKSTREAM")
                    .query_async(&mut c)
                    .await
            })
            .await
            .unwrap();
        let analytics = Analytics::new(
            AnalyticsSink::Redis {
                link: link.clone(),
                stream_key: link.key("events"),
                max_len: 1_000,
            },
            "edge-7".into(),
        );
        analytics.spawn().expect("writer starts");
        let events = sample_events();
        for event in &events {
            analytics.emit(event.clone());
        }
        analytics.flush().await;
        assert_eq!(analytics.written(), 3);
        let read_key = key.clone();
        let reply: StreamReadReply = link
            .run("xreadgroup", |mut c| async move {
                let options = StreamReadOptions::default()
                    .group("billing", "worker-1")
                    .count(10);
                redis::AsyncCommands::xread_options(&mut c, &[read_key], &[">"], &options).await
            })
            .await
            .unwrap();
        let entries = &reply.keys[0].ids;
        assert_eq!(entries.len(), 3);
        for (entry, expected) in entries.iter().zip(&events) {
            let json: String = entry.get("event").expect("field `event`");
            check_event(&json, expected);
        }
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        let acked: u64 = link
            .run("xack", |mut c| async move {
                redis::AsyncCommands::xack(&mut c, &key, "billing", &ids).await
            })
            .await
            .unwrap();
        assert_eq!(acked, 3, "the consumer group acknowledges them");
    }

    #[tokio::test]
    async fn the_stream_is_trimmed_near_max_len() {
        let link = live_link();
        let analytics = Analytics::new(
            AnalyticsSink::Redis {
                link: link.clone(),
                stream_key: link.key("events"),
                max_len: 10,
            },
            "edge-7".into(),
        );
        analytics.spawn();
        for _ in 0..2_000 {
            analytics.emit(Event::playback_started(unix_ms(), Some("u"), "v", None));
        }
        analytics.flush().await;
        assert_eq!(analytics.written(), 2_000);
        let key = link.key("events");
        let length: u64 = link
            .run("xlen", |mut c| async move {
                redis::cmd("XLEN").arg(key).query_async(&mut c).await
            })
            .await
            .unwrap();
        assert!(
            (10..1_000).contains(&length),
            "trimmed to about 10: {length}"
        );
    }

    #[tokio::test]
    async fn file_sink_writes_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/events.jsonl");
        let analytics = Analytics::new(AnalyticsSink::File(path.clone()), "edge-7".into());
        analytics.spawn();
        let events = sample_events();
        for event in &events {
            analytics.emit(event.clone());
        }
        analytics.flush().await;
        analytics.emit(events[0].clone());
        analytics.flush().await;
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(text.ends_with('\n'));
        for (line, expected) in lines.iter().zip(events.iter().chain([&events[0]])) {
            check_event(line, expected);
        }
        assert_eq!((analytics.written(), analytics.dropped()), (4, 0));
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let analytics = Analytics::new(
            AnalyticsSink::File(dir.path().join("events.jsonl")),
            "edge-7".into(),
        );
        // The writer is not started yet: the queue fills up.
        for _ in 0..CHANNEL_CAPACITY + 5 {
            analytics.emit(Event::playback_started(unix_ms(), Some("u"), "v", None));
        }
        assert_eq!(analytics.dropped(), 5);
        analytics.spawn();
        analytics.flush().await;
        assert_eq!(analytics.written(), CHANNEL_CAPACITY as u64);
    }

    #[tokio::test]
    async fn an_unreachable_bus_drops_after_bounded_retries() {
        let analytics = Analytics::new(
            AnalyticsSink::Redis {
                link: dead_link(),
                stream_key: "events".into(),
                max_len: 10,
            },
            "edge-7".into(),
        );
        analytics.spawn();
        for event in sample_events() {
            analytics.emit(event);
        }
        tokio::time::timeout(Duration::from_secs(5), analytics.flush())
            .await
            .expect("gives up within the retry budget");
        assert_eq!((analytics.written(), analytics.dropped()), (0, 3));
    }

    #[tokio::test]
    async fn off_discards_quietly() {
        let analytics = Analytics::new(AnalyticsSink::Off, "edge-7".into());
        assert!(!analytics.is_on());
        assert!(analytics.spawn().is_none());
        analytics.emit(Event::playback_started(unix_ms(), Some("u"), "v", None));
        analytics.flush().await;
        assert_eq!((analytics.written(), analytics.dropped()), (0, 0));
    }
}
