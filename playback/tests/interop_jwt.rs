//! Interop with pyjwt: Python generates keys (HS256 secret, RSA-2048, P-256, Ed25519), a JWKS
//! document and tokens at test time; we accept the valid ones (golden vectors at fixed times
//! and fresh ones) and refuse the tampered ones with the right reason.
//!
//! The interpreter comes from `INTEROP_PYTHON` (default
//! `$HOME/.cache/streaming-edge-venv/bin/python`, the venv `scripts/test.sh` creates with
//! `pyjwt[crypto]`).

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use playback::jwt::{Algorithm, JwtRules, JwtVerifier, KeyRing, VerificationKey};
use playback::Reason;
use serde_json::Value;

/// The golden vectors are issued at this time and verified 100 s later.
const GOLDEN_IAT: u64 = 1_700_000_000;

const SCRIPT: &str = r#"
import json, os, sys, time
import jwt
from jwt.algorithms import RSAAlgorithm, ECAlgorithm, OKPAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa, ec, ed25519
from cryptography.hazmat.primitives import serialization as s

golden_iat = int(sys.argv[1])
now = int(time.time())
secret = os.urandom(32)
keys = {
    "HS256": (secret, None),
    "RS256": (rsa.generate_private_key(65537, 2048), RSAAlgorithm),
    "ES256": (ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
    "EdDSA": (ed25519.Ed25519PrivateKey.generate(), OKPAlgorithm),
}
base = {"sub": "viewer-py", "iss": "https://auth.example.com", "aud": "streaming-edge"}
out = {"secret_hex": secret.hex(), "jwks": {"keys": []}, "pem": {}, "cases": []}
def case(name, alg, token, expect):
    out["cases"].append({"name": name, "alg": alg, "token": token, "expect": expect})
for alg, (key, algo) in keys.items():
    kid = "py-" + alg.lower()
    if algo is not None:
        jwk = json.loads(algo.to_jwk(key.public_key()))
        jwk.update({"kid": kid, "alg": alg, "use": "sig"})
        out["jwks"]["keys"].append(jwk)
        out["pem"][alg] = key.public_key().public_bytes(
            s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo).decode()
    hdr = {"kid": kid}
    golden = dict(base, iat=golden_iat, nbf=golden_iat, exp=golden_iat + 3600, jti="j-" + alg)
    case("golden", alg, jwt.encode(golden, key, algorithm=alg, headers=hdr), "ok_golden")
    fresh = dict(base, iat=now, exp=now + 600, aud=["other", "streaming-edge"], roles=["viewer"])
    case("fresh", alg, jwt.encode(fresh, key, algorithm=alg, headers=hdr), "ok_now")
    case("fresh_without_kid", alg, jwt.encode(fresh, key, algorithm=alg), "ok_now")
    good = jwt.encode(fresh, key, algorithm=alg, headers=hdr)
    h, p, sig = good.split(".")
    forged = jwt.utils.base64url_encode(json.dumps(dict(fresh, sub="admin")).encode()).decode()
    case("payload_swapped", alg, ".".join([h, forged, sig]), "bad_signature")
    raw = bytearray(jwt.utils.base64url_decode(sig))
    raw[len(raw) // 2] ^= 1
    case("signature_flipped", alg, ".".join([h, p, jwt.utils.base64url_encode(bytes(raw)).decode()]), "bad_signature")
    case("expired", alg, jwt.encode(dict(base, exp=now - 3600), key, algorithm=alg, headers=hdr), "expired")
    case("not_yet_valid", alg, jwt.encode(dict(base, nbf=now + 3600, exp=now + 7200), key, algorithm=alg, headers=hdr), "not_yet_valid")
    case("wrong_audience", alg, jwt.encode(dict(base, aud="elsewhere", exp=now + 600), key, algorithm=alg, headers=hdr), "wrong_audience")
    case("wrong_issuer", alg, jwt.encode(dict(base, iss="https://evil.example", exp=now + 600), key, algorithm=alg, headers=hdr), "wrong_issuer")
    case("unknown_kid", alg, jwt.encode(dict(base, exp=now + 600), key, algorithm=alg, headers={"kid": "rotated-away"}), "unknown_key")
case("alg_none", "none", jwt.encode(dict(base, exp=now + 600), None, algorithm="none"), "unsupported_algorithm")
print(json.dumps(out))
"#;

fn python() -> PathBuf {
    let path = std::env::var_os("INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME is set"))
                .join(".cache/streaming-edge-venv/bin/python")
        });
    assert!(
        path.exists(),
        "the interop Python {} is missing: run scripts/test.sh (it creates the venv with pyjwt), \
         or set INTEROP_PYTHON",
        path.display()
    );
    path
}

fn generate() -> Value {
    let output = Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(GOLDEN_IAT.to_string())
        .output()
        .expect("the interop Python runs");
    assert!(
        output.status.success(),
        "pyjwt generation failed (run scripts/test.sh to install pyjwt[crypto]): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

fn rules() -> JwtRules {
    JwtRules {
        issuer: "https://auth.example.com".into(),
        audience: "streaming-edge".into(),
        leeway_secs: 5,
    }
}

fn hs256_key(generated: &Value) -> VerificationKey {
    let secret = hex::decode(generated["secret_hex"].as_str().unwrap()).unwrap();
    VerificationKey::hs256(&secret)
        .unwrap()
        .with_kid("py-hs256")
        .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn check_cases(verifier: &JwtVerifier, generated: &Value, with_kid_only: bool) -> usize {
    let mut checked = 0;
    for case in generated["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if with_kid_only && name == "fresh_without_kid" {
            continue;
        }
        let alg = case["alg"].as_str().unwrap();
        let token = case["token"].as_str().unwrap();
        let (at, expect) = match case["expect"].as_str().unwrap() {
            "ok_golden" => (GOLDEN_IAT + 100, None),
            "ok_now" => (now(), None),
            code => (now(), Some(Reason::from_code(code).unwrap())),
        };
        let result = verifier.verify_detailed(token, at);
        match expect {
            None => {
                let verified = result.unwrap_or_else(|r| panic!("{alg} {name}: refused with {r}"));
                assert_eq!(verified.alg.name(), alg, "{name}");
                assert_eq!(verified.claims.sub, "viewer-py");
                if name == "golden" {
                    assert_eq!(verified.claims.exp, GOLDEN_IAT + 3600);
                    assert_eq!(verified.claims.jti.as_deref(), Some(&*format!("j-{alg}")));
                }
            }
            Some(reason) => assert_eq!(result.map(|_| ()), Err(reason), "{alg} {name}"),
        }
        checked += 1;
    }
    checked
}

#[test]
fn pyjwt_tokens_against_a_python_jwks() {
    let generated = generate();
    let jwks = serde_json::to_vec(&generated["jwks"]).unwrap();
    let (mut ring, skipped) = KeyRing::from_jwks(&jwks).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(ring.len(), 3);
    ring.push(hs256_key(&generated)).unwrap();
    let checked = check_cases(&JwtVerifier::new(ring, rules()), &generated, false);
    assert_eq!(checked, 4 * 10 + 1);
}

#[test]
fn pyjwt_tokens_against_pem_keys_from_configuration() {
    let generated = generate();
    let mut ring = KeyRing::new();
    for alg in [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa] {
        let pem = generated["pem"][alg.name()].as_str().unwrap();
        let key = VerificationKey::from_public_pem(alg, pem)
            .unwrap()
            .with_kid(&format!("py-{}", alg.name().to_lowercase()))
            .unwrap();
        ring.push(key).unwrap();
    }
    ring.push(hs256_key(&generated)).unwrap();
    let checked = check_cases(&JwtVerifier::new(ring, rules()), &generated, true);
    assert_eq!(checked, 4 * 9 + 1);
}
