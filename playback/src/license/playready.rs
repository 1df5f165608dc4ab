//! PlayReady: forwarding a CDM's license challenge to a PlayReady license server, with the
//! viewer's entitlement as signed custom data.
//!
//! A PlayReady challenge is a SOAP `AcquireLicense` envelope *signed by the CDM*, so the edge
//! cannot add anything to it. The edge checks the viewer's entitlement, makes a cheap
//! structural check of the body ([`check_challenge`]), and POSTs it unchanged to the license
//! server with:
//!
//! - `Content-Type: text/xml; charset=utf-8` ([`CONTENT_TYPE`]);
//! - `SOAPAction: "http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense"`
//!   ([`SOAP_ACTION`], quoted as SOAP 1.1 requires; PlayReady servers dispatch on it);
//! - the entitlement in the license URL's `customdata` query parameter ([`license_url`]).
//!
//! ## Custom data (design decision)
//!
//! PlayReady lets the license server receive opaque "custom data" from the application; the
//! server's license handler decides from it what to issue. Ours is
//!
//! ```text
//! base64url(JSON {"userId","videoId","licenseId","licenseType","durationSecs","expiresAt"})
//!   + "." + base64url(HMAC-SHA256(custom data key, <the first part, as ASCII>))
//! ```
//!
//! (base64url without padding), so a license server holding the shared key can trust it was
//! minted by an edge after an entitlement check, and honour `licenseType`/`durationSecs` as the
//! license's policy and `licenseId` as the id recorded in `media_licenses`. Its alphabet
//! (`A-Z a-z 0-9 - _ .`) needs no escaping in a query string. `expiresAt` bounds how long a
//! captured URL can be replayed; [`verify_custom_data`] is what the server side runs.
//!
//! ## No XML parser
//!
//! [`check_challenge`] scans tag names only. It never expands entities or reads a DTD (a body
//! with `<!DOCTYPE` or `<!ENTITY` is refused outright), so there is no entity-expansion or
//! external-entity surface; the license server does the real parsing and signature checks.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::policy::LicenseKind;

/// The `SOAPAction` header value the edge sends with a challenge, quotes included.
pub const SOAP_ACTION: &str =
    "\"http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense\"";
/// The `Content-Type` the edge sends with a challenge.
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";
/// Largest challenge forwarded. Real challenges are 3–10 KiB.
pub const MAX_CHALLENGE_BYTES: usize = 64 * 1024;
/// Largest custom data string accepted by [`verify_custom_data`].
pub const MAX_CUSTOM_DATA_BYTES: usize = 4096;
/// Largest license-server response [`classify_response`] inspects.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// What the edge vouches for in the custom data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomDataClaims {
    pub user_id: String,
    pub video_id: String,
    /// The id of the license record the edge writes to `media_licenses`.
    pub license_id: String,
    pub license_type: LicenseKind,
    pub duration_secs: u64,
    /// Unix seconds after which the custom data is refused.
    pub expires_at: u64,
}

/// Mints custom data for `claims` under `key` (the secret shared with the license server).
pub fn custom_data(key: &[u8], claims: &CustomDataClaims) -> String {
    // Serializing strings and integers cannot fail.
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let body = URL_SAFE_NO_PAD.encode(json);
    let tag = URL_SAFE_NO_PAD.encode(mac(key, body.as_bytes()));
    format!("{body}.{tag}")
}

/// Why custom data was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CustomDataError {
    #[error("the custom data is not `<base64url claims>.<base64url mac>`")]
    Malformed,
    #[error("the custom data's MAC does not match")]
    BadSignature,
    #[error("the custom data has expired")]
    Expired,
}

impl CustomDataError {
    /// The stable machine code (the same vocabulary as [`crate::Reason`]).
    pub fn code(&self) -> &'static str {
        match self {
            CustomDataError::Malformed => "malformed",
            CustomDataError::BadSignature => "bad_signature",
            CustomDataError::Expired => "expired",
        }
    }
}

/// Checks custom data minted by [`custom_data`]: the MAC (constant-time) first, then the
/// claims, then that `now` (unix seconds) is before `expiresAt`.
pub fn verify_custom_data(
    key: &[u8],
    custom_data: &str,
    now: u64,
) -> Result<CustomDataClaims, CustomDataError> {
    if custom_data.len() > MAX_CUSTOM_DATA_BYTES {
        return Err(CustomDataError::Malformed);
    }
    let (body, tag) = custom_data
        .split_once('.')
        .ok_or(CustomDataError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| CustomDataError::Malformed)?;
    let expected = mac(key, body.as_bytes());
    if !bool::from(expected.as_slice().ct_eq(&tag)) {
        return Err(CustomDataError::BadSignature);
    }
    let json = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CustomDataError::Malformed)?;
    let claims: CustomDataClaims =
        serde_json::from_slice(&json).map_err(|_| CustomDataError::Malformed)?;
    if now >= claims.expires_at {
        return Err(CustomDataError::Expired);
    }
    Ok(claims)
}

fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The license server URL with `customdata` added to its query string.
pub fn license_url(base_url: &str, custom_data: &str) -> String {
    let separator = match base_url.find('?') {
        None => "?",
        Some(at) if at + 1 == base_url.len() || base_url.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{base_url}{separator}customdata={custom_data}")
}

/// Why a body is not forwarded as a PlayReady challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("the PlayReady challenge is empty")]
    Empty,
    #[error("the PlayReady challenge is larger than {MAX_CHALLENGE_BYTES} bytes")]
    TooLarge,
    #[error("the PlayReady challenge is not UTF-8 text")]
    NotUtf8,
    #[error("the PlayReady challenge contains a document type declaration")]
    DocumentTypeDeclaration,
    #[error("the PlayReady challenge is not a SOAP envelope with a body")]
    NotSoapEnvelope,
    #[error("the PlayReady challenge is not an AcquireLicense request")]
    NotAcquireLicense,
}

impl ChallengeError {
    /// The stable machine code: a bad challenge is a bad request.
    pub fn code(&self) -> &'static str {
        "invalid_license_request"
    }

    /// A sentence for humans; never echoes the challenge.
    pub fn message(&self) -> String {
        format!("Invalid PlayReady license request: {self}.")
    }
}

/// Cheap structural check of a challenge: bounded UTF-8, no DTD, a root element whose local
/// name is `Envelope` (any namespace prefix) closed at the end, containing a `Body` and an
/// `AcquireLicense` element. Players unwrap the CDM's UTF-16 `PlayReadyKeyMessage` and send
/// the inner UTF-8 SOAP envelope, which is what this expects.
pub fn check_challenge(body: &[u8]) -> Result<(), ChallengeError> {
    if body.is_empty() {
        return Err(ChallengeError::Empty);
    }
    if body.len() > MAX_CHALLENGE_BYTES {
        return Err(ChallengeError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| ChallengeError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).trim();
    if contains_ignore_ascii_case(text, "<!DOCTYPE") || contains_ignore_ascii_case(text, "<!ENTITY")
    {
        return Err(ChallengeError::DocumentTypeDeclaration);
    }
    let mut rest = text;
    if rest.starts_with("<?xml") {
        let end = rest.find("?>").ok_or(ChallengeError::NotSoapEnvelope)?;
        rest = rest.get(end + 2..).unwrap_or("").trim_start();
    }
    let root = rest
        .strip_prefix('<')
        .map(tag_name)
        .ok_or(ChallengeError::NotSoapEnvelope)?;
    if local_name(root) != "Envelope" || !rest.ends_with(&format!("</{root}>")) {
        return Err(ChallengeError::NotSoapEnvelope);
    }
    let (mut has_body, mut has_acquire) = (false, false);
    for (at, _) in rest.match_indices('<') {
        match local_name(tag_name(rest.get(at + 1..).unwrap_or(""))) {
            "Body" => has_body = true,
            "AcquireLicense" => has_acquire = true,
            _ => {}
        }
    }
    if !has_body {
        return Err(ChallengeError::NotSoapEnvelope);
    }
    if !has_acquire {
        return Err(ChallengeError::NotAcquireLicense);
    }
    Ok(())
}

/// The element name at the start of `after_lt` (the text just after a `<`); empty for a
/// closing tag, comment or processing instruction.
fn tag_name(after_lt: &str) -> &str {
    let end = after_lt
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.')))
        .unwrap_or(after_lt.len());
    after_lt.get(..end).unwrap_or("")
}

fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Why the license server did not return a license.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// A SOAP fault with a `Client` fault code: the challenge was refused.
    #[error("the PlayReady license server refused the challenge")]
    InvalidChallenge,
    /// A SOAP fault with any other fault code (PlayReady servers answer HTTP 500 with
    /// `soap:Server` for refused custom data and their own failures). Holds the fault code and
    /// the `StatusCode` detail when present (at most 64 printable characters each), for logs.
    #[error("the PlayReady license server answered a fault ({fault_code})")]
    Fault {
        fault_code: String,
        status_code: Option<String>,
    },
    /// Neither a license response nor a SOAP fault.
    #[error("the PlayReady license server answered HTTP {http_status} without a license")]
    UnexpectedResponse { http_status: u16 },
}

impl ServerError {
    /// The stable machine code for error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ServerError::InvalidChallenge => "invalid_license_challenge",
            ServerError::Fault { .. } => "provider_error",
            ServerError::UnexpectedResponse { .. } => "provider_bad_response",
        }
    }

    /// True when the viewer's request is at fault.
    pub fn is_client_fault(&self) -> bool {
        matches!(self, ServerError::InvalidChallenge)
    }

    /// The HTTP status the edge answers: 400 for the client's fault, 502 otherwise.
    pub fn http_status(&self) -> u16 {
        if self.is_client_fault() {
            400
        } else {
            502
        }
    }
}

/// Classifies a license server answer: `Ok` for a 2xx `AcquireLicenseResponse` (relay the
/// body to the CDM unchanged), otherwise why not.
pub fn classify_response(http_status: u16, body: &[u8]) -> Result<(), ServerError> {
    let unexpected = ServerError::UnexpectedResponse { http_status };
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(unexpected);
    }
    let text = String::from_utf8_lossy(body);
    if (200..300).contains(&http_status) && text.contains("AcquireLicenseResponse") {
        return Ok(());
    }
    if !text.contains("Fault") {
        return Err(unexpected);
    }
    let fault_code = element_text(&text, "faultcode").unwrap_or_default();
    if local_name(&fault_code) == "Client" {
        return Err(ServerError::InvalidChallenge);
    }
    Err(ServerError::Fault {
        fault_code,
        status_code: element_text(&text, "StatusCode"),
    })
}

/// The printable text of the first element named `name` (any prefix), at most 64 characters.
fn element_text(xml: &str, name: &str) -> Option<String> {
    let open = xml.match_indices('<').find_map(|(at, _)| {
        let after = xml.get(at + 1..)?;
        (local_name(tag_name(after)) == name).then_some(after)
    })?;
    let content = open.get(open.find('>')? + 1..)?;
    let content = content.get(..content.find('<')?)?;
    Some(
        content
            .trim()
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect(),
    )
}

impl fmt::Display for CustomDataClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "license {} for {} on {} ({}, {} s)",
            self.license_id,
            self.user_id,
            self.video_id,
            self.license_type.as_str(),
            self.duration_secs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims() -> CustomDataClaims {
        CustomDataClaims {
            user_id: "user-42@example.com".into(),
            video_id: "0b6f2a8e-3c1d-4e5f-9a7b-112233445566".into(),
            license_id: "6f1c2b3a-0000-4000-8000-000000000001".into(),
            license_type: LicenseKind::Rental,
            duration_secs: 3600,
            expires_at: 1_700_003_600,
        }
    }

    /// A challenge shaped like a real PlayReady CDM's (signature values shortened).
    const CHALLENGE: &str = r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><AcquireLicense xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><challenge><Challenge xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols/messages"><LA xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols" Id="SignedData" xml:space="preserve"><Version>1</Version><ContentHeader><WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.0.0.0"><DATA><PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO><KID>f0Xo1vVv8UKyWqqBYCc8wA==</KID></DATA></WRMHEADER></ContentHeader></LA><Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignatureValue>AAAA</SignatureValue></Signature></Challenge></challenge></AcquireLicense></soap:Body></soap:Envelope>"#;

    #[test]
    fn custom_data_round_trips_and_is_query_safe() {
        let minted = custom_data(KEY, &claims());
        assert!(
            minted
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
            "{minted}"
        );
        assert_eq!(minted.matches('.').count(), 1);
        assert_eq!(
            verify_custom_data(KEY, &minted, 1_700_000_000),
            Ok(claims())
        );
        let (body, _) = minted.split_once('.').unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "userId": "user-42@example.com",
                "videoId": "0b6f2a8e-3c1d-4e5f-9a7b-112233445566",
                "licenseId": "6f1c2b3a-0000-4000-8000-000000000001",
                "licenseType": "rental", "durationSecs": 3600, "expiresAt": 1_700_003_600u64,
            })
        );
    }

    #[test]
    fn custom_data_mac_matches_an_independent_hmac() {
        let minted = custom_data(KEY, &claims());
        let (body, tag) = minted.split_once('.').unwrap();
        let mut mac = HmacSha256::new_from_slice(KEY).unwrap();
        mac.update(body.as_bytes());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(tag).unwrap(),
            mac.finalize().into_bytes().to_vec()
        );
    }

    #[test]
    fn custom_data_refusals() {
        let minted = custom_data(KEY, &claims());
        let now = 1_700_000_000;
        assert_eq!(
            verify_custom_data(b"another key", &minted, now),
            Err(CustomDataError::BadSignature)
        );
        assert_eq!(
            verify_custom_data(KEY, &minted, 1_700_003_600),
            Err(CustomDataError::Expired)
        );
        // Claims swapped under the old MAC.
        let mut other = claims();
        other.license_type = LicenseKind::Persistent;
        let forged_body = custom_data(KEY, &other);
        let (forged_body, _) = forged_body.split_once('.').unwrap();
        let (_, tag) = minted.split_once('.').unwrap();
        assert_eq!(
            verify_custom_data(KEY, &format!("{forged_body}.{tag}"), now),
            Err(CustomDataError::BadSignature)
        );
        // A correctly MACed body that is not the claims JSON.
        let body = URL_SAFE_NO_PAD.encode(br#"{"userId":"u"}"#);
        let tag = URL_SAFE_NO_PAD.encode(mac(KEY, body.as_bytes()));
        assert_eq!(
            verify_custom_data(KEY, &format!("{body}.{tag}"), now),
            Err(CustomDataError::Malformed)
        );
        for bad in [
            "",
            "nodot",
            "a.b.c",
            "abc.!!!",
            &"a".repeat(MAX_CUSTOM_DATA_BYTES + 1),
        ] {
            let err = verify_custom_data(KEY, bad, now).unwrap_err();
            assert!(
                matches!(
                    err,
                    CustomDataError::Malformed | CustomDataError::BadSignature
                ),
                "{bad}: {err:?}"
            );
        }
        assert_eq!(CustomDataError::Expired.code(), "expired");
    }

    #[test]
    fn license_url_appends_customdata() {
        assert_eq!(
            license_url("http://pr/rightsmanager.asmx", "a.b"),
            "http://pr/rightsmanager.asmx?customdata=a.b"
        );
        assert_eq!(
            license_url("http://pr/r.asmx?cfg=1", "a.b"),
            "http://pr/r.asmx?cfg=1&customdata=a.b"
        );
        assert_eq!(
            license_url("http://pr/r.asmx?", "a.b"),
            "http://pr/r.asmx?customdata=a.b"
        );
        assert_eq!(
            license_url("http://pr/r.asmx?x=1&", "a.b"),
            "http://pr/r.asmx?x=1&customdata=a.b"
        );
    }

    #[test]
    fn real_shaped_challenges_pass() {
        assert_eq!(check_challenge(CHALLENGE.as_bytes()), Ok(()));
        // BOM, no declaration, other prefix, surrounding whitespace.
        let variant = CHALLENGE
            .replace(r#"<?xml version="1.0" encoding="utf-8"?>"#, "\u{feff}  \n")
            .replace("soap:", "s:")
            .replace("xmlns:soap", "xmlns:s");
        assert_eq!(check_challenge(format!("{variant}\r\n").as_bytes()), Ok(()));
    }

    #[test]
    fn non_challenges_are_refused() {
        let cases: Vec<(Vec<u8>, ChallengeError)> = vec![
            (vec![], ChallengeError::Empty),
            (
                vec![b' '; MAX_CHALLENGE_BYTES + 1],
                ChallengeError::TooLarge,
            ),
            (vec![0xff, 0xfe, b'<', 0], ChallengeError::NotUtf8),
            (
                CHALLENGE
                    .replace("?>", "?><!DOCTYPE x [<!ENTITY a \"aaaa\">]>")
                    .into_bytes(),
                ChallengeError::DocumentTypeDeclaration,
            ),
            (
                CHALLENGE
                    .replace("<LA ", "<!entity x SYSTEM \"file:///etc/passwd\"><LA ")
                    .into_bytes(),
                ChallengeError::DocumentTypeDeclaration,
            ),
            (b"{\"kids\":[]}".to_vec(), ChallengeError::NotSoapEnvelope),
            (
                b"<?xml version=\"1.0\"".to_vec(),
                ChallengeError::NotSoapEnvelope,
            ),
            (
                CHALLENGE.replace("</soap:Envelope>", "").into_bytes(),
                ChallengeError::NotSoapEnvelope,
            ),
            (
                CHALLENGE
                    .replace("soap:Envelope", "soap:Envelop")
                    .into_bytes(),
                ChallengeError::NotSoapEnvelope,
            ),
            (
                CHALLENGE.replace("soap:Body", "soap:Header").into_bytes(),
                ChallengeError::NotSoapEnvelope,
            ),
            (
                CHALLENGE
                    .replace("AcquireLicense", "AcknowledgeLicense")
                    .into_bytes(),
                ChallengeError::NotAcquireLicense,
            ),
            (
                // The name as text only, not as an element.
                CHALLENGE
                    .replace("<AcquireLicense", "<Other")
                    .replace("</AcquireLicense>", "AcquireLicense</Other>")
                    .into_bytes(),
                ChallengeError::NotAcquireLicense,
            ),
        ];
        for (body, expected) in cases {
            let err = check_challenge(&body).unwrap_err();
            assert_eq!(err, expected, "{}", String::from_utf8_lossy(&body));
            assert_eq!(err.code(), "invalid_license_request");
        }
    }

    #[test]
    fn soap_action_is_the_quoted_acquire_license_action() {
        assert_eq!(
            SOAP_ACTION.trim_matches('"'),
            "http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense"
        );
        assert!(SOAP_ACTION.starts_with('"') && SOAP_ACTION.ends_with('"'));
    }

    #[test]
    fn server_answers_are_classified() {
        let license = r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><AcquireLicenseResponse xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><AcquireLicenseResult>...</AcquireLicenseResult></AcquireLicenseResponse></soap:Body></soap:Envelope>"#;
        assert_eq!(classify_response(200, license.as_bytes()), Ok(()));
        let fault = |code: &str| {
            format!(
                r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>{code}</faultcode><faultstring>System.Runtime.InteropServices.COMException: 0x8004C600</faultstring><detail><Exception><StatusCode>0x8004C600</StatusCode></Exception></detail></soap:Fault></soap:Body></soap:Envelope>"#
            )
        };
        let server = classify_response(500, fault("soap:Server").as_bytes()).unwrap_err();
        assert_eq!(
            server,
            ServerError::Fault {
                fault_code: "soap:Server".into(),
                status_code: Some("0x8004C600".into())
            }
        );
        assert_eq!(
            (server.http_status(), server.code()),
            (502, "provider_error")
        );
        let client = classify_response(500, fault("s:Client").as_bytes()).unwrap_err();
        assert_eq!(client, ServerError::InvalidChallenge);
        assert_eq!(client.http_status(), 400);
        assert!(client.is_client_fault());
        // A license body with an error status is not a license.
        assert_eq!(
            classify_response(503, license.as_bytes()),
            Err(ServerError::UnexpectedResponse { http_status: 503 })
        );
        assert_eq!(
            classify_response(502, b"<html>Bad Gateway</html>"),
            Err(ServerError::UnexpectedResponse { http_status: 502 })
        );
        assert_eq!(classify_response(200, b"").unwrap_err().http_status(), 502);
    }
}
