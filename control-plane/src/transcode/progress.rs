//! Parsing ffmpeg's `-progress pipe:1` output and keeping its stderr tail.
//!
//! ffmpeg writes blocks of `key=value` lines, each ending with `progress=continue` or
//! `progress=end`. Only `out_time_us` matters here: the position written so far, which against
//! the source duration gives a percentage.

use std::collections::VecDeque;

/// One meaningful line of progress output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressLine {
    /// Microseconds of output written so far.
    OutTimeUs(u64),
    /// ffmpeg finished writing.
    End,
}

/// Parses one line; `None` for lines that carry nothing useful (including `N/A` times).
pub fn parse_progress_line(line: &str) -> Option<ProgressLine> {
    let (key, value) = line.trim().split_once('=')?;
    match key {
        "out_time_us" => value.trim().parse().ok().map(ProgressLine::OutTimeUs),
        "progress" if value.trim() == "end" => Some(ProgressLine::End),
        _ => None,
    }
}

/// Percentage 0–99 for `out_time_us` of a source `duration_secs` long. 100 is reserved for a
/// job whose output has been published.
pub fn percent(out_time_us: u64, duration_secs: f64) -> u8 {
    if !(duration_secs.is_finite() && duration_secs > 0.0) {
        return 0;
    }
    let fraction = out_time_us as f64 / (duration_secs * 1_000_000.0);
    (fraction * 100.0).clamp(0.0, 99.0) as u8
}

/// The last lines of a child's stderr, for a failure reason.
#[derive(Debug)]
pub struct StderrTail {
    lines: VecDeque<String>,
    max_lines: usize,
}

impl StderrTail {
    const MAX_LINE: usize = 400;

    pub fn new(max_lines: usize) -> Self {
        StderrTail {
            lines: VecDeque::with_capacity(max_lines),
            max_lines,
        }
    }

    /// Keeps `line` (truncated), dropping the oldest when full.
    pub fn push(&mut self, line: &str) {
        let line = line.trim_end();
        if line.is_empty() {
            return;
        }
        if self.lines.len() == self.max_lines {
            self.lines.pop_front();
        }
        let mut kept: String = line.chars().take(Self::MAX_LINE).collect();
        if kept.len() < line.len() {
            kept.push('…');
        }
        self.lines.push_back(kept);
    }

    /// The kept lines joined with ` | `, or a note that there were none.
    pub fn summary(&self) -> String {
        if self.lines.is_empty() {
            "no output on stderr".into()
        } else {
            self.lines.iter().cloned().collect::<Vec<_>>().join(" | ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_lines_that_matter() {
        assert_eq!(
            parse_progress_line("out_time_us=4017044"),
            Some(ProgressLine::OutTimeUs(4_017_044))
        );
        assert_eq!(
            parse_progress_line("progress=end\n"),
            Some(ProgressLine::End)
        );
        assert_eq!(parse_progress_line("progress=continue"), None);
        assert_eq!(parse_progress_line("out_time_us=N/A"), None);
        assert_eq!(parse_progress_line("out_time_ms=4017044"), None);
        assert_eq!(parse_progress_line("frame=120"), None);
        assert_eq!(parse_progress_line("garbage"), None);
        assert_eq!(parse_progress_line("out_time_us=-5"), None);
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(0, 20.0), 0);
        assert_eq!(percent(10_000_000, 20.0), 50);
        assert_eq!(percent(19_999_000, 20.0), 99);
        assert_eq!(percent(25_000_000, 20.0), 99);
        assert_eq!(percent(1, 0.0), 0);
        assert_eq!(percent(1, f64::NAN), 0);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let mut tail = StderrTail::new(2);
        assert_eq!(tail.summary(), "no output on stderr");
        for l in ["a", "", "b", "c"] {
            tail.push(l);
        }
        assert_eq!(tail.summary(), "b | c");
        tail.push(&"x".repeat(1000));
        assert!(tail.summary().ends_with('…'));
    }
}
