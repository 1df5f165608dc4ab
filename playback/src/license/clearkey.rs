//! W3C EME ClearKey license messages (<https://www.w3.org/TR/encrypted-media/#clear-key>).
//!
//! A browser's ClearKey CDM sends a *license request* naming the key ids it needs,
//! `{"kids":["<base64url kid>",...],"type":"temporary"}`, and expects a *license*: a JWK set of
//! symmetric keys, `{"keys":[{"kty":"oct","kid":"<base64url>","k":"<base64url>"}],
//! "type":"temporary"}`. The spec requires base64url *without padding* for both `kid` and `k`;
//! Chromium's CDM refuses anything else, so the parser here is as strict as the builder.
//!
//! Key ids are the 16 bytes of the content key's UUID in the control plane (`content_keys.id`),
//! so [`KeyId::to_uuid`] / [`KeyId::from_uuid`] translate between the CENC and control-plane
//! spellings.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::{Map, Value};

/// Largest license request accepted, in bytes of JSON. 16 kids take under 500 bytes.
pub const MAX_REQUEST_BYTES: usize = 4096;
/// Most key ids one request may name; a title has a handful (video, audio, maybe per track).
pub const MAX_KIDS: usize = 16;
/// Largest license response [`parse_response`] reads.
pub const MAX_RESPONSE_BYTES: usize = 8192;
/// The machine code every malformed request maps to.
pub const INVALID_LICENSE_REQUEST: &str = "invalid_license_request";

/// Length of a key id and of a ClearKey content key.
pub const KEY_LEN: usize = 16;

/// A CENC key id: the 16 bytes of the content key's UUID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KEY_LEN]);

impl KeyId {
    /// The control plane's spelling: lowercase hyphenated UUID, `8-4-4-4-12` hex digits.
    pub fn to_uuid(&self) -> String {
        let hex = hex::encode(self.0);
        // `hex` is 32 ASCII digits, so every range below is in bounds.
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }

    /// Parses a hyphenated UUID (either hex case); `None` for any other shape.
    pub fn from_uuid(uuid: &str) -> Option<KeyId> {
        let bytes = uuid.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        let mut digits = String::with_capacity(32);
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b != b'-' {
                    return None;
                }
            } else if b.is_ascii_hexdigit() {
                digits.push(b as char);
            } else {
                return None;
            }
        }
        let mut out = [0u8; KEY_LEN];
        hex::decode_to_slice(digits, &mut out).ok()?;
        Some(KeyId(out))
    }

    /// The ClearKey spelling: base64url without padding (22 characters).
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses [`KeyId::to_base64url`] strictly: no padding, no standard-alphabet `+`/`/`, no
    /// whitespace, exactly 16 bytes.
    pub fn from_base64url(text: &str) -> Option<KeyId> {
        decode_16(text).map(KeyId)
    }

    /// The raw 16 bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_uuid())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uuid())
    }
}

/// The EME session type a request asks for, echoed in the license.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SessionType {
    /// The license lives as long as the browser session (the spec's default).
    #[default]
    Temporary,
    /// The CDM may store the license across sessions.
    PersistentLicense,
}

impl SessionType {
    /// The spelling in the request's and license's `type` member.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionType::Temporary => "temporary",
            SessionType::PersistentLicense => "persistent-license",
        }
    }

    /// Parses [`SessionType::as_str`].
    pub fn parse(name: &str) -> Option<SessionType> {
        match name {
            "temporary" => Some(SessionType::Temporary),
            "persistent-license" => Some(SessionType::PersistentLicense),
            _ => None,
        }
    }
}

/// A parsed license request: distinct key ids in the order the CDM listed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRequest {
    pub kids: Vec<KeyId>,
    pub session_type: SessionType,
}

impl LicenseRequest {
    /// The request's JSON form, as a CDM would send it.
    pub fn to_json(&self) -> String {
        let kids: Vec<Value> = self
            .kids
            .iter()
            .map(|kid| Value::String(kid.to_base64url()))
            .collect();
        let mut object = Map::new();
        object.insert("kids".into(), Value::Array(kids));
        object.insert(
            "type".into(),
            Value::String(self.session_type.as_str().into()),
        );
        Value::Object(object).to_string()
    }
}

/// Why a license request was refused. Every variant has the code
/// [`INVALID_LICENSE_REQUEST`]; the message says what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the license request is larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    #[error("the license request is not JSON")]
    NotJson,
    #[error("the license request is not a JSON object")]
    NotAnObject,
    #[error("the license request has no `kids` array")]
    MissingKids,
    #[error("the license request's `kids` list is empty")]
    NoKids,
    #[error("the license request names more than {MAX_KIDS} key ids")]
    TooManyKids,
    /// The kid at this position of `kids` is not base64url (no padding) of 16 bytes.
    #[error("key id #{index} is not base64url without padding of 16 bytes")]
    InvalidKid { index: usize },
    #[error("the license request's `type` is neither \"temporary\" nor \"persistent-license\"")]
    UnsupportedSessionType,
    /// A `licenseRequest` string that is not base64 of the request JSON.
    #[error("the license request string is not base64")]
    NotBase64,
}

impl RequestError {
    /// The stable machine code for error bodies and metrics.
    pub fn code(&self) -> &'static str {
        INVALID_LICENSE_REQUEST
    }

    /// A sentence for humans; never echoes the request.
    pub fn message(&self) -> String {
        format!("Invalid ClearKey license request: {self}.")
    }
}

/// Parses a license request body.
pub fn parse_request(body: &[u8]) -> Result<LicenseRequest, RequestError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge);
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| RequestError::NotJson)?;
    request_from_json(&value)
}

/// Parses the `licenseRequest` member of the generic `POST /drm/license` body, which players
/// send either as the request object itself or as base64 (standard or url-safe alphabet,
/// padding optional) of its JSON bytes, since EME hands them an opaque `ArrayBuffer`.
pub fn parse_request_value(value: &Value) -> Result<LicenseRequest, RequestError> {
    match value {
        Value::String(text) => {
            // 4 base64 characters per 3 bytes, plus padding.
            if text.len() > MAX_REQUEST_BYTES.div_ceil(3) * 4 {
                return Err(RequestError::TooLarge);
            }
            let bytes = LENIENT_STANDARD
                .decode(text)
                .or_else(|_| LENIENT_URL_SAFE.decode(text))
                .map_err(|_| RequestError::NotBase64)?;
            parse_request(&bytes)
        }
        Value::Object(_) => {
            // Same bound as a raw body, measured without building the string.
            let mut counter = BoundedCounter::default();
            if serde_json::to_writer(&mut counter, value).is_err() {
                return Err(RequestError::TooLarge);
            }
            request_from_json(value)
        }
        _ => Err(RequestError::NotAnObject),
    }
}

fn request_from_json(value: &Value) -> Result<LicenseRequest, RequestError> {
    let object = value.as_object().ok_or(RequestError::NotAnObject)?;
    let raw_kids = object
        .get("kids")
        .and_then(Value::as_array)
        .ok_or(RequestError::MissingKids)?;
    if raw_kids.is_empty() {
        return Err(RequestError::NoKids);
    }
    if raw_kids.len() > MAX_KIDS {
        return Err(RequestError::TooManyKids);
    }
    let mut kids: Vec<KeyId> = Vec::with_capacity(raw_kids.len());
    for (index, raw) in raw_kids.iter().enumerate() {
        let kid = raw
            .as_str()
            .and_then(KeyId::from_base64url)
            .ok_or(RequestError::InvalidKid { index })?;
        // At most 16 entries: a linear scan keeps the CDM's order without a set.
        if !kids.contains(&kid) {
            kids.push(kid);
        }
    }
    let session_type = match object.get("type") {
        None => SessionType::Temporary,
        Some(raw) => raw
            .as_str()
            .and_then(SessionType::parse)
            .ok_or(RequestError::UnsupportedSessionType)?,
    };
    Ok(LicenseRequest { kids, session_type })
}

/// Builds the license: one `oct` JWK per `(key id, content key)`, in the given order.
pub fn build_response(keys: &[(KeyId, [u8; KEY_LEN])], session_type: SessionType) -> String {
    let jwks: Vec<Value> = keys
        .iter()
        .map(|(kid, key)| {
            let mut jwk = Map::new();
            jwk.insert("kty".into(), Value::String("oct".into()));
            jwk.insert("kid".into(), Value::String(kid.to_base64url()));
            jwk.insert("k".into(), Value::String(URL_SAFE_NO_PAD.encode(key)));
            Value::Object(jwk)
        })
        .collect();
    let mut object = Map::new();
    object.insert("keys".into(), Value::Array(jwks));
    object.insert("type".into(), Value::String(session_type.as_str().into()));
    Value::Object(object).to_string()
}

/// One key of a parsed license. `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq)]
pub struct LicenseKey {
    pub kid: KeyId,
    pub key: [u8; KEY_LEN],
}

impl fmt::Debug for LicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LicenseKey")
            .field("kid", &self.kid)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A parsed license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    pub keys: Vec<LicenseKey>,
    /// `None` when the license has no `type` member (the spec makes it optional).
    pub session_type: Option<SessionType>,
}

/// Why a license could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the license is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("the license is not a JSON object with a `keys` array")]
    Malformed,
    #[error(
        "key #{index} of the license is not an `oct` JWK with base64url `kid` and `k` of 16 bytes"
    )]
    InvalidKey { index: usize },
    #[error("the license's `type` is neither \"temporary\" nor \"persistent-license\"")]
    UnsupportedSessionType,
}

/// Parses a license as a browser's ClearKey CDM would, with the same strict base64url.
pub fn parse_response(body: &[u8]) -> Result<License, ResponseError> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(ResponseError::TooLarge);
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| ResponseError::Malformed)?;
    let object = value.as_object().ok_or(ResponseError::Malformed)?;
    let raw_keys = object
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(ResponseError::Malformed)?;
    let mut keys = Vec::with_capacity(raw_keys.len());
    for (index, raw) in raw_keys.iter().enumerate() {
        let invalid = ResponseError::InvalidKey { index };
        let jwk = raw.as_object().ok_or(invalid)?;
        if jwk.get("kty").and_then(Value::as_str) != Some("oct") {
            return Err(invalid);
        }
        let kid = jwk
            .get("kid")
            .and_then(Value::as_str)
            .and_then(KeyId::from_base64url)
            .ok_or(invalid)?;
        let key = jwk
            .get("k")
            .and_then(Value::as_str)
            .and_then(decode_16)
            .ok_or(invalid)?;
        keys.push(LicenseKey { kid, key });
    }
    let session_type = match object.get("type") {
        None => None,
        Some(raw) => Some(
            raw.as_str()
                .and_then(SessionType::parse)
                .ok_or(ResponseError::UnsupportedSessionType)?,
        ),
    };
    Ok(License { keys, session_type })
}

/// Strict base64url of exactly 16 bytes. `URL_SAFE_NO_PAD` refuses padding, `+`/`/`,
/// whitespace and non-canonical trailing bits.
fn decode_16(text: &str) -> Option<[u8; KEY_LEN]> {
    // 16 bytes are exactly 22 characters; checking first avoids decoding long junk.
    if text.len() != 22 {
        return None;
    }
    URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()
}

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const LENIENT_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

/// A writer that only counts, failing once more than [`MAX_REQUEST_BYTES`] are written.
#[derive(Default)]
struct BoundedCounter {
    written: usize,
}

impl std::io::Write for BoundedCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written = self.written.saturating_add(buf.len());
        if self.written > MAX_REQUEST_BYTES {
            return Err(std::io::Error::other("too large"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    const KID_A: &str = "0123456789abcdef0123456789abcdef";

    fn kid(byte: u8) -> KeyId {
        KeyId([byte; 16])
    }

    #[test]
    fn spec_example_request_parses() {
        // The W3C spec's example request (section 9.1.3, "License Request Format").
        let body =
            br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A","0DdtU9od-Bh5L3xbv0Xf_A"],"type":"temporary"}"#;
        let request = parse_request(body).unwrap();
        assert_eq!(request.session_type, SessionType::Temporary);
        assert_eq!(request.kids.len(), 2);
        assert_eq!(request.kids[0].to_base64url(), "LwVHf8JLtPrv2GUXFW2v_A");
        assert_eq!(request.kids[1].to_base64url(), "0DdtU9od-Bh5L3xbv0Xf_A");
        assert_eq!(
            request.kids[0].to_uuid(),
            "2f05477f-c24b-b4fa-efd8-6517156daffc"
        );
    }

    #[test]
    fn spec_example_license_parses() {
        // The W3C spec's example license (section 9.1.4, "License Format").
        let body = br#"{"keys":[{"kty":"oct","kid":"LwVHf8JLtPrv2GUXFW2v_A","k":"GawgguFyGrWKav7AX4VKUg"}],"type":"temporary"}"#;
        let license = parse_response(body).unwrap();
        assert_eq!(license.session_type, Some(SessionType::Temporary));
        assert_eq!(license.keys.len(), 1);
        assert_eq!(license.keys[0].kid.to_base64url(), "LwVHf8JLtPrv2GUXFW2v_A");
        assert_eq!(
            hex::encode(license.keys[0].key),
            "19ac2082e1721ab58a6afec05f854a52"
        );
    }

    #[test]
    fn type_defaults_to_temporary_and_unknown_fields_are_ignored() {
        let request = parse_request(
            br#"{"kids":["AAAAAAAAAAAAAAAAAAAAAA"],"extra":{"x":[1,2]},"kid":"ignored"}"#,
        )
        .unwrap();
        assert_eq!(request.session_type, SessionType::Temporary);
        assert_eq!(request.kids, vec![kid(0)]);
        let persistent =
            parse_request(br#"{"kids":["AAAAAAAAAAAAAAAAAAAAAA"],"type":"persistent-license"}"#)
                .unwrap();
        assert_eq!(persistent.session_type, SessionType::PersistentLicense);
    }

    #[test]
    fn duplicates_are_removed_keeping_order() {
        let a = kid(1).to_base64url();
        let b = kid(2).to_base64url();
        let body = format!(r#"{{"kids":["{b}","{a}","{b}","{a}"]}}"#);
        let request = parse_request(body.as_bytes()).unwrap();
        assert_eq!(request.kids, vec![kid(2), kid(1)]);
    }

    #[test]
    fn malformed_requests_are_refused_with_reasons() {
        let good = kid(7).to_base64url();
        let cases: Vec<(String, RequestError)> = vec![
            ("not json".into(), RequestError::NotJson),
            ("".into(), RequestError::NotJson),
            ("[1,2]".into(), RequestError::NotAnObject),
            ("\"kids\"".into(), RequestError::NotAnObject),
            ("{}".into(), RequestError::MissingKids),
            (r#"{"kids":"abc"}"#.into(), RequestError::MissingKids),
            (r#"{"kids":[]}"#.into(), RequestError::NoKids),
            // padding
            (
                format!(r#"{{"kids":["{good}=="]}}"#),
                RequestError::InvalidKid { index: 0 },
            ),
            // standard alphabet: 0xfb 0xff... encodes with '+' and '/'
            (
                r#"{"kids":["+/+/+/+/+/+/+/+/+/+/+w"]}"#.into(),
                RequestError::InvalidKid { index: 0 },
            ),
            // 15 bytes and 17 bytes
            (
                format!(r#"{{"kids":["{}"]}}"#, URL_SAFE_NO_PAD.encode([1u8; 15])),
                RequestError::InvalidKid { index: 0 },
            ),
            (
                format!(
                    r#"{{"kids":["{good}","{}"]}}"#,
                    URL_SAFE_NO_PAD.encode([1u8; 17])
                ),
                RequestError::InvalidKid { index: 1 },
            ),
            // non-canonical trailing bits ("AB" instead of "AA" at the end)
            (
                r#"{"kids":["AAAAAAAAAAAAAAAAAAAAAB"]}"#.into(),
                RequestError::InvalidKid { index: 0 },
            ),
            (
                r#"{"kids":[" AAAAAAAAAAAAAAAAAAAAA"]}"#.into(),
                RequestError::InvalidKid { index: 0 },
            ),
            (
                r#"{"kids":[42]}"#.into(),
                RequestError::InvalidKid { index: 0 },
            ),
            (
                format!(r#"{{"kids":["{good}"],"type":"persistent-usage-record"}}"#),
                RequestError::UnsupportedSessionType,
            ),
            (
                format!(r#"{{"kids":["{good}"],"type":null}}"#),
                RequestError::UnsupportedSessionType,
            ),
        ];
        for (body, expected) in cases {
            let err = parse_request(body.as_bytes()).unwrap_err();
            assert_eq!(err, expected, "body {body}");
            assert_eq!(err.code(), "invalid_license_request");
            assert!(!err.message().is_empty());
        }
    }

    #[test]
    fn bounds_are_enforced() {
        let kids: Vec<String> = (0..=MAX_KIDS as u8)
            .map(|i| format!("\"{}\"", kid(i).to_base64url()))
            .collect();
        let too_many = format!(r#"{{"kids":[{}]}}"#, kids.join(","));
        assert_eq!(
            parse_request(too_many.as_bytes()),
            Err(RequestError::TooManyKids)
        );
        let exactly = format!(r#"{{"kids":[{}]}}"#, kids[..MAX_KIDS].join(","));
        assert_eq!(
            parse_request(exactly.as_bytes()).unwrap().kids.len(),
            MAX_KIDS
        );

        let padded = format!(
            r#"{{"kids":["{}"],"pad":"{}"}}"#,
            kid(1).to_base64url(),
            "x".repeat(MAX_REQUEST_BYTES)
        );
        assert_eq!(
            parse_request(padded.as_bytes()),
            Err(RequestError::TooLarge)
        );
        let value: Value = serde_json::from_str(&padded).unwrap();
        assert_eq!(parse_request_value(&value), Err(RequestError::TooLarge));
        let encoded = Value::String(STANDARD.encode(&padded));
        assert_eq!(parse_request_value(&encoded), Err(RequestError::TooLarge));
    }

    #[test]
    fn request_value_accepts_object_and_base64_forms() {
        let request = LicenseRequest {
            kids: vec![
                KeyId::from_uuid("01234567-89ab-cdef-0123-456789abcdef").unwrap(),
                kid(0xfb),
            ],
            session_type: SessionType::PersistentLicense,
        };
        let json = request.to_json();
        let object: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parse_request_value(&object).unwrap(), request);
        for encoded in [
            STANDARD.encode(&json),
            STANDARD.encode(&json).trim_end_matches('=').to_string(),
            URL_SAFE_NO_PAD.encode(&json),
        ] {
            assert_eq!(
                parse_request_value(&Value::String(encoded)).unwrap(),
                request
            );
        }
        assert_eq!(
            parse_request_value(&Value::String("%%%".into())),
            Err(RequestError::NotBase64)
        );
        assert_eq!(
            parse_request_value(&Value::String(STANDARD.encode("nope"))),
            Err(RequestError::NotJson)
        );
        assert_eq!(
            parse_request_value(&Value::Array(vec![])),
            Err(RequestError::NotAnObject)
        );
        assert_eq!(
            parse_request_value(&Value::Null),
            Err(RequestError::NotAnObject)
        );
    }

    #[test]
    fn key_id_spellings_round_trip() {
        let uuid = "01234567-89ab-cdef-0123-456789abcdef";
        let id = KeyId::from_uuid(uuid).unwrap();
        assert_eq!(hex::encode(id.as_bytes()), KID_A);
        assert_eq!(id.to_uuid(), uuid);
        assert_eq!(KeyId::from_uuid(&uuid.to_uppercase()), Some(id));
        assert_eq!(KeyId::from_base64url(&id.to_base64url()), Some(id));
        assert_eq!(id.to_base64url(), "ASNFZ4mrze8BI0VniavN7w");
        assert_eq!(format!("{id}"), uuid);
        assert_eq!(format!("{id:?}"), format!("KeyId({uuid})"));
        for bad in [
            "0123456789abcdef0123456789abcdef",
            "01234567-89ab-cdef-0123-456789abcde",
            "01234567-89ab-cdef-0123-456789abcdeg",
            "0123456789-ab-cdef-0123-456789abcdef",
            "01234567+89ab-cdef-0123-456789abcdef",
            "",
        ] {
            assert_eq!(KeyId::from_uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn license_round_trips_with_strict_base64url() {
        let keys = [(kid(0xfb), [0xff; 16]), (kid(2), [0x3e; 16])];
        let body = build_response(&keys, SessionType::Temporary);
        assert!(!body.contains('='), "{body}");
        assert!(!body.contains('+') && !body.contains('/'), "{body}");
        assert!(body.contains(r#""type":"temporary""#));
        let license = parse_response(body.as_bytes()).unwrap();
        let parsed: Vec<_> = license.keys.iter().map(|k| (k.kid, k.key)).collect();
        assert_eq!(parsed, keys);
        assert_eq!(license.session_type, Some(SessionType::Temporary));
        let debug = format!("{:?}", license.keys[0]);
        assert!(
            debug.contains("redacted") && !debug.contains("255"),
            "{debug}"
        );

        let empty = build_response(&[], SessionType::PersistentLicense);
        assert_eq!(empty, r#"{"keys":[],"type":"persistent-license"}"#);
    }

    #[test]
    fn malformed_licenses_are_refused() {
        let kid = kid(1).to_base64url();
        let cases = [
            (String::from("[]"), ResponseError::Malformed),
            (String::from("{}"), ResponseError::Malformed),
            (
                format!(r#"{{"keys":[{{"kty":"RSA","kid":"{kid}","k":"{kid}"}}]}}"#),
                ResponseError::InvalidKey { index: 0 },
            ),
            (
                format!(r#"{{"keys":[{{"kty":"oct","kid":"{kid}","k":"{kid}=="}}]}}"#),
                ResponseError::InvalidKey { index: 0 },
            ),
            (
                format!(r#"{{"keys":[{{"kty":"oct","kid":"{kid}","k":"{kid}"}}],"type":"x"}}"#),
                ResponseError::UnsupportedSessionType,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse_response(body.as_bytes()), Err(expected), "{body}");
        }
        let no_type = format!(r#"{{"keys":[{{"kty":"oct","kid":"{kid}","k":"{kid}"}}]}}"#);
        assert_eq!(
            parse_response(no_type.as_bytes()).unwrap().session_type,
            None
        );
        assert_eq!(
            parse_response(&vec![b' '; MAX_RESPONSE_BYTES + 1]),
            Err(ResponseError::TooLarge)
        );
    }

    #[test]
    fn request_round_trips_through_json() {
        let request = LicenseRequest {
            kids: vec![kid(3), kid(0xfe), kid(0)],
            session_type: SessionType::Temporary,
        };
        assert_eq!(
            parse_request(request.to_json().as_bytes()).unwrap(),
            request
        );
    }
}
