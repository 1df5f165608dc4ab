//! Widevine cloud license proxy requests: the edge as a "license proxy".
//!
//! A Widevine CDM's challenge is a signed protobuf the edge cannot read or mint licenses for;
//! only a Widevine license service can. After enforcing entitlement, the edge wraps the
//! challenge in the service's license-proxy JSON, with `policy_overrides` derived from the
//! viewer's [`LicensePolicy`], signs it with the provider's AES key, and relays the license.
//!
//! Wire format, as the service documents it:
//!
//! ```text
//! inner = {"payload": b64(challenge), "content_id": b64(content id),
//!          "provider": "<provider>", "allowed_track_types": "SD_HD",
//!          "policy_overrides": {"can_play": true, "can_persist": <bool>, "can_renew": false,
//!                               "license_duration_seconds": N,
//!                               "rental_duration_seconds": N,
//!                               "playback_duration_seconds": N}}
//! body  = {"request": b64(inner JSON bytes), "signature": b64(sig), "signer": "<provider>"}
//! sig   = AES-256-CBC(key = provider key, iv = provider IV,
//!                     PKCS#7-pad(SHA-1(inner JSON bytes)))        -- 20 bytes -> 32 bytes
//! ```
//!
//! (`b64` is standard base64 with padding.)
//!
//! ## Why PKCS#7 padding of the digest
//!
//! CBC encrypts whole 16-byte blocks and a SHA-1 digest is 20 bytes. Widevine's published
//! signing examples (and Shaka Packager's AES request signer, which talks to the same service)
//! pad the digest to the block size with PKCS#5/#7 — twelve bytes of `0x0c` — before
//! encrypting. The service verifies by computing the same encryption of its own SHA-1 of
//! `request` (equivalently: decrypting and comparing), so the padding is part of the signature:
//! zero padding, no padding (truncation) or ciphertext stealing would all produce
//! `SIGNATURE_FAILED`.
//!
//! ## Policy overrides
//!
//! - rental: `can_persist` false; license, rental and playback durations all equal the policy
//!   duration (the viewer has that long to start and to finish).
//! - persistent: `can_persist` true; `license_duration_seconds` is the policy duration,
//!   `rental_duration_seconds` and `playback_duration_seconds` are 0, which Widevine reads as
//!   "no separate limit", so the license duration alone bounds an offline license.
//!
//! `can_renew` is false: the edge issues a fresh license per request (entitlement is checked
//! each time) rather than running Widevine's renewal protocol.
//!
//! ## Response status mapping ([`ProviderError`])
//!
//! The service answers HTTP 200 with a JSON `status`. `"OK"` carries the license in `license`.
//! Everything else is an error whose fault decides the edge's HTTP status:
//!
//! | `status`                                   | variant              | fault    | HTTP |
//! |--------------------------------------------|----------------------|----------|------|
//! | `INVALID_LICENSE_CHALLENGE`, `INVALID_PSSH` | `InvalidChallenge`   | client   | 400  |
//! | `SIGNATURE_FAILED`                         | `SignatureFailed`    | provider | 502  |
//! | `ACCESS_DENIED`                            | `AccessDenied`       | provider | 502  |
//! | `PROVIDER_ERROR`, `INTERNAL_ERROR`, `MALFORMED_REQUEST`, anything else | `Rejected` | provider | 502 |
//! | not JSON, no `status`, `OK` without a base64 `license` | `MalformedResponse` | provider | 502 |
//!
//! `SIGNATURE_FAILED` and `ACCESS_DENIED` mean the edge's credentials or the provider account
//! are wrong — nothing the viewer can fix, so they must not look like a bad request.

use std::fmt;

use aes::Aes256;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockEncryptMut, KeyIvInit};
use serde::Serialize;
use serde_json::Value;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::policy::{LicenseKind, LicensePolicy};

/// Largest CDM challenge forwarded. Real challenges are 1–4 KiB (a device certificate chain
/// and a signed request); a service-certificate request is two bytes.
pub const MAX_CHALLENGE_BYTES: usize = 64 * 1024;
/// Largest content id embedded (the edge uses the title's id).
pub const MAX_CONTENT_ID_BYTES: usize = 256;
/// Largest provider response read. Licenses are a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// The track types requested: SD and HD video plus audio, the service's common default.
pub const ALLOWED_TRACK_TYPES: &str = "SD_HD";

type Aes256CbcEnc = cbc::Encryptor<Aes256>;

/// A provider's signing credentials. `Debug` shows the provider name only.
#[derive(Clone, PartialEq, Eq)]
pub struct WidevineCredentials {
    /// The provider (signer) name the service knows the account by.
    pub provider: String,
    /// The AES-256 signing key.
    pub key: [u8; 32],
    /// The AES-CBC signing IV.
    pub iv: [u8; 16],
}

/// Why credentials could not be loaded. Never contains key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("the Widevine provider name must be 1-128 printable ASCII characters")]
    InvalidProvider,
    #[error("the Widevine signing key must be 64 hex digits (32 bytes)")]
    InvalidKey,
    #[error("the Widevine signing IV must be 32 hex digits (16 bytes)")]
    InvalidIv,
}

impl WidevineCredentials {
    /// Loads credentials as providers hand them out: a name and hex key and IV. Surrounding
    /// whitespace (a trailing newline in a secret file) is ignored.
    pub fn from_hex(
        provider: &str,
        key_hex: &str,
        iv_hex: &str,
    ) -> Result<WidevineCredentials, CredentialsError> {
        let provider = provider.trim();
        if provider.is_empty()
            || provider.len() > 128
            || !provider.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(CredentialsError::InvalidProvider);
        }
        let mut key = [0u8; 32];
        hex::decode_to_slice(key_hex.trim(), &mut key).map_err(|_| CredentialsError::InvalidKey)?;
        let mut iv = [0u8; 16];
        hex::decode_to_slice(iv_hex.trim(), &mut iv).map_err(|_| CredentialsError::InvalidIv)?;
        Ok(WidevineCredentials {
            provider: provider.to_string(),
            key,
            iv,
        })
    }
}

impl fmt::Debug for WidevineCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WidevineCredentials")
            .field("provider", &self.provider)
            .field("key", &"<redacted>")
            .field("iv", &"<redacted>")
            .finish()
    }
}

/// Why a challenge was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the Widevine challenge is empty")]
    EmptyChallenge,
    #[error("the Widevine challenge is larger than {MAX_CHALLENGE_BYTES} bytes")]
    ChallengeTooLarge,
    #[error("the content id is larger than {MAX_CONTENT_ID_BYTES} bytes")]
    ContentIdTooLarge,
}

impl RequestError {
    /// The stable machine code: the challenge is the client's, so it is a bad request.
    pub fn code(&self) -> &'static str {
        "invalid_license_request"
    }
}

/// The `policy_overrides` object, in the service's field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PolicyOverrides {
    pub can_play: bool,
    pub can_persist: bool,
    pub can_renew: bool,
    pub license_duration_seconds: u64,
    pub rental_duration_seconds: u64,
    pub playback_duration_seconds: u64,
}

impl PolicyOverrides {
    /// Expresses the viewer's policy in Widevine's terms (see the module docs).
    pub fn from_policy(policy: &LicensePolicy) -> PolicyOverrides {
        let duration = policy.duration_secs;
        match policy.kind {
            LicenseKind::Rental => PolicyOverrides {
                can_play: true,
                can_persist: false,
                can_renew: false,
                license_duration_seconds: duration,
                rental_duration_seconds: duration,
                playback_duration_seconds: duration,
            },
            LicenseKind::Persistent => PolicyOverrides {
                can_play: true,
                can_persist: true,
                can_renew: false,
                license_duration_seconds: duration,
                rental_duration_seconds: 0,
                playback_duration_seconds: 0,
            },
        }
    }
}

#[derive(Serialize)]
struct InnerRequest<'a> {
    payload: String,
    content_id: String,
    provider: &'a str,
    allowed_track_types: &'a str,
    policy_overrides: PolicyOverrides,
}

#[derive(Serialize)]
struct OuterRequest<'a> {
    request: String,
    signature: String,
    signer: &'a str,
}

/// Builds the signed license-proxy body for `challenge` (the CDM's raw message bytes).
pub fn build_proxy_request(
    creds: &WidevineCredentials,
    challenge: &[u8],
    content_id: &[u8],
    policy: &LicensePolicy,
) -> Result<Vec<u8>, RequestError> {
    if challenge.is_empty() {
        return Err(RequestError::EmptyChallenge);
    }
    if challenge.len() > MAX_CHALLENGE_BYTES {
        return Err(RequestError::ChallengeTooLarge);
    }
    if content_id.len() > MAX_CONTENT_ID_BYTES {
        return Err(RequestError::ContentIdTooLarge);
    }
    let inner = InnerRequest {
        payload: STANDARD.encode(challenge),
        content_id: STANDARD.encode(content_id),
        provider: &creds.provider,
        allowed_track_types: ALLOWED_TRACK_TYPES,
        policy_overrides: PolicyOverrides::from_policy(policy),
    };
    // Serializing plain strings, bools and integers cannot fail.
    let inner_json = serde_json::to_vec(&inner).unwrap_or_default();
    let outer = OuterRequest {
        request: STANDARD.encode(&inner_json),
        signature: STANDARD.encode(sign(creds, &inner_json)),
        signer: &creds.provider,
    };
    Ok(serde_json::to_vec(&outer).unwrap_or_default())
}

/// The 32-byte signature of `message`: AES-256-CBC over PKCS#7-padded SHA-1 (module docs).
pub fn sign(creds: &WidevineCredentials, message: &[u8]) -> Vec<u8> {
    let digest = Sha1::digest(message);
    Aes256CbcEnc::new(&creds.key.into(), &creds.iv.into()).encrypt_padded_vec_mut::<Pkcs7>(&digest)
}

/// Checks a `request`/`signature` pair as the service does. Constant-time in the comparison.
pub fn verify_signature(
    creds: &WidevineCredentials,
    request_b64: &str,
    signature_b64: &str,
) -> bool {
    // A maximal challenge is base64-encoded twice (payload, then request): about 1.8x.
    let too_long = MAX_CHALLENGE_BYTES * 2 + 4096;
    if request_b64.len() > too_long || signature_b64.len() > 64 {
        return false;
    }
    let (Ok(request), Ok(signature)) =
        (STANDARD.decode(request_b64), STANDARD.decode(signature_b64))
    else {
        return false;
    };
    let expected = sign(creds, &request);
    // Lengths are public (always 32 when valid); `ct_eq` on unequal lengths is false.
    bool::from(expected.ct_eq(&signature))
}

/// Why the provider did not return a license.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The CDM's challenge was refused (`INVALID_LICENSE_CHALLENGE`, `INVALID_PSSH`).
    #[error("the license service refused the challenge")]
    InvalidChallenge,
    /// The service could not verify the edge's signature: wrong key, IV or provider name.
    #[error("the license service refused the edge's signature")]
    SignatureFailed,
    /// The provider account may not issue this license.
    #[error("the license service denied access to the provider")]
    AccessDenied,
    /// Any other non-OK status; holds it (at most 64 printable characters) for logs.
    #[error("the license service answered status {status}")]
    Rejected { status: String },
    /// The answer was not the documented JSON.
    #[error("the license service's answer could not be read")]
    MalformedResponse,
}

impl ProviderError {
    /// The stable machine code for error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::InvalidChallenge => "invalid_license_challenge",
            ProviderError::SignatureFailed => "provider_signature_failed",
            ProviderError::AccessDenied => "provider_access_denied",
            ProviderError::Rejected { .. } => "provider_error",
            ProviderError::MalformedResponse => "provider_bad_response",
        }
    }

    /// True when the viewer's request is at fault, false when the provider or the edge's
    /// configuration is.
    pub fn is_client_fault(&self) -> bool {
        matches!(self, ProviderError::InvalidChallenge)
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

/// Reads the service's answer, returning the license bytes to relay to the CDM.
pub fn parse_proxy_response(body: &[u8]) -> Result<Vec<u8>, ProviderError> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(ProviderError::MalformedResponse);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|_| ProviderError::MalformedResponse)?;
    let status = value
        .get("status")
        .and_then(Value::as_str)
        .ok_or(ProviderError::MalformedResponse)?;
    match status {
        "OK" => value
            .get("license")
            .and_then(Value::as_str)
            .and_then(|license| STANDARD.decode(license).ok())
            .filter(|license| !license.is_empty())
            .ok_or(ProviderError::MalformedResponse),
        "INVALID_LICENSE_CHALLENGE" | "INVALID_PSSH" => Err(ProviderError::InvalidChallenge),
        "SIGNATURE_FAILED" => Err(ProviderError::SignatureFailed),
        "ACCESS_DENIED" => Err(ProviderError::AccessDenied),
        other => Err(ProviderError::Rejected {
            status: other
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockDecryptMut;

    fn creds() -> WidevineCredentials {
        WidevineCredentials::from_hex(
            "widevine_test",
            "1ae8ccd0e7985cc0b6203a55855a1034afc252980e970ca90e5202689f947ab9",
            "d58ce954203b7c9a9a9d467f59839249",
        )
        .unwrap()
    }

    fn decode_body(body: &[u8]) -> (Value, Value) {
        let outer: Value = serde_json::from_slice(body).unwrap();
        let inner_bytes = STANDARD.decode(outer["request"].as_str().unwrap()).unwrap();
        (outer, serde_json::from_slice(&inner_bytes).unwrap())
    }

    #[test]
    fn request_carries_challenge_content_and_rental_policy() {
        let challenge = b"\x08\x01\x12\x99CHALLENGE";
        let body =
            build_proxy_request(&creds(), challenge, b"video-1", &LicensePolicy::DEFAULT).unwrap();
        let (outer, inner) = decode_body(&body);
        assert_eq!(outer["signer"], "widevine_test");
        assert_eq!(inner["payload"], STANDARD.encode(challenge));
        assert_eq!(inner["content_id"], STANDARD.encode("video-1"));
        assert_eq!(inner["provider"], "widevine_test");
        assert_eq!(inner["allowed_track_types"], "SD_HD");
        assert_eq!(
            inner["policy_overrides"],
            serde_json::json!({
                "can_play": true, "can_persist": false, "can_renew": false,
                "license_duration_seconds": 3600, "rental_duration_seconds": 3600,
                "playback_duration_seconds": 3600,
            })
        );
    }

    #[test]
    fn persistent_policy_allows_persisting_bounded_by_license_duration() {
        let policy = LicensePolicy {
            kind: LicenseKind::Persistent,
            duration_secs: 86_400,
        };
        let body = build_proxy_request(&creds(), b"c", b"v", &policy).unwrap();
        let (_, inner) = decode_body(&body);
        let overrides: PolicyOverrides =
            serde_json::from_value(inner["policy_overrides"].clone()).unwrap();
        assert_eq!(
            overrides,
            PolicyOverrides {
                can_play: true,
                can_persist: true,
                can_renew: false,
                license_duration_seconds: 86_400,
                rental_duration_seconds: 0,
                playback_duration_seconds: 0,
            }
        );
    }

    #[test]
    fn signature_is_cbc_of_pkcs7_padded_sha1() {
        let creds = creds();
        let body =
            build_proxy_request(&creds, b"challenge", b"v", &LicensePolicy::DEFAULT).unwrap();
        let (outer, _) = decode_body(&body);
        let request = STANDARD.decode(outer["request"].as_str().unwrap()).unwrap();
        let signature = STANDARD
            .decode(outer["signature"].as_str().unwrap())
            .unwrap();
        assert_eq!(signature.len(), 32);
        // Decrypt without unpadding and look at the padding bytes themselves.
        let mut blocks = signature.clone();
        cbc::Decryptor::<Aes256>::new(&creds.key.into(), &creds.iv.into())
            .decrypt_padded_mut::<cbc::cipher::block_padding::NoPadding>(&mut blocks)
            .unwrap();
        assert_eq!(&blocks[..20], Sha1::digest(&request).as_slice());
        assert_eq!(&blocks[20..], &[12u8; 12]);
        assert!(verify_signature(
            &creds,
            outer["request"].as_str().unwrap(),
            outer["signature"].as_str().unwrap()
        ));
    }

    #[test]
    fn signature_matches_openssl_known_answer() {
        // printf '%s' '{"payload":"dGVzdA=="}' | openssl dgst -sha1 -binary \
        //   | openssl enc -aes-256-cbc -K <key> -iv <iv> | base64   (openssl pads with PKCS#7)
        let message = br#"{"payload":"dGVzdA=="}"#;
        assert_eq!(
            STANDARD.encode(sign(&creds(), message)),
            "VYEeiaZ+JzUGlVIP/SLhxGZLox9ImdJrMUnMKD4RUBg="
        );
        assert!(verify_signature(
            &creds(),
            &STANDARD.encode(message),
            "VYEeiaZ+JzUGlVIP/SLhxGZLox9ImdJrMUnMKD4RUBg="
        ));
    }

    #[test]
    fn signature_verification_refuses_tampering_and_other_keys() {
        let creds = creds();
        let body =
            build_proxy_request(&creds, b"challenge", b"v", &LicensePolicy::DEFAULT).unwrap();
        let (outer, _) = decode_body(&body);
        let request = outer["request"].as_str().unwrap();
        let signature = outer["signature"].as_str().unwrap();
        let mut other = creds.clone();
        other.key[0] ^= 1;
        assert!(!verify_signature(&other, request, signature));
        let mut other_iv = creds.clone();
        other_iv.iv[15] ^= 1;
        assert!(!verify_signature(&other_iv, request, signature));
        let tampered = STANDARD.encode(b"{\"payload\":\"\"}");
        assert!(!verify_signature(&creds, &tampered, signature));
        let mut sig = STANDARD.decode(signature).unwrap();
        sig[31] ^= 0x80;
        assert!(!verify_signature(&creds, request, &STANDARD.encode(&sig)));
        assert!(!verify_signature(
            &creds,
            request,
            &STANDARD.encode(&sig[..16])
        ));
        assert!(!verify_signature(&creds, request, "not base64!"));
        assert!(!verify_signature(&creds, "%%", signature));
    }

    #[test]
    fn challenge_bounds() {
        let policy = LicensePolicy::DEFAULT;
        assert_eq!(
            build_proxy_request(&creds(), b"", b"v", &policy),
            Err(RequestError::EmptyChallenge)
        );
        assert_eq!(
            build_proxy_request(&creds(), &vec![1; MAX_CHALLENGE_BYTES + 1], b"v", &policy),
            Err(RequestError::ChallengeTooLarge)
        );
        let largest =
            build_proxy_request(&creds(), &vec![1; MAX_CHALLENGE_BYTES], b"v", &policy).unwrap();
        let (outer, _) = decode_body(&largest);
        assert!(verify_signature(
            &creds(),
            outer["request"].as_str().unwrap(),
            outer["signature"].as_str().unwrap()
        ));
        assert_eq!(
            build_proxy_request(&creds(), b"c", &[0; MAX_CONTENT_ID_BYTES + 1], &policy),
            Err(RequestError::ContentIdTooLarge)
        );
        assert_eq!(
            RequestError::EmptyChallenge.code(),
            "invalid_license_request"
        );
    }

    #[test]
    fn credentials_load_from_hex_and_stay_out_of_debug() {
        let creds = WidevineCredentials::from_hex(
            " widevine_test\n",
            "1AE8CCD0E7985CC0B6203A55855A1034AFC252980E970CA90E5202689F947AB9\n",
            "d58ce954203b7c9a9a9d467f59839249",
        )
        .unwrap();
        assert_eq!(creds, self::creds());
        let debug = format!("{creds:?}");
        assert_eq!(
            debug,
            r#"WidevineCredentials { provider: "widevine_test", key: "<redacted>", iv: "<redacted>" }"#
        );
        let key = "00".repeat(32);
        let iv = "00".repeat(16);
        assert_eq!(
            WidevineCredentials::from_hex("", &key, &iv),
            Err(CredentialsError::InvalidProvider)
        );
        assert_eq!(
            WidevineCredentials::from_hex("a b", &key, &iv),
            Err(CredentialsError::InvalidProvider)
        );
        assert_eq!(
            WidevineCredentials::from_hex("p", &key[..62], &iv),
            Err(CredentialsError::InvalidKey)
        );
        assert_eq!(
            WidevineCredentials::from_hex("p", &key, "zz"),
            Err(CredentialsError::InvalidIv)
        );
    }

    #[test]
    fn responses_map_to_license_or_fault() {
        let license = b"\x08\x02LICENSE";
        let ok = serde_json::json!({
            "status": "OK", "status_message": "", "license": STANDARD.encode(license),
            "license_metadata": {"content_id": "dg==", "license_type": "STREAMING"},
        });
        assert_eq!(
            parse_proxy_response(ok.to_string().as_bytes()).unwrap(),
            license
        );
        let cases = [
            (
                r#"{"status":"INVALID_LICENSE_CHALLENGE"}"#,
                ProviderError::InvalidChallenge,
                400,
            ),
            (
                r#"{"status":"INVALID_PSSH"}"#,
                ProviderError::InvalidChallenge,
                400,
            ),
            (
                r#"{"status":"SIGNATURE_FAILED"}"#,
                ProviderError::SignatureFailed,
                502,
            ),
            (
                r#"{"status":"ACCESS_DENIED"}"#,
                ProviderError::AccessDenied,
                502,
            ),
            (
                r#"{"status":"PROVIDER_ERROR"}"#,
                ProviderError::Rejected {
                    status: "PROVIDER_ERROR".into(),
                },
                502,
            ),
            (
                r#"{"status":"NEW STATUS\n"}"#,
                ProviderError::Rejected {
                    status: "NEWSTATUS".into(),
                },
                502,
            ),
            (r#"{"status":"OK"}"#, ProviderError::MalformedResponse, 502),
            (
                r#"{"status":"OK","license":""}"#,
                ProviderError::MalformedResponse,
                502,
            ),
            (
                r#"{"status":"OK","license":"!!"}"#,
                ProviderError::MalformedResponse,
                502,
            ),
            (
                r#"{"license":"AAAA"}"#,
                ProviderError::MalformedResponse,
                502,
            ),
            (
                "<html>502 Bad Gateway</html>",
                ProviderError::MalformedResponse,
                502,
            ),
        ];
        for (body, expected, status) in cases {
            let err = parse_proxy_response(body.as_bytes()).unwrap_err();
            assert_eq!(err, expected, "{body}");
            assert_eq!(err.http_status(), status, "{body}");
            assert_eq!(err.is_client_fault(), status == 400);
        }
        assert_eq!(
            ProviderError::SignatureFailed.code(),
            "provider_signature_failed"
        );
        assert_eq!(
            ProviderError::InvalidChallenge.code(),
            "invalid_license_challenge"
        );
        assert_eq!(
            parse_proxy_response(&vec![b' '; MAX_RESPONSE_BYTES + 1]),
            Err(ProviderError::MalformedResponse)
        );
    }
}
