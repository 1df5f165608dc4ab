//! Where jobs run, as `[transcode] backend` names it: a local [`Transcoder`] (ffmpeg, the
//! default) writing into the origin tree, or AWS MediaConvert with input and output on S3.

use std::sync::Arc;

use super::ffmpeg::FfmpegTranscoder;
use super::mediaconvert::{MediaConvert, MediaConvertSettings};
use super::transcoder::Transcoder;
use crate::config::TranscodeConfig;

/// Where jobs run.
#[derive(Clone)]
pub enum Backend {
    /// A local transcoder (ffmpeg) writing into `storage.origin_dir`.
    Local(Arc<dyn Transcoder>),
    /// AWS MediaConvert, input and output on S3.
    MediaConvert(Arc<MediaConvert>),
}

impl Backend {
    /// The backend `config.backend` names. MediaConvert's clients are built here (region and
    /// credentials resolved, no call made); its static-key URLs point at `edge_base`.
    pub async fn from_config(config: &TranscodeConfig, edge_base: &str) -> anyhow::Result<Self> {
        Ok(match config.backend.as_str() {
            "mediaconvert" => {
                let mc = MediaConvert::new(MediaConvertSettings {
                    config: config.mediaconvert.clone(),
                    edge_base: edge_base.to_string(),
                    renditions: config.renditions.clone(),
                    segment_seconds: config.segment_seconds,
                })
                .await?;
                Backend::MediaConvert(Arc::new(mc))
            }
            _ => Backend::Local(Arc::new(FfmpegTranscoder::new(config))),
        })
    }

    /// `"ffmpeg"` or `"mediaconvert"`, as in `[transcode] backend`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Local(_) => "ffmpeg",
            Backend::MediaConvert(_) => "mediaconvert",
        }
    }
}
