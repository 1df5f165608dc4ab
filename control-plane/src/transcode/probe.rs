//! Reading a source's shape from `ffprobe -print_format json -show_streams -show_format`.

use serde::Deserialize;

/// What the transcoder needs to know about a source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    pub width: u32,
    pub height: u32,
    pub duration_secs: f64,
    pub has_audio: bool,
}

#[derive(Deserialize)]
struct ProbeOutput {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_type: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    duration: Option<String>,
    #[serde(default)]
    disposition: Disposition,
}

#[derive(Deserialize, Default)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize)]
struct ProbeFormat {
    duration: Option<String>,
}

/// Parses ffprobe's JSON. The first real video stream (not cover art) gives the size; the
/// container duration is preferred over the stream's.
pub fn parse_ffprobe_json(json: &str) -> Result<SourceInfo, String> {
    let out: ProbeOutput =
        serde_json::from_str(json).map_err(|e| format!("unreadable ffprobe output: {e}"))?;
    let video = out
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0)
        .ok_or("the file has no video stream")?;
    let (width, height) = match (video.width, video.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err("the video stream has no size".into()),
    };
    let duration_secs = out
        .format
        .as_ref()
        .and_then(|f| f.duration.as_deref())
        .or(video.duration.as_deref())
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or("the file has no duration")?;
    let has_audio = out
        .streams
        .iter()
        .any(|s| s.codec_type.as_deref() == Some("audio"));
    Ok(SourceInfo {
        width,
        height,
        duration_secs,
        has_audio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_with_audio() {
        let json = r#"{"streams":[
            {"index":0,"codec_type":"video","width":1280,"height":720,"duration":"20.000000",
             "disposition":{"attached_pic":0}},
            {"index":1,"codec_type":"audio","duration":"20.010000"}],
          "format":{"duration":"20.010000"}}"#;
        let info = parse_ffprobe_json(json).unwrap();
        assert_eq!(
            info,
            SourceInfo {
                width: 1280,
                height: 720,
                duration_secs: 20.01,
                has_audio: true
            }
        );
    }

    #[test]
    fn cover_art_is_not_the_video() {
        let json = r#"{"streams":[
            {"codec_type":"video","width":300,"height":300,"disposition":{"attached_pic":1}},
            {"codec_type":"video","width":640,"height":360,"duration":"3.5"}],
          "format":{}}"#;
        let info = parse_ffprobe_json(json).unwrap();
        assert_eq!((info.width, info.height, info.has_audio), (640, 360, false));
        assert_eq!(info.duration_secs, 3.5);
    }

    #[test]
    fn refusals() {
        assert!(parse_ffprobe_json("not json").is_err());
        assert!(parse_ffprobe_json(
            r#"{"streams":[{"codec_type":"audio"}],"format":{"duration":"1"}}"#
        )
        .unwrap_err()
        .contains("no video"));
        assert!(parse_ffprobe_json(
            r#"{"streams":[{"codec_type":"video","width":2,"height":2}],"format":{"duration":"N/A"}}"#
        )
        .unwrap_err()
        .contains("duration"));
    }
}
