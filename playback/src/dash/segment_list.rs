//! The fast path through a run of `<SegmentURL .../>` elements, which is most of a
//! `SegmentList` MPD (10,000 of them for a long title).
//!
//! Hand-written because quick-xml's event loop and attribute scan cost about 215 ns per
//! element (bench/README, "MPD rewrite"), twice the budget for such an MPD, while a run of
//! these elements has one shape. The scanner accepts only a strict subset of XML: optional
//! whitespace, `<SegmentURL`, attributes written `name="value"` (or single-quoted) with
//! whitespace before each, values without `<` or `&`, then `/>`; URL values must be plain
//! relative URLs (`hls::uri::is_plain_relative`, the rule the event parser's path applies). It
//! stops at the first byte that is anything else and the event parser takes over from there,
//! so what it accepts is rewritten exactly as the parser's path would rewrite it (a test and
//! the `mpd_rewrite` fuzz target compare the two).

use crate::hls::uri::is_plain_relative;

/// Most URL attributes (`media`, `index`) one element may carry on the fast path.
const MAX_URLS: usize = 2;

/// What a run left behind: the bytes it consumed and the whitespace before its last element
/// (empty when there was none).
pub(super) struct Run<'i> {
    pub consumed: usize,
    pub indent: &'i str,
}

/// Copies the run of plain `SegmentURL` elements at the start of `input` into `out`, each URL
/// followed by `?{stamp}` when there is one (query mode) or left as written (the token
/// travels in a path segment or a cookie).
pub(super) fn copy_run<'i>(input: &'i str, stamp: Option<&str>, out: &mut String) -> Run<'i> {
    let mut run = Run {
        consumed: 0,
        indent: "",
    };
    while let Some(element) = scan(&input[run.consumed..]) {
        let at = run.consumed;
        let mut copied = at;
        if let Some(stamp) = stamp {
            for &to in &element.url_ends[..element.url_count] {
                out.push_str(&input[copied..at + to]);
                out.push('?');
                out.push_str(stamp);
                copied = at + to;
            }
        }
        out.push_str(&input[copied..at + element.len]);
        if element.whitespace > 0 {
            run.indent = &input[at..at + element.whitespace];
        }
        run.consumed += element.len;
    }
    run
}

/// One element of the accepted shape, offsets relative to where the scan began.
struct Element {
    /// Through the closing `/>`.
    len: usize,
    /// Leading whitespace.
    whitespace: usize,
    /// Where the values of the `media` and `index` attributes end.
    url_ends: [usize; MAX_URLS],
    url_count: usize,
}

const SPACE: u8 = 1;
const NAME: u8 = 2;
const NAME_START: u8 = 4;
/// Ends the fast path inside any value: markup or a reference.
const MARKUP: u8 = 8;

/// The class bits of every byte, looked up once per byte.
static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut class = 0;
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            class |= SPACE;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') {
            class |= NAME;
        }
        if b.is_ascii_alphabetic() || b == b'_' {
            class |= NAME_START;
        }
        if b == b'<' || b == b'&' {
            class |= MARKUP;
        }
        table[i] = class;
        i += 1;
    }
    table
}

fn class(b: u8) -> u8 {
    CLASS[b as usize]
}

/// Bytes of class `bits` from `from` on.
fn count(b: &[u8], from: usize, bits: u8) -> usize {
    b.get(from..).map_or(0, |rest| {
        rest.iter().take_while(|&&c| class(c) & bits != 0).count()
    })
}

/// The element at the start of `text`, if it has the accepted shape.
fn scan(text: &str) -> Option<Element> {
    let b = text.as_bytes();
    const OPEN: &[u8] = b"<SegmentURL";
    let whitespace = count(b, 0, SPACE);
    let mut i = whitespace;
    if !b.get(i..)?.starts_with(OPEN) {
        return None;
    }
    i += OPEN.len();
    let mut element = Element {
        len: 0,
        whitespace,
        url_ends: [0; MAX_URLS],
        url_count: 0,
    };
    loop {
        let gap = count(b, i, SPACE);
        i += gap;
        match *b.get(i)? {
            b'/' => {
                if *b.get(i + 1)? != b'>' {
                    return None;
                }
                element.len = i + 2;
                return Some(element);
            }
            first if gap > 0 && class(first) & NAME_START != 0 => {}
            _ => return None,
        }
        let name_start = i;
        i += 1 + count(b, i + 1, NAME);
        let name = &b[name_start..i];
        if *b.get(i)? != b'=' {
            return None;
        }
        let quote = *b.get(i + 1)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let is_url = name == b"media" || name == b"index";
        let value_start = i + 2;
        let len = b[value_start..]
            .iter()
            .position(|&c| c == quote || class(c) & MARKUP != 0)?;
        let value_end = value_start + len;
        if b[value_end] != quote {
            return None;
        }
        // Both ends are ASCII delimiters, so the slice is on character boundaries.
        if is_url && !is_plain_relative(&text[value_start..value_end]) {
            return None;
        }
        i = value_end + 1;
        if is_url {
            if element.url_count == MAX_URLS {
                return None;
            }
            element.url_ends[element.url_count] = value_end;
            element.url_count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str, stamp: Option<&str>) -> (String, usize, String) {
        let mut out = String::new();
        let run = copy_run(input, stamp, &mut out);
        (out, run.consumed, run.indent.to_string())
    }

    #[test]
    fn stamps_each_url_of_a_run_and_stops_at_anything_else() {
        let input = "\n  <SegmentURL media=\"s1.m4s\"/>\n  <SegmentURL mediaRange='0-9' media='s2.m4s' index=\"i2\" />\n </SegmentList>";
        let (out, consumed, indent) = run(input, Some("t=1"));
        assert_eq!(
            out,
            "\n  <SegmentURL media=\"s1.m4s?t=1\"/>\n  <SegmentURL mediaRange='0-9' media='s2.m4s?t=1' index=\"i2?t=1\" />"
        );
        assert_eq!(&input[consumed..], "\n </SegmentList>");
        assert_eq!(indent, "\n  ");
        let (kept, _, _) = run(input, None);
        assert_eq!(kept, input[..consumed]);
    }

    #[test]
    fn leaves_every_other_shape_to_the_parser() {
        for input in [
            "<SegmentURL media=\"a&amp;b.m4s\"/>",
            "<SegmentURL media=\"/abs.m4s\"/>",
            "<SegmentURL media=\"http://o/x.m4s\"/>",
            "<SegmentURL media=\"x.m4s?y=1\"/>",
            "<SegmentURL media = \"x.m4s\"/>",
            "<SegmentURL media=x.m4s/>",
            "<SegmentURL media=\"x.m4s\"></SegmentURL>",
            "<SegmentURLs media=\"x.m4s\"/>",
            "<SegmentURL media=\"x.m4s\"index=\"y\"/>",
            "<SegmentURL media=\"x.m4s\" /",
            "<SegmentURL media=\"x.m4s",
            "<SegmentURL media=\"a\" media=\"b\" index=\"c\"/>",
            "<!-- c --><SegmentURL media=\"x.m4s\"/>",
            "<mpd:SegmentURL media=\"x.m4s\"/>",
            "<SegmentURL -a=\"x\"/>",
        ] {
            let (out, consumed, _) = run(input, Some("t=1"));
            assert_eq!((out.as_str(), consumed), ("", 0), "{input}");
        }
    }
}
