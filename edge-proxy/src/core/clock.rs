//! The clock. A request reads it once, when it arrives ([`Now::read`]), and every rule below
//! gets that instant as an argument, the way `playback` takes time; background tasks read it
//! when they run. Also the RFC 3339 form the edge's answers give times in.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One reading of the wall clock, in the units the rules use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Seconds since the Unix epoch (token and JWT checks, expiries).
    pub unix: u64,
    /// Milliseconds since the Unix epoch (stream slots, rate windows).
    pub unix_ms: u64,
}

impl Now {
    /// Reads the clock (0 if it is before the epoch).
    pub fn read() -> Now {
        Now::at_ms(unix_ms())
    }

    /// The same instant as a `SystemTime` (HTTP dates, conditional requests).
    pub fn system_time(self) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_millis(self.unix_ms)
    }

    /// The instant `unix_ms` milliseconds after the epoch.
    pub fn at_ms(unix_ms: u64) -> Now {
        Now {
            unix: unix_ms / 1000,
            unix_ms,
        }
    }
}

/// Seconds since the Unix epoch, for background work (requests use their [`Now`]).
pub fn now_unix() -> u64 {
    unix_ms() / 1000
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `unix` as RFC 3339 in UTC (`2023-11-14T22:13:20Z`).
pub fn rfc3339(unix: u64) -> String {
    OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn one_reading_in_both_units() {
        let now = Now::at_ms(1_700_000_000_999);
        assert_eq!((now.unix, now.unix_ms), (1_700_000_000, 1_700_000_000_999));
        let read = Now::read();
        assert_eq!(read.unix, read.unix_ms / 1000);
    }
}
