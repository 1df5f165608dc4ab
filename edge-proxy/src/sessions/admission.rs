//! Admitting an HLS or key request: find the token, verify it for the request's path, client
//! and time, and refuse revoked sessions, JWTs and users.
//!
//! Order: the edge's own token (EdgeAuth, any carrier) when one is presented; otherwise, with
//! `[cloudfront]` configured, CloudFront signed-URL parameters or signed cookies, verified
//! against the address as CloudFront signs it (`{public_base_url}{path as requested}` and the
//! query without CloudFront's parameters); otherwise `missing_token`. Every refusal records a
//! one-line detail naming the failing field (never the token) for logs and the opt-in
//! `X-Edge-Denial` header.

use pingora::http::RequestHeader;
use playback::token::cloudfront::{params_from_cookies, params_from_query, signed_resource};
use playback::token::edgeauth::RequestFacts;
use playback::token::session::{denial_detail, SessionGrant};
use playback::Reason;

use super::propagation::{cloudfront_pairs, cookie_header, presented, Carrier};
use crate::edge::{now_unix, Edge};
use crate::errors::EdgeError;
use crate::serve::Subject;

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

/// Admits `req` for the edge path `path` (token segment already removed).
pub async fn admit(
    edge: &Edge,
    req: &RequestHeader,
    path: &str,
    path_token: Option<String>,
    subject: &mut Subject,
) -> Result<Proof, EdgeError> {
    let facts = RequestFacts {
        path,
        client_ip: subject.client_ip,
        now_unix: now_unix(),
    };
    let name = edge.sessions.token_name();
    let Some((token, carrier)) = presented(req, name, path_token) else {
        if let Some(proof) = admit_cloudfront(edge, req, &facts, subject)? {
            return Ok(proof);
        }
        subject.denial_detail = Some(format!(
            "no {name} in the path, query or cookie{}",
            if edge.cloudfront.is_some() {
                ", and no CloudFront signature"
            } else {
                ""
            }
        ));
        return Err(EdgeError::UrlToken(Reason::MissingToken));
    };
    let delimiter = edge.sessions.signer.edge_auth().config().field_delimiter;
    let grant = edge
        .sessions
        .signer
        .verify(&token, &facts)
        .map_err(|reason| {
            subject.denial_detail = Some(denial_detail(reason, &token, delimiter, &facts));
            EdgeError::UrlToken(reason)
        })?;
    subject.user_id.clone_from(&grant.subject.user_id);
    subject.session_id.clone_from(&grant.subject.session_id);
    if let Err(revoked) = edge.revocations.check(&grant.subject).await {
        subject.denial_detail = Some(format!("{} revoked", revoked.kind.label()));
        return Err(EdgeError::UrlToken(Reason::Revoked));
    }
    Ok(Proof::Session {
        grant: Box::new(grant),
        token,
        carrier,
    })
}

/// CloudFront parameters or cookies on `req`, verified; `None` when there are none (or
/// CloudFront is not configured).
fn admit_cloudfront(
    edge: &Edge,
    req: &RequestHeader,
    facts: &RequestFacts,
    subject: &mut Subject,
) -> Result<Option<Proof>, EdgeError> {
    let Some(verifier) = &edge.cloudfront else {
        return Ok(None);
    };
    let query = req.uri.query();
    let cookies = cookie_header(&req.headers);
    let (params, query_pairs) = match params_from_query(query.unwrap_or_default()) {
        Some(params) => (params, cloudfront_pairs(query)),
        None => match cookies.as_deref().and_then(params_from_cookies) {
            Some(params) => (params, None),
            None => return Ok(None),
        },
    };
    let resource = signed_resource(&edge.public_base_url, req.uri.path(), query);
    let verdict = verifier.verify_memoized(
        &params,
        &resource,
        facts.client_ip,
        facts.now_unix,
        &edge.cloudfront_signatures,
    );
    match verdict {
        Ok(_grant) => Ok(Some(Proof::CloudFront { query_pairs })),
        Err(reason) => {
            subject.denial_detail = Some(cloudfront_detail(
                reason,
                params.key_pair_id,
                &resource,
                facts,
            ));
            Err(EdgeError::UrlToken(reason))
        }
    }
}

fn cloudfront_detail(
    reason: Reason,
    key_pair_id: &str,
    resource: &str,
    facts: &RequestFacts,
) -> String {
    match reason {
        Reason::UnknownKey => format!("Key-Pair-Id={key_pair_id} is not configured"),
        Reason::Expired => format!("CloudFront DateLessThan <= now={}", facts.now_unix),
        Reason::NotYetValid => format!("CloudFront DateGreaterThan > now={}", facts.now_unix),
        Reason::AclMismatch => format!("CloudFront policy Resource does not cover {resource}"),
        Reason::IpMismatch => match facts.client_ip {
            Some(ip) => format!("CloudFront policy IpAddress does not match client={ip}"),
            None => "CloudFront policy IpAddress set but the client address is unknown".into(),
        },
        Reason::BadSignature => {
            format!("CloudFront Signature does not verify with Key-Pair-Id={key_pair_id}")
        }
        other => format!("CloudFront: {}", other.code()),
    }
}
