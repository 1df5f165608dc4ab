//! Small text encodings shared by the token formats.

/// Percent-encodes every byte outside `A-Z a-z 0-9 - . _ @ :` so a value can sit inside a
/// `~`/`!`/`=`-delimited token without ambiguity.
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'@' | b':') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

/// Reverses [`percent_encode`]; `None` on a truncated or non-hex escape or invalid UTF-8.
pub(crate) fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_awkward_values() {
        for v in ["alice", "a~b!c=d%e f", "ünï", "user@example.com", ""] {
            let enc = percent_encode(v);
            assert!(!enc.contains(['~', '!', '=', ' ']));
            assert_eq!(percent_decode(&enc).as_deref(), Some(v));
        }
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%FF"), None);
    }
}
