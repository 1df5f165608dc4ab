//! Responses the edge writes itself (everything except segments proxied from an HTTP origin):
//! a status, headers, and a body that is either bytes in memory or part of an origin file
//! streamed in fixed-size chunks so a multi-gigabyte file never sits in memory.
//!
//! Directory-origin files are answered as a file server would ([`Reply::origin_file`]):
//! validators, conditional requests (304/412) and single byte ranges (206/416), decided by
//! `playback::conditional`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;

use crate::core::errors::EdgeError;
use crate::delivery::origin::{OriginBody, OriginFile};
use playback::conditional::{self, Decision, Validators};

/// Size of each chunk read from a directory-origin file and written downstream: big enough
/// that the blocking-pool hand-off per read is small next to the copy.
pub const FILE_CHUNK: usize = 256 * 1024;

/// A complete response, ready to send.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: ReplyBody,
}

/// What follows the header.
pub enum ReplyBody {
    Bytes(Bytes),
    /// `len` bytes of an open origin file from `offset`, read as they are sent.
    File {
        file: File,
        offset: u64,
        len: u64,
    },
}

impl Reply {
    /// A body held in memory, with its `Content-Type`.
    pub fn bytes(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", content_type.to_string())],
            body: ReplyBody::Bytes(body.into()),
        }
    }

    /// A JSON body; never cached.
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply::bytes(status, "application/json", value.to_string())
            .header("cache-control", "no-store")
    }

    /// The JSON error body for `error`, with its status.
    pub fn error(error: &EdgeError) -> Reply {
        let reply = Reply::bytes(error.status(), "application/json", error.body())
            .header("cache-control", "no-store");
        match error {
            EdgeError::MethodNotAllowed => reply.header("allow", "GET, HEAD, POST, DELETE"),
            EdgeError::Limited {
                retry_after_secs, ..
            } => reply.header("retry-after", retry_after_secs.max(&1).to_string()),
            _ => reply,
        }
    }

    /// The answer to `req` for a directory-origin file: 200, 206 (one byte range), 304
    /// (`If-None-Match`, else `If-Modified-Since`), 412 (`If-Match`, `If-Unmodified-Since`) or
    /// 416, honouring `If-Range`. `Accept-Ranges`, `ETag` and `Last-Modified` are always set;
    /// the caller adds `Cache-Control`. HEAD gets the headers the GET would. `now` is the
    /// request's clock.
    pub fn origin_file(
        req: &RequestHeader,
        file: OriginFile,
        content_type: &str,
        now: SystemTime,
    ) -> Reply {
        // RFC 9110 §8.8.2.1: never a Last-Modified after the clock (a file stamped in the
        // future gets now); whole seconds, as HTTP-dates carry.
        let last_modified = file.last_modified.map(|t| whole_seconds(t.min(now)));
        let validators = Validators {
            etag: &file.etag,
            last_modified,
        };
        let decision = conditional::evaluate(&req.method, &req.headers, file.len, &validators, now);
        let mut headers = vec![
            ("accept-ranges", "bytes".to_string()),
            ("etag", file.etag.clone()),
        ];
        if let Some(time) = last_modified {
            headers.push(("last-modified", httpdate::fmt_http_date(time)));
        }
        let (status, body) = match decision {
            Decision::Full => {
                headers.push(("content-type", content_type.to_string()));
                (200, file_part(file.body, 0, file.len))
            }
            Decision::Partial { start, end } => {
                headers.push(("content-type", content_type.to_string()));
                headers.push(("content-range", format!("bytes {start}-{end}/{}", file.len)));
                (206, file_part(file.body, start, end - start + 1))
            }
            // A 304 carries the validators only: no body, no representation headers.
            Decision::NotModified => (304, ReplyBody::Bytes(Bytes::new())),
            Decision::Unsatisfiable => {
                headers.push(("content-range", format!("bytes */{}", file.len)));
                headers.push(("content-type", "application/json".to_string()));
                headers.push(("cache-control", "no-store".to_string()));
                let body = problem(
                    "range_not_satisfiable",
                    "the range starts past the end of the file",
                );
                (416, body)
            }
            Decision::PreconditionFailed => {
                headers.push(("content-type", "application/json".to_string()));
                headers.push(("cache-control", "no-store".to_string()));
                let body = problem(
                    "precondition_failed",
                    "the file does not match the request's precondition",
                );
                (412, body)
            }
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    fn content_length(&self) -> u64 {
        match &self.body {
            ReplyBody::Bytes(bytes) => bytes.len() as u64,
            ReplyBody::File { len, .. } => *len,
        }
    }

    /// Writes the response; for `HEAD` only the header (with the `Content-Length` a `GET` would get).
    pub async fn send(self, session: &mut Session, head_only: bool) -> pingora::Result<()> {
        let length = self.content_length();
        let mut header = ResponseHeader::build(self.status, Some(self.headers.len() + 1))?;
        for (name, value) in &self.headers {
            // Appended, so several `Set-Cookie` headers survive.
            header.append_header(*name, value.as_str())?;
        }
        // A 304 may only repeat the 200's Content-Length, so it gets none.
        if self.status != 304 {
            header.insert_header("content-length", length.to_string())?;
        }
        let no_body = head_only || length == 0;
        session
            .write_response_header(Box::new(header), no_body)
            .await?;
        if no_body {
            return Ok(());
        }
        match self.body {
            ReplyBody::Bytes(bytes) => session.write_response_body(Some(bytes), true).await,
            ReplyBody::File { file, offset, len } => stream_file(session, file, offset, len).await,
        }
    }
}

/// `len` bytes of `body` from `offset` (a zero-copy slice when it is in memory).
fn file_part(body: OriginBody, offset: u64, len: u64) -> ReplyBody {
    match body {
        // The origin read exactly the file's length, so the range lies within it.
        OriginBody::Memory(bytes) => {
            ReplyBody::Bytes(bytes.slice(offset as usize..(offset + len) as usize))
        }
        OriginBody::File(file) => ReplyBody::File { file, offset, len },
    }
}

/// A JSON error body in the edge's `{"error", "message"}` shape.
fn problem(code: &str, message: &str) -> ReplyBody {
    ReplyBody::Bytes(
        serde_json::json!({ "error": code, "message": message })
            .to_string()
            .into(),
    )
}

fn whole_seconds(time: SystemTime) -> SystemTime {
    time.duration_since(UNIX_EPOCH).map_or(UNIX_EPOCH, |d| {
        UNIX_EPOCH + Duration::from_secs(d.as_secs())
    })
}

/// Streams `len` bytes of `file` from `offset` downstream in [`FILE_CHUNK`] pieces; fails if
/// the file shrinks mid-way. The next chunk is read (on the blocking pool) while the current
/// one is being written, so disk and socket overlap.
async fn stream_file(
    session: &mut Session,
    file: File,
    offset: u64,
    len: u64,
) -> pingora::Result<()> {
    let file = Arc::new(file);
    let end = offset + len;
    let mut position = offset;
    let mut pending = Some(read_ahead(&file, position, end));
    while let Some(read) = pending.take() {
        let wanted = chunk_len(position, end);
        let chunk = read
            .await
            .map_err(|e| {
                pingora::Error::because(pingora::ErrorType::ReadError, "reading origin file", e)
            })?
            .map_err(|e| {
                pingora::Error::because(pingora::ErrorType::ReadError, "reading origin file", e)
            })?;
        if (chunk.len() as u64) < wanted {
            return pingora::Error::e_explain(
                pingora::ErrorType::ReadError,
                "origin file shrank while being served",
            );
        }
        position += wanted;
        let last = position >= end;
        if !last {
            pending = Some(read_ahead(&file, position, end));
        }
        session.write_response_body(Some(chunk), last).await?;
    }
    Ok(())
}

fn chunk_len(position: u64, end: u64) -> u64 {
    (end - position).min(FILE_CHUNK as u64)
}

/// Starts reading the chunk at `position` on the blocking pool.
fn read_ahead(
    file: &Arc<File>,
    position: u64,
    end: u64,
) -> tokio::task::JoinHandle<std::io::Result<Bytes>> {
    let file = Arc::clone(file);
    let wanted = chunk_len(position, end);
    tokio::task::spawn_blocking(move || read_chunk(&file, position, wanted))
}

/// Up to `wanted` bytes at `position` (fewer only at the end of the file); blocking. Only one
/// read of a file runs at a time, so seeking the shared handle is safe.
fn read_chunk(file: &File, position: u64, wanted: u64) -> std::io::Result<Bytes> {
    let mut reader = file;
    reader.seek(SeekFrom::Start(position))?;
    let mut bytes = Vec::with_capacity(wanted as usize);
    reader.take(wanted).read_to_end(&mut bytes)?;
    Ok(Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETAG: &str = "\"5f5e1000-a\"";

    fn origin_file(body: OriginBody, len: u64, last_modified: Option<SystemTime>) -> OriginFile {
        OriginFile {
            body,
            len,
            etag: ETAG.to_string(),
            last_modified,
        }
    }

    fn memory(last_modified: Option<SystemTime>) -> OriginFile {
        origin_file(
            OriginBody::Memory(Bytes::from_static(b"0123456789")),
            10,
            last_modified,
        )
    }

    fn request(method: &str, lines: &[(&'static str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build(method, b"/hls/v/seg.ts", None).unwrap();
        for (name, value) in lines {
            req.append_header(*name, *value).unwrap();
        }
        req
    }

    fn header<'r>(reply: &'r Reply, name: &str) -> Option<&'r str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn body(reply: &Reply) -> &[u8] {
        match &reply.body {
            ReplyBody::Bytes(bytes) => bytes,
            ReplyBody::File { .. } => panic!("expected an in-memory body"),
        }
    }

    fn modified() -> SystemTime {
        // With a sub-second part, which Last-Modified drops.
        UNIX_EPOCH + Duration::new(784_111_777, 500_000_000)
    }

    #[test]
    fn full_reply_carries_the_validators() {
        let reply = Reply::origin_file(
            &request("GET", &[]),
            memory(Some(modified())),
            "video/mp2t",
            SystemTime::now(),
        );
        assert_eq!(reply.status, 200);
        assert_eq!(body(&reply), b"0123456789");
        assert_eq!(reply.content_length(), 10);
        assert_eq!(header(&reply, "accept-ranges"), Some("bytes"));
        assert_eq!(header(&reply, "etag"), Some(ETAG));
        assert_eq!(header(&reply, "content-type"), Some("video/mp2t"));
        assert_eq!(
            header(&reply, "last-modified"),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        assert_eq!(header(&reply, "content-range"), None);
    }

    #[test]
    fn a_range_of_an_in_memory_file() {
        let req = request("GET", &[("range", "bytes=-3")]);
        let reply = Reply::origin_file(
            &req,
            memory(Some(modified())),
            "video/mp2t",
            SystemTime::now(),
        );
        assert_eq!(reply.status, 206);
        assert_eq!(body(&reply), b"789");
        assert_eq!(header(&reply, "content-range"), Some("bytes 7-9/10"));
        assert_eq!(header(&reply, "etag"), Some(ETAG));
        // HEAD gets the same status and headers (send() then writes no body).
        let head = Reply::origin_file(
            &request("HEAD", &[("range", "bytes=-3")]),
            memory(Some(modified())),
            "video/mp2t",
            SystemTime::now(),
        );
        assert_eq!(head.status, 206);
        assert_eq!(head.headers, reply.headers);
        assert_eq!(head.content_length(), 3);
    }

    #[test]
    fn a_range_of_an_open_file_keeps_offset_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = origin_file(OriginBody::File(File::open(&path).unwrap()), 10, None);
        let req = request("GET", &[("range", "bytes=2-5")]);
        let reply = Reply::origin_file(&req, file, "video/mp2t", SystemTime::now());
        assert_eq!(reply.status, 206);
        assert!(matches!(
            reply.body,
            ReplyBody::File {
                offset: 2,
                len: 4,
                ..
            }
        ));
        assert_eq!(header(&reply, "last-modified"), None);
        assert_eq!(header(&reply, "content-range"), Some("bytes 2-5/10"));
    }

    #[test]
    fn not_modified_has_validators_and_no_body() {
        for condition in [
            ("if-none-match", ETAG),
            ("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ] {
            let req = request("GET", &[condition]);
            let reply = Reply::origin_file(
                &req,
                memory(Some(modified())),
                "video/mp2t",
                SystemTime::now(),
            );
            assert_eq!(reply.status, 304, "{condition:?}");
            assert_eq!(reply.content_length(), 0);
            assert_eq!(header(&reply, "etag"), Some(ETAG));
            assert!(header(&reply, "last-modified").is_some());
            assert_eq!(header(&reply, "content-type"), None);
        }
    }

    #[test]
    fn unsatisfiable_and_failed_preconditions() {
        let req = request("GET", &[("range", "bytes=10-")]);
        let reply = Reply::origin_file(&req, memory(None), "video/mp2t", SystemTime::now());
        assert_eq!(reply.status, 416);
        assert_eq!(header(&reply, "content-range"), Some("bytes */10"));
        assert_eq!(header(&reply, "accept-ranges"), Some("bytes"));
        let json: serde_json::Value = serde_json::from_slice(body(&reply)).unwrap();
        assert_eq!(json["error"], "range_not_satisfiable");

        let req = request("GET", &[("if-match", "\"other\"")]);
        let reply = Reply::origin_file(&req, memory(None), "video/mp2t", SystemTime::now());
        assert_eq!(reply.status, 412);
        let json: serde_json::Value = serde_json::from_slice(body(&reply)).unwrap();
        assert_eq!(json["error"], "precondition_failed");
    }

    #[test]
    fn a_future_mtime_is_sent_as_now() {
        let future = SystemTime::now() + Duration::from_secs(86_400 * 365);
        let before = whole_seconds(SystemTime::now());
        let reply = Reply::origin_file(
            &request("GET", &[]),
            memory(Some(future)),
            "video/mp2t",
            SystemTime::now(),
        );
        let sent = httpdate::parse_http_date(header(&reply, "last-modified").unwrap()).unwrap();
        assert!(sent >= before && sent <= SystemTime::now(), "{sent:?}");
    }

    #[test]
    fn chunks_are_read_at_their_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..FILE_CHUNK * 2 + 10).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let end = data.len() as u64;
        // Out of order on purpose: each read positions itself.
        let second = read_chunk(&file, FILE_CHUNK as u64, chunk_len(FILE_CHUNK as u64, end));
        let first = read_chunk(&file, 0, chunk_len(0, end));
        assert_eq!(&first.unwrap()[..], &data[..FILE_CHUNK]);
        assert_eq!(&second.unwrap()[..], &data[FILE_CHUNK..FILE_CHUNK * 2]);
        assert_eq!(chunk_len(2 * FILE_CHUNK as u64, end), 10);
        // A file that shrank gives a short chunk, which stream_file refuses.
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(FILE_CHUNK as u64 + 1)
            .unwrap();
        let short = read_chunk(&file, FILE_CHUNK as u64, FILE_CHUNK as u64).unwrap();
        assert_eq!(short.len(), 1);
    }
}
