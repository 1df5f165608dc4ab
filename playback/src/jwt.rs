//! Verification of the platform's viewer JWTs (HS256 for now).
//!
//! Written here rather than taken from `jsonwebtoken` because that crate reads the system clock
//! during validation, and this crate's rule is that time is passed in (it also keeps the crate
//! free of `ring`, so it builds for `wasm32-wasip1`). The rules a careful verifier needs:
//!
//! - the algorithm is pinned by the verifier, never chosen by the token (`none`, `RS256`, ... are
//!   refused as `unsupported_algorithm`); header keys such as `jku`, `x5u` and `jwk` are ignored;
//! - the MAC is compared in constant time before any claim is parsed;
//! - `iss` and `aud` must match, `exp` is required, `nbf` is honoured, both with a leeway;
//! - the whole token is bounded to [`MAX_JWT_LEN`] bytes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::Reason;

type HmacSha256 = Hmac<Sha256>;

/// Longest JWT accepted.
pub const MAX_JWT_LEN: usize = 8 * 1024;
const MAX_SUBJECT_LEN: usize = 256;

/// What a verifier requires of every token.
#[derive(Debug, Clone)]
pub struct JwtRules {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud` (a string, or one element of an array).
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

/// The claims this product reads from a viewer JWT.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// The viewer's user id.
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Roles granted by the auth service; `"admin"` unlocks admin endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

impl Claims {
    /// True when the token grants the admin role.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
}

/// Verifies HS256 JWTs against one shared secret and one set of rules.
#[derive(Clone)]
pub struct Hs256Verifier {
    mac: HmacSha256,
    rules: JwtRules,
}

impl std::fmt::Debug for Hs256Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hs256Verifier")
            .field("secret", &"<redacted>")
            .field("rules", &self.rules)
            .finish()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawClaims {
    sub: Option<String>,
    iss: Option<String>,
    aud: Option<Audience>,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    jti: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

impl Hs256Verifier {
    pub fn new(secret: &[u8], rules: JwtRules) -> Self {
        let mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
        Hs256Verifier { mac, rules }
    }

    /// Verifies `token` at `now_unix` and returns its claims.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, Reason> {
        if token.is_empty() {
            return Err(Reason::MissingToken);
        }
        if token.len() > MAX_JWT_LEN {
            return Err(Reason::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Reason::Malformed);
        };
        let header: Header = decode_json(header_b64)?;
        if header.alg != "HS256" {
            return Err(Reason::UnsupportedAlgorithm);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(sig_b64)
            .map_err(|_| Reason::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(&token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()]);
        mac.verify_slice(&signature)
            .map_err(|_| Reason::BadSignature)?;

        let raw: RawClaims = decode_json(payload_b64)?;
        let rules = &self.rules;
        if raw.iss.as_deref() != Some(rules.issuer.as_str()) {
            return Err(Reason::WrongIssuer);
        }
        let audience_ok = match &raw.aud {
            Some(Audience::One(a)) => *a == rules.audience,
            Some(Audience::Many(all)) => all.contains(&rules.audience),
            None => false,
        };
        if !audience_ok {
            return Err(Reason::WrongAudience);
        }
        let exp = raw.exp.ok_or(Reason::Malformed)?;
        if now_unix >= exp.saturating_add(rules.leeway_secs) {
            return Err(Reason::Expired);
        }
        if let Some(nbf) = raw.nbf {
            if now_unix.saturating_add(rules.leeway_secs) < nbf {
                return Err(Reason::NotYetValid);
            }
        }
        let sub = raw
            .sub
            .filter(|s| !s.is_empty() && s.len() <= MAX_SUBJECT_LEN);
        Ok(Claims {
            sub: sub.ok_or(Reason::Malformed)?,
            iss: rules.issuer.clone(),
            aud: rules.audience.clone(),
            exp,
            nbf: raw.nbf,
            iat: raw.iat,
            jti: raw.jti,
            roles: raw.roles,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive,
/// surrounding spaces ignored); `None` for other schemes or an empty token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Mints an HS256 JWT (for development tokens and tests; production tokens come from the
/// platform's auth service).
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize to JSON"));
    let signing_input = format!("{header}.{payload}");
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, Reason> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Reason::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Reason::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret-test-secret-test-sec";
    const NOW: u64 = 1_700_000_000;

    fn rules() -> JwtRules {
        JwtRules {
            issuer: "streaming-dev".into(),
            audience: "streaming-edge".into(),
            leeway_secs: 30,
        }
    }

    fn claims() -> Claims {
        Claims {
            sub: "user-1".into(),
            iss: "streaming-dev".into(),
            aud: "streaming-edge".into(),
            exp: NOW + 3600,
            nbf: None,
            iat: Some(NOW),
            jti: None,
            roles: vec![],
        }
    }

    fn sign_raw(header: &str, payload: &str, secret: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn golden_vector_from_pyjwt_shape() {
        // jwt.encode({"sub":"u","iss":"streaming-dev","aud":"streaming-edge","exp":1700003600},
        //            "test-secret-test-secret-test-sec", algorithm="HS256") with pyjwt 2.x
        let token = sign_raw(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"sub":"u","iss":"streaming-dev","aud":"streaming-edge","exp":1700003600}"#,
            SECRET,
        );
        let c = Hs256Verifier::new(SECRET, rules())
            .verify(&token, NOW)
            .unwrap();
        assert_eq!(c.sub, "u");
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer  xyz "), Some("xyz"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn round_trip_with_roles() {
        let mut c = claims();
        c.roles = vec!["admin".into()];
        let token = mint_hs256(SECRET, &c);
        let got = Hs256Verifier::new(SECRET, rules())
            .verify(&token, NOW)
            .unwrap();
        assert_eq!(got, c);
        assert!(got.is_admin());
        assert!(!claims().is_admin());
    }

    #[test]
    fn time_rules_with_leeway() {
        let v = Hs256Verifier::new(SECRET, rules());
        let mut c = claims();
        c.exp = NOW - 10; // inside the 30 s leeway
        assert!(v.verify(&mint_hs256(SECRET, &c), NOW).is_ok());
        c.exp = NOW - 30;
        assert_eq!(v.verify(&mint_hs256(SECRET, &c), NOW), Err(Reason::Expired));
        let mut c = claims();
        c.nbf = Some(NOW + 20);
        assert!(v.verify(&mint_hs256(SECRET, &c), NOW).is_ok());
        c.nbf = Some(NOW + 31);
        assert_eq!(
            v.verify(&mint_hs256(SECRET, &c), NOW),
            Err(Reason::NotYetValid)
        );
    }

    #[test]
    fn refusals_carry_the_right_reason() {
        let v = Hs256Verifier::new(SECRET, rules());
        let good = mint_hs256(SECRET, &claims());
        assert_eq!(v.verify("", NOW), Err(Reason::MissingToken));
        assert_eq!(v.verify("a.b", NOW), Err(Reason::Malformed));
        assert_eq!(v.verify("a.b.c.d", NOW), Err(Reason::Malformed));
        assert_eq!(
            v.verify(&"a".repeat(MAX_JWT_LEN + 1), NOW),
            Err(Reason::Malformed)
        );
        assert_eq!(
            v.verify(&mint_hs256(b"another secret", &claims()), NOW),
            Err(Reason::BadSignature)
        );
        let mut tampered = good.clone();
        tampered.pop();
        tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(v.verify(&tampered, NOW), Err(Reason::BadSignature));

        let mut c = claims();
        c.aud = "someone-else".into();
        assert_eq!(
            v.verify(&mint_hs256(SECRET, &c), NOW),
            Err(Reason::WrongAudience)
        );
        let mut c = claims();
        c.iss = "evil".into();
        assert_eq!(
            v.verify(&mint_hs256(SECRET, &c), NOW),
            Err(Reason::WrongIssuer)
        );
    }

    #[test]
    fn algorithm_is_pinned() {
        let v = Hs256Verifier::new(SECRET, rules());
        let body = r#"{"sub":"u","iss":"streaming-dev","aud":"streaming-edge","exp":1700003600}"#;
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(body)
        );
        assert_eq!(v.verify(&none, NOW), Err(Reason::UnsupportedAlgorithm));
        let rs = sign_raw(r#"{"alg":"RS256"}"#, body, SECRET);
        assert_eq!(v.verify(&rs, NOW), Err(Reason::UnsupportedAlgorithm));
        // An embedded key is ignored: the configured secret still decides.
        let jwk = sign_raw(
            r#"{"alg":"HS256","jwk":{"kty":"oct","k":"YQ"},"jku":"http://evil"}"#,
            body,
            b"a",
        );
        assert_eq!(v.verify(&jwk, NOW), Err(Reason::BadSignature));
    }

    #[test]
    fn audience_arrays_and_missing_claims() {
        let v = Hs256Verifier::new(SECRET, rules());
        let arr = sign_raw(
            r#"{"alg":"HS256"}"#,
            r#"{"sub":"u","iss":"streaming-dev","aud":["x","streaming-edge"],"exp":1700003600}"#,
            SECRET,
        );
        assert!(v.verify(&arr, NOW).is_ok());
        let no_exp = sign_raw(
            r#"{"alg":"HS256"}"#,
            r#"{"sub":"u","iss":"streaming-dev","aud":"streaming-edge"}"#,
            SECRET,
        );
        assert_eq!(v.verify(&no_exp, NOW), Err(Reason::Malformed));
        let no_sub = sign_raw(
            r#"{"alg":"HS256"}"#,
            r#"{"iss":"streaming-dev","aud":"streaming-edge","exp":1700003600}"#,
            SECRET,
        );
        assert_eq!(v.verify(&no_sub, NOW), Err(Reason::Malformed));
        let not_json = sign_raw(r#"{"alg":"HS256"}"#, "nope", SECRET);
        assert_eq!(v.verify(&not_json, NOW), Err(Reason::Malformed));
    }
}
