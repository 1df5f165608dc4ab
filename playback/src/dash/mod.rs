//! DASH: MPD rewriting so every follow-up request carries proof and every license request
//! reaches this edge, and the facts the edge reads off an MPD (live or not, how long).
//!
//! The MPD lives in the title's tree beside the HLS playlists (`/hls/{v}/manifest.mpd`), so
//! DASH and HLS viewers share one set of CMAF segments and one cache entry per segment.

mod facts;
mod rewrite;
mod segment_list;
mod template;

pub use facts::{mpd_facts, parse_duration_secs, MpdFacts};
#[doc(hidden)]
pub use rewrite::rewrite_mpd_event_by_event;
pub use rewrite::{rewrite_mpd, LicenseUrls, MpdContext, MpdError};
pub use template::{check_template, TemplateError};

/// File name of a title's DASH manifest in its directory.
pub const DASH_MANIFEST: &str = "manifest.mpd";

/// True when `path` names an MPD (by extension, ignoring any query).
pub fn is_mpd(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.len() >= 4 && path[path.len() - 4..].eq_ignore_ascii_case(".mpd")
}

#[cfg(test)]
mod tests;
