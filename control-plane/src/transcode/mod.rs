//! Transcoding an uploaded source into a title (CMAF with HLS and DASH, encrypted with `cbcs`
//! or `cenc`, or clear; or AES-128 MPEG-TS HLS), as background jobs.
//!
//! `[transcode] backend` picks where jobs run ([`Backend::from_config`]): [`Transcoder`] is the
//! seam for local pipelines ([`ffmpeg::FfmpegTranscoder`], the default: ffmpeg encodes, then
//! [`packager`] (Shaka Packager) packages CMAF titles, [`playlist_keys`] drops the HLS key tags
//! the edge must not see; [`tool`] runs each child; [`key_fifo`] feeds either the content key
//! without the key touching disk or a command line); [`protection`] is the per-title choice; [`mediaconvert::MediaConvert`] submits AWS
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
pub mod packager;
pub mod playlist_keys;
pub mod probe;
pub mod progress;
pub mod protection;
pub mod runner;
pub mod tool;
pub mod transcoder;

pub use backend::Backend;
pub use ladder::{plan_renditions, video_kbps, Rendition};
pub use probe::SourceInfo;
pub use protection::Protection;
pub use transcoder::{
    TitleKey, TranscodeError, TranscodeRequest, Transcoder, DASH_MANIFEST, MASTER_PLAYLIST,
    MEDIA_PLAYLIST,
};
