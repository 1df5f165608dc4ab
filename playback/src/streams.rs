//! The concurrent-stream rule: a viewer may hold at most their tier's number of open streams
//! (playback sessions) at once.
//!
//! A stream is open while its expiry is in the future. A request for a stream that is already
//! open refreshes it; a new stream opens when fewer than `max` are open (`0` = unlimited);
//! otherwise it is refused until the oldest open stream would expire. Only streams that were
//! *admitted* by this rule count and refresh: a session that merely fetched playlists or
//! segments is not open until a key or license request admits it, so touching a session never
//! opens a slot past the limit.
//!
//! Pure and clock-free: the caller passes the admitted streams it knows and the time. The edge
//! applies it to its local table (no Redis, or Redis down); its Redis script
//! (`edge-proxy/src/access/limits/streams.rs`) is the same rule in Lua for the shared sorted set, and
//! both are held to the same cases by the edge's tests.

/// An admitted stream as the limiter knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenStream<'a> {
    pub id: &'a str,
    /// Unix ms after which the stream is no longer open unless refreshed.
    pub expires_ms: u64,
}

/// What the rule decides for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotDecision {
    /// The stream is open: extend its expiry.
    Refresh,
    /// A slot is free: open the stream.
    Open,
    /// Every slot is taken; the first frees at `retry_at_ms` unless refreshed.
    Full { retry_at_ms: u64 },
}

/// Decides whether `stream_id` may play, given the viewer's `admitted` streams (expired ones
/// are ignored) and the tier's `max_streams` (0 = unlimited), at `now_ms`.
pub fn admit_stream<'a>(
    admitted: impl IntoIterator<Item = OpenStream<'a>>,
    stream_id: &str,
    max_streams: u32,
    now_ms: u64,
) -> SlotDecision {
    let mut open = 0usize;
    let mut oldest = u64::MAX;
    for stream in admitted {
        if stream.expires_ms <= now_ms {
            continue;
        }
        if stream.id == stream_id {
            return SlotDecision::Refresh;
        }
        open += 1;
        oldest = oldest.min(stream.expires_ms);
    }
    if max_streams == 0 || open < max_streams as usize {
        SlotDecision::Open
    } else {
        SlotDecision::Full {
            retry_at_ms: oldest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(id: &str, expires_ms: u64) -> OpenStream<'_> {
        OpenStream { id, expires_ms }
    }

    #[test]
    fn refresh_open_or_full() {
        let now = 1_000;
        let streams = [open("a", 5_000), open("b", 3_000)];
        assert_eq!(admit_stream(streams, "a", 2, now), SlotDecision::Refresh);
        assert_eq!(admit_stream(streams, "c", 3, now), SlotDecision::Open);
        assert_eq!(
            admit_stream(streams, "c", 2, now),
            SlotDecision::Full { retry_at_ms: 3_000 },
            "retry when the oldest frees"
        );
        assert_eq!(admit_stream(streams, "c", 0, now), SlotDecision::Open);
        assert_eq!(admit_stream([], "a", 1, now), SlotDecision::Open);
    }

    #[test]
    fn expired_streams_neither_count_nor_refresh() {
        let now = 3_000;
        let streams = [open("a", 3_000), open("b", 2_000), open("c", 9_000)];
        assert_eq!(admit_stream(streams, "d", 2, now), SlotDecision::Open);
        assert_eq!(
            admit_stream(streams, "a", 1, now),
            SlotDecision::Full { retry_at_ms: 9_000 },
            "an expired stream is a new stream"
        );
    }
}
