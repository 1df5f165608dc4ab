//! Transcoding an uploaded source into an HLS title (optionally AES-128 encrypted).
//!
//! `[transcode] backend` picks where jobs run ([`backend_from_config`] → [`runner::Backend`]):
//! [`Transcoder`] is the seam for local pipelines ([`ffmpeg::FfmpegTranscoder`], the default);
//! [`mediaconvert::MediaConvert`] submits AWS MediaConvert jobs on S3, watched by [`monitor`].
//! The pure parts live beside them:
//! [`probe`] parses ffprobe output, [`progress`] parses `-progress` output, [`plan_renditions`]
//! picks the ladder. [`runner::JobRunner`] drives jobs through a backend and the database, and
//! [`key_fifo`] feeds the content key to ffmpeg without it touching disk.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::keys::ContentKey;

pub mod ffmpeg;
pub mod key_fifo;
pub mod mediaconvert;
pub mod monitor;
pub mod probe;
pub mod progress;
pub mod runner;

pub use probe::SourceInfo;

/// Name of the master playlist in a title's directory.
pub const MASTER_PLAYLIST: &str = "master.m3u8";
/// Name of each rendition's media playlist inside its directory.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";

/// One rung of the ladder, e.g. 720p.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// Directory and variant name, e.g. `"720p"`.
    pub name: String,
    pub height: u32,
    pub video_kbps: u32,
}

impl Rendition {
    /// The rung for `height` (name `{height}p`, bitrate from [`video_kbps`]).
    pub fn for_height(height: u32) -> Self {
        Rendition {
            name: format!("{height}p"),
            height,
            video_kbps: video_kbps(height),
        }
    }
}

/// Target video bitrate for a rendition height.
pub fn video_kbps(height: u32) -> u32 {
    match height {
        h if h >= 2160 => 16_000,
        h if h >= 1440 => 9_000,
        h if h >= 1080 => 5_000,
        h if h >= 720 => 2_800,
        h if h >= 480 => 1_400,
        h if h >= 360 => 800,
        _ => 400,
    }
}

/// The ladder for a source: the configured heights not above the source's, highest first;
/// a source below every configured height gets one rendition at its own (even) height.
pub fn plan_renditions(configured: &[u32], source_height: u32) -> Vec<Rendition> {
    let mut heights: Vec<u32> = configured
        .iter()
        .copied()
        .filter(|h| *h <= source_height)
        .collect();
    heights.sort_unstable_by(|a, b| b.cmp(a));
    heights.dedup();
    if heights.is_empty() {
        heights.push((source_height.max(2)) & !1);
    }
    heights.into_iter().map(Rendition::for_height).collect()
}

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

/// The backend `[transcode] backend` names. MediaConvert's clients are built here (region and
/// credentials resolved, no call made).
pub async fn backend_from_config(
    config: &crate::config::Config,
) -> anyhow::Result<runner::Backend> {
    let t = &config.transcode;
    Ok(match t.backend.as_str() {
        "mediaconvert" => {
            let mc = mediaconvert::MediaConvert::new(mediaconvert::MediaConvertSettings {
                config: t.mediaconvert.clone(),
                edge_base: config.edge_base().to_string(),
                renditions: t.renditions.clone(),
                segment_seconds: t.segment_seconds,
            })
            .await?;
            runner::Backend::MediaConvert(std::sync::Arc::new(mc))
        }
        _ => runner::Backend::Local(std::sync::Arc::new(ffmpeg::FfmpegTranscoder::new(t))),
    })
}

/// A local transcoding backend.
#[async_trait]
pub trait Transcoder: Send + Sync {
    /// Reads the source's height, duration and whether it has audio.
    async fn probe(&self, source: &Path) -> Result<SourceInfo, TranscodeError>;

    /// Writes the HLS title for `request` into `request.output_dir`.
    async fn transcode(&self, request: TranscodeRequest<'_>) -> Result<(), TranscodeError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heights(r: &[Rendition]) -> Vec<u32> {
        r.iter().map(|r| r.height).collect()
    }

    #[test]
    fn ladder_never_exceeds_the_source() {
        assert_eq!(
            heights(&plan_renditions(&[1080, 720, 480], 720)),
            vec![720, 480]
        );
        assert_eq!(
            heights(&plan_renditions(&[480, 1080, 720], 1080)),
            vec![1080, 720, 480]
        );
        assert_eq!(
            heights(&plan_renditions(&[1080, 720, 480], 2160)),
            vec![1080, 720, 480]
        );
        assert_eq!(heights(&plan_renditions(&[1080, 720, 480], 600)), vec![480]);
    }

    #[test]
    fn small_sources_get_one_rendition_at_their_height() {
        assert_eq!(heights(&plan_renditions(&[1080, 720, 480], 360)), vec![360]);
        assert_eq!(heights(&plan_renditions(&[1080, 720, 480], 241)), vec![240]);
        assert_eq!(plan_renditions(&[720], 360)[0].name, "360p");
    }
}
