//! The shapes of the ids the edge takes from outside (paths, headers, bodies): a video id is
//! the control plane's lowercase UUID; a key id and a stream (playback session) id are short
//! URL-safe tokens. Anything else is refused before it reaches a cache key, a log or the
//! control plane.

/// A lowercase, hyphenated UUID (`8-4-4-4-12` hex digits), the shape the control plane issues.
pub fn is_video_id(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// A stream id (a playback session id): 1..=128 of `[A-Za-z0-9._~-]`.
pub fn is_stream_id(id: &str) -> bool {
    is_key_id(id)
}

/// A key id: 1..=128 of `[A-Za-z0-9._~-]`, and not a dot segment.
pub fn is_key_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}
