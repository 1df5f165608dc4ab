//! Session tokens: the edge's own use of EdgeAuth v2 for one viewing session.
//!
//! Two tokens per session, both plain EdgeAuth v2 tokens (so an Akamai property with the same
//! key validates them too):
//!
//! - the **manifest token** admits only the title's manifests, the HLS master playlist and the
//!   DASH MPD (`acl=/hls/{v}/master.m3u8!/hls/{v}/manifest.mpd`),
//!   lives `signed_urls.manifest_ttl_secs`, and carries a fresh session id (`id`) and the viewer
//!   (`data`);
//! - the **session token**, minted when a manifest is served, admits the title's tree, its key
//!   endpoint and its license endpoints ([`video_acl`]), carries the same `id` and `data`, lasts the content's
//!   duration plus a grace period, and may be bound to the client's address or network (`ip`).
//!
//! `data` is `<user>` or `<user>:<jti>`, each part percent-encoded (`:` included), so it never
//! contains a token, query, path-segment or cookie delimiter.
//!
//! This module also holds the pure helpers the edge needs around the tokens: the path-segment
//! escape of a token, client-address binding rules, the session lifetime, and a tolerant field
//! listing used to explain a refusal without believing an unverified token.

use std::net::IpAddr;

use super::edgeauth::{EdgeAuth, EdgeAuthFields, RequestFacts};
use super::{dash_manifest_path, hls_master_path, video_acl};
use crate::encoding::{percent_decode, percent_encode};
use crate::Reason;

/// Who a session belongs to: the session id, the viewer, and the JWT id that opened it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSubject {
    /// Random id shared by the manifest token and the session token (EdgeAuth `id`).
    pub session_id: Option<String>,
    /// The viewer's user id (JWT `sub`).
    pub user_id: Option<String>,
    /// The `jti` of the JWT that opened the session, when it had one.
    pub jti: Option<String>,
}

/// What a verified token admits and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    pub subject: SessionSubject,
    pub expires_at: u64,
    /// Every verified EdgeAuth field (acl, ip, ...).
    pub fields: EdgeAuthFields,
}

impl SessionGrant {
    /// True when this is the manifest token of `video_id` (it admits only the manifests), so
    /// serving a manifest must mint the session token.
    pub fn is_manifest_for(&self, video_id: &str) -> bool {
        self.fields.acl == manifest_acl(video_id)
    }
}

/// How a session token is tied to the client's address (`sessions.bind_ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpBinding {
    /// No binding.
    Off,
    /// The exact client address.
    Exact,
    /// The client's IPv4 /24 or IPv6 /64.
    Subnet,
}

/// The ACL of a manifest token: the title's master playlist and MPD only.
pub fn manifest_acl(video_id: &str) -> Vec<String> {
    vec![hls_master_path(video_id), dash_manifest_path(video_id)]
}

/// Mints and verifies session tokens with one EdgeAuth configuration.
pub struct SessionSigner {
    auth: EdgeAuth,
}

impl SessionSigner {
    pub fn new(auth: EdgeAuth) -> Self {
        SessionSigner { auth }
    }

    /// The EdgeAuth engine (token name, delimiters, algorithm).
    pub fn edge_auth(&self) -> &EdgeAuth {
        &self.auth
    }

    /// The query parameter, path-segment and cookie name (`hdnts` by default).
    pub fn token_name(&self) -> &str {
        &self.auth.config().token_name
    }

    /// The EdgeAuth field delimiter (`~`), which refusal details split tokens with.
    pub fn field_delimiter(&self) -> char {
        self.auth.config().field_delimiter
    }

    /// The manifest token: admits the title's master playlist and MPD until `expires_at`.
    pub fn mint_manifest(
        &self,
        video_id: &str,
        subject: &SessionSubject,
        expires_at: u64,
    ) -> String {
        self.auth.mint(&EdgeAuthFields {
            expires_at,
            acl: manifest_acl(video_id),
            session_id: subject.session_id.clone(),
            data: encode_data(subject),
            ..EdgeAuthFields::default()
        })
    }

    /// The session token: admits the title's HLS tree and keys until `expires_at`, optionally
    /// bound to `ip` (an address or CIDR rule, see [`ip_rule`]).
    pub fn mint_session(
        &self,
        video_id: &str,
        subject: &SessionSubject,
        expires_at: u64,
        ip: Option<String>,
    ) -> String {
        self.auth.mint(&EdgeAuthFields {
            ip,
            expires_at,
            acl: video_acl(video_id),
            session_id: subject.session_id.clone(),
            data: encode_data(subject),
            ..EdgeAuthFields::default()
        })
    }

    /// Verifies `token` for the request described by `facts`; a `data` field that is not ours
    /// is `Malformed`. Tokens without `id`/`data` (minted by other EdgeAuth tools) verify with
    /// an empty subject.
    pub fn verify(&self, token: &str, facts: &RequestFacts) -> Result<SessionGrant, Reason> {
        let fields = self.auth.verify(token, facts)?;
        let (user_id, jti) = match fields.data.as_deref() {
            Some(data) => decode_data(data).ok_or(Reason::Malformed)?,
            None => (None, None),
        };
        Ok(SessionGrant {
            subject: SessionSubject {
                session_id: fields.session_id.clone(),
                user_id,
                jti,
            },
            expires_at: fields.expires_at,
            fields,
        })
    }
}

/// A session id from 16 random bytes (passed in: this crate never draws randomness).
pub fn session_id(random: [u8; 16]) -> String {
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// `data` for `subject`: `<user>` or `<user>:<jti>`, percent-encoded; `None` without a user.
pub fn encode_data(subject: &SessionSubject) -> Option<String> {
    let user = encode_part(subject.user_id.as_deref()?);
    Some(match subject.jti.as_deref() {
        Some(jti) => format!("{user}:{}", encode_part(jti)),
        None => user,
    })
}

/// Reverses [`encode_data`]: `(user, jti)`; `None` when `data` is not in our format.
pub fn decode_data(data: &str) -> Option<(Option<String>, Option<String>)> {
    let mut parts = data.split(':');
    let user = percent_decode(parts.next()?)?;
    let jti = match parts.next() {
        Some(part) => Some(percent_decode(part)?),
        None => None,
    };
    if parts.next().is_some() || user.is_empty() {
        return None;
    }
    Some((Some(user), jti.filter(|j| !j.is_empty())))
}

fn encode_part(value: &str) -> String {
    percent_encode(value).replace(':', "%3A")
}

/// The session-token lifetime: content duration (or `default_secs` when unknown) plus grace,
/// capped at `max_secs`; returns the expiry time.
pub fn session_expiry(
    now_unix: u64,
    duration_secs: Option<u64>,
    default_secs: u64,
    grace_secs: u64,
    max_secs: u64,
) -> u64 {
    let lifetime = duration_secs
        .unwrap_or(default_secs)
        .saturating_add(grace_secs)
        .min(max_secs);
    now_unix.saturating_add(lifetime)
}

/// The `ip` rule for `client` under `binding`: the address itself, or its /24 (IPv4) or /64
/// (IPv6) network in CIDR form; `None` when binding is off.
pub fn ip_rule(client: IpAddr, binding: IpBinding) -> Option<String> {
    let client = client.to_canonical();
    match binding {
        IpBinding::Off => None,
        IpBinding::Exact => Some(client.to_string()),
        IpBinding::Subnet => Some(match client {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                format!("{a}.{b}.{c}.0/24")
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(bits))
            }
        }),
    }
}

/// The token as one URL path segment: `%`, `/`, `?`, `#`, `;` and non-printable bytes are
/// percent-escaped so relative URIs resolved against it keep it whole.
pub fn escape_segment(token: &str) -> String {
    let mut out = String::with_capacity(token.len() + 16);
    for b in token.bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'%' | b'/' | b'?' | b'#' | b';' | b'\\') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`escape_segment`]; `None` for a bad escape.
pub fn unescape_segment(segment: &str) -> Option<String> {
    percent_decode(segment)
}

/// The token's `name=value` fields as written, for explaining a refusal. Nothing here is
/// verified; `hmac` is left out so callers never echo the MAC.
pub fn raw_fields(token: &str, field_delimiter: char) -> Vec<(&str, &str)> {
    token
        .split(field_delimiter)
        .filter_map(|field| field.split_once('='))
        .filter(|(name, _)| *name != "hmac")
        .collect()
}

/// A one-line explanation of why `token` was refused for `facts`, naming the failing field and
/// never the token itself: `exp=1700000000 < now=1700000100`.
pub fn denial_detail(
    reason: Reason,
    token: &str,
    field_delimiter: char,
    facts: &RequestFacts,
) -> String {
    let fields = raw_fields(token, field_delimiter);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or("-")
    };
    let now = facts.now_unix;
    match reason {
        Reason::Expired => format!("exp={} < now={now}", field("exp")),
        Reason::NotYetValid => format!("st={} > now={now}", field("st")),
        Reason::AclMismatch => format!("acl={} does not cover path={}", field("acl"), facts.path),
        Reason::IpMismatch => match facts.client_ip {
            Some(ip) => format!("ip={} does not match client={ip}", field("ip")),
            None => format!("ip={} but the client address is unknown", field("ip")),
        },
        Reason::BadSignature => "hmac does not match the fields (altered, or another key)".into(),
        Reason::Malformed => "the token could not be parsed".into(),
        Reason::MissingToken => "no token in the query, path or cookie".into(),
        other => other.code().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::edgeauth::{Algorithm, EdgeAuthConfig};

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

    fn subject(jti: Option<&str>) -> SessionSubject {
        SessionSubject {
            session_id: Some(session_id([0xab; 16])),
            user_id: Some("ana.b:1@example.com".into()),
            jti: jti.map(str::to_string),
        }
    }

    fn facts(path: &str, now: u64) -> RequestFacts<'_> {
        RequestFacts {
            path,
            client_ip: Some("203.0.113.9".parse().unwrap()),
            now_unix: now,
        }
    }

    #[test]
    fn manifest_token_admits_only_the_manifests() {
        let s = signer();
        let token = s.mint_manifest(V, &subject(Some("j-1")), 1_000);
        let master = hls_master_path(V);
        let grant = s.verify(&token, &facts(&master, 900)).unwrap();
        assert!(grant.is_manifest_for(V));
        let mpd = dash_manifest_path(V);
        assert!(s
            .verify(&token, &facts(&mpd, 900))
            .unwrap()
            .is_manifest_for(V));
        let license = format!("/drm/clearkey/{V}");
        assert_eq!(
            s.verify(&token, &facts(&license, 900)),
            Err(Reason::AclMismatch)
        );
        assert_eq!(grant.subject, subject(Some("j-1")));
        assert_eq!(grant.expires_at, 1_000);
        let variant = format!("/hls/{V}/720p/index.m3u8");
        assert_eq!(
            s.verify(&token, &facts(&variant, 900)),
            Err(Reason::AclMismatch)
        );
        assert_eq!(
            s.verify(&token, &facts(&master, 1_001)),
            Err(Reason::Expired)
        );
    }

    #[test]
    fn session_token_admits_the_title_and_binds_the_client() {
        let s = signer();
        let rule = ip_rule("203.0.113.9".parse().unwrap(), IpBinding::Subnet);
        assert_eq!(rule.as_deref(), Some("203.0.113.0/24"));
        let token = s.mint_session(V, &subject(None), 5_000, rule);
        for path in [
            format!("/hls/{V}/720p/seg_1.ts"),
            format!("/keys/{V}/k1"),
            hls_master_path(V),
            dash_manifest_path(V),
            format!("/drm/clearkey/{V}"),
            format!("/drm/widevine/{V}"),
        ] {
            let grant = s.verify(&token, &facts(&path, 4_000)).unwrap();
            assert!(!grant.is_manifest_for(V));
            assert_eq!(grant.subject, subject(None));
        }
        let path = format!("/keys/{V}/k1");
        let elsewhere = RequestFacts {
            path: &path,
            client_ip: Some("198.51.100.1".parse().unwrap()),
            now_unix: 4_000,
        };
        assert_eq!(s.verify(&token, &elsewhere), Err(Reason::IpMismatch));
    }

    #[test]
    fn data_round_trips_without_delimiters() {
        for sub in [subject(None), subject(Some("a:b~c&d=e f"))] {
            let data = encode_data(&sub).unwrap();
            assert!(
                !data.contains(['~', '!', '&', '=', ';', ',', ' ', '/']),
                "{data}"
            );
            assert_eq!(data.matches(':').count(), usize::from(sub.jti.is_some()));
            let (user, jti) = decode_data(&data).unwrap();
            assert_eq!((user, jti), (sub.user_id.clone(), sub.jti.clone()));
        }
        assert_eq!(encode_data(&SessionSubject::default()), None);
        assert_eq!(decode_data("a:b:c"), None);
        assert_eq!(decode_data("%zz"), None);
        assert_eq!(decode_data(""), None);
    }

    #[test]
    fn lifetime_is_duration_plus_grace_capped() {
        assert_eq!(session_expiry(100, Some(7_200), 14_400, 600, 86_400), 7_900);
        assert_eq!(session_expiry(100, None, 14_400, 600, 86_400), 15_100);
        assert_eq!(session_expiry(100, Some(u64::MAX), 1, 1, 86_400), 86_500);
    }

    #[test]
    fn ip_rules() {
        let v4: IpAddr = "198.51.100.77".parse().unwrap();
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.51.100.77".parse().unwrap();
        assert_eq!(ip_rule(v4, IpBinding::Off), None);
        assert_eq!(ip_rule(v4, IpBinding::Exact).unwrap(), "198.51.100.77");
        assert_eq!(ip_rule(mapped, IpBinding::Exact).unwrap(), "198.51.100.77");
        assert_eq!(ip_rule(v6, IpBinding::Subnet).unwrap(), "2001:db8:1:2::/64");
        assert_eq!(
            ip_rule(v6, IpBinding::Exact).unwrap(),
            "2001:db8:1:2:3:4:5:6"
        );
    }

    #[test]
    fn segments_escape_and_round_trip() {
        let token = "exp=1~acl=/hls/v/*!/keys/v/*~data=a%40b~hmac=00";
        let segment = escape_segment(token);
        assert!(!segment.contains('/'), "{segment}");
        assert_eq!(
            segment,
            "exp=1~acl=%2Fhls%2Fv%2F*!%2Fkeys%2Fv%2F*~data=a%2540b~hmac=00"
        );
        assert_eq!(unescape_segment(&segment).unwrap(), token);
    }

    #[test]
    fn details_name_the_field_never_the_mac() {
        let s = signer();
        let token = s.mint_session(V, &subject(None), 1_700_000_000, Some("10.0.0.0/8".into()));
        let path = format!("/hls/{V}/a.ts");
        let f = facts(&path, 1_700_000_100);
        let detail = denial_detail(Reason::Expired, &token, '~', &f);
        assert_eq!(detail, "exp=1700000000 < now=1700000100");
        let detail = denial_detail(Reason::IpMismatch, &token, '~', &f);
        assert_eq!(detail, "ip=10.0.0.0/8 does not match client=203.0.113.9");
        let mac = token.rsplit("hmac=").next().unwrap();
        for reason in Reason::ALL {
            assert!(!denial_detail(reason, &token, '~', &f).contains(mac));
        }
        assert!(raw_fields(&token, '~').iter().all(|(n, _)| *n != "hmac"));
    }
}
