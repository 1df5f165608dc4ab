//! The two text encodings CloudFront signing depends on byte for byte: its URL-safe base64
//! variant, and JSON strings escaped the way Python's `json.dumps` (botocore) escapes them.

use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

const B64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 with `+` -> `-`, `=` -> `_`, `/` -> `~` (CloudFront's query-safe variant).
pub fn url_safe_b64_encode(data: &[u8]) -> String {
    B64.encode(data)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            c => c,
        })
        .collect()
}

/// Reverses [`url_safe_b64_encode`] (padding optional); `None` on any character outside the
/// variant's alphabet, including the standard `+`, `/` and `=`.
pub fn url_safe_b64_decode(text: &str) -> Option<Vec<u8>> {
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => Some('+'),
            '_' => Some('='),
            '~' => Some('/'),
            c if c.is_ascii_alphanumeric() => Some(c),
            _ => None,
        })
        .collect::<Option<String>>()?;
    B64.decode(standard).ok()
}

/// `s` as a JSON string literal exactly as Python's `json.dumps(s)` writes it (`ensure_ascii`):
/// `"` and `\` escaped, `\b \f \n \r \t` by name, every other character outside space..`~` as
/// lowercase `\uxxxx` (UTF-16 surrogate pairs above U+FFFF); `/` is left alone.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_variant() {
        // base64(b"\xfb\xff\xfe") = "+//+", base64(b"a") = "YQ=="
        assert_eq!(url_safe_b64_encode(&[0xfb, 0xff, 0xfe]), "-~~-");
        assert_eq!(url_safe_b64_encode(b"a"), "YQ__");
        assert_eq!(url_safe_b64_decode("-~~-"), Some(vec![0xfb, 0xff, 0xfe]));
        assert_eq!(url_safe_b64_decode("YQ__").as_deref(), Some(&b"a"[..]));
        assert_eq!(url_safe_b64_decode("YQ").as_deref(), Some(&b"a"[..]));
        for bad in ["+//+", "YQ==", "Y Q", "Y", "%41"] {
            assert_eq!(url_safe_b64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_strings_like_python() {
        // python3 -c 'import json; print(json.dumps("a\"b\\c/d\n\x01\x7f\xe9\U0001F600"))'
        assert_eq!(
            json_string("a\"b\\c/d\n\u{1}\u{7f}é\u{1F600}"),
            r#""a\"b\\c/d\n\u0001\u007f\u00e9\ud83d\ude00""#
        );
        assert_eq!(
            json_string("https://d1.cloudfront.net/a b?x=1&y=*"),
            r#""https://d1.cloudfront.net/a b?x=1&y=*""#
        );
    }
}
