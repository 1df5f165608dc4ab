//! How long a title plays, read from its playlists: the session token lasts that long.
//!
//! The master playlist names its variants; the first variant's media playlist lists segment
//! durations (`#EXTINF:<seconds>,`). A playlist without `#EXT-X-ENDLIST` is live or still
//! growing, so its length is unknown.

/// The URI of the first variant stream a master playlist references (the line after the first
/// `#EXT-X-STREAM-INF`), as written.
pub fn first_variant_uri(master: &str) -> Option<&str> {
    let mut lines = master.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line.starts_with("#EXT-X-STREAM-INF:") {
            return lines.find(|l| !l.is_empty() && !l.starts_with('#'));
        }
    }
    None
}

/// The total of a finished media playlist's `#EXTINF` durations, rounded up to whole seconds;
/// `None` for a live playlist, a playlist without segments, or a duration that does not parse.
pub fn media_duration_secs(media: &str) -> Option<u64> {
    if !media.trim_start_matches('\u{feff}').starts_with("#EXTM3U") {
        return None;
    }
    let mut total = 0f64;
    let mut segments = 0u64;
    let mut ended = false;
    for line in media.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let seconds: f64 = rest.split(',').next()?.trim().parse().ok()?;
            if !seconds.is_finite() || seconds < 0.0 {
                return None;
            }
            total += seconds;
            segments += 1;
        } else if line == "#EXT-X-ENDLIST" {
            ended = true;
        }
    }
    (ended && segments > 0 && total < 1e9).then(|| total.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_variant() {
        let master = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,URI=\"a.m3u8\"\n\
                      #EXT-X-STREAM-INF:BANDWIDTH=1\n\n720p/index.m3u8\n\
                      #EXT-X-STREAM-INF:BANDWIDTH=2\n480p/index.m3u8\n";
        assert_eq!(first_variant_uri(master), Some("720p/index.m3u8"));
        assert_eq!(first_variant_uri("#EXTM3U\n#EXTINF:4,\na.ts\n"), None);
    }

    #[test]
    fn durations() {
        let vod = "#EXTM3U\n#EXTINF:6.006,\na.ts\n#EXTINF:5.5,title\nb.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(media_duration_secs(vod), Some(12));
        let live = "#EXTM3U\n#EXTINF:6,\na.ts\n";
        assert_eq!(media_duration_secs(live), None);
        assert_eq!(media_duration_secs("#EXTM3U\n#EXT-X-ENDLIST\n"), None);
        assert_eq!(
            media_duration_secs("#EXTM3U\n#EXTINF:x,\n#EXT-X-ENDLIST\n"),
            None
        );
        assert_eq!(
            media_duration_secs("#EXTM3U\n#EXTINF:-1,\n#EXT-X-ENDLIST\n"),
            None
        );
        assert_eq!(
            media_duration_secs("#EXTM3U\n#EXTINF:1e308,\n#EXT-X-ENDLIST\n"),
            None
        );
        assert_eq!(media_duration_secs("<html>"), None);
    }
}
