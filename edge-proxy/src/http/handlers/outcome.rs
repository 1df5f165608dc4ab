//! What a handler returns: the [`Outcome`] (a reply, or a segment to proxy) with the [`Ids`]
//! the request turned out to be about, or a [`Refused`] carrying the same ids as far as they
//! were learned. Its own file so the handlers and `dispatch` share it without importing each
//! other.

use playback::hls::AssetPath;

use crate::core::errors::{EdgeError, Failure};
use crate::delivery::segments::Audience;
use crate::http::reply::Reply;

/// How a request is answered.
pub enum Outcome {
    /// The edge answers itself.
    Reply(Reply),
    /// Pingora proxies the request to the HTTP or S3 origin.
    Proxy(UpstreamTarget),
}

/// A segment request for Pingora to proxy to the HTTP or S3 origin, through the segment cache.
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    pub video_id: String,
    /// The proven asset path; with the video id, the whole cache key.
    pub path: AssetPath,
    /// The viewer's query without the edge's token (forwarded to HTTP origins, never cached on).
    pub query: Option<String>,
    /// `Content-Type` the edge sets on the response (by extension).
    pub content_type: &'static str,
    pub audience: Audience,
}

/// Who and what a request was about, as the handler learned it (never a token).
#[derive(Debug, Clone, Default)]
pub struct Ids {
    pub video_id: Option<String>,
    pub user_id: Option<String>,
    /// The playback session (stream) the request belongs to.
    pub session_id: Option<String>,
    /// The license issued by this request (license and key endpoints).
    pub license_id: Option<String>,
}

impl Ids {
    /// The ids of a request about `video_id`.
    pub fn video(video_id: &str) -> Ids {
        Ids {
            video_id: Some(video_id.to_string()),
            ..Ids::default()
        }
    }

    /// A refusal of the request these ids describe.
    pub fn refused(&self, failure: impl Into<Failure>) -> Refused {
        Refused {
            failure: failure.into(),
            ids: Box::new(self.clone()),
        }
    }

    /// An answer to the request these ids describe.
    pub fn answered(self, outcome: Outcome) -> Answered {
        Answered { outcome, ids: self }
    }
}

/// A request answered, and what it was about.
pub struct Answered {
    pub outcome: Outcome,
    pub ids: Ids,
}

/// A request refused (or failed), and what it was about as far as it got.
#[derive(Debug)]
pub struct Refused {
    pub failure: Failure,
    /// Boxed: a refusal travels up through every handler's `Result`; keep that small.
    pub ids: Box<Ids>,
}

impl From<EdgeError> for Refused {
    fn from(error: EdgeError) -> Self {
        Refused {
            failure: error.into(),
            ids: Box::default(),
        }
    }
}

impl From<Failure> for Refused {
    fn from(failure: Failure) -> Self {
        Refused {
            failure,
            ids: Box::default(),
        }
    }
}
