//! What the edge reads off an MPD before rewriting it: whether it is live (`type="dynamic"`)
//! and how long the presentation lasts (`mediaPresentationDuration`), which decides how long a
//! viewer's session token lives. Only the root element is read.

use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

/// The root element's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MpdFacts {
    /// `type="dynamic"`: a live presentation the player refreshes.
    pub dynamic: bool,
    /// `mediaPresentationDuration` rounded up to whole seconds, when present and valid.
    pub duration_secs: Option<u64>,
}

/// The facts of `input`'s root element, or `None` when it does not start as an MPD.
pub fn mpd_facts(input: &str) -> Option<MpdFacts> {
    let mut reader = Reader::from_str(input);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => {
                if e.local_name().as_ref() != b"MPD" {
                    return None;
                }
                let mut facts = MpdFacts::default();
                for attribute in e.attributes().flatten() {
                    let value = attribute.normalized_value(XmlVersion::Implicit1_0).ok()?;
                    match attribute.key.as_ref() {
                        b"type" => facts.dynamic = value.trim() == "dynamic",
                        b"mediaPresentationDuration" => {
                            facts.duration_secs =
                                parse_duration_secs(&value).map(|secs| secs.ceil() as u64);
                        }
                        _ => {}
                    }
                }
                return Some(facts);
            }
            Event::Eof | Event::DocType(_) => return None,
            _ => {}
        }
    }
}

/// An `xs:duration` (`P1DT2H3M4.5S`) in seconds; years and months count as 365 and 30 days.
/// Negative or malformed durations are `None`.
pub fn parse_duration_secs(text: &str) -> Option<f64> {
    let body = text.trim().strip_prefix('P')?;
    let (date, time) = match body.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (body, None),
    };
    let mut total = 0.0;
    let mut any = false;
    for (part, units) in [
        (
            date,
            &[
                ('Y', 365.0 * 86_400.0),
                ('M', 30.0 * 86_400.0),
                ('D', 86_400.0),
            ][..],
        ),
        (
            time.unwrap_or(""),
            &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)][..],
        ),
    ] {
        let mut rest = part;
        let mut next_unit = 0;
        while !rest.is_empty() {
            let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
            let number: f64 = rest[..end].parse().ok()?;
            let unit = rest[end..].chars().next()?;
            let position = units[next_unit..].iter().position(|(u, _)| *u == unit)?;
            // Fractions only on the last (seconds) field, as the grammar says.
            if rest[..end].contains('.') && unit != 'S' {
                return None;
            }
            total += number * units[next_unit + position].1;
            next_unit += position + 1;
            rest = &rest[end + unit.len_utf8()..];
            any = true;
        }
    }
    (any && total.is_finite()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("PT2H0M0.000S"), Some(7_200.0));
        assert_eq!(parse_duration_secs("PT10.5S"), Some(10.5));
        assert_eq!(parse_duration_secs("P1DT1M"), Some(86_460.0));
        assert_eq!(parse_duration_secs("PT1M30S"), Some(90.0));
        for bad in [
            "", "P", "PT", "-PT1S", "PT1.5M", "PT1S1M", "T1S", "PT1X", "PTS",
        ] {
            assert_eq!(parse_duration_secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn root_facts() {
        let facts = mpd_facts(
            "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\" mediaPresentationDuration=\"PT9.6S\"><Period/></MPD>",
        );
        assert_eq!(
            facts,
            Some(MpdFacts {
                dynamic: false,
                duration_secs: Some(10)
            })
        );
        let live = mpd_facts("<MPD type=\"dynamic\"/>").unwrap();
        assert!(live.dynamic);
        assert_eq!(live.duration_secs, None);
        assert_eq!(mpd_facts("<html/>"), None);
        assert_eq!(mpd_facts("#EXTM3U\n"), None);
    }
}
