//! The local transcoder: one ffprobe, then one ffmpeg process for the whole ladder, then for
//! CMAF titles one Shaka Packager run.
//!
//! ffmpeg splits the video into one scaled stream per rendition and encodes them with libx264
//! with a keyframe every `segment_seconds` (so every rendition cuts at the same times), and the
//! first audio track with AAC, if any.
//!
//! - **CMAF** (`cbcs`, `cenc`, `none`): ffmpeg writes one intermediate mp4 per rendition and one
//!   for audio into `{title}/.intermediate/`; [`ShakaPackager`] packages them into the title
//!   (HLS and DASH over one set of fMP4 segments, see [`super::packager`]); the identity key
//!   tags become ClearKey key tags ([`clearkey_key_tags`]) and the intermediates are
//!   removed. Progress: ffmpeg's share ends at [`ENCODE_SHARE`], the packager's at 99.
//! - **AES-128 MPEG-TS** (`aes-128`): ffmpeg writes HLS itself with `-var_stream_map`;
//!   `-hls_key_info_file` points at a [`KeyFifo`], so the key never appears on the command
//!   line.
//!
//! `-progress pipe:1` is parsed into percentages; stderr's tail becomes the failure reason.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use tokio::process::Command;

use super::key_fifo::KeyFifo;
use super::packager::{PackagedStream, ShakaPackager, AUDIO_DIR};
use super::playlist_keys::clearkey_key_tags;
use super::probe::{parse_ffprobe_json, SourceInfo};
use super::progress::StderrTail;
use super::tool::{run_tool, ProgressSink};
use super::{
    Rendition, TranscodeError, TranscodeRequest, Transcoder, MASTER_PLAYLIST, MEDIA_PLAYLIST,
};
use crate::config::TranscodeConfig;

/// Directory of ffmpeg's intermediate files inside a CMAF title being made (removed before
/// the title is published).
pub const INTERMEDIATE_DIR: &str = ".intermediate";
/// Where ffmpeg's part of a CMAF job's progress ends (the packager takes it to 99).
pub const ENCODE_SHARE: u8 = 90;

/// Transcodes with the ffmpeg and ffprobe binaries named in `[transcode]`, packaging CMAF
/// titles with `transcode.packager`.
#[derive(Debug, Clone)]
pub struct FfmpegTranscoder {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
    segment_seconds: u32,
    preset: String,
    packager: ShakaPackager,
}

impl FfmpegTranscoder {
    pub fn new(config: &TranscodeConfig) -> Self {
        FfmpegTranscoder {
            ffmpeg: config.ffmpeg.clone(),
            ffprobe: config.ffprobe.clone(),
            segment_seconds: config.segment_seconds,
            preset: config.preset.clone(),
            packager: ShakaPackager {
                program: config.packager.clone(),
                segment_seconds: config.segment_seconds,
            },
        }
    }

    /// The start of every run: quiet, progress on stdout, the source, and the filter that
    /// splits the video into `[v{i}]`, one scaled stream per rendition.
    fn input_and_ladder(source: &Path, renditions: &[Rendition]) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            "-hide_banner",
            "-nostdin",
            "-y",
            "-loglevel",
            "warning",
            "-nostats",
            "-progress",
            "pipe:1",
            "-i",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        args.push(source.into());
        let n = renditions.len();
        let mut filter = format!("[0:v]split={n}");
        for i in 0..n {
            filter.push_str(&format!("[s{i}]"));
        }
        for (i, r) in renditions.iter().enumerate() {
            filter.push_str(&format!(";[s{i}]scale=-2:{}[v{i}]", r.height));
        }
        args.push("-filter_complex".into());
        args.push(filter.into());
        args
    }

    /// libx264 with a keyframe every segment, no scene-cut keyframes (aligned renditions).
    fn x264(&self) -> Vec<String> {
        let seg = self.segment_seconds;
        [
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
        ]
        .map(String::from)
        .to_vec()
    }

    /// Video bitrate, cap and buffer of rendition `r`; `suffix` selects the stream (`":v:0"`)
    /// or is empty for an output's only video stream.
    fn rate_control(r: &Rendition, suffix: &str) -> Vec<String> {
        vec![
            format!("-b{suffix}"),
            format!("{}k", r.video_kbps),
            format!("-maxrate{suffix}"),
            format!("{}k", r.video_kbps * 107 / 100),
            format!("-bufsize{suffix}"),
            format!("{}k", r.video_kbps * 3 / 2),
        ]
    }

    const AAC: [&str; 6] = ["-c:a", "aac", "-b:a", "128k", "-ac", "2"];

    /// The ffmpeg arguments of a CMAF job (pure, so it can be inspected in tests): one
    /// intermediate mp4 per rendition (`{dir}/{rendition}.mp4`) and, with audio,
    /// `{dir}/audio.mp4`, all from one decode.
    pub fn intermediate_arguments(
        &self,
        source: &Path,
        info: &SourceInfo,
        renditions: &[Rendition],
        dir: &Path,
    ) -> Vec<OsString> {
        let mut args = Self::input_and_ladder(source, renditions);
        for (i, r) in renditions.iter().enumerate() {
            let options = ["-map".to_string(), format!("[v{i}]")]
                .into_iter()
                .chain(self.x264())
                .chain(Self::rate_control(r, ":v"))
                .chain(["-f".to_string(), "mp4".to_string()]);
            args.extend(options.map(OsString::from));
            args.push(dir.join(format!("{}.mp4", r.name)).into());
        }
        if info.has_audio {
            for a in ["-map", "0:a:0"]
                .into_iter()
                .chain(Self::AAC)
                .chain(["-f", "mp4"])
            {
                args.push(a.into());
            }
            args.push(dir.join(format!("{AUDIO_DIR}.mp4")).into());
        }
        args
    }

    /// The packager's streams for the intermediates [`Self::intermediate_arguments`] wrote
    /// (paths relative to the title directory).
    pub fn packaged_streams(info: &SourceInfo, renditions: &[Rendition]) -> Vec<PackagedStream> {
        let mut streams: Vec<PackagedStream> = renditions
            .iter()
            .map(|r| PackagedStream {
                input: Path::new(INTERMEDIATE_DIR).join(format!("{}.mp4", r.name)),
                kind: "video",
                dir: r.name.clone(),
            })
            .collect();
        if info.has_audio {
            streams.push(PackagedStream {
                input: Path::new(INTERMEDIATE_DIR).join(format!("{AUDIO_DIR}.mp4")),
                kind: "audio",
                dir: AUDIO_DIR.into(),
            });
        }
        streams
    }

    /// The ffmpeg arguments of an AES-128 MPEG-TS job (pure, so it can be inspected in tests).
    pub fn arguments(
        &self,
        source: &Path,
        info: &SourceInfo,
        renditions: &[Rendition],
        output_dir: &Path,
        key_info_file: Option<&Path>,
    ) -> Vec<OsString> {
        let mut args = Self::input_and_ladder(source, renditions);
        let n = renditions.len();
        let mut push = |a: String| args.push(a.into());
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
        self.x264().into_iter().for_each(&mut push);
        for (i, r) in renditions.iter().enumerate() {
            Self::rate_control(r, &format!(":v:{i}"))
                .into_iter()
                .for_each(&mut push);
        }
        if info.has_audio {
            Self::AAC.into_iter().for_each(|a| push(a.into()));
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
        let seg = self.segment_seconds;
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

    /// Runs ffmpeg; its progress fills `0..=ceiling` of the job's.
    async fn run_ffmpeg(
        &self,
        args: &[OsString],
        request: &TranscodeRequest<'_>,
        ceiling: u8,
    ) -> Result<(), TranscodeError> {
        let sink = ProgressSink {
            sender: &request.progress,
            duration_secs: request.source_info.duration_secs,
            floor: 0,
            ceiling,
        };
        run_tool(&self.ffmpeg, args, None, Some(sink))
            .await
            .map_err(|failure| {
                failure.into_transcode_error(&self.ffmpeg, |status, stderr_tail| {
                    TranscodeError::Ffmpeg {
                        status,
                        stderr_tail,
                    }
                })
            })
    }

    /// AES-128 (or clear) MPEG-TS HLS written by ffmpeg alone.
    async fn transcode_ts(&self, request: &TranscodeRequest<'_>) -> Result<(), TranscodeError> {
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
        self.run_ffmpeg(&args, request, 99).await?;
        if !request.output_dir.join(MASTER_PLAYLIST).is_file() {
            return Err(TranscodeError::MissingOutput(MASTER_PLAYLIST));
        }
        Ok(())
    }

    /// CMAF: ffmpeg to intermediates, the packager into the title, key tags cleaned up.
    async fn transcode_cmaf(&self, request: &TranscodeRequest<'_>) -> Result<(), TranscodeError> {
        let protection = request.protection;
        let encryption = request
            .encryption
            .filter(|_| protection.encrypts())
            .map(|key| (protection, key));
        let intermediates = request.output_dir.join(INTERMEDIATE_DIR);
        tokio::fs::create_dir_all(&intermediates).await?;
        let args = self.intermediate_arguments(
            request.source,
            request.source_info,
            request.renditions,
            &intermediates,
        );
        self.run_ffmpeg(&args, request, ENCODE_SHARE).await?;
        let streams = Self::packaged_streams(request.source_info, request.renditions);
        self.packager
            .package(request.output_dir, &streams, encryption)
            .await?;
        tokio::fs::remove_dir_all(&intermediates).await?;
        let mut playlists = vec![request.output_dir.join(MASTER_PLAYLIST)];
        playlists.extend(
            streams
                .iter()
                .map(|s| request.output_dir.join(&s.dir).join(MEDIA_PLAYLIST)),
        );
        for path in playlists {
            let text = tokio::fs::read_to_string(&path).await?;
            let (signaled, changed) = clearkey_key_tags(&text);
            if changed > 0 {
                tokio::fs::write(&path, signaled).await?;
            }
        }
        request.progress.send_replace(99);
        Ok(())
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
        if request.protection.encrypts() && request.encryption.is_none() {
            return Err(TranscodeError::MissingKey(request.protection));
        }
        if request.protection.is_cmaf() {
            self.transcode_cmaf(&request).await
        } else {
            self.transcode_ts(&request).await
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::plan_renditions;
    use crate::transcode::tool::command_line as joined;

    fn transcoder() -> FfmpegTranscoder {
        FfmpegTranscoder::new(&TranscodeConfig::default())
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

    #[test]
    fn cmaf_intermediates_one_file_per_rendition_and_audio() {
        let info = SourceInfo {
            width: 1920,
            height: 1080,
            duration_secs: 20.0,
            has_audio: true,
        };
        let renditions = plan_renditions(&[1080, 720, 480], 1080);
        let line = joined(&transcoder().intermediate_arguments(
            Path::new("/in/src"),
            &info,
            &renditions,
            Path::new("/t/.intermediate"),
        ));
        assert!(line.contains(
            "[0:v]split=3[s0][s1][s2];[s0]scale=-2:1080[v0];[s1]scale=-2:720[v1];[s2]scale=-2:480[v2]"
        ));
        let x264 = "-c:v libx264 -preset veryfast -pix_fmt yuv420p -sc_threshold 0 \
                    -force_key_frames expr:gte(t,n_forced*4)";
        for (i, (name, kbps)) in [("1080p", 5000), ("720p", 2800), ("480p", 1400)]
            .into_iter()
            .enumerate()
        {
            let output = format!(
                "-map [v{i}] {x264} -b:v {kbps}k -maxrate:v {}k -bufsize:v {}k -f mp4 /t/.intermediate/{name}.mp4",
                kbps * 107 / 100,
                kbps * 3 / 2
            );
            assert!(line.contains(&output), "{output} not in {line}");
        }
        assert!(
            line.ends_with("-map 0:a:0 -c:a aac -b:a 128k -ac 2 -f mp4 /t/.intermediate/audio.mp4")
        );
        assert!(line.contains("-progress pipe:1"));
        assert!(!line.contains("hls"));

        let streams = FfmpegTranscoder::packaged_streams(&info, &renditions);
        let dirs: Vec<&str> = streams.iter().map(|s| s.dir.as_str()).collect();
        assert_eq!(dirs, ["1080p", "720p", "480p", "audio"]);
        assert_eq!(streams[3].kind, "audio");
        assert_eq!(streams[0].input, Path::new(".intermediate/1080p.mp4"));

        let silent = SourceInfo {
            has_audio: false,
            ..info
        };
        let line = joined(&transcoder().intermediate_arguments(
            Path::new("/in/src"),
            &silent,
            &renditions[2..],
            Path::new("/t/.intermediate"),
        ));
        assert!(!line.contains("0:a:0") && !line.contains("audio.mp4"));
        assert_eq!(
            FfmpegTranscoder::packaged_streams(&silent, &renditions).len(),
            3
        );
    }
}
