//! One request's verdict, composed from `playback` decisions. Pure (no host calls): the glue
//! in `filter.rs` gathers the request facts from the host and applies the verdict.

use std::net::{IpAddr, SocketAddr};

use playback::denial::error_body;
use playback::jwt::{presented_jwt, JWT_QUERY_PARAM};
use playback::token::admission::{
    admit_session, check_revocation, cookie_header_without, joined_cookie_header, origin_query,
    split_token_segment, token_path, Carriers, CloudFrontCheck, DenyList, DenyLookup, PathError,
    RevokedKind,
};
use playback::token::edgeauth::RequestFacts;
use playback::token::session::SessionSubject;
use playback::Reason;

use crate::config::{Check, Config};

/// What the filter needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `:path`, query included.
    pub path: &'a str,
    pub authorization: Option<&'a str>,
    /// Every `Cookie` header, in order (HTTP/1.1 clients may send several; HTTP/2 splits one
    /// cookie per field).
    pub cookies: &'a [&'a str],
    /// Envoy's `source.address`: the TCP peer under `use_remote_address: true`.
    pub peer: Option<IpAddr>,
    /// Every instance of the forwarding header `client_address.header` names, in order.
    pub forwarded: &'a [&'a str],
    pub now_unix: u64,
}

impl<'a> Request<'a> {
    /// The client's address by the edge's rule (`playback::client_address`).
    fn client_ip(&self, config: &Config) -> Option<IpAddr> {
        let peer = self.peer?;
        Some(config.client_address.client_address(peer, self.forwarded))
    }

    /// All `Cookie` headers as one, joined like the edge joins them.
    fn cookie_header(&self) -> Option<std::borrow::Cow<'a, str>> {
        joined_cookie_header(self.cookies)
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No rule covers the path: forward untouched.
    Pass,
    /// Admitted: forward, rewriting `:path` when set, and replacing every `Cookie` header with
    /// one when `cookie` is set (`Some(None)` removes them all).
    Allow {
        path: Option<String>,
        cookie: Option<Option<String>>,
    },
    /// Refused with `status`, `x-edge-denial: code` and a JSON body.
    Deny { status: u32, code: &'static str },
}

impl Verdict {
    fn token(reason: Reason) -> Verdict {
        Verdict::Deny {
            status: 403,
            code: reason.code(),
        }
    }

    fn jwt(reason: Reason) -> Verdict {
        Verdict::Deny {
            status: 401,
            code: reason.code(),
        }
    }

    fn path(error: PathError) -> Verdict {
        Verdict::Deny {
            status: u32::from(error.status()),
            code: error.code(),
        }
    }
}

/// The JSON body of a denial: `{"error": code, "message": sentence}`, as the edge writes it.
pub fn denial_body(code: &str) -> String {
    // The path codes first: `not_found` is also a `Reason` (a missing title), with another sentence.
    let message = match code {
        "not_found" => PathError::NotFound.message(),
        "bad_path" => PathError::BadPath.message(),
        _ => match Reason::from_code(code) {
            Some(reason) => reason.message(),
            None => "The request could not be checked; try again later.",
        },
    };
    error_body(code, message)
}

/// The client address from the `source.address` property (`ip:port` or a bare address).
pub fn parse_source_address(value: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(value).ok()?.trim();
    text.parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| text.parse::<IpAddr>())
        .ok()
}

/// The verdict for `req` under `config`, with `deny` the latest deny-list (if any).
pub fn decide(config: &Config, deny: Option<&DenyList>, req: &Request) -> Verdict {
    let (path, query) = match req.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.path, None),
    };
    match config.rule_for(path) {
        None => Verdict::Pass,
        Some(Check::Session) => session(config, deny, req, path, query),
        Some(Check::Jwt) => jwt(config, deny, req, path, query),
    }
}

fn session(
    config: &Config,
    deny: Option<&DenyList>,
    req: &Request,
    path: &str,
    query: Option<&str>,
) -> Verdict {
    let name = config.token_name();
    let split = match split_token_segment(path, name) {
        Ok(split) => split,
        Err(error) => return Verdict::path(error),
    };
    let had_segment = split.token.is_some();
    let checked_path = match token_path(&split.path) {
        Ok(path) => path,
        Err(error) => return Verdict::path(error),
    };
    let facts = RequestFacts {
        path: &checked_path,
        client_ip: req.client_ip(config),
        now_unix: req.now_unix,
    };
    let cloudfront = config.cloudfront.as_ref().map(|cf| CloudFrontCheck {
        verifier: &cf.verifier,
        public_base_url: &cf.public_base_url,
        memo: None,
    });
    let cookie_header = req.cookie_header();
    let carriers = Carriers {
        path_token: split.token,
        raw_path: &split.path,
        query,
        cookie_header: cookie_header.as_deref(),
    };
    let deny = deny.map(|d| d as &dyn DenyLookup);
    if let Err(refusal) = admit_session(&config.signer, cloudfront.as_ref(), carriers, &facts, deny)
    {
        return Verdict::token(refusal.reason);
    }
    if !config.strip_token {
        return Verdict::Allow {
            path: None,
            cookie: None,
        };
    }
    let clean_query = origin_query(query, name);
    let new_path = match clean_query {
        Some(q) => format!("{}?{q}", split.path),
        None => split.path.clone(),
    };
    // Tokens never go upstream, whichever Cookie header carried them.
    let cookie = cookie_header.as_deref().and_then(|header| {
        let cleaned = cookie_header_without(header, name);
        (cleaned.as_deref() != Some(header)).then_some(cleaned)
    });
    let changed = had_segment || new_path != req.path;
    Verdict::Allow {
        path: changed.then_some(new_path),
        cookie,
    }
}

fn jwt(
    config: &Config,
    deny: Option<&DenyList>,
    req: &Request,
    path: &str,
    query: Option<&str>,
) -> Verdict {
    let Some(verifier) = &config.jwt else {
        // Unreachable with a validated config (a jwt rule requires the jwt section).
        return Verdict::Deny {
            status: 500,
            code: "internal",
        };
    };
    let Some(token) = presented_jwt(req.authorization, query) else {
        return Verdict::jwt(Reason::MissingToken);
    };
    let in_header = req
        .authorization
        .and_then(playback::jwt::bearer_token)
        .is_some();
    let claims = match verifier.verify(token, req.now_unix) {
        Ok(claims) => claims,
        Err(reason) => return Verdict::jwt(reason),
    };
    if let Some(deny) = deny {
        let subject = SessionSubject {
            session_id: None,
            user_id: Some(claims.sub.clone()),
            jti: claims.jti.clone(),
        };
        if let Err(kind) = check_revocation(deny, &subject, req.now_unix) {
            debug_assert!(kind != RevokedKind::Session);
            // A valid JWT whose user or jti was revoked is a refusal (403), as at the edge,
            // not an authentication failure (401).
            return Verdict::token(Reason::Revoked);
        }
    }
    let new_path = if config.strip_token && !in_header {
        let q = playback::token::query_without(query, JWT_QUERY_PARAM);
        Some(match q {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        })
    } else {
        None
    };
    Verdict::Allow {
        path: new_path,
        cookie: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use playback::jwt::{mint_hs256, Claims};
    use playback::token::edgeauth::{EdgeAuth, EdgeAuthConfig};
    use playback::token::session::{escape_segment, ip_rule, IpBinding, SessionSigner};

    const V: &str = "vid1";
    const NOW: u64 = 1_700_000_000;

    fn config(strip: bool) -> Config {
        let json = serde_json::json!({
            "edgeauth": {"key_hex": "0707070707070707"},
            "jwt": {"issuer": "iss", "audience": "aud",
                    "keys": [{"kid": "k1", "alg": "HS256", "secret_hex": "00112233"}]},
            "rules": [{"prefix": "/hls/", "check": "session"}, {"prefix": "/keys/", "check": "session"},
                      {"prefix": "/playback/", "check": "jwt"}],
            "strip_token": strip
        });
        parse(json.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn signer() -> SessionSigner {
        SessionSigner::new(EdgeAuth::new(EdgeAuthConfig::new(vec![7; 8])))
    }

    fn subject() -> SessionSubject {
        SessionSubject {
            session_id: Some("s1".into()),
            user_id: Some("u1".into()),
            jti: Some("j1".into()),
        }
    }

    fn req(path: &str) -> Request<'_> {
        Request {
            path,
            authorization: None,
            cookies: &[],
            peer: Some("203.0.113.9".parse().unwrap()),
            forwarded: &[],
            now_unix: NOW,
        }
    }

    fn denied(code: &'static str, status: u32) -> Verdict {
        Verdict::Deny { status, code }
    }

    #[test]
    fn session_tokens_in_every_carrier_are_admitted_and_stripped() {
        let c = config(true);
        let token = signer().mint_session(V, &subject(), NOW + 60, None);
        let p = format!("/hls/{V}/720p/a.ts?hdnts={token}&x=1");
        assert_eq!(
            decide(&c, None, &req(&p)),
            Verdict::Allow {
                path: Some(format!("/hls/{V}/720p/a.ts?x=1")),
                cookie: None
            }
        );
        let p = format!("/hls/{V}/hdnts={}/720p/a.ts", escape_segment(&token));
        assert_eq!(
            decide(&c, None, &req(&p)),
            Verdict::Allow {
                path: Some(format!("/hls/{V}/720p/a.ts")),
                cookie: None
            }
        );
        let p = format!("/keys/{V}/k1");
        let cookie = format!("hdnts={token}");
        let cookies = [cookie.as_str()];
        let r = Request {
            cookies: &cookies,
            ..req(&p)
        };
        assert_eq!(
            decide(&c, None, &r),
            Verdict::Allow {
                path: None,
                cookie: Some(None)
            }
        );
        let p = format!("/hls/{V}/720p/a.ts?hdnts={token}");
        assert_eq!(
            decide(&config(false), None, &req(&p)),
            Verdict::Allow {
                path: None,
                cookie: None
            }
        );
    }

    #[test]
    fn several_cookie_headers_are_one_list_and_all_are_cleaned() {
        let c = config(true);
        let token = signer().mint_session(V, &subject(), NOW + 60, None);
        let seg = format!("/hls/{V}/720p/a.ts");
        let second = format!("hdnts={token}");
        let cookies = ["a=1", second.as_str(), "b=2"];
        let r = Request {
            cookies: &cookies,
            ..req(&seg)
        };
        assert_eq!(
            decide(&c, None, &r),
            Verdict::Allow {
                path: None,
                cookie: Some(Some("a=1; b=2".into()))
            },
            "a token in the second header admits, and leaves in no header"
        );
        // Admitted by the query, with the token also in a second Cookie header.
        let p = format!("{seg}?hdnts={token}");
        let cookies = ["a=1", second.as_str()];
        let r = Request {
            cookies: &cookies,
            ..req(&p)
        };
        assert_eq!(
            decide(&c, None, &r),
            Verdict::Allow {
                path: Some(seg.clone()),
                cookie: Some(Some("a=1".into()))
            }
        );
        // Cookies without a token stay as they are.
        let cookies = ["a=1", "b=2"];
        let r = Request {
            cookies: &cookies,
            ..req(&p)
        };
        assert_eq!(
            decide(&c, None, &r),
            Verdict::Allow {
                path: Some(seg.clone()),
                cookie: None
            }
        );
        let tampered = format!("hdnts={}", token.replace("exp=", "exp=1"));
        let cookies = ["a=1", tampered.as_str()];
        let r = Request {
            cookies: &cookies,
            ..req(&seg)
        };
        assert_eq!(decide(&c, None, &r), denied("bad_signature", 403));
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let s = signer();
        let bound = |ip: &str| {
            s.mint_session(
                V,
                &subject(),
                NOW + 60,
                ip_rule(ip.parse().unwrap(), IpBinding::Exact),
            )
        };
        let p_client = format!("/hls/{V}/a.ts?hdnts={}", bound("198.51.100.1"));
        let p_peer = format!("/hls/{V}/a.ts?hdnts={}", bound("10.0.0.2"));
        let xff = ["198.51.100.1"];
        let from_proxy = |path| Request {
            peer: Some("10.0.0.2".parse().unwrap()),
            forwarded: &xff,
            ..req(path)
        };
        // No trusted proxies: the header is the client's word, and ignored.
        let c = config(false);
        assert_eq!(
            decide(&c, None, &from_proxy(&p_client)),
            denied("ip_mismatch", 403)
        );
        assert!(matches!(
            decide(&c, None, &from_proxy(&p_peer)),
            Verdict::Allow { .. }
        ));
        // The proxy is trusted: the client is what it forwarded.
        let mut c = config(false);
        c.client_address = playback::client_address::ClientAddressRule::new(
            &["10.0.0.0/8"],
            playback::client_address::ForwardedHeader::XForwardedFor,
        )
        .unwrap();
        assert!(matches!(
            decide(&c, None, &from_proxy(&p_client)),
            Verdict::Allow { .. }
        ));
        assert_eq!(
            decide(&c, None, &from_proxy(&p_peer)),
            denied("ip_mismatch", 403)
        );
    }

    #[test]
    fn session_refusals_carry_the_reason() {
        let c = config(true);
        let s = signer();
        let token = s.mint_session(V, &subject(), NOW + 60, None);
        assert_eq!(
            decide(&c, None, &req(&format!("/hls/{V}/a.ts"))),
            denied("missing_token", 403)
        );
        let tampered = token.replace("exp=", "exp=1");
        assert_eq!(
            decide(&c, None, &req(&format!("/hls/{V}/a.ts?hdnts={tampered}"))),
            denied("bad_signature", 403)
        );
        assert_eq!(
            decide(&c, None, &req(&format!("/hls/other/a.ts?hdnts={token}"))),
            denied("acl_mismatch", 403)
        );
        let old = s.mint_session(V, &subject(), NOW - 1, None);
        assert_eq!(
            decide(&c, None, &req(&format!("/hls/{V}/a.ts?hdnts={old}"))),
            denied("expired", 403)
        );
        let bound = s.mint_session(
            V,
            &subject(),
            NOW + 60,
            ip_rule("198.51.100.1".parse().unwrap(), IpBinding::Exact),
        );
        assert_eq!(
            decide(&c, None, &req(&format!("/hls/{V}/a.ts?hdnts={bound}"))),
            denied("ip_mismatch", 403)
        );
        let mut deny = DenyList::default();
        deny.insert(RevokedKind::User, "u1", NOW + 10);
        assert_eq!(
            decide(
                &c,
                Some(&deny),
                &req(&format!("/hls/{V}/a.ts?hdnts={token}"))
            ),
            denied("revoked", 403)
        );
        assert_eq!(
            decide(&c, None, &req(&format!("/hls/{V}/hdnts=abc"))),
            denied("not_found", 404)
        );
        assert_eq!(decide(&c, None, &req("/healthz")), Verdict::Pass);
    }

    #[test]
    fn jwts_from_header_or_query() {
        let c = config(true);
        let claims = Claims {
            sub: "u1".into(),
            iss: "iss".into(),
            aud: "aud".into(),
            exp: NOW + 60,
            nbf: None,
            iat: None,
            jti: Some("j1".into()),
            roles: vec![],
            device_id: None,
        };
        let jwt = mint_hs256(&[0x00, 0x11, 0x22, 0x33], &claims);
        let auth = format!("Bearer {jwt}");
        let r = Request {
            authorization: Some(&auth),
            ..req("/playback/v")
        };
        assert_eq!(
            decide(&c, None, &r),
            Verdict::Allow {
                path: None,
                cookie: None
            }
        );
        let p = format!("/playback/v?token={jwt}&a=b");
        assert_eq!(
            decide(&c, None, &req(&p)),
            Verdict::Allow {
                path: Some("/playback/v?a=b".into()),
                cookie: None
            }
        );
        assert_eq!(
            decide(&c, None, &req("/playback/v")),
            denied("missing_token", 401)
        );
        let mut deny = DenyList::default();
        deny.insert(RevokedKind::Jti, "j1", NOW + 10);
        assert_eq!(decide(&c, Some(&deny), &req(&p)), denied("revoked", 403));
        let p = format!("/playback/v?token={jwt}x");
        assert!(matches!(
            decide(&c, None, &req(&p)),
            Verdict::Deny { status: 401, .. }
        ));
    }

    #[test]
    fn bodies_and_addresses() {
        let body: serde_json::Value = serde_json::from_str(&denial_body("expired")).unwrap();
        assert_eq!(body["error"], "expired");
        assert_eq!(body["message"], Reason::Expired.message());
        let body: serde_json::Value = serde_json::from_str(&denial_body("not_found")).unwrap();
        assert_eq!(body["message"], "Nothing is served at this path.");
        assert_eq!(
            parse_source_address(b"203.0.113.9:5555"),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            parse_source_address(b"[::1]:80"),
            Some("::1".parse().unwrap())
        );
        assert_eq!(
            parse_source_address(b"10.0.0.1"),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(parse_source_address(b"nope"), None);
    }
}
