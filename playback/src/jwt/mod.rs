//! Verification of the platform's viewer JWTs: HS256, RS256, ES256 and EdDSA (Ed25519).
//!
//! Written here rather than taken from `jsonwebtoken` because that crate reads the system clock
//! during validation, and this crate's rule is that time is passed in (pure RustCrypto also
//! keeps the crate free of `ring`, so it builds for `wasm32-wasip1`).
//!
//! - [`keys`]: verification keys, each pinned to one [`Algorithm`] and optionally named by a
//!   `kid`, from an HS256 secret, a PEM public key, a JWK or a strictly parsed JWKS document;
//!   a [`KeyRing`] holds them.
//! - [`verify`]: [`JwtVerifier`], the rules a careful verifier needs: the algorithm comes from
//!   the key, never from the token (`none` and HS/RS confusion are refused), `kid` only selects
//!   among configured keys (`jku`, `x5u`, `jwk`, `x5c` are ignored), `crit` is refused, sizes
//!   are bounded, base64url must be exact and JSON must not repeat a key.
//! - [`claims`]: [`Claims`] and [`JwtRules`] (`iss`, `aud`, `exp`, `nbf`, `iat` with a leeway;
//!   [`is_valid_subject`]).
//! - [`sign`]: [`JwtSigner`], minting for development, tests and benchmarks.
//!
//! [`Hs256Verifier`] and [`mint_hs256`] are the single-secret shorthands the control plane uses.

mod b64;
pub mod claims;
mod json;
pub mod keys;
pub mod sign;
pub mod verify;

pub use claims::{is_valid_subject, Claims, JwtRules, MAX_SUBJECT_LEN};
pub use keys::{kid_is_valid, Algorithm, KeyError, KeyRing, SkippedKey, VerificationKey};
pub use sign::JwtSigner;
pub use verify::{parse_header, Header, JwtVerifier, Verified, MAX_HEADER_B64_LEN, MAX_JWT_LEN};

use crate::Reason;

/// Verifies HS256 JWTs against one shared secret and one set of rules (a [`JwtVerifier`]
/// whose ring holds one unnamed HS256 key).
#[derive(Clone)]
pub struct Hs256Verifier {
    inner: JwtVerifier,
}

impl std::fmt::Debug for Hs256Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hs256Verifier")
            .field("secret", &"<redacted>")
            .field("rules", self.inner.rules())
            .finish()
    }
}

impl Hs256Verifier {
    /// A verifier for tokens signed with `secret` (which must not be empty).
    pub fn new(secret: &[u8], rules: JwtRules) -> Self {
        let mut ring = KeyRing::new();
        ring.push(VerificationKey::hs256(secret).expect("HS256 secret must not be empty"))
            .expect("one key");
        Hs256Verifier {
            inner: JwtVerifier::new(ring, rules),
        }
    }

    /// Verifies `token` at `now_unix` and returns its claims.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, Reason> {
        self.inner.verify(token, now_unix)
    }

    /// The general verifier behind this one.
    pub fn verifier(&self) -> &JwtVerifier {
        &self.inner
    }
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive,
/// surrounding spaces ignored); `None` for other schemes or an empty token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The query parameter a viewer JWT may travel in when headers cannot be set.
pub const JWT_QUERY_PARAM: &str = "token";

/// The viewer JWT a request presents: `Authorization: Bearer <jwt>`, else `?token=<jwt>`
/// (the query value as sent, never percent-decoded). The edge and the filter both read it so.
pub fn presented_jwt<'a>(
    authorization: Option<&'a str>,
    query: Option<&'a str>,
) -> Option<&'a str> {
    authorization
        .and_then(bearer_token)
        .or_else(|| crate::token::query_param(query, JWT_QUERY_PARAM))
}

/// Mints an HS256 JWT (for development tokens and tests; production tokens come from the
/// platform's auth service).
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> String {
    JwtSigner::hs256(secret).sign(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use hmac::{Hmac, Mac};

    type HmacSha256 = Hmac<sha2::Sha256>;

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
            device_id: None,
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
    fn a_token_issued_in_the_future_is_not_yet_valid() {
        let v = Hs256Verifier::new(SECRET, rules());
        let mut c = claims();
        c.iat = Some(NOW + 30); // clock skew inside the leeway
        assert!(v.verify(&mint_hs256(SECRET, &c), NOW).is_ok());
        c.iat = Some(NOW + 31);
        assert_eq!(
            v.verify(&mint_hs256(SECRET, &c), NOW),
            Err(Reason::NotYetValid)
        );
        c.iat = Some(NOW + 5 * 365 * 86_400); // "years in the future"
        assert_eq!(
            v.verify(&mint_hs256(SECRET, &c), NOW),
            Err(Reason::NotYetValid)
        );
        c.iat = Some(NOW - 86_400);
        assert!(v.verify(&mint_hs256(SECRET, &c), NOW).is_ok());
    }

    #[test]
    fn a_subject_that_cannot_name_a_user_is_invalid_subject() {
        let v = Hs256Verifier::new(SECRET, rules());
        for bad in [
            String::new(),
            "u".repeat(256),
            "u".repeat(300),
            "a\u{7}b".into(),
        ] {
            let mut c = claims();
            c.sub = bad;
            assert_eq!(
                v.verify(&mint_hs256(SECRET, &c), NOW),
                Err(Reason::InvalidSubject),
                "sub of {} bytes",
                c.sub.len()
            );
        }
        let mut c = claims();
        c.sub = "u".repeat(255);
        assert_eq!(
            v.verify(&mint_hs256(SECRET, &c), NOW).unwrap().sub.len(),
            255
        );
        // Not a string at all, or missing: the token's shape is wrong.
        let token = sign_raw(
            r#"{"alg":"HS256"}"#,
            r#"{"sub":7,"iss":"streaming-dev","aud":"streaming-edge","exp":1700003600}"#,
            SECRET,
        );
        assert_eq!(v.verify(&token, NOW), Err(Reason::Malformed));
        let token = sign_raw(
            r#"{"alg":"HS256"}"#,
            r#"{"iss":"streaming-dev","aud":"streaming-edge","exp":1700003600}"#,
            SECRET,
        );
        assert_eq!(v.verify(&token, NOW), Err(Reason::Malformed));
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
