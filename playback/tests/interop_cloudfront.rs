//! Interop with CloudFront signed URLs and cookies as botocore and `cryptography` make them.
//!
//! Python generates an RSA-2048 and a P-256 key at test time. botocore's `CloudFrontSigner`
//! signs canned and custom-policy URLs (its signer callable produces RSA-SHA1, RSA-SHA256,
//! ECDSA-SHA1 and ECDSA-SHA256 signatures; the SHA-256 ones carry `Hash-Algorithm=SHA256`),
//! golden ones at fixed times and fresh ones, plus signed cookies and tampered variants; our
//! verifier must accept the valid ones and refuse the others with the right reason. Then URLs
//! and cookies minted by our signer are checked in Python exactly the way CloudFront checks them:
//! the canned policy re-derived with botocore, CloudFront's base64 undone, the signature verified
//! with the public key, the policy's conditions evaluated.
//!
//! The interpreter comes from `INTEROP_PYTHON` (default
//! `$HOME/.cache/streaming-edge-venv/bin/python`, the venv `scripts/test.sh` creates).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use playback::token::cloudfront::{
    params_from_cookies, params_from_query, query_without_params, CloudFrontSigner,
    CloudFrontVerifier, HashAlgorithm, Policy,
};
use playback::Reason;
use serde_json::{json, Value};

const SIGN_SCRIPT: &str = r#"
import base64, datetime, json, sys, time
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization as s
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

def ts(x):
    return datetime.datetime.fromtimestamp(x, datetime.timezone.utc)

def b64(data):
    return base64.b64encode(data).replace(b"+", b"-").replace(b"=", b"_").replace(b"/", b"~").decode()

rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec_key = ec.generate_private_key(ec.SECP256R1())
pem = lambda k, fmt: k.private_bytes(s.Encoding.PEM, fmt, s.NoEncryption()).decode()
pub = lambda k: k.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo).decode()
out = {
    "keys": {
        "KRSA": {"private": pem(rsa_key, s.PrivateFormat.PKCS8), "public": pub(rsa_key)},
        "KEC": {"private": pem(ec_key, s.PrivateFormat.TraditionalOpenSSL), "public": pub(ec_key)},
    },
    "cases": [],
}
now = int(time.time())
HOST = "https://d111111abcdef8.cloudfront.net"

def case(name, expect, now, url=None, cookie=None, resource=None, ip=None):
    out["cases"].append(dict(name=name, expect=expect, now=now, url=url, cookie=cookie,
                             resource=resource, ip=ip))

for kid, key in (("KRSA", rsa_key), ("KEC", ec_key)):
    for hname, h in (("SHA1", hashes.SHA1()), ("SHA256", hashes.SHA256())):
        if kid == "KRSA":
            sign = lambda m, h=h: rsa_key.sign(m, padding.PKCS1v15(), h)
        else:
            sign = lambda m, h=h: ec_key.sign(m, ec.ECDSA(h))
        signer = CloudFrontSigner(kid, sign)
        suffix = "&Hash-Algorithm=SHA256" if hname == "SHA256" else ""
        tag = kid + "/" + hname

        url = HOST + "/hls/v1/master.m3u8"
        canned = signer.generate_presigned_url(url, date_less_than=ts(1700000300)) + suffix
        case(tag + " golden canned", "ok", 1700000100, url=canned)
        case(tag + " golden canned expired", "expired", 1700000300, url=canned)
        case(tag + " canned other resource", "bad_signature", 1700000100,
             url=canned.replace("master.m3u8", "other.m3u8"))
        case(tag + " canned Expires changed", "bad_signature", 1700000100,
             url=canned.replace("Expires=1700000300", "Expires=1900000300"))
        case(tag + " unknown key", "unknown_key", 1700000100,
             url=canned.replace("Key-Pair-Id=" + kid, "Key-Pair-Id=KGONE"))
        qs = dict(p.split("=", 1) for p in canned.split("?", 1)[1].split("&"))
        raw = bytearray(base64.b64decode(qs["Signature"].replace("-", "+").replace("_", "=").replace("~", "/")))
        raw[len(raw) // 2] ^= 1
        case(tag + " signature flipped", "bad_signature", 1700000100,
             url=canned.replace(qs["Signature"], b64(bytes(raw))))
        case(tag + " signature not base64", "malformed", 1700000100,
             url=canned.replace(qs["Signature"], qs["Signature"][:-4] + "!!!!"))

        policy = signer.build_policy(HOST + "/hls/v1/*", ts(1700000300),
                                     date_greater_than=ts(1700000000), ip_address="203.0.113.0/24")
        custom = signer.generate_presigned_url(HOST + "/hls/v1/720p/seg_001.ts?a=1", policy=policy) + suffix
        case(tag + " golden custom", "ok", 1700000100, url=custom, ip="203.0.113.9")
        case(tag + " golden custom from a mapped address", "ok", 1700000100, url=custom,
             ip="::ffff:203.0.113.9")
        case(tag + " custom expired", "expired", 1700000300, url=custom, ip="203.0.113.9")
        case(tag + " custom not yet valid", "not_yet_valid", 1700000000, url=custom, ip="203.0.113.9")
        case(tag + " custom other network", "ip_mismatch", 1700000100, url=custom, ip="198.51.100.1")
        case(tag + " custom unknown client", "ip_mismatch", 1700000100, url=custom)
        case(tag + " custom other title", "acl_mismatch", 1700000100,
             url=custom.replace("/hls/v1/", "/hls/v2/"), ip="203.0.113.9")
        wider = signer.build_policy(HOST + "/*", ts(1900000000))
        qs = dict(p.split("=", 1) for p in custom.split("?", 1)[1].split("&"))
        case(tag + " policy swapped", "bad_signature", 1700000100, ip="203.0.113.9",
             url=custom.replace(qs["Policy"], b64(wider.encode())))

        single = signer.build_policy(HOST + "/hls/v1/seg_00?.ts", ts(now + 600))
        fresh = signer.generate_presigned_url(HOST + "/hls/v1/seg_007.ts", policy=single) + suffix
        case(tag + " fresh custom ? wildcard", "ok", now, url=fresh)
        case(tag + " fresh custom ? wildcard miss", "acl_mismatch", now,
             url=fresh.replace("seg_007.ts", "seg_0077.ts"))
        case(tag + " fresh canned", "ok", now,
             url=signer.generate_presigned_url(url, date_less_than=ts(now + 600)) + suffix)

        cookie_policy = signer.build_policy(HOST + "/hls/v1/*", ts(now + 600), ip_address="2001:db8::/32")
        cookies = ["theme=dark", "CloudFront-Policy=" + b64(cookie_policy.encode()),
                   "CloudFront-Signature=" + b64(sign(cookie_policy.encode())),
                   "CloudFront-Key-Pair-Id=" + kid]
        if hname == "SHA256":
            cookies.append("CloudFront-Hash-Algorithm=SHA256")
        header = "; ".join(cookies)
        seg = HOST + "/hls/v1/1080p/seg_002.ts"
        case(tag + " fresh cookies", "ok", now, cookie=header, resource=seg, ip="2001:db8:5::1")
        case(tag + " fresh cookies other network", "ip_mismatch", now, cookie=header, resource=seg,
             ip="2001:db9::1")
        canned_cookie_policy = signer.build_policy(seg, ts(now + 600))
        canned_cookies = "; ".join(["CloudFront-Expires=%d" % (now + 600),
                   "CloudFront-Signature=" + b64(sign(canned_cookie_policy.encode())),
                   "CloudFront-Key-Pair-Id=" + kid] + (["CloudFront-Hash-Algorithm=SHA256"] if suffix else []))
        case(tag + " fresh canned cookies", "ok", now, cookie=canned_cookies, resource=seg)
print(json.dumps(out))
"#;

const VERIFY_SCRIPT: &str = r#"
import base64, datetime, ipaddress, json, re, sys
from botocore.signers import CloudFrontSigner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

CF = ("Expires", "Policy", "Signature", "Key-Pair-Id", "Hash-Algorithm")
req = json.load(sys.stdin)
keys = {kid: serialization.load_pem_public_key(pem.encode()) for kid, pem in req["keys"].items()}
canned = CloudFrontSigner("unused", None)

def unb64(text):
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"), validate=True)

def check(params, resource, now, ip):
    if "Expires" in params:
        policy = canned.build_policy(resource, datetime.datetime.fromtimestamp(
            int(params["Expires"]), datetime.timezone.utc)).encode()
    else:
        policy = unb64(params["Policy"])
    h = hashes.SHA256() if params.get("Hash-Algorithm") == "SHA256" else hashes.SHA1()
    key = keys.get(params["Key-Pair-Id"])
    if key is None:
        return "unknown_key"
    sig = unb64(params["Signature"])
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, policy, padding.PKCS1v15(), h)
        else:
            key.verify(sig, policy, ec.ECDSA(h))
    except InvalidSignature:
        return "bad_signature"
    st = json.loads(policy)["Statement"][0]
    cond = st["Condition"]
    if now >= cond["DateLessThan"]["AWS:EpochTime"]:
        return "expired"
    if "DateGreaterThan" in cond and now <= cond["DateGreaterThan"]["AWS:EpochTime"]:
        return "not_yet_valid"
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in st["Resource"])
    if not re.fullmatch(pattern, resource, re.S):
        return "acl_mismatch"
    if "IpAddress" in cond:
        net = ipaddress.ip_network(cond["IpAddress"]["AWS:SourceIp"], strict=False)
        if ip is None or ipaddress.ip_address(ip) not in net:
            return "ip_mismatch"
    return "ok"

results = []
for c in req["cases"]:
    if c.get("url"):
        base, query = c["url"].split("?", 1)
        pairs = [p.split("=", 1) for p in query.split("&")]
        params = {k: v for k, v in pairs if k in CF}
        rest = "&".join(k + "=" + v for k, v in pairs if k not in CF)
        resource = base + ("?" + rest if rest else "")
    else:
        params = {}
        for part in c["cookies"]:
            name, value = part
            if name.startswith("CloudFront-"):
                params[name[len("CloudFront-"):]] = value
        resource = c["resource"]
    results.append(check(params, resource, c["now"], c.get("ip")))
print(json.dumps(results))
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
        "the interop Python {} is missing: run scripts/test.sh (it creates the venv with \
         botocore and cryptography), or set INTEROP_PYTHON",
        path.display()
    );
    path
}

fn run_python(script: &str, input: &Value) -> Value {
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the interop Python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "interop Python failed (are botocore and cryptography installed? run scripts/test.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The resource URL of a signed URL: the URL without CloudFront's parameters.
fn resource_of(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap();
    match query_without_params(Some(query)) {
        Some(rest) => format!("{base}?{rest}"),
        None => base.to_string(),
    }
}

fn keys_and_cases() -> Value {
    run_python(SIGN_SCRIPT, &json!({}))
}

fn verifier(keys: &Value) -> CloudFrontVerifier {
    let mut v = CloudFrontVerifier::new();
    for (kid, pair) in keys.as_object().unwrap() {
        v.add_public_key_pem(kid, pair["public"].as_str().unwrap())
            .unwrap();
    }
    v
}

#[test]
fn urls_and_cookies_signed_by_botocore_verify() {
    let answer = keys_and_cases();
    let v = verifier(&answer["keys"]);
    let cases = answer["cases"].as_array().unwrap();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let now = c["now"].as_u64().unwrap();
        let ip = c["ip"].as_str().map(|s| s.parse().unwrap());
        let got = if let Some(url) = c["url"].as_str() {
            let params = params_from_query(url.split_once('?').unwrap().1).expect(name);
            v.verify(&params, &resource_of(url), ip, now)
        } else {
            let params = params_from_cookies(c["cookie"].as_str().unwrap()).expect(name);
            v.verify(&params, c["resource"].as_str().unwrap(), ip, now)
        };
        let got = got.map(|_| "ok").unwrap_or_else(Reason::code);
        assert_eq!(got, c["expect"].as_str().unwrap(), "{name}");
    }
    eprintln!("{} botocore-signed CloudFront cases checked", cases.len());
    assert!(cases.len() >= 80);
}

#[test]
fn urls_and_cookies_we_sign_verify_the_cloudfront_way() {
    let answer = keys_and_cases();
    let keys = &answer["keys"];
    let host = "https://d111111abcdef8.cloudfront.net";
    let now = unix_now();
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for kid in ["KRSA", "KEC"] {
        for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
            let pem = keys[kid]["private"].as_str().unwrap();
            let s = CloudFrontSigner::from_pem(kid, pem, hash).unwrap();
            let canned = s.signed_url_canned(&format!("{host}/hls/v1/master.m3u8"), now + 600);
            cases.push(json!({"url": canned, "now": now}));
            expected.push("ok");
            let policy = Policy {
                resource: format!("{host}/hls/v1/*"),
                date_less_than: now + 600,
                date_greater_than: Some(now - 60),
                ip_address: Some("203.0.113.0/24".into()),
            };
            let custom =
                s.signed_url_custom(&format!("{host}/hls/v1/720p/seg_001.ts?a=1"), &policy);
            cases.push(json!({"url": custom, "now": now, "ip": "203.0.113.9"}));
            expected.push("ok");
            // The same URLs must fail in Python where CloudFront would refuse them.
            cases.push(json!({"url": custom, "now": now, "ip": "198.51.100.1"}));
            expected.push("ip_mismatch");
            cases.push(json!({"url": canned, "now": now + 600}));
            expected.push("expired");
            cases.push(json!({"url": canned.replace("master.m3u8", "other.m3u8"), "now": now}));
            expected.push("bad_signature");

            let seg = format!("{host}/hls/v1/1080p/seg_002.ts");
            for cookies in [s.cookies(&policy), s.cookies_canned(&seg, now + 600)] {
                cases.push(
                    json!({"cookies": cookies, "resource": seg, "now": now, "ip": "203.0.113.9"}),
                );
                expected.push("ok");
            }

            // And our own verifier agrees.
            let v = verifier(keys);
            for url in [&canned, &custom] {
                let params = params_from_query(url.split_once('?').unwrap().1).unwrap();
                let ip = Some("203.0.113.9".parse().unwrap());
                assert!(v.verify(&params, &resource_of(url), ip, now).is_ok());
            }
        }
    }
    let answer = run_python(
        VERIFY_SCRIPT,
        &json!({
            "keys": keys.as_object().unwrap().iter()
                .map(|(k, v)| (k.clone(), v["public"].clone()))
                .collect::<serde_json::Map<_, _>>(),
            "cases": cases,
        }),
    );
    let results: Vec<&str> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(results, expected);
    eprintln!(
        "{} URLs and cookie sets we minted checked in Python",
        results.len()
    );
}
