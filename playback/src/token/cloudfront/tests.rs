//! Unit tests of CloudFront signed URLs and cookies: golden vectors signed by botocore with the
//! test keys in `testdata/` (throwaway keys generated for these tests only), and every rule and
//! reason. `playback/tests/interop_cloudfront.rs` checks against botocore and `cryptography` live.

use super::*;

const RSA_PKCS8: &str = include_str!("testdata/rsa2048.pkcs8.pem");
const RSA_PKCS1: &str = include_str!("testdata/rsa2048.pkcs1.pem");
const RSA_PUB: &str = include_str!("testdata/rsa2048.pub.pem");
const RSA_PUB_PKCS1: &str = include_str!("testdata/rsa2048.pub.pkcs1.pem");
const P256_PKCS8: &str = include_str!("testdata/p256.pkcs8.pem");
const P256_SEC1: &str = include_str!("testdata/p256.sec1.pem");
const P256_PUB: &str = include_str!("testdata/p256.pub.pem");
const RSA1024_PKCS8: &str = include_str!("testdata/rsa1024.pkcs8.pem");
const RSA1024_PUB: &str = include_str!("testdata/rsa1024.pub.pem");
const P384_PKCS8: &str = include_str!("testdata/p384.pkcs8.pem");
const P384_PUB: &str = include_str!("testdata/p384.pub.pem");

const KEY_ID: &str = "K2JCJMDEHXQW5F";
const URL: &str = "https://d111111abcdef8.cloudfront.net/hls/v/master.m3u8";
const NOW: u64 = 1_700_000_100;

// botocore CloudFrontSigner(KEY_ID, rsa-sha1 signer over rsa2048.pkcs8.pem)
//   .generate_presigned_url(URL, date_less_than=<1700000300>)
const BOTOCORE_CANNED: &str = "https://d111111abcdef8.cloudfront.net/hls/v/master.m3u8?Expires=1700000300&Signature=Vn02LjRGc1uRvYKHWY1fdCjJ4juoYNcenFI7FF1u9NI0b7MfulTJQCuP2SIaCbO0L0wa~6uo11eckgo8Es~DsUj5BAbJA2Tc7BwEotT1KvIfFmAkh~jw0HFt-1nO4PwwkHWCdjacSuA6sYVE4YdBWTzdt6RQclxf1jZJbtflRJa4YLdj~sUjNDehWI7LUqU-ptMlv~Mgui5BilV1eE09W2FBlMWSjHymFhtxErTe~jmcu3LNxl3uFMXH78m~8TC3fZ75x59A-HymQPahSjvbYzDqbotohMYcMX7KGi-nFxt3R1-7Q35Tg4e8XtK7X2dts5e4IGXo2gq59VrHdixbgw__&Key-Pair-Id=K2JCJMDEHXQW5F";
// ... .generate_presigned_url(URL + "?a=1", policy=build_policy(".../hls/v/*", <1700000300>,
//   date_greater_than=<1700000000>, ip_address="203.0.113.0/24"))
const BOTOCORE_CUSTOM: &str = "https://d111111abcdef8.cloudfront.net/hls/v/master.m3u8?a=1&Policy=eyJTdGF0ZW1lbnQiOlt7IlJlc291cmNlIjoiaHR0cHM6Ly9kMTExMTExYWJjZGVmOC5jbG91ZGZyb250Lm5ldC9obHMvdi8qIiwiQ29uZGl0aW9uIjp7IkRhdGVMZXNzVGhhbiI6eyJBV1M6RXBvY2hUaW1lIjoxNzAwMDAwMzAwfSwiSXBBZGRyZXNzIjp7IkFXUzpTb3VyY2VJcCI6IjIwMy4wLjExMy4wLzI0In0sIkRhdGVHcmVhdGVyVGhhbiI6eyJBV1M6RXBvY2hUaW1lIjoxNzAwMDAwMDAwfX19XX0_&Signature=sFwbVNYG1PWYkXDKBf93s8nX5lkwk5gUiUtvkLb7pLlvXmg2Jbo9ni-Kg9i18jy1Md5zs3c8v7BsRKXEGdwKXeLx1wkjb~aEXCjYGKxpdqvW0lt4gdgmIyKoqmAbf7db6G5nCbAQ0lr7hVWUkXqSSAkwyZ-X-Zp4eMqdghKjFtaWdkZhScWJLeo3Zy8SOYR41D94lhtyGuTnZveWL8e9HuA8~pr9OSmcS1IDSVje4T2VIzt~0BrupjrDbt8WmoifEzkHayIrY844V4lo4aAL1wXD1~foDjVSbM3FNlZXNuAXe~rkfHmBFFDg0IvYZ9D22DNJIeypGHDRo7dV6nfixg__&Key-Pair-Id=K2JCJMDEHXQW5F";

fn verifier() -> CloudFrontVerifier {
    let mut v = CloudFrontVerifier::new();
    v.add_public_key_pem(KEY_ID, RSA_PUB).unwrap();
    v.add_public_key_pem("EC1", P256_PUB).unwrap();
    v
}

fn split(url: &str) -> (&str, &str) {
    url.split_once('?').unwrap()
}

/// The resource URL a request for `signed` stands for (CloudFront parameters removed).
fn resource(signed: &str) -> String {
    let (base, query) = split(signed);
    match query_without_params(Some(query)) {
        Some(q) => format!("{base}?{q}"),
        None => base.to_string(),
    }
}

fn check(
    v: &CloudFrontVerifier,
    signed: &str,
    ip: Option<&str>,
    now: u64,
) -> Result<CloudFrontGrant, Reason> {
    let params = params_from_query(split(signed).1).ok_or(Reason::MissingToken)?;
    v.verify(
        &params,
        &resource(signed),
        ip.map(|s| s.parse().unwrap()),
        now,
    )
}

#[test]
fn botocore_golden_urls_verify() {
    let v = verifier();
    let grant = check(&v, BOTOCORE_CANNED, None, NOW).unwrap();
    assert_eq!(
        grant,
        CloudFrontGrant {
            expires_at: 1_700_000_300,
            key_pair_id: KEY_ID.into()
        }
    );
    let grant = check(&v, BOTOCORE_CUSTOM, Some("203.0.113.9"), NOW).unwrap();
    assert_eq!(grant.expires_at, 1_700_000_300);
}

#[test]
fn our_rsa_sha1_signatures_equal_botocore() {
    // PKCS#1 v1.5 is deterministic, so the same key and policy give the same URL.
    for pem in [RSA_PKCS8, RSA_PKCS1] {
        let s = CloudFrontSigner::from_pem(KEY_ID, pem, HashAlgorithm::Sha1).unwrap();
        assert_eq!(s.signed_url_canned(URL, 1_700_000_300), BOTOCORE_CANNED);
        let policy = Policy {
            resource: "https://d111111abcdef8.cloudfront.net/hls/v/*".into(),
            date_less_than: 1_700_000_300,
            date_greater_than: Some(1_700_000_000),
            ip_address: Some("203.0.113.0/24".into()),
        };
        assert_eq!(
            s.signed_url_custom(&format!("{URL}?a=1"), &policy),
            BOTOCORE_CUSTOM
        );
    }
}

#[test]
fn every_key_and_hash_round_trips() {
    let mut v = CloudFrontVerifier::new();
    v.add_public_key_pem("RSA1", RSA_PUB_PKCS1).unwrap();
    v.add_public_key_pem("EC1", P256_PUB).unwrap();
    for (id, pem) in [
        ("RSA1", RSA_PKCS8),
        ("RSA1", RSA_PKCS1),
        ("EC1", P256_PKCS8),
        ("EC1", P256_SEC1),
    ] {
        for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
            let s = CloudFrontSigner::from_pem(id, pem, hash).unwrap();
            let canned = s.signed_url_canned(URL, NOW + 60);
            assert_eq!(
                canned.contains("&Hash-Algorithm=SHA256"),
                hash == HashAlgorithm::Sha256
            );
            assert!(check(&v, &canned, None, NOW).is_ok(), "{id} {hash:?}");
            let custom = s.signed_url_custom(
                &format!("{URL}?x=1"),
                &Policy::canned("https://d111111abcdef8.cloudfront.net/*", NOW + 60),
            );
            assert!(check(&v, &custom, None, NOW).is_ok(), "{id} {hash:?}");

            // Same signature under the other hash does not verify.
            let other = if hash == HashAlgorithm::Sha1 {
                format!("{canned}&Hash-Algorithm=SHA256")
            } else {
                canned.replace("&Hash-Algorithm=SHA256", "")
            };
            assert_eq!(check(&v, &other, None, NOW), Err(Reason::BadSignature));

            let mut verifier2 = CloudFrontVerifier::new();
            verifier2.add_signer(&s);
            assert!(check(&verifier2, &canned, None, NOW).is_ok());
            assert!(s.public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
        }
    }
}

#[test]
fn signed_cookies() {
    let v = verifier();
    let s = CloudFrontSigner::from_pem("EC1", P256_PKCS8, HashAlgorithm::Sha256).unwrap();
    let policy = Policy {
        resource: "https://d111111abcdef8.cloudfront.net/hls/v/*".into(),
        date_less_than: NOW + 60,
        date_greater_than: None,
        ip_address: Some("2001:db8::/32".into()),
    };
    let header = |cookies: &[(&str, String)]| {
        let mut parts = vec!["session=abc".to_string()];
        parts.extend(cookies.iter().map(|(k, v)| format!("{k}={v}")));
        parts.join("; ")
    };
    let cookies = s.cookies(&policy);
    let names: Vec<&str> = cookies.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "CloudFront-Policy",
            "CloudFront-Signature",
            "CloudFront-Key-Pair-Id",
            "CloudFront-Hash-Algorithm"
        ]
    );
    let h = header(&cookies);
    let params = params_from_cookies(&h).unwrap();
    let client = Some("2001:db8::7".parse().unwrap());
    assert!(v.verify(&params, URL, client, NOW).is_ok());
    assert_eq!(
        v.verify(&params, URL, Some("2001:db9::7".parse().unwrap()), NOW),
        Err(Reason::IpMismatch)
    );

    let canned = s.cookies_canned(URL, NOW + 60);
    assert_eq!(canned[0].0, "CloudFront-Expires");
    let h = header(&canned);
    let params = params_from_cookies(&h).unwrap();
    assert!(v.verify(&params, URL, None, NOW).is_ok());
    assert_eq!(
        v.verify(
            &params,
            "https://d111111abcdef8.cloudfront.net/hls/v/other.m3u8",
            None,
            NOW
        ),
        Err(Reason::BadSignature)
    );
    assert_eq!(params_from_cookies("a=b; CloudFront-Signature=x"), None);
    assert_eq!(params_from_cookies(""), None);
}

#[test]
fn reasons() {
    let v = verifier();
    let s = CloudFrontSigner::from_pem(KEY_ID, RSA_PKCS8, HashAlgorithm::Sha1).unwrap();
    let policy = Policy {
        resource: "https://d111111abcdef8.cloudfront.net/hls/v/*".into(),
        date_less_than: NOW + 60,
        date_greater_than: Some(NOW - 60),
        ip_address: Some("203.0.113.0/24".into()),
    };
    let url = s.signed_url_custom(URL, &policy);
    let ip = Some("203.0.113.9");
    assert!(check(&v, &url, ip, NOW).is_ok());
    assert_eq!(check(&v, &url, ip, NOW + 60), Err(Reason::Expired));
    assert_eq!(check(&v, &url, ip, NOW - 60), Err(Reason::NotYetValid));
    assert_eq!(
        check(&v, &url, Some("198.51.100.1"), NOW),
        Err(Reason::IpMismatch)
    );
    assert_eq!(check(&v, &url, None, NOW), Err(Reason::IpMismatch));
    let elsewhere = url.replace("/hls/v/master.m3u8", "/hls/w/master.m3u8");
    assert_eq!(check(&v, &elsewhere, ip, NOW), Err(Reason::AclMismatch));
    assert_eq!(
        check(&v, &url.replace(KEY_ID, "KNOWNOT"), ip, NOW),
        Err(Reason::UnknownKey)
    );
    assert_eq!(
        check(&v, &format!("{url}&Hash-Algorithm=MD5"), ip, NOW),
        Err(Reason::UnsupportedAlgorithm)
    );

    // A canned URL: expiry, and any change to URL or Expires breaks the signature.
    let canned = s.signed_url_canned(URL, NOW + 60);
    assert_eq!(check(&v, &canned, None, NOW + 60), Err(Reason::Expired));
    let later = canned.replace(
        &format!("Expires={}", NOW + 60),
        &format!("Expires={}", NOW + 600),
    );
    assert_eq!(check(&v, &later, None, NOW), Err(Reason::BadSignature));
    let moved = canned.replace("master.m3u8", "other.m3u8");
    assert_eq!(check(&v, &moved, None, NOW), Err(Reason::BadSignature));
}

#[test]
fn tampering() {
    let v = verifier();
    let s = CloudFrontSigner::from_pem(KEY_ID, RSA_PKCS8, HashAlgorithm::Sha1).unwrap();
    let url = s.signed_url_custom(
        URL,
        &Policy::canned("https://d111111abcdef8.cloudfront.net/*", NOW + 60),
    );
    let params = params_from_query(split(&url).1).unwrap();
    // Another valid policy under the old signature.
    let other = Policy::canned("https://d111111abcdef8.cloudfront.net/*", NOW + 6000).to_json();
    let swapped = url_safe_b64_encode(other.as_bytes());
    let forged = CloudFrontParams {
        policy: Some(&swapped),
        ..params
    };
    assert_eq!(v.verify(&forged, URL, None, NOW), Err(Reason::BadSignature));
    // A flipped signature character.
    let mut sig = params.signature.to_string().into_bytes();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let sig = String::from_utf8(sig).unwrap();
    let flipped = CloudFrontParams {
        signature: &sig,
        ..params
    };
    assert_eq!(
        v.verify(&flipped, URL, None, NOW),
        Err(Reason::BadSignature)
    );
    // The RSA signature checked against the EC key.
    let wrong_key = CloudFrontParams {
        key_pair_id: "EC1",
        ..params
    };
    assert_eq!(
        v.verify(&wrong_key, URL, None, NOW),
        Err(Reason::BadSignature)
    );
    // A truncated signature.
    let short = CloudFrontParams {
        signature: &params.signature[..params.signature.len() - 8],
        ..params
    };
    assert_eq!(v.verify(&short, URL, None, NOW), Err(Reason::BadSignature));
    // A signed but unparsable policy is malformed.
    let junk = b"{\"Statement\":[]}";
    let raw_sig = url_safe_b64_encode(&s.key.sign(HashAlgorithm::Sha1, junk).unwrap());
    let junk_b64 = url_safe_b64_encode(junk);
    let signed_junk = CloudFrontParams {
        policy: Some(&junk_b64),
        signature: &raw_sig,
        ..params
    };
    assert_eq!(
        v.verify(&signed_junk, URL, None, NOW),
        Err(Reason::Malformed)
    );
}

#[test]
fn malformed_params() {
    let v = verifier();
    let s = CloudFrontSigner::from_pem(KEY_ID, RSA_PKCS8, HashAlgorithm::Sha1).unwrap();
    let canned = s.signed_url_canned(URL, NOW + 60);
    let p = params_from_query(split(&canned).1).unwrap();
    let big_policy = "A".repeat(MAX_POLICY_LEN * 2);
    let big_sig = "A".repeat(MAX_SIGNATURE_LEN + 1);
    let long_id = "K".repeat(MAX_KEY_PAIR_ID_LEN + 1);
    let cases = [
        CloudFrontParams { expires: None, ..p },
        CloudFrontParams {
            policy: Some("eyJ9"),
            ..p
        },
        CloudFrontParams {
            expires: Some("soon"),
            ..p
        },
        CloudFrontParams {
            expires: Some("-1"),
            ..p
        },
        CloudFrontParams {
            expires: Some(""),
            ..p
        },
        CloudFrontParams {
            expires: Some("99999999999999"),
            ..p
        },
        CloudFrontParams { signature: "", ..p },
        CloudFrontParams {
            signature: "abc+def=",
            ..p
        },
        CloudFrontParams {
            signature: &big_sig,
            ..p
        },
        CloudFrontParams {
            expires: None,
            policy: Some(&big_policy),
            ..p
        },
        CloudFrontParams {
            expires: None,
            policy: Some("not base64!"),
            ..p
        },
        CloudFrontParams {
            key_pair_id: "",
            ..p
        },
        CloudFrontParams {
            key_pair_id: "K/../x",
            ..p
        },
        CloudFrontParams {
            key_pair_id: &long_id,
            ..p
        },
    ];
    for params in cases {
        assert_eq!(
            v.verify(&params, URL, None, NOW),
            Err(Reason::Malformed),
            "{params:?}"
        );
    }
    let long_url = format!("{URL}{}", "a".repeat(MAX_RESOURCE_URL_LEN));
    assert_eq!(v.verify(&p, &long_url, None, NOW), Err(Reason::Malformed));
}

#[test]
fn query_helpers() {
    let q = "a=1&Expires=5&Signature=s&Key-Pair-Id=K&b=2&Hash-Algorithm=SHA256";
    let p = params_from_query(q).unwrap();
    assert_eq!(
        p,
        CloudFrontParams {
            expires: Some("5"),
            policy: None,
            signature: "s",
            key_pair_id: "K",
            hash_algorithm: Some("SHA256"),
        }
    );
    assert_eq!(query_without_params(Some(q)).as_deref(), Some("a=1&b=2"));
    assert_eq!(query_without_params(Some("Expires=1&Signature=2")), None);
    let q = Some("x=1&hdnts=t&Policy=p&Signature=s&Key-Pair-Id=K");
    assert_eq!(
        signed_query_pairs(q).as_deref(),
        Some("Policy=p&Signature=s&Key-Pair-Id=K")
    );
    assert_eq!(signed_query_pairs(Some("x=1")), None);
    assert_eq!(params_from_query("Expires=5&Signature=s"), None);
    assert_eq!(params_from_query("Expires=5&Key-Pair-Id=K"), None);
    assert_eq!(params_from_query(""), None);
}

#[test]
fn keys_are_checked() {
    let mut v = CloudFrontVerifier::new();
    for pem in [
        RSA1024_PUB,
        P384_PUB,
        "",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        RSA_PKCS8,
    ] {
        assert_eq!(v.add_public_key_pem("K", pem), Err(Reason::Malformed));
    }
    assert_eq!(
        v.add_public_key_pem("K", &"A".repeat(MAX_PEM_LEN + 1)),
        Err(Reason::Malformed)
    );
    assert_eq!(
        v.add_public_key_pem("bad id", RSA_PUB),
        Err(Reason::Malformed)
    );
    for pem in [RSA1024_PKCS8, P384_PKCS8, RSA_PUB, "junk"] {
        assert_eq!(
            CloudFrontSigner::from_pem("K", pem, HashAlgorithm::Sha1).err(),
            Some(Reason::Malformed)
        );
    }
    assert_eq!(
        CloudFrontSigner::from_pem("", RSA_PKCS8, HashAlgorithm::Sha1).err(),
        Some(Reason::Malformed)
    );
    let s = CloudFrontSigner::from_pem("K", RSA_PKCS8, HashAlgorithm::Sha1).unwrap();
    assert_eq!(s.key_pair_id(), "K");
    let shown = format!("{s:?} {:?}", verifier());
    assert!(
        !shown.contains("BEGIN") && shown.contains("redacted") && shown.contains(KEY_ID),
        "{shown}"
    );
    assert_eq!(
        HashAlgorithm::from_param(Some("SHA256")),
        Ok(HashAlgorithm::Sha256)
    );
    assert_eq!(HashAlgorithm::from_param(None), Ok(HashAlgorithm::Sha1));
    assert_eq!(
        HashAlgorithm::from_param(Some("sha256")),
        Err(Reason::UnsupportedAlgorithm)
    );
}

mod memo {
    use super::super::*;
    use std::cell::RefCell;
    use std::collections::HashSet;

    /// A memo that records what it was asked, to prove the key operation is skipped.
    #[derive(Default)]
    struct Recording {
        known: RefCell<HashSet<[u8; 32]>>,
        inserts: RefCell<usize>,
    }

    impl SignatureMemo for Recording {
        fn contains(&self, digest: &[u8; 32]) -> bool {
            self.known.borrow().contains(digest)
        }
        fn insert(&self, digest: [u8; 32]) {
            *self.inserts.borrow_mut() += 1;
            self.known.borrow_mut().insert(digest);
        }
    }

    const PEM: &str = include_str!("testdata/rsa2048.pkcs8.pem");

    #[test]
    fn a_verified_signature_is_remembered_but_conditions_are_rechecked() {
        let signer = CloudFrontSigner::from_pem("KMEMO", PEM, HashAlgorithm::Sha1).unwrap();
        let mut verifier = CloudFrontVerifier::new();
        verifier.add_signer(&signer);
        let policy = Policy {
            resource: "https://edge.example/hls/v/*".into(),
            date_less_than: 2_000,
            date_greater_than: None,
            ip_address: None,
        };
        let signed = signer.signed_url_custom("https://edge.example/hls/v/a.ts", &policy);
        let query = signed.split_once('?').unwrap().1;
        let params = params_from_query(query).unwrap();
        let memo = Recording::default();
        for segment in ["a.ts", "b.ts", "c.ts"] {
            let url = format!("https://edge.example/hls/v/{segment}");
            assert!(verifier
                .verify_memoized(&params, &url, None, 1_000, &memo)
                .is_ok());
        }
        assert_eq!(
            *memo.inserts.borrow(),
            1,
            "one public-key operation for three segments"
        );
        // The remembered signature does not widen the policy.
        assert_eq!(
            verifier
                .verify_memoized(
                    &params,
                    "https://edge.example/hls/w/a.ts",
                    None,
                    1_000,
                    &memo
                )
                .unwrap_err(),
            Reason::AclMismatch
        );
        assert_eq!(
            verifier
                .verify_memoized(
                    &params,
                    "https://edge.example/hls/v/a.ts",
                    None,
                    2_000,
                    &memo
                )
                .unwrap_err(),
            Reason::Expired
        );
        // A different signature over the same policy is not covered by the memo.
        let mut forged = params;
        let middle = params.signature.len() / 2;
        let flipped = if &params.signature[middle..=middle] == "A" {
            "B"
        } else {
            "A"
        };
        let tampered = format!(
            "{}{flipped}{}",
            &params.signature[..middle],
            &params.signature[middle + 1..]
        );
        forged.signature = &tampered;
        assert_eq!(
            verifier
                .verify_memoized(
                    &forged,
                    "https://edge.example/hls/v/a.ts",
                    None,
                    1_000,
                    &memo
                )
                .unwrap_err(),
            Reason::BadSignature
        );
    }
}
