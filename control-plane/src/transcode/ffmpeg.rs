//! The local transcoder: one ffprobe, then one ffmpeg process for the whole ladder.
//!
//! ffmpeg splits the video into one scaled stream per rendition, encodes them with libx264 (and
//! the first audio track with AAC, if any) and writes HLS with `-var_stream_map`, so the master
//! playlist and every media playlist come out of one run with aligned keyframes. With
//! encryption, `-hls_key_info_file` points at a [`KeyFifo`]; the key never appears on the
//! command line. `-progress pipe:1` is parsed into percentages; stderr's tail becomes the
//! failure reason.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::key_fifo::KeyFifo;
use super::probe::{parse_ffprobe_json, SourceInfo};
use super::progress::{parse_progress_line, percent, ProgressLine, StderrTail};
use super::{
    Rendition, TranscodeError, TranscodeRequest, Transcoder, MASTER_PLAYLIST, MEDIA_PLAYLIST,
};
use crate::config::TranscodeConfig;

/// Transcodes with the ffmpeg and ffprobe binaries named in `[transcode]`.
#[derive(Debug, Clone)]
pub struct FfmpegTranscoder {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
    segment_seconds: u32,
    preset: String,
}

impl FfmpegTranscoder {
    pub fn new(config: &TranscodeConfig) -> Self {
        FfmpegTranscoder {
            ffmpeg: config.ffmpeg.clone(),
            ffprobe: config.ffprobe.clone(),
            segment_seconds: config.segment_seconds,
            preset: config.preset.clone(),
        }
    }

    /// The ffmpeg arguments for a run (pure, so it can be inspected in tests).
    pub fn arguments(
        &self,
        source: &Path,
        info: &SourceInfo,
        renditions: &[Rendition],
        output_dir: &Path,
        key_info_file: Option<&Path>,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |a: &str| args.push(a.into());
        for a in [
            "-hide_banner",
            "-nostdin",
            "-y",
            "-loglevel",
            "warning",
            "-nostats",
        ] {
            push(a);
        }
        push("-progress");
        push("pipe:1");
        args.push("-i".into());
        args.push(source.into());

        let n = renditions.len();
        let mut filter = format!("[0:v]split={n}");
        for i in 0..n {
            filter.push_str(&format!("[s{i}]"));
        }
        for (i, r) in renditions.iter().enumerate() {
            filter.push_str(&format!(";[s{i}]scale=-2:{}[v{i}]", r.height));
        }
        let mut push = |a: String| args.push(a.into());
        push("-filter_complex".into());
        push(filter);
        for i in 0..n {
            push("-map".into());
            push(format!("[v{i}]"));
        }
        if info.has_audio {
            for _ in 0..n {
                push("-map".into());
                push("0:a:0".into());
            }
        }
        let seg = self.segment_seconds;
        for a in [
            "-c:v",
            "libx264",
            "-preset",
            &self.preset,
            "-pix_fmt",
            "yuv420p",
            "-sc_threshold",
            "0",
            "-force_key_frames",
            &format!("expr:gte(t,n_forced*{seg})"),
        ] {
            push(a.into());
        }
        for (i, r) in renditions.iter().enumerate() {
            push(format!("-b:v:{i}"));
            push(format!("{}k", r.video_kbps));
            push(format!("-maxrate:v:{i}"));
            push(format!("{}k", r.video_kbps * 107 / 100));
            push(format!("-bufsize:v:{i}"));
            push(format!("{}k", r.video_kbps * 3 / 2));
        }
        if info.has_audio {
            for a in ["-c:a", "aac", "-b:a", "128k", "-ac", "2"] {
                push(a.into());
            }
        }
        let stream_map = renditions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if info.has_audio {
                    format!("v:{i},a:{i},name:{}", r.name)
                } else {
                    format!("v:{i},name:{}", r.name)
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        for a in [
            "-f",
            "hls",
            "-hls_time",
            &seg.to_string(),
            "-hls_playlist_type",
            "vod",
            "-hls_flags",
            "independent_segments",
            "-hls_segment_type",
            "mpegts",
            "-master_pl_name",
            MASTER_PLAYLIST,
            "-var_stream_map",
            &stream_map,
        ] {
            push(a.into());
        }
        args.push("-hls_segment_filename".into());
        args.push(output_dir.join("%v").join("seg_%05d.ts").into());
        if let Some(key_info) = key_info_file {
            args.push("-hls_key_info_file".into());
            args.push(key_info.into());
        }
        args.push(output_dir.join("%v").join(MEDIA_PLAYLIST).into());
        args
    }
}

#[async_trait]
impl Transcoder for FfmpegTranscoder {
    async fn probe(&self, source: &Path) -> Result<SourceInfo, TranscodeError> {
        let output = Command::new(&self.ffprobe)
            .args([
                "-v",
                "error",
                "-print_format",
                "json",
                "-show_streams",
                "-show_format",
            ])
            .arg(source)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| TranscodeError::Spawn {
                program: self.ffprobe.clone(),
                source,
            })?;
        if !output.status.success() {
            let mut tail = StderrTail::new(5);
            for line in String::from_utf8_lossy(&output.stderr).lines() {
                tail.push(line);
            }
            return Err(TranscodeError::Probe(tail.summary()));
        }
        parse_ffprobe_json(&String::from_utf8_lossy(&output.stdout)).map_err(TranscodeError::Probe)
    }

    async fn transcode(&self, request: TranscodeRequest<'_>) -> Result<(), TranscodeError> {
        for r in request.renditions {
            tokio::fs::create_dir_all(request.output_dir.join(&r.name)).await?;
        }
        let key_fifo = match request.encryption {
            Some(enc) => Some(key_fifo_beside(request.output_dir, &enc.key_uri())?),
            None => None,
        };
        let _feeder = match (&key_fifo, request.encryption) {
            (Some(fifo), Some(enc)) => Some(fifo.feed(&enc.key)),
            _ => None,
        };
        let args = self.arguments(
            request.source,
            request.source_info,
            request.renditions,
            request.output_dir,
            key_fifo.as_ref().map(|f| f.info_path()),
        );
        let mut command = Command::new(&self.ffmpeg);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let mut child = command.spawn().map_err(|source| TranscodeError::Spawn {
            program: self.ffmpeg.clone(),
            source,
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");

        let duration = request.source_info.duration_secs;
        let progress = request.progress;
        let progress_reader = async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(ProgressLine::OutTimeUs(us)) = parse_progress_line(&line) {
                    progress.send_if_modified(|p| {
                        let next = percent(us, duration).max(*p);
                        std::mem::replace(p, next) != next
                    });
                }
            }
        };
        let stderr_reader = async move {
            let mut tail = StderrTail::new(12);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tail.push(&line);
            }
            tail
        };
        let (status, (), tail) = tokio::join!(child.wait(), progress_reader, stderr_reader);
        let status = status?;
        if !status.success() {
            return Err(TranscodeError::Ffmpeg {
                status: status.to_string(),
                stderr_tail: tail.summary(),
            });
        }
        if !request.output_dir.join(MASTER_PLAYLIST).is_file() {
            return Err(TranscodeError::MissingOutput);
        }
        Ok(())
    }
}

/// The key FIFO lives in a private directory next to the output (`{output}-key-XXXXXX`), so
/// the runner's staging cleanup also removes what a killed process left behind.
fn key_fifo_beside(output_dir: &Path, key_uri: &str) -> std::io::Result<KeyFifo> {
    let parent = output_dir.parent().unwrap_or(Path::new("."));
    let name = output_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    KeyFifo::create(key_uri, parent, &format!("{name}-key-"))
}

/// Asks the kernel to kill ffmpeg if the control plane dies (even by SIGKILL), so a restart
/// never races an orphan writing into the same staging tree.
fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only makes one async-signal-safe
    // system call (prctl).
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::plan_renditions;

    fn transcoder() -> FfmpegTranscoder {
        FfmpegTranscoder::new(&TranscodeConfig::default())
    }

    fn joined(args: &[OsString]) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn ladder_with_audio_and_encryption() {
        let info = SourceInfo {
            width: 1280,
            height: 720,
            duration_secs: 20.0,
            has_audio: true,
        };
        let renditions = plan_renditions(&[1080, 720, 480], 720);
        let args = transcoder().arguments(
            Path::new("/in/src"),
            &info,
            &renditions,
            Path::new("/out"),
            Some(Path::new("/tmp/k/key.info")),
        );
        let line = joined(&args);
        assert!(line.contains("[0:v]split=2[s0][s1];[s0]scale=-2:720[v0];[s1]scale=-2:480[v1]"));
        assert!(line.contains("-var_stream_map v:0,a:0,name:720p v:1,a:1,name:480p"));
        assert!(line.contains("-map 0:a:0 -map 0:a:0"));
        assert!(line.contains("-master_pl_name master.m3u8"));
        assert!(line.contains("-hls_playlist_type vod"));
        assert!(line.contains("-hls_time 4"));
        assert!(line.contains("-hls_segment_filename /out/%v/seg_%05d.ts"));
        assert!(line.contains("-hls_key_info_file /tmp/k/key.info"));
        assert!(line.contains("-progress pipe:1"));
        assert!(line.contains("-c:a aac"));
        assert!(line.ends_with("/out/%v/index.m3u8"));
    }

    #[test]
    fn silent_source_without_encryption() {
        let info = SourceInfo {
            width: 640,
            height: 360,
            duration_secs: 2.0,
            has_audio: false,
        };
        let renditions = plan_renditions(&[1080, 720, 480], 360);
        let line = joined(&transcoder().arguments(
            Path::new("/in/src"),
            &info,
            &renditions,
            Path::new("/out"),
            None,
        ));
        assert!(line.contains("-var_stream_map v:0,name:360p"));
        assert!(!line.contains("0:a:0"));
        assert!(!line.contains("aac"));
        assert!(!line.contains("hls_key_info_file"));
    }
}
