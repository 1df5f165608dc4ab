//! The seam for local transcoding pipelines ([`Transcoder`], implemented by
//! [`super::ffmpeg::FfmpegTranscoder`]): one request, its optional AES-128 encryption, the files
//! it writes and what can go wrong.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::sync::watch;

use super::ladder::Rendition;
use super::probe::SourceInfo;
use crate::keys::ContentKey;

/// Name of the master playlist in a title's directory.
pub const MASTER_PLAYLIST: &str = "master.m3u8";
/// Name of each rendition's media playlist inside its directory.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";

/// AES-128 encryption of a title's segments.
pub struct HlsEncryption {
    /// The key id; the playlists carry `key/{key_id}` as the key URI.
    pub key_id: String,
    pub key: ContentKey,
}

impl HlsEncryption {
    /// The key URI written into media playlists (relative to the playlist).
    pub fn key_uri(&self) -> String {
        format!("key/{}", self.key_id)
    }
}

/// One transcode: a probed source into an output directory.
pub struct TranscodeRequest<'a> {
    pub source: &'a Path,
    pub source_info: &'a SourceInfo,
    pub renditions: &'a [Rendition],
    /// An empty directory the title is written into (`master.m3u8`, `{rendition}/index.m3u8`).
    pub output_dir: &'a Path,
    pub encryption: Option<&'a HlsEncryption>,
    /// Receives progress 0–99 while running; the caller sets 100 on success.
    pub progress: watch::Sender<u8>,
}

/// What went wrong in a transcode. Messages are safe to store as a job's `error_message`.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("ffprobe could not read the source: {0}")]
    Probe(String),
    #[error("ffmpeg exited with {status}: {stderr_tail}")]
    Ffmpeg { status: String, stderr_tail: String },
    #[error("ffmpeg finished but wrote no {MASTER_PLAYLIST}")]
    MissingOutput,
    #[error("i/o error while transcoding: {0}")]
    Io(#[from] std::io::Error),
}

/// A local transcoding backend.
#[async_trait]
pub trait Transcoder: Send + Sync {
    /// Reads the source's height, duration and whether it has audio.
    async fn probe(&self, source: &Path) -> Result<SourceInfo, TranscodeError>;

    /// Writes the HLS title for `request` into `request.output_dir`.
    async fn transcode(&self, request: TranscodeRequest<'_>) -> Result<(), TranscodeError>;
}
