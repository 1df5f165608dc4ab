//! JWKS documents come from the network: the strict loading rules of `playback::jwt::keys`.

use playback::jwt::{Algorithm, JwtSigner, KeyRing, VerificationKey};
use serde_json::{json, Value};

const RSA_A: &str = include_str!("fixtures/jwt/rsa-2048-a.pem");
const RSA_WEAK: &str = include_str!("fixtures/jwt/rsa-1024-weak.pem");
const P256: &str = include_str!("fixtures/jwt/p256.pem");
const ED25519: &str = include_str!("fixtures/jwt/ed25519.pem");

fn jwk(alg: Algorithm, pem: &str, kid: &str) -> Value {
    JwtSigner::from_pem(alg, pem)
        .unwrap()
        .with_kid(kid)
        .public_jwk()
        .unwrap()
}

fn load(keys: Vec<Value>) -> (KeyRing, Vec<playback::jwt::SkippedKey>) {
    KeyRing::from_jwks(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
}

#[test]
fn every_supported_key_type_loads() {
    let (ring, skipped) = load(vec![
        jwk(Algorithm::Rs256, RSA_A, "r"),
        jwk(Algorithm::Es256, P256, "e"),
        jwk(Algorithm::EdDsa, ED25519, "d"),
    ]);
    assert!(skipped.is_empty(), "{skipped:?}");
    let algs: Vec<_> = ring.keys().iter().map(VerificationKey::algorithm).collect();
    assert_eq!(algs, [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa]);
    assert!(ring.has_kid("e"));
}

#[test]
fn alg_is_inferred_when_absent() {
    let mut key = jwk(Algorithm::Es256, P256, "e");
    key.as_object_mut().unwrap().remove("alg");
    let (ring, _) = load(vec![key]);
    assert_eq!(ring.keys()[0].algorithm(), Algorithm::Es256);
}

#[test]
fn inconsistent_weak_and_foreign_keys_are_skipped() {
    let mut mismatched = jwk(Algorithm::Rs256, RSA_A, "mismatch");
    mismatched["alg"] = json!("ES256");
    let mut enc = jwk(Algorithm::Rs256, RSA_A, "enc");
    enc["use"] = json!("enc");
    let mut ops = jwk(Algorithm::Es256, P256, "ops");
    ops["key_ops"] = json!(["encrypt"]);
    let mut ps = jwk(Algorithm::Rs256, RSA_A, "ps");
    ps["alg"] = json!("PS256");
    let mut padded = jwk(Algorithm::EdDsa, ED25519, "padded");
    padded["x"] = json!(format!("{}=", padded["x"].as_str().unwrap()));
    let mut bad_point = jwk(Algorithm::Es256, P256, "bad-point");
    bad_point["y"] = bad_point["x"].clone();
    let mut bad_kid = jwk(Algorithm::EdDsa, ED25519, "x");
    bad_kid["kid"] = json!("' OR 1=1 --");
    let oct =
        json!({"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ", "alg": "HS256", "kid": "oct"});
    let (ring, skipped) = load(vec![
        jwk(Algorithm::Rs256, RSA_WEAK, "weak"),
        mismatched,
        enc,
        ops,
        ps,
        padded,
        bad_point,
        bad_kid,
        oct,
        json!("not an object"),
        jwk(Algorithm::EdDsa, ED25519, "good"),
    ]);
    assert_eq!(ring.len(), 1, "{skipped:?}");
    assert!(ring.has_kid("good"));
    assert_eq!(skipped.len(), 10, "{skipped:?}");
    assert!(skipped
        .iter()
        .any(|s| s.kid.as_deref() == Some("weak") && s.why.contains("2048")));
}

#[test]
fn duplicate_kids_keep_the_first() {
    let (ring, skipped) = load(vec![
        jwk(Algorithm::Rs256, RSA_A, "same"),
        jwk(Algorithm::Rs256, RSA_A, "same"),
    ]);
    assert_eq!(ring.len(), 1);
    assert_eq!(skipped.len(), 1);
}

#[test]
fn whole_document_errors() {
    assert!(KeyRing::from_jwks(b"not json").is_err());
    assert!(KeyRing::from_jwks(b"{}").is_err());
    assert!(KeyRing::from_jwks(br#"{"keys":{}}"#).is_err());
    assert!(KeyRing::from_jwks(br#"{"keys":[],"keys":[]}"#).is_err());
    let many: Vec<Value> = (0..33)
        .map(|i| json!({"kty": "RSA", "kid": i.to_string()}))
        .collect();
    assert!(KeyRing::from_jwks(json!({ "keys": many }).to_string().as_bytes()).is_err());
    let huge = format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(70_000));
    assert!(KeyRing::from_jwks(huge.as_bytes()).is_err());
    let (ring, _) = KeyRing::from_jwks(br#"{"keys":[]}"#).unwrap();
    assert!(ring.is_empty());
}

#[test]
fn pem_and_jwk_keys_from_configuration() {
    let pem = include_str!("fixtures/jwt/rsa-1024-weak.pub.pem");
    assert!(VerificationKey::from_public_pem(Algorithm::Rs256, pem).is_err());
    let pem = include_str!("fixtures/jwt/p256.pub.pem");
    assert!(VerificationKey::from_public_pem(Algorithm::Rs256, pem).is_err());
    assert!(VerificationKey::from_public_pem(Algorithm::Es256, pem).is_ok());
    assert!(VerificationKey::from_public_pem(Algorithm::Hs256, pem).is_err());
    let oct = br#"{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ","alg":"HS256"}"#;
    assert_eq!(
        VerificationKey::from_jwk(oct).unwrap().algorithm(),
        Algorithm::Hs256
    );
    assert!(VerificationKey::hs256(b"").is_err());
    assert!(VerificationKey::hs256(b"k")
        .unwrap()
        .with_kid("a b")
        .is_err());
}
