//! The packaging stage of CMAF titles: Shaka Packager turns ffmpeg's intermediate mp4 files
//! (one per rendition, one for audio) into one set of fMP4 segments with an HLS master
//! playlist and a static DASH MPD over the same files.
//!
//! Layout (relative to the title directory, the packager runs there): `master.m3u8`,
//! `manifest.mpd`, `{rendition}/init.mp4`, `{rendition}/seg_NNNNN.m4s`, `{rendition}/index.m3u8`
//! and the same under `audio/`. Encrypted titles use one content key for every stream
//! (`drm_label=CONTENT`), `--clear_lead 0`, PSSH boxes for Widevine, PlayReady and CommonSystem
//! in the init segments and the MPD, and the FairPlay key tag `skd://{key id}`. The key travels
//! in a `--flagfile` FIFO ([`FlagFifo`]), never on the command line or on disk; the
//! packager's stderr tail is scrubbed of the key before it becomes an error.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::key_fifo::{FlagFifo, SecretText};
use super::protection::Protection;
use super::tool::run_tool;
use super::transcoder::{TitleKey, TranscodeError, DASH_MANIFEST, MASTER_PLAYLIST, MEDIA_PLAYLIST};

/// The DRM label every stream is encrypted under (one key per title).
const DRM_LABEL: &str = "CONTENT";
/// The systems signaled in every encrypted title.
pub const PROTECTION_SYSTEMS: &str = "Widevine,PlayReady,FairPlay,CommonSystem";
/// Directory of the audio track in a title.
pub const AUDIO_DIR: &str = "audio";
/// Each stream's init segment inside its directory.
pub const INIT_SEGMENT: &str = "init.mp4";
/// Each stream's media segments inside its directory (packager template).
pub const SEGMENT_TEMPLATE: &str = "seg_$Number%05d$.m4s";

/// One input stream of the packager: an intermediate file and the directory it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagedStream {
    /// The intermediate mp4, relative to the title directory.
    pub input: PathBuf,
    /// `"video"` or `"audio"`.
    pub kind: &'static str,
    /// The stream's directory in the title (`"720p"`, `"audio"`).
    pub dir: String,
}

/// How the packager encrypts a title.
#[derive(Debug, Clone, Copy)]
pub struct PackagerEncryption {
    /// `cbcs` or `cenc`.
    pub scheme: Protection,
    /// The content key's id (the `content_keys` row).
    pub key_id: Uuid,
}

/// Shaka Packager, as `transcode.packager` names it.
#[derive(Debug, Clone)]
pub struct ShakaPackager {
    pub program: PathBuf,
    pub segment_seconds: u32,
}

impl ShakaPackager {
    /// The packager arguments (pure, so tests can inspect them); paths are relative to the
    /// title directory, where the packager runs. `flagfile` carries the key flags.
    pub fn arguments(
        &self,
        streams: &[PackagedStream],
        encryption: Option<PackagerEncryption>,
        flagfile: Option<&Path>,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        for s in streams {
            let mut d = format!(
                "in={},stream={},init_segment={dir}/{INIT_SEGMENT},segment_template={dir}/{SEGMENT_TEMPLATE},playlist_name={dir}/{MEDIA_PLAYLIST}",
                s.input.display(),
                s.kind,
                dir = s.dir,
            );
            if s.kind == "audio" {
                d.push_str(",hls_group_id=audio,hls_name=audio");
            }
            if encryption.is_some() {
                d.push_str(&format!(",drm_label={DRM_LABEL}"));
            }
            args.push(d.into());
        }
        let seg = self.segment_seconds.to_string();
        for a in [
            "--segment_duration",
            &seg,
            "--hls_master_playlist_output",
            MASTER_PLAYLIST,
            "--hls_playlist_type",
            "VOD",
            "--mpd_output",
            DASH_MANIFEST,
            "--generate_static_live_mpd",
        ] {
            args.push(a.into());
        }
        if let Some(enc) = encryption {
            for a in [
                "--enable_raw_key_encryption",
                "--protection_scheme",
                enc.scheme.as_str(),
                "--clear_lead",
                "0",
                "--protection_systems",
                PROTECTION_SYSTEMS,
                "--hls_key_uri",
                &fairplay_key_uri(enc.key_id),
            ] {
                args.push(a.into());
            }
        }
        if let Some(flagfile) = flagfile {
            args.push("--flagfile".into());
            args.push(flagfile.into());
        }
        args
    }

    /// Packages `streams` into `title_dir`, encrypted with `key` under `scheme` when given.
    pub async fn package(
        &self,
        title_dir: &Path,
        streams: &[PackagedStream],
        encryption: Option<(Protection, &TitleKey)>,
    ) -> Result<(), TranscodeError> {
        let flags = match encryption {
            Some(_) => Some(flag_fifo_beside(title_dir)?),
            None => None,
        };
        let key_hex = encryption.map(|(_, key)| SecretText::new(hex::encode(key.key.bytes())));
        let _feeder = match (&flags, encryption) {
            (Some(fifo), Some((_, key))) => Some(fifo.feed(key_flags(key))),
            _ => None,
        };
        let args = self.arguments(
            streams,
            encryption.map(|(scheme, key)| PackagerEncryption {
                scheme,
                key_id: key.key_id,
            }),
            flags.as_ref().map(|f| f.path()),
        );
        run_tool(&self.program, &args, Some(title_dir), None)
            .await
            .map_err(|failure| {
                failure.into_transcode_error(&self.program, |status, stderr_tail| {
                    TranscodeError::Packager {
                        status,
                        stderr_tail: scrub(&stderr_tail, key_hex.as_ref()),
                    }
                })
            })?;
        for name in [MASTER_PLAYLIST, DASH_MANIFEST] {
            if !title_dir.join(name).is_file() {
                return Err(TranscodeError::MissingOutput(name));
            }
        }
        Ok(())
    }
}

/// The FairPlay key tag's URI: `skd://` and the content key's UUID, which the edge's
/// `/fps/license` reads back from the SPC as the asset id.
pub fn fairplay_key_uri(key_id: Uuid) -> String {
    format!("skd://{key_id}")
}

/// The secret flags: the raw key for the one DRM label, the key id as the 32 hex digits of
/// the UUID's bytes.
fn key_flags(key: &TitleKey) -> SecretText {
    SecretText::new(format!(
        "--keys=label={DRM_LABEL}:key_id={}:key={}\n",
        key.key_id.simple(),
        hex::encode(key.key.bytes())
    ))
}

/// Replaces any copy of the key (hex, either case) in a message with `<redacted>`.
fn scrub(message: &str, key_hex: Option<&SecretText>) -> String {
    let Some(hex) = key_hex.and_then(|k| std::str::from_utf8(k.bytes()).ok()) else {
        return message.to_string();
    };
    message
        .replace(hex, "<redacted>")
        .replace(&hex.to_ascii_uppercase(), "<redacted>")
}

/// The flags FIFO lives in a private directory next to the title (`{title}-flags-XXXXXX`), so
/// the runner's staging cleanup also removes what a killed process left behind.
fn flag_fifo_beside(title_dir: &Path) -> std::io::Result<FlagFifo> {
    let parent = title_dir.parent().unwrap_or(Path::new("."));
    let name = title_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    FlagFifo::create(parent, &format!("{name}-flags-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::tool::command_line as joined;

    fn packager() -> ShakaPackager {
        ShakaPackager {
            program: "packager".into(),
            segment_seconds: 4,
        }
    }

    fn streams() -> Vec<PackagedStream> {
        vec![
            PackagedStream {
                input: ".intermediate/720p.mp4".into(),
                kind: "video",
                dir: "720p".into(),
            },
            PackagedStream {
                input: ".intermediate/audio.mp4".into(),
                kind: "audio",
                dir: AUDIO_DIR.into(),
            },
        ]
    }

    #[test]
    fn encrypted_title() {
        let key_id = Uuid::parse_str("01234567-89ab-cdef-0123-456789abcdef").unwrap();
        let line = joined(&packager().arguments(
            &streams(),
            Some(PackagerEncryption {
                scheme: Protection::Cbcs,
                key_id,
            }),
            Some(Path::new("/staging/t-flags-x/flags.fifo")),
        ));
        assert!(line.starts_with(
            "in=.intermediate/720p.mp4,stream=video,init_segment=720p/init.mp4,\
             segment_template=720p/seg_$Number%05d$.m4s,playlist_name=720p/index.m3u8,drm_label=CONTENT \
             in=.intermediate/audio.mp4,stream=audio,init_segment=audio/init.mp4,\
             segment_template=audio/seg_$Number%05d$.m4s,playlist_name=audio/index.m3u8,\
             hls_group_id=audio,hls_name=audio,drm_label=CONTENT "
        ));
        assert!(line.contains("--segment_duration 4"));
        assert!(line.contains("--hls_master_playlist_output master.m3u8"));
        assert!(line.contains("--mpd_output manifest.mpd --generate_static_live_mpd"));
        assert!(line.contains("--hls_playlist_type VOD"));
        assert!(
            line.contains("--enable_raw_key_encryption --protection_scheme cbcs --clear_lead 0")
        );
        assert!(line.contains("--protection_systems Widevine,PlayReady,FairPlay,CommonSystem"));
        assert!(line.contains("--hls_key_uri skd://01234567-89ab-cdef-0123-456789abcdef"));
        assert!(line.ends_with("--flagfile /staging/t-flags-x/flags.fifo"));
        assert!(
            !line.contains("--keys"),
            "the key stays off the command line"
        );
    }

    #[test]
    fn cenc_and_clear_titles() {
        let cenc = joined(&packager().arguments(
            &streams(),
            Some(PackagerEncryption {
                scheme: Protection::Cenc,
                key_id: Uuid::nil(),
            }),
            Some(Path::new("/f")),
        ));
        assert!(cenc.contains("--protection_scheme cenc"));
        let clear = joined(&packager().arguments(&streams(), None, None));
        for absent in [
            "drm_label",
            "--enable_raw_key_encryption",
            "--protection",
            "--flagfile",
        ] {
            assert!(!clear.contains(absent), "{clear}");
        }
        assert!(clear.contains("--mpd_output manifest.mpd"));
    }

    #[test]
    fn key_flags_and_scrubbing() {
        let key = TitleKey {
            key_id: Uuid::parse_str("01234567-89ab-cdef-0123-456789abcdef").unwrap(),
            key: crate::keys::ContentKey::new([0xab; 16]),
        };
        let flags = key_flags(&key);
        assert_eq!(
            std::str::from_utf8(flags.bytes()).unwrap(),
            format!(
                "--keys=label=CONTENT:key_id=0123456789abcdef0123456789abcdef:key={}\n",
                "ab".repeat(16)
            )
        );
        let hex = SecretText::new("ab".repeat(16));
        let message = format!("bad key {} / {}", "ab".repeat(16), "AB".repeat(16));
        assert_eq!(
            scrub(&message, Some(&hex)),
            "bad key <redacted> / <redacted>"
        );
        assert_eq!(scrub("plain", None), "plain");
    }
}
