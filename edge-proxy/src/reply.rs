//! Responses the edge writes itself (everything except segments proxied from an HTTP origin):
//! a status, headers, and a body that is either bytes in memory or an origin file streamed in
//! fixed-size chunks so a multi-gigabyte file never sits in memory.

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use tokio::io::AsyncReadExt;

use crate::errors::EdgeError;
use crate::origin::OriginFile;

/// Size of each chunk read from a directory-origin file and written downstream.
pub const FILE_CHUNK: usize = 64 * 1024;

/// A complete response, ready to send.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: ReplyBody,
}

/// What follows the header.
pub enum ReplyBody {
    Bytes(Bytes),
    File(OriginFile),
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

    /// An origin file streamed with its `Content-Type`.
    pub fn file(file: OriginFile, content_type: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type", content_type.to_string())],
            body: ReplyBody::File(file),
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
            ReplyBody::File(file) => file.len,
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
        header.insert_header("content-length", length.to_string())?;
        let no_body = head_only || length == 0;
        session
            .write_response_header(Box::new(header), no_body)
            .await?;
        if no_body {
            return Ok(());
        }
        match self.body {
            ReplyBody::Bytes(bytes) => session.write_response_body(Some(bytes), true).await,
            ReplyBody::File(file) => stream_file(session, file).await,
        }
    }
}

/// Streams `file` downstream in [`FILE_CHUNK`] pieces; fails if the file shrinks mid-way.
async fn stream_file(session: &mut Session, origin: OriginFile) -> pingora::Result<()> {
    let OriginFile { file, len } = origin;
    // Never send more than the Content-Length already promised, even if the file grows.
    let mut file = file.take(len);
    let mut sent = 0u64;
    let mut buffer = BytesMut::with_capacity(FILE_CHUNK);
    while sent < len {
        buffer.reserve(FILE_CHUNK);
        let read = file.read_buf(&mut buffer).await.map_err(|e| {
            pingora::Error::because(pingora::ErrorType::ReadError, "reading origin file", e)
        })?;
        if read == 0 {
            return pingora::Error::e_explain(
                pingora::ErrorType::ReadError,
                "origin file shrank while being served",
            );
        }
        let chunk = buffer.split().freeze();
        sent += chunk.len() as u64;
        session
            .write_response_body(Some(chunk), sent >= len)
            .await?;
    }
    Ok(())
}
