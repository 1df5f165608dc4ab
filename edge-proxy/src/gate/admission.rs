//! Admitting an HLS or key request: the edge's side of `playback::token::admission`, whose
//! [`admit_session`] decides (which carrier, EdgeAuth or CloudFront, the revocation order, the
//! refusal detail) for the edge and the proxy-wasm filter alike. This module only hands it
//! the edge's parts: its session signer, CloudFront keys with the verified-signature memo, and
//! the revocation table ([`Revocations`] is the rule's deny-list).

use std::net::IpAddr;

use playback::token::admission::{admit_session, Admitted, Carriers, CloudFrontCheck};
use playback::token::cloudfront::CloudFrontVerifier;
use playback::token::edgeauth::RequestFacts;
use playback::token::session::SessionGrant;

use super::cloudfront_memo::VerifiedSignatures;
use super::propagation::{cloudfront_pairs, Carrier};
use super::revocation::Revocations;
use super::sessions::Sessions;
use crate::core::errors::{EdgeError, Failure};

/// What admitted the request.
pub enum Proof {
    /// The edge's EdgeAuth token (manifest or session), exactly as presented.
    Session {
        grant: Box<SessionGrant>,
        token: String,
        carrier: Carrier,
    },
    /// A CloudFront signed URL (its parameters, to re-stamp on child URIs) or signed cookies.
    CloudFront { query_pairs: Option<String> },
}

impl Proof {
    /// The viewer and session the proof names (a CloudFront signature names neither).
    pub fn session(&self) -> Option<&SessionGrant> {
        match self {
            Proof::Session { grant, .. } => Some(grant),
            Proof::CloudFront { .. } => None,
        }
    }
}

/// CloudFront signed URLs and cookies, when `[cloudfront]` names public keys.
pub struct CloudFront {
    pub verifier: CloudFrontVerifier,
    /// Signatures already verified (one public-key operation per signature).
    pub signatures: VerifiedSignatures,
    /// `server.public_base_url`, which signed resources are formed from.
    pub public_base_url: String,
}

/// The parts admission needs.
pub struct Admission<'a> {
    pub sessions: &'a Sessions,
    pub cloudfront: Option<&'a CloudFront>,
    pub revocations: &'a Revocations,
}

impl Admission<'_> {
    /// Admits a request for `checked_path` (the normalized path tokens are checked against)
    /// presenting `carriers`, from `client_ip` at `now_unix`.
    pub fn admit(
        &self,
        carriers: Carriers,
        checked_path: &str,
        client_ip: Option<IpAddr>,
        now_unix: u64,
    ) -> Result<Proof, Failure> {
        let facts = RequestFacts {
            path: checked_path,
            client_ip,
            now_unix,
        };
        let cloudfront = self.cloudfront.map(|cf| CloudFrontCheck {
            verifier: &cf.verifier,
            public_base_url: &cf.public_base_url,
            memo: Some(&cf.signatures),
        });
        let query = carriers.query;
        let admitted = admit_session(
            &self.sessions.signer,
            cloudfront.as_ref(),
            carriers,
            &facts,
            Some(self.revocations),
        )
        .map_err(|refusal| EdgeError::UrlToken(refusal.reason).because(refusal.detail))?;
        Ok(match admitted {
            Admitted::Session {
                grant,
                token,
                carrier,
            } => Proof::Session {
                grant,
                token,
                carrier,
            },
            Admitted::CloudFront(_) => Proof::CloudFront {
                query_pairs: cloudfront_pairs(query),
            },
        })
    }
}
