//! Interop with Akamai's `akamai-edgeauth` Python library.
//!
//! - Golden vectors at fixed times: for every combination of algorithm (sha256, sha1, md5),
//!   escape early (on, off) and delimiters (`~`/`!`, `,`/`;`) and a set of field shapes (ACL with
//!   several wildcard entries, URL token, ip address and CIDR, IPv6, st, id, data, salt, non-ASCII),
//!   the library mints a token from the same fields; ours must be byte for byte the same, verify
//!   inside the window with the fields returned intact, and refuse every tampered variant with
//!   the right reason.
//! - Fresh tokens: the library mints with its own clock (`start_time="now"`, `window_seconds`),
//!   and we verify them at the current time (plus expired and not-yet-valid ones).
//!
//! The interpreter comes from `INTEROP_PYTHON` (default
//! `$HOME/.cache/streaming-edge-venv/bin/python`, the venv `scripts/test.sh` creates).

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use playback::token::edgeauth::{
    decode_hex_key, Algorithm, EdgeAuth, EdgeAuthConfig, EdgeAuthFields, RequestFacts,
};
use playback::Reason;
use serde_json::{json, Value};

const KEY_HEX: &str = "52a152a152a152a152a152a152a152a1d00dfeedd00dfeedd00dfeedd00dfeed";
const START: u64 = 1_700_000_000;
const EXPIRY: u64 = 1_700_003_600;

const SCRIPT: &str = r#"
import json, sys, time
from akamai.edgeauth import EdgeAuth

def make(c, **over):
    args = dict(key=c["key_hex"], algorithm=c["algorithm"], field_delimiter=c["field_delimiter"],
                acl_delimiter=c["acl_delimiter"], escape_early=c["escape_early"], ip=c.get("ip"),
                session_id=c.get("session_id"), payload=c.get("data"), salt=c.get("salt"),
                start_time=c.get("start_time"), end_time=c.get("end_time"))
    args.update(over)
    return EdgeAuth(**args)

req = json.load(sys.stdin)
out = {"golden": [], "fresh": []}
for c in req["golden"]:
    a = make(c)
    token = a.generate_url_token(c["url"]) if c.get("url") else a.generate_acl_token(c["acl"])
    out["golden"].append(token)
now = int(time.time())
for c in req["fresh"]:
    a = make(c, start_time="now", end_time=None, window_seconds=600)
    out["fresh"].append({"case": c, "token": a.generate_acl_token(c["acl"]), "expect": "ok"})
    a = make(c, start_time=None, end_time=now - 5)
    out["fresh"].append({"case": c, "token": a.generate_acl_token(c["acl"]), "expect": "expired"})
    a = make(c, start_time=now + 3600, end_time=now + 7200)
    out["fresh"].append({"case": c, "token": a.generate_acl_token(c["acl"]), "expect": "not_yet_valid"})
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
        "the interop Python {} is missing: run scripts/test.sh (it creates the venv with \
         akamai-edgeauth), or set INTEROP_PYTHON",
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
        "interop Python failed (is akamai-edgeauth installed? run scripts/test.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// One configuration and one set of fields.
#[derive(Debug, Clone)]
struct Case {
    algorithm: Algorithm,
    escape_early: bool,
    delimiters: (char, char),
    salt: Option<String>,
    fields: EdgeAuthFields,
    /// A path the token admits, and a client address it admits.
    path: String,
    client: Option<IpAddr>,
}

impl Case {
    fn auth(&self) -> EdgeAuth {
        EdgeAuth::new(EdgeAuthConfig {
            algorithm: self.algorithm,
            token_name: "__token__".into(),
            field_delimiter: self.delimiters.0,
            acl_delimiter: self.delimiters.1,
            escape_early: self.escape_early,
            ..EdgeAuthConfig::new(decode_hex_key(KEY_HEX).unwrap())
        })
        .with_salt(self.salt.clone())
    }

    fn json(&self) -> Value {
        let f = &self.fields;
        json!({
            "key_hex": KEY_HEX,
            "algorithm": self.algorithm.name(),
            "field_delimiter": self.delimiters.0.to_string(),
            "acl_delimiter": self.delimiters.1.to_string(),
            "escape_early": self.escape_early,
            "ip": f.ip, "start_time": f.start_time, "end_time": f.expires_at,
            "acl": if f.acl.is_empty() { Value::Null } else { json!(f.acl) },
            "url": f.url, "session_id": f.session_id, "data": f.data, "salt": self.salt,
        })
    }

    fn request(&self, now: u64) -> RequestFacts<'_> {
        RequestFacts {
            path: &self.path,
            client_ip: self.client,
            now_unix: now,
        }
    }

    /// What verification returns: the minted fields, with the salt the verifier holds.
    fn expected(&self) -> EdgeAuthFields {
        EdgeAuthFields {
            salt: self.salt.clone(),
            ..self.fields.clone()
        }
    }
}

fn shapes() -> Vec<(EdgeAuthFields, Option<String>, String, Option<IpAddr>)> {
    let acl = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
    let base = EdgeAuthFields {
        expires_at: EXPIRY,
        ..Default::default()
    };
    vec![
        (
            EdgeAuthFields {
                acl: acl(&["/hls/v1/*", "/keys/v1/*", "/hls/v1/seg_00?.ts"]),
                ..base.clone()
            },
            None,
            "/hls/v1/720p/seg_001.ts".into(),
            None,
        ),
        (
            EdgeAuthFields {
                ip: Some("203.0.113.7".into()),
                start_time: Some(START),
                acl: acl(&["/hls/v1/seg_00?.ts"]),
                session_id: Some("sess-1f3a".into()),
                data: Some("user@example.com|jti=abc 1".into()),
                ..base.clone()
            },
            Some("pepper".into()),
            "/hls/v1/seg_007.ts".into(),
            ip("203.0.113.7"),
        ),
        (
            EdgeAuthFields {
                url: Some("/hls/v1/720p/seg 001.ts".into()),
                session_id: Some("s/1".into()),
                data: Some("u1".into()),
                ..base.clone()
            },
            None,
            "/hls/v1/720p/seg 001.ts".into(),
            None,
        ),
        (
            EdgeAuthFields {
                ip: Some("2001:db8::1".into()),
                start_time: Some(START),
                url: Some("/keys/v1/k1".into()),
                ..base.clone()
            },
            Some("s@lt".into()),
            "/keys/v1/k1".into(),
            ip("2001:db8::1"),
        ),
        (
            EdgeAuthFields {
                ip: Some("203.0.113.0/24".into()),
                acl: acl(&["/hls/v1/*"]),
                session_id: Some("séance".into()),
                ..base.clone()
            },
            None,
            "/hls/v1/master.m3u8".into(),
            ip("::ffff:203.0.113.200"),
        ),
        (
            EdgeAuthFields {
                ip: Some("2001:db8:1:2::/64".into()),
                acl: acl(&["/anything/*"]),
                data: Some("a=b&c=d".into()),
                ..base
            },
            Some("x".into()),
            "/anything/at/all".into(),
            ip("2001:db8:1:2::99"),
        ),
    ]
}

fn golden_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for algorithm in [Algorithm::Sha256, Algorithm::Sha1, Algorithm::Md5] {
        for escape_early in [false, true] {
            for delimiters in [('~', '!'), (',', ';')] {
                for (fields, salt, path, client) in shapes() {
                    cases.push(Case {
                        algorithm,
                        escape_early,
                        delimiters,
                        salt,
                        fields,
                        path,
                        client,
                    });
                }
            }
        }
    }
    cases
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Every tampered variant of a valid token and the reason it must be refused with.
fn tampered(case: &Case, token: &str) -> Vec<(String, Reason)> {
    let fd = case.delimiters.0;
    let (payload, mac) = token.rsplit_once(&format!("{fd}hmac=")).unwrap();
    let mut out = Vec::new();
    let fields: Vec<&str> = payload.split(fd).collect();
    for i in 0..fields.len() {
        // Change the last character of each field's value.
        let mut changed = fields.clone();
        let f = fields[i];
        let last = f.chars().last().unwrap();
        let swapped = format!(
            "{}{}",
            &f[..f.len() - last.len_utf8()],
            if last == '1' { '2' } else { '1' }
        );
        changed[i] = &swapped;
        out.push((
            format!("{}{fd}hmac={mac}", changed.join(&fd.to_string())),
            Reason::BadSignature,
        ));
        // Drop the field.
        let mut dropped = fields.clone();
        dropped.remove(i);
        if !dropped.is_empty() {
            out.push((
                format!("{}{fd}hmac={mac}", dropped.join(&fd.to_string())),
                Reason::BadSignature,
            ));
        }
    }
    let flipped_last = if mac.ends_with('0') { '1' } else { '0' };
    out.push((
        format!("{}{flipped_last}", &token[..token.len() - 1]),
        Reason::BadSignature,
    ));
    out.push((
        format!(
            "{payload}{fd}hmac={}{}",
            if mac.starts_with('f') { 'e' } else { 'f' },
            &mac[1..]
        ),
        Reason::BadSignature,
    ));
    out.push((token[..token.len() - 1].to_string(), Reason::Malformed));
    out.push((token[..token.len() - 2].to_string(), Reason::Malformed));
    out.push((payload.to_string(), Reason::Malformed));
    out.push((format!("{token}{fd}exp=1"), Reason::Malformed));
    out
}

#[test]
fn golden_vectors_match_the_library_and_verify() {
    let cases = golden_cases();
    let request = json!({
        "golden": cases.iter().map(Case::json).collect::<Vec<_>>(),
        "fresh": [],
    });
    let answer = run_python(SCRIPT, &request);
    let tokens = answer["golden"].as_array().unwrap();
    assert_eq!(tokens.len(), cases.len());
    let mut tampered_checked = 0;
    for (case, python_token) in cases.iter().zip(tokens) {
        let python_token = python_token.as_str().unwrap();
        let auth = case.auth();
        let mut minting = case.fields.clone();
        minting.salt = case.salt.clone();
        assert_eq!(
            auth.mint(&minting),
            python_token,
            "mint differs for {case:?}"
        );
        let inside = EXPIRY - 1;
        assert_eq!(
            auth.verify(python_token, &case.request(inside)),
            Ok(case.expected()),
            "verify {case:?}"
        );

        // Time, scope, address, key and salt.
        assert_eq!(
            auth.verify(python_token, &case.request(EXPIRY)),
            Err(Reason::Expired)
        );
        if case.fields.start_time.is_some() {
            assert_eq!(
                auth.verify(python_token, &case.request(START - 1)),
                Err(Reason::NotYetValid)
            );
        }
        let elsewhere = RequestFacts {
            path: "/other/v2/x.ts",
            ..case.request(inside)
        };
        let scope_reason = if case.fields.acl.is_empty() {
            Reason::BadSignature
        } else {
            Reason::AclMismatch
        };
        assert_eq!(auth.verify(python_token, &elsewhere), Err(scope_reason));
        if case.fields.ip.is_some() {
            let stranger = RequestFacts {
                client_ip: Some("198.51.100.1".parse().unwrap()),
                ..case.request(inside)
            };
            assert_eq!(
                auth.verify(python_token, &stranger),
                Err(Reason::IpMismatch)
            );
            let unknown = RequestFacts {
                client_ip: None,
                ..case.request(inside)
            };
            assert_eq!(auth.verify(python_token, &unknown), Err(Reason::IpMismatch));
        }
        let other_salt = auth.clone().with_salt(Some("other".into()));
        assert_eq!(
            other_salt.verify(python_token, &case.request(inside)),
            Err(Reason::BadSignature)
        );
        let other_key = EdgeAuth::new(EdgeAuthConfig {
            key: vec![7; 32],
            ..auth.config().clone()
        })
        .with_salt(case.salt.clone());
        assert_eq!(
            other_key.verify(python_token, &case.request(inside)),
            Err(Reason::BadSignature)
        );

        for (bad, reason) in tampered(case, python_token) {
            assert_eq!(
                auth.verify(&bad, &case.request(inside)),
                Err(reason),
                "tampered {case:?}"
            );
            tampered_checked += 1;
        }
    }
    eprintln!(
        "{} golden vectors reproduced and verified, {tampered_checked} tampered variants refused",
        cases.len()
    );
    assert!(cases.len() >= 72 && tampered_checked > 500);
}

#[test]
fn fresh_tokens_from_the_library_verify_now() {
    let fresh: Vec<Case> = golden_cases()
        .into_iter()
        .filter(|c| !c.fields.acl.is_empty() && c.delimiters.0 == '~')
        .map(|mut c| {
            c.fields.start_time = None;
            c
        })
        .collect();
    let request = json!({
        "golden": [],
        "fresh": fresh.iter().map(Case::json).collect::<Vec<_>>(),
    });
    let answer = run_python(SCRIPT, &request);
    let tokens = answer["fresh"].as_array().unwrap();
    assert_eq!(tokens.len(), fresh.len() * 3);
    let now = unix_now();
    for (i, t) in tokens.iter().enumerate() {
        let case = &fresh[i / 3];
        let token = t["token"].as_str().unwrap();
        let auth = case.auth();
        let got = auth.verify(token, &case.request(now));
        match t["expect"].as_str().unwrap() {
            "ok" => {
                let fields = got.unwrap_or_else(|r| panic!("{r} for fresh {case:?}"));
                let start = fields.start_time.unwrap();
                assert!(start.abs_diff(now) <= 5 && fields.expires_at == start + 600);
            }
            "expired" => assert_eq!(got, Err(Reason::Expired)),
            "not_yet_valid" => assert_eq!(got, Err(Reason::NotYetValid)),
            other => panic!("unknown expectation {other}"),
        }
    }
    // The token travels under its configured name.
    let auth = fresh[0].auth();
    let query = format!("a=1&__token__={}", tokens[0]["token"].as_str().unwrap());
    assert_eq!(
        auth.token_from_query(Some(&query)),
        tokens[0]["token"].as_str()
    );
}

#[test]
fn tokens_we_mint_now_are_reproduced_by_the_library() {
    let now = unix_now();
    let cases: Vec<Case> = golden_cases()
        .into_iter()
        .map(|mut c| {
            c.fields.expires_at = now + 300;
            c.fields.start_time = c.fields.start_time.map(|_| now - 1);
            c.fields.session_id = Some(format!("fresh-{now}"));
            c
        })
        .collect();
    let request = json!({
        "golden": cases.iter().map(Case::json).collect::<Vec<_>>(),
        "fresh": [],
    });
    let answer = run_python(SCRIPT, &request);
    for (case, python_token) in cases.iter().zip(answer["golden"].as_array().unwrap()) {
        let auth = case.auth();
        let mut minting = case.fields.clone();
        minting.salt = case.salt.clone();
        let ours = auth.try_mint(&minting).unwrap();
        assert_eq!(ours, python_token.as_str().unwrap(), "{case:?}");
        assert_eq!(auth.verify(&ours, &case.request(now)), Ok(case.expected()));
    }
}
