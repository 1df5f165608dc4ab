//! `Content-Type` for files the edge serves, chosen by extension.
//!
//! Players are strict about playlist and segment types (Safari refuses an HLS playlist served
//! as `text/plain`), so the edge sets the type itself rather than trusting the origin.

/// The media type for a file extension (lowercase, without the dot).
pub fn for_extension(extension: Option<&str>) -> &'static str {
    match extension {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("m4s") | Some("mp4") | Some("m4v") | Some("cmfv") => "video/mp4",
        Some("m4a") | Some("cmfa") => "audio/mp4",
        Some("aac") => "audio/aac",
        Some("mp3") => "audio/mpeg",
        Some("ac3") => "audio/ac3",
        Some("ec3") => "audio/eac3",
        Some("vtt") | Some("webvtt") => "text/vtt",
        Some("mpd") => "application/dash+xml",
        Some("json") => "application/json",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::for_extension;

    #[test]
    fn common_hls_types() {
        assert_eq!(for_extension(Some("m3u8")), "application/vnd.apple.mpegurl");
        assert_eq!(for_extension(Some("ts")), "video/mp2t");
        assert_eq!(for_extension(Some("m4s")), "video/mp4");
        assert_eq!(for_extension(Some("mp4")), "video/mp4");
        assert_eq!(for_extension(Some("aac")), "audio/aac");
        assert_eq!(for_extension(Some("vtt")), "text/vtt");
        assert_eq!(for_extension(Some("key")), "application/octet-stream");
        assert_eq!(for_extension(None), "application/octet-stream");
    }
}
