//! The rendition ladder: which heights a title is encoded at, and at what video bitrate.
//!
//! Pure: both backends plan with [`plan_renditions`] (ffmpeg from the probed source height,
//! MediaConvert from the configured heights as they are).

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
