//! The seam for local transcoding pipelines ([`Transcoder`], implemented by
//! [`super::ffmpeg::FfmpegTranscoder`]): one request, its protection and title key, the files
//! it writes and what can go wrong.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::sync::watch;
use uuid::Uuid;

use super::ladder::Rendition;
use super::probe::SourceInfo;
use super::protection::Protection;
use crate::keys::ContentKey;

/// Names of the HLS master playlist (`master.m3u8`) and the DASH manifest (`manifest.mpd`,
/// CMAF titles) in a title's directory; defined with the origin tree's layout, which
/// `control-plane import` shares.
pub use crate::origin::{DASH_MANIFEST, MASTER_PLAYLIST};
/// Name of each rendition's media playlist inside its directory.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";

/// A title's content key, drawn from key custody.
pub struct TitleKey {
    /// The `content_keys` row's id: the CENC key id (default_KID) and the FairPlay asset id.
    pub key_id: Uuid,
    pub key: ContentKey,
}

impl TitleKey {
    /// The AES-128 key URI written into MPEG-TS media playlists (relative to the playlist).
    pub fn key_uri(&self) -> String {
        format!("key/{}", self.key_id)
    }
}

/// One transcode: a probed source into an output directory.
pub struct TranscodeRequest<'a> {
    pub source: &'a Path,
    pub source_info: &'a SourceInfo,
    pub renditions: &'a [Rendition],
    /// An empty directory the title is written into (`master.m3u8`, `{rendition}/index.m3u8`,
    /// and for CMAF `manifest.mpd` and `audio/`).
    pub output_dir: &'a Path,
    pub protection: Protection,
    /// The title's key; present exactly when `protection` encrypts.
    pub encryption: Option<&'a TitleKey>,
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
    #[error("packager exited with {status}: {stderr_tail}")]
    Packager { status: String, stderr_tail: String },
    #[error("the pipeline finished but wrote no {0}")]
    MissingOutput(&'static str),
    #[error("protection {0} needs the title's content key")]
    MissingKey(Protection),
    #[error("i/o error while transcoding: {0}")]
    Io(#[from] std::io::Error),
}

/// A local transcoding backend.
#[async_trait]
pub trait Transcoder: Send + Sync {
    /// Reads the source's height, duration and whether it has audio.
    async fn probe(&self, source: &Path) -> Result<SourceInfo, TranscodeError>;

    /// Writes the title for `request` into `request.output_dir`.
    async fn transcode(&self, request: TranscodeRequest<'_>) -> Result<(), TranscodeError>;
}
