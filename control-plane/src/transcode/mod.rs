//! Transcoding an uploaded source into an HLS title (optionally encrypted), as background jobs.
//!
//! `[transcode] backend` picks where jobs run ([`Backend::from_config`]): [`Transcoder`] is the
//! seam for local pipelines ([`ffmpeg::FfmpegTranscoder`], the default; [`key_fifo`] feeds it
//! the content key without the key touching disk); [`mediaconvert::MediaConvert`] submits AWS
//! MediaConvert jobs on S3, watched by [`monitor`]. [`runner::JobRunner`] drives jobs through a
//! backend and the database; the steps both backends share (drawing the title's key with its
//! audit record, completing a job) are in [`job`]. The pure parts live beside them: [`probe`]
//! parses ffprobe output, [`progress`] parses `-progress` output, [`ladder`] plans the
//! renditions.
//!
//! This file only declares and re-exports; every item is defined in one of the files above.

pub mod backend;
pub mod ffmpeg;
pub mod job;
pub mod key_fifo;
pub mod ladder;
pub mod mediaconvert;
pub mod monitor;
pub mod probe;
pub mod progress;
pub mod runner;
pub mod transcoder;

pub use backend::Backend;
pub use ladder::{plan_renditions, video_kbps, Rendition};
pub use probe::SourceInfo;
pub use transcoder::{
    HlsEncryption, TranscodeError, TranscodeRequest, Transcoder, MASTER_PLAYLIST, MEDIA_PLAYLIST,
};
