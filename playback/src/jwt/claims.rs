//! The claims this product reads from a viewer JWT, and the registered-claim rules
//! (`iss`, `aud`, `exp`, `nbf`, `iat`, with a leeway) every token must pass, and the rule for
//! a subject ([`is_valid_subject`]), which the control plane applies to user ids too.
//!
//! Claims are read from strict JSON (no repeated keys) by hand rather than by derive, so a
//! wrong type (`"exp": "1700000000"`) is `malformed`, never silently skipped.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Reason;

/// Longest `sub` accepted, in bytes (a user id: the control plane stores it as a row key).
pub const MAX_SUBJECT_LEN: usize = 255;
/// Longest `jti` and `device_id` accepted, in bytes.
const MAX_ID_LEN: usize = 256;
const MAX_AUDIENCES: usize = 32;
const MAX_ROLES: usize = 64;

/// What a verifier requires of every token.
#[derive(Debug, Clone)]
pub struct JwtRules {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud` (a string, or one element of an array).
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
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
    /// The device the auth service issued the token for; license requests must then come
    /// from that device (`X-Device-Id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

impl Claims {
    /// True when the token grants the admin role.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
}

/// A NumericDate: a non-negative number of seconds (fractions are truncated).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, Reason> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                        Ok(Some(f as u64))
                    }
                    _ => Err(Reason::Malformed),
                }
            }
        }
        Some(_) => Err(Reason::Malformed),
    }
}

fn short_string(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, Reason> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID_LEN => Ok(Some(s.clone())),
        Some(_) => Err(Reason::Malformed),
    }
}

/// True when `sub` can name a user: 1 to [`MAX_SUBJECT_LEN`] bytes without control
/// characters. The edge, the filter and the control plane refuse other subjects alike
/// (`invalid_subject`), whatever the issuer signed.
pub fn is_valid_subject(sub: &str) -> bool {
    !sub.is_empty() && sub.len() <= MAX_SUBJECT_LEN && !sub.chars().any(char::is_control)
}

/// Applies `rules` at `now_unix` to the claims of a token whose signature already verified.
/// Order: `iss`, `aud`, `exp` (required), `nbf`, `iat` (not after now + leeway: a token
/// "issued" in the future is not valid yet), then `sub` (required; a string that cannot name a
/// user is `invalid_subject`), then the shape of `jti`, `device_id`, `roles`.
pub(crate) fn check(
    claims: &Map<String, Value>,
    rules: &JwtRules,
    now_unix: u64,
) -> Result<Claims, Reason> {
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == rules.issuer => {}
        Some(Value::String(_)) | None => return Err(Reason::WrongIssuer),
        Some(_) => return Err(Reason::Malformed),
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == rules.audience,
        Some(Value::Array(all)) => {
            if all.len() > MAX_AUDIENCES || !all.iter().all(Value::is_string) {
                return Err(Reason::Malformed);
            }
            all.iter()
                .any(|a| a.as_str() == Some(rules.audience.as_str()))
        }
        None => false,
        Some(_) => return Err(Reason::Malformed),
    };
    if !audience_ok {
        return Err(Reason::WrongAudience);
    }
    let exp = numeric_date(claims, "exp")?.ok_or(Reason::Malformed)?;
    if now_unix >= exp.saturating_add(rules.leeway_secs) {
        return Err(Reason::Expired);
    }
    let nbf = numeric_date(claims, "nbf")?;
    if let Some(nbf) = nbf {
        if now_unix.saturating_add(rules.leeway_secs) < nbf {
            return Err(Reason::NotYetValid);
        }
    }
    let iat = numeric_date(claims, "iat")?;
    if let Some(iat) = iat {
        if now_unix.saturating_add(rules.leeway_secs) < iat {
            return Err(Reason::NotYetValid);
        }
    }
    let sub = match claims.get("sub") {
        Some(Value::String(sub)) if is_valid_subject(sub) => sub.clone(),
        Some(Value::String(_)) => return Err(Reason::InvalidSubject),
        Some(_) | None => return Err(Reason::Malformed),
    };
    let jti = short_string(claims, "jti")?;
    let device_id = short_string(claims, "device_id")?;
    let roles = match claims.get("roles") {
        None => Vec::new(),
        Some(Value::Array(all)) if all.len() <= MAX_ROLES => all
            .iter()
            .map(|r| r.as_str().map(str::to_owned).ok_or(Reason::Malformed))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Reason::Malformed),
    };
    Ok(Claims {
        sub,
        iss: rules.issuer.clone(),
        aud: rules.audience.clone(),
        exp,
        nbf,
        iat,
        jti,
        roles,
        device_id,
    })
}
