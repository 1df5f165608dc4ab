//! The JWT attack suite: hostile tokens from the literature and from our own review, each
//! refused with the exact reason code the edge reports.
//!
//! The verifier under attack holds an RS256 key (`rsa-a`), an ES256 key (`ec-1`) and an EdDSA
//! key (`ed-1`); the attacker holds another RSA key (`rsa-b`) and every public key.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use playback::jwt::{
    Algorithm, JwtRules, JwtSigner, JwtVerifier, KeyRing, VerificationKey, MAX_JWT_LEN,
};
use playback::Reason;
use serde_json::{json, Value};

const NOW: u64 = 1_700_000_000;
const RSA_A: &str = include_str!("fixtures/jwt/rsa-2048-a.pem");
const RSA_A_PUB: &str = include_str!("fixtures/jwt/rsa-2048-a.pub.pem");
const RSA_B: &str = include_str!("fixtures/jwt/rsa-2048-b.pem");
const P256: &str = include_str!("fixtures/jwt/p256.pem");
const P256_PUB: &str = include_str!("fixtures/jwt/p256.pub.pem");
const ED25519: &str = include_str!("fixtures/jwt/ed25519.pem");
const ED25519_PUB: &str = include_str!("fixtures/jwt/ed25519.pub.pem");

fn rules() -> JwtRules {
    JwtRules {
        issuer: "https://auth.example.com".into(),
        audience: "streaming-edge".into(),
        leeway_secs: 30,
    }
}

fn verifier() -> JwtVerifier {
    let mut ring = KeyRing::new();
    for (alg, pem, kid) in [
        (Algorithm::Rs256, RSA_A_PUB, "rsa-a"),
        (Algorithm::Es256, P256_PUB, "ec-1"),
        (Algorithm::EdDsa, ED25519_PUB, "ed-1"),
    ] {
        let key = VerificationKey::from_public_pem(alg, pem)
            .unwrap()
            .with_kid(kid)
            .unwrap();
        ring.push(key).unwrap();
    }
    JwtVerifier::new(ring, rules())
}

fn rsa_a() -> JwtSigner {
    JwtSigner::from_pem(Algorithm::Rs256, RSA_A)
        .unwrap()
        .with_kid("rsa-a")
}

fn rsa_b() -> JwtSigner {
    JwtSigner::from_pem(Algorithm::Rs256, RSA_B).unwrap()
}

fn ec() -> JwtSigner {
    JwtSigner::from_pem(Algorithm::Es256, P256)
        .unwrap()
        .with_kid("ec-1")
}

fn ed() -> JwtSigner {
    JwtSigner::from_pem(Algorithm::EdDsa, ED25519)
        .unwrap()
        .with_kid("ed-1")
}

fn claims() -> Value {
    json!({
        "sub": "viewer-1", "iss": "https://auth.example.com", "aud": "streaming-edge",
        "exp": NOW + 600, "iat": NOW,
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with the given raw header and payload, signed by `signer`.
fn forged(signer: &JwtSigner, header: &str, payload: &str) -> String {
    signer.sign_raw(header.as_bytes(), payload.as_bytes())
}

/// A token with the given raw header and payload and an empty signature.
fn unsigned(header: &str, payload: &str) -> String {
    format!("{}.{}.", b64(header.as_bytes()), b64(payload.as_bytes()))
}

fn refused(token: &str) -> Reason {
    verifier()
        .verify(token, NOW)
        .expect_err("the attack must be refused")
}

#[test]
fn genuine_tokens_of_every_algorithm_pass() {
    for signer in [rsa_a(), ec(), ed()] {
        let token = signer.sign_json(&claims());
        let verified = verifier().verify_detailed(&token, NOW).unwrap();
        assert_eq!(verified.alg, signer.algorithm());
        assert_eq!(verified.claims.sub, "viewer-1");
    }
}

#[test]
fn alg_none_lowercase() {
    let token = unsigned(r#"{"alg":"none"}"#, &claims().to_string());
    assert_eq!(refused(&token), Reason::UnsupportedAlgorithm);
}

#[test]
fn alg_none_capitalised() {
    let token = unsigned(r#"{"alg":"None","kid":"rsa-a"}"#, &claims().to_string());
    assert_eq!(refused(&token), Reason::UnsupportedAlgorithm);
}

#[test]
fn alg_none_uppercase() {
    let token = unsigned(r#"{"alg":"NONE"}"#, &claims().to_string());
    assert_eq!(refused(&token), Reason::UnsupportedAlgorithm);
}

#[test]
fn alg_unsupported_hs512_and_ps256() {
    for alg in ["HS512", "PS256", "ES384", "Ed25519", "rs256"] {
        let token = forged(
            &rsa_b(),
            &format!(r#"{{"alg":"{alg}","kid":"rsa-a"}}"#),
            &claims().to_string(),
        );
        assert_eq!(refused(&token), Reason::UnsupportedAlgorithm, "{alg}");
    }
}

#[test]
fn alg_missing_or_not_a_string() {
    let payload = claims().to_string();
    assert_eq!(
        refused(&forged(&rsa_a(), r#"{"kid":"rsa-a"}"#, &payload)),
        Reason::Malformed
    );
    assert_eq!(
        refused(&forged(&rsa_a(), r#"{"alg":["RS256"]}"#, &payload)),
        Reason::Malformed
    );
}

#[test]
fn hs256_signed_with_the_rsa_public_key_pem() {
    // The classic key-confusion attack: the public PEM used as an HMAC secret.
    let hmac = JwtSigner::hs256(RSA_A_PUB.as_bytes());
    let payload = claims().to_string();
    let with_kid = forged(&hmac, r#"{"alg":"HS256","kid":"rsa-a"}"#, &payload);
    assert_eq!(refused(&with_kid), Reason::UnsupportedAlgorithm);
    let without_kid = forged(&hmac, r#"{"alg":"HS256"}"#, &payload);
    assert_eq!(refused(&without_kid), Reason::UnsupportedAlgorithm);
}

#[test]
fn hs256_signed_with_the_rsa_modulus_bytes() {
    let jwk = rsa_a().public_jwk().unwrap();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let token = forged(
        &JwtSigner::hs256(&n),
        r#"{"alg":"HS256","kid":"rsa-a"}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::UnsupportedAlgorithm);
}

#[test]
fn rs256_token_against_an_es256_pinned_key() {
    let token = forged(
        &rsa_a(),
        r#"{"alg":"RS256","kid":"ec-1"}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::UnsupportedAlgorithm);
}

#[test]
fn es256_token_against_an_eddsa_pinned_key() {
    let token = forged(
        &ec(),
        r#"{"alg":"ES256","kid":"ed-1"}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::UnsupportedAlgorithm);
}

#[test]
fn kid_path_traversal_names_no_key() {
    let token = forged(
        &rsa_a(),
        r#"{"alg":"RS256","kid":"../../etc/passwd"}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::UnknownKey);
    let token = forged(
        &rsa_a(),
        r#"{"alg":"RS256","kid":"..\\..\\windows\\win.ini"}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::Malformed);
}

#[test]
fn kid_sql_injection() {
    let token = forged(
        &rsa_a(),
        r#"{"alg":"RS256","kid":"' OR 1=1 --"}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::Malformed);
}

#[test]
fn kid_overlong_or_not_a_string() {
    let long = "k".repeat(129);
    let token = forged(
        &rsa_a(),
        &format!(r#"{{"alg":"RS256","kid":"{long}"}}"#),
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::Malformed);
    let token = forged(
        &rsa_a(),
        r#"{"alg":"RS256","kid":7}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::Malformed);
    let token = forged(
        &rsa_a(),
        r#"{"alg":"RS256","kid":""}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::Malformed);
}

#[test]
fn kid_of_an_unknown_key() {
    let token = rsa_b().with_kid("rsa-b").sign_json(&claims());
    assert_eq!(refused(&token), Reason::UnknownKey);
}

#[test]
fn jku_header_is_ignored() {
    let token = forged(
        &rsa_b(),
        r#"{"alg":"RS256","kid":"rsa-a","jku":"https://evil.example/jwks.json"}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::BadSignature);
}

#[test]
fn x5u_header_is_ignored() {
    let token = forged(
        &rsa_b(),
        r#"{"alg":"RS256","kid":"rsa-a","x5u":"https://evil.example/cert.pem"}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::BadSignature);
}

#[test]
fn embedded_jwk_self_signed_is_ignored() {
    let attacker = rsa_b();
    let header = json!({"alg": "RS256", "jwk": attacker.public_jwk().unwrap()});
    let token = forged(&attacker, &header.to_string(), &claims().to_string());
    assert_eq!(refused(&token), Reason::BadSignature);
    let header = json!({"alg": "RS256", "kid": "rsa-a", "jwk": attacker.public_jwk().unwrap()});
    let token = forged(&attacker, &header.to_string(), &claims().to_string());
    assert_eq!(refused(&token), Reason::BadSignature);
}

#[test]
fn x5c_header_is_ignored() {
    let header =
        r#"{"alg":"RS256","kid":"rsa-a","x5c":["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]}"#;
    let token = forged(&rsa_b(), header, &claims().to_string());
    assert_eq!(refused(&token), Reason::BadSignature);
}

#[test]
fn expired() {
    let mut c = claims();
    c["exp"] = json!(NOW - 31);
    assert_eq!(refused(&rsa_a().sign_json(&c)), Reason::Expired);
    c["exp"] = json!(NOW - 29);
    assert!(verifier().verify(&rsa_a().sign_json(&c), NOW).is_ok());
}

#[test]
fn nbf_in_the_future() {
    let mut c = claims();
    c["nbf"] = json!(NOW + 31);
    assert_eq!(refused(&ec().sign_json(&c)), Reason::NotYetValid);
}

#[test]
fn wrong_issuer() {
    let mut c = claims();
    c["iss"] = json!("https://evil.example.com");
    assert_eq!(refused(&ed().sign_json(&c)), Reason::WrongIssuer);
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(refused(&ed().sign_json(&c)), Reason::WrongIssuer);
}

#[test]
fn wrong_audience() {
    let mut c = claims();
    c["aud"] = json!("another-service");
    assert_eq!(refused(&rsa_a().sign_json(&c)), Reason::WrongAudience);
}

#[test]
fn audience_array_without_ours() {
    let mut c = claims();
    c["aud"] = json!(["a", "b", "streaming-edge-evil"]);
    assert_eq!(refused(&rsa_a().sign_json(&c)), Reason::WrongAudience);
    c["aud"] = json!(["a", "streaming-edge"]);
    assert!(verifier().verify(&rsa_a().sign_json(&c), NOW).is_ok());
}

#[test]
fn truncated() {
    let token = rsa_a().sign_json(&claims());
    let cut = &token[..token.rfind('.').unwrap()];
    assert_eq!(refused(cut), Reason::Malformed);
    let half = &token[..token.len() / 2];
    assert_eq!(refused(half), Reason::Malformed);
}

#[test]
fn extra_segment() {
    let token = rsa_a().sign_json(&claims());
    assert_eq!(refused(&format!("{token}.")), Reason::Malformed);
    assert_eq!(refused(&format!("{token}.e30")), Reason::Malformed);
}

#[test]
fn bad_base64() {
    let token = rsa_a().sign_json(&claims());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1].insert(3, '*');
    assert_eq!(refused(&parts.join(".")), Reason::Malformed);
    let standard = token.replace('-', "+").replace('_', "/");
    if standard != token {
        assert_eq!(refused(&standard), Reason::Malformed);
    }
}

#[test]
fn padded_base64() {
    let header = URL_SAFE.encode(br#"{"alg":"RS256","kid":"rsa-a"}"#);
    assert!(header.ends_with('='), "{header}");
    let token = rsa_a().sign_json(&claims());
    let rest = &token[token.find('.').unwrap()..];
    assert_eq!(refused(&format!("{header}{rest}")), Reason::Malformed);
}

#[test]
fn non_canonical_base64_trailing_bits() {
    let token = ed().sign_json(&claims());
    // A 64-byte signature is 86 characters; the last carries 4 unused bits.
    let mut chars: Vec<char> = token.chars().collect();
    let last = chars.last_mut().unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let pos = alphabet.iter().position(|&c| c as char == *last).unwrap();
    *last = alphabet[(pos & !0x0f) | ((pos + 1) & 0x0f)] as char;
    assert_eq!(
        refused(&chars.into_iter().collect::<String>()),
        Reason::Malformed
    );
}

#[test]
fn oversized_header() {
    let header = json!({"alg": "RS256", "kid": "rsa-a", "pad": "x".repeat(800)});
    let token = forged(&rsa_a(), &header.to_string(), &claims().to_string());
    assert!(token.len() < MAX_JWT_LEN);
    assert_eq!(refused(&token), Reason::Malformed);
}

#[test]
fn oversized_token() {
    let mut c = claims();
    c["pad"] = json!("x".repeat(MAX_JWT_LEN));
    assert_eq!(refused(&rsa_a().sign_json(&c)), Reason::Malformed);
    let small = verifier().with_max_token_bytes(200);
    assert_eq!(
        small.verify(&rsa_a().sign_json(&claims()), NOW),
        Err(Reason::Malformed)
    );
}

#[test]
fn duplicate_claims() {
    let payload = format!(
        r#"{{"sub":"viewer-1","sub":"admin","iss":"https://auth.example.com","aud":"streaming-edge","exp":{}}}"#,
        NOW + 600
    );
    let token = forged(&rsa_a(), r#"{"alg":"RS256","kid":"rsa-a"}"#, &payload);
    assert_eq!(refused(&token), Reason::Malformed);
    let payload = format!(
        r#"{{"sub":"viewer-1","iss":"https://auth.example.com","aud":"streaming-edge","exp":{},"exp":99999999999}}"#,
        NOW - 600
    );
    let token = forged(&rsa_a(), r#"{"alg":"RS256","kid":"rsa-a"}"#, &payload);
    assert_eq!(refused(&token), Reason::Malformed);
}

#[test]
fn duplicate_header_alg() {
    let token = forged(
        &rsa_a(),
        r#"{"alg":"RS256","kid":"rsa-a","alg":"none"}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::Malformed);
    let token = forged(
        &rsa_a(),
        r#"{"alg":"none","kid":"rsa-a","alg":"RS256"}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::Malformed);
}

#[test]
fn duplicate_header_kid() {
    let token = forged(
        &rsa_a(),
        r#"{"alg":"RS256","kid":"ec-1","kid":"rsa-a"}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::Malformed);
}

#[test]
fn critical_header() {
    for crit in [r#"["exp"]"#, "[]", r#"["b64"]"#] {
        let header =
            format!(r#"{{"alg":"RS256","kid":"rsa-a","crit":{crit},"exp":1,"b64":false}}"#);
        let token = forged(&rsa_a(), &header, &claims().to_string());
        assert_eq!(refused(&token), Reason::Malformed, "{crit}");
    }
}

#[test]
fn header_not_an_object() {
    let token = forged(&rsa_a(), r#"["RS256"]"#, &claims().to_string());
    assert_eq!(refused(&token), Reason::Malformed);
}

#[test]
fn empty_signature() {
    for signer in [rsa_a(), ec(), ed()] {
        let token = signer.sign_json(&claims());
        let stripped = &token[..=token.rfind('.').unwrap()];
        assert_eq!(
            refused(stripped),
            Reason::BadSignature,
            "{}",
            signer.algorithm()
        );
    }
}

#[test]
fn signature_of_wrong_length() {
    for signer in [rsa_a(), ec(), ed()] {
        let token = signer.sign_json(&claims());
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        sig.pop();
        let short = format!("{input}.{}", b64(&sig));
        assert_eq!(
            refused(&short),
            Reason::BadSignature,
            "{}",
            signer.algorithm()
        );
        sig.extend_from_slice(&[0, 0]);
        let long = format!("{input}.{}", b64(&sig));
        assert_eq!(
            refused(&long),
            Reason::BadSignature,
            "{}",
            signer.algorithm()
        );
    }
}

#[test]
fn rs256_signature_with_a_leading_zero_stripped_or_added() {
    let token = rsa_a().sign_json(&claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig.insert(0, 0);
    assert_eq!(
        refused(&format!("{input}.{}", b64(&sig))),
        Reason::BadSignature
    );
}

#[test]
fn es256_with_der_instead_of_raw_r_s() {
    let token = ec().sign_json(&claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let der = p256::ecdsa::Signature::from_slice(&raw).unwrap().to_der();
    let token = format!("{input}.{}", b64(der.as_bytes()));
    assert_eq!(refused(&token), Reason::BadSignature);
}

#[test]
fn es256_signature_of_zeroes() {
    let token = ec().sign_json(&claims());
    let (input, _) = token.rsplit_once('.').unwrap();
    assert_eq!(
        refused(&format!("{input}.{}", b64(&[0; 64]))),
        Reason::BadSignature
    );
}

#[test]
fn eddsa_signature_bit_flip() {
    let token = ed().sign_json(&claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig[10] ^= 1;
    assert_eq!(
        refused(&format!("{input}.{}", b64(&sig))),
        Reason::BadSignature
    );
}

#[test]
fn payload_swapped_after_signing() {
    let token = rsa_a().sign_json(&claims());
    let mut c = claims();
    c["sub"] = json!("admin");
    let parts: Vec<&str> = token.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        b64(c.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(refused(&swapped), Reason::BadSignature);
}

#[test]
fn non_json_payload() {
    let header = r#"{"alg":"RS256","kid":"rsa-a"}"#;
    for payload in ["not json", "[1,2]", "\"sub\"", "", "{\"sub\":"] {
        let token = forged(&rsa_a(), header, payload);
        assert_eq!(refused(&token), Reason::Malformed, "{payload:?}");
    }
}

#[test]
fn exp_as_string() {
    let mut c = claims();
    c["exp"] = json!((NOW + 600).to_string());
    assert_eq!(refused(&rsa_a().sign_json(&c)), Reason::Malformed);
    let mut c = claims();
    c["exp"] = json!(-5);
    assert_eq!(refused(&rsa_a().sign_json(&c)), Reason::Malformed);
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(refused(&rsa_a().sign_json(&c)), Reason::Malformed);
}

#[test]
fn claims_of_the_wrong_type() {
    for (name, value) in [
        ("sub", json!(42)),
        ("aud", json!(7)),
        ("aud", json!([1, 2])),
        ("iss", json!(["https://auth.example.com"])),
        ("nbf", json!("0")),
        ("roles", json!("admin")),
        ("jti", json!({})),
    ] {
        let mut c = claims();
        c[name] = value;
        assert_eq!(refused(&rsa_a().sign_json(&c)), Reason::Malformed, "{name}");
    }
    // A string `sub` that cannot name a user has its own code, whatever its fault.
    for sub in [json!(""), json!("u".repeat(256)), json!("a\u{1}b")] {
        let mut c = claims();
        c["sub"] = sub;
        assert_eq!(refused(&rsa_a().sign_json(&c)), Reason::InvalidSubject);
    }
}

#[test]
fn empty_token_and_empty_ring() {
    assert_eq!(refused(""), Reason::MissingToken);
    let empty = JwtVerifier::new(KeyRing::new(), rules());
    assert_eq!(
        empty.verify(&rsa_a().sign_json(&claims()), NOW),
        Err(Reason::UnknownKey)
    );
}

#[test]
fn a_key_of_another_algorithm_never_verifies() {
    // Same RSA key pair, but the verifier's key is pinned to RS256 while the token says ES256.
    let token = forged(
        &rsa_a(),
        r#"{"alg":"ES256","kid":"rsa-a"}"#,
        &claims().to_string(),
    );
    assert_eq!(refused(&token), Reason::UnsupportedAlgorithm);
}
