//! Admitting an HLS or key request without I/O: where the token is, which proof admits the
//! request, and whether its subject is on a deny-list. This is the one copy of the rule: the
//! Pingora edge (`edge-proxy/src/gate/admission.rs`) and the proxy-wasm filter both call
//! [`admit_session`], and [`check_revocation`] for viewer JWTs.
//!
//! 1. the edge's own EdgeAuth token, from the path segment (`/hls/{v}/{name}=<escaped>/...`),
//!    then the query, then the cookie, verified by [`SessionSigner`];
//! 2. otherwise, with CloudFront configured, signed-URL parameters or signed cookies verified
//!    against the address as signed ([`signed_resource`]: `{public_base_url}{path}` and the
//!    query without CloudFront's parameters);
//! 3. otherwise `missing_token`.
//!
//! A verified session token whose session id, JWT id or user is denied is `revoked`, checked
//! in that order ([`check_revocation`]) against whatever deny-list the caller keeps
//! ([`DenyLookup`]: the filter's fetched [`DenyList`], the edge's shared table). Every refusal
//! carries a one-line detail naming the failing field, never the token ([`Refusal`]).

use std::collections::HashMap;

use serde_json::Value;

use crate::hls::AssetPath;

use super::cloudfront::{
    params_from_cookies, params_from_query, query_without_params, signed_resource, CloudFrontGrant,
    CloudFrontVerifier, SignatureMemo,
};
use super::edgeauth::RequestFacts;
use super::query::{query_param, query_without};
use super::session::{
    denial_detail, unescape_segment, SessionGrant, SessionSigner, SessionSubject,
};
use crate::Reason;

/// Where a request's token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    PathSegment,
    Query,
    Cookie,
}

/// Why a path with a token segment cannot be routed (the edge answers 404 / 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// `/{prefix}/{v}/{name}=<token>` with nothing after the token.
    NotFound,
    /// The token segment has a bad percent escape.
    BadPath,
}

impl PathError {
    /// The machine code (`not_found`, `bad_path`).
    pub fn code(self) -> &'static str {
        match self {
            PathError::NotFound => "not_found",
            PathError::BadPath => "bad_path",
        }
    }

    /// The HTTP status the edge and the filter answer with.
    pub fn status(self) -> u16 {
        match self {
            PathError::NotFound => 404,
            PathError::BadPath => 400,
        }
    }

    /// The sentence of the JSON error body.
    pub fn message(self) -> &'static str {
        match self {
            PathError::NotFound => NOT_FOUND_MESSAGE,
            PathError::BadPath => BAD_PATH_MESSAGE,
        }
    }
}

/// The sentence for a path nothing is served at.
pub const NOT_FOUND_MESSAGE: &str = "Nothing is served at this path.";
/// The sentence for a path that is not a plain relative file path.
pub const BAD_PATH_MESSAGE: &str = "The path must be a plain relative file path without dot segments, empty segments, backslashes or encoded slashes.";

/// A path with its token segment cut out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitPath {
    /// The token from the segment, unescaped; `None` without a segment.
    pub token: Option<String>,
    /// The path without the segment (what tokens are checked against and upstream sees).
    pub path: String,
}

/// Cuts a `{name}=<escaped token>` segment out of the third position of `path` (query
/// already removed): `/hls/{v}/{name}=<t>/720p/a.ts` -> `/hls/{v}/720p/a.ts`.
pub fn split_token_segment(path: &str, name: &str) -> Result<SplitPath, PathError> {
    let mut parts = path.splitn(5, '/');
    let (Some(""), Some(top), Some(video), Some(segment)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(unsplit(path));
    };
    let Some(escaped) = segment
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('='))
    else {
        return Ok(unsplit(path));
    };
    let rest = parts.next().ok_or(PathError::NotFound)?;
    let token = unescape_segment(escaped).ok_or(PathError::BadPath)?;
    if rest.is_empty() {
        return Err(PathError::NotFound);
    }
    Ok(SplitPath {
        token: Some(token),
        path: format!("/{top}/{video}/{rest}"),
    })
}

/// The path a token is checked against, as the edge forms it: under `/hls/{v}/` the tail is
/// percent-decoded and normalized by [`AssetPath`] (`/hls/{v}/seg%20001.ts` ->
/// `/hls/{v}/seg 001.ts`; a tail it refuses is `BadPath`); any other path is used as sent.
pub fn token_path(path: &str) -> Result<String, PathError> {
    let Some(rest) = path.strip_prefix("/hls/") else {
        return Ok(path.to_string());
    };
    match rest.split_once('/') {
        Some((video_id, tail)) if !tail.is_empty() => AssetPath::parse(tail)
            .map(|p| p.edge_path(video_id))
            .map_err(|_| PathError::BadPath),
        _ => Ok(path.to_string()),
    }
}

fn unsplit(path: &str) -> SplitPath {
    SplitPath {
        token: None,
        path: path.to_string(),
    }
}

/// Every `Cookie` header of a request as one (HTTP/1.1 clients may send several, and HTTP/2
/// splits cookies into fields), joined with `"; "`; the usual single header is borrowed.
pub fn joined_cookie_header<'a>(values: &[&'a str]) -> Option<std::borrow::Cow<'a, str>> {
    match values {
        [] => None,
        [one] => Some(std::borrow::Cow::Borrowed(*one)),
        several => Some(std::borrow::Cow::Owned(several.join("; "))),
    }
}

/// The value of cookie `name` in a `Cookie` header, as sent.
pub fn cookie_value<'h>(cookie_header: &'h str, name: &str) -> Option<&'h str> {
    cookie_header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// `cookie_header` without the `name` cookie and CloudFront's signed cookies; `None` when
/// nothing is left.
pub fn cookie_header_without(cookie_header: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = cookie_header
        .split(';')
        .map(str::trim)
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k).trim();
            !pair.is_empty() && key != name && !key.starts_with("CloudFront-")
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// `query` without the token `name` and CloudFront's parameters: what the origin may see.
pub fn origin_query(query: Option<&str>, name: &str) -> Option<String> {
    let without_cf = query_without_params(query);
    query_without(without_cf.as_deref(), name)
}

/// The token a request presents: path segment, then query, then cookie.
pub fn presented(
    path_token: Option<String>,
    query: Option<&str>,
    cookie_header: Option<&str>,
    name: &str,
) -> Option<(String, Carrier)> {
    if let Some(token) = path_token {
        return Some((token, Carrier::PathSegment));
    }
    if let Some(token) = query_param(query, name) {
        return Some((token.to_string(), Carrier::Query));
    }
    cookie_header
        .and_then(|h| cookie_value(h, name))
        .map(|token| (token.to_string(), Carrier::Cookie))
}

/// What admitted a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// The edge's EdgeAuth token (manifest or session), exactly as presented.
    Session {
        grant: Box<SessionGrant>,
        token: String,
        carrier: Carrier,
    },
    CloudFront(CloudFrontGrant),
}

/// What a revocation names (on the wire: `session`, `jti`, `user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevokedKind {
    Session,
    Jti,
    User,
}

impl RevokedKind {
    /// The wire label (`session`, `jti`, `user`).
    pub fn label(self) -> &'static str {
        match self {
            RevokedKind::Session => "session",
            RevokedKind::Jti => "jti",
            RevokedKind::User => "user",
        }
    }

    /// Parses a wire label.
    pub fn from_label(label: &str) -> Option<RevokedKind> {
        [RevokedKind::Session, RevokedKind::Jti, RevokedKind::User]
            .into_iter()
            .find(|k| k.label() == label)
    }
}

/// The edge's deny-list (`GET /internal/v1/revocations`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyList {
    entries: HashMap<(RevokedKind, String), u64>,
    /// The list's `generatedAt`.
    pub generated_at: u64,
}

impl DenyList {
    /// Parses `{"revocations":[{"kind","id","expiresAt"}],"generatedAt"}`.
    pub fn from_json(body: &[u8]) -> Result<DenyList, Reason> {
        // Read through `Value` (not a derive) to keep the proxy-wasm filter small.
        let wire: Value = serde_json::from_slice(body).map_err(|_| Reason::Malformed)?;
        let list = wire
            .get("revocations")
            .and_then(Value::as_array)
            .ok_or(Reason::Malformed)?;
        let mut entries = HashMap::with_capacity(list.len());
        for e in list {
            let kind = e
                .get("kind")
                .and_then(Value::as_str)
                .and_then(RevokedKind::from_label)
                .ok_or(Reason::Malformed)?;
            let id = e
                .get("id")
                .and_then(Value::as_str)
                .ok_or(Reason::Malformed)?;
            let expires_at = e
                .get("expiresAt")
                .and_then(Value::as_u64)
                .ok_or(Reason::Malformed)?;
            let slot = entries.entry((kind, id.to_string())).or_insert(0);
            *slot = (*slot).max(expires_at);
        }
        let generated_at = match wire.get("generatedAt") {
            None => 0,
            Some(v) => v.as_u64().ok_or(Reason::Malformed)?,
        };
        Ok(DenyList {
            entries,
            generated_at,
        })
    }

    /// Adds one entry (tests, local revocations).
    pub fn insert(&mut self, kind: RevokedKind, id: &str, expires_at: u64) {
        self.entries.insert((kind, id.to_string()), expires_at);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True without entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl DenyLookup for DenyList {
    fn is_revoked(&self, kind: RevokedKind, id: &str, now_unix: u64) -> bool {
        self.entries
            .get(&(kind, id.to_string()))
            .is_some_and(|&until| now_unix < until)
    }
}

/// A deny-list as the admission rule reads it.
pub trait DenyLookup {
    /// True when `(kind, id)` is denied at `now_unix` (an entry lapses at its expiry).
    fn is_revoked(&self, kind: RevokedKind, id: &str, now_unix: u64) -> bool;
}

/// What a revocation of `subject` could name, in the order it is checked: its session id,
/// its JWT id, its user.
pub fn revocation_candidates(subject: &SessionSubject) -> [(RevokedKind, Option<&str>); 3] {
    [
        (RevokedKind::Session, subject.session_id.as_deref()),
        (RevokedKind::Jti, subject.jti.as_deref()),
        (RevokedKind::User, subject.user_id.as_deref()),
    ]
}

/// The first of session id, JWT id, user that `deny` denies, in that order.
pub fn check_revocation(
    deny: &dyn DenyLookup,
    subject: &SessionSubject,
    now_unix: u64,
) -> Result<(), RevokedKind> {
    for (kind, id) in revocation_candidates(subject) {
        if let Some(id) = id {
            if deny.is_revoked(kind, id, now_unix) {
                return Err(kind);
            }
        }
    }
    Ok(())
}

/// A refusal of [`admit_session`]: the reason, and a one-line detail naming the failing field
/// (never the token) for logs and the edge's opt-in `X-Edge-Denial` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub detail: String,
}

/// CloudFront verification for [`admit_session`]: the verifier, the public base URL the
/// signed resource is formed from, and where verified signatures are remembered (`None`:
/// nowhere, every request pays the public-key operation).
pub struct CloudFrontCheck<'a> {
    pub verifier: &'a CloudFrontVerifier,
    pub public_base_url: &'a str,
    pub memo: Option<&'a dyn SignatureMemo>,
}

/// What a request presents, where a token or signature may travel.
#[derive(Debug, Clone, Default)]
pub struct Carriers<'a> {
    /// The token cut out of a path segment ([`split_token_segment`]).
    pub path_token: Option<String>,
    /// The path as requested (token segment removed, still percent-encoded): what CloudFront
    /// signatures cover, with the query.
    pub raw_path: &'a str,
    pub query: Option<&'a str>,
    /// Every `Cookie` header of the request, joined with `"; "`.
    pub cookie_header: Option<&'a str>,
}

/// Admits a request for `facts.path` (token segment already removed, no query); `deny` is
/// consulted for a verified session token.
pub fn admit_session(
    signer: &SessionSigner,
    cloudfront: Option<&CloudFrontCheck>,
    carriers: Carriers,
    facts: &RequestFacts,
    deny: Option<&dyn DenyLookup>,
) -> Result<Admitted, Refusal> {
    let name = signer.token_name();
    let Carriers {
        path_token,
        raw_path,
        query,
        cookie_header,
    } = carriers;
    let Some((token, carrier)) = presented(path_token, query, cookie_header, name) else {
        if let Some(cf) = cloudfront {
            let params = match params_from_query(query.unwrap_or_default()) {
                Some(params) => Some(params),
                None => cookie_header.and_then(params_from_cookies),
            };
            if let Some(params) = params {
                let resource = signed_resource(cf.public_base_url, raw_path, query);
                let verdict = match cf.memo {
                    Some(memo) => cf.verifier.verify_memoized(
                        &params,
                        &resource,
                        facts.client_ip,
                        facts.now_unix,
                        memo,
                    ),
                    None => cf
                        .verifier
                        .verify(&params, &resource, facts.client_ip, facts.now_unix),
                };
                return verdict.map(Admitted::CloudFront).map_err(|reason| Refusal {
                    reason,
                    detail: cloudfront_detail(reason, params.key_pair_id, &resource, facts),
                });
            }
        }
        return Err(Refusal {
            reason: Reason::MissingToken,
            detail: format!(
                "no {name} in the path, query or cookie{}",
                if cloudfront.is_some() {
                    ", and no CloudFront signature"
                } else {
                    ""
                }
            ),
        });
    };
    let grant = signer.verify(&token, facts).map_err(|reason| Refusal {
        reason,
        detail: denial_detail(reason, &token, signer.field_delimiter(), facts),
    })?;
    if let Some(deny) = deny {
        check_revocation(deny, &grant.subject, facts.now_unix).map_err(|kind| Refusal {
            reason: Reason::Revoked,
            detail: format!("{} revoked", kind.label()),
        })?;
    }
    Ok(Admitted::Session {
        grant: Box::new(grant),
        token,
        carrier,
    })
}

/// The detail of a CloudFront refusal for `resource`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::edgeauth::{Algorithm, EdgeAuth, EdgeAuthConfig};
    use crate::token::session::{escape_segment, session_id};

    const V: &str = "3f1c2a9e-5b7d-4c1e-9a2b-8d6f0e4c3b21";

    fn signer() -> SessionSigner {
        SessionSigner::new(EdgeAuth::new(EdgeAuthConfig {
            key: vec![7; 32],
            algorithm: Algorithm::Sha256,
            token_name: "hdnts".into(),
            field_delimiter: '~',
            acl_delimiter: '!',
            escape_early: false,
        }))
    }

    fn subject() -> SessionSubject {
        SessionSubject {
            session_id: Some(session_id([1; 16])),
            user_id: Some("u1".into()),
            jti: Some("j1".into()),
        }
    }

    /// The rule with the detail dropped, for comparing reasons.
    fn admit_session(
        signer: &SessionSigner,
        cloudfront: Option<&CloudFrontCheck>,
        carriers: Carriers,
        facts: &RequestFacts,
        deny: Option<&DenyList>,
    ) -> Result<Admitted, Reason> {
        super::admit_session(
            signer,
            cloudfront,
            carriers,
            facts,
            deny.map(|d| d as &dyn DenyLookup),
        )
        .map_err(|refusal| refusal.reason)
    }

    fn carriers<'a>(
        path_token: Option<String>,
        query: Option<&'a str>,
        cookie_header: Option<&'a str>,
        raw_path: &'a str,
    ) -> Carriers<'a> {
        Carriers {
            path_token,
            raw_path,
            query,
            cookie_header,
        }
    }

    fn facts(path: &str) -> RequestFacts<'_> {
        RequestFacts {
            path,
            client_ip: None,
            now_unix: 1_000,
        }
    }

    #[test]
    fn token_segments_are_cut_out() {
        let s = split_token_segment("/hls/v/hdnts=exp=1~acl=%2Fhls%2Fv%2F*/720p/a.ts", "hdnts")
            .unwrap();
        assert_eq!(s.token.as_deref(), Some("exp=1~acl=/hls/v/*"));
        assert_eq!(s.path, "/hls/v/720p/a.ts");
        let s = split_token_segment("/hls/v/720p/a.ts", "hdnts").unwrap();
        assert_eq!((s.token, s.path.as_str()), (None, "/hls/v/720p/a.ts"));
        assert_eq!(
            split_token_segment("/hls/v/hdnts=x", "hdnts"),
            Err(PathError::NotFound)
        );
        assert_eq!(
            split_token_segment("/hls/v/hdnts=x/", "hdnts"),
            Err(PathError::NotFound)
        );
        assert_eq!(
            split_token_segment("/hls/v/hdnts=%zz/a", "hdnts"),
            Err(PathError::BadPath)
        );
        assert_eq!(split_token_segment("/x", "hdnts").unwrap().path, "/x");
    }

    #[test]
    fn hls_paths_are_normalized_like_the_edge() {
        assert_eq!(
            token_path("/hls/v/720p/seg%20001.ts").unwrap(),
            "/hls/v/720p/seg 001.ts"
        );
        assert_eq!(token_path("/keys/v/k1").unwrap(), "/keys/v/k1");
        assert_eq!(token_path("/hls/v/a/../b.ts"), Err(PathError::BadPath));
        assert_eq!(token_path("/hls/v/%zz.ts"), Err(PathError::BadPath));
    }

    #[test]
    fn several_cookie_headers_are_one() {
        assert_eq!(joined_cookie_header(&[]), None);
        assert_eq!(joined_cookie_header(&["a=1"]).as_deref(), Some("a=1"));
        assert_eq!(
            joined_cookie_header(&["a=1; hdnts=exp=2~hmac=ff", "CloudFront-Policy=p"]).as_deref(),
            Some("a=1; hdnts=exp=2~hmac=ff; CloudFront-Policy=p")
        );
    }

    #[test]
    fn cookies_and_queries_are_cleaned() {
        let h = "a=1; hdnts=tok; CloudFront-Signature=s; b=2";
        assert_eq!(cookie_value(h, "hdnts"), Some("tok"));
        assert_eq!(
            cookie_header_without(h, "hdnts").as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(cookie_header_without("hdnts=x", "hdnts"), None);
        assert_eq!(
            origin_query(Some("a=1&hdnts=x&Signature=s&Key-Pair-Id=k"), "hdnts").as_deref(),
            Some("a=1")
        );
    }

    #[test]
    fn carriers_in_the_edge_order() {
        let s = signer();
        let token = s.mint_session(V, &subject(), 2_000, None);
        let path = format!("/hls/{V}/720p/a.ts");
        let segment = format!("/hls/{V}/hdnts={}/720p/a.ts", escape_segment(&token));
        let split = split_token_segment(&segment, "hdnts").unwrap();
        assert_eq!(split.path, path);
        let got = admit_session(
            &s,
            None,
            carriers(split.token, None, None, &path),
            &facts(&path),
            None,
        );
        assert!(matches!(
            got,
            Ok(Admitted::Session {
                carrier: Carrier::PathSegment,
                ..
            })
        ));
        let q = format!("hdnts={token}");
        let got = admit_session(
            &s,
            None,
            carriers(None, Some(&q), None, &path),
            &facts(&path),
            None,
        );
        assert!(matches!(
            got,
            Ok(Admitted::Session {
                carrier: Carrier::Query,
                ..
            })
        ));
        let c = format!("x=1; hdnts={token}");
        let got = admit_session(
            &s,
            None,
            carriers(None, None, Some(&c), &path),
            &facts(&path),
            None,
        );
        assert!(matches!(
            got,
            Ok(Admitted::Session {
                carrier: Carrier::Cookie,
                ..
            })
        ));
        assert_eq!(
            admit_session(
                &s,
                None,
                carriers(None, None, None, &path),
                &facts(&path),
                None
            ),
            Err(Reason::MissingToken)
        );
        let other = "/hls/other/a.ts";
        assert_eq!(
            admit_session(
                &s,
                None,
                carriers(None, Some(&q), None, other),
                &facts(other),
                None
            ),
            Err(Reason::AclMismatch)
        );
    }

    #[test]
    fn cloudfront_urls_are_checked_with_their_query() {
        use crate::token::cloudfront::{CloudFrontSigner, HashAlgorithm};
        let pem = include_str!("cloudfront/testdata/p256.pkcs8.pem");
        let cf_signer = CloudFrontSigner::from_pem("KCF", pem, HashAlgorithm::Sha256).unwrap();
        let mut verifier = CloudFrontVerifier::new();
        verifier.add_signer(&cf_signer);
        let base = "https://edge.example";
        let check = CloudFrontCheck {
            verifier: &verifier,
            public_base_url: base,
            memo: None,
        };
        let path = format!("/hls/{V}/720p/a.ts");
        // botocore signs the whole address, query included, and appends its parameters.
        let signed = cf_signer.signed_url_canned(&format!("{base}{path}?part=1&x=y"), 2_000);
        let query = signed.split_once('?').unwrap().1.to_string();
        let admit = |query: &str| {
            admit_session(
                &signer(),
                Some(&check),
                carriers(None, Some(query), None, &path),
                &facts(&path),
                None,
            )
        };
        assert!(matches!(admit(&query), Ok(Admitted::CloudFront(_))));
        // Another query, or none, is another address.
        assert_eq!(
            admit(&query.replace("part=1", "part=2")),
            Err(Reason::BadSignature)
        );
        assert_eq!(
            admit(&query.replace("part=1&x=y&", "")),
            Err(Reason::BadSignature)
        );
        assert_eq!(
            signed_resource(
                base,
                "/hls/v/a%20b.ts",
                Some("a=1&Signature=s&Key-Pair-Id=k")
            ),
            "https://edge.example/hls/v/a%20b.ts?a=1"
        );
        assert_eq!(
            signed_resource(base, "/hls/v/a.ts", Some("Expires=1&Signature=s")),
            "https://edge.example/hls/v/a.ts"
        );
    }

    #[test]
    fn refusals_name_the_failing_field_never_the_token() {
        let s = signer();
        let path = format!("/hls/{V}/a.ts");
        let expired = s.mint_session(V, &subject(), 999, None);
        let q = format!("hdnts={expired}");
        let refusal = super::admit_session(
            &s,
            None,
            carriers(None, Some(&q), None, &path),
            &facts(&path),
            None,
        )
        .unwrap_err();
        assert_eq!(refusal.reason, Reason::Expired);
        assert_eq!(refusal.detail, "exp=999 < now=1000");
        let refusal = super::admit_session(
            &s,
            None,
            carriers(None, None, None, &path),
            &facts(&path),
            None,
        )
        .unwrap_err();
        assert_eq!(refusal.detail, "no hdnts in the path, query or cookie");
        let mut deny = DenyList::default();
        deny.insert(RevokedKind::Jti, "j1", 2_000);
        let token = s.mint_session(V, &subject(), 2_000, None);
        let q = format!("hdnts={token}");
        let refusal = super::admit_session(
            &s,
            None,
            carriers(None, Some(&q), None, &path),
            &facts(&path),
            Some(&deny),
        )
        .unwrap_err();
        assert_eq!(
            (refusal.reason, refusal.detail.as_str()),
            (Reason::Revoked, "jti revoked")
        );
        assert!(!refusal.detail.contains("hmac"));
    }

    #[test]
    fn deny_list_revokes_by_session_jti_or_user() {
        let s = signer();
        let token = s.mint_session(V, &subject(), 2_000, None);
        let path = format!("/hls/{V}/a.ts");
        let q = format!("hdnts={token}");
        for kind in ["session", "jti", "user"] {
            let id = match kind {
                "session" => session_id([1; 16]),
                "jti" => "j1".into(),
                _ => "u1".into(),
            };
            let body = format!(
                r#"{{"revocations":[{{"kind":"{kind}","id":"{id}","expiresAt":1500}}],"generatedAt":999}}"#
            );
            let list = DenyList::from_json(body.as_bytes()).unwrap();
            assert_eq!(list.len(), 1);
            assert_eq!(
                admit_session(
                    &s,
                    None,
                    carriers(None, Some(&q), None, &path),
                    &facts(&path),
                    Some(&list)
                ),
                Err(Reason::Revoked),
                "{kind}"
            );
            let later = RequestFacts {
                now_unix: 1_500,
                ..facts(&path)
            };
            assert!(admit_session(
                &s,
                None,
                carriers(None, Some(&q), None, &path),
                &later,
                Some(&list)
            )
            .is_ok());
        }
        assert!(DenyList::from_json(b"{}").is_err());
        assert!(
            DenyList::from_json(br#"{"revocations":[{"kind":"x","id":"a","expiresAt":1}]}"#)
                .is_err()
        );
    }
}
