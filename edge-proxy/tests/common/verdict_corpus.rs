//! The shared verdict corpus: requests (path, query, cookies, Authorization) that the Pingora
//! edge and Envoy + the proxy-wasm filter must answer alike — same status, same reason code.
//!
//! Every URL is built for the Pingora edge's `public_base_url` (CloudFront resources include
//! it; the filter is configured with the same base). JWT cases go to
//! `/playback/{video}/manifest`; the Pingora edge answers them with the control-plane stub
//! (the corpus user is entitled), so their 200s are compared too. A revoked JWT is a 403 on
//! both (the JWT is valid; its session is denied).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use playback::jwt::Claims;
use playback::token::cloudfront::{CloudFrontSigner, Policy};
use playback::token::edgeauth::{EdgeAuth, EdgeAuthConfig, EdgeAuthFields};
use playback::token::session::{encode_data, escape_segment, SessionSigner, SessionSubject};
use playback::token::video_acl;

use super::{now, OTHER_VIDEO, USER, VIDEO};

/// Session revoked (by id) on the Pingora edge before the corpus runs.
pub const REVOKED_SESSION: &str = "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e";
/// User revoked on the Pingora edge before the corpus runs.
pub const REVOKED_USER: &str = "revoked-user@example.com";
/// JWT id revoked on the Pingora edge before the corpus runs.
pub const REVOKED_JTI: &str = "jti-revoked-1";

/// What a case should get (checked on both proxies, besides their agreement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Allow,
    Deny(u16),
}

/// One request of the corpus.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// Path and query, sent byte for byte.
    pub target: String,
    /// Extra header lines (`"Cookie: ...\r\n"`).
    pub headers: String,
    pub expect: Expect,
}

/// What the corpus is built from.
pub struct CorpusKeys<'a> {
    pub signer: &'a SessionSigner,
    pub jwt_secret: &'a [u8],
    pub cloudfront: &'a CloudFrontSigner,
    /// The Pingora edge's `public_base_url` (no trailing slash).
    pub public_base_url: &'a str,
}

fn subject(session: &str, user: &str, jti: Option<&str>) -> SessionSubject {
    SessionSubject {
        session_id: Some(session.into()),
        user_id: Some(user.into()),
        jti: jti.map(str::to_string),
    }
}

const SESSION: &str = "5e5510115e5510115e5510115e551011";

fn case(name: &str, target: String, headers: String, expect: Expect) -> Case {
    Case {
        name: name.into(),
        target,
        headers,
        expect,
    }
}

fn q(name: &str, path: &str, token: &str, expect: Expect) -> Case {
    case(name, format!("{path}?hdnts={token}"), String::new(), expect)
}

/// Replaces the value of EdgeAuth field `field` (`exp`, `acl`, ...) in `token`.
fn with_field(token: &str, field: &str, value: &str) -> String {
    token
        .split('~')
        .map(|f| match f.split_once('=') {
            Some((n, _)) if n == field => format!("{n}={value}"),
            _ => f.to_string(),
        })
        .collect::<Vec<_>>()
        .join("~")
}

fn flip_last(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let last = chars.last_mut().unwrap();
    *last = if *last == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

fn jwt(secret: &[u8], tweak: impl FnOnce(&mut Claims)) -> String {
    let mut claims = Claims {
        sub: USER.into(),
        iss: "streaming-dev".into(),
        aud: "streaming-edge".into(),
        exp: now() + 600,
        nbf: None,
        iat: Some(now()),
        jti: None,
        roles: Vec::new(),
        device_id: None,
    };
    tweak(&mut claims);
    playback::jwt::mint_hs256(secret, &claims)
}

/// The network both proxies are told to trust in [`build_behind_trusted_proxy`]: the test
/// client's own address, so it plays the proxy in front.
pub const TRUSTED_PROXY: &str = "127.0.0.1/32";

/// Cases for an edge and a filter that both trust [`TRUSTED_PROXY`] to write
/// `X-Forwarded-For`: the client is the rightmost untrusted address of the header.
pub fn build_behind_trusted_proxy(keys: &CorpusKeys) -> Vec<Case> {
    use Expect::*;
    let s = keys.signer;
    let t = now();
    let seg = format!("/hls/{VIDEO}/720p/seg_001.ts");
    let who = subject(SESSION, USER, None);
    let at = |ip: &str| {
        format!(
            "{seg}?hdnts={}",
            s.mint_session(VIDEO, &who, t + 600, Some(ip.into()))
        )
    };
    let xff = |values: &[&str]| -> String {
        values
            .iter()
            .map(|v| format!("X-Forwarded-For: {v}\r\n"))
            .collect()
    };
    let cf = keys.cloudfront;
    let base = keys.public_base_url;
    let ip_policy = Policy {
        resource: format!("{base}/hls/{VIDEO}/*"),
        date_less_than: t + 600,
        date_greater_than: None,
        ip_address: Some("203.0.113.0/24".into()),
    };
    let cf_url = cf
        .signed_url_custom(&format!("{base}{seg}"), &ip_policy)
        .strip_prefix(base)
        .unwrap()
        .to_string();
    vec![
        case(
            "proxy/forwarded-client",
            at("203.0.113.7"),
            xff(&["203.0.113.7"]),
            Allow,
        ),
        case(
            "proxy/client-prepended-spoof",
            at("198.51.100.1"),
            xff(&["198.51.100.1, 203.0.113.7"]),
            Deny(403),
        ),
        case(
            "proxy/rightmost-untrusted",
            at("203.0.113.7"),
            xff(&["198.51.100.1, 203.0.113.7"]),
            Allow,
        ),
        case(
            "proxy/two-headers-one-list",
            at("203.0.113.7"),
            xff(&["198.51.100.1", "203.0.113.7"]),
            Allow,
        ),
        case(
            "proxy/trusted-hop-skipped",
            at("203.0.113.7"),
            xff(&["203.0.113.7, 127.0.0.1"]),
            Allow,
        ),
        case(
            "proxy/no-header-peer",
            at("127.0.0.1"),
            String::new(),
            Allow,
        ),
        case(
            "proxy/garbage-stops-at-peer",
            at("127.0.0.1"),
            xff(&["junk"]),
            Allow,
        ),
        case(
            "proxy/peer-bound-but-forwarded",
            at("127.0.0.1"),
            xff(&["203.0.113.7"]),
            Deny(403),
        ),
        case(
            "proxy/cloudfront-ip-policy",
            cf_url.clone(),
            xff(&["203.0.113.9"]),
            Allow,
        ),
        case(
            "proxy/cloudfront-ip-policy-other-client",
            cf_url,
            xff(&["198.51.100.9"]),
            Deny(403),
        ),
    ]
}

/// The corpus: at least 50 cases covering every carrier, tamper class and token family.
pub fn build(keys: &CorpusKeys) -> Vec<Case> {
    use Expect::*;
    let s = keys.signer;
    let t = now();
    let master = format!("/hls/{VIDEO}/master.m3u8");
    let variant = format!("/hls/{VIDEO}/720p/index.m3u8");
    let seg = format!("/hls/{VIDEO}/720p/seg_001.ts");
    let seg0 = format!("/hls/{VIDEO}/720p/seg_000.ts");
    let key = format!("/keys/{VIDEO}/key-1");
    let who = subject(SESSION, USER, None);
    let session = s.mint_session(VIDEO, &who, t + 600, None);
    let manifest = s.mint_manifest(VIDEO, &who, t + 600);
    let path_seg =
        |tok: &str, rest: &str| format!("/hls/{VIDEO}/hdnts={}/{rest}", escape_segment(tok));
    let mut c =
        vec![
            // Valid session and manifest tokens in every carrier.
            q("session/query/master", &master, &session, Allow),
            q("session/query/variant", &variant, &session, Allow),
            q("session/query/segment", &seg, &session, Allow),
            q("session/query/big-segment", &seg0, &session, Allow),
            q("session/query/key", &key, &session, Allow),
            case(
                "session/query/after-other-params",
                format!("{seg}?part=1&hdnts={session}"),
                String::new(),
                Allow,
            ),
            case(
                "session/path/segment",
                path_seg(&session, "720p/seg_001.ts"),
                String::new(),
                Allow,
            ),
            case(
                "session/path/variant",
                path_seg(&session, "720p/index.m3u8"),
                String::new(),
                Allow,
            ),
            case(
                "session/path/key",
                format!("/keys/{VIDEO}/hdnts={}/key-1", escape_segment(&session)),
                String::new(),
                Allow,
            ),
            case(
                "session/cookie/segment",
                seg.clone(),
                format!("Cookie: hdnts={session}\r\n"),
                Allow,
            ),
            case(
                "session/cookie/among-others",
                variant.clone(),
                format!("Cookie: a=1; hdnts={session}; b=2\r\n"),
                Allow,
            ),
            case(
                "session/cookie/key",
                key.clone(),
                format!("Cookie: hdnts={session}\r\n"),
                Allow,
            ),
            q("manifest/query/master", &master, &manifest, Allow),
            case(
                "manifest/path/master",
                path_seg(&manifest, "master.m3u8"),
                String::new(),
                Allow,
            ),
            case(
                "manifest/cookie/master",
                master.clone(),
                format!("Cookie: hdnts={manifest}\r\n"),
                Allow,
            ),
            // Manifest tokens admit only the master.
            q("manifest/query/variant", &variant, &manifest, Deny(403)),
            q("manifest/query/segment", &seg, &manifest, Deny(403)),
            q("manifest/query/key", &key, &manifest, Deny(403)),
            // Missing and empty.
            case("missing/segment", seg.clone(), String::new(), Deny(403)),
            case("missing/key", key.clone(), String::new(), Deny(403)),
            q("empty/segment", &seg, "", Deny(403)),
            q("garbage/segment", &seg, "garbage", Deny(403)),
            case(
                "missing/cookie-other-name",
                seg.clone(),
                "Cookie: other=1\r\n".into(),
                Deny(403),
            ),
            // Tampered.
            q("tamper/hmac", &seg, &flip_last(&session), Deny(403)),
            q(
                "tamper/exp",
                &seg,
                &with_field(&session, "exp", &(t + 9999).to_string()),
                Deny(403),
            ),
            q(
                "tamper/acl",
                &seg,
                &with_field(&session, "acl", &format!("/hls/{OTHER_VIDEO}/*")),
                Deny(403),
            ),
            q(
                "tamper/id",
                &seg,
                &with_field(&session, "id", REVOKED_SESSION),
                Deny(403),
            ),
            q(
                "tamper/data",
                &seg,
                &with_field(&session, "data", "u%3Dother"),
                Deny(403),
            ),
            q(
                "tamper/no-hmac",
                &seg,
                session.rsplit_once("~hmac=").unwrap().0,
                Deny(403),
            ),
            q(
                "tamper/truncated",
                &seg,
                &session[..session.len() / 2],
                Deny(403),
            ),
            q(
                "tamper/upper-hmac",
                &seg,
                &session.to_uppercase(),
                Deny(403),
            ),
            case(
                "tamper/cookie-hmac",
                seg.clone(),
                format!("Cookie: hdnts={}\r\n", flip_last(&session)),
                Deny(403),
            ),
            case(
                "tamper/path-hmac",
                path_seg(&flip_last(&session), "720p/seg_001.ts"),
                String::new(),
                Deny(403),
            ),
            // Time.
            q(
                "expired/session",
                &seg,
                &s.mint_session(VIDEO, &who, t - 10, None),
                Deny(403),
            ),
            q(
                "expired/manifest",
                &master,
                &s.mint_manifest(VIDEO, &who, t - 10),
                Deny(403),
            ),
            q(
                "not-yet-valid/session",
                &seg,
                &s.edge_auth().mint(&EdgeAuthFields {
                    start_time: Some(t + 300),
                    expires_at: t + 900,
                    acl: video_acl(VIDEO),
                    session_id: Some(SESSION.into()),
                    data: encode_data(&who),
                    ..EdgeAuthFields::default()
                }),
                Deny(403),
            ),
            // Wrong path.
            q(
                "other-video/segment",
                &seg,
                &s.mint_session(OTHER_VIDEO, &who, t + 600, None),
                Deny(403),
            ),
            q(
                "other-video/key",
                &key,
                &s.mint_session(OTHER_VIDEO, &who, t + 600, None),
                Deny(403),
            ),
            q(
                "wrong-path/other-title",
                &format!("/hls/{OTHER_VIDEO}/720p/seg_001.ts"),
                &session,
                Deny(403),
            ),
            q(
                "wrong-key/signed-elsewhere",
                &seg,
                &SessionSigner::new(EdgeAuth::new(EdgeAuthConfig::new(vec![0x42; 32])))
                    .mint_session(VIDEO, &who, t + 600, None),
                Deny(403),
            ),
            // IP binding (clients come from 127.0.0.1).
            q(
                "ip/exact-match",
                &seg,
                &s.mint_session(VIDEO, &who, t + 600, Some("127.0.0.1".into())),
                Allow,
            ),
            q(
                "ip/subnet-match",
                &seg,
                &s.mint_session(VIDEO, &who, t + 600, Some("127.0.0.0/24".into())),
                Allow,
            ),
            q(
                "ip/mismatch",
                &seg,
                &s.mint_session(VIDEO, &who, t + 600, Some("203.0.113.7".into())),
                Deny(403),
            ),
            // Revocation (applied on the Pingora edge; the filter fetches the list).
            q(
                "revoked/session",
                &seg,
                &s.mint_session(VIDEO, &subject(REVOKED_SESSION, USER, None), t + 600, None),
                Deny(403),
            ),
            q(
                "revoked/user",
                &seg,
                &s.mint_session(VIDEO, &subject(SESSION, REVOKED_USER, None), t + 600, None),
                Deny(403),
            ),
            q(
                "revoked/jti-in-session",
                &seg,
                &s.mint_session(
                    VIDEO,
                    &subject(SESSION, USER, Some(REVOKED_JTI)),
                    t + 600,
                    None,
                ),
                Deny(403),
            ),
            q(
                "not-revoked/other-jti",
                &seg,
                &s.mint_session(
                    VIDEO,
                    &subject(SESSION, USER, Some("jti-fine")),
                    t + 600,
                    None,
                ),
                Allow,
            ),
        ];

    // Several Cookie headers (HTTP/1.1 clients; HTTP/2 splits cookies into fields): one list.
    let cookie_lines =
        |values: &[&str]| -> String { values.iter().map(|v| format!("Cookie: {v}\r\n")).collect() };
    c.extend([
        case(
            "cookies/token-in-second-header",
            seg.clone(),
            cookie_lines(&["a=1", &format!("hdnts={session}")]),
            Allow,
        ),
        case(
            "cookies/token-in-first-header",
            seg.clone(),
            cookie_lines(&[&format!("hdnts={session}"), "b=2"]),
            Allow,
        ),
        case(
            "cookies/tampered-in-second-header",
            seg.clone(),
            cookie_lines(&["a=1", &format!("hdnts={}", flip_last(&session))]),
            Deny(403),
        ),
        case(
            "cookies/no-token-in-any-header",
            seg.clone(),
            cookie_lines(&["a=1", "b=2"]),
            Deny(403),
        ),
        // Admitted by the query; the second Cookie header also carries the token, which must
        // not reach the upstream (checked after the corpus).
        case(
            "cookies/query-token-and-token-in-second-header",
            format!("{seg}?hdnts={session}"),
            cookie_lines(&["a=1", &format!("hdnts={session}")]),
            Allow,
        ),
    ]);

    // The client address is the peer (127.0.0.1) when no proxy is trusted: forwarding headers
    // are the client's own words.
    let bound = |ip: &str| s.mint_session(VIDEO, &who, t + 600, Some(ip.into()));
    c.extend([
        case(
            "client-address/xff-ignored-token-bound-to-it",
            format!("{seg}?hdnts={}", bound("203.0.113.7")),
            "X-Forwarded-For: 203.0.113.7\r\n".into(),
            Deny(403),
        ),
        case(
            "client-address/xff-ignored-token-bound-to-peer",
            format!("{seg}?hdnts={}", bound("127.0.0.1")),
            "X-Forwarded-For: 203.0.113.7\r\n".into(),
            Allow,
        ),
        case(
            "client-address/forwarded-ignored",
            format!("{seg}?hdnts={}", bound("203.0.113.7")),
            "Forwarded: for=203.0.113.7\r\n".into(),
            Deny(403),
        ),
    ]);

    // CloudFront signed URLs and cookies.
    let cf = keys.cloudfront;
    let base = keys.public_base_url;
    let strip = |url: String| url.strip_prefix(base).unwrap().to_string();
    let canned = strip(cf.signed_url_canned(&format!("{base}{seg}"), t + 600));
    let wildcard = Policy {
        resource: format!("{base}/hls/{VIDEO}/*"),
        date_less_than: t + 600,
        date_greater_than: None,
        ip_address: None,
    };
    c.extend([
        case("cloudfront/canned", canned.clone(), String::new(), Allow),
        case(
            "cloudfront/canned-expired",
            strip(cf.signed_url_canned(&format!("{base}{seg}"), t - 5)),
            String::new(),
            Deny(403),
        ),
        case(
            "cloudfront/canned-other-resource",
            strip(cf.signed_url_canned(&format!("{base}{seg0}"), t + 600))
                .replace("seg_000.ts", "seg_001.ts"),
            String::new(),
            Deny(403),
        ),
        case(
            "cloudfront/unknown-key",
            canned.replace("Key-Pair-Id=KTESTKEYPAIR1", "Key-Pair-Id=KOTHER"),
            String::new(),
            Deny(403),
        ),
        case(
            "cloudfront/custom-wildcard",
            strip(cf.signed_url_custom(&format!("{base}{variant}"), &wildcard)),
            String::new(),
            Allow,
        ),
        case(
            "cloudfront/custom-other-title",
            strip(cf.signed_url_custom(
                &format!("{base}/hls/{OTHER_VIDEO}/720p/index.m3u8"),
                &wildcard,
            )),
            String::new(),
            Deny(403),
        ),
        case(
            "cloudfront/custom-not-yet-valid",
            strip(cf.signed_url_custom(
                &format!("{base}{seg}"),
                &Policy {
                    date_greater_than: Some(t + 300),
                    date_less_than: t + 900,
                    ..wildcard.clone()
                },
            )),
            String::new(),
            Deny(403),
        ),
        case(
            "cloudfront/cookies",
            seg.clone(),
            format!(
                "Cookie: {}\r\n",
                cf.cookies(&wildcard)
                    .into_iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Allow,
        ),
        case(
            "cloudfront/cookies-split-over-headers",
            seg.clone(),
            cf.cookies(&wildcard)
                .into_iter()
                .map(|(n, v)| format!("Cookie: {n}={v}\r\n"))
                .collect(),
            Allow,
        ),
        // CloudFront signs the whole address, query included.
        case(
            "cloudfront/canned-with-query",
            strip(cf.signed_url_canned(&format!("{base}{seg}?part=1"), t + 600)),
            String::new(),
            Allow,
        ),
        case(
            "cloudfront/canned-with-query-changed",
            strip(cf.signed_url_canned(&format!("{base}{seg}?part=1"), t + 600))
                .replace("part=1", "part=2"),
            String::new(),
            Deny(403),
        ),
        case(
            "cloudfront/custom-exact-with-query",
            strip(cf.signed_url_custom(
                &format!("{base}{seg}?part=1"),
                &Policy {
                    resource: format!("{base}{seg}?part=1"),
                    ..wildcard.clone()
                },
            )),
            String::new(),
            Allow,
        ),
        case(
            "cloudfront/cookies-expired",
            seg.clone(),
            format!(
                "Cookie: {}\r\n",
                cf.cookies_canned(&format!("{base}{seg}"), t - 5)
                    .into_iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Deny(403),
        ),
    ]);

    // Viewer JWTs on /playback paths.
    let playback = format!("/playback/{VIDEO}/manifest");
    let secret = keys.jwt_secret;
    let bearer = |token: String| format!("Authorization: Bearer {token}\r\n");
    let none_alg = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"{USER}","iss":"streaming-dev","aud":"streaming-edge","exp":{}}}"#,
            t + 600
        ))
    );
    c.extend([
        case(
            "jwt/valid",
            playback.clone(),
            bearer(jwt(secret, |_| {})),
            Allow,
        ),
        case(
            "jwt/valid-with-jti",
            playback.clone(),
            bearer(jwt(secret, |c| c.jti = Some("jti-fine".into()))),
            Allow,
        ),
        case("jwt/missing", playback.clone(), String::new(), Deny(401)),
        case(
            "jwt/expired",
            playback.clone(),
            bearer(jwt(secret, |c| c.exp = t - 120)),
            Deny(401),
        ),
        case(
            "jwt/not-yet-valid",
            playback.clone(),
            bearer(jwt(secret, |c| c.nbf = Some(t + 300))),
            Deny(401),
        ),
        case(
            "jwt/issued-in-the-future",
            playback.clone(),
            bearer(jwt(secret, |c| c.iat = Some(t + 5 * 365 * 86_400))),
            Deny(401),
        ),
        case(
            "jwt/empty-subject",
            playback.clone(),
            bearer(jwt(secret, |c| c.sub = String::new())),
            Deny(401),
        ),
        case(
            "jwt/300-byte-subject",
            playback.clone(),
            bearer(jwt(secret, |c| c.sub = "u".repeat(300))),
            Deny(401),
        ),
        case(
            "jwt/bad-signature",
            playback.clone(),
            bearer(flip_last(&jwt(secret, |_| {}))),
            Deny(401),
        ),
        case(
            "jwt/other-secret",
            playback.clone(),
            bearer(jwt(&[7u8; 32], |_| {})),
            Deny(401),
        ),
        case(
            "jwt/wrong-issuer",
            playback.clone(),
            bearer(jwt(secret, |c| c.iss = "someone-else".into())),
            Deny(401),
        ),
        case(
            "jwt/wrong-audience",
            playback.clone(),
            bearer(jwt(secret, |c| c.aud = "another-service".into())),
            Deny(401),
        ),
        case(
            "jwt/alg-none",
            playback.clone(),
            bearer(none_alg),
            Deny(401),
        ),
        case(
            "jwt/garbage",
            playback.clone(),
            bearer("not.a.jwt".into()),
            Deny(401),
        ),
        case(
            "jwt/revoked-jti",
            playback.clone(),
            bearer(jwt(secret, |c| c.jti = Some(REVOKED_JTI.into()))),
            Deny(403),
        ),
        case(
            "jwt/revoked-user",
            playback.clone(),
            bearer(jwt(secret, |c| c.sub = REVOKED_USER.into())),
            Deny(403),
        ),
    ]);
    c
}
