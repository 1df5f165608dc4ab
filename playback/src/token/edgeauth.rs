//! Akamai EdgeAuth v2 tokens (`hdnts=` / `__token__=`), minted and verified byte for byte like
//! Akamai's open-source `akamai-edgeauth` libraries, so an Akamai CDN in front of the edge can
//! validate the tokens the edge mints with the same key, and the other way round.
//!
//! Wire form (fields in this order, joined by the field delimiter, `~` by default):
//!
//! ```text
//! [ip=<ip>~][st=<start>~]exp=<expiry>~acl=</a/*>!</b/*>[~id=<session>][~data=<payload>]~hmac=<hex>   (ACL token)
//! [ip=<ip>~][st=<start>~]exp=<expiry>[~id=<session>][~data=<payload>]~hmac=<hex>                      (URL token)
//! ```
//!
//! The HMAC (SHA-256, SHA-1 or MD5, keyed with the hex-decoded key, lowercase hex) covers the
//! emitted fields before `hmac`, then `url=<path>` for a URL token, then `salt=<salt>` when a salt
//! is configured — `url` and `salt` are hashed but never emitted.
//!
//! Library semantics reproduced exactly:
//! - A start time of 0, and an empty `ip`, `id` or `data`, are omitted (the library tests them
//!   for truthiness).
//! - With *escape early*, `ip`, `id`, `data` and the hashed `url` are escaped like Python's
//!   `urllib.parse.quote_plus` (Python 3.7+: `A-Z a-z 0-9 _ . - ~` kept, space becomes `+`,
//!   every other UTF-8 byte `%xx`) and then every escape is lowercased (`/` -> `%2f`). The ACL
//!   and the salt are never escaped. Verification therefore matches ACL patterns against the
//!   request path as sent, hashes a URL token's `url` as `escape(request path)`, and unescapes
//!   `ip`, `id` and `data` before returning them — so [`EdgeAuth::verify`] returns the fields
//!   [`EdgeAuth::mint`] was given.
//! - Note that `~` is not escaped even with escape early; a value containing the field
//!   delimiter cannot be represented ([`EdgeAuth::try_mint`] refuses it).
//!
//! ACL versus URL: EdgeAuth mints one or the other. A token carrying an `acl` field is an ACL
//! token and `url` plays no part in its verification; a token without `acl` is a URL token whose
//! MAC must match with `url` set to the request path, so a URL token presented for another path
//! fails as `bad_signature` (the MAC cannot tell tampering from another path). [`EdgeAuth::mint`]
//! given both builds an ACL token and ignores `url`; [`EdgeAuth::try_mint`] refuses both.
//!
//! The `ip` field may hold an address or a CIDR network (our extension; Akamai compares
//! addresses), checked with [`ip_matches`].

use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::acl::acl_matches;
use super::ip::{ip_matches, parse_rule};
use super::query::query_param;
use super::MAX_TOKEN_LEN;
use crate::Reason;

/// The HMAC hash of an EdgeAuth token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256 (the libraries' default).
    Sha256,
    /// HMAC-SHA1.
    Sha1,
    /// HMAC-MD5.
    Md5,
}

impl Algorithm {
    /// Parses the library's algorithm names (`sha256`, `sha1`, `md5`; any case).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name.to_ascii_lowercase().as_str() {
            "sha256" => Some(Algorithm::Sha256),
            "sha1" => Some(Algorithm::Sha1),
            "md5" => Some(Algorithm::Md5),
            _ => None,
        }
    }

    /// The library's name for the algorithm.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha1 => "sha1",
            Algorithm::Md5 => "md5",
        }
    }

    fn mac_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha1 => 20,
            Algorithm::Md5 => 16,
        }
    }
}

/// How tokens are keyed and laid out.
#[derive(Clone, PartialEq, Eq)]
pub struct EdgeAuthConfig {
    /// The HMAC key, already hex-decoded (see [`decode_hex_key`]).
    pub key: Vec<u8>,
    /// The HMAC hash.
    pub algorithm: Algorithm,
    /// The query parameter / cookie name carrying the token (`hdnts`, `__token__`, ...).
    pub token_name: String,
    /// Separates fields (`~`).
    pub field_delimiter: char,
    /// Separates ACL entries (`!`).
    pub acl_delimiter: char,
    /// Escape `ip`, `id`, `data` and `url` before use (see the module documentation).
    pub escape_early: bool,
}

impl EdgeAuthConfig {
    /// A configuration with the usual defaults: SHA-256, token name `hdnts`, delimiters `~` and
    /// `!`, no escape early.
    pub fn new(key: Vec<u8>) -> Self {
        EdgeAuthConfig {
            key,
            algorithm: Algorithm::Sha256,
            token_name: "hdnts".into(),
            field_delimiter: '~',
            acl_delimiter: '!',
            escape_early: false,
        }
    }
}

impl std::fmt::Debug for EdgeAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeAuthConfig")
            .field("key", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("token_name", &self.token_name)
            .field("field_delimiter", &self.field_delimiter)
            .field("acl_delimiter", &self.acl_delimiter)
            .field("escape_early", &self.escape_early)
            .finish()
    }
}

/// Decodes an EdgeAuth key given in hex, as the libraries take it (`Malformed` if not hex).
pub fn decode_hex_key(hex_key: &str) -> Result<Vec<u8>, Reason> {
    let key = hex::decode(hex_key.trim()).map_err(|_| Reason::Malformed)?;
    if key.is_empty() {
        return Err(Reason::Malformed);
    }
    Ok(key)
}

/// What an EdgeAuth token asserts (or is minted from).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EdgeAuthFields {
    /// Client address or CIDR network the token is bound to.
    pub ip: Option<String>,
    /// Unix time before which the token is refused (`st`).
    pub start_time: Option<u64>,
    /// Unix time from which the token is refused (`exp`).
    pub expires_at: u64,
    /// Path patterns (`*`, `?`) of an ACL token; empty for a URL token.
    pub acl: Vec<String>,
    /// The path a URL token is bound to: hashed, never emitted.
    pub url: Option<String>,
    /// The session id (`id`).
    pub session_id: Option<String>,
    /// Free-form payload (`data`).
    pub data: Option<String>,
    /// Hashed only, never emitted.
    pub salt: Option<String>,
}

/// The request a token is checked against.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The request path as sent (not percent-decoded).
    pub path: &'a str,
    /// The client's address, when known.
    pub client_ip: Option<std::net::IpAddr>,
    /// The current Unix time.
    pub now_unix: u64,
}

#[derive(Clone)]
enum KeyedMac {
    Sha256(Hmac<Sha256>),
    Sha1(Hmac<Sha1>),
    Md5(Hmac<Md5>),
}

impl KeyedMac {
    fn new(algorithm: Algorithm, key: &[u8]) -> Self {
        const ANY_KEY: &str = "HMAC accepts keys of any length";
        match algorithm {
            Algorithm::Sha256 => KeyedMac::Sha256(Hmac::new_from_slice(key).expect(ANY_KEY)),
            Algorithm::Sha1 => KeyedMac::Sha1(Hmac::new_from_slice(key).expect(ANY_KEY)),
            Algorithm::Md5 => KeyedMac::Md5(Hmac::new_from_slice(key).expect(ANY_KEY)),
        }
    }

    fn tag(&self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + Clone>(mac: &M, parts: &[&[u8]]) -> Vec<u8> {
            let mut mac = mac.clone();
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            KeyedMac::Sha256(m) => run(m, parts),
            KeyedMac::Sha1(m) => run(m, parts),
            KeyedMac::Md5(m) => run(m, parts),
        }
    }
}

/// Mints and verifies EdgeAuth v2 tokens with one configuration.
#[derive(Clone)]
pub struct EdgeAuth {
    config: EdgeAuthConfig,
    mac: KeyedMac,
    salt: Option<String>,
}

impl std::fmt::Debug for EdgeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeAuth")
            .field("config", &self.config)
            .field("salt", &self.salt.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl EdgeAuth {
    /// A minter/verifier for `config`.
    pub fn new(config: EdgeAuthConfig) -> Self {
        let mac = KeyedMac::new(config.algorithm, &config.key);
        EdgeAuth {
            config,
            mac,
            salt: None,
        }
    }

    /// The same, hashing `salt` into every token it verifies (and every token it mints whose
    /// fields carry no salt of their own). Empty means no salt, as in the libraries.
    pub fn with_salt(mut self, salt: Option<String>) -> Self {
        self.salt = salt.filter(|s| !s.is_empty());
        self
    }

    /// The configuration.
    pub fn config(&self) -> &EdgeAuthConfig {
        &self.config
    }

    /// The raw token value in `query` under the configured token name (never percent-decoded).
    pub fn token_from_query<'q>(&self, query: Option<&'q str>) -> Option<&'q str> {
        query_param(query, &self.config.token_name)
    }

    /// Mints the token value (without `hdnts=`) for `fields`, exactly as the library would.
    ///
    /// A non-empty `acl` makes an ACL token (and `url` is ignored); otherwise a URL token bound to
    /// `url` (empty if `None`). Fields that cannot be represented (see [`EdgeAuth::try_mint`])
    /// still produce a token, which verification refuses.
    pub fn mint(&self, fields: &EdgeAuthFields) -> String {
        let mut token = self.payload(fields);
        let url = if fields.acl.is_empty() {
            Some(fields.url.as_deref().unwrap_or(""))
        } else {
            None
        };
        let salt = fields
            .salt
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.salt.as_deref());
        let tag = self.tag(&token, url, salt);
        token.push(self.config.field_delimiter);
        token.push_str("hmac=");
        token.push_str(&hex::encode(tag));
        token
    }

    /// [`EdgeAuth::mint`], refusing (`Malformed`) fields the token cannot carry faithfully: both
    /// or neither of `acl` and `url`, an empty ACL entry, an ACL entry or value containing a
    /// delimiter it would be split at, an `ip` that is not an address or CIDR, an expiry of 0 or
    /// not after the start, or a token longer than [`MAX_TOKEN_LEN`].
    pub fn try_mint(&self, fields: &EdgeAuthFields) -> Result<String, Reason> {
        let (fd, ad) = (self.config.field_delimiter, self.config.acl_delimiter);
        if fields.acl.is_empty() == fields.url.is_none() {
            return Err(Reason::Malformed);
        }
        if fields
            .acl
            .iter()
            .any(|a| a.is_empty() || a.contains(fd) || a.contains(ad))
        {
            return Err(Reason::Malformed);
        }
        let emitted = [&fields.ip, &fields.session_id, &fields.data];
        if emitted
            .iter()
            .filter_map(|v| v.as_deref())
            .any(|v| self.escape(v).contains(fd))
        {
            return Err(Reason::Malformed);
        }
        if let Some(ip) = fields.ip.as_deref().filter(|ip| !ip.is_empty()) {
            parse_rule(ip)?;
        }
        let start = fields.start_time.unwrap_or(0);
        if fields.expires_at == 0 || (start != 0 && fields.expires_at <= start) {
            return Err(Reason::Malformed);
        }
        let token = self.mint(fields);
        if token.len() > MAX_TOKEN_LEN {
            return Err(Reason::Malformed);
        }
        Ok(token)
    }

    /// Verifies `token` (the value without `hdnts=`, exactly as sent) for `request`.
    ///
    /// Size, shape and the MAC (constant time) come first, so a forged token learns nothing
    /// beyond `malformed` or `bad_signature`; then `st` (`not_yet_valid`), `exp` (`expired`),
    /// the ACL (`acl_mismatch`; a URL token's path is covered by the MAC) and `ip`
    /// (`ip_mismatch`, also when the client address is unknown).
    pub fn verify(&self, token: &str, request: &RequestFacts) -> Result<EdgeAuthFields, Reason> {
        if token.is_empty() {
            return Err(Reason::MissingToken);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(Reason::Malformed);
        }
        let fd = self.config.field_delimiter;
        let marker = format!("{fd}hmac=");
        let split = token.rfind(&marker).ok_or(Reason::Malformed)?;
        let (payload, mac_hex) = (&token[..split], &token[split + marker.len()..]);
        if mac_hex.len() != 2 * self.config.algorithm.mac_len() {
            return Err(Reason::Malformed);
        }
        let given = hex::decode(mac_hex).map_err(|_| Reason::Malformed)?;
        let is_url_token = !payload.split(fd).any(|f| f.starts_with("acl="));
        let url = is_url_token.then_some(request.path);
        let expected = self.tag(payload, url, self.salt.as_deref());
        if !bool::from(expected.ct_eq(&given)) {
            return Err(Reason::BadSignature);
        }

        let fields = self.parse(payload, url)?;
        if let Some(start) = fields.start_time {
            if request.now_unix < start {
                return Err(Reason::NotYetValid);
            }
        }
        if request.now_unix >= fields.expires_at {
            return Err(Reason::Expired);
        }
        if !is_url_token && !fields.acl.iter().any(|p| acl_matches(p, request.path)) {
            return Err(Reason::AclMismatch);
        }
        if let Some(rule) = &fields.ip {
            let client = request.client_ip.ok_or(Reason::IpMismatch)?;
            if !ip_matches(rule, client)? {
                return Err(Reason::IpMismatch);
            }
        }
        Ok(fields)
    }

    /// The emitted fields before `hmac`, joined by the field delimiter.
    fn payload(&self, fields: &EdgeAuthFields) -> String {
        let mut parts: Vec<String> = Vec::with_capacity(6);
        if let Some(ip) = fields.ip.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("ip={}", self.escape(ip)));
        }
        if let Some(start) = fields.start_time.filter(|&s| s != 0) {
            parts.push(format!("st={start}"));
        }
        parts.push(format!("exp={}", fields.expires_at));
        if !fields.acl.is_empty() {
            let acl = fields.acl.join(&self.config.acl_delimiter.to_string());
            parts.push(format!("acl={acl}"));
        }
        if let Some(id) = fields.session_id.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("id={}", self.escape(id)));
        }
        if let Some(data) = fields.data.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("data={}", self.escape(data)));
        }
        parts.join(&self.config.field_delimiter.to_string())
    }

    /// The MAC over `payload`, then `url=` (URL tokens) and `salt=` (when salted).
    fn tag(&self, payload: &str, url: Option<&str>, salt: Option<&str>) -> Vec<u8> {
        let mut delim = [0u8; 4];
        let delim = self
            .config
            .field_delimiter
            .encode_utf8(&mut delim)
            .as_bytes();
        let url = url.map(|u| self.escape(u));
        let mut parts: Vec<&[u8]> = vec![payload.as_bytes()];
        if let Some(url) = &url {
            parts.extend([delim, b"url=", url.as_bytes()]);
        }
        if let Some(salt) = salt {
            parts.extend([delim, b"salt=", salt.as_bytes()]);
        }
        self.mac.tag(&parts)
    }

    fn escape(&self, value: &str) -> String {
        if self.config.escape_early {
            escape_early(value)
        } else {
            value.to_string()
        }
    }

    fn unescape(&self, value: &str) -> Result<String, Reason> {
        if self.config.escape_early {
            unescape_early(value).ok_or(Reason::Malformed)
        } else {
            Ok(value.to_string())
        }
    }

    fn parse(&self, payload: &str, url: Option<&str>) -> Result<EdgeAuthFields, Reason> {
        let mut out = EdgeAuthFields {
            url: url.map(str::to_string),
            salt: self.salt.clone(),
            ..EdgeAuthFields::default()
        };
        let mut expires_at = None;
        for field in payload.split(self.config.field_delimiter) {
            let (name, value) = field.split_once('=').ok_or(Reason::Malformed)?;
            let duplicate = match name {
                "ip" => out.ip.replace(self.unescape(value)?).is_some(),
                "st" => out.start_time.replace(parse_time(value)?).is_some(),
                "exp" => expires_at.replace(parse_time(value)?).is_some(),
                "acl" => {
                    let acl: Vec<String> = value
                        .split(self.config.acl_delimiter)
                        .map(str::to_string)
                        .collect();
                    if acl.iter().any(String::is_empty) {
                        return Err(Reason::Malformed);
                    }
                    let had = !out.acl.is_empty();
                    out.acl = acl;
                    had
                }
                "id" => out.session_id.replace(self.unescape(value)?).is_some(),
                "data" => out.data.replace(self.unescape(value)?).is_some(),
                _ => return Err(Reason::Malformed),
            };
            if duplicate {
                return Err(Reason::Malformed);
            }
        }
        out.expires_at = expires_at.ok_or(Reason::Malformed)?;
        Ok(out)
    }
}

fn parse_time(value: &str) -> Result<u64, Reason> {
    if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reason::Malformed);
    }
    value.parse().map_err(|_| Reason::Malformed)
}

/// Python's `quote_plus(text)` with every `%XX` lowercased, as the libraries' escape early does.
pub fn escape_early(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

/// Reverses [`escape_early`] (`+` is a space, `%xx` either case); `None` on a bad escape or
/// invalid UTF-8.
pub fn unescape_early(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;
