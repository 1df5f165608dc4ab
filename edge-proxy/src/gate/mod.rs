//! Who is asking: every credential a request can present, verified.
//!
//! - [`viewer`]: viewer JWTs (keys, JWKS, the verified-token cache).
//! - [`sessions`]: the manifest and session tokens the edge mints (EdgeAuth v2);
//!   [`propagation`]: how they travel on child requests (query, path segment, cookie).
//! - [`admission`]: admitting an HLS or key request by its token or a CloudFront signature,
//!   with the rule of `playback::token::admission`; [`cloudfront_memo`] remembers verified
//!   CloudFront signatures.
//! - [`revocation`]: the deny-list of sessions, JWT ids and users, shared through Redis.
//! - [`cdn`]: a CDN pulling with the shared secret.
//!
//! [`Gate`] holds one of each for the request handlers.

pub mod admission;
pub mod cdn;
pub mod cloudfront_memo;
pub mod propagation;
pub mod revocation;
pub mod sessions;
pub mod viewer;

use std::sync::Arc;

use admission::{Admission, CloudFront};
use cdn::CdnPull;
use revocation::Revocations;
use sessions::Sessions;
use viewer::ViewerAuth;

/// The credential checks of this edge; one per process.
pub struct Gate {
    pub viewers: ViewerAuth,
    pub sessions: Sessions,
    pub revocations: Arc<Revocations>,
    /// `None` unless `[cloudfront]` names public keys.
    pub cloudfront: Option<CloudFront>,
    /// `None` unless `[cdn] shared_secret_file` is set.
    pub cdn: Option<CdnPull>,
}

impl Gate {
    /// The parts [`Admission`] needs.
    pub fn admission(&self) -> Admission<'_> {
        Admission {
            sessions: &self.sessions,
            cloudfront: self.cloudfront.as_ref(),
            revocations: &self.revocations,
        }
    }
}
